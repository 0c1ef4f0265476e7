// The DSL's built-in functions. Each declares its signature (parameter names, kinds, which
// are optional or named-only), which both the static checker (check.ts) and the elaborator's
// argument binding (bindArgs) read; its `run` adds IR nodes for arguments already checked.

import { Diagnostic, type Span } from "../diagnostics.js";
import type { AttrValue } from "../../ir/types.js";
import { type BuiltinHost, type Value, describe } from "./values.js";

/** What a parameter accepts. */
export type ArgKind =
  | "tensor" // a tensor or a declared parameter
  | "number" // a finite number
  | "int" // an integer
  | "bool"
  | "string"
  | "numbers" // a list of numbers
  | "bias" // the result of relative_bias(...)
  | "parts" // a count, or a list of integer widths
  | "dims"; // a list of integers

export interface ParamSig {
  readonly name: string;
  readonly kind: ArgKind;
  /** Passed by name only, never by position. */
  readonly named?: true;
  /** May be left out; then `dflt` if given, else the builtin decides. */
  readonly optional?: true;
  readonly dflt?: number | boolean;
  /** Numbers: "positive" (> 0, so at least 1 for an int) or "non-negative" (≥ 0). */
  readonly sign?: "positive" | "non-negative";
}

export interface BuiltinDef {
  readonly params: readonly ParamSig[];
  readonly result: "tensor" | "number" | "bias" | "tuple";
  /** For a tuple result: the argument whose count (or list length) is the tuple's length. */
  readonly tupleLength?: string;
  run(host: BuiltinHost, a: Args): Value;
}

/** The parameters that may be given by position, in order. */
export const positionalParams = (def: BuiltinDef) => def.params.filter((p) => !p.named);

/** A call's arguments as the elaborator evaluated them. */
export interface CallArgs {
  readonly args: readonly Value[];
  readonly argSpans: readonly Span[];
  readonly named: readonly { name: string; value: Value; span: Span }[];
  readonly span: Span;
}

const kindWords: Record<ArgKind, string> = {
  tensor: "a tensor",
  number: "a number",
  int: "an integer",
  bool: "true or false",
  string: "a string",
  numbers: "a list of numbers",
  bias: "relative_bias(...)",
  parts: "a count or a list of widths",
  dims: "a list of integers",
};

const isTensor = (v: Value) => typeof v === "object" && (v.kind === "tensor" || v.kind === "param");
const isIntList = (v: Value) => typeof v === "object" && v.kind === "tuple" && v.items.every((x) => typeof x === "number" && Number.isInteger(x));

function accepts(kind: ArgKind, v: Value): boolean {
  switch (kind) {
    case "tensor": return isTensor(v);
    case "number": return typeof v === "number";
    case "int": return typeof v === "number" && Number.isInteger(v);
    case "bool": return typeof v === "boolean";
    case "string": return typeof v === "string";
    case "numbers": return typeof v === "object" && v.kind === "tuple" && v.items.every((x) => typeof x === "number");
    case "bias": return typeof v === "object" && v.kind === "bias";
    case "parts": return (typeof v === "number" && Number.isInteger(v)) || isIntList(v);
    case "dims": return isIntList(v);
  }
}

/** The numbers a value holds (a list's items), to check their sign. */
const numbersIn = (v: Value): number[] =>
  typeof v === "number" ? [v] : typeof v === "object" && v.kind === "tuple" ? v.items.filter((x): x is number => typeof x === "number") : [];

function signWords(p: ParamSig): string {
  const int = p.kind !== "number";
  if (p.sign === "positive") return int ? "at least 1" : "a positive number";
  if (p.sign === "non-negative") return int ? "at least 0" : "a non-negative number";
  return "a finite number";
}

/** A builtin's arguments bound to its parameters, defaults filled in and kinds checked. */
export class Args {
  constructor(
    readonly fn: string,
    readonly span: Span,
    private readonly host: BuiltinHost,
    private readonly values: ReadonlyMap<string, { value: Value; span: Span }>,
  ) {}

