// ONNX export: writes one entry of a Program (after runPipeline) as an ONNX ModelProto, opset 17,
// IR version 8, with the program's parameters as initializers. Intended for comparisons with
// ONNX Runtime (Web): the graph follows the ops' reference semantics in ir/ops.ts.
//
// Graph I/O follows the usual decoder-with-KV-cache convention (HF Optimum, ORT Web demos):
//   inputs   input_ids            int64 [1, S]
//            token_type_ids       int64 [1, S]      (an input of kind "segments", e.g. BERT)
//            attention_mask       int64 [1, S]      (an input of kind "padding": 1 keep, 0 mask)
//            past_key_{i}         float [1, Hkv, P, dk]   for each cached attention i, in graph order
//            past_value_{i}       float [1, Hkv, P, dv]
//   outputs  the entry's outputs  float [1, S, ...]  (e.g. logits [1, S, V])
//            present_key_{i}      float [1, Hkv, P+S, dk]
//            present_value_{i}    float [1, Hkv, P+S, dv]
// S and P are dynamic. Positions are P + arange(S) with P = Shape(past_key_0)[2]; cached causal
// attention lets the query at position P+r see keys 0..P+r. A first call passes pasts with P = 0.
//
// Layouts: linear layers are MatMul with a [K, N] initializer (the transpose of the IR's [N, K]
// weight, shared with a folded transpose where the program already holds one) followed by Add of
// the bias, or Gemm(transB=1) on the [N, K] weight with `linear: "gemm"`. Grouped KV heads are
// broadcast over the query heads of their group by MatMul (q as [1, Hkv, group, S, dk] against k as
// [1, Hkv, 1, dk, T]), which is the same as repeating them without the copies.
//
// A linear fused by fuse-ffn (attrs act, residual) is written as its unfused ops again.
//
// Not supported (a clear Error): state inputs (T5's decoder), relative position bias (T5), and
// any op or attribute this file does not know (a newer IR feature fails loudly, not silently).

import type { Attrs, Graph, Node, Program, Shape } from "../../ir/types.js";
import { littleEndianBytes, Message } from "./protobuf.js";

export interface OnnxExportOptions {
  /** Entry point to export (default "forward"). */
  entry?: string;
  /** How linear layers are written: "matmul" (MatMul on a [K, N] initializer + Add, default) or "gemm" (Gemm transB=1 on [N, K]). */
  linear?: "matmul" | "gemm";
  /**
   * How weights quantized by quantize-weights (q8_0, q4_0) are written: "matmulnbits" (default:
   * ONNX Runtime's com.microsoft MatMulNBits, bits 8 or 4, block 32, the same codes and scales)
   * or "dequantized" (f32 initializers of the dequantized values, for runtimes without it).
   */
  quantized?: "matmulnbits" | "dequantized";
  /** ModelProto.producer_name (default "wasmformer"). */
  producerName?: string;
  producerVersion?: string;
}

export class OnnxExportError extends Error {
  override name = "OnnxExportError";
}

const OPSET = 17;
const IR_VERSION = 8;

// TensorProto.DataType
const FLOAT = 1;
const UINT8 = 2;
const INT64 = 7;
/** ONNX Runtime's contrib operators (MatMulNBits). */
const MS_DOMAIN = "com.microsoft";

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

type Attr = { f: number } | { i: number } | { s: string } | { ints: readonly number[] };
type Dim = number | string;

const DIM_S = "sequence_length";
const DIM_P = "past_sequence_length";
const DIM_T = "total_sequence_length";
/** The largest finite float32 magnitude: what the reference adds for masked-out keys. */
const NEG = -3.4028234663852886e38;

function attrProto(name: string, a: Attr): Message {
  const m = new Message().string(1, name);
  if ("f" in a) m.float(2, a.f).int(20, ATTR_FLOAT);
  else if ("i" in a) m.int(3, a.i).int(20, ATTR_INT);
  else if ("s" in a) m.string(4, a.s).int(20, ATTR_STRING);
  else m.ints(8, a.ints).int(20, ATTR_INTS);
  return m;
}

