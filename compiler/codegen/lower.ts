// Lowerings: one function per IR op, turning a node into calls on kernels. Keyed by OpKind,
// so an op without a lowering is a type error.

import { type OpKind, type OpNode, type RopeAttrs, isOp, operandOf, ropeTable, sinusoidTable } from "../../ir/ops.js";
import { bucketTable } from "../../ir/relpos.js";
import { type Node, rowWidth } from "../../ir/types.js";
import { attentionRows, attentionRowsScratch, generatedAttentionFits } from "./attention.js";
import { disentangledConstants, disentangledScratch, lowerDisentangledAttention } from "./disentangled-attention.js";
import { type QuantScratch, dequantBytes, gateSumsBytes, integerRows, linearKernel, linearPanels, linearUnits, panelStride, planLinear, quantRowBytes } from "./linear/index.js";
import { mapKernel, vtanh } from "./vmath.js";
import { type Expr, type WasmModule, createType, i32, none, v128 } from "./wasm.js";

export interface LowerCtx {
  readonly wm: WasmModule;
  readonly context: number;
  node(id: number): Node;
  /** Address of a node's buffer (a parameter's weights, an input, an activation)... */
  address(id: number): number;
  /** ...as an i32 constant. */
  ptr(id: number): Expr;
  /** Run-time row count of a node's tensor. */
  rows(id: number): Expr;
  /** Static width: product of all dims after the first. */
  width(id: number): number;
  /** rows × width. */
  count(id: number): Expr;
  past(): Expr;
  /** Whether a parameter is stored only in the packed matrix layout (linear/layout.ts). */
  packed(id: number): boolean;
  /** Address of a parameter's packed matrix layout. */
  packedWeight(id: number): Expr;
  /** Address of a constant i32 table stored with the weights. */
  constant(key: string): number;
  /** The KV cache of a cached attention node. */
  cache(id: number): KvCache;
  /** Address of a scratch area this node's lowering declared (Lowering.scratch). */
  scratch(area: ScratchArea): number;
  /**
   * Whether scratch `area` must be (re)computed for `key` (and records that it will hold it):
   * false when the previous kernel of this function already left it there, e.g. q, k and v
   * projections of one input share its quantized rows and norm factors.
   */
  fresh(area: ScratchArea, key: string): boolean;
}

/**
 * A KV cache: `rows` rows of keys and values. A sliding window's cache is a ring buffer of fewer
 * rows than the context: position j sits at row j − base, base (an i32 at address `base`) the
 * positions dropped so far. When a call's rows would not fit, the last `keep` rows (the first
 * query's window, and REWIND_ROWS more that a rewind may return to) move to the front; so a call
 * takes at most rows − keep rows (the runtime splits longer prompts).
 */
export interface KvCache {
  k: number;
  v: number;
  kWidth: number;
  vWidth: number;
  /** Bytes a value: 4 (f32), 2 (bf16, attention attr kv_dtype). */
  bytes: 2 | 4;
  rows: number;
  window?: number;
  keep?: number;
  base?: number;
}

/** Positions a ring buffer keeps beyond the window, so that rewinding that many (a rejected speculative draft) never needs dropped keys. */
export const REWIND_ROWS = 32;

/** Rows of a KV cache: the context, or a ring of two windows and REWIND_ROWS where that is shorter. */
export const ringRows = (context: number, window: number | undefined) => (window ? Math.min(context, 2 * window + REWIND_ROWS) : context);

/**
 * Scratch areas, in the order the memory planner lays them out. Each is one buffer shared by
 * every call that uses it, as large as the largest need declared: fused norms' per-row
 * factors, decode attention's partial results, x rows quantized to q8_0, each thread's
 * dequantized weight groups, gated kernels' partial gate sums.
 */
export const SCRATCH_AREAS = ["norms", "attention", "xq", "dq", "gateSums"] as const;
export type ScratchArea = (typeof SCRATCH_AREAS)[number];

/** What a node's scratch needs may depend on. */
export interface ScratchQuery {
  node(id: number): Node;
  /** The most rows of any call. */
  context: number;
  /** Threads a kernel may run on, each with its own part of per-thread scratch. */
  threads: number;
}

/** Bytes of each area a call needs; an area named is planned (even at 0 bytes: its address is in the code). */
export type ScratchNeeds = Partial<Record<ScratchArea, number>>;

/** The lowering of a node of op K. */
export type Lowering<K extends OpKind = OpKind> = ((c: LowerCtx, n: OpNode<K>) => Expr[]) & {
  /** The scratch the lowering's calls use, declared beside it; none where absent. */
  scratch?: (n: OpNode<K>, q: ScratchQuery) => ScratchNeeds;
};

/** A lowering and the scratch it declares. */
const withScratch = <K extends OpKind>(scratch: NonNullable<Lowering<K>["scratch"]>, lower: (c: LowerCtx, n: OpNode<K>) => Expr[]): Lowering<K> => Object.assign(lower, { scratch });

