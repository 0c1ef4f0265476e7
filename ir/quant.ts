// Quantization schemes: how weights become codes and scales, and what they dequantize to.
// The interpreter computes with the dequantized values, the kernels with the codes.

import { floatToHalf, halfToFloat } from "./half.js";
import type { Param } from "./types.js";

export const Q8_BLOCK = 32;

/** A quantized linear's attrs that say which of its calls take the integer path. */
export interface IntegerRowsAttrs {
  quant?: unknown;
  int_rows?: unknown;
  int_rows_relaxed?: unknown;
}

/**
 * The most rows of a call for which a linear over quantized weights (attr quant) takes the integer
 * path, in the plain SIMD128 modules or (`relaxed`) the relaxed-SIMD one: attr int_rows, in the
 * relaxed module int_rows_relaxed where it is set; Infinity without a bound; 0 without quant.
 */
export function integerRowLimit(attrs: IntegerRowsAttrs, relaxed = false): number {
  if (attrs.quant === undefined) return 0;
  const bound = relaxed && typeof attrs.int_rows_relaxed === "number" ? attrs.int_rows_relaxed : attrs.int_rows;
  return typeof bound === "number" ? bound : Infinity;
}

/**
 * Whether a linear over quantized weights quantizes the x rows of a call of `rows` rows to q8_0
 * and takes integer dot products: when the call has at most integerRowLimit rows. Larger calls
 * multiply f32 x by the dequantized weights. (quantize-weights sets int_rows, and
 * int_rows_relaxed for the relaxed module's 8-bit dot products, where codegen's tuning has the
 * dequantized path faster on many rows.) The interpreter follows the module it is the reference
 * of (Session.relaxed).
 */
export const integerPath = (attrs: IntegerRowsAttrs, rows: number, relaxed = false): boolean => rows <= integerRowLimit(attrs, relaxed);

/** Rounds half away from zero, as C's roundf (Math.round rounds half up). */
const roundAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

/** Whether a quantizer also returns the dequantized values (a compile needs only codes and scales). */
export interface QuantizeOptions {
  dequant?: boolean;
}

export function quantizeQ8(w: Float32Array, N: number, K: number, { dequant: wantDequant = true }: QuantizeOptions = {}): NonNullable<Param["quant"]> & { dequant: Float32Array } {
  const blocks = K / Q8_BLOCK;
  const codes = new Int8Array(N * K), scales = new Float32Array(N * blocks), dequant = new Float32Array(wantDequant ? N * K : 0);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < blocks; b++) {
      const at = n * K + b * Q8_BLOCK;
      let amax = 0;
      for (let t = 0; t < Q8_BLOCK; t++) amax = Math.max(amax, Math.abs(w[at + t]));
      // as ggml's quantize_row_q8_0: codes from the f32 scale, the scale stored as f16
      const d = Math.fround(amax / 127), inv = d ? Math.fround(1 / d) : 0;
      const d16 = halfToFloat(floatToHalf(d));
      scales[n * blocks + b] = d16;
      for (let t = 0; t < Q8_BLOCK; t++) {
        const q = Math.max(-127, Math.min(127, roundAway(Math.fround(w[at + t] * inv))));
        codes[at + t] = q;
        if (wantDequant) dequant[at + t] = Math.fround(q * d16);
      }
    }
  return { scheme: "q8_0", codes, scales, dequant };
}


export const Q4_BLOCK = 32;

/**
 * Q4_0 as ggml's quantize_row_q4_0_ref, per block of 32 along a row: d = m / −8 where m is the
 * block's value of largest magnitude (the first, on a tie), codes q = min(15, trunc(w / d + 8.5))
 * ∈ 0..15 computed with the f32 scale, the scale stored as f16; values dequantize to (q − 8)·d.
 * (Not a compile scheme: GGUF export writes it, GGUF import reads it.)
 */
