// Each pass: Before → Expected IR text, a case where it must not fire, and interpreter
// equivalence before/after on the real example models.

import { describe, expect, it } from "vitest";
import { canonicalizeMatmul } from "../../compiler/passes/canonicalize-matmul.js";
import { foldTranspose } from "../../compiler/passes/fold-transpose.js";
import { foldNormOffset } from "../../compiler/passes/fold-norm-offset.js";
import { fuseAttention } from "../../compiler/passes/fuse-attention.js";
import { fuseFfn } from "../../compiler/passes/fuse-ffn.js";
import { fuseNorm } from "../../compiler/passes/fuse-norm.js";
import { fuseQkv } from "../../compiler/passes/fuse-qkv.js";
import { quantizeWeights } from "../../compiler/passes/quantize-weights.js";
import { specializeLastRow } from "../../compiler/passes/specialize-last-row.js";
import { loadProgram } from "../../compiler/load.js";
import { passes, runPipeline } from "../../compiler/passes/manager.js";
import { printGraph, printProgram } from "../../ir/graph.js";
import { interpret, newSession } from "../../ir/interp.js";
import { parseGraphs } from "../../ir/parse.js";
import type { Param, Program } from "../../ir/types.js";
import { families, fixtureDir, relError, rng, root } from "../helpers.js";
import { join } from "node:path";

const dedent = (s: string) => s.trim().split("\n").map((l) => l.replace(/^ {6}/, "")).join("\n");

function program(text: string): Program {
  const graphs = parseGraphs(text);
  const params = new Map<string, Param>();
  const r = rng(5);
  for (const g of graphs)
    for (const n of g.nodes)
      if (n.op === "param") {
        const shape = n.type.shape as number[];
        params.set(n.attrs.name as string, { name: n.attrs.name as string, shape, data: r.floats(shape.reduce((a, b) => a * b, 1)) });
      }
  return { model: "t", config: {}, context: 8, graphs, params };
}

/** The start of a graph whose x (%4, [S, K]) is an RMSNorm of embedded tokens: differential tests' input. */
const rmsnormHead = (K: number) => `graph forward {
          %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
          %1 = param() {name="emb", shape=[10,${K}]} : f32[10,${K}]
          %2 = embedding(%1, %0) : f32[S,${K}]
          %3 = param() {name="g", shape=[${K}]} : f32[${K}]
          %4 = rmsnorm(%2, %3) {eps=0.00001} : f32[S,${K}]`;

function expectRewrite(pass: (p: Program) => Program, before: string, expected: string) {
  const p = program(dedent(before));
  expect(printGraph(pass(p).graphs[0])).toBe(dedent(expected));
}

describe("canonicalize-matmul", () => {
  it("x @ param + bias becomes one linear over the transposed weight", () =>
    expectRewrite(canonicalizeMatmul, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w", shape=[4,6]} : f32[4,6]
        %4 = matmul(%2, %3) : f32[S,6]
        %5 = param() {name="b", shape=[6]} : f32[6]
        %6 = add(%4, %5) : f32[S,6]
        return y=%6
      }`, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w", shape=[4,6]} : f32[4,6]
        %4 = transpose(%3) : f32[6,4]
        %5 = param() {name="b", shape=[6]} : f32[6]
        %6 = linear(%2, %4, %5) : f32[S,6]
        return y=%6
      }`));

  it("does not fire on a matmul of two activations, nor fold an add of activations", () => {
    const text = dedent(`
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w", shape=[4,4]} : f32[4,4]
        %4 = linear(%2, %3) : f32[S,4]
        %5 = add(%4, %2) : f32[S,4]
        return y=%5
      }`);
    expectRewrite(canonicalizeMatmul, text, text);
  });
});

describe("fold-transpose", () => {
  it("a transposed parameter becomes a new parameter; a double transpose disappears", () => {
    const p = program(dedent(`
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w", shape=[4,6]} : f32[4,6]
        %4 = transpose(%3) : f32[6,4]
        %5 = linear(%2, %4) : f32[S,6]
        %6 = transpose(%1) : f32[4,10]
        %7 = transpose(%6) : f32[10,4]
        %8 = linear(%2, %7) : f32[S,10]
        return y=%5, z=%8
      }`));
    const out = foldTranspose(p);
    expect(printGraph(out.graphs[0])).toBe(dedent(`
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w^T", shape=[6,4]} : f32[6,4]
        %4 = linear(%2, %3) : f32[S,6]
        %5 = linear(%2, %1) : f32[S,10]
        return y=%4, z=%5
      }`));
    const w = p.params.get("w")!.data, wt = out.params.get("w^T")!.data;
    expect(wt[1 * 4 + 2]).toBe(w[2 * 6 + 1]);
  });
});

