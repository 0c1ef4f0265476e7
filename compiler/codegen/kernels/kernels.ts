// Generic kernel library (AssemblyScript, SIMD128). Every kernel works on raw pointers into
// the one linear memory and takes its sizes as arguments; the compiler calls these with
// constant sizes from its generated entry functions, and generates its own shape-specialised
// kernels (see ../lower.ts) where specialisation pays.
//
// Row-major f32 tensors throughout; `rows` is the run-time row count.

// @ts-nocheck  (AssemblyScript, not TypeScript)

import { f32at, hsum, setf32 } from "./memory";

export { attention, attention_merge, attention_part, attention_part_bf16 } from "./attention";

/** out[r,:] = table[ids[r],:] */
export function embedding(table: usize, ids: usize, out: usize, rows: i32, D: i32): void {
  for (let r = 0; r < rows; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    memory.copy(out + (<usize>(r * D) << 2), table + (<usize>(id * D) << 2), <usize>D << 2);
  }
}

/**
 * embedding() over a table stored in the packed matrix layout (compiler/codegen/linear/layout.ts):
 * panels of `panel` columns (the last may be shorter; a D % 4 tail only when panel = D), `stride`
 * floats apart, each all groups of 4 rows, each group 4-column chunks of its 4 rows.
 */
export function embedding_packed(table: usize, ids: usize, out: usize, rows: i32, D: i32, panel: i32, stride: i32): void {
  const D4 = D & ~3, Dt = D - D4;
  for (let r = 0; r < rows; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    const g = id >> 2, j = id & 3;
    const po = out + (<usize>(r * D) << 2);
    for (let k0 = 0, q = 0; k0 < D4; k0 += panel, q++) {
      const size = min(panel, D - k0), end = min(size, D4 - k0);
      const base = table + (<usize>(q * stride + 4 * g * size + 4 * j) << 2);
      for (let k = 0; k < end; k += 4) v128.store(po + (<usize>(k0 + k) << 2), v128.load(base + (<usize>(k * 4) << 2)));
    }
    const base = table + (<usize>(g * 4 * D) << 2);
    for (let t = 0; t < Dt; t++) setf32(po, D4 + t, f32at(base, 4 * D4 + j * Dt + t));
  }
}

/** An f16 value's f32 (subnormals, infinities and NaN included). */
@inline function halfToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) {
    const v = <f32>m * <f32>5.9604644775390625e-8; // m · 2^-24
    return sign ? -v : v;
  }
  return reinterpret<f32>(sign | (e == 31 ? 0x7f800000 : (e + 112) << 23) | (m << 13));
}

/**
 * embedding() over a block-quantized table in the matrix kernels' layout (linear/layout.ts:
 * packQuantWeight): row id's blocks dequantized, code · scale (q8_0, q4_0 with its nibble − 8)
 * or nibble · scale + minimum (q4_1), as the table's dequantized values are. scheme: 0 q8_0,
 * 1 q4_0, 2 q4_1.
 */
export function embedding_q(table: usize, ids: usize, out: usize, rows: i32, D: i32, scheme: i32): void {
  const blocks = D >> 5;
  const codesAt: i32 = scheme == 2 ? 16 : 8, codeBytes: i32 = scheme == 0 ? 32 : 16;
  const blockBytes = codesAt + 4 * codeBytes;
  for (let r = 0; r < rows; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    const g = id >> 2, j = id & 3;
    const po = out + (<usize>(r * D) << 2);
    for (let b = 0; b < blocks; b++) {
      const at = table + <usize>((g * blocks + b) * blockBytes);
      const d = halfToF32(load<u16>(at + (<usize>j << 1)));
      const pc = at + <usize>(codesAt + j * codeBytes), pb = po + (<usize>(b * 32) << 2);
      if (scheme == 0) {
        for (let t = 0; t < 32; t++) setf32(pb, t, <f32>load<i8>(pc + <usize>t) * d);
      } else {
        const min: f32 = scheme == 2 ? halfToF32(load<u16>(at + 8 + (<usize>j << 1))) : 0;
        const shift: i32 = scheme == 1 ? 8 : 0;
        for (let t = 0; t < 16; t++) {
          const byte = <i32>load<u8>(pc + <usize>t);
          const lo = <f32>((byte & 15) - shift) * d, hi = <f32>((byte >> 4) - shift) * d;
          setf32(pb, t, scheme == 2 ? lo + min : lo);
          setf32(pb, t + 16, scheme == 2 ? hi + min : hi);
        }
      }
    }
  }
}