const unsupported = (why: string) => (_c: LowerCtx, n: Node): Expr[] => {
  throw new Error(`cannot lower ${n.op} (%${n.id}): ${why}`);
};
const elementwise = (kernel: "gelu" | "gelu_tanh" | "silu" | "relu") => (c: LowerCtx, n: Node) => [c.wm.callLib(kernel, { x: c.ptr(n.args[0]), out: c.ptr(n.id), n: c.count(n.id) })];
const binary = (kernel: "add" | "mul") => (c: LowerCtx, n: Node) => {
  const [a, b] = n.args;
  const shape = c.node(b).type.shape;
  // b repeats over a when it is smaller (a bias or gain broadcast over rows)
  const bn = shape.every((d) => typeof d === "number") ? c.wm.c32((shape as number[]).reduce((x, y) => x * y, 1)) : c.count(b);
  return [c.wm.callLib(kernel, { a: c.ptr(a), b: c.ptr(b), out: c.ptr(n.id), n: c.count(n.id), bn })];
};

/** The key of a rope node's cos/sin table (`long`: longrope's table for sequences past `original`). */
function ropeKey(a: RopeAttrs, context: number, long = false): string {
  const { head_dim: hd, theta, ...scaling } = a;
  return `rope_${hd}_${theta}_${context}` + (a.scaling ? `_${JSON.stringify(scaling)}${long ? "_long" : ""}` : "");
}

/** The key of the sinusoidal position table of width dim for positions 0..context-1. */
const sinusoidKey = (dim: number, context: number) => `sinusoid_${dim}_${context}`;

/** Constant tables a node's lowering reads (stored with the weights). */
export function constantsOf(n: Node, context: number): { key: string; data: () => Int32Array }[] {
  if (isOp(n, "sinusoidal_positions")) return [{ key: sinusoidKey(n.attrs.dim, context), data: () => new Int32Array(sinusoidTable(0, context, n.attrs.dim).buffer) }];
  if (isOp(n, "rope")) {
    // cos and sin of every position's angles, computed once here instead of per row and call
    const table = (long: boolean) => ({ key: ropeKey(n.attrs, context, long), data: () => new Int32Array(ropeTable(context, n.attrs, long).buffer) });
    return n.attrs.scaling === "longrope" ? [table(false), table(true)] : [table(false)];
  }
  if (isOp(n, "disentangled_attention")) return disentangledConstants(n, context);
  if (!isOp(n, "attention") || !n.attrs.bias) return [];
  const [bi, nb, md] = [n.attrs.bias_bidirectional!, n.attrs.bias_buckets!, n.attrs.bias_max_distance!];
  // bucket of every key-minus-query distance in [-context, context]
  return [{ key: `buckets_${bi ? "bi" : "causal"}_${nb}_${md}_${context}`, data: () => bucketTable(context, bi, nb, md) }];
}

/**
 * Decode (one query row) splits the keys into at most this many chunks (work units, which
 * threads split; at least 32 keys a chunk: kernels.ts decodeChunks), whose partial softmax
 * results attention_merge combines: flash-decoding. The split depends on the number of keys
 * only, never on the thread count, so neither do the results.
 */
export const ATTENTION_CHUNKS = 16;
/** Each chunk's per-head slot: (m, l, ·, ·, o[dv]) in whole vectors and 16 weights (attention.ts partFloats). */
export const attentionPartBytes = (heads: number, dv: number) => ATTENTION_CHUNKS * heads * (4 + ((dv + 3) & ~3) + 16) * 4;

type MatrixNode = OpNode<"linear"> | OpNode<"gated_linear">;

/** The scheme of a weight stored quantized (attr quant of its parameter), or undefined. */
function schemeOf(w: Node) {
  return isOp(w, "param") ? w.attrs.quant : undefined;
}

/** A matrix kernel's weight [N, K] (gated: the gate's) and its scheme. */
function matrixOf(node: (id: number) => Node, n: MatrixNode) {
  const w = node(operandOf(n, "weight")!);
  const [N, K] = w.type.shape as number[];
  return { N, K, quant: schemeOf(w) };
}

/** The eps of a LayerNorm fused into a linear (attr ln_eps, from fuse-norm). */
const lnEps = (n: MatrixNode) => (isOp(n, "linear") ? n.attrs.ln_eps : undefined);

/**
 * linear and gated_linear: a fused norm's per-row factors (RMSNorm one f32, LayerNorm a (mean,
 * factor) pair); quantized weights: x's rows quantized for the integer path, and each thread's
 * dequantized groups; gated f32 kernels over several K panels: the gate's partial sums.
 */