  has(name: string): boolean {
    return this.values.has(name);
  }
  value(name: string): Value | undefined {
    return this.values.get(name)?.value;
  }
  spanOf(name: string): Span {
    return this.values.get(name)?.span ?? this.span;
  }
  tensor(name: string): number {
    return this.host.tensor(this.values.get(name)!.value, this.spanOf(name), `${this.fn}(): '${name}'`);
  }
  number(name: string): number {
    return this.values.get(name)!.value as number;
  }
  bool(name: string): boolean {
    return this.values.get(name)!.value as boolean;
  }
  string(name: string): string {
    return this.values.get(name)!.value as string;
  }
  numbers(name: string): number[] {
    return (this.values.get(name)!.value as Extract<Value, { kind: "tuple" }>).items as number[];
  }
}

/**
 * Binds a call's arguments to a builtin's parameters: positional ones in order, then named ones;
 * too many positional arguments, an unknown or repeated name, a missing argument, a value of the
 * wrong kind or sign are each a diagnostic.
 */
export function bindArgs(fn: string, def: BuiltinDef, host: BuiltinHost, c: CallArgs): Args {
  const positional = positionalParams(def);
  if (c.args.length > positional.length)
    throw new Diagnostic(`${fn}() takes at most ${positional.length} positional arguments, got ${c.args.length}`, c.argSpans[positional.length], { code: "WF203" });
  const values = new Map<string, { value: Value; span: Span }>();
  c.args.forEach((value, i) => values.set(positional[i].name, { value, span: c.argSpans[i] }));
  for (const n of c.named) {
    if (!def.params.some((p) => p.name === n.name))
      throw new Diagnostic(`${fn}() has no argument '${n.name}' (it takes ${def.params.map((p) => p.name).join(", ")})`, n.span, { code: "WF203" });
    if (values.has(n.name)) throw new Diagnostic(`${fn}(): '${n.name}' is given twice`, n.span, { code: "WF203" });
    values.set(n.name, { value: n.value, span: n.span });
  }
  for (const p of def.params) {
    const got = values.get(p.name);
    if (!got) {
      if (p.dflt !== undefined) values.set(p.name, { value: p.dflt, span: c.span });
      else if (!p.optional) throw new Diagnostic(`${fn}() needs '${p.name}'`, c.span, { code: "WF203" });
      continue;
    }
    if (!accepts(p.kind, got.value))
      throw new Diagnostic(`${fn}(): '${p.name}' should be ${kindWords[p.kind]}, found ${describe(got.value)}`, got.span, { code: "WF204" });
    for (const x of numbersIn(got.value)) {
      const ok = Number.isFinite(x) && (p.sign === "positive" ? x > 0 : p.sign === "non-negative" ? x >= 0 : true);
      if (!ok) throw new Diagnostic(`${fn}(): '${p.name}' should be ${signWords(p)}, found ${x}`, got.span, { code: "WF210" });
    }
  }
  return new Args(fn, c.span, host, values);
}

const T = (id: number): Value => ({ kind: "tensor", id });

/** The fields each rope_scaling type reads (beyond head_dim and theta). */
const ROPE_FIELDS: Record<string, readonly string[]> = {
  default: [],
  linear: ["factor"],
  llama3: ["factor", "low_freq", "high_freq", "original"],
  longrope: ["short_factor", "long_factor", "original", "factor"],
};