function tensorProto(name: string, dims: readonly number[], dataType: number, data: Uint8Array): Message {
  return new Message().ints(1, dims).int(2, dataType).string(8, name).bytes(9, data);
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): Message {
  const shape = new Message();
  for (const d of dims) shape.message(1, typeof d === "number" ? new Message().int(1, d) : new Message().string(2, d));
  const tensorType = new Message().int(1, elemType).message(2, shape);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** Accumulates ONNX nodes, initializers and graph I/O. */
class OnnxGraph {
  readonly nodes: Message[] = [];
  readonly initializers: Message[] = [];
  readonly inputs: Message[] = [];
  readonly outputs: Message[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  private counter = 0;

  /** A name not used before, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${this.counter++}`;
    this.names.add(name);
    return name;
  }
  reserve(name: string): string {
    if (this.names.has(name)) throw new OnnxExportError(`ONNX export: duplicate value name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** Operator domains used besides the default one. */
  readonly domains = new Set<string>();

  /** Appends a node; returns its (first) output name. `out` names the outputs (fresh names otherwise). */
  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string, domain?: string): string {
    const output = out ?? this.fresh(`${type.toLowerCase()}_${this.nodes.length}`);
    const m = new Message();
    for (const i of inputs) m.string(1, i);
    m.string(2, output);
    m.string(3, `${type}_${this.nodes.length}`);
    m.string(4, type);
    for (const [k, v] of Object.entries(attrs)) m.message(5, attrProto(k, v));
    if (domain) {
      m.string(7, domain);
      this.domains.add(domain);
    }
    this.nodes.push(m);
    return output;
  }

  initializer(name: string, dims: readonly number[], data: Float32Array | BigInt64Array | Uint8Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${data.length} values for [${dims.join(",")}]`);
    const type = data instanceof Float32Array ? FLOAT : data instanceof Uint8Array ? UINT8 : INT64;
    this.initializers.push(tensorProto(name, dims, type, data instanceof Uint8Array ? data : littleEndianBytes(data)));
    return name;
  }

  /** A shared int64 constant (an initializer). `dims` undefined: a 1-D tensor; [] a scalar. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i64[${dims.join(",")}]:${values.join(",")}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(dims.length === 0 ? `const_i64_${values[0]}` : `const_i64_${values.join("_").replace(/-/g, "m")}`);
      this.initializer(name, dims, BigInt64Array.from(values, (v) => BigInt(v)));
      this.consts.set(key, name);
    }
    return name;
  }
  /** A shared float constant. */
  float(values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    const data = Float32Array.from(values);
    const key = `f32[${dims.join(",")}]:${Array.from(data).join(",")}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(data.length === 1 ? `const_f32` : `const_f32_${data.length}`);
      this.initializer(name, dims, data);
      this.consts.set(key, name);
    }
    return name;
  }

  input(name: string, elemType: number, dims: readonly Dim[]): string {
    this.reserve(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }
  output(name: string, elemType: number, dims: readonly Dim[]) {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  // small helpers
  reshape(x: string, dims: readonly number[]): string {
    return this.op("Reshape", [x, this.int64(dims)]);
  }
  transpose(x: string, perm: readonly number[]): string {
    return this.op("Transpose", [x], { perm: { ints: perm } });
  }
  unsqueeze(x: string, axes: readonly number[], out?: string): string {
    return this.op("Unsqueeze", [x, this.int64(axes)], {}, out);
  }
  slice(x: string, start: number, end: number, axis: number): string {
    return this.op("Slice", [x, this.int64([start]), this.int64([end]), this.int64([axis])]);
  }
}

function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

const num = (a: Attrs, k: string) => a[k] as number;

/** Nodes of `g` that an output depends on. */
function liveNodes(g: Graph): boolean[] {
  const live = new Array<boolean>(g.nodes.length).fill(false);
  for (const o of g.outputs) live[o.id] = true;
  for (let i = g.nodes.length - 1; i >= 0; i--) if (live[i]) for (const a of g.nodes[i].args) live[a] = true;
  return live;
}

/** The KV caches of an exported entry, in the order of its past_key_{i} / past_value_{i} inputs. */
export function onnxCacheLayout(program: Program, entry = "forward"): { kvHeads: number; keyDim: number; valueDim: number }[] {
  const g = program.graphs.find((x) => x.name === entry);
  if (!g) throw new OnnxExportError(`ONNX export: ${program.model} has no entry '${entry}'`);
  const live = liveNodes(g);
  return g.nodes
    .filter((n, i) => live[i] && n.op === "attention" && n.attrs.cache)
    .map((n) => {
      const h = num(n.attrs, "kv_heads");
      return { kvHeads: h, keyDim: (g.nodes[n.args[1]].type.shape[1] as number) / h, valueDim: (g.nodes[n.args[2]].type.shape[1] as number) / h };
    });
}

/** Writes entry `opts.entry` (default "forward") of `program` as an ONNX model (opset 17). */
export function exportOnnx(program: Program, opts: OnnxExportOptions = {}): Uint8Array {
  const entry = opts.entry ?? "forward";
  const g = program.graphs.find((x) => x.name === entry);
  if (!g) throw new OnnxExportError(`ONNX export: ${program.model} has no entry '${entry}' (entries: ${program.graphs.map((x) => x.name).join(", ")})`);
  const linearMode = opts.linear ?? "matmul";
  const live = liveNodes(g);
  const nodes = g.nodes.filter((_, i) => live[i]);
  const where = (n: Node) => `ONNX export of ${program.model}.${entry}: %${n.id} = ${n.op}${n.loc ? ` (${n.loc.file}:${n.loc.line}:${n.loc.col})` : ""}`;

  // ---- check support up front, so nothing half-built is returned
  for (const n of nodes) {
    if (n.op === "input" && n.attrs.kind === "state")
      throw new OnnxExportError(`${where(n)}: state inputs (such as an encoder output fed to a decoder) are not supported`);
    if (n.op === "attention" && n.attrs.bias)
      throw new OnnxExportError(`${where(n)}: attention with a relative position bias (T5) is not supported`);
    if (!(n.op in handlers)) throw new OnnxExportError(`${where(n)}: op '${n.op}' is not supported`);
    const unknown = Object.keys(n.attrs).filter((k) => !(knownAttrs[n.op] ?? []).includes(k) && n.attrs[k] !== false);
    if (unknown.length) throw new OnnxExportError(`${where(n)}: attribute${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} not supported`);
  }

  const og = new OnnxGraph();
  const val = new Map<number, string>(); // IR node id → ONNX value name
  const node = (id: number) => g.nodes[id];

  // ---- graph inputs
  const cached = nodes.filter((n) => n.op === "attention" && n.attrs.cache);
  const kindNames: Record<string, string> = { tokens: "input_ids", segments: "token_type_ids", padding: "attention_mask" };
  const kindCount = new Map<string, number>();
  let seqSource: string | undefined;
  for (const n of nodes) {
    if (n.op !== "input") continue;
    const kind = n.attrs.kind as string;
    const k = kindCount.get(kind) ?? 0;
    kindCount.set(kind, k + 1);
    const base = kindNames[kind];
    if (!base) throw new OnnxExportError(`${where(n)}: input kind '${kind}' is not supported`);
    if (n.type.shape.length !== 1 || n.type.shape[0] !== "S") throw new OnnxExportError(`${where(n)}: expected an input of shape [S]`);
    const name = og.input(k === 0 ? base : `${base}_${k}`, INT64, [1, DIM_S]);
    seqSource ??= name;
    const flat = og.reshape(name, [-1]);
    val.set(n.id, n.type.dtype === "f32" ? og.op("Cast", [flat], { to: { i: FLOAT } }) : flat);
  }
  const pastInputs = cached.map((n, i) => {
    const H = num(n.attrs, "kv_heads");
    const dk = (node(n.args[1]).type.shape[1] as number) / H, dv = (node(n.args[2]).type.shape[1] as number) / H;
    return {
      key: og.input(`past_key_${i}`, FLOAT, [1, H, DIM_P, dk]),
      value: og.input(`past_value_${i}`, FLOAT, [1, H, DIM_P, dv]),
    };
  });

  // ---- lazily built shared values: S, P, positions, masks, rope tables
  const memo = new Map<string, string>();
  const once = (key: string, make: () => string) => {
    let v = memo.get(key);
    if (v === undefined) memo.set(key, (v = make()));
    return v;
  };
  const scalarOf = (x: string) => og.op("Squeeze", [x, og.int64([0])]);
  const seqLen = () =>
    once("S", () => {
      if (!seqSource) throw new OnnxExportError(`ONNX export of ${program.model}.${entry}: positions need a token input`);
      return scalarOf(og.op("Shape", [seqSource], { start: { i: 1 }, end: { i: 2 } }));
    });
  const pastLen = () =>
    once("P", () => (pastInputs.length ? scalarOf(og.op("Shape", [pastInputs[0].key], { start: { i: 2 }, end: { i: 3 } })) : og.int64([0], [])));
  const one = () => og.int64([1], []);
  /** P + arange(S): the absolute positions of this call's rows (P = 0 without a cache). */
  const positions = () => once("positions", () => og.op("Range", [pastLen(), og.op("Add", [pastLen(), seqLen()]), one()]));
  /** Additive causal mask [S, T]: 0 where key j ≤ query position, NEG elsewhere. Cached: rows P+r, T = P+S; else rows r, T = S. */
  const causalMask = (withPast: boolean) =>
    once(`mask:${withPast}`, () => {
      const rows = withPast ? positions() : og.op("Range", [og.int64([0], []), seqLen(), one()]);
      const total = withPast ? og.op("Add", [pastLen(), seqLen()]) : seqLen();
      const cols = og.op("Range", [og.int64([0], []), total, one()]);
      const later = og.op("Greater", [cols, og.unsqueeze(rows, [1])]); // [S, T]
      return og.op("Where", [later, og.float([NEG], []), og.float([0], [])]);
    });
  /** cos and sin tables [S, 1, hd] (each half repeated), positions as in the reference: angle = f32(pos · inv_freq). */
  const ropeTables = (hd: number, theta: number) =>
    once(`rope:${hd}:${theta}`, () => {
      const half = hd / 2;
      const inv = new Float32Array(half);
      for (let j = 0; j < half; j++) inv[j] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * j) / hd))));
      const pos = og.unsqueeze(og.op("Cast", [positions()], { to: { i: FLOAT } }), [1]); // [S, 1]
      const ang = og.op("Mul", [pos, og.float(inv)]); // [S, half]
      const full = (f: string) => og.unsqueeze(og.op("Concat", [f, f], { axis: { i: -1 } }), [1]);
      const cos = full(og.op("Cos", [ang])), sin = full(og.op("Sin", [ang]));
      return `${cos}\n${sin}`;
    });

  // ---- parameters as initializers
  const initByData = new Map<Float32Array, Map<string, string>>(); // data → layout key → initializer name
  const paramInit = (n: Node, layout: "as-is" | "transposed"): string => {
    const name = n.attrs.name as string;
    const p = program.params.get(name);
    if (!p) throw new OnnxExportError(`${where(n)}: parameter '${name}' has no data`);
    let data = p.data, dims = [...p.shape], initName = name, key = "as-is";
    if (layout === "transposed") {
      if (dims.length !== 2) throw new OnnxExportError(`${where(n)}: cannot transpose parameter ${name} of shape [${dims.join(",")}]`);
      // a folded transpose "x^T" keeps its source "x": use that data instead of transposing again
      const base = name.endsWith("^T") ? program.params.get(name.slice(0, -2)) : undefined;
      if (base && base.shape[0] === dims[1] && base.shape[1] === dims[0]) {
        data = base.data;
        initName = base.name;
      } else {
        key = "transposed";
        initName = `${name}^T`;
      }
      dims = [dims[1], dims[0]];
    }
    const transpose = key === "transposed";
    key += `[${dims.join(",")}]`;
    let byLayout = initByData.get(data);
    if (!byLayout) initByData.set(data, (byLayout = new Map()));
    const hit = byLayout.get(key);
    if (hit) return hit;
    const out = og.fresh(initName);
    og.initializer(out, dims, transpose ? transposed(data, dims[1], dims[0]) : data);
    byLayout.set(key, out);
    return out;
  };
  /** The ONNX value of operand `id` (parameters become initializers in their own layout). */
  const value = (id: number): string => {
    const n = node(id);
    if (n.op === "param") return paramInit(n, "as-is");
    const v = val.get(id);
    if (v === undefined) throw new Error(`ONNX export: %${id} (${n.op}) used before it was written`);
    return v;
  };

  /**
   * x · wᵀ for a quantized parameter w as ONNX Runtime's MatMulNBits: B [N, K/32, blob] uint8,
   * codes low-first along K with the default zero point (q8_0: q + 128; q4_0: two codes q + 8 a
   * byte, even k in the low nibble), scales [N, K/32] (the f16 scales, exact in f32).
   */
  const nbitsInits = new Map<string, [string, string]>();
  const quantMatmul = (x: string, w: Node): string | undefined => {
    const p = program.params.get(w.attrs.name as string);
    // (q4_1's minimum is no integer zero point: it is written dequantized)
    if (!p?.quant || p.quant.scheme === "q4_1" || opts.quantized === "dequantized") return undefined;
    const [N, K] = p.shape;
    const bits = p.quant.scheme === "q8_0" ? 8 : 4, blocks = K / 32, blob = (32 * bits) / 8;
    let inits = nbitsInits.get(p.name);
    if (!inits) {
      const codes = p.quant.codes, bytes = new Uint8Array(N * blocks * blob);
      if (bits === 8) for (let i = 0; i < codes.length; i++) bytes[i] = codes[i] + 128;
      else for (let i = 0; i < codes.length; i += 2) bytes[i >> 1] = (codes[i] + 8) | ((codes[i + 1] + 8) << 4);
      const b = og.fresh(`${p.name}.q${bits}`), sc = og.fresh(`${p.name}.scales`);
      og.initializer(b, [N, blocks, blob], bytes);
      og.initializer(sc, [N, blocks], p.quant.scales);
      nbitsInits.set(p.name, (inits = [b, sc]));
    }
    const attrs = { K: { i: K }, N: { i: N }, bits: { i: bits }, block_size: { i: 32 } };
    return og.op("MatMulNBits", [x, ...inits], attrs, undefined, MS_DOMAIN);
  };

  // ---- the ops
  const ctx: Ctx = { og, value, node, paramInit, quantMatmul, positions, causalMask, ropeTables, linearMode, pastInputs, cachedIndex: new Map(cached.map((n, i) => [n.id, i])) };
  for (const n of nodes) {
    if (n.op === "input" || n.op === "param") continue;
    val.set(n.id, handlers[n.op as keyof typeof handlers](n, ctx));
  }

  // ---- graph outputs
  const dimOf = (d: Shape[number]) => (d === "S" ? DIM_S : d);
  for (const o of g.outputs) {
    const n = node(o.id);
    if (n.type.dtype !== "f32") throw new OnnxExportError(`${where(n)}: output ${o.name} is not f32`);
    og.reserve(o.name);
    og.unsqueeze(value(o.id), [0], o.name);
    og.output(o.name, FLOAT, [1, ...n.type.shape.map(dimOf)]);
  }
  cached.forEach((n, i) => {
    const H = num(n.attrs, "kv_heads");
    og.output(`present_key_${i}`, FLOAT, [1, H, DIM_T, (node(n.args[1]).type.shape[1] as number) / H]);
    og.output(`present_value_${i}`, FLOAT, [1, H, DIM_T, (node(n.args[2]).type.shape[1] as number) / H]);
  });

  // ---- ModelProto
  const graph = new Message();
  for (const m of og.nodes) graph.message(1, m);
  graph.string(2, `${program.model}_${entry}`);
  for (const m of og.initializers) graph.message(5, m);
  for (const m of og.inputs) graph.message(11, m);
  for (const m of og.outputs) graph.message(12, m);
  const model = new Message()
    .int(1, IR_VERSION)
    .string(2, opts.producerName ?? "wasmformer")
    .string(3, opts.producerVersion ?? "0.1.0")
    .message(7, graph)
    .message(8, new Message().string(1, "").int(2, OPSET));
  for (const d of og.domains) model.message(8, new Message().string(1, d).int(2, 1));
  return model.finish();
}