function matrixScratch(n: MatrixNode, q: ScratchQuery): ScratchNeeds {
  const { N, K, quant } = matrixOf(q.node, n);
  const needs: ScratchNeeds = {};
  if (lnEps(n) !== undefined) needs.norms = q.context * 8;
  else if (n.attrs.rms_eps !== undefined) needs.norms = q.context * 4;
  if (quant) {
    // (the modules share one memory layout: room for the larger of their integer-path calls)
    needs.xq = Math.min(Math.max(integerRows(n.attrs), integerRows(n.attrs, true)), q.context) * quantRowBytes(K);
    needs.dq = q.threads * dequantBytes(K);
  } else if (n.op === "gated_linear" && linearPanels(N, K).length > 1) needs.gateSums = gateSumsBytes(K, N, q.context);
  return needs;
}

/** A fused norm's per-row factors (attr rms_eps or ln_eps, from fuse-norm): where the kernel finds them. */
const normAt = (c: LowerCtx, n: MatrixNode) => (n.attrs.rms_eps === undefined && lnEps(n) === undefined ? undefined : c.scratch("norms"));
/** ...computed on the calling thread before the kernel runs: RMSNorm factors, or LayerNorm (mean, factor) pairs. */
function rowNorm(c: LowerCtx, n: MatrixNode, x: number, K: number): Expr[] {
  const ln = lnEps(n);
  const [kernel, eps] = ln !== undefined ? (["row_mean_inv", ln] as const) : (["row_rms_inv", n.attrs.rms_eps] as const);
  if (eps === undefined || !c.fresh("norms", `${x}:${kernel}:${eps}`)) return [];
  return [c.wm.callLib(kernel, { x: c.ptr(x), out: c.wm.c32(c.scratch("norms")), rows: c.rows(n.id), D: c.wm.c32(K), eps: c.wm.cf32(eps) })];
}

/** Where a quantized kernel finds x's quantized rows and its threads' dequantization buffers. */
const quantScratch = (c: LowerCtx): QuantScratch => ({ xq: c.scratch("xq"), dq: c.scratch("dq") });

/** Calls of a quantized kernel with few rows take integer dot products on x quantized into the scratch area first. */
function quantizeRows(c: LowerCtx, n: MatrixNode, x: number, K: number, quant: string | undefined): Expr[] {
  // x's quantized rows are there only in calls within the bound of the kernel that wrote them: a
  // kernel of another bound (another scheme reading the same x) quantizes them again
  const bound = integerRows(n.attrs, c.wm.relaxed);
  if (!quant || !c.fresh("xq", `${x}:${bound}`)) return [];
  const m = c.wm.m;
  return [m.if(m.i32.le_s(c.rows(n.id), c.wm.c32(bound)), c.wm.callLib("quantize_rows_q8", { x: c.ptr(x), out: c.wm.c32(c.scratch("xq")), rows: c.rows(n.id), K: c.wm.c32(K) }))];
}

/**
 * RoBERTa's positions (ids, out, rows, past, pad, sequences): pad for a padding id, else pad +
 * past + the non-padding ids so far (of the row's sequence where `sequences` is an address of
 * packed sequences' bounds, not 0), a generated scalar loop.
 */
function paddedPositions(wm: WasmModule): string {
  return wm.ensure("padded_positions", () => {
    const m = wm.m;
    const [IDS, OUT, ROWS, PAST, PAD, SEQ, I, SEEN, ID] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const get = (l: number) => m.local.get(l, i32);
    const at = (base: number) => m.i32.add(get(base), m.i32.shl(get(I), m.i32.const(2)));
    const body = m.block(null, [
      m.local.set(SEEN, m.i32.const(0)),
      wm.loop("padded_positions", I, m.i32.const(0), () => get(ROWS), 1, [
        // a sequence's first row counts from 0 again
        m.if(m.i32.and(m.i32.ne(get(SEQ), m.i32.const(0)), m.i32.eq(m.i32.load(0, 4, m.i32.add(get(SEQ), m.i32.shl(get(I), m.i32.const(3)))), get(I))), m.local.set(SEEN, m.i32.const(0))),
        m.local.set(ID, m.i32.load(0, 4, at(IDS))),
        m.local.set(SEEN, m.i32.add(get(SEEN), m.i32.ne(get(ID), get(PAD)))),
        m.i32.store(0, 4, at(OUT), m.select(m.i32.eq(get(ID), get(PAD)), get(PAD), m.i32.add(m.i32.add(get(PAD), get(PAST)), get(SEEN)))),
      ]),
    ]);
    m.addFunction("padded_positions", createType([i32, i32, i32, i32, i32, i32]), none, [i32, i32, i32], body);
  });
}

/**
 * Packed sequences' rows (the i32 pairs at `sequences` give row i's sequence, first_i its first
 * row), generated loops: `sequence_positions(out, rows, sequences, offset)` writes the positions
 * offset + i − first_i as i32; `sequence_rows(table, out, rows, sequences, offset, bytes)` copies
 * row offset + i − first_i of a table of rows of `bytes` (a position table's), and
 * `first_rows(x, out, rows, sequences, 0, bytes)` row first_i of x.
 */
