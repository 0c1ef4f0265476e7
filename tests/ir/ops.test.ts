// Every op kind of the table, each from an example node on random shapes (widths that leave SIMD
// tails): its IR text prints and parses back, the verifier accepts it and rejects an attribute of
// the wrong kind (so does the parser), its operand roles and traits hold, and the interpreter
// agrees with the lowering (the one-op graph compiled and run, as tests/kernels does).

import { describe, expect, it } from "vitest";
import { canonicalizeMatmul } from "../../compiler/passes/canonicalize-matmul.js";
import { foldNormOffset } from "../../compiler/passes/fold-norm-offset.js";
import { foldTranspose } from "../../compiler/passes/fold-transpose.js";
import type { AttrKind } from "../../ir/attrs.js";
import { GraphBuilder, printGraph, verifyGraph, verifyProgram } from "../../ir/graph.js";
import { interpret, newSession } from "../../ir/interp.js";
import { type OpKind, activations, hasTrait, opDef, opKinds, roles } from "../../ir/ops.js";
import { parseGraphs } from "../../ir/parse.js";
import type { Graph, Node, Program } from "../../ir/types.js";
import { relError, rng } from "../helpers.js";
import { type Ctx, check } from "../kernels/check.js";

type R = ReturnType<typeof rng>;
interface Example {
  /** Builds the graph; returns the node of the op under test and the graph's output (the same node unless given). */
  build: (c: Ctx, r: R) => number | [node: number, out: number];
  /** Row counts of successive calls (default [3] or [5, 1]). */
  calls?: number[];
  /** Seeds to build it with (default [1, 2]): more where the example draws among variants. */
  seeds?: number[];
  /** Passes the lowering needs first. */
  lower?: (p: Program) => Program;
}

const widths = [1, 3, 5, 7, 13, 17, 67];
const lanes = [4, 8, 12, 36, 68]; // gated kernels take K a multiple of 4

