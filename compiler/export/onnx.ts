// ONNX export: writes one entry of a Program (after runPipeline) as an ONNX ModelProto, opset 17,
// IR version 8, with the program's parameters as initializers. Intended for comparisons with
// ONNX Runtime (Web): the graph follows the ops' reference semantics in ir/ops.ts.
//
// Graph I/O follows the usual decoder-with-KV-cache convention (HF Optimum, ORT Web demos):
//   inputs   input_ids            int64 [1, S]
//            token_type_ids       int64 [1, S]      (an input of kind "segments", e.g. BERT)
//            attention_mask       int64 [1, S]      (an input of kind "padding": 1 keep, 0 mask)
//            pixel_values         float [1, C, H, W] (an input of kind "image", e.g. ViT: one image)
//            past_key_{i}         float [1, Hkv, P, dk]   for each cached attention i, in graph order
//            past_value_{i}       float [1, Hkv, P, dv]
//   outputs  the entry's outputs  float [1, S, ...]  (e.g. logits [1, S, V])
//            present_key_{i}      float [1, Hkv, P+S, dk]
//            present_value_{i}    float [1, Hkv, P+S, dv]
// S and P are dynamic. Positions are P + arange(S) with P = Shape(past_key_0)[2]; cached causal
// attention lets the query at position P+r see keys 0..P+r. A first call passes pasts with P = 0.
//
// An entry without a KV cache (an encoder) takes a batch instead: inputs [B, S] and outputs
// [B, S, ...] (a first or last row's outputs [B, 1, ...]), B dynamic, as HF's encoder exports.
// Inside, the B sequences' rows are stacked ([B·S, ...], the IR's rows): row-wise ops are written
// as for one sequence, and the ops that read across rows (positions, attention and its padding
// mask, first_row, last_row) see each sequence apart. An op that mixes rows otherwise is refused.
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
// any op or attribute without a writer in onnx/ops.ts (a newer IR feature fails loudly, not
// silently). onnx/graph.ts holds the protobuf pieces.

import { type RopeAttrs, attrsOf, hasTrait, isOp, ropeFrequencies } from "../../ir/ops.js";
import type { Graph, Node, Program, Shape } from "../../ir/types.js";
import { DIM_B, DIM_P, DIM_S, DIM_T, FLOAT, INT64, IR_VERSION, MS_DOMAIN, NEG, OPSET, OnnxExportError, OnnxGraph, transposed } from "./onnx/graph.js";
import { type Ctx, writerOf } from "./onnx/ops.js";
import { Message } from "./protobuf.js";