function sequenceRows(wm: WasmModule, rowsOf?: "table" | "first"): string {
  const name = rowsOf === "first" ? "first_rows" : rowsOf ? "sequence_rows" : "sequence_positions";
  return wm.ensure(name, () => {
    const m = wm.m;
    const [TABLE, OUT, ROWS, SEQ, OFFSET, BYTES] = rowsOf ? [0, 1, 2, 3, 4, 5] : [-1, 0, 1, 2, 3, -1];
    const I = rowsOf ? 6 : 4;
    const get = (l: number) => m.local.get(l, i32);
    const first = () => m.i32.load(0, 4, m.i32.add(get(SEQ), m.i32.shl(get(I), m.i32.const(3))));
    const row = () => (rowsOf === "first" ? first() : m.i32.sub(m.i32.add(get(OFFSET), get(I)), first()));
    const body = wm.loop(name, I, m.i32.const(0), () => get(ROWS), 1, [
      rowsOf
        ? m.memory.copy(m.i32.add(get(OUT), m.i32.mul(get(I), get(BYTES))), m.i32.add(get(TABLE), m.i32.mul(row(), get(BYTES))), get(BYTES))
        : m.i32.store(0, 4, m.i32.add(get(OUT), m.i32.shl(get(I), m.i32.const(2))), row()),
    ]);
    m.addFunction(name, createType(Array<number>(rowsOf ? 6 : 4).fill(i32)), none, [i32], body);
  });
}

/** An image's patches as rows (x, out, C, H, W, size), in patches' order: one memory.copy per patch row of `size` pixels, a generated loop. */
function patchRows(wm: WasmModule): string {
  return wm.ensure("patch_rows", () => {
    const m = wm.m;
    const [X, OUT, C, H, W, P, ROWS, COLS, I, J, CH, U, DST] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const get = (l: number) => m.local.get(l, i32);
    // x[c, i·size + u, j·size ..] at x + ((c·H + i·size + u)·W + j·size)·4; the rows are written in order
    const from = m.i32.add(get(X), m.i32.shl(m.i32.add(m.i32.mul(m.i32.add(m.i32.mul(get(CH), get(H)), m.i32.add(m.i32.mul(get(I), get(P)), get(U))), get(W)), m.i32.mul(get(J), get(P))), m.i32.const(2)));
    const bytes = () => m.i32.shl(get(P), m.i32.const(2));
    const copy = [m.memory.copy(get(DST), from, bytes()), m.local.set(DST, m.i32.add(get(DST), bytes()))];
    const body = m.block(null, [
      m.local.set(ROWS, m.i32.div_u(get(H), get(P))),
      m.local.set(COLS, m.i32.div_u(get(W), get(P))),
      m.local.set(DST, get(OUT)),
      wm.loop("patch_i", I, m.i32.const(0), () => get(ROWS), 1, [
        wm.loop("patch_j", J, m.i32.const(0), () => get(COLS), 1, [
          wm.loop("patch_c", CH, m.i32.const(0), () => get(C), 1, [wm.loop("patch_u", U, m.i32.const(0), () => get(P), 1, copy)]),
        ]),
      ]),
    ]);
    m.addFunction("patch_rows", createType([i32, i32, i32, i32, i32, i32]), none, [i32, i32, i32, i32, i32, i32, i32], body);
  });
}

/**
 * `to_bf16(dst, src, n)`: n f32 values at src (a multiple of 8: a bf16 cache's head sizes are)
 * rounded to bfloat16 (ties to even; a NaN stays a quiet NaN) and stored at dst, 2 bytes each,
 * each 8 values x0..x7 as x0 x4 x1 x5 x2 x6 x3 x7: the attention kernels load 8 and widen them
 * in order with two bit operations (kernels/attention.ts).
 */
function toBf16(wm: WasmModule): string {
  return wm.ensure("to_bf16", () => {
    const m = wm.m;
    const [DST, SRC, N, I, X0, X1] = [0, 1, 2, 3, 4, 5];
    const get = (l: number) => m.local.get(l, i32);
    // u + 0x7fff + ((u >> 16) & 1), whose top half is the rounded value; NaN lanes 0x7fc00000
    const round = (x: number) => {
      const u = () => m.local.get(x, v128);
      const r = m.i32x4.add(m.i32x4.add(u(), m.i32x4.splat(m.i32.const(0x7fff))), m.v128.and(m.i32x4.shr_u(u(), m.i32.const(16)), m.i32x4.splat(m.i32.const(1))));
      return m.v128.bitselect(m.i32x4.splat(m.i32.const(0x7fc00000)), r, m.f32x4.ne(u(), u()));
    };
    const src = (off: number) => m.i32.add(get(SRC), m.i32.add(m.i32.shl(get(I), m.i32.const(2)), m.i32.const(off)));
    // the top halves (bytes 2, 3 of each lane) of x0..x3 and x4..x7, interleaved
    const order = [2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31];
    const body = wm.loop("to_bf16", I, m.i32.const(0), () => get(N), 8, [
      m.local.set(X0, m.v128.load(0, 4, src(0))),
      m.local.set(X1, m.v128.load(0, 4, src(16))),
      m.v128.store(0, 2, m.i32.add(get(DST), m.i32.shl(get(I), m.i32.const(1))), m.i8x16.shuffle(round(X0), round(X1), order)),
    ]);
    m.addFunction("to_bf16", createType([i32, i32, i32]), none, [i32, v128, v128], body);
  });
}