/** One example per op kind. */
const examples: Record<OpKind, Example> = {
  input: { build: (c) => c.mask() },
  param: { build: (c, r) => { const D = r.pick(widths), w = c.param([D]); return [w, c.b.add("add", [c.act(D), w])]; } },
  // plain, RoBERTa's padding-counting positions (the long call holds ids equal to padding_idx), and BART's offset ones
  positions: {
    build: (c, r) => {
      const attrs = r.pick([{}, { padding_idx: 3 }, { padding_idx: 11 }, { offset: 2 }]);
      const p = c.b.add("positions", [c.ids], attrs);
      return [p, c.b.add("embedding", [c.param([64, 3]), p])];
    },
    calls: [4, 1, 2, 30],
    seeds: [1, 2, 3, 4, 5, 6],
  },
  // a cached attention advances `past`, so later calls read rows past 0 of the table
  sinusoidal_positions: {
    build: (c, r) => {
      const D = r.pick(widths), p = c.b.add("sinusoidal_positions", [c.ids], { dim: D }), kv = c.act(D);
      return [p, c.b.add("add", [p, c.b.add("attention", [c.act(D), kv, kv], { heads: 1, kv_heads: 1, scale: 0.3, causal: true, cache: true })])];
    },
    calls: [4, 1, 2, 5],
    seeds: [1, 2, 3, 4],
  },
  embedding: { build: (c, r) => c.act(r.pick(widths)) },
  linear: {
    build: (c, r) => {
      const [K, N] = [r.pick(widths), r.pick(widths)];
      return c.b.add("linear", [c.act(K), c.param([N, K]), c.param([N]), c.act(N)], { act: "silu", residual: true });
    },
  },
  gated_linear: { build: (c, r) => { const [K, N] = [r.pick(lanes), r.pick(widths)]; return c.b.add("gated_linear", [c.act(K), c.param([N, K]), c.param([N, K])], { act: "gelu" }); } },
  matmul: { build: (c, r) => { const [K, N] = [r.pick(widths), r.pick(widths)]; return c.b.add("matmul", [c.act(K), c.param([K, N])]); }, lower: (p) => foldTranspose(canonicalizeMatmul(p)) },
  transpose: {
    build: (c, r) => {
      const [A, B] = [r.pick([2, 3, 5]), r.pick(widths)];
      const t = c.b.add("transpose", [c.b.add("reshape", [c.act(A * B)], { shape: [A, B] })]);
      return [t, c.b.add("reshape", [t], { shape: [A * B] })];
    },
  },
  reshape: { build: (c, r) => { const D = r.pick(widths); return c.b.add("reshape", [c.act(3 * D)], { shape: [D, 3] }); } },
  first_row: { build: (c, r) => c.b.add("first_row", [c.act(r.pick(widths))]), calls: [4, 1] },
  last_row: { build: (c, r) => c.b.add("last_row", [c.act(r.pick(widths))]), calls: [4, 1] },
  slice: { build: (c, r) => { const D = r.pick(widths); return c.b.add("slice", [c.act(D + 5)], { start: 2, size: D }); } },
  // an image [1, C, H, W] from the first row of an activation; sizes that leave pixels past the last whole patch (at most 20 patches: rows within the context)
  patches: {
    build: (c, r) => {
      const [C, H, W, size] = [r.pick([1, 3]), r.pick([5, 7, 9]), r.pick([4, 6, 11]), r.pick([2, 3, 4])];
      const image = c.b.add("reshape", [c.b.add("first_row", [c.act(C * H * W)])], { shape: [C, H, W] });
      return c.b.add("patches", [image], { size });
    },
    seeds: [1, 2, 3, 4, 5, 6],
  },
  // fixed rows (class tokens) before a computed one
  concat: { build: (c, r) => { const D = r.pick(widths); return c.b.add("concat", [c.param([2, D]), c.b.add("first_row", [c.act(D)])]); } },
  add: { build: (c, r) => { const D = r.pick(widths); return c.b.add("add", [c.act(D), c.act(D)]); } },
  mul: { build: (c, r) => { const D = r.pick(widths); return c.b.add("mul", [c.act(D), c.param([D])]); } },
  scale: { build: (c, r) => c.b.add("scale", [c.act(r.pick(widths))], { by: -0.37 }) },
  // caps that saturate most values, some, and almost none
  softcap: { build: (c, r) => c.b.add("softcap", [c.act(r.pick(widths), 8)], { cap: r.pick([0.5, 3, 30]) }) },
  gelu: { build: (c, r) => c.b.add("gelu", [c.act(r.pick(widths), 4)]) },
  gelu_tanh: { build: (c, r) => c.b.add("gelu_tanh", [c.act(r.pick(widths), 4)]) },
  silu: { build: (c, r) => c.b.add("silu", [c.act(r.pick(widths), 4)]) },
  relu: { build: (c, r) => c.b.add("relu", [c.act(r.pick(widths))]) },
  layernorm: { build: (c, r) => { const D = r.pick(widths); return c.b.add("layernorm", [c.act(D), c.param([D]), c.param([D])], { eps: 1e-5 }); } },
  // plain, per group of columns (per-head norms), and with an offset gain (lowered after fold-norm-offset)
  rmsnorm: {
    build: (c, r) => {
      const D = r.pick(widths), groups = r.pick([1, 1, 3]), offset = r.pick([0, 1]);
      return c.b.add("rmsnorm", [c.act(D * groups), c.param([D])], { eps: 1e-6, ...(groups > 1 ? { group: D } : {}), ...(offset ? { offset } : {}) });
    },
    lower: foldNormOffset,
    seeds: [1, 2, 3, 4, 5, 6],
  },
  softmax: { build: (c, r) => c.b.add("softmax", [c.act(r.pick(widths), 3)]) },
  rope: {
    // a cached attention advances `past`, so rope sees positions > 0
    build: (c, r) => {
      const [hd, H] = [r.pick([2, 6, 10]), r.pick([1, 3])];
      const factors = (k: number) => Array.from({ length: hd / 2 }, (_, j) => 1 + ((j * k) % 5) / 2);
      // each of transformers' rope_scaling types; longrope switching to its long factors at 4 positions
      const scaling = r.pick([
        {},
        { scaling: "linear", factor: 4 },
        { scaling: "llama3", factor: 8, low_freq: 1, high_freq: 4, original: 16 },
        { scaling: "longrope", original: 4, short_factor: factors(1), long_factor: factors(3), attn_factor: 1.2 },
      ]);
      const x = c.b.add("rope", [c.act(hd * H)], { head_dim: hd, theta: r.pick([10000, 500000]), ...scaling });
      const kv = c.act(hd * H);
      return [x, c.b.add("add", [x, c.b.add("attention", [c.act(hd * H), kv, kv], { heads: H, kv_heads: H, scale: 0.3, causal: true, cache: true })])];
    },
    calls: [4, 1],
    seeds: [1, 2, 3, 4, 5, 6, 7, 8],
  },
  attention: {
    build: (c, r) => {
      const [Hkv, group, dk] = [r.pick([1, 2]), r.pick([1, 3]), r.pick([1, 5, 7])];
      const H = Hkv * group;
      // with a sliding window shorter than the calls' keys, and soft-capped scores, at random
      const extra = { ...r.pick([{}, { window: 3 }]), ...r.pick([{}, { softcap: 0.7 }]) };
      return c.b.add("attention", [c.act(H * dk), c.act(Hkv * dk), c.act(Hkv * (dk + 2)), c.mask()], { heads: H, kv_heads: Hkv, scale: 0.4, causal: true, cache: true, mask: true, ...extra });
    },
    calls: [5, 1, 2, 1],
    seeds: [1, 2, 3, 4, 5, 6],
  },
  // c2p, p2c or both, over log buckets or clamped distances: calls reach past the exact buckets and the tables
  disentangled_attention: {
    build: (c, r) => {
      const [H, dk] = [r.pick([1, 3]), r.pick([1, 5, 10])];
      const terms = r.pick([{ c2p: true }, { p2c: true }, { c2p: true, p2c: true }]);
      const rel: { buckets?: number; max_distance: number } = r.pick([{ buckets: 4, max_distance: 9 }, { max_distance: 3 }]);
      const table = () => c.param([2 * (rel.buckets ?? rel.max_distance), H * dk]);
      const pos = [...(terms.c2p ? [table()] : []), ...("p2c" in terms ? [table()] : [])];
      return c.b.add("disentangled_attention", [c.act(H * dk), c.act(H * dk), c.act(H * (dk + 2)), ...pos, c.mask()], { heads: H, scale: 0.4, ...terms, ...rel, mask: true });
    },
    calls: [13, 1, 6],
    seeds: [1, 2, 3, 4, 5, 6],
  },
};