describe("fuse-ffn", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w1", shape=[6,4]} : f32[6,4]
        %4 = param() {name="b1", shape=[6]} : f32[6]
        %5 = linear(%2, %3, %4) : f32[S,6]`;
  it("activation and residual add go into the linear epilogues", () =>
    expectRewrite(fuseFfn, head + `
        %6 = gelu_tanh(%5) : f32[S,6]
        %7 = param() {name="w2", shape=[4,6]} : f32[4,6]
        %8 = linear(%6, %7) : f32[S,4]
        %9 = add(%2, %8) : f32[S,4]
        return y=%9
      }`, head.replace("%5 = linear(%2, %3, %4) : f32[S,6]", "%5 = linear(%2, %3, %4) {act=\"gelu_tanh\"} : f32[S,6]") + `
        %6 = param() {name="w2", shape=[4,6]} : f32[4,6]
        %7 = linear(%5, %6, %2) {residual=true} : f32[S,4]
        return y=%7
      }`));
  it("does not fuse a linear whose result is also read elsewhere", () => {
    const text = head + `
        %6 = silu(%5) : f32[S,6]
        %7 = add(%5, %6) : f32[S,6]
        return y=%7
      }`;
    expectRewrite(fuseFfn, text, text);
  });
});

describe("fuse-ffn: a stored gate_up matrix", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="gate_up", shape=[12,4]} : f32[12,4]`;
  it("silu(slice) ⊙ slice of one linear becomes a gated_linear on the matrix's halves (Phi-3)", () =>
    expectRewrite(fuseFfn, head + `
        %4 = linear(%2, %3) : f32[S,12]
        %5 = slice(%4) {start=0, size=6} : f32[S,6]
        %6 = slice(%4) {start=6, size=6} : f32[S,6]
        %7 = silu(%5) : f32[S,6]
        %8 = mul(%7, %6) : f32[S,6]
        return y=%8
      }`, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="gate_up[0:6]", shape=[6,4]} : f32[6,4]
        %4 = param() {name="gate_up[6:12]", shape=[6,4]} : f32[6,4]
        %5 = gated_linear(%2, %3, %4) {act="silu"} : f32[S,6]
        return y=%5
      }`));
  it("does not fire when the linear's result is read elsewhere too", () => {
    const text = head + `
        %4 = linear(%2, %3) : f32[S,12]
        %5 = slice(%4) {start=0, size=6} : f32[S,6]
        %6 = slice(%4) {start=6, size=6} : f32[S,6]
        %7 = silu(%5) : f32[S,6]
        %8 = mul(%7, %6) : f32[S,6]
        %9 = slice(%4) {start=0, size=4} : f32[S,4]
        %10 = add(%9, %2) : f32[S,4]
        return y=%8, z=%10
      }`;
    expectRewrite(fuseFfn, text, text);
  });
});

describe("fold-norm-offset", () => {
  it("an RMSNorm with a gain offset (Gemma's 1 + w) reads a new parameter holding f32(1 + w)", () => {
    const before = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="g", shape=[4]} : f32[4]
        %4 = rmsnorm(%2, %3) {eps=0.000001, offset=1} : f32[S,4]
        return y=%4
      }`;
    expectRewrite(foldNormOffset, before, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="1+g", shape=[4]} : f32[4]
        %4 = rmsnorm(%2, %3) {eps=0.000001} : f32[S,4]
        return y=%4
      }`);
    const p = program(dedent(before)), q = foldNormOffset(p);
    expect(Array.from(q.params.get("1+g")!.data)).toEqual(Array.from(p.params.get("g")!.data, (v) => Math.fround(1 + v)));
    const ids = Int32Array.from([3, 1, 4]);
    expect(relError(interpret(q, "forward", { ids }, newSession()).y, interpret(p, "forward", { ids }, newSession()).y)).toBe(0);
  });
});

describe("the fusion passes on the newer families", () => {
  // what --print-ir shows at the end of the pipeline, counted per op
  const opsAfter = (name: string) => {
    const printed: string[] = [];
    runPipeline(loadProgram(join(root, "examples", `${families[name]}.wf`), fixtureDir(name)), { printAfter: (_pass, ir) => printed.push(ir) });
    const forward = printed.at(-1)!.split("graph forward_last")[0];
    const count = (re: RegExp) => forward.split("\n").filter((l) => re.test(l)).length;
    return { text: forward, count };
  };
  it("qwen2: q/k/v with biases stacked into one normed linear, SwiGLU into gated_linear, residuals into the projections", () => {
    const { count } = opsAfter("qwen2");
    expect(count(/= linear\(.*\) \{rms_eps=/)).toBe(2); // one stacked q/k/v (+ bias) per layer
    expect(count(/= gated_linear\(.*\{act="silu", rms_eps=/)).toBe(2);
    expect(count(/= linear\(.*residual=true/)).toBe(4);
  });
  it("phi3: the stored qkv and gate_up matrices end in the same kernels as separate projections do", () => {
    const { count } = opsAfter("phi3");
    expect(count(/= gated_linear\(.*\{act="silu", rms_eps=/)).toBe(2);
    expect(count(/= (silu|mul)\(/)).toBe(0);
    expect(count(/= rope\(.*scaling="longrope"/)).toBe(4);
  });
  it("qwen3 and gemma2 keep their per-head norms, soft-caps and windows as attributes", () => {
    expect(opsAfter("qwen3").count(/= rmsnorm\(.*group=14/)).toBe(4);
    const g2 = opsAfter("gemma2");
    expect(g2.count(/= attention\(.*softcap=50/)).toBe(3);
    expect(g2.count(/= attention\(.*window=6/)).toBe(2); // layers 0 and 2
    expect(g2.count(/= softcap\(.*cap=30/)).toBe(1);
    expect(g2.count(/offset=/)).toBe(0); // folded into the gains
  });
});

// The IR's only run-time dim is the row count, so written-out attention (scores [S, S]) exists
// for a fixed sequence length, e.g. an encoder compiled for 8 tokens.
describe("fuse-attention", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[8]} : i32[8]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[8,4]
        %3 = param() {name="wq", shape=[4,4]} : f32[4,4]
        %4 = linear(%2, %3) : f32[8,4]
        %5 = param() {name="wk", shape=[4,4]} : f32[4,4]
        %6 = linear(%2, %5) : f32[8,4]
        %7 = param() {name="wv", shape=[6,4]} : f32[6,4]
        %8 = linear(%2, %7) : f32[8,6]`;
  it("softmax(scale · q·kᵀ) · v becomes one attention op", () =>
    expectRewrite(fuseAttention, head + `
        %9 = transpose(%6) : f32[4,8]
        %10 = matmul(%4, %9) : f32[8,8]
        %11 = scale(%10) {by=0.5} : f32[8,8]
        %12 = softmax(%11) : f32[8,8]
        %13 = matmul(%12, %8) : f32[8,6]
        return y=%13
      }`, head + `
        %9 = attention(%4, %6, %8) {heads=1, kv_heads=1, scale=0.5, causal=false, cache=false} : f32[8,6]
        return y=%9
      }`));
  it("does not fire when the probabilities are also an output", () => {
    const text = head + `
        %9 = transpose(%6) : f32[4,8]
        %10 = matmul(%4, %9) : f32[8,8]
        %11 = softmax(%10) : f32[8,8]
        %12 = matmul(%11, %8) : f32[8,6]
        return y=%12, p=%11
      }`;
    expectRewrite(fuseAttention, text, text);
  });
  it("fused attention (compiled) equals the unfused graph (interpreted) on random widths", async () => {
    const { compileInMemory } = await import("../helpers.js");
    for (const [D, Dv, by] of [[4, 6, 0.5], [8, 8, 0.35], [5, 3, 1]] as const) {
      const p = program(dedent(`
        graph forward {
          %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[8]} : i32[8]
          %1 = param() {name="emb", shape=[10,${D}]} : f32[10,${D}]
          %2 = embedding(%1, %0) : f32[8,${D}]
          %3 = param() {name="wq", shape=[${D},${D}]} : f32[${D},${D}]
          %4 = linear(%2, %3) : f32[8,${D}]
          %5 = param() {name="wk", shape=[${D},${D}]} : f32[${D},${D}]
          %6 = linear(%2, %5) : f32[8,${D}]
          %7 = param() {name="wv", shape=[${Dv},${D}]} : f32[${Dv},${D}]
          %8 = linear(%2, %7) : f32[8,${Dv}]
          %9 = transpose(%6) : f32[${D},8]
          %10 = matmul(%4, %9) : f32[8,8]
          %11 = scale(%10) {by=${by}} : f32[8,8]
          %12 = softmax(%11) : f32[8,8]
          %13 = matmul(%12, %8) : f32[8,${Dv}]
          return y=%13
        }`));
      const fused = runPipeline(p);
      expect(fused.graphs[0].nodes.some((n) => n.op === "attention")).toBe(true);
      const { model } = await compileInMemory(fused);
      for (const seed of [1, 2]) {
        const rows = 8;
        const ids = Array.from({ length: rows }, (_, i) => (i * 7 + D * seed) % 10);
        const want = interpret(p, "forward", { ids: Int32Array.from(ids) }, newSession()).y;
        expect(relError(model.run("forward", { ids }).y, want), `D=${D} rows=${rows}`).toBeLessThan(1e-5);
      }
    }
  });
});