/**
 * q8_0 quantization of activation rows for the integer matrix kernels: each row of x[rows, K]
 * becomes K/32 f32 scales, K codes widened to i16 (ir/quant.ts: quantizeRowQ8), each block's
 * i32 sum of codes (q4_0 kernels fold the nibbles' offset 8 into it: Σ(n − 8)·x = Σn·x − 8·Σx),
 * then the K codes again as i8 (relaxed SIMD's 8-bit dot products). linear/layout.ts: quantRowBytes.
 */
export function quantize_rows_q8(x: usize, out: usize, rows: i32, K: i32): void {
  const blocks = K >> 5;
  const rowBytes = (blocks << 3) + (K << 1) + K;
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * K) << 2);
    const ps = out + <usize>(r * rowBytes);
    const pc = ps + (<usize>blocks << 2);
    const psum = pc + (<usize>K << 1);
    const pc8 = psum + (<usize>blocks << 2);
    for (let b = 0; b < blocks; b++) {
      const pb = px + (<usize>(b << 5) << 2);
      let m = f32x4.splat(0);
      for (let t = 0; t < 32; t += 4) m = f32x4.max(m, f32x4.abs(v128.load(pb + (<usize>t << 2))));
      const amax = Mathf.max(Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), Mathf.max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      const d: f32 = amax / <f32>127.0;
      const inv: f32 = d != 0 ? <f32>1.0 / d : 0;
      store<f32>(ps + (<usize>b << 2), d);
      let sum = 0;
      for (let t = 0; t < 32; t++) {
        let q = nearest<f32>(f32at(pb, t) * inv);
        q = Mathf.min(Mathf.max(q, -127), 127);
        store<i16>(pc + (<usize>((b << 5) + t) << 1), <i16><i32>q);
        store<i8>(pc8 + <usize>((b << 5) + t), <i8><i32>q);
        sum += <i32>q;
      }
      store<i32>(psum + (<usize>b << 2), sum);
    }
  }
}

/** out[r] = past + r */
export function positions(out: usize, rows: i32, past: i32): void {
  for (let r = 0; r < rows; r++) store<i32>(out + (<usize>r << 2), past + r);
}

/** out[i] = a[i] + b[i % bn] (b broadcast over rows when bn < n) */
export function add(a: usize, b: usize, out: usize, n: i32, bn: i32): void {
  for (let base = 0; base < n; base += bn) {
    const pa = a + (<usize>base << 2), po = out + (<usize>base << 2);
    let i = 0;
    for (; i + 4 <= bn; i += 4) v128.store(po + (<usize>i << 2), f32x4.add(v128.load(pa + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
    for (; i < bn; i++) setf32(po, i, f32at(pa, i) + f32at(b, i));
  }
}

export function mul(a: usize, b: usize, out: usize, n: i32, bn: i32): void {
  for (let base = 0; base < n; base += bn) {
    const pa = a + (<usize>base << 2), po = out + (<usize>base << 2);
    let i = 0;
    for (; i + 4 <= bn; i += 4) v128.store(po + (<usize>i << 2), f32x4.mul(v128.load(pa + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
    for (; i < bn; i++) setf32(po, i, f32at(pa, i) * f32at(b, i));
  }
}

export function scale(a: usize, out: usize, n: i32, c: f32): void {
  const cv = f32x4.splat(c);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), f32x4.mul(v128.load(a + (<usize>i << 2)), cv));
  for (; i < n; i++) setf32(out, i, f32at(a, i) * c);
}

/** Mean of the D values at px. */
function rowMean(px: usize, D: i32): f32 {
  let sv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) sv = f32x4.add(sv, v128.load(px + (<usize>i << 2)));
  let s = hsum(sv);
  for (; i < D; i++) s += f32at(px, i);
  return s / <f32>D;
}

/** 1 / sqrt(var + eps) of the D values at px with mean `mean` (two-pass variance). */
function rowInvStd(px: usize, D: i32, mean: f32, eps: f32): f32 {
  const mv = f32x4.splat(mean);
  let qv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) { const d = f32x4.sub(v128.load(px + (<usize>i << 2)), mv); qv = f32x4.add(qv, f32x4.mul(d, d)); }
  let q = hsum(qv);
  for (; i < D; i++) { const d = f32at(px, i) - mean; q += d * d; }
  return <f32>1.0 / Mathf.sqrt(q / <f32>D + eps);
}

export function layernorm(x: usize, g: usize, b: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    const mean = rowMean(px, D);
    const mv = f32x4.splat(mean);
    const inv = rowInvStd(px, D, mean, eps);
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      const n = f32x4.mul(f32x4.sub(v128.load(px + o), mv), iv);
      v128.store(po + o, f32x4.add(f32x4.mul(n, v128.load(g + o)), v128.load(b + o)));
    }
    for (; i < D; i++) setf32(po, i, (f32at(px, i) - mean) * inv * f32at(g, i) + f32at(b, i));
  }
}

