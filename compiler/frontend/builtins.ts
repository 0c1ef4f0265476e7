// The DSL's built-in functions: each checks its arguments and adds IR nodes.

import { Diagnostic, type Span } from "../diagnostics.js";
import { type Elaborator, type Value, describe } from "./elaborate.js";

export interface Call {
  args: Value[];
  argSpans: Span[];
  named: Map<string, { value: Value; span: Span }>;
  span: Span;
}

type Builtin = (el: Elaborator, c: Call) => Value;

/** Positional argument i, or the named one, removing it from the named set. */
function arg(c: Call, i: number, name: string): Value | undefined {
  const n = c.named.get(name);
  if (n) {
    c.named.delete(name);
    return n.value;
  }
  return c.args[i];
}
function need(c: Call, i: number, name: string, fn: string): Value {
  const v = arg(c, i, name);
  if (v === undefined) throw new Diagnostic(`${fn}() needs '${name}'`, c.span);
  return v;
}
function number(c: Call, i: number, name: string, fn: string, dflt?: number): number {
  const v = arg(c, i, name) ?? dflt;
  if (typeof v !== "number") throw new Diagnostic(`${fn}(): '${name}' should be a number, found ${v === undefined ? "nothing" : describe(v)}`, c.span);
  return v;
}
function flag(c: Call, name: string, fn: string, dflt: boolean): boolean {
  const v = arg(c, -1, name) ?? dflt;
  if (typeof v !== "boolean") throw new Diagnostic(`${fn}(): '${name}' should be true or false`, c.span);
  return v;
}
function positional(c: Call, max: number, fn: string) {
  if (c.args.length > max) throw new Diagnostic(`${fn}() takes at most ${max} positional arguments, got ${c.args.length}`, c.argSpans[max]);
}
const T = (id: number): Value => ({ kind: "tensor", id });
const spanOf = (c: Call, i: number) => c.argSpans[i] ?? c.span;

function unary(op: string): Builtin {
  return (el, c) => {
    positional(c, 1, op);
    return T(el.node(op, [el.tensor(need(c, 0, "x", op), spanOf(c, 0))], {}, c.span));
  };
}