describe("fuse-ffn: gated FFNs", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="wg", shape=[8,4]} : f32[8,4]
        %4 = param() {name="wu", shape=[8,4]} : f32[8,4]`;
  it("silu(x·Wg) ⊙ (x·Wu) becomes one gated_linear (either operand order); the down projection keeps its residual", () =>
    expectRewrite(fuseFfn, head + `
        %5 = linear(%2, %4) : f32[S,8]
        %6 = linear(%2, %3) : f32[S,8]
        %7 = silu(%6) : f32[S,8]
        %8 = mul(%5, %7) : f32[S,8]
        %9 = param() {name="wd", shape=[4,8]} : f32[4,8]
        %10 = linear(%8, %9) : f32[S,4]
        %11 = add(%2, %10) : f32[S,4]
        return y=%11
      }`, head + `
        %5 = gated_linear(%2, %3, %4) {act="silu"} : f32[S,8]
        %6 = param() {name="wd", shape=[4,8]} : f32[4,8]
        %7 = linear(%5, %6, %2) {residual=true} : f32[S,4]
        return y=%7
      }`));
  it("does not fire when the projections read different inputs, or the gate's value is also used", () => {
    const twoInputs = head + `
        %5 = param() {name="g", shape=[4]} : f32[4]
        %6 = mul(%2, %5) : f32[S,4]
        %7 = linear(%2, %3) {act="silu"} : f32[S,8]
        %8 = linear(%6, %4) : f32[S,8]
        %9 = mul(%7, %8) : f32[S,8]
        return y=%9
      }`;
    expectRewrite(fuseFfn, twoInputs, twoInputs);
    const shared = head + `
        %5 = linear(%2, %3) {act="silu"} : f32[S,8]
        %6 = linear(%2, %4) : f32[S,8]
        %7 = mul(%5, %6) : f32[S,8]
        %8 = add(%7, %5) : f32[S,8]
        return y=%8
      }`;
    expectRewrite(fuseFfn, shared, shared);
  });
  it("fused, unfused and the interpreter agree on random gated FFNs (f32, int8, int4; tails; several row counts)", async () => {
    const { compileInMemory } = await import("../helpers.js");
    const { quantizeWeights } = await import("../../compiler/passes/quantize-weights.js");
    for (const [K, N, quant] of [[4, 8, undefined], [12, 13, undefined], [520, 7, undefined], [32, 9, "int8"], [64, 6, "int4"], [32, 4, "int4"]] as const) {
      const p = program(dedent(`
        graph forward {
          %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
          %1 = param() {name="emb", shape=[10,${K}]} : f32[10,${K}]
          %2 = embedding(%1, %0) : f32[S,${K}]
          %3 = param() {name="wg", shape=[${N},${K}]} : f32[${N},${K}]
          %4 = param() {name="wu", shape=[${N},${K}]} : f32[${N},${K}]
          %5 = linear(%2, %3) : f32[S,${N}]
          %6 = gelu_tanh(%5) : f32[S,${N}]
          %7 = linear(%2, %4) : f32[S,${N}]
          %8 = mul(%6, %7) : f32[S,${N}]
          return y=%8
        }`));
      const fused = fuseFfn(p);
      expect(fused.graphs[0].nodes.some((n) => n.op === "gated_linear")).toBe(true);
      const q = (x: Program) => (quant ? quantizeWeights(x, { scheme: quant }) : x);
      const [a, b] = [q(p), q(fused)];
      const ma = (await compileInMemory(a)).model, mb = (await compileInMemory(b)).model;
      for (const rows of [1, 3, 7]) {
        const ids = Array.from({ length: rows }, (_, i) => (i * 3 + K) % 10);
        const want = interpret(b, "forward", { ids: Int32Array.from(ids) }, newSession()).y;
        const unfused = ma.run("forward", { ids }).y, got = mb.run("forward", { ids }).y;
        expect(relError(got, want), `K=${K} N=${N} ${quant ?? "f32"} rows=${rows} vs interpreter`).toBeLessThan(quant ? 1e-4 : 1e-6);
        expect(relError(got, unfused), `K=${K} N=${N} ${quant ?? "f32"} rows=${rows} vs unfused`).toBeLessThan(quant ? 1e-4 : 1e-6);
      }
    }
  });
});

describe("fuse-qkv", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]`;
  it("linears reading one input become one linear over the stacked weights, and slices of it", () =>
    expectRewrite(fuseQkv, head + `
        %3 = param() {name="wq", shape=[6,4]} : f32[6,4]
        %4 = param() {name="bq", shape=[6]} : f32[6]
        %5 = linear(%2, %3, %4) : f32[S,6]
        %6 = param() {name="wk", shape=[2,4]} : f32[2,4]
        %7 = param() {name="bk", shape=[2]} : f32[2]
        %8 = linear(%2, %6, %7) : f32[S,2]
        %9 = rope(%8) {head_dim=2, theta=10000} : f32[S,2]
        %10 = param() {name="wv", shape=[2,4]} : f32[2,4]
        %11 = param() {name="bv", shape=[2]} : f32[2]
        %12 = linear(%2, %10, %11) : f32[S,2]
        return q=%5, k=%9, v=%12
      }`, head + `
        %3 = param() {name="cat(wq, wk, wv)", shape=[10,4]} : f32[10,4]
        %4 = param() {name="cat(bq, bk, bv)", shape=[10]} : f32[10]
        %5 = linear(%2, %3, %4) : f32[S,10]
        %6 = slice(%5) {start=0, size=6} : f32[S,6]
        %7 = slice(%5) {start=6, size=2} : f32[S,2]
        %8 = slice(%5) {start=8, size=2} : f32[S,2]
        %9 = rope(%7) {head_dim=2, theta=10000} : f32[S,2]
        return q=%6, k=%9, v=%8
      }`));
  it("does not fire on a weight read elsewhere (tied), a residual, other attributes, or a bias beside none", () => {
    const text = head + `
        %3 = linear(%2, %1) : f32[S,10]
        %4 = param() {name="w1", shape=[4,4]} : f32[4,4]
        %5 = linear(%2, %4) : f32[S,4]
        %6 = param() {name="w2", shape=[4,4]} : f32[4,4]
        %7 = linear(%2, %6, %5) {residual=true} : f32[S,4]
        %8 = param() {name="w3", shape=[4,4]} : f32[4,4]
        %9 = linear(%2, %8) {act="silu"} : f32[S,4]
        %10 = param() {name="w4", shape=[4,4]} : f32[4,4]
        %11 = param() {name="b4", shape=[4]} : f32[4]
        %12 = linear(%2, %10, %11) : f32[S,4]
        return a=%3, b=%7, c=%9, d=%12
      }`;
    expectRewrite(fuseQkv, text, text);
  });
  it("fused, unfused and the interpreter agree (f32 with bias and norm, int8 and int4 stacked codes; tails; rows 1..8)", async () => {
    const { compileInMemory } = await import("../helpers.js");
    const { quantizeWeights } = await import("../../compiler/passes/quantize-weights.js");
    for (const [K, Nq, Nkv, quant] of [[12, 9, 3, undefined], [20, 8, 8, undefined], [64, 12, 4, "int8"], [32, 5, 7, "int4"]] as const) {
      const bias = quant ? "" : `, %b`;
      const lin = (w: string, N: number, id: number) =>
        `%${id} = param() {name="${w}", shape=[${N},${K}]} : f32[${N},${K}]
          ${quant ? "" : `%${id + 1} = param() {name="b${w}", shape=[${N}]} : f32[${N}]`}
          %${id + 2} = linear(%4, %${id}${bias.replace("%b", `%${id + 1}`)}) : f32[S,${N}]`;
      const p = program(dedent(`
        ${rmsnormHead(K)}
          ${lin("q", Nq, 5)}
          ${lin("k", Nkv, 8)}
          ${lin("v", Nkv, 11)}
          %14 = scale(%13) {by=0.5} : f32[S,${Nkv}]
          return q=%7, k=%10, v=%14
        }`.replace(/\n\s*\n/g, "\n")));
      // quantized: the weights are quantized first (as compile --quantize orders it), then stacked
      const q = (x: Program) => (quant ? quantizeWeights(x, { scheme: quant }) : x);
      const unfused = q(p), fused = fuseNorm(fuseQkv(unfused));
      expect(fused.graphs[0].nodes.filter((n) => n.op === "linear")).toHaveLength(1);
      const ma = (await compileInMemory(unfused)).model, mb = (await compileInMemory(fused)).model;
      for (const rows of [1, 3, 8]) {
        const ids = Array.from({ length: rows }, (_, i) => (i * 3 + K) % 10);
        const want = interpret(unfused, "forward", { ids: Int32Array.from(ids) }, newSession());
        const got = mb.run("forward", { ids }), ref = ma.run("forward", { ids });
        for (const out of ["q", "k", "v"]) {
          const tag = `K=${K} N=${Nq}+${Nkv}+${Nkv} ${quant ?? "f32"} rows=${rows} ${out}`;
          expect(relError(got[out], want[out]), `${tag} vs interpreter`).toBeLessThan(quant ? 1e-4 : 1e-5);
          expect(relError(got[out], ref[out]), `${tag} vs unfused`).toBeLessThan(quant ? 1e-4 : 1e-5);
        }
      }
    }
  });
});

