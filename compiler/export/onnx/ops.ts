// One ONNX writer per IR op the exporter supports, each saying what it does with every attribute
// its op declares: a writer that does not account for an attribute is a type error, so a new IR
// feature is refused or written, never silently ignored.

import { type Activation, type OpAttrs, type OpKind, type OpNode, type RopeAttrs, isOp, operandOf } from "../../../ir/ops.js";
import { patchGrid } from "../../../ir/ops/patches.js";
import type { AttrValue, Node } from "../../../ir/types.js";
import { NEG, type OnnxGraph } from "./graph.js";

export interface Ctx {
  og: OnnxGraph;
  value: (id: number) => string;
  node: (id: number) => Node;
  paramInit: (n: Node, layout: "as-is" | "transposed") => string;
  /** x · wᵀ as MatMulNBits when w is a quantized parameter (undefined otherwise). */
  quantMatmul: (x: string, w: Node) => string | undefined;
  positions: () => string;
  causalMask: (withPast: boolean) => string;
  ropeTables: (a: RopeAttrs) => string;
  linearMode: "matmul" | "gemm";
  pastInputs: { key: string; value: string }[];
  cachedIndex: Map<number, number>;
  /** Whether the entry takes a batch of sequences, their rows stacked (no KV cache). */
  batched: boolean;
  /** x (stacked rows) reshaped to [B, ...dims], one slice per sequence ([1, ...dims] unbatched). */
  bySequence: (x: string, dims: readonly number[]) => string;
}

interface Writer<K extends OpKind> {
  /** Each attribute of the op: written (true), or a check naming why a value is refused. */
  readonly attrs: { readonly [A in keyof OpAttrs<K>]-?: true | ((v: NonNullable<OpAttrs<K>[A]>) => string | undefined) };
  /** The ONNX value of the node (input and param are written by the exporter itself). */
  readonly write: (n: OpNode<K>, c: Ctx) => string;
  /** The op reads across rows and its writer keeps a batch's sequences apart (other ops must be row-wise to be batched). */
  readonly sequences?: true;
}

/**
 * Elementwise activations (ops of their own, or a fused linear's epilogue), written in the forms
 * ORT's graph optimiser recognises (GeluFusion, FastGeluFusion, QuickGeluFusion, as in HF exports),
 * so that the peer runs its fused kernels.
 */
const activationWriters: Record<Activation, (og: OnnxGraph, x: string) => string> = {
  gelu: (og, x) => {
    // 0.5 · x · (1 + erf(x / √2))
    const e = og.op("Erf", [og.op("Div", [x, og.float([Math.SQRT2], [])])]);
    return og.op("Mul", [og.op("Mul", [x, og.float([0.5], [])]), og.op("Add", [e, og.float([1], [])])]);
  },
  gelu_tanh: (og, x) => {
    // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
    const x3 = og.op("Pow", [x, og.float([3], [])]);
    const inner = og.op("Add", [x, og.op("Mul", [x3, og.float([0.044715], [])])]);
    const t = og.op("Tanh", [og.op("Mul", [inner, og.float([Math.sqrt(2 / Math.PI)], [])])]);
    return og.op("Mul", [og.op("Mul", [x, og.float([0.5], [])]), og.op("Add", [t, og.float([1], [])])]);
  },
  silu: (og, x) => og.op("Mul", [x, og.op("Sigmoid", [x])]),
  relu: (og, x) => og.op("Relu", [x]),
};