/** A value of another kind than `kind`. */
function wrongValue(kind: AttrKind): unknown {
  if (typeof kind === "object") return "no such value";
  return { int: 1.5, float: "1", bool: 1, string: 2, ints: [1.5], floats: ["1"], dims: [true], cache: 3 }[kind];
}

/** The graph with node `id`'s attributes replaced. */
const withAttrs = (g: Graph, id: number, attrs: Node["attrs"]): Graph => ({ ...g, nodes: g.nodes.map((n) => (n.id === id ? { ...n, attrs } : n)) });

/** Text, verifier and trait checks on node `id` of the (unlowered) program. */
function checkStatics(p: Program, id: number, kind: OpKind) {
  const g = p.graphs[0];
  const n = g.nodes[id];
  expect(n.op).toBe(kind);

  // IR text round trip, every attribute read back as the same value
  const text = printGraph(g);
  const back = parseGraphs(text)[0];
  expect(printGraph(back)).toBe(text);
  expect(back.nodes[id].attrs).toEqual(n.attrs);

  verifyProgram(p);
  // roles: one for each operand
  expect(roles(n)).toHaveLength(n.args.length);

  // an attribute of the wrong kind (or one the op does not have) is refused by the verifier and the parser
  const schema = Object.entries(opDef(kind).attrs);
  const [name, spec] = schema.find(([k]) => k in n.attrs) ?? ["bogus", undefined];
  const bad = { ...n.attrs, [name]: spec ? wrongValue(spec.kind) : 1 } as Node["attrs"];
  expect(() => verifyGraph(withAttrs(g, id, bad))).toThrow(new RegExp(`%${id} = ${kind}: .*attribute ${name}`));
  expect(() => parseGraphs(printGraph(withAttrs(g, id, bad)))).toThrow(new RegExp(`attribute '?${name}`));
  // ...and so is a required attribute left out
  const required = schema.find(([, s]) => !s.optional);
  if (required) {
    const { [required[0]]: _, ...rest } = n.attrs;
    expect(() => verifyGraph(withAttrs(g, id, rest))).toThrow(new RegExp(`attribute ${required[0]} is missing`));
  }

  if (hasTrait(n, "rowwise")) expectRowwise(p, id);
}