export function quantizeQ4_0(w: Float32Array, N: number, K: number, { dequant: wantDequant = true }: QuantizeOptions = {}): { scheme: "q4_0"; codes: Uint8Array; scales: Float32Array; dequant: Float32Array } {
  const f = Math.fround, blocks = K / Q4_BLOCK;
  const codes = new Uint8Array(N * K), scales = new Float32Array(N * blocks), dequant = new Float32Array(wantDequant ? N * K : 0);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < blocks; b++) {
      const at = n * K + b * Q4_BLOCK;
      let amax = 0, max = 0;
      for (let t = 0; t < Q4_BLOCK; t++)
        if (amax < Math.abs(w[at + t])) {
          amax = Math.abs(w[at + t]);
          max = w[at + t];
        }
      const d = f(max / -8), inv = d ? f(1 / d) : 0;
      const d16 = halfToFloat(floatToHalf(d));
      scales[n * blocks + b] = d16;
      for (let t = 0; t < Q4_BLOCK; t++) {
        const q = Math.min(15, Math.trunc(f(f(w[at + t] * inv) + 8.5)));
        codes[at + t] = q;
        if (wantDequant) dequant[at + t] = f((q - 8) * d16);
      }
    }
  return { scheme: "q4_0", codes, scales, dequant };
}

/**
 * Q4_1 as ggml's quantize_row_q4_1_ref, per block of 32 along a row: d = (max − min) / 15,
 * codes q = min(15, trunc((w − min) / d + 0.5)) ∈ 0..15 computed with the f32 scale and minimum,
 * both stored as f16; values dequantize to q·d + min (5 bits a weight: the minimum is the
 * block's, so one-signed blocks keep their range).
 */
export function quantizeQ4_1(w: Float32Array, N: number, K: number, { dequant: wantDequant = true }: QuantizeOptions = {}): { scheme: "q4_1"; codes: Int8Array; scales: Float32Array; mins: Float32Array; dequant: Float32Array } {
  const f = Math.fround, blocks = K / Q4_BLOCK;
  const codes = new Int8Array(N * K), scales = new Float32Array(N * blocks), mins = new Float32Array(N * blocks), dequant = new Float32Array(wantDequant ? N * K : 0);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < blocks; b++) {
      const at = n * K + b * Q4_BLOCK;
      let lo = Infinity, hi = -Infinity;
      for (let t = 0; t < Q4_BLOCK; t++) {
        lo = Math.min(lo, w[at + t]);
        hi = Math.max(hi, w[at + t]);
      }
      const d = f(f(hi - lo) / 15), inv = d ? f(1 / d) : 0;
      const d16 = halfToFloat(floatToHalf(d)), m16 = halfToFloat(floatToHalf(lo));
      scales[n * blocks + b] = d16;
      mins[n * blocks + b] = m16;
      for (let t = 0; t < Q4_BLOCK; t++) {
        const q = Math.min(15, Math.trunc(f(f(f(w[at + t] - lo) * inv) + 0.5)));
        codes[at + t] = q;
        if (wantDequant) dequant[at + t] = f(f(q * d16) + m16);
      }
    }
  return { scheme: "q4_1", codes, scales, mins, dequant };
}

/**
 * The values a quantized parameter computes with, from its codes and scales (q4_0 codes are
 * already q − 8): exactly what the quantizers return as `dequant`.
 */
export function dequantizeCodes(q: NonNullable<Param["quant"]>, N: number, K: number): Float32Array {
  const f = Math.fround, blocks = K / Q8_BLOCK, out = new Float32Array(N * K);
  for (let i = 0; i < N * blocks; i++) {
    const d = q.scales[i], m = q.mins?.[i] ?? 0;
    for (let t = i * Q8_BLOCK; t < (i + 1) * Q8_BLOCK; t++) out[t] = q.mins ? f(f(q.codes[t] * d) + m) : f(q.codes[t] * d);
  }
  return out;
}

/** Round half to even (wasm's f32.nearest). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * On-the-fly q8_0 quantization of an activation row, block by block, exactly as the kernels do
 * it in f32: d = max|x| / 127, q = nearest-even(x · (1/d)). Returns codes and per-block scales.
 */
export function quantizeRowQ8(x: ArrayLike<number>, offset: number, K: number): { codes: Int8Array; scales: Float32Array } {
  const f = Math.fround;
  const codes = new Int8Array(K), scales = new Float32Array(K / Q8_BLOCK);
  for (let b = 0; b < K / Q8_BLOCK; b++) {
    let amax = 0;
    for (let t = 0; t < Q8_BLOCK; t++) amax = Math.max(amax, Math.abs(x[offset + b * Q8_BLOCK + t]));
    const d = f(amax / 127), inv = d ? f(1 / d) : 0;
    scales[b] = d;
    for (let t = 0; t < Q8_BLOCK; t++) codes[b * Q8_BLOCK + t] = Math.max(-127, Math.min(127, roundHalfEven(f(x[offset + b * Q8_BLOCK + t] * inv))));
  }
  return { codes, scales };
}