/** 1 / sqrt(mean(x²) + eps) of the D values at px. */
function rmsInv(px: usize, D: i32, eps: f32): f32 {
  let qv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) { const v = v128.load(px + (<usize>i << 2)); qv = f32x4.add(qv, f32x4.mul(v, v)); }
  let q = hsum(qv);
  for (; i < D; i++) { const v = f32at(px, i); q += v * v; }
  return <f32>1.0 / Mathf.sqrt(q / <f32>D + eps);
}

/** Each row's RMSNorm factor (a matrix kernel with a fused RMSNorm scales its sums by it). */
export function row_rms_inv(x: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) setf32(out, r, rmsInv(x + (<usize>(r * D) << 2), D, eps));
}

/** Each row's LayerNorm mean and factor 1 / sqrt(var + eps), as (mean, factor) pairs (a matrix kernel with a fused LayerNorm reads them). */
export function row_mean_inv(x: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2);
    const mean = rowMean(px, D);
    setf32(out, 2 * r, mean);
    setf32(out, 2 * r + 1, rowInvStd(px, D, mean, eps));
  }
}

export function rmsnorm(x: usize, g: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    const inv = rmsInv(px, D, eps);
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      v128.store(po + o, f32x4.mul(f32x4.mul(v128.load(px + o), iv), v128.load(g + o)));
    }
    for (; i < D; i++) setf32(po, i, f32at(px, i) * inv * f32at(g, i));
  }
}

// erf with |error| < 1.2e-7 (W. J. Cody's rational approximations, as in many libms' erff).
function erf32(x: f32): f32 {
  const ax = Mathf.abs(x);
  let r: f64;
  const z = <f64>ax;
  if (ax < 0.84375) {
    const z2 = z * z;
    const p = 1.28379167095512558561e-1 + z2 * (-3.25042107247001499370e-1 + z2 * (-2.84817495755985104766e-2 + z2 * (-5.77027029648944159157e-3 + z2 * -2.37630166566501626084e-5)));
    const q = 1.0 + z2 * (3.97917223959155352819e-1 + z2 * (6.50222499887672944485e-2 + z2 * (5.08130628187576562776e-3 + z2 * (1.32494738004321644526e-4 + z2 * -3.96022827877536812320e-6))));
    r = z + z * (p / q);
  } else if (ax < 1.25) {
    const s = z - 1.0;
    const p = -2.36211856075265944077e-3 + s * (4.14856118683748331666e-1 + s * (-3.72207876035701323847e-1 + s * (3.18346619901161753674e-1 + s * (-1.10894694282396677476e-1 + s * (3.54783043256182359371e-2 + s * -2.16637559486879084300e-3)))));
    const q = 1.0 + s * (1.06420880400844228286e-1 + s * (5.40397917702171048937e-1 + s * (7.18286544141962662868e-2 + s * (1.26171219808761642112e-1 + s * (1.36370839120290507362e-2 + s * 1.19844998467991074170e-2)))));
    r = 8.45062911510467529297e-1 + p / q;
  } else if (ax < 6.0) {
    const s = 1.0 / (z * z);
    let R: f64, S: f64;
    if (ax < 2.857142857) {
      R = -9.86494403484714822705e-3 + s * (-6.93858572707181764372e-1 + s * (-1.05586262253232909814e1 + s * (-6.23753324503260060396e1 + s * (-1.62396669462573470355e2 + s * (-1.84605092906711035994e2 + s * (-8.12874355063065934246e1 + s * -9.81432934416914548592))))));
      S = 1.0 + s * (1.96512716674392571292e1 + s * (1.37657754143519042600e2 + s * (4.34565877475229228821e2 + s * (6.45387271733267880336e2 + s * (4.29008140027567833386e2 + s * (1.08635005541779435134e2 + s * (6.57024977031928170135 + s * -6.04244152148580987438e-2)))))));
    } else {
      R = -9.86494292470009928597e-3 + s * (-7.99283237680523006574e-1 + s * (-1.77579549177547519889e1 + s * (-1.60636384855821916062e2 + s * (-6.37566443368389627722e2 + s * (-1.02509513161107724954e3 + s * -4.83519191608651397019e2)))));
      S = 1.0 + s * (3.03380607434824582924e1 + s * (3.25792512996573918826e2 + s * (1.53672958608443695994e3 + s * (3.19985821950859553908e3 + s * (2.55305040643316442583e3 + s * (4.74528541206955367215e2 + s * -2.24409524465858183362e1))))));
    }
    r = 1.0 - Math.exp(-z * z - 0.5625 + R / S) / z;
  } else {
    r = 1.0;
  }
  return <f32>(x < 0 ? -r : r);
}