describe("quantize-weights", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,32]} : f32[10,32]
        %2 = embedding(%1, %0) : f32[S,32]`;
  it("matrices read only as weights become quantized parameters, and their kernels quantize x (int_rows where the tuning bounds it)", () =>
    expectRewrite((p) => quantizeWeights(p, { scheme: "int4", overrides: [{ pattern: "wg", scheme: "int8" }] }), head + `
        %3 = param() {name="wg", shape=[8,32]} : f32[8,32]
        %4 = param() {name="wu", shape=[8,32]} : f32[8,32]
        %5 = gated_linear(%2, %3, %4) {act="silu"} : f32[S,8]
        %6 = param() {name="wh", shape=[16,32]} : f32[16,32]
        %7 = param() {name="bh", shape=[16]} : f32[16]
        %8 = linear(%2, %6, %7) {act="gelu"} : f32[S,16]
        return y=%5, z=%8
      }`, head + `
        %3 = param() {name="wg@q8_0", shape=[8,32], quant="q8_0"} : f32[8,32]
        %4 = param() {name="wu@q8_0", shape=[8,32], quant="q8_0"} : f32[8,32]
        %5 = gated_linear(%2, %3, %4) {act="silu", quant="q8_0"} : f32[S,8]
        %6 = param() {name="wh@q4_0", shape=[16,32], quant="q4_0"} : f32[16,32]
        %7 = param() {name="bh", shape=[16]} : f32[16]
        %8 = linear(%2, %6, %7) {act="gelu", quant="q4_0", int_rows=16, int_rows_relaxed=512} : f32[S,16]
        return y=%5, z=%8
      }`));
  it("a tied table (the embedding table as a linear's weight) is quantized for the head and the lookup", () =>
    expectRewrite((p) => quantizeWeights(p, { scheme: "int8" }), head + `
        %3 = linear(%2, %1) : f32[S,10]
        return logits=%3
      }`, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb@q8_0", shape=[10,32], quant="q8_0"} : f32[10,32]
        %2 = embedding(%1, %0) : f32[S,32]
        %3 = linear(%2, %1) {quant="q8_0"} : f32[S,10]
        return logits=%3
      }`));

  it("does not fire on a tied table overridden to f32, an input width not a multiple of 32, or a weight overridden to f32", () => {
    const text = dedent(head + `
        %3 = param() {name="wo", shape=[32,8]} : f32[32,8]
        %4 = slice(%2) {start=0, size=8} : f32[S,8]
        %5 = linear(%4, %3, %2) {residual=true} : f32[S,32]
        %6 = param() {name="wh", shape=[16,32]} : f32[16,32]
        %7 = linear(%5, %6) : f32[S,16]
        %8 = linear(%5, %1) : f32[S,10]
        return y=%7, logits=%8
      }`);
    expectRewrite((p) => quantizeWeights(p, { scheme: "int8", overrides: [{ pattern: "wh", scheme: "f32" }, { pattern: "emb", scheme: "f32" }] }), text, text);
  });
});

