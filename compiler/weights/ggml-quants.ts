// ggml's tensor types: the block layout of each (for sizing any GGUF tensor) and the
// dequantizers wasmformer reads, each following ggml's dequantize_row_* in f32 arithmetic
// (every intermediate rounded to f32 where ggml's is a float), so the values are bit-exact.

import { halfToFloat } from "../../ir/half.js";

export interface GgmlType {
  readonly name: string;
  /** Elements per block (a row's length must be a multiple of it). */
  readonly block: number;
  /** Bytes per block. */
  readonly bytes: number;
}

const QK_K = 256;

/** Every type id ggml defines (ids 4, 5 and 31–33 were retired), as gguf-py's GGML_QUANT_SIZES. */
export const GGML_TYPES: Readonly<Record<number, GgmlType>> = {
  0: { name: "F32", block: 1, bytes: 4 },
  1: { name: "F16", block: 1, bytes: 2 },
  2: { name: "Q4_0", block: 32, bytes: 2 + 16 },
  3: { name: "Q4_1", block: 32, bytes: 2 + 2 + 16 },
  6: { name: "Q5_0", block: 32, bytes: 2 + 4 + 16 },
  7: { name: "Q5_1", block: 32, bytes: 2 + 2 + 4 + 16 },
  8: { name: "Q8_0", block: 32, bytes: 2 + 32 },
  9: { name: "Q8_1", block: 32, bytes: 4 + 4 + 32 },
  10: { name: "Q2_K", block: QK_K, bytes: 2 + 2 + QK_K / 16 + QK_K / 4 },
  11: { name: "Q3_K", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 8 + 12 },
  12: { name: "Q4_K", block: QK_K, bytes: 2 + 2 + QK_K / 2 + 12 },
  13: { name: "Q5_K", block: QK_K, bytes: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
  14: { name: "Q6_K", block: QK_K, bytes: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  15: { name: "Q8_K", block: QK_K, bytes: 4 + QK_K + QK_K / 8 },
  16: { name: "IQ2_XXS", block: QK_K, bytes: 2 + QK_K / 4 },
  17: { name: "IQ2_XS", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 32 },
  18: { name: "IQ3_XXS", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 8 },
  19: { name: "IQ1_S", block: QK_K, bytes: 2 + QK_K / 8 + QK_K / 16 },
  20: { name: "IQ4_NL", block: 32, bytes: 2 + 16 },
  21: { name: "IQ3_S", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
  22: { name: "IQ2_S", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 16 },
  23: { name: "IQ4_XS", block: QK_K, bytes: 2 + 2 + QK_K / 2 + QK_K / 64 },
  24: { name: "I8", block: 1, bytes: 1 },
  25: { name: "I16", block: 1, bytes: 2 },
  26: { name: "I32", block: 1, bytes: 4 },
  27: { name: "I64", block: 1, bytes: 8 },
  28: { name: "F64", block: 1, bytes: 8 },
  29: { name: "IQ1_M", block: QK_K, bytes: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  30: { name: "BF16", block: 1, bytes: 2 },
  34: { name: "TQ1_0", block: QK_K, bytes: 2 + 4 * 13 },
  35: { name: "TQ2_0", block: QK_K, bytes: 2 + 64 },
  39: { name: "MXFP4", block: 32, bytes: 1 + 16 },
};

export const GGML_TYPE_ID: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(GGML_TYPES).map(([id, t]) => [t.name, Number(id)]));

const f = Math.fround;
const half = (b: Uint8Array, at: number) => halfToFloat(b[at] | (b[at + 1] << 8));

/** `n` elements of type `type` from `src` (exactly the tensor's bytes) as float32, or undefined for a type not read here. */
export function dequantize(type: number, src: Uint8Array, n: number): Float32Array | undefined {
  const fn = dequantizers[type];
  if (!fn) return undefined;
  const out = new Float32Array(n);
  fn(src, out, n);
  return out;
}

type Dequantizer = (src: Uint8Array, y: Float32Array, n: number) => void;

const dequantizers: Record<number, Dequantizer> = {
  0: (src, y) => new Uint8Array(y.buffer).set(src),
  1: (src, y, n) => {
    for (let i = 0; i < n; i++) y[i] = half(src, 2 * i);
  },
  30: (src, y, n) => {
    const u = new Uint32Array(y.buffer);
    for (let i = 0; i < n; i++) u[i] = (src[2 * i] | (src[2 * i + 1] << 8)) << 16;
  },
  // Q8_0: f16 d, 32 int8 codes; y = q·d
  8: (src, y, n) => {
    for (let b = 0; b < n / 32; b++) {
      const at = b * 34, d = half(src, at);
      for (let j = 0; j < 32; j++) y[b * 32 + j] = ((src[at + 2 + j] << 24) >> 24) * d;
    }
  },
  // Q4_0: f16 d, 16 bytes; low nibbles are elements 0..15, high nibbles 16..31; y = (q − 8)·d
  2: (src, y, n) => {
    for (let b = 0; b < n / 32; b++) {
      const at = b * 18, d = half(src, at);
      for (let j = 0; j < 16; j++) {
        const q = src[at + 2 + j];
        y[b * 32 + j] = ((q & 0xf) - 8) * d;
        y[b * 32 + j + 16] = ((q >> 4) - 8) * d;
      }
    }
  },
  // Q4_1: f16 d, f16 m, 16 bytes as Q4_0; y = q·d + m
  3: (src, y, n) => {
    for (let b = 0; b < n / 32; b++) {
      const at = b * 20, d = half(src, at), m = half(src, at + 2);
      for (let j = 0; j < 16; j++) {
        const q = src[at + 4 + j];
        y[b * 32 + j] = f((q & 0xf) * d) + m;
        y[b * 32 + j + 16] = f((q >> 4) * d) + m;
      }
    }
  },
  // Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
  // 128 bytes of nibbles: each 32 bytes hold two sub-blocks (low nibbles, then high)
  12: (src, y, n) => {
    for (let b = 0; b < n / QK_K; b++) {
      const at = b * 144, d = half(src, at), dmin = half(src, at + 2), sc = at + 4;
      let o = b * QK_K, q = at + 16;
      for (let is = 0; is < 8; is += 2) {
        const [s1, m1] = scaleMinK4(src, sc, is), [s2, m2] = scaleMinK4(src, sc, is + 1);
        const d1 = f(d * s1), dm1 = f(dmin * m1), d2 = f(d * s2), dm2 = f(dmin * m2);
        for (let l = 0; l < 32; l++) y[o++] = f(d1 * (src[q + l] & 0xf)) - dm1;
        for (let l = 0; l < 32; l++) y[o++] = f(d2 * (src[q + l] >> 4)) - dm2;
        q += 32;
      }
    }
  },
  // Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales (one per 16),
  // f16 d; y = d·scale·(q − 32), in two halves of 128
  14: (src, y, n) => {
    for (let b = 0; b < n / QK_K; b++) {
      const at = b * 210, d = half(src, at + 208);
      for (let h = 0; h < 2; h++) {
        const ql = at + 64 * h, qh = at + 128 + 32 * h, sc = at + 192 + 8 * h, o = b * QK_K + 128 * h;
        for (let l = 0; l < 32; l++) {
          const is = l >> 4, hi = src[qh + l];
          const q1 = ((src[ql + l] & 0xf) | ((hi & 3) << 4)) - 32;
          const q2 = ((src[ql + l + 32] & 0xf) | (((hi >> 2) & 3) << 4)) - 32;
          const q3 = ((src[ql + l] >> 4) | (((hi >> 4) & 3) << 4)) - 32;
          const q4 = ((src[ql + l + 32] >> 4) | (((hi >> 6) & 3) << 4)) - 32;
          const s = (k: number) => f(d * ((src[sc + is + k] << 24) >> 24));
          y[o + l] = s(0) * q1;
          y[o + l + 32] = s(2) * q2;
          y[o + l + 64] = s(4) * q3;
          y[o + l + 96] = s(6) * q4;
        }
      }
    }
  },
};

/** Names of the types `dequantize` reads. */
export const READABLE_TYPES: readonly string[] = Object.keys(dequantizers).map((id) => GGML_TYPES[Number(id)].name);

/** Q4_K's packed 6-bit scale and min of sub-block j (ggml's get_scale_min_k4). */
function scaleMinK4(b: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [b[at + j] & 63, b[at + j + 4] & 63];
  return [(b[at + j + 4] & 0xf) | ((b[at + j - 4] >> 6) << 4), (b[at + j + 4] >> 4) | ((b[at + j] >> 6) << 4)];
}