// Scalar activations: used by the elementwise kernels below and by the epilogues of the
// generated matrix kernels.
export function act_gelu(v: f32): f32 { return <f32>0.5 * v * (<f32>1.0 + erf32(v * <f32>0.7071067811865476)); }
export function act_gelu_tanh(v: f32): f32 { return <f32>0.5 * v * (<f32>1.0 + Mathf.tanh(<f32>0.7978845608028654 * (v + <f32>0.044715 * v * v * v))); }
export function act_silu(v: f32): f32 { return v / (<f32>1.0 + Mathf.exp(-v)); }

export function gelu(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) setf32(out, i, act_gelu(f32at(x, i)));
}

export function gelu_tanh(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) setf32(out, i, act_gelu_tanh(f32at(x, i)));
}

export function silu(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) setf32(out, i, act_silu(f32at(x, i)));
}

export function relu(x: usize, out: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), f32x4.max(v128.load(x + (<usize>i << 2)), z));
  for (; i < n; i++) { const v = f32at(x, i); setf32(out, i, v > 0 ? v : 0); }
}

export function softmax(x: usize, out: usize, rows: i32, D: i32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    let m = -Infinity as f32;
    for (let i = 0; i < D; i++) m = Mathf.max(m, f32at(px, i));
    let s: f32 = 0;
    for (let i = 0; i < D; i++) { const e = Mathf.exp(f32at(px, i) - m); setf32(po, i, e); s += e; }
    const inv = <f32>1.0 / s;
    for (let i = 0; i < D; i++) setf32(po, i, f32at(po, i) * inv);
  }
}

/** out[r, 0:size] = x[r, start:start+size] for x of width D */
export function slice(x: usize, out: usize, rows: i32, D: i32, start: i32, size: i32): void {
  for (let r = 0; r < rows; r++) memory.copy(out + (<usize>(r * size) << 2), x + (<usize>(r * D + start) << 2), <usize>size << 2);
}

/** out[r] = x[r]ᵀ for each row r holding an A×B matrix */
export function transpose_rows(x: usize, out: usize, rows: i32, A: i32, B: i32): void {
  for (let r = 0; r < rows; r++) {
    const base = r * A * B;
    for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) setf32(out, base + j * A + i, f32at(x, base + i * B + j));
  }
}

/** Rotary embedding (rotate_half pairs j, j+hd/2) on every head of x[rows, D], positions past+r; table: f32 [position][pair][cos, sin]. */
export function rope(x: usize, out: usize, rows: i32, D: i32, hd: i32, past: i32, table: usize): void {
  const half = hd >> 1;
  for (let r = 0; r < rows; r++) {
    // cos and sin of position past + r's angles (ir/ops.ts ropeTable)
    const pt = table + (<usize>((past + r) * half) << 3);
    for (let j = 0; j < half; j++) {
      const c = f32at(pt, 2 * j), s = f32at(pt, 2 * j + 1);
      for (let h = 0; h < D; h += hd) {
        const o = r * D + h + j;
        const x1 = f32at(x, o), x2 = f32at(x, o + half);
        setf32(out, o, x1 * c - x2 * s);
        setf32(out, o + half, x2 * c + x1 * s);
      }
    }
  }
}