interface Ctx {
  og: OnnxGraph;
  value: (id: number) => string;
  node: (id: number) => Node;
  paramInit: (n: Node, layout: "as-is" | "transposed") => string;
  /** x · wᵀ as MatMulNBits when w is a quantized parameter (undefined otherwise). */
  quantMatmul: (x: string, w: Node) => string | undefined;
  positions: () => string;
  causalMask: (withPast: boolean) => string;
  ropeTables: (hd: number, theta: number) => string;
  linearMode: "matmul" | "gemm";
  pastInputs: { key: string; value: string }[];
  cachedIndex: Map<number, number>;
}

/**
 * Elementwise activations (ops of their own, or a fused linear's epilogue), written in the forms
 * ORT's graph optimiser recognises (GeluFusion, FastGeluFusion, QuickGeluFusion, as in HF exports),
 * so that the peer runs its fused kernels.
 */
const activationWriters: Record<string, (og: OnnxGraph, x: string) => string> = {
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

/** The attributes each op's writer understands; anything else (a newer IR feature) is refused, not ignored. */
const knownAttrs: Record<string, readonly string[]> = {
  input: ["name", "kind", "dtype", "shape"],
  param: ["name", "shape", "quant"],
  // quant, int_rows: MatMulNBits (x stays f32 at ONNX Runtime's default accuracy level, as with int_rows 0)
  linear: ["act", "residual", "rms_eps", "ln_eps", "quant", "int_rows"],
  gated_linear: ["act", "rms_eps", "quant", "int_rows"],
  reshape: ["shape"],
  scale: ["by"],
  layernorm: ["eps"],
  rmsnorm: ["eps"],
  slice: ["start", "size"],
  rope: ["head_dim", "theta"],
  attention: ["heads", "kv_heads", "scale", "causal", "cache", "mask", "bias"],
};

/** x / sqrt(mean(x²) + eps) (RMSNormalization is opset 23), the form ORT's SimplifiedLayerNormFusion recognises. */
function rmsNormalize(og: OnnxGraph, x: string, eps: number): string {
  const ms = og.op("ReduceMean", [og.op("Pow", [x, og.float([2], [])])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  return og.op("Div", [x, og.op("Sqrt", [og.op("Add", [ms, og.float([eps], [])])])]);
}
/** A matrix kernel's input: its rows RMS- or LayerNorm-normalised first when fuse-norm folded a norm into it (the gain and shift are in its weights and bias). */
function kernelInput(n: Node, c: Ctx): string {
  const x = c.value(n.args[0]);
  if (n.attrs.rms_eps !== undefined) return rmsNormalize(c.og, x, num(n.attrs, "rms_eps"));
  if (n.attrs.ln_eps === undefined) return x;
  const K = c.node(n.args[0]).type.shape[1] as number;
  const affine = (v: number) => c.og.float(new Array<number>(K).fill(v), [K]);
  return c.og.op("LayerNormalization", [x, affine(1), affine(0)], { axis: { i: -1 }, epsilon: { f: num(n.attrs, "ln_eps") } });
}

/** One writer per supported IR op (input and param are handled by the exporter itself). */
const handlers: Record<string, (n: Node, c: Ctx) => string> = {
  input: () => "",
  param: () => "",
  positions: (_n, c) => c.positions(),
  embedding: (n, c) => c.og.op("Gather", [c.value(n.args[0]), c.value(n.args[1])], { axis: { i: 0 } }),
  linear: (n, c) => {
    // x · wᵀ (+ b), then the fuse-ffn epilogues: act (an activation), residual (adds the last operand)
    const [x, w, ...rest] = n.args;
    const residual = n.attrs.residual ? rest.pop() : undefined;
    const b = rest[0];
    const wn = c.node(w);
    // a fused LayerNorm's bias is [2, N]: the bias row, then the weights' row sums (not needed here)
    const bias = b === undefined ? undefined : n.attrs.ln_eps !== undefined ? c.og.reshape(c.og.slice(c.value(b), 0, 1, 0), [-1]) : c.value(b);
    const xin = kernelInput(n, c);
    let y: string;
    const nbits = c.quantMatmul(xin, wn);
    if (nbits) {
      y = bias ? c.og.op("Add", [nbits, bias]) : nbits;
    } else if (c.linearMode === "gemm") {
      y = c.og.op("Gemm", [xin, c.value(w), ...(bias ? [bias] : [])], { transB: { i: 1 } });
    } else {
      // MatMul on the [K, N] transpose of a parameter; a computed weight is transposed in the graph
      const wt = wn.op === "param" ? c.paramInit(wn, "transposed") : c.og.transpose(c.value(w), [1, 0]);
      y = c.og.op("MatMul", [xin, wt]);
      if (bias) y = c.og.op("Add", [y, bias]);
    }
    if (n.attrs.act !== undefined) {
      const act = activationWriters[String(n.attrs.act)];
      if (!act) throw new OnnxExportError(`ONNX export: linear %${n.id}: activation '${String(n.attrs.act)}' is not supported`);
      y = act(c.og, y);
    }
    return residual === undefined ? y : c.og.op("Add", [y, c.value(residual)]);
  },
  gated_linear: (n, c) => {
    // act(x · wgᵀ) ⊙ (x · wuᵀ), as the unfused ops
    const [, wg, wu] = n.args;
    const xin = kernelInput(n, c);
    const proj = (w: number) => {
      const wn = c.node(w);
      const nbits = c.quantMatmul(xin, wn);
      if (nbits) return nbits;
      if (c.linearMode === "gemm") return c.og.op("Gemm", [xin, c.value(w)], { transB: { i: 1 } });
      return c.og.op("MatMul", [xin, wn.op === "param" ? c.paramInit(wn, "transposed") : c.og.transpose(c.value(w), [1, 0])]);
    };
    const act = activationWriters[String(n.attrs.act)];
    if (!act) throw new OnnxExportError(`ONNX export: gated_linear %${n.id}: activation '${String(n.attrs.act)}' is not supported`);
    return c.og.op("Mul", [act(c.og, proj(wg)), proj(wu)]);
  },
  last_row: (n, c) => c.og.slice(c.value(n.args[0]), -1, Number.MAX_SAFE_INTEGER, 0),
  matmul: (n, c) => c.og.op("MatMul", [c.value(n.args[0]), c.value(n.args[1])]),
  transpose: (n, c) => {
    const x = c.node(n.args[0]);
    if (x.op === "param") return c.paramInit(x, "transposed");
    return c.og.transpose(c.value(x.id), x.type.shape.length === 2 ? [1, 0] : [0, 2, 1]);
  },
  reshape: (n, c) => c.og.reshape(c.value(n.args[0]), [0, ...(n.attrs.shape as number[])]),
  add: (n, c) => c.og.op("Add", [c.value(n.args[0]), c.value(n.args[1])]),
  mul: (n, c) => c.og.op("Mul", [c.value(n.args[0]), c.value(n.args[1])]),
  scale: (n, c) => c.og.op("Mul", [c.value(n.args[0]), c.og.float([num(n.attrs, "by")], [])]),
  layernorm: (n, c) =>
    c.og.op("LayerNormalization", n.args.map(c.value), { axis: { i: -1 }, epsilon: { f: num(n.attrs, "eps") } }),
  rmsnorm: (n, c) => c.og.op("Mul", [rmsNormalize(c.og, c.value(n.args[0]), num(n.attrs, "eps")), c.value(n.args[1])]),
  gelu: (n, c) => activationWriters.gelu(c.og, c.value(n.args[0])),
  gelu_tanh: (n, c) => activationWriters.gelu_tanh(c.og, c.value(n.args[0])),
  silu: (n, c) => activationWriters.silu(c.og, c.value(n.args[0])),
  relu: (n, c) => activationWriters.relu(c.og, c.value(n.args[0])),
  softmax: (n, c) => c.og.op("Softmax", [c.value(n.args[0])], { axis: { i: -1 } }),
  slice: (n, c) => {
    const start = num(n.attrs, "start");
    return c.og.slice(c.value(n.args[0]), start, start + num(n.attrs, "size"), -1);
  },
  rope: (n, c) => {
    // rotate_half on each head: out = x · [cos, cos] + [-x2, x1] · [sin, sin]
    const hd = num(n.attrs, "head_dim"), half = hd / 2, D = n.type.shape[1] as number;
    const [cos, sin] = c.ropeTables(hd, num(n.attrs, "theta")).split("\n");
    const x = c.og.reshape(c.value(n.args[0]), [0, D / hd, hd]); // [S, H, hd]
    const x1 = c.og.slice(x, 0, half, -1), x2 = c.og.slice(x, half, hd, -1);
    const rot = c.og.op("Concat", [c.og.op("Neg", [x2]), x1], { axis: { i: -1 } });
    const y = c.og.op("Add", [c.og.op("Mul", [x, cos]), c.og.op("Mul", [rot, sin])]);
    return c.og.reshape(y, [0, D]);
  },
  attention: (n, c) => {
    const { og } = c;
    const H = num(n.attrs, "heads"), Hkv = num(n.attrs, "kv_heads"), group = H / Hkv;
    const dk = (c.node(n.args[0]).type.shape[1] as number) / H;
    const dv = (c.node(n.args[2]).type.shape[1] as number) / Hkv;
    // k, v: [L, Hkv·d] → [1, Hkv, L, d]
    const heads = (x: string, h: number, d: number) => og.transpose(og.reshape(x, [1, -1, h, d]), [0, 2, 1, 3]);
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
      q = og.transpose(og.reshape(c.value(n.args[0]), [1, -1, Hkv, group, dk]), [0, 2, 3, 1, 4]);
      kT = og.unsqueeze(kT, [2]);
      v = og.unsqueeze(v, [2]);
    }
    let s = og.op("Mul", [og.op("MatMul", [q, kT]), og.float([num(n.attrs, "scale")], [])]); // [..., S, T]
    // a one-row q of a longer k is the last position's query (specialize-last-row): it sees every key
    const lastQuery = c.node(n.args[0]).type.shape[0] === 1 && c.node(n.args[1]).type.shape[0] !== 1;
    if (n.attrs.causal && !lastQuery) s = og.op("Add", [s, c.causalMask(ci !== undefined)]);
    if (n.attrs.mask) {
      const m = c.value(n.args[3]); // f32 [L] of 0/1
      s = og.op("Add", [s, og.op("Where", [og.op("Equal", [m, og.float([0], [])]), og.float([NEG], []), og.float([0], [])])]);
    }
    const o = og.op("MatMul", [og.op("Softmax", [s], { axis: { i: -1 } }), v]); // [1, H, S, dv] or [1, Hkv, group, S, dv]
    const rows = group === 1 ? og.transpose(o, [0, 2, 1, 3]) : og.transpose(o, [0, 3, 1, 2, 4]);
    return og.reshape(rows, [-1, H * dv]);
  },
};