describe("fuse-norm", () => {
  const head = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="g", shape=[4]} : f32[4]
        %4 = rmsnorm(%2, %3) {eps=0.000001} : f32[S,4]`;
  it("an RMSNorm feeding linears and a gated_linear moves into them, its gain folded into the weights", () =>
    expectRewrite(fuseNorm, head + `
        %5 = param() {name="wq", shape=[6,4]} : f32[6,4]
        %6 = linear(%4, %5) : f32[S,6]
        %7 = param() {name="wg", shape=[8,4]} : f32[8,4]
        %8 = param() {name="wu", shape=[8,4]} : f32[8,4]
        %9 = gated_linear(%4, %7, %8) {act="silu"} : f32[S,8]
        return q=%6, h=%9
      }`, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="wq*g", shape=[6,4]} : f32[6,4]
        %4 = linear(%2, %3) {rms_eps=0.000001} : f32[S,6]
        %5 = param() {name="wg*g", shape=[8,4]} : f32[8,4]
        %6 = param() {name="wu*g", shape=[8,4]} : f32[8,4]
        %7 = gated_linear(%2, %5, %6) {act="silu", rms_eps=0.000001} : f32[S,8]
        return q=%4, h=%7
      }`));
  it("does not fire when the weight is also read elsewhere (a tied embedding)", () => {
    const text = head + `
        %5 = linear(%4, %1) : f32[S,10]
        return logits=%5
      }`;
    expectRewrite(fuseNorm, text, text);
  });
  it("fused, unfused and the interpreter agree (f32, int8 decode and prefill paths, gated)", async () => {
    const { compileInMemory } = await import("../helpers.js");
    const { quantizeWeights } = await import("../../compiler/passes/quantize-weights.js");
    for (const [K, N, quant] of [[12, 9, undefined], [32, 8, undefined], [528, 9, undefined], [64, 12, "int8"], [32, 5, "int4"]] as const) {
      const p = program(dedent(`
        ${rmsnormHead(K)}
          %5 = param() {name="w", shape=[${N},${K}]} : f32[${N},${K}]
          %6 = param() {name="b", shape=[${N}]} : f32[${N}]
          %7 = linear(%4, %5, %6) : f32[S,${N}]
          %8 = param() {name="wg", shape=[${N},${K}]} : f32[${N},${K}]
          %9 = param() {name="wu", shape=[${N},${K}]} : f32[${N},${K}]
          %10 = gated_linear(%4, %8, %9) {act="silu"} : f32[S,${N}]
          %11 = add(%7, %10) : f32[S,${N}]
          return y=%11
        }`));
      const fused = fuseNorm(p);
      expect(fused.graphs[0].nodes.filter((n) => n.attrs.rms_eps !== undefined)).toHaveLength(2);
      const q = (x: Program) => (quant ? quantizeWeights(x, { scheme: quant }) : x);
      const [a, b] = [q(p), q(fused)];
      const ma = (await compileInMemory(a)).model, mb = (await compileInMemory(b)).model;
      for (const rows of [1, 3, 8]) {
        const ids = Array.from({ length: rows }, (_, i) => (i * 3 + K) % 10);
        const want = interpret(b, "forward", { ids: Int32Array.from(ids) }, newSession()).y;
        const got = mb.run("forward", { ids }).y, unfused = ma.run("forward", { ids }).y;
        const tag = `K=${K} N=${N} ${quant ?? "f32"} rows=${rows}`;
        expect(relError(got, want), `${tag} vs interpreter`).toBeLessThan(quant ? 1e-4 : 1e-5);
        // (quantized, the folded weights w·g round to other codes than w does: only the interpreter compares)
        if (!quant) expect(relError(got, unfused), `${tag} vs unfused`).toBeLessThan(1e-5);
      }
    }
  });

  const lnHead = `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="g", shape=[4]} : f32[4]
        %4 = param() {name="beta", shape=[4]} : f32[4]
        %5 = layernorm(%2, %3, %4) {eps=0.00001} : f32[S,4]`;
  it("a LayerNorm feeding linears moves into them: gain into the weights, shift into the bias, row sums beside it", () =>
    expectRewrite(fuseNorm, lnHead + `
        %6 = param() {name="w", shape=[6,4]} : f32[6,4]
        %7 = param() {name="b", shape=[6]} : f32[6]
        %8 = linear(%5, %6, %7) {act="gelu"} : f32[S,6]
        %9 = param() {name="v", shape=[4,4]} : f32[4,4]
        %10 = linear(%5, %9, %2) {residual=true} : f32[S,4]
        return h=%8, r=%10
      }`, `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = param() {name="w*g", shape=[6,4]} : f32[6,4]
        %4 = param() {name="w*g:bias(b+beta·w, Σw)", shape=[2,6]} : f32[2,6]
        %5 = linear(%2, %3, %4) {act="gelu", ln_eps=0.00001} : f32[S,6]
        %6 = param() {name="v*g", shape=[4,4]} : f32[4,4]
        %7 = param() {name="v*g:bias(beta·w, Σw)", shape=[2,4]} : f32[2,4]
        %8 = linear(%2, %6, %7, %2) {residual=true, ln_eps=0.00001} : f32[S,4]
        return h=%5, r=%8
      }`));
  it("keeps a LayerNorm whose linear reads a tied weight, or that feeds something else than a linear", () => {
    const text = lnHead + `
        %6 = linear(%5, %1) : f32[S,10]
        %7 = gelu(%5) : f32[S,4]
        return logits=%6, g=%7
      }`;
    expectRewrite(fuseNorm, text, text);
  });
  it("LayerNorm: fused, unfused and the interpreter agree (tails of K and N, bias, act, residual, rows 1..40; threads: tests/threads.test.ts on GPT-2)", async () => {
    const { compileInMemory } = await import("../helpers.js");
    // (K = 520: f32 weights read in two K panels)
    for (const [K, N] of [[12, 9], [10, 4], [64, 24], [36, 7], [520, 9]] as const) {
      const p = program(dedent(`
        graph forward {
          %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
          %1 = param() {name="emb", shape=[10,${K}]} : f32[10,${K}]
          %2 = embedding(%1, %0) : f32[S,${K}]
          %3 = param() {name="g", shape=[${K}]} : f32[${K}]
          %4 = param() {name="beta", shape=[${K}]} : f32[${K}]
          %5 = layernorm(%2, %3, %4) {eps=0.00001} : f32[S,${K}]
          %6 = param() {name="w", shape=[${N},${K}]} : f32[${N},${K}]
          %7 = param() {name="b", shape=[${N}]} : f32[${N}]
          %8 = linear(%5, %6, %7) {act="gelu_tanh"} : f32[S,${N}]
          %9 = param() {name="v", shape=[${K},${K}]} : f32[${K},${K}]
          %10 = linear(%5, %9, %2) {residual=true} : f32[S,${K}]
          %11 = param() {name="u", shape=[${N},${K}]} : f32[${N},${K}]
          %12 = linear(%10, %11) : f32[S,${N}]
          %13 = add(%8, %12) : f32[S,${N}]
          return y=%13
        }`));
      p.context = 40;
      // shift the embedding off zero mean: the fused form subtracts mean × row sums
      const emb = p.params.get("emb")!.data;
      for (let i = 0; i < emb.length; i++) emb[i] += 3 + (i % 7) * 0.25;
      const fused = fuseNorm(p);
      expect(fused.graphs[0].nodes.filter((n) => n.attrs.ln_eps !== undefined)).toHaveLength(2);
      const ma = (await compileInMemory(p)).model, mb = (await compileInMemory(fused)).model;
      for (const rows of [1, 3, 8, 40]) {
        const ids = Array.from({ length: rows }, (_, i) => (i * 3 + K) % 10);
        const want = interpret(fused, "forward", { ids: Int32Array.from(ids) }, newSession()).y;
        const got = mb.run("forward", { ids }).y, unfused = ma.run("forward", { ids }).y;
        const tag = `K=${K} N=${N} rows=${rows}`;
        expect(relError(got, want), `${tag} vs interpreter`).toBeLessThan(1e-5);
        expect(relError(got, unfused), `${tag} vs unfused`).toBeLessThan(1e-5);
        expect(relError(interpret(p, "forward", { ids: Int32Array.from(ids) }, newSession()).y, want), `${tag} interpreter, unfused vs fused`).toBeLessThan(1e-5);
      }
    }
  });
});

