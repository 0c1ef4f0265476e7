// Tuning: the numbers code generation blocks its kernels by and picks their paths by. They
// change speed, never results. Each was chosen on `npm run bench` figures; docs/performance.md
// holds them and how to reproduce them, under the heading named here.

import type { QuantScheme } from "../../ir/types.js";

/** Rows of x a matrix kernel multiplies per pass over the weights. performance.md § Row block (prefill_time). */
export const ROW_BLOCK = 64;

/** Rows of a matrix kernel's f32 tile (2 rows × 4 outputs in 8 accumulators). performance.md § Tile (linear_KxN_gemm_gflops). */
export const TILE_ROWS = 2;

/** Most k's of an f32 weight panel (K > PANEL is stored in panels). performance.md § K panels (linear_KxN_gemv_bandwidth). */
export const PANEL = 512;

/** Calls of at most this many rows run an f32 kernel panel by panel over all groups. performance.md § K panels. */
export const STREAM_ROWS = 4;

/** Panels start a multiple of this many floats plus one group's panel apart (L2 set skew). performance.md § Panel skew (linear_768x768_gemm_gflops). */
export const SKEW_PERIOD = 65536 / 4;

/** Multiply-adds below which a kernel call runs on the calling thread alone. performance.md § Threads (decode_speedup_vs_1_thread_paired). */
export const MIN_PARALLEL_MACS = 1 << 16;

/**
 * A threaded call's work units are cut into this many chunks per thread, claimed one at a time: a
 * thread that is descheduled or slow leaves its unclaimed chunks to the others. performance.md § Threads.
 */
export const CHUNKS_PER_THREAD = 4;

/**
 * Most rows of a call for which a linear over quantized weights takes integer dot products on
 * x quantized to q8_0 (more rows: f32 x on dequantized weights), in the plain SIMD128 modules and
 * in the relaxed-SIMD one (8-bit dot products on 4-bit weights). performance.md § Integer path
 * (linear_KxN_gemm_gflops_integer_path against _dequantized_path, --prefill 4, 16, 128).
 */
export const INTEGER_MAX_ROWS: Readonly<Record<QuantScheme, number>> = { q8_0: 16, q4_0: 16, q4_1: 3 };
/**
 * In the relaxed module 4-bit weights take the integer path up to 512 rows at every K (q4_0
 * 1.04–1.68× the dequantized path at 16–512 rows, q4_1 0.93–1.60×, most shapes 1.2–1.5×;
 * performance.md § The relaxed module); the bound keeps x's quantized rows, which share one
 * memory layout with the plain module, at 512 rows of a call. q8_0 has no 8-bit dot product
 * there (its codes need the i16 one) and keeps the plain bounds.
 */
export const INTEGER_MAX_ROWS_RELAXED: Readonly<Record<QuantScheme, number>> = { q8_0: 16, q4_0: 512, q4_1: 512 };

/** Input widths up to which the integer path runs at every row count, in every module. performance.md § Integer path (the same rows, --prefill 48 and 128). */
export const INTEGER_ALL_ROWS_MAX_K: Readonly<Record<QuantScheme, number>> = { q8_0: 1024, q4_0: 0, q4_1: 0 };

/**
 * The int_rows (`relaxed`: int_rows_relaxed) quantize-weights gives a linear over `scheme` weights
 * of input width K: its largest integer-path call, or undefined where the integer path runs at
 * every row count.
 */
export function integerRowBound(scheme: QuantScheme, K: number, relaxed = false): number | undefined {
  return K <= INTEGER_ALL_ROWS_MAX_K[scheme] ? undefined : (relaxed ? INTEGER_MAX_ROWS_RELAXED : INTEGER_MAX_ROWS)[scheme];
}
