// LinearPlan: what a linear kernel's generator decides before it emits code — the weight layout
// it reads, the path a call takes by its row count, and the epilogue.

import { type IntegerRowsAttrs, Q8_BLOCK, integerRowLimit } from "../../../ir/quant.js";
import { integerRowBound } from "../tuning.js";
import { GROUP, type Panel, type WeightScheme, blockBytes, linearPanels, quantRowBytes } from "./layout.js";

export interface LinearEpilogue {
  bias: boolean;
  /** An activation applied after the bias: gelu, gelu_tanh, silu or relu (gated: to the gate). */
  act?: string;
  /**
   * Gated (gated_linear): the kernel reads two weights, the gate's at `w` and the up
   * projection's at `b` (no bias), and writes act(x·wgᵀ) ⊙ (x·wuᵀ).
   */
  gated?: boolean;
  /**
   * Address of each row's fused-norm factors (fuse-norm). RMSNorm: one f32 a row, the sums are
   * scaled by it first. LayerNorm (`ln`): (mean, factor) pairs, the sums become
   * (sums − mean · rowsum)·factor, the weights' row sums read after the N biases.
   */
  normAt?: number;
  ln?: boolean;
  /** A tensor [rows, N] added last. */
  residual: boolean;
  /** Gated f32 kernels of more than one panel: where the gate's partial sums wait (gateSumsBytes). */
  gateSumsAt?: number;
}

/** Where quantized kernels find the quantized x rows, and the threads' dequantization buffers (MAX_THREADS × dequantBytes(K) at least). */
export interface QuantScratch {
  xq: number;
  dq: number;
}

/** What a lowering asks for: y[rows, N] = x[rows, K] · w[N, K]ᵀ through the epilogue. */
export interface LinearSpec {
  K: number;
  N: number;
  epilogue: LinearEpilogue;
  /** Quantized weights, with the scratch their paths use and the integer path's row bound. */
  quant?: WeightScheme;
  scratch?: QuantScratch;
  intRows?: number;
}

/**
 * A kernel's plan. A call runs one path, chosen at run time by its row count:
 * - quantized weights: `rows ≤ intRows` integer dot products on x quantized to q8_0
 *   (integer.ts), else each weight group dequantized once per row block (dequantize.ts) under
 *   the f32 tiles;
 * - f32 weights: one row with `paired`, two groups at once (pair-tile.ts); `rows ≤ STREAM_ROWS`
 *   with `streamed`, panel by panel over all groups; else group by group, all panels of a group
 *   into the same accumulators (f32-tile.ts).
 * Every path ends in the epilogue (epilogue.ts).
 */
export interface LinearPlan {
  /** The generated function's name (one function per name; the scratch addresses are the module's). */
  readonly name: string;
  readonly K: number;
  readonly N: number;
  /** K without its K % 4 tail, and the tail. */
  readonly K4: number;
  readonly Kt: number;
  readonly quant?: WeightScheme;
  readonly scratch?: QuantScratch;
  readonly intRows: number;
  /** The K ranges read in one pass each: one for quantized weights (read whole, dequantized whole). */
  readonly panels: readonly Panel[];
  /** Bytes of one group of 4 weight rows (f32 groups of one panel: of the only panel). */
  readonly groupBytes: number;
  /** Bytes of one x row quantized by quantize_rows_q8. */
  readonly rowBytesQ: number;
  /** Full groups of 4 outputs, and the outputs of the partial group after them. */
  readonly full: number;
  readonly part: number;
  /** One-row calls read full groups in pairs (plain f32, panels of multiples of 8, two groups at least). */
  readonly paired: boolean;
  /** Calls of at most STREAM_ROWS rows run panel by panel (several panels, or paired). */
  readonly streamed: boolean;
  readonly epilogue: LinearEpilogue & { gated: boolean; ln: boolean };
}

/** int_rows of a linear whose every call takes the integer path: more rows than any context. */
export const ALL_ROWS = 2 ** 30;

/** The most rows of a call for which a linear takes integer dot products in the plain or the `relaxed` module (ir/quant.ts integerRowLimit; ALL_ROWS for every call). */
export const integerRows = (attrs: IntegerRowsAttrs, relaxed = false): number => Math.min(integerRowLimit(attrs, relaxed), ALL_ROWS);

export function planLinear({ K, N, epilogue, quant, scratch, intRows = ALL_ROWS }: LinearSpec): LinearPlan {
  const { bias, act, residual, gated = false, normAt, ln = false, gateSumsAt } = epilogue;
  if (quant && K % Q8_BLOCK) throw new Error(`${quant} needs K a multiple of ${Q8_BLOCK}, got ${K}`);
  if (quant && !scratch) throw new Error("internal: a quantized kernel needs its scratch addresses");
  if (gated && (bias || !act || (!quant && K % 4))) throw new Error("internal: a gated kernel has an activation, no bias, and K a multiple of 4");
  if (ln && (gated || !bias || normAt === undefined)) throw new Error("internal: a fused LayerNorm needs a plain linear with its [2, N] bias and the factors' address");
  const panels = quant ? [{ k0: 0, size: K, at: 0, index: 0, last: true }] : linearPanels(N, K);
  if (gated && panels.length > 1 && gateSumsAt === undefined) throw new Error("internal: a gated kernel of several panels needs its gate sums' scratch");
  const Kt = K % 4;
  const full = N >> 2;
  const paired = !quant && !gated && Kt === 0 && panels.every((p) => p.size % 8 === 0) && full > 1;
  const defaultRows = quant ? (integerRowBound(quant, K) ?? ALL_ROWS) : undefined;
  const norm = normAt !== undefined ? (ln ? "_ln" : "_rms") : "";
  const scheme = quant ? `_${quant}${intRows === defaultRows ? "" : `_i${intRows}`}` : "";
  return {
    name: `${gated ? "gated" : "linear"}_k${K}_n${N}${norm}${scheme}${bias ? "_bias" : ""}${act ? `_${act}` : ""}${residual ? "_res" : ""}`,
    K,
    N,
    K4: K - Kt,
    Kt,
    quant,
    scratch,
    intRows,
    panels,
    groupBytes: quant ? (K / Q8_BLOCK) * blockBytes(quant) : GROUP * K * 4,
    rowBytesQ: quantRowBytes(K),
    full,
    part: N % 4,
    paired,
    streamed: panels.length > 1 || paired,
    epilogue: { bias, act, residual, gated, normAt, ln, gateSumsAt },
  };
}
