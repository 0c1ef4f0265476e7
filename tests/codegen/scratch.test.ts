// Scratch planning: each lowering declares the scratch its calls need beside it (lower.ts), and
// the memory planner gives every declared area one buffer as large as the largest need.

import { describe, expect, it } from "vitest";
import { generate } from "../../compiler/codegen/emit.js";
import { MAX_THREADS, dequantBytes, gateSumsBytes, quantRowBytes } from "../../compiler/codegen/linear/index.js";
import { attentionRowsScratch } from "../../compiler/codegen/attention.js";
import { attentionPartBytes, loweringOf } from "../../compiler/codegen/lower.js";
import { INTEGER_MAX_ROWS_RELAXED } from "../../compiler/codegen/tuning.js";
import { quantizeWeights } from "../../compiler/passes/quantize-weights.js";
import { GraphBuilder } from "../../ir/graph.js";
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileModel } from "../../compiler/compile.js";
import { InputError } from "../../compiler/diagnostics.js";
import type { Param, Program } from "../../ir/types.js";
import { fixtureDir, rng, root } from "../helpers.js";

const CONTEXT = 40;

/** A graph of the given ops over a token-id input; `build` returns the output. */
function program(build: (b: GraphBuilder, param: (shape: number[]) => number, x: (D: number) => number) => number): Program {
  const r = rng(7);
  const params = new Map<string, Param>();
  const b = new GraphBuilder("forward");
  const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
  const param = (shape: number[]) => {
    const name = `p${params.size}`;
    params.set(name, { name, shape, data: r.floats(shape.reduce((a, c) => a * c, 1), 0.1) });
    return b.add("param", [], { name, shape });
  };
  b.output("y", build(b, param, (D) => b.add("embedding", [param([20, D]), ids])));
  return { model: "t", config: {}, context: CONTEXT, graphs: [b.build()], params };
}

const needsOf = (p: Program, op: string) => {
  const g = p.graphs[0];
  const n = g.nodes.find((n) => n.op === op)!;
  return loweringOf(op).scratch?.(n, { node: (id) => g.nodes[id], context: CONTEXT, threads: MAX_THREADS }) ?? {};
};

describe("lowerings declare their scratch", () => {
  it("a quantized linear: x's quantized rows (int_rows or int_rows_relaxed of them at most: the modules share the layout) and each thread's dequantized groups", () => {
    const p = quantizeWeights(program((b, param, x) => b.add("linear", [x(96), param([8, 96])])), { scheme: "int4" });
    expect(needsOf(p, "linear")).toEqual({ xq: Math.min(INTEGER_MAX_ROWS_RELAXED.q4_0, CONTEXT) * quantRowBytes(96), dq: MAX_THREADS * dequantBytes(96) });
    const n = p.graphs[0].nodes.find((n) => n.op === "linear")!;
    Object.assign(n.attrs, { int_rows: 16, int_rows_relaxed: 3 });
    expect(needsOf(p, "linear").xq).toBe(16 * quantRowBytes(96));
    Object.assign(n.attrs, { int_rows: 2, int_rows_relaxed: 20 });
    expect(needsOf(p, "linear").xq).toBe(20 * quantRowBytes(96));
    const all = quantizeWeights(program((b, param, x) => b.add("linear", [x(96), param([8, 96])])), { scheme: "int8" });
    expect(needsOf(all, "linear").xq).toBe(CONTEXT * quantRowBytes(96)); // no int_rows: every call, up to the context
  });
  it("fused norms: one f32 a row (RMSNorm), two (LayerNorm)", () => {
    expect(needsOf(program((b, param, x) => b.add("linear", [x(12), param([5, 12])], { rms_eps: 1e-5 })), "linear")).toEqual({ norms: CONTEXT * 4 });
    expect(needsOf(program((b, param, x) => b.add("linear", [x(12), param([5, 12]), param([2, 5])], { ln_eps: 1e-5 })), "linear")).toEqual({ norms: CONTEXT * 8 });
  });
  it("gated f32 kernels: the gate's partial sums only when K spans several panels", () => {
    const gated = (K: number) => program((b, param, x) => b.add("gated_linear", [x(K), param([6, K]), param([6, K])], { act: "silu" }));
    expect(needsOf(gated(528), "gated_linear")).toEqual({ gateSums: gateSumsBytes(528, 6, CONTEXT) });
    expect(gateSumsBytes(528, 6, CONTEXT)).toBeGreaterThan(0);
    expect(needsOf(gated(64), "gated_linear")).toEqual({});
  });
  it("attention: decode's partial results, or the generated kernel's packed key blocks per thread; element-wise ops: nothing", () => {
    const p = program((b, _param, x) => {
      return b.add("relu", [b.add("attention", [x(24), x(12), x(12)], { heads: 4, kv_heads: 2, scale: 0.3, causal: true, cache: false })]);
    });
    expect(needsOf(p, "attention")).toEqual({ attention: attentionPartBytes(4, 6) });
    expect(needsOf(p, "relu")).toEqual({});
    // head size 8 (a multiple of 4): the generated kernel, each thread's block of keys and values and rows' (m, l)
    const g = program((b, _param, x) => b.add("attention", [x(32), x(16), x(16)], { heads: 4, kv_heads: 2, scale: 0.3, causal: true, cache: false }));
    expect(needsOf(g, "attention")).toEqual({ attention: MAX_THREADS * attentionRowsScratch(8, 8, CONTEXT) });
    expect(attentionRowsScratch(8, 8, CONTEXT)).toBeGreaterThanOrEqual(Math.min(256, CONTEXT) * 16 * 4 + CONTEXT * 8);
  });
});