describe("specialize-last-row", () => {
  const graph = (cache: string) => `
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = attention(%2, %2, %2) {heads=2, kv_heads=2, scale=0.5, causal=true, cache=${cache}} : f32[S,4]
        %4 = add(%2, %3) : f32[S,4]
        %5 = param() {name="g", shape=[4]} : f32[4]
        %6 = rmsnorm(%4, %5) {eps=0.000001} : f32[S,4]
        %7 = linear(%6, %1) : f32[S,10]
        return logits=%7
      }`;
  it("adds forward_last: the last attention runs the last query only, and the rest one row", () => {
    const p = specializeLastRow(program(dedent(graph('"forward.0"'))));
    expect(p.graphs.map((g) => g.name)).toEqual(["forward", "forward_last"]);
    expect(printGraph(p.graphs[1])).toBe(dedent(`
      graph forward_last {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,4]} : f32[10,4]
        %2 = embedding(%1, %0) : f32[S,4]
        %3 = last_row(%2) : f32[1,4]
        %4 = attention(%3, %2, %2) {heads=2, kv_heads=2, scale=0.5, causal=true, cache="forward.0"} : f32[1,4]
        %5 = add(%3, %4) : f32[1,4]
        %6 = param() {name="g", shape=[4]} : f32[4]
        %7 = rmsnorm(%5, %6) {eps=0.000001} : f32[1,4]
        %8 = linear(%7, %1) : f32[1,10]
        return logits=%8
      }`));
  });
  it("does not fire on an entry without a KV cache", () => {
    const p = program(dedent(graph("false")));
    expect(specializeLastRow(p).graphs.map((g) => g.name)).toEqual(["forward"]);
  });
});