/** x / sqrt(mean(x²) + eps) (RMSNormalization is opset 23), the form ORT's SimplifiedLayerNormFusion recognises. */
function rmsNormalize(og: OnnxGraph, x: string, eps: number): string {
  const ms = og.op("ReduceMean", [og.op("Pow", [x, og.float([2], [])])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  return og.op("Div", [x, og.op("Sqrt", [og.op("Add", [ms, og.float([eps], [])])])]);
}
/** A matrix kernel's input: its rows RMS- or LayerNorm-normalised first when fuse-norm folded a norm into it (the gain and shift are in its weights and bias). */
function kernelInput(n: OpNode<"linear"> | OpNode<"gated_linear">, c: Ctx): string {
  const x = c.value(n.args[0]);
  if (n.attrs.rms_eps !== undefined) return rmsNormalize(c.og, x, n.attrs.rms_eps);
  const ln = isOp(n, "linear") ? n.attrs.ln_eps : undefined;
  if (ln === undefined) return x;
  const K = c.node(n.args[0]).type.shape[1] as number;
  const affine = (v: number) => c.og.float(new Array<number>(K).fill(v), [K]);
  return c.og.op("LayerNormalization", [x, affine(1), affine(0)], { axis: { i: -1 }, epsilon: { f: ln } });
}

/** The [K, N] transpose of weight w[N, K] for MatMul: a parameter's transposed initializer, or a computed weight transposed in the graph. */
function matmulWeight(c: Ctx, w: number): string {
  const wn = c.node(w);
  return wn.op === "param" ? c.paramInit(wn, "transposed") : c.og.transpose(c.value(w), [1, 0]);
}

/** x · wᵀ (+ bias): MatMulNBits on a quantized parameter, else Gemm or MatMul as options.linear says. */
function project(c: Ctx, xin: string, w: number, bias?: string): string {
  const nbits = c.quantMatmul(xin, c.node(w));
  if (nbits) return bias ? c.og.op("Add", [nbits, bias]) : nbits;
  if (c.linearMode === "gemm") return c.og.op("Gemm", [xin, c.value(w), ...(bias ? [bias] : [])], { transB: { i: 1 } });
  const y = c.og.op("MatMul", [xin, matmulWeight(c, w)]);
  return bias ? c.og.op("Add", [y, bias]) : y;
}

const activation = (act: Activation): Writer<Activation> => ({ attrs: {}, write: (n, c) => activationWriters[act](c.og, c.value(n.args[0])) });

/** Rows [start, end) of each sequence of x (its rows as [rows, ...rest]): one sequence's rows, or each of a batch's, stacked again. */
function sequenceRows(n: Node, c: Ctx, start: number, end: number): string {
  const x = c.value(n.args[0]);
  if (!c.batched) return c.og.slice(x, start, end, 0);
  const rest = c.node(n.args[0]).type.shape.slice(1).map(Number);
  return c.og.reshape(c.og.slice(c.bySequence(x, [-1, ...rest]), start, end, 1), [-1, ...rest]);
}
const unused = () => "";
/** An `<entry>_packed` entry (pack-sequences) is the wasm runtime's form of `<entry>`, whose ONNX export takes a batch dimension instead. */
const packed = (v: boolean) => (v ? "packed sequences are not exported: export the entry without the _packed suffix (its ONNX inputs take a batch dimension)" : undefined);

const writers: { readonly [K in OpKind]?: Writer<K> } = {
  input: {
    attrs: {
      name: true, dtype: true, shape: true,
      kind: (v) => (v === "state" ? "state inputs (such as an encoder output fed to a decoder) are not supported" : v === "sequences" ? packed(true) : undefined),
    },
    write: unused,
    sequences: true,
  },
  // quant: MatMulNBits, or dequantized initializers
  param: {
    attrs: { name: true, shape: true, quant: true, swappable: (v) => (v ? "LoRA slots (--lora-slots) are the wasm runtime's: export without them, or merge an adapter with --lora" : undefined) },
    write: unused,
  },
  positions: {
    attrs: { padding_idx: true, offset: true, sequences: packed },
    write: (n, c) => {
      const pad = n.attrs.padding_idx;
      if (pad === undefined) return n.attrs.offset ? c.og.op("Add", [c.positions(), c.og.int64([n.attrs.offset], [])]) : c.positions();
      // RoBERTa's: (cumsum(ids != pad) + past) · (ids != pad) + pad, past the first of P + arange(S)
      // (batched: the sum runs along each sequence)
      const og = c.og, padV = og.int64([pad], []);
      const keep = og.op("Cast", [og.op("Not", [og.op("Equal", [c.value(n.args[0]), padV])])], { to: { i: 7 } });
      const cumsum = c.batched ? og.reshape(og.op("CumSum", [c.bySequence(keep, [-1]), og.int64([1], [])]), [-1]) : og.op("CumSum", [keep, og.int64([0], [])]);
      const counted = og.op("Add", [cumsum, og.slice(c.positions(), 0, 1, 0)]);
      return og.op("Add", [og.op("Mul", [counted, keep]), padV]);
    },
    sequences: true,
  },
  sinusoidal_positions: {
    attrs: { dim: true, sequences: packed },
    write: (n, c) => {
      // angles p · 10000^(−2k/dim) of every column, in f32, then sin of the first ⌈dim/2⌉ and cos of the rest
      const { og } = c, dim = n.attrs.dim, sinCols = Math.ceil(dim / 2);
      const freqs = Array.from({ length: dim }, (_, j) => Math.pow(10000, (-2 * (j < sinCols ? j : j - sinCols)) / dim));
      const angles = og.op("Mul", [og.unsqueeze(og.op("Cast", [c.positions()], { to: { i: 1 } }), [1]), og.float(freqs)]);
      if (sinCols === dim) return og.op("Sin", [angles]);
      return og.op("Concat", [og.op("Sin", [og.slice(angles, 0, sinCols, -1)]), og.op("Cos", [og.slice(angles, sinCols, dim, -1)])], { axis: { i: -1 } });
    },
    sequences: true,
  },
  embedding: { attrs: {}, write: (n, c) => c.og.op("Gather", [c.value(n.args[0]), c.value(n.args[1])], { axis: { i: 0 } }) },
  linear: {
    // quant, int_rows(_relaxed): MatMulNBits (x stays f32 at ONNX Runtime's default accuracy level, as with int_rows 0)
    attrs: { act: true, residual: true, rms_eps: true, ln_eps: true, quant: true, int_rows: true, int_rows_relaxed: true },
    write: (n, c) => {
      // x · wᵀ (+ b), then the fuse-ffn epilogues: act (an activation), residual (adds the last operand)
      const w = operandOf(n, "weight")!, b = operandOf(n, "bias"), residual = operandOf(n, "residual");
      // a fused LayerNorm's bias is [2, N]: the bias row, then the weights' row sums (not needed here)
      const bias = b === undefined ? undefined : n.attrs.ln_eps !== undefined ? c.og.reshape(c.og.slice(c.value(b), 0, 1, 0), [-1]) : c.value(b);
      let y = project(c, kernelInput(n, c), w, bias);
      if (n.attrs.act !== undefined) y = activationWriters[n.attrs.act](c.og, y);
      return residual === undefined ? y : c.og.op("Add", [y, c.value(residual)]);
    },
  },
  gated_linear: {
    attrs: { act: true, rms_eps: true, quant: true, int_rows: true, int_rows_relaxed: true },
    write: (n, c) => {
      // act(x · wgᵀ) ⊙ (x · wuᵀ), as the unfused ops
      const xin = kernelInput(n, c);
      const [wg, wu] = n.args.slice(1);
      return c.og.op("Mul", [activationWriters[n.attrs.act](c.og, project(c, xin, wg)), project(c, xin, wu)]);
    },
  },
  first_row: { attrs: { sequences: packed }, write: (n, c) => sequenceRows(n, c, 0, 1), sequences: true },
  last_row: { attrs: {}, write: (n, c) => sequenceRows(n, c, -1, Number.MAX_SAFE_INTEGER), sequences: true },
  matmul: { attrs: {}, write: (n, c) => c.og.op("MatMul", [c.value(n.args[0]), c.value(n.args[1])]) },
  // x[1, C, H, W] cropped to whole patches, [C, rows, p, cols, p] → [rows, cols, C, p, p] → [rows·cols, C·p²]
  patches: {
    attrs: { size: true },
    write: (n, c) => {
      const { og } = c, p = n.attrs.size, { C, rows, cols } = patchGrid(c.node(n.args[0]).type.shape, p);
      const crop = og.slice(og.slice(c.value(n.args[0]), 0, rows * p, 2), 0, cols * p, 3);
      return og.reshape(og.transpose(og.reshape(crop, [C, rows, p, cols, p]), [1, 3, 0, 2, 4]), [rows * cols, C * p * p]);
    },
  },
  // (fixed rows: in a batched entry an input-dependent concat mixes the sequences, and is refused)
  concat: { attrs: {}, write: (n, c) => c.og.op("Concat", [c.value(n.args[0]), c.value(n.args[1])], { axis: { i: 0 } }) },
  transpose: {
    attrs: {},
    write: (n, c) => {
      const x = c.node(n.args[0]);
      if (x.op === "param") return c.paramInit(x, "transposed");
      return c.og.transpose(c.value(x.id), x.type.shape.length === 2 ? [1, 0] : [0, 2, 1]);
    },
  },
  reshape: { attrs: { shape: true }, write: (n, c) => c.og.reshape(c.value(n.args[0]), [0, ...n.attrs.shape]) },
  add: { attrs: {}, write: (n, c) => c.og.op("Add", [c.value(n.args[0]), c.value(n.args[1])]) },
  mul: { attrs: {}, write: (n, c) => c.og.op("Mul", [c.value(n.args[0]), c.value(n.args[1])]) },
  scale: { attrs: { by: true }, write: (n, c) => c.og.op("Mul", [c.value(n.args[0]), c.og.float([n.attrs.by], [])]) },
  layernorm: { attrs: { eps: true }, write: (n, c) => c.og.op("LayerNormalization", n.args.map(c.value), { axis: { i: -1 }, epsilon: { f: n.attrs.eps } }) },
  rmsnorm: {
    // an offset is folded into the gain by the fold-norm-offset pass before export
    attrs: { eps: true, group: true, offset: () => "an RMSNorm gain offset must be folded first (fold-norm-offset)" },
    write: (n, c) => {
      const W = n.type.shape[1] as number, D = n.attrs.group ?? W;
      const x = D === W ? c.value(n.args[0]) : c.og.reshape(c.value(n.args[0]), [0, W / D, D]);
      const y = c.og.op("Mul", [rmsNormalize(c.og, x, n.attrs.eps), c.value(n.args[1])]);
      return D === W ? y : c.og.reshape(y, [0, W]);
    },
  },
  gelu: activation("gelu"),
  gelu_tanh: activation("gelu_tanh"),
  silu: activation("silu"),
  relu: activation("relu"),
  softmax: { attrs: {}, write: (n, c) => c.og.op("Softmax", [c.value(n.args[0])], { axis: { i: -1 } }) },
  slice: { attrs: { start: true, size: true }, write: (n, c) => c.og.slice(c.value(n.args[0]), n.attrs.start, n.attrs.start + n.attrs.size, -1) },
  rope: {
    // longrope switches frequencies with the sequence length: not a static table
    attrs: { head_dim: true, theta: true, scaling: (v) => (v === "longrope" ? "longrope scaling is not supported" : undefined), factor: true, low_freq: true, high_freq: true, original: true, short_factor: true, long_factor: true, attn_factor: true },
    write: (n, c) => {
      // rotate_half on each head: out = x · [cos, cos] + [-x2, x1] · [sin, sin]
      const hd = n.attrs.head_dim, half = hd / 2, D = n.type.shape[1] as number;
      const [cos, sin] = c.ropeTables(n.attrs).split("\n");
      const x = c.og.reshape(c.value(n.args[0]), [0, D / hd, hd]); // [S, H, hd]
      const x1 = c.og.slice(x, 0, half, -1), x2 = c.og.slice(x, half, hd, -1);
      const rot = c.og.op("Concat", [c.og.op("Neg", [x2]), x1], { axis: { i: -1 } });
      const y = c.og.op("Add", [c.og.op("Mul", [x, cos]), c.og.op("Mul", [rot, sin])]);
      return c.og.reshape(y, [0, D]);
    },
    // (its tables hold every row's position)
    sequences: true,
  },
  attention: {
    attrs: {
      heads: true, kv_heads: true, scale: true, causal: true, cache: true, mask: true,
      bias: (v) => (v ? "attention with a relative position bias (T5) is not supported" : undefined),
      window: () => "sliding-window attention is not supported",
      softcap: () => "soft-capped attention scores are not supported",
      kv_dtype: () => "a bf16 KV cache (--kv-cache bf16) is the wasm runtime's: export without it",
      bias_bidirectional: true, bias_buckets: true, bias_max_distance: true, sequences: packed,
    },
    write: (n, c) => {
      const { og } = c;
      const H = n.attrs.heads, Hkv = n.attrs.kv_heads, group = H / Hkv;
      const dk = (c.node(n.args[0]).type.shape[1] as number) / H;
      const dv = (c.node(n.args[2]).type.shape[1] as number) / Hkv;
      // k, v: [L, Hkv·d] → [1, Hkv, L, d] (batched: [B·L, Hkv·d] → [B, Hkv, L, d])
      const heads = (x: string, h: number, d: number) => og.transpose(c.bySequence(x, [-1, h, d]), [0, 2, 1, 3]);
      let k = heads(c.value(n.args[1]), Hkv, dk);
      let v = heads(c.value(n.args[2]), Hkv, dv);
      const ci = c.cachedIndex.get(n.id);
      if (ci !== undefined) {
        const past = c.pastInputs[ci];
        k = og.op("Concat", [past.key, k], { axis: { i: 2 } }, og.reserve(`present_key_${ci}`));
        v = og.op("Concat", [past.value, v], { axis: { i: 2 } }, og.reserve(`present_value_${ci}`));
      }
      let kT = og.transpose(k, [0, 1, 3, 2]); // [1, Hkv, dk, T]
      let q: string;
      if (group === 1) {
        q = heads(c.value(n.args[0]), H, dk); // [1, H, S, dk]
      } else {
        // query head h uses kv head floor(h / group): q as [1, Hkv, group, S, dk], k and v broadcast over the group axis
        q = og.transpose(c.bySequence(c.value(n.args[0]), [-1, Hkv, group, dk]), [0, 2, 3, 1, 4]);
        kT = og.unsqueeze(kT, [2]);
        v = og.unsqueeze(v, [2]);
      }
      let s = og.op("Mul", [og.op("MatMul", [q, kT]), og.float([n.attrs.scale], [])]); // [..., S, T]
      // a one-row q of a longer k is the last position's query (specialize-last-row): it sees every key
      const lastQuery = c.node(n.args[0]).type.shape[0] === 1 && c.node(n.args[1]).type.shape[0] !== 1;
      if (n.attrs.causal && !lastQuery) s = og.op("Add", [s, c.causalMask(ci !== undefined)]);
      const mask = operandOf(n, "mask");
      if (mask !== undefined) {
        // f32 [L] of 0/1 (batched: [B·L], each sequence's keys masked in its own scores)
        const m = c.batched ? c.bySequence(c.value(mask), group === 1 ? [1, 1, -1] : [1, 1, 1, -1]) : c.value(mask);
        s = og.op("Add", [s, og.op("Where", [og.op("Equal", [m, og.float([0], [])]), og.float([NEG], []), og.float([0], [])])]);
      }
      const o = og.op("MatMul", [og.op("Softmax", [s], { axis: { i: -1 } }), v]); // [1, H, S, dv] or [1, Hkv, group, S, dv]
      const rows = group === 1 ? og.transpose(o, [0, 2, 1, 3]) : og.transpose(o, [0, 3, 1, 2, 4]);
      return og.reshape(rows, [-1, H * dv]);
    },
    sequences: true,
  },
};

/** A writer for a node of any op. */
interface AnyWriter {
  readonly attrs: Readonly<Record<string, true | ((v: AttrValue) => string | undefined)>>;
  readonly write: (n: Node, c: Ctx) => string;
  readonly sequences?: true;
}

/** The writer of an op, or undefined where the exporter does not support it. */
export const writerOf = (op: string): AnyWriter | undefined => (writers as Record<string, AnyWriter | undefined>)[op];