export const builtins: Record<string, Builtin> = {
  gelu: unary("gelu"),
  gelu_tanh: unary("gelu_tanh"),
  silu: unary("silu"),
  relu: unary("relu"),
  softmax: unary("softmax"),
  transpose: unary("transpose"),

  embedding(el, c) {
    positional(c, 2, "embedding");
    return T(el.node("embedding", [el.tensor(need(c, 0, "table", "embedding"), spanOf(c, 0)), el.tensor(need(c, 1, "ids", "embedding"), spanOf(c, 1))], {}, c.span));
  },

  positions(el, c) {
    positional(c, 1, "positions");
    return T(el.node("positions", [el.tensor(need(c, 0, "x", "positions"), spanOf(c, 0))], {}, c.span));
  },

  /** linear(x, w, b?) with w stored [out, in] as torch.nn.Linear does. */
  linear(el, c) {
    positional(c, 3, "linear");
    const args = [el.tensor(need(c, 0, "x", "linear"), spanOf(c, 0)), el.tensor(need(c, 1, "w", "linear"), spanOf(c, 1))];
    const b = arg(c, 2, "bias");
    if (b !== undefined) args.push(el.tensor(b, spanOf(c, 2)));
    return T(el.node("linear", args, {}, c.span));
  },

  layernorm(el, c) {
    positional(c, 4, "layernorm");
    const x = el.tensor(need(c, 0, "x", "layernorm"), spanOf(c, 0));
    const g = el.tensor(need(c, 1, "weight", "layernorm"), spanOf(c, 1));
    const b = el.tensor(need(c, 2, "bias", "layernorm"), spanOf(c, 2));
    return T(el.node("layernorm", [x, g, b], { eps: number(c, 3, "eps", "layernorm", 1e-5) }, c.span));
  },

  rmsnorm(el, c) {
    positional(c, 3, "rmsnorm");
    const x = el.tensor(need(c, 0, "x", "rmsnorm"), spanOf(c, 0));
    const g = el.tensor(need(c, 1, "weight", "rmsnorm"), spanOf(c, 1));
    return T(el.node("rmsnorm", [x, g], { eps: number(c, 2, "eps", "rmsnorm", 1e-6) }, c.span));
  },

  rope(el, c) {
    positional(c, 1, "rope");
    const x = el.tensor(need(c, 0, "x", "rope"), spanOf(c, 0));
    return T(el.node("rope", [x], { head_dim: number(c, -1, "head_dim", "rope"), theta: number(c, -1, "theta", "rope", 10000) }, c.span));
  },

  /** split(x, n) into n equal column blocks, or split(x, [w0, w1, ...]). */
  split(el, c) {
    positional(c, 2, "split");
    const x = el.tensor(need(c, 0, "x", "split"), spanOf(c, 0));
    const parts = need(c, 1, "parts", "split");
    const width = el.g.type(x).shape.at(-1) as number;
    let sizes: number[];
    if (typeof parts === "number") {
      if (width % parts) throw new Diagnostic(`split(): width ${width} does not divide into ${parts} parts`, c.span);
      sizes = Array(parts).fill(width / parts);
    } else if (typeof parts === "object" && parts.kind === "tuple" && parts.items.every((p) => typeof p === "number")) {
      sizes = parts.items as number[];
      if (sizes.reduce((a, b) => a + b, 0) !== width) throw new Diagnostic(`split(): sizes [${sizes.join(", ")}] do not add up to width ${width}`, c.span);
    } else throw new Diagnostic(`split(): parts should be a count or a list of widths`, spanOf(c, 1));
    let start = 0;
    return { kind: "tuple", items: sizes.map((size) => T(el.node("slice", [x], { start: (start += size) - size, size }, c.span))) };
  },

  /** T5-style bucketed relative position bias, for attention(..., bias: relative_bias(...)). */
  relative_bias(el, c) {
    positional(c, 1, "relative_bias");
    return {
      kind: "bias",
      table: el.tensor(need(c, 0, "table", "relative_bias"), spanOf(c, 0)),
      bidirectional: flag(c, "bidirectional", "relative_bias", true),
      buckets: number(c, -1, "buckets", "relative_bias", 32),
      maxDistance: number(c, -1, "max_distance", "relative_bias", 128),
    };
  },

  attention(el, c) {
    positional(c, 3, "attention");
    const fn = "attention";
    const q = el.tensor(need(c, 0, "q", fn), spanOf(c, 0));
    const k = el.tensor(need(c, 1, "k", fn), spanOf(c, 1));
    const v = el.tensor(need(c, 2, "v", fn), spanOf(c, 2));
    const heads = number(c, -1, "heads", fn);
    const kvHeads = number(c, -1, "kv_heads", fn, heads);
    const headDim = (el.g.type(q).shape.at(-1) as number) / heads;
    const attrs: Record<string, unknown> = {
      heads,
      kv_heads: kvHeads,
      scale: number(c, -1, "scale", fn, 1 / Math.sqrt(headDim)),
      causal: flag(c, "causal", fn, false),
    };
    // a cached attention gets its own KV cache, named so that variants of this entry share it
    attrs.cache = flag(c, "cache", fn, false) ? el.cacheSlot() : false;
    const args = [q, k, v];
    const bias = arg(c, -1, "bias");
    if (bias !== undefined) {
      if (typeof bias !== "object" || bias.kind !== "bias") throw new Diagnostic(`attention(): 'bias' should be relative_bias(...)`, c.span);
      Object.assign(attrs, { bias: true, bias_bidirectional: bias.bidirectional, bias_buckets: bias.buckets, bias_max_distance: bias.maxDistance });
      args.push(bias.table);
    }
    const mask = arg(c, -1, "mask");
    if (mask !== undefined) {
      attrs.mask = true;
      args.push(el.tensor(mask, c.span, "mask"));
    }
    return T(el.node("attention", args, attrs, c.span));
  },

  /** reshape(x, [d0, d1, ...]): new trailing dims for every row. */
  reshape(el, c) {
    positional(c, 2, "reshape");
    const x = el.tensor(need(c, 0, "x", "reshape"), spanOf(c, 0));
    const dims = need(c, 1, "shape", "reshape");
    if (typeof dims !== "object" || dims.kind !== "tuple" || !dims.items.every((d) => typeof d === "number"))
      throw new Diagnostic(`reshape(): shape should be a list of numbers`, spanOf(c, 1));
    return T(el.node("reshape", [x], { shape: dims.items as number[] }, c.span));
  },

  sqrt(_el, c) {
    positional(c, 1, "sqrt");
    return Math.sqrt(number(c, 0, "x", "sqrt"));
  },
};