/**
 * A rowwise op's result for the last row equals its result on the last row of each row operand
 * (what specialize-last-row relies on), by the interpreter.
 */
function expectRowwise(p: Program, id: number) {
  const g = p.graphs[0];
  const n = g.nodes[id];
  const b = new GraphBuilder("forward");
  for (const m of g.nodes.slice(0, id)) b.add(m.op, m.args, m.attrs);
  const full = b.add(n.op, n.args, n.attrs);
  const lastArgs = n.args.map((a) => (g.nodes[a].type.shape[0] === "S" ? b.add("last_row", [a]) : a));
  b.output("full", b.add("last_row", [full]));
  b.output("last", b.add(n.op, lastArgs, n.attrs));
  const q: Program = { ...p, graphs: [b.build()] };
  const r = rng(id);
  const ids = Int32Array.from({ length: 5 }, () => r.int(0, 49));
  const out = interpret(q, "forward", { ids, mask: Float32Array.from([1, 0, 1, 1, 0]) }, newSession());
  expect(relError(out.last, out.full)).toBe(0);
}

describe("every op of the table", () => {
  it("has an example here", () => expect(Object.keys(examples).sort()).toEqual([...opKinds].sort()));

  it("fusible ops are exactly the activations a fused linear applies", () =>
    expect(opKinds.filter((k) => hasTrait({ id: 0, op: k, args: [], attrs: {}, type: { dtype: "f32", shape: [] } }, "fusible")).sort()).toEqual(Object.keys(activations).sort()));

  for (const kind of opKinds) {
    const ex = examples[kind];
    for (const seed of ex.seeds ?? [1, 2]) {
      const r = rng(seed * 7919 + kind.length * 31 + kind.charCodeAt(0));
      const calls = ex.calls ?? (seed === 1 ? [3] : [5, 1]);
      it(`${kind} (seed ${seed}, rows ${calls.join("+")}): text, verifier, traits, and the interpreter agrees with the lowering`, () => {
        let id = -1;
        return check(seed * 100 + kind.length, (c) => {
          const built = ex.build(c, r);
          const [node, out] = typeof built === "number" ? [built, built] : built;
          id = node;
          return out;
        }, calls, 32, (p) => {
          checkStatics(p, id, kind);
          return ex.lower ? ex.lower(p) : p;
        });
      });
    }
  }
});

it("softcap's shape rule refuses a cap that is not a finite number > 0", () => {
  const b = new GraphBuilder("forward");
  const x = b.add("input", [], { name: "x", kind: "padding", dtype: "f32", shape: ["S"] });
  for (const cap of [0, -1, Infinity, NaN]) expect(() => b.add("softcap", [x], { cap }), String(cap)).toThrow(/softcap: cap must be a finite number > 0/);
  expect(b.type(b.add("softcap", [x], { cap: 30 }))).toEqual({ dtype: "f32", shape: ["S"] });
});