describe("pipeline on the example models", () => {
  for (const name of Object.keys(families)) {
    it(`${name}: IR text round-trips and every pass keeps the interpreter's outputs`, () => {
      const p0 = loadProgram(join(root, "examples", `${families[name]}.wf`), fixtureDir(name));
      const text = printProgram(p0);
      expect(printProgram({ ...p0, graphs: parseGraphs(text) })).toBe(text);
      const ids = Int32Array.from([3, 9, 4, 7]);
      const run = (p: Program) => {
        const s = newSession();
        if (p.graphs.some((g) => g.name === "encode")) {
          s.state.set("hidden", interpret(p, "encode", { ids }, s).hidden);
          return interpret(p, "decode", { ids: ids.slice(0, 2) }, s).logits;
        }
        const o = interpret(p, "forward", { ids, types: new Int32Array(4), mask: new Float32Array(4).fill(1) }, s);
        return o.logits ?? o.hidden;
      };
      const ref = run(p0);
      let p = p0;
      for (const pass of passes) {
        p = runPipeline(p, {}, [pass]);
        expect(relError(run(p), ref), pass.name).toBeLessThan(1e-6);
      }
      expect(p.graphs.flatMap((g) => g.nodes).some((n) => n.op === "matmul" || n.op === "transpose")).toBe(false);
    });
  }
});