export const lowerings = {
  input: () => [],
  param: () => [],
  positions: (c, n) => {
    const pad = n.attrs.padding_idx, seq = operandOf(n, "sequences");
    const past = n.attrs.offset ? c.wm.m.i32.add(c.past(), c.wm.c32(n.attrs.offset)) : c.past();
    if (pad !== undefined) return [c.wm.m.call(paddedPositions(c.wm), [c.ptr(n.args[0]), c.ptr(n.id), c.rows(n.id), c.past(), c.wm.c32(pad), c.wm.c32(seq === undefined ? 0 : c.address(seq))], none)];
    if (seq !== undefined) return [c.wm.m.call(sequenceRows(c.wm), [c.ptr(n.id), c.rows(n.id), c.ptr(seq), past], none)];
    return [c.wm.callLib("positions", { out: c.ptr(n.id), rows: c.rows(n.id), past })];
  },
  // rows past.. of the table of every position, computed at compile time (packed sequences: each
  // row's position in its sequence)
  sinusoidal_positions: (c, n) => {
    const m = c.wm.m, bytes = n.attrs.dim * 4, table = c.wm.c32(c.constant(sinusoidKey(n.attrs.dim, c.context)));
    const seq = operandOf(n, "sequences");
    if (seq !== undefined) return [m.call(sequenceRows(c.wm, "table"), [table, c.ptr(n.id), c.rows(n.id), c.ptr(seq), c.past(), c.wm.c32(bytes)], none)];
    const from = m.i32.add(table, m.i32.mul(c.past(), c.wm.c32(bytes)));
    return [m.memory.copy(c.ptr(n.id), from, m.i32.mul(c.rows(n.id), c.wm.c32(bytes)))];
  },
  embedding: (c, n) => {
    const args = { table: c.ptr(n.args[0]), ids: c.ptr(n.args[1]), out: c.ptr(n.id), rows: c.rows(n.id), D: c.wm.c32(c.width(n.id)) };
    // (a quantized table: a tied head's, in the quantized matrix layout)
    const t = c.node(n.args[0]);
    if (isOp(t, "param") && t.attrs.quant) return [c.wm.callLib("embedding_q", { ...args, scheme: c.wm.c32(["q8_0", "q4_0", "q4_1"].indexOf(t.attrs.quant)) })];
    if (!c.packed(n.args[0])) return [c.wm.callLib("embedding", args)];
    // (a table that is also a linear's weight: its packed layout, panels and groups of 4 rows)
    const [V, D] = c.node(n.args[0]).type.shape as number[];
    const size = linearPanels(V, D)[0].size;
    return [c.wm.callLib("embedding_packed", { ...args, panel: c.wm.c32(size), stride: c.wm.c32(panelStride(V, size)) })];
  },
  linear: withScratch<"linear">(matrixScratch, (c, n) => {
    const [x, w] = n.args;
    const b = operandOf(n, "bias"), residual = operandOf(n, "residual");
    const { N, K, quant } = matrixOf(c.node, n);
    const opt = (id: number | undefined) => (id !== undefined ? c.ptr(id) : c.wm.c32(0));
    const epilogue = { bias: b !== undefined, act: n.attrs.act, residual: residual !== undefined, normAt: normAt(c, n), ln: n.attrs.ln_eps !== undefined };
    const fn = linearKernel(c.wm, planLinear({ K, N, epilogue, quant, scratch: quant && quantScratch(c), intRows: integerRows(n.attrs, c.wm.relaxed) }));
    return [...rowNorm(c, n, x, K), ...quantizeRows(c, n, x, K, quant), c.wm.parallel(fn, [c.ptr(x), c.packedWeight(w), opt(b), opt(residual), c.ptr(n.id), c.rows(n.id)], linearUnits(N), N * K)];
  }),
  gated_linear: withScratch<"gated_linear">(matrixScratch, (c, n) => {
    const [x, wg, wu] = n.args;
    const { N, K, quant } = matrixOf(c.node, n);
    if (schemeOf(c.node(wu)) !== quant) throw new Error(`internal: gated_linear %${n.id} has weights of two schemes`);
    const gateSumsAt = !quant && linearPanels(N, K).length > 1 ? c.scratch("gateSums") : undefined;
    const epilogue = { bias: false, act: n.attrs.act, residual: false, gated: true, normAt: normAt(c, n), gateSumsAt };
    const fn = linearKernel(c.wm, planLinear({ K, N, epilogue, quant, scratch: quant && quantScratch(c), intRows: integerRows(n.attrs, c.wm.relaxed) }));
    // the up projection's weights ride in the bias slot
    return [...rowNorm(c, n, x, K), ...quantizeRows(c, n, x, K, quant), c.wm.parallel(fn, [c.ptr(x), c.packedWeight(wg), c.packedWeight(wu), c.wm.c32(0), c.ptr(n.id), c.rows(n.id)], linearUnits(N), 2 * N * K)];
  }),
  matmul: unsupported("the right operand must be a parameter (canonicalize-matmul turns that into linear)"),
  transpose: (c, n) => {
    const shape = c.node(n.args[0]).type.shape;
    if (shape.length !== 3) return unsupported("a 2-D transpose must be of a parameter (fold-transpose does it at compile time)")(c, n);
    return [c.wm.callLib("transpose_rows", { x: c.ptr(n.args[0]), out: c.ptr(n.id), rows: c.rows(n.id), A: c.wm.c32(shape[1] as number), B: c.wm.c32(shape[2] as number) })];
  },
  reshape: (c, n) => [c.wm.m.memory.copy(c.ptr(n.id), c.ptr(n.args[0]), c.wm.m.i32.mul(c.count(n.id), c.wm.c32(4)))],
  add: binary("add"),
  mul: binary("mul"),
  scale: (c, n) => [c.wm.callLib("scale", { a: c.ptr(n.args[0]), out: c.ptr(n.id), n: c.count(n.id), c: c.wm.cf32(n.attrs.by) })],
  // tanh(x / cap) · cap, a generated SIMD loop
  softcap: (c, n) => {
    const { wm } = c, m = wm.m, tanh = vtanh(wm);
    const fn = mapKernel(wm, "softcap", (x, cap) => m.f32x4.mul(m.call(tanh, [m.f32x4.div(x(), cap())], v128), cap()));
    return [m.call(fn, [c.ptr(n.args[0]), c.ptr(n.id), c.count(n.id), wm.cf32(n.attrs.cap)], none)];
  },
  layernorm: (c, n) => [c.wm.callLib("layernorm", { x: c.ptr(n.args[0]), g: c.ptr(n.args[1]), b: c.ptr(n.args[2]), out: c.ptr(n.id), rows: c.rows(n.id), D: c.wm.c32(c.width(n.id)), eps: c.wm.cf32(n.attrs.eps) })],
  rmsnorm: (c, n) => {
    // fold-norm-offset has moved any offset into the gain
    if (n.attrs.offset) throw new Error(`internal: %${n.id} rmsnorm still has an offset`);
    // groups of a row are rows of their own to the kernel
    const W = c.width(n.id), D = n.attrs.group ?? W;
    const rows = D === W ? c.rows(n.id) : c.wm.m.i32.mul(c.rows(n.id), c.wm.c32(W / D));
    return [c.wm.callLib("rmsnorm", { x: c.ptr(n.args[0]), g: c.ptr(n.args[1]), out: c.ptr(n.id), rows, D: c.wm.c32(D), eps: c.wm.cf32(n.attrs.eps) })];
  },
  gelu: elementwise("gelu"),
  gelu_tanh: elementwise("gelu_tanh"),
  silu: elementwise("silu"),
  relu: elementwise("relu"),
  softmax: (c, n) => [c.wm.callLib("softmax", { x: c.ptr(n.args[0]), out: c.ptr(n.id), rows: c.rows(n.id), D: c.wm.c32(c.width(n.id)) })],
  first_row: (c, n) => {
    const seq = operandOf(n, "sequences");
    if (seq === undefined) return [c.wm.m.memory.copy(c.ptr(n.id), c.ptr(n.args[0]), c.wm.c32(c.width(n.id) * 4))];
    return [c.wm.m.call(sequenceRows(c.wm, "first"), [c.ptr(n.args[0]), c.ptr(n.id), c.rows(n.id), c.ptr(seq), c.wm.c32(0), c.wm.c32(c.width(n.id) * 4)], none)];
  },
  last_row: (c, n) => {
    const m = c.wm.m, w = c.width(n.id) * 4;
    return [m.memory.copy(c.ptr(n.id), m.i32.add(c.ptr(n.args[0]), m.i32.mul(m.i32.sub(c.rows(n.args[0]), c.wm.c32(1)), c.wm.c32(w))), c.wm.c32(w))];
  },
  patches: (c, n) => {
    const [, C, H, W] = c.node(n.args[0]).type.shape as number[];
    return [c.wm.m.call(patchRows(c.wm), [c.ptr(n.args[0]), c.ptr(n.id), c.wm.c32(C), c.wm.c32(H), c.wm.c32(W), c.wm.c32(n.attrs.size)], none)];
  },
  // each operand's rows after the last one's
  concat: (c, n) => {
    let at = c.address(n.id);
    return n.args.map((a) => {
      const bytes = c.width(a) * (c.node(a).type.shape[0] as number) * 4;
      return c.wm.m.memory.copy(c.wm.c32((at += bytes) - bytes), c.ptr(a), c.wm.c32(bytes));
    });
  },
  slice: (c, n) => [c.wm.callLib("slice", { x: c.ptr(n.args[0]), out: c.ptr(n.id), rows: c.rows(n.id), D: c.wm.c32(c.width(n.args[0])), start: c.wm.c32(n.attrs.start), size: c.wm.c32(n.attrs.size) })],
  rope: (c, n) => {
    const { wm } = c, a = n.attrs;
    let table = wm.c32(c.constant(ropeKey(a, c.context)));
    // longrope: the long factors' table once the sequence (past + rows) is longer than `original`
    if (a.scaling === "longrope")
      table = wm.m.select(wm.m.i32.gt_s(wm.m.i32.add(c.past(), c.rows(n.id)), wm.c32(a.original!)), wm.c32(c.constant(ropeKey(a, c.context, true))), table);
    return [wm.callLib("rope", { x: c.ptr(n.args[0]), out: c.ptr(n.id), rows: c.rows(n.id), D: wm.c32(c.width(n.id)), hd: wm.c32(a.head_dim), past: c.past(), table })];
  },
  // decode's per-chunk partial results; the generated kernel's packed key blocks and row states
  attention: withScratch<"attention">((n, q) => {
    const a = n.attrs, width = (i: number) => rowWidth(q.node(n.args[i]).type.shape);
    const dk = width(0) / a.heads, dv = width(2) / a.kv_heads;
    const rows = generatedAttentionFits({ dk, dv, cap: a.softcap ?? 0, table: a.bias ? 1 : 0 }) ? q.threads * attentionRowsScratch(dk, dv, q.context) : 0;
    return { attention: Math.max(attentionPartBytes(a.heads, dv), rows) };
  }, (c, n) => {
    const { wm } = c;
    const m = wm.m;
    const a = n.attrs;
    const [q, k, v] = n.args;
    const H = a.heads, Hkv = a.kv_heads;
    const dk = c.width(q) / H, dv = c.width(v) / Hkv;
    const pre: Expr[] = [];
    let kp = c.ptr(k), vp = c.ptr(v), L = c.rows(k);
    const bf16 = a.kv_dtype === "bf16";
    if (a.cache) {
      // append this call's keys/values at rows past.. of the cache (rounded to bf16 where the
      // cache holds bf16), then attend over all of it
      const cache = c.cache(n.id);
      const [kw, vw] = [c.width(k) * cache.bytes, c.width(v) * cache.bytes];
      // a ring buffer holds positions base.. at its rows 0..; a plain cache has base 0
      const base = () => m.i32.load(0, 4, wm.c32(cache.base!));
      if (cache.base !== undefined) {
        // when this call's rows would not fit, the last `keep` positions move to the front: base
        // becomes past − keep
        const keep = () => m.i32.sub(c.past(), wm.c32(cache.keep!));
        const move = (at: number, width: number) => m.memory.copy(wm.c32(at), m.i32.add(wm.c32(at), m.i32.mul(m.i32.sub(keep(), base()), wm.c32(width))), wm.c32(cache.keep! * width));
        pre.push(m.if(m.i32.gt_s(m.i32.sub(m.i32.add(c.past(), c.rows(k)), base()), wm.c32(cache.rows)),
          m.block(null, [move(cache.k, kw), move(cache.v, vw), m.i32.store(0, 4, wm.c32(cache.base), keep())])));
      }
      const ring = cache.base !== undefined;
      const row = () => (ring ? m.i32.sub(c.past(), base()) : c.past());
      const at = (addr: number, width: number) => m.i32.add(wm.c32(addr), m.i32.mul(row(), wm.c32(width)));
      const append = (to: Expr, from: number) => {
        const values = m.i32.mul(c.rows(from), wm.c32(c.width(from)));
        return bf16 ? m.call(toBf16(wm), [to, c.ptr(from), values], none) : m.memory.copy(to, c.ptr(from), m.i32.shl(values, wm.c32(2)));
      };
      pre.push(append(at(cache.k, kw), k), append(at(cache.v, vw), v));
      // key j at kp + j·width: the kernels index by position
      kp = ring ? m.i32.sub(wm.c32(cache.k), m.i32.mul(base(), wm.c32(kw))) : wm.c32(cache.k);
      vp = ring ? m.i32.sub(wm.c32(cache.v), m.i32.mul(base(), wm.c32(vw))) : wm.c32(cache.v);
      L = m.i32.add(c.past(), c.rows(k));
    }
    // the configuration, as numbers: one pair of kernels per distinct one
    let table = 0, buckets = 0, range = 0, mask = 0, sequences = 0;
    const biasTable = operandOf(n, "bias"), maskAt = operandOf(n, "mask"), sequencesAt = operandOf(n, "sequences");
    if (biasTable !== undefined) {
      table = c.address(biasTable);
      range = c.context;
      buckets = c.constant(constantsOf(n, c.context)[0].key);
    }
    if (maskAt !== undefined) mask = c.address(maskAt);
    if (sequencesAt !== undefined) sequences = c.address(sequencesAt);
    const scale = a.scale, causal = a.causal ? 1 : 0, window = a.window ?? 0, cap = a.softcap ?? 0;
    const fits = generatedAttentionFits({ dk, dv, cap, table });
    if (sequences && !fits) throw new Error(`internal: attention %${n.id} takes packed sequences but the generated kernel does not run it`);
    if (bf16 && !fits) throw new Error(`internal: attention %${n.id} has a bf16 cache but the generated kernel does not run it`);
    const key = [H, Hkv, dk, dv, scale, causal, window, cap, table, buckets, range, mask, ...(sequences ? [sequences] : []), ...(bf16 ? ["bf16"] : [])].join("_").replace(/[^0-9a-z_]/gi, "_");
    const head = () => ({ H: wm.c32(H), Hkv: wm.c32(Hkv), dk: wm.c32(dk), dv: wm.c32(dv), scale: wm.cf32(scale), cap: wm.cf32(cap) });
    const extras = () => ({ table: wm.c32(table), buckets: wm.c32(buckets), range: wm.c32(range), mask: wm.c32(mask) });
    // kernels of the parallel signature (q, k, v, L, out, rows, from, to, thread): more query
    // rows split the heads; one query row (decode) splits the keys
    const p = (k: number) => m.local.get(k, i32);
    const kernel = (name: string, body: () => Expr) =>
      wm.ensure(name, () => m.addFunction(name, createType(Array<number>(9).fill(i32)), none, [], body()));
    // the queries are the last `rows` of the L positions
    const byHeads = fits
      ? attentionRows(wm, { H, Hkv, dk, dv, scale, causal: !!causal, window, mask, sequences, scratch: c.scratch("attention"), context: c.context, kvBytes: bf16 ? 2 : 4 }, key)
      : kernel(`attention_${key}`, () => wm.callLib("attention", { q: p(0), k: p(1), v: p(2), out: p(4), rows: p(5), L: p(3), q0: m.i32.sub(p(3), p(5)), ...head(), causal: wm.c32(causal), window: wm.c32(window), ...extras(), h0: p(6), h1: p(7) }));
    // the first key the last of L positions sees: 0, or the window's first
    const first = (L: () => Expr) => (window ? m.select(m.i32.gt_s(L(), wm.c32(window)), m.i32.sub(L(), wm.c32(window)), wm.c32(0)) : wm.c32(0));
    // (the one query is the last position: causal or not, it sees every key of its window)
    const byKeys = kernel(`attention_part_${key}`, () =>
      bf16
        ? wm.callLib("attention_part_bf16", { q: p(0), k: p(1), v: p(2), part: p(4), L: p(3), first: first(() => p(3)), H: wm.c32(H), Hkv: wm.c32(Hkv), dk: wm.c32(dk), dv: wm.c32(dv), scale: wm.cf32(scale), mask: wm.c32(mask), u0: p(6), u1: p(7), units: wm.c32(ATTENTION_CHUNKS) })
        : wm.callLib("attention_part", { q: p(0), k: p(1), v: p(2), part: p(4), L: p(3), first: first(() => p(3)), ...head(), ...extras(), u0: p(6), u1: p(7), units: wm.c32(ATTENTION_CHUNKS) }));
    // multiply-adds: rows × keys × heads × (dk + dv) at most
    const work = () => m.i32.mul(m.i32.mul(c.rows(q), m.i32.add(a.cache ? c.past() : wm.c32(0), c.rows(k))), wm.c32(H * (dk + dv)));
    const parts = c.scratch("attention");
    const decode = m.block(null, [
      wm.parallel(byKeys, [c.ptr(q), m.copyExpression(kp), m.copyExpression(vp), m.copyExpression(L), wm.c32(parts), wm.c32(1)], ATTENTION_CHUNKS, 0, work()),
      wm.callLib("attention_merge", { part: wm.c32(parts), out: c.ptr(n.id), H: wm.c32(H), dv: wm.c32(dv), keys: m.i32.sub(m.copyExpression(L), first(() => m.copyExpression(L))), units: wm.c32(ATTENTION_CHUNKS) }),
    ]);
    const prefill = wm.parallel(byHeads, [c.ptr(q), kp, vp, L, c.ptr(n.id), c.rows(q)], H, 0, work());
    return [...pre, m.if(m.i32.eq(c.rows(q), wm.c32(1)), decode, prefill)];
  }),
  // each thread's score row
  disentangled_attention: withScratch<"disentangled_attention">(disentangledScratch, lowerDisentangledAttention),
} satisfies { [K in OpKind]: Lowering<K> };

/** A lowering for a node of any op. */
export type AnyLowering = ((c: LowerCtx, n: Node) => Expr[]) & { scratch?: (n: Node, q: ScratchQuery) => ScratchNeeds };

/** The lowering of an op (the verifier has checked every node's op is in the table, and its attributes). */
export const loweringOf = (op: string): AnyLowering => (lowerings as unknown as Record<string, AnyLowering>)[op];