export { OnnxExportError } from "./onnx/graph.js";

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
    .filter((n, i) => live[i] && isOp(n, "attention") && n.attrs.cache)
    .map((n) => {
      const h = attrsOf(n, "attention").kv_heads;
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
  const cached = nodes.filter((n) => isOp(n, "attention") && n.attrs.cache);
  // an image entry (ViT) has fixed rows (its patches, a class token, a table of learned positions
  // added row by row): it takes one image, pixel_values [1, C, H, W]
  const image = nodes.some((n) => isOp(n, "input") && n.attrs.kind === "image");
  const batched = cached.length === 0 && !image;
  // (batched: which values depend on the inputs, to find ops that would mix the sequences' rows)
  const perCall = new Set<number>();
  for (const n of nodes) {
    if (n.op === "input" || n.args.some((a) => perCall.has(a))) perCall.add(n.id);
    const writer = writerOf(n.op);
    if (!writer) throw new OnnxExportError(`${where(n)}: op '${n.op}' is not supported`);
    const unknown: string[] = [];
    for (const [k, v] of Object.entries(n.attrs)) {
      const handled = writer.attrs[k];
      if (!handled) {
        if (v !== false) unknown.push(k);
      } else if (handled !== true && v !== undefined) {
        const why = handled(v);
        if (why) throw new OnnxExportError(`${where(n)}: ${why}`);
      }
    }
    if (unknown.length) throw new OnnxExportError(`${where(n)}: attribute${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} not supported`);
    const mixes = isOp(n, "matmul") ? perCall.has(n.args[1]) : !writer.sequences && !hasTrait(n, "rowwise");
    if (batched && perCall.has(n.id) && mixes) throw new OnnxExportError(`${where(n)}: mixes the rows of a call, which a batch of sequences cannot express`);
  }

  const og = new OnnxGraph();
  const val = new Map<number, string>(); // IR node id → ONNX value name
  const node = (id: number) => g.nodes[id];

  // ---- graph inputs
  const kindNames: Record<string, string> = { tokens: "input_ids", segments: "token_type_ids", padding: "attention_mask" };
  const kindCount = new Map<string, number>();
  let seqSource: string | undefined;
  for (const n of nodes) {
    if (!isOp(n, "input")) continue;
    const kind = n.attrs.kind;
    if (kind === "image") {
      if (kindCount.has(kind)) throw new OnnxExportError(`${where(n)}: a second image input is not supported`);
      kindCount.set(kind, 1);
      val.set(n.id, og.input("pixel_values", FLOAT, n.type.shape.map(Number)));
      continue;
    }
    const k = kindCount.get(kind) ?? 0;
    kindCount.set(kind, k + 1);
    const base = kindNames[kind];
    if (!base) throw new OnnxExportError(`${where(n)}: input kind '${kind}' is not supported`);
    if (n.type.shape.length !== 1 || n.type.shape[0] !== "S") throw new OnnxExportError(`${where(n)}: expected an input of shape [S]`);
    const name = og.input(k === 0 ? base : `${base}_${k}`, INT64, [batched ? DIM_B : 1, DIM_S]);
    seqSource ??= name;
    const flat = og.reshape(name, [-1]);
    val.set(n.id, n.type.dtype === "f32" ? og.op("Cast", [flat], { to: { i: FLOAT } }) : flat);
  }
  const pastInputs = cached.map((n, i) => {
    const H = attrsOf(n, "attention").kv_heads;
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
  /** B as a 1-D tensor [B] (batched entries). */
  const batch = () => once("B", () => og.op("Shape", [seqSource!], { start: { i: 0 }, end: { i: 1 } }));
  /** x reshaped to [B, ...dims] (batched) or [1, ...dims]. */
  const bySequence = (x: string, dims: readonly number[]) => (batched ? og.op("Reshape", [x, og.op("Concat", [batch(), og.int64(dims)], { axis: { i: 0 } })]) : og.reshape(x, [1, ...dims]));
  /** P + arange(S): the absolute positions of this call's rows (P = 0 without a cache); batched, arange(S) for each sequence, stacked. */
  const positions = () =>
    once("positions", () => {
      const range = og.op("Range", [pastLen(), og.op("Add", [pastLen(), seqLen()]), one()]);
      return batched ? og.reshape(og.op("Expand", [range, og.op("Concat", [batch(), og.int64([1])], { axis: { i: 0 } })]), [-1]) : range;
    });
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
  const ropeTables = (a: RopeAttrs) =>
    once(`rope:${JSON.stringify(a)}`, () => {
      const inv = ropeFrequencies(a);
      const pos = og.unsqueeze(og.op("Cast", [positions()], { to: { i: FLOAT } }), [1]); // [S, 1]
      const ang = og.op("Mul", [pos, og.float(inv)]); // [S, half]
      const full = (f: string) => og.unsqueeze(og.op("Concat", [f, f], { axis: { i: -1 } }), [1]);
      const cos = full(og.op("Cos", [ang])), sin = full(og.op("Sin", [ang]));
      return `${cos}\n${sin}`;
    });

  // ---- parameters as initializers
  const initByData = new Map<Float32Array, Map<string, string>>(); // data → layout key → initializer name
  const paramInit = (n: Node, layout: "as-is" | "transposed"): string => {
    const name = attrsOf(n, "param").name;
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
    const p = isOp(w, "param") ? program.params.get(w.attrs.name) : undefined;
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
  const ctx: Ctx = { og, value, node, paramInit, quantMatmul, positions, causalMask, ropeTables, linearMode, pastInputs, cachedIndex: new Map(cached.map((n, i) => [n.id, i])), batched, bySequence };
  for (const n of nodes) {
    if (n.op === "input" || n.op === "param") continue;
    val.set(n.id, writerOf(n.op)!.write(n, ctx));
  }

  // ---- graph outputs
  const dimOf = (d: Shape[number]) => (d === "S" ? DIM_S : d);
  for (const o of g.outputs) {
    const n = node(o.id);
    if (n.type.dtype !== "f32") throw new OnnxExportError(`${where(n)}: output ${o.name} is not f32`);
    og.reserve(o.name);
    if (batched) og.op("Reshape", [value(o.id), og.op("Concat", [batch(), og.int64([-1, ...n.type.shape.slice(1).map(Number)])], { axis: { i: 0 } })], {}, o.name);
    else og.unsqueeze(value(o.id), [0], o.name);
    og.output(o.name, FLOAT, [batched ? DIM_B : 1, ...n.type.shape.map(dimOf)]);
  }
  cached.forEach((n, i) => {
    const H = attrsOf(n, "attention").kv_heads;
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
