// How the matrix kernels find their weights and scratch: the packed weight layouts (built at
// compile time) and the byte sizes the memory planner reserves. docs/kernels.md draws them.

import { floatToHalf, halfToFloat } from "../../../ir/half.js";
import { Q8_BLOCK } from "../../../ir/quant.js";
import type { QuantScheme } from "../../../ir/types.js";
import { PANEL, ROW_BLOCK, SKEW_PERIOD } from "../tuning.js";

/** Output rows of a group: the kernels compute 4 outputs at once, one f32x4 lane each. */
export const GROUP = 4;

/** Threads a kernel may run on (each has its own dequantization buffer). */
export const MAX_THREADS = 16;

export type WeightScheme = QuantScheme;

/** Work units of a linear kernel with N outputs: its groups of 4 output rows. */
export const linearUnits = (N: number) => Math.ceil(N / GROUP);

// ---- f32 weights: groups of 4 rows, 4-wide chunks of K interleaved, in K panels

/** A range [k0, k0 + size) of K that a kernel reads in one pass over the output groups, stored from float `at` of the packed weight. */
export interface Panel {
  k0: number;
  size: number;
  at: number;
  index: number;
  last: boolean;
}

/** The panels of an f32 weight [N, K]: one if K ≤ PANEL or K % 8 ≠ 0, else equal sizes, multiples of 8, each (but the first) starting `stride` floats after the one before. */
export function linearPanels(N: number, K: number): Panel[] {
  const size = K <= PANEL || K % 8 !== 0 ? K : Math.ceil(K / Math.ceil(K / PANEL) / 8) * 8;
  const stride = panelStride(N, size);
  const out: Panel[] = [];
  for (let k0 = 0, index = 0; k0 < K; k0 += size, index++) out.push({ k0, size: Math.min(size, K - k0), at: index * stride, index, last: k0 + size >= K });
  return out;
}
/** Floats from one panel of `size` k's to the next: its groups, then padding to one group's panel past a multiple of SKEW_PERIOD. */
export const panelStride = (N: number, size: number) => {
  const R = GROUP * size, all = linearUnits(N) * R;
  return all + ((((R - all) % SKEW_PERIOD) + SKEW_PERIOD) % SKEW_PERIOD);
};

/** Packs w[N, K] (row-major) into the kernel layout; rows past N in the last group are zero. */
/** Floats of an f32 matrix [N, K] in the packed layout. */
export function packedLinearFloats(N: number, K: number): number {
  const panels = linearPanels(N, K), lastP = panels[panels.length - 1];
  return lastP.at + Math.ceil(N / GROUP) * GROUP * lastP.size;
}

export function packLinearWeight(w: Float32Array, N: number, K: number): Float32Array {
  const K4 = K - (K % 4), Kt = K % 4;
  const panels = linearPanels(N, K);
  const out = new Float32Array(packedLinearFloats(N, K));
  for (const { k0, size, at: from } of panels) {
    const end = Math.min(k0 + size, K4);
    for (let n = 0; n < N; n++) {
      const g = n >> 2, j = n & 3, base = from + GROUP * g * size, src = n * K;
      // row n's 4-wide chunks go 16 floats apart (an unrolled copy: this runs over every weight)
      for (let k = k0, at = base + j * 4; k < end; k += 4, at += 16) {
        out[at] = w[src + k];
        out[at + 1] = w[src + k + 1];
        out[at + 2] = w[src + k + 2];
        out[at + 3] = w[src + k + 3];
      }
      // (a K % 4 tail: one panel only)
      for (let t = 0; t < Kt; t++) out[base + 4 * K4 + j * Kt + t] = w[src + K4 + t];
    }
  }
  return out;
}

// ---- quantized weights: per group of 4 rows, blocks of 32 k's

/**
 * A packed block of a 4-row group: the 4 rows' f16 scales (8 bytes), for q4_1 their f16
 * minimums (8 bytes), then each row's 32 codes: q8_0 32 int8; q4_0 and q4_1 16 bytes of
 * nibbles, byte t holding element t low and t+16 high (q4_0: value nibble − 8; q4_1: nibble·d + min).
 */
export const SCALES_BYTES = GROUP * 2;
const MINS_BYTES: Record<WeightScheme, number> = { q8_0: 0, q4_0: 0, q4_1: GROUP * 2 };
export const CODE_BYTES: Record<WeightScheme, number> = { q8_0: Q8_BLOCK, q4_0: Q8_BLOCK / 2, q4_1: Q8_BLOCK / 2 };
/** Byte offset of a block's first row of codes. */
export const codesAt = (s: WeightScheme) => SCALES_BYTES + MINS_BYTES[s];
export const blockBytes = (s: WeightScheme) => codesAt(s) + GROUP * CODE_BYTES[s];

/** Packs codes/scales (q4_1: and minimums) of w[N, K] (K a multiple of 32; q4_0 codes are −8..7, q4_1 0..15) into the kernel layout. */
/** Bytes of a quantized matrix [N, K] in the packed layout. */
export const packedQuantBytes = (scheme: WeightScheme, N: number, K: number) => Math.ceil(N / GROUP) * (K / Q8_BLOCK) * blockBytes(scheme);

export function packQuantWeight(scheme: WeightScheme, codes: Int8Array, scales: Float32Array, N: number, K: number, mins?: Float32Array): Uint8Array {
  if ((scheme === "q4_1") !== (mins !== undefined)) throw new Error(`internal: ${scheme} ${mins ? "has no" : "needs"} minimums`);
  const blocks = K / Q8_BLOCK, bb = blockBytes(scheme);
  const out = new Uint8Array(packedQuantBytes(scheme, N, K));
  const f = new DataView(out.buffer);
  const half = (v: number, what: string) => {
    const bits = floatToHalf(v);
    if (halfToFloat(bits) !== v) throw new Error(`${scheme} ${what} ${v} is not an f16 value`);
    return bits;
  };
  const offset = scheme === "q4_0" ? 8 : 0;
  for (let n = 0; n < N; n++) {
    const g = n >> 2, j = n & 3;
    for (let b = 0; b < blocks; b++) {
      const at = (g * blocks + b) * bb, row = n * K + b * Q8_BLOCK;
      f.setUint16(at + 2 * j, half(scales[n * blocks + b], "scale"), true);
      if (mins) f.setUint16(at + SCALES_BYTES + 2 * j, half(mins[n * blocks + b], "minimum"), true);
      const c = at + codesAt(scheme) + j * CODE_BYTES[scheme];
      if (scheme === "q8_0") for (let t = 0; t < Q8_BLOCK; t++) out[c + t] = codes[row + t] & 0xff;
      else for (let t = 0; t < 16; t++) out[c + t] = (codes[row + t] + offset) | ((codes[row + t + 16] + offset) << 4);
    }
  }
  return out;
}

// ---- scratch

/** Bytes of one thread's dequantization buffer for a kernel of input width K (gated: two groups). */
export const dequantBytes = (K: number) => 2 * GROUP * K * 4;

/** Bytes of one x row quantized by quantize_rows_q8: K/32 f32 scales, K i16 codes, K/32 i32 block sums of the codes, K i8 codes. */
export const quantRowBytes = (K: number) => (K / Q8_BLOCK) * 8 + K * 3;

/** Bytes of a gated f32 kernel's partial gate sums ([ROW_BLOCK rows, N], at most `rows`), 0 if K is one panel. */
export const gateSumsBytes = (K: number, N: number, rows: number) => (linearPanels(N, K).length > 1 ? Math.min(ROW_BLOCK, rows) * N * 4 : 0);