describe("passes and the parameter map", () => {
  it("each pass that makes parameters returns them in a new map and leaves its input's map as it was", () => {
    let p = program(dedent(`
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[10,32]} : f32[10,32]
        %2 = embedding(%1, %0) : f32[S,32]
        %3 = param() {name="g", shape=[32]} : f32[32]
        %4 = rmsnorm(%2, %3) {eps=0.00001} : f32[S,32]
        %5 = param() {name="wq", shape=[32,32]} : f32[32,32]
        %6 = transpose(%5) : f32[32,32]
        %7 = linear(%4, %6) : f32[S,32]
        %8 = param() {name="wk", shape=[32,32]} : f32[32,32]
        %9 = linear(%4, %8) : f32[S,32]
        %10 = add(%7, %9) : f32[S,32]
        return y=%10
      }`));
    const steps: [string, (p: Program) => Program, string][] = [
      ["fold-transpose", foldTranspose, "wq^T"],
      ["fuse-qkv", fuseQkv, "cat(wq^T, wk)"],
      ["fuse-norm", fuseNorm, "cat(wq^T, wk)*g"],
      ["quantize-weights", (x) => quantizeWeights(x, { scheme: "int8" }), "cat(wq^T, wk)*g@q8_0"],
    ];
    for (const [name, pass, made] of steps) {
      const before = [...p.params.keys()];
      const out = pass(p);
      expect([...p.params.keys()], name).toEqual(before);
      expect(out.params, name).not.toBe(p.params);
      expect([...out.params.keys()], name).toEqual([...before, made]);
      p = out;
    }
  });
});