/** rope()'s attributes: its scaling type checked against the fields given. */
function ropeScaling(a: Args): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = { head_dim: a.number("head_dim"), theta: a.number("theta") };
  const scaling = a.has("scaling") ? a.string("scaling") : "default";
  const fields = ROPE_FIELDS[scaling];
  if (!fields) throw new Diagnostic(`rope(): scaling '${scaling}' is not supported (${Object.keys(ROPE_FIELDS).join(", ")})`, a.spanOf("scaling"), { code: "WF210" });
  // a model file passes every field its config may hold; the type reads its own
  for (const f of fields) if (!a.has(f)) throw new Diagnostic(`rope(): ${scaling} scaling needs '${f}'`, a.span, { code: "WF203" });
  if (scaling === "default") return attrs;
  attrs.scaling = scaling;
  for (const f of fields) attrs[f] = f.endsWith("_factor") ? a.numbers(f) : a.number(f);
  if (scaling === "longrope") {
    // transformers' default magnitude: sqrt(1 + ln(factor) / ln(original)), factor = context / original
    const factor = a.number("factor"), original = a.number("original");
    // (0: the default)
    attrs.attn_factor = a.has("attn_factor") && a.number("attn_factor") > 0 ? a.number("attn_factor") : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
    delete attrs.factor;
    const half = a.number("head_dim") / 2;
    for (const f of ["short_factor", "long_factor"])
      if (a.numbers(f).length !== half) throw new Diagnostic(`rope(): '${f}' has ${a.numbers(f).length} values, expected head_dim / 2 = ${half}`, a.spanOf(f), { code: "WF210" });
  }
  return attrs;
}
const tensor = (name: string): ParamSig => ({ name, kind: "tensor" });

/** One tensor in, one out, of the IR op of the same name. */
function unary(op: string): BuiltinDef {
  return { params: [tensor("x")], result: "tensor", run: (h, a) => T(h.node(op, [a.tensor("x")], {}, a.span)) };
}

