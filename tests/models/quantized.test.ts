// compile --quantize int8 on the bundled trained GPT-2: q8_0 matrices, the fp32 model's
// behaviour kept (logits close, greedy ids equal where fp32's top-1 margin is large).

import { join } from "node:path";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadProgram } from "../../compiler/load.js";
import { passes, runPipeline, withQuantization } from "../../compiler/passes/manager.js";
import { floatToHalf, halfToFloat } from "../../ir/half.js";
import { quantizeQ8 } from "../../ir/quant.js";
import { interpret, newSession } from "../../ir/interp.js";
import { parseOverride } from "../../compiler/passes/quantize-weights.js";
import { generate } from "../../runtime/generate.js";
import type { Node, Program } from "../../ir/types.js";
import { compileInMemory, relError, root } from "../helpers.js";

const tiny = join(root, "examples", "tiny-gpt2");

/** Weights of the quantized parameters; one of them is the tied table the lookups read too. */
function quantizedWeights(p: Program, quantized: Node[]): number {
  const tables = new Set(p.graphs[0].nodes.filter((n) => n.op === "embedding").map((n) => p.graphs[0].nodes[n.args[0]].attrs.name));
  expect(quantized.filter((n) => tables.has(n.attrs.name)).length).toBe(1);
  return quantized.reduce((s, n) => s + (n.type.shape as number[]).reduce((x, y) => x * y, 1), 0);
}

describe("q8_0 quantization", () => {
  it("matches GGUF Q8_0: d = max|w|/127 stored as f16, codes roundf(w / d)", () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => (i - 15.5) / 10);
    const q = quantizeQ8(w, 1, 32);
    expect(q.scales[0]).toBe(halfToFloat(floatToHalf(Math.fround(1.55 / 127))));
    expect(Math.max(...Array.from(q.codes, Math.abs))).toBe(127);
    expect(q.codes[0]).toBe(-127);
    // 0.05 / (1.55/127) = 4.0967… → 4; -0.05 → -4 (symmetric)
    expect([q.codes[15], q.codes[16]]).toEqual([-4, 4]);
    for (let i = 0; i < 32; i++) expect(Math.abs(q.dequant[i] - w[i])).toBeLessThanOrEqual(0.6 * q.scales[0]);
  });

  it("f16 conversion: exact values, ties to even, subnormals, overflow", () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds to infinity
    expect(floatToHalf(2 ** -24)).toBe(0x0001);
    expect(floatToHalf(2 ** -25)).toBe(0x0000); // a tie: to even (zero)
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (const h of [0x0001, 0x03ff, 0x0400, 0x3555, 0x7bff]) expect(floatToHalf(halfToFloat(h))).toBe(h);
  });

  it("tiny GPT-2 at int8: weights shrink, logits stay close, greedy agrees with fp32", async () => {
    const fp = runPipeline(loadProgram(join(root, "examples", "gpt2.wf"), tiny));
    const q8 = runPipeline(loadProgram(join(root, "examples", "gpt2.wf"), tiny), {}, withQuantization(passes, "int8"));
    const quantized = q8.graphs[0].nodes.filter((n) => n.op === "param" && n.attrs.quant === "q8_0");
    // 4 matrices in each of 4 layers, and the tied table (quantized for the head and the lookup)
    expect(quantized.length).toBe(17);
    const a = await compileInMemory(fp), b = await compileInMemory(q8);
    // the quantized weights take 8.5 bits (f16 scale per 32 codes) instead of 32
    const saved = a.art.manifest.memory.weights_bytes - b.art.manifest.memory.weights_bytes;
    expect(saved / quantizedWeights(q8, quantized)).toBeCloseTo(4 - 8.5 / 8, 1);
    const ref = JSON.parse(readFileSync(join(tiny, "greedy.json"), "utf8"));
    const la = a.model.run("forward", { ids: ref.prompt_ids }).logits;
    const lb = b.model.run("forward", { ids: ref.prompt_ids }).logits;
    expect(relError(lb, la)).toBeLessThan(0.03);
    const ga = (await generate(a.model, ref.prompt_ids, { maxNewTokens: 10, stopAtEos: false })).ids;
    const gb = (await generate(b.model, ref.prompt_ids, { maxNewTokens: 10, stopAtEos: false })).ids;
    expect(ga).toEqual(ref.ids);
    // where fp32's top-1 margin is large (> 0.3), int8 picks the same token
    ref.top1_top2_margins.forEach((m: number, i: number) => {
      if (m > 0.3 && ga.slice(0, i).join() === gb.slice(0, i).join()) expect(gb[i]).toBe(ga[i]);
    });
  });
});

describe("q4_0 quantization (compile --quantize int4)", () => {
  const model = join(root, "examples", "gpt2.wf");
  it("tiny GPT-2 at int4: 4.5 bits a weight, logits near fp32, the interpreter agrees with the kernels", async () => {
    const fp = runPipeline(loadProgram(model, tiny), {}, passes.filter((p) => p.name !== "fuse-norm")); // the graph the quantized pipeline keeps
    const q4 = runPipeline(loadProgram(model, tiny), {}, withQuantization(passes, "int4"));
    const quantized = q4.graphs[0].nodes.filter((n) => n.op === "param" && n.attrs.quant === "q4_0");
    expect(quantized.length).toBe(17);
    const a = await compileInMemory(fp), b = await compileInMemory(q4);
    const saved = a.art.manifest.memory.weights_bytes - b.art.manifest.memory.weights_bytes;
    // f32 (4 bytes) replaced by 18 bytes per 32 weights
    expect(saved / quantizedWeights(q4, quantized)).toBeCloseTo(4 - 4.5 / 8, 2);
    const ref = JSON.parse(readFileSync(join(tiny, "greedy.json"), "utf8"));
    const la = a.model.run("forward", { ids: ref.prompt_ids }).logits;
    const lb = b.model.run("forward", { ids: ref.prompt_ids }).logits;
    const err = relError(lb, la);
    // 4-bit weights move the logits more than 8-bit ones, but not beyond recognition
    expect(err).toBeGreaterThan(1e-3);
    expect(err).toBeLessThan(0.15);
    const s = newSession();
    expect(relError(lb, interpret(q4, "forward", { ids: Int32Array.from(ref.prompt_ids) }, s).logits)).toBeLessThan(1e-2);
  });

  it("per-tensor overrides: a glob picks int8 or f32 for some matrices", () => {
    const p = runPipeline(loadProgram(model, tiny), {}, withQuantization(passes, { scheme: "int4", overrides: [{ pattern: "*h.0.*", scheme: "f32" }, { pattern: "*.mlp.c_proj.weight", scheme: "int8" }] }));
    const schemes = new Map(p.graphs[0].nodes.filter((n) => n.op === "param").map((n) => [n.attrs.name as string, n.attrs.quant]));
    const names = [...schemes.keys()];
    expect(names.filter((n) => n.includes("h.0.")).every((n) => schemes.get(n) === undefined)).toBe(true);
    expect(names.filter((n) => n.includes("h.1.mlp.c_proj.weight")).map((n) => schemes.get(n))).toEqual(["q8_0"]);
    expect(names.filter((n) => n.includes("h.1.attn.c_attn.weight")).map((n) => schemes.get(n))).toEqual(["q4_0"]);
    expect(() => parseOverride("lm_head=int3")).toThrow(/NAME=int8\|int4\|int4-min\|f32/);
    expect(parseOverride("lm_head.weight=int8")).toEqual({ pattern: "lm_head.weight", scheme: "int8" });
  });
});
