// IEEE binary16 ↔ binary32, as GGUF and safetensors store half floats.

/** The value of half-precision bits h. */
export function halfToFloat(h: number): number {
  return (HALF_VALUES ??= halfValues())[h & 0xffff];
}

// every half value, indexed by its bits: conversions run over every weight of a checkpoint
let HALF_VALUES: Float32Array | undefined;
function halfValues(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfBitsValue(h);
  return t;
}

function halfBitsValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const F32 = new Float32Array(1), U32 = new Uint32Array(F32.buffer);

/** The half-precision bits nearest to v (ties to even; overflow to infinity). */
export function floatToHalf(v: number): number {
  F32[0] = v;
  const u = U32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (((u >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry rounds into the exponent, as it should
  return sign | half;
}

/**
 * v rounded to bfloat16 (the top 16 bits of an f32, ties to even; NaN stays NaN), as an f32: what
 * a bf16 KV cache (attention attr kv_dtype) holds.
 */
export function roundBf16(v: number): number {
  F32[0] = v;
  const u = U32[0];
  U32[0] = (u & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return F32[0];
}