describe("the memory planner sums the declarations", () => {
  it("one buffer an area, as large as its largest need, apart from each other and from everything else", () => {
    const p = quantizeWeights(program((b, param, x) => {
      const a = b.add("linear", [x(64), param([96, 64])], { rms_eps: 1e-5 });
      const c = b.add("linear", [a, param([8, 96])]);
      const gate = b.add("gated_linear", [x(520), param([8, 520]), param([8, 520])], { act: "silu" });
      const q = b.add("add", [c, gate]);
      return b.add("attention", [q, q, q], { heads: 2, kv_heads: 2, scale: 0.3, causal: true, cache: false });
    }), { scheme: "int4" });
    const art = generate(p);
    const want = {
      norms: CONTEXT * 4,
      attention: MAX_THREADS * attentionRowsScratch(4, 4, CONTEXT),
      xq: Math.min(INTEGER_MAX_ROWS_RELAXED.q4_0, CONTEXT) * Math.max(quantRowBytes(64), quantRowBytes(96)),
      dq: MAX_THREADS * dequantBytes(96),
      gateSums: gateSumsBytes(520, 8, CONTEXT),
    };
    expect(Object.fromEntries([...art.scratch].map(([a, s]) => [a, s.bytes]))).toEqual(want);
    // disjoint, after the weights, and below every activation buffer
    const areas = [...art.scratch.values()].sort((a, b) => a.at - b.at);
    for (let i = 1; i < areas.length; i++) expect(areas[i].at).toBeGreaterThanOrEqual(areas[i - 1].at + areas[i - 1].bytes);
    const { weights_offset, weights_bytes } = art.manifest.memory;
    expect(areas[0].at).toBeGreaterThanOrEqual(weights_offset + weights_bytes);
    const g = p.graphs[0], bufs = art.buffers.get("forward")!;
    const activations = g.nodes.filter((n) => n.op !== "param" && n.op !== "input").map((n) => bufs.get(n.id)!);
    expect(Math.min(...activations)).toBeGreaterThanOrEqual(areas[areas.length - 1].at + areas[areas.length - 1].bytes);
  });
  it("a program whose lowerings declare none plans none", () => {
    expect(generate(program((b, param, x) => b.add("linear", [x(8), param([4, 8])]))).scratch.size).toBe(0);
  });
});


describe("a model larger than a 32-bit WebAssembly memory", () => {
  it("is refused (WF307) before any tensor is read when the checkpoint's tensors alone exceed 4 GiB as f32", () => {
    // a sparse 5 GiB F16 tensor: its header is all compile reads before refusing
    const dir = mkdtempSync(join(tmpdir(), "wf-huge-"));
    try {
      const big = 2 ** 31 + 2 ** 30, elems = big / 2;
      const header = Buffer.from(JSON.stringify({ "model.embed_tokens.weight": { dtype: "F16", shape: [elems / 2048, 2048], data_offsets: [0, big] } }));
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(header.length));
      writeFileSync(join(dir, "model.safetensors"), Buffer.concat([n, header]));
      truncateSync(join(dir, "model.safetensors"), 8 + header.length + big);
      writeFileSync(join(dir, "config.json"), readFileSync(join(fixtureDir("llama"), "config.json")));
      let err: unknown;
      const t0 = performance.now();
      try {
        compileModel(join(root, "examples", "llama.wf"), dir, join(dir, "out"));
      } catch (e) {
        err = e;
      }
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(err).toBeInstanceOf(InputError);
      expect([(err as InputError).code, (err as InputError).message]).toEqual(["WF307", "the checkpoint's tensors take 6.00 GiB as f32; a 32-bit WebAssembly memory holds at most 4 GiB: quantize the weights (--quantize int4)"]);
      expect(existsSync(join(dir, "out"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is one WF307 line naming the KV cache that does not fit, before any code is generated", () => {
    const p = program((b, _param, x) => {
      const q = x(64);
      return b.add("attention", [q, q, q], { heads: 4, kv_heads: 4, scale: 0.25, causal: true, cache: true });
    });
    // 2^24 positions × 64 keys + 64 values × 4 bytes = 8 GiB of KV cache
    let err: unknown;
    try {
      generate({ ...p, context: 2 ** 24 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe("WF307");
    expect((err as InputError).message).toMatch(/^the model needs [\d.]+ GiB of WebAssembly memory \(weights [\d.]+ GiB, KV cache 8\.00 GiB for a context of 16777216, activations [\d.]+ GiB\); a 32-bit WebAssembly memory holds at most 4 GiB/);
    expect((err as InputError).message).not.toMatch(/\n/);
  });
});