export const builtins: Record<string, BuiltinDef> = {
  gelu: unary("gelu"),
  gelu_tanh: unary("gelu_tanh"),
  silu: unary("silu"),
  relu: unary("relu"),
  softmax: unary("softmax"),
  transpose: unary("transpose"),
  /** positions(ids): past, past+1, ...; positions(ids, padding_idx: p): RoBERTa's, counting only ids other than p from p + 1. */
  positions: {
    params: [
      tensor("x"), { name: "padding_idx", kind: "int", named: true, optional: true, sign: "non-negative" },
      // positions(ids, offset: k): past + k, past + k + 1, ... (BART's learned positions, k = 2)
      { name: "offset", kind: "int", named: true, optional: true, sign: "non-negative" },
    ],
    result: "tensor",
    run: (h, a) => {
      if (a.has("padding_idx") && a.has("offset")) throw new Diagnostic("positions(): 'offset' and 'padding_idx' exclude each other", a.spanOf("offset"), { code: "WF203" });
      const attrs = a.has("padding_idx") ? { padding_idx: a.number("padding_idx") } : a.has("offset") && a.number("offset") > 0 ? { offset: a.number("offset") } : {};
      return T(h.node("positions", [a.tensor("x")], attrs, a.span));
    },
  },
  /** sinusoidal_positions(ids, dim): the sinusoidal embeddings [rows, dim] of the rows' positions (Marian's). */
  sinusoidal_positions: {
    params: [tensor("x"), { name: "dim", kind: "int", sign: "positive" }],
    result: "tensor",
    run: (h, a) => T(h.node("sinusoidal_positions", [a.tensor("x")], { dim: a.number("dim") }, a.span)),
  },
  first_row: unary("first_row"),
  /** patches(image, size): the image's whole size × size patches, flattened, one a row (a patch embedding is a linear over them). */
  patches: {
    params: [tensor("image"), { name: "size", kind: "int", sign: "positive" }],
    result: "tensor",
    run: (h, a) => T(h.node("patches", [a.tensor("image")], { size: a.number("size") }, a.span)),
  },
  /** concat(a, b): the rows of a, then those of b (a class token before the patches). */
  concat: {
    params: [tensor("a"), tensor("b")],
    result: "tensor",
    run: (h, a) => T(h.node("concat", [a.tensor("a"), a.tensor("b")], {}, a.span)),
  },
  /** tanh(x): the soft-capping op with cap 1. */
  tanh: { params: [tensor("x")], result: "tensor", run: (h, a) => T(h.node("softcap", [a.tensor("x")], { cap: 1 }, a.span)) },
  /** tanh(x / cap) · cap (Gemma 2's attention and logit soft-capping). */
  softcap: { params: [tensor("x"), { name: "cap", kind: "number", sign: "positive" }], result: "tensor", run: (h, a) => T(h.node("softcap", [a.tensor("x")], { cap: a.number("cap") }, a.span)) },

  embedding: {
    params: [tensor("table"), tensor("ids")],
    result: "tensor",
    run: (h, a) => T(h.node("embedding", [a.tensor("table"), a.tensor("ids")], {}, a.span)),
  },

  /** linear(x, w, bias?) with w stored [out, in] as torch.nn.Linear does. */
  linear: {
    params: [tensor("x"), tensor("w"), { name: "bias", kind: "tensor", optional: true }],
    result: "tensor",
    run: (h, a) => T(h.node("linear", [a.tensor("x"), a.tensor("w"), ...(a.has("bias") ? [a.tensor("bias")] : [])], {}, a.span)),
  },

  layernorm: {
    params: [tensor("x"), tensor("weight"), tensor("bias"), { name: "eps", kind: "number", dflt: 1e-5, sign: "non-negative" }],
    result: "tensor",
    run: (h, a) => T(h.node("layernorm", [a.tensor("x"), a.tensor("weight"), a.tensor("bias")], { eps: a.number("eps") }, a.span)),
  },

  /** rmsnorm(x, weight, eps) over each row; group: over each run of that many columns (per-head norms); offset: the gain is offset + weight (Gemma's 1 + w). */
  rmsnorm: {
    params: [
      tensor("x"), tensor("weight"), { name: "eps", kind: "number", dflt: 1e-6, sign: "non-negative" },
      { name: "group", kind: "int", named: true, optional: true, sign: "positive" },
      { name: "offset", kind: "number", named: true, optional: true },
    ],
    result: "tensor",
    run: (h, a) => T(h.node("rmsnorm", [a.tensor("x"), a.tensor("weight")], {
      eps: a.number("eps"),
      ...(a.has("group") ? { group: a.number("group") } : {}),
      ...(a.has("offset") && a.number("offset") !== 0 ? { offset: a.number("offset") } : {}),
    }, a.span)),
  },

  /**
   * Rotary embedding of each head; `scaling` names transformers' rope_scaling type ("default",
   * "linear", "llama3", "longrope"); each type reads its fields among the named arguments after it.
   */
  rope: {
    params: [
      tensor("x"),
      { name: "head_dim", kind: "int", named: true, sign: "positive" },
      { name: "theta", kind: "number", named: true, dflt: 10000, sign: "positive" },
      { name: "scaling", kind: "string", named: true, optional: true },
      { name: "factor", kind: "number", named: true, optional: true, sign: "positive" },
      { name: "low_freq", kind: "number", named: true, optional: true, sign: "positive" },
      { name: "high_freq", kind: "number", named: true, optional: true, sign: "positive" },
      { name: "original", kind: "int", named: true, optional: true, sign: "positive" },
      { name: "short_factor", kind: "numbers", named: true, optional: true, sign: "positive" },
      { name: "long_factor", kind: "numbers", named: true, optional: true, sign: "positive" },
      { name: "attn_factor", kind: "number", named: true, optional: true, sign: "non-negative" },
    ],
    result: "tensor",
    run: (h, a) => T(h.node("rope", [a.tensor("x")], ropeScaling(a), a.span)),
  },

  /** split(x, n) into n equal column blocks, or split(x, [w0, w1, ...]). */
  split: {
    params: [tensor("x"), { name: "parts", kind: "parts", sign: "positive" }],
    result: "tuple",
    tupleLength: "parts",
    run(h, a) {
      const x = a.tensor("x");
      const parts = a.value("parts")!;
      const width = h.typeOf(x).shape.at(-1) as number;
      let sizes: number[];
      if (typeof parts === "number") {
        if (width % parts) throw new Diagnostic(`split(): width ${width} does not divide into ${parts} parts`, a.span, { code: "WF209" });
        sizes = Array(parts).fill(width / parts);
      } else {
        sizes = (parts as Extract<Value, { kind: "tuple" }>).items as number[];
        if (sizes.reduce((s, w) => s + w, 0) !== width) throw new Diagnostic(`split(): sizes [${sizes.join(", ")}] do not add up to width ${width}`, a.span, { code: "WF209" });
      }
      let start = 0;
      return { kind: "tuple", items: sizes.map((size) => T(h.node("slice", [x], { start: (start += size) - size, size }, a.span))) };
    },
  },

  /** T5-style bucketed relative position bias, for attention(..., bias: relative_bias(...)). */
  relative_bias: {
    params: [
      tensor("table"),
      { name: "bidirectional", kind: "bool", named: true, dflt: true },
      { name: "buckets", kind: "int", named: true, dflt: 32, sign: "positive" },
      { name: "max_distance", kind: "int", named: true, dflt: 128, sign: "positive" },
    ],
    result: "bias",
    run(h, a) {
      const bidirectional = a.bool("bidirectional");
      const buckets = a.number("buckets");
      const maxDistance = a.number("max_distance");
      // the exact buckets (half of those of a direction) must be at least one, and the
      // logarithmic ones must span from there up to max_distance
      const exact = Math.floor((bidirectional ? Math.floor(buckets / 2) : buckets) / 2);
      if (exact < 1) throw new Diagnostic(`relative_bias(): ${buckets} buckets are too few (at least ${bidirectional ? 4 : 2})`, a.spanOf("buckets"), { code: "WF210" });
      if (maxDistance <= exact)
        throw new Diagnostic(`relative_bias(): max_distance ${maxDistance} should exceed the ${exact} exact buckets`, a.spanOf("max_distance"), { code: "WF210" });
      return { kind: "bias", table: a.tensor("table"), bidirectional, buckets, maxDistance };
    },
  },

  attention: {
    params: [
      tensor("q"), tensor("k"), tensor("v"),
      { name: "heads", kind: "int", named: true, sign: "positive" },
      { name: "kv_heads", kind: "int", named: true, optional: true, sign: "positive" },
      { name: "scale", kind: "number", named: true, optional: true },
      { name: "causal", kind: "bool", named: true, dflt: false },
      { name: "cache", kind: "bool", named: true, dflt: false },
      { name: "bias", kind: "bias", named: true, optional: true },
      { name: "mask", kind: "tensor", named: true, optional: true },
      // causal only: the query at position i sees keys i − window < j ≤ i (0: every earlier key)
      { name: "window", kind: "int", named: true, dflt: 0, sign: "non-negative" },
      // scores soft-capped to softcap·tanh(s / softcap) (0: not capped)
      { name: "softcap", kind: "number", named: true, dflt: 0, sign: "non-negative" },
    ],
    result: "tensor",
    run(h, a) {
      const [q, k, v] = [a.tensor("q"), a.tensor("k"), a.tensor("v")];
      const heads = a.number("heads");
      const headDim = (h.typeOf(q).shape.at(-1) as number) / heads;
      const attrs: Record<string, unknown> = {
        heads,
        kv_heads: a.has("kv_heads") ? a.number("kv_heads") : heads,
        scale: a.has("scale") ? a.number("scale") : 1 / Math.sqrt(headDim),
        causal: a.bool("causal"),
        ...(a.number("window") > 0 ? { window: a.number("window") } : {}),
        ...(a.number("softcap") > 0 ? { softcap: a.number("softcap") } : {}),
        // a cached attention gets its own KV cache, named so that variants of this entry share it
        cache: a.bool("cache") ? h.cacheSlot() : false,
      };
      const args = [q, k, v];
      const bias = a.value("bias");
      if (bias !== undefined && typeof bias === "object" && bias.kind === "bias") {
        Object.assign(attrs, { bias: true, bias_bidirectional: bias.bidirectional, bias_buckets: bias.buckets, bias_max_distance: bias.maxDistance });
        args.push(bias.table);
      }
      if (a.has("mask")) {
        attrs.mask = true;
        args.push(a.tensor("mask"));
      }
      return T(h.node("attention", args, attrs, a.span));
    },
  },

  /**
   * DeBERTa's disentangled attention (transformers' DebertaV2 DisentangledSelfAttention): q·k plus the
   * content→position term (c2p: q·pos_key) and the position→content one (p2c: k·pos_query) at each
   * pair's relative position, pos_key/pos_query being the relative embeddings through the key/query
   * projections. buckets and max_distance are position_buckets and max_relative_positions as HF
   * reads them: no buckets at 0 or below, and max_positions where max_distance is below 1. The scale is
   * 1/sqrt(head_dim · (1 + c2p + p2c)), the square root in f32 as HF computes it.
   */
  disentangled_attention: {
    params: [
      tensor("q"), tensor("k"), tensor("v"),
      { name: "heads", kind: "int", named: true, sign: "positive" },
      { name: "c2p", kind: "bool", named: true, dflt: false },
      { name: "p2c", kind: "bool", named: true, dflt: false },
      { name: "pos_key", kind: "tensor", named: true, optional: true },
      { name: "pos_query", kind: "tensor", named: true, optional: true },
      { name: "buckets", kind: "int", named: true, dflt: -1 },
      { name: "max_distance", kind: "int", named: true, dflt: -1 },
      { name: "max_positions", kind: "int", named: true, optional: true, sign: "positive" },
      { name: "mask", kind: "tensor", named: true, optional: true },
    ],
    result: "tensor",
    run(h, a) {
      const [q, k, v] = [a.tensor("q"), a.tensor("k"), a.tensor("v")];
      const heads = a.number("heads"), c2p = a.bool("c2p"), p2c = a.bool("p2c");
      let maxDistance = a.number("max_distance");
      if (maxDistance < 1) {
        if (!a.has("max_positions")) throw new Diagnostic(`disentangled_attention(): max_distance ${maxDistance} needs 'max_positions' (HF then takes max_position_embeddings)`, a.spanOf("max_distance"), { code: "WF203" });
        maxDistance = a.number("max_positions");
      }
      const buckets = a.number("buckets");
      if (buckets > 0 && (buckets < 2 || maxDistance - 1 <= Math.floor(buckets / 2)))
        throw new Diagnostic(`disentangled_attention(): ${buckets} buckets need max_distance above buckets / 2 + 1, found ${maxDistance}`, a.spanOf("buckets"), { code: "WF210" });
      const headDim = (h.typeOf(q).shape.at(-1) as number) / heads;
      const f = Math.fround;
      const attrs: Record<string, unknown> = {
        heads,
        scale: 1 / f(Math.sqrt(f(headDim * (1 + Number(c2p) + Number(p2c))))),
        ...(c2p ? { c2p } : {}),
        ...(p2c ? { p2c } : {}),
        ...(buckets > 0 ? { buckets } : {}),
        max_distance: maxDistance,
      };
      const args = [q, k, v];
      for (const [term, on, pos] of [["c2p", c2p, "pos_key"], ["p2c", p2c, "pos_query"]] as const) {
        if (!on) continue;
        if (!a.has(pos)) throw new Diagnostic(`disentangled_attention(): ${term} needs '${pos}'`, a.span, { code: "WF203" });
        args.push(a.tensor(pos));
      }
      if (a.has("mask")) {
        attrs.mask = true;
        args.push(a.tensor("mask"));
      }
      return T(h.node("disentangled_attention", args, attrs, a.span));
    },
  },

  /** reshape(x, [d0, d1, ...]): new trailing dims for every row. */
  reshape: {
    params: [tensor("x"), { name: "shape", kind: "dims", sign: "positive" }],
    result: "tensor",
    run: (h, a) => T(h.node("reshape", [a.tensor("x")], { shape: (a.value("shape") as Extract<Value, { kind: "tuple" }>).items as number[] }, a.span)),
  },

  sqrt: {
    params: [{ name: "x", kind: "number", sign: "non-negative" }],
    result: "number",
    run: (_h, a) => Math.sqrt(a.number("x")),
  },
};
