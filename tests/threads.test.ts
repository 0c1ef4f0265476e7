// Worker threads (model.threads.wasm): matrix kernels split by output rows, attention by heads (decode: by keys), give exactly the
// single-thread results, in every family, cached decode and int8 included.

import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generate as generateArtifact } from "../compiler/codegen/emit.js";
import { loadProgram } from "../compiler/load.js";
import { passes, runPipeline, withQuantization } from "../compiler/passes/manager.js";
import type { Program } from "../ir/types.js";
import { generate } from "../runtime/generate.js";
import { ArtifactError, Model } from "../runtime/model.js";
import { nodeThreads } from "../runtime/node.js";
import { pickVariant } from "../runtime/features.js";
import { interpret, newSession } from "../ir/interp.js";
import { parseGraphs } from "../ir/parse.js";
import { fixtureProgram, relError, rng, root } from "./helpers.js";

const open: Model[] = [];
afterAll(() => open.forEach((m) => m.dispose()));

async function load(p: Program, threads: number) {
  const art = generateArtifact(p);
  const file = threads > 1 ? "model.threads.wasm" : "model.wasm";
  const m = await Model.load({ manifest: art.manifest, wasm: art.variants!.find((v) => v.file === file)!.wasm, weights: art.weights }, { threads, host: nodeThreads });
  open.push(m);
  return m;
}

// 24 rows: enough work for every fixture matrix and prefill attention to be split (small calls run on one thread)
const prompt = Array.from({ length: 24 }, (_, i) => (i * 17 + 3) % 60);

/** Prefill, three cached decode steps, and the last-row entry (an encoder: a packed call of three sequences): every output of every call. */
function trace(m: Model, kind: string): Float32Array[] {
  const out: Float32Array[] = [];
  m.reset();
  if (kind === "seq2seq") {
    m.setState("hidden", m.run("encode", { ids: prompt }).hidden);
    out.push(m.run("decode", { ids: prompt.slice(0, 20) }).logits);
    for (const id of [4, 9, 2]) out.push(m.run("decode", { ids: [id] }).logits);
    return out;
  }
  const entry = m.manifest.entries[0].name;
  const first = m.run(entry, { ids: prompt });
  out.push(first[m.manifest.entries[0].outputs[0].name]);
  // packed sequences (pack-sequences): attention by heads, each query within its own sequence
  if (m.manifest.entries.some((e) => e.name === `${entry}_packed`))
    for (const r of m.runSequences(entry, [prompt.slice(0, 9), prompt.slice(9, 10), prompt.slice(10)].map((ids) => ({ ids })))) out.push(r.hidden);
  if (m.manifest.kind === "causal-lm") {
    for (const id of [4, 9, 2]) out.push(m.run(entry, { ids: [id] }).logits);
    m.reset();
    out.push(m.run(`${entry}_last`, { ids: prompt }).logits);
  }
  return out;
}

describe("threads", () => {
  for (const name of ["gpt2", "llama", "bert", "t5", "distilbert"]) {
    it(`${name}: 2 and 3 threads give bit-identical outputs to 1`, async () => {
      const p = fixtureProgram(name, name === "t5" ? { context: 32 } : {});
      const one = trace(await load(p, 1), p.graphs.some((g) => g.name === "encode") ? "seq2seq" : "");
      for (const threads of [2, 3]) {
        const m = await load(p, threads);
        expect(m.threads).toBe(threads);
        const got = trace(m, p.graphs.some((g) => g.name === "encode") ? "seq2seq" : "");
        got.forEach((o, i) => expect(o, `call ${i}`).toEqual(one[i]));
      }
    });
  }

  it("decode attention splits its keys over the threads (flash-decoding): bit-identical, and the interpreter's values", async () => {
    // 8 heads of 64: a one-row call over 80+ keys is work enough to be split
    const [graph] = parseGraphs(`
      graph forward {
        %0 = input() {name="ids", kind="tokens", dtype="i32", shape=[S]} : i32[S]
        %1 = param() {name="emb", shape=[50,512]} : f32[50,512]
        %2 = embedding(%1, %0) : f32[S,512]
        %3 = attention(%2, %2, %2) {heads=8, kv_heads=8, scale=0.125, causal=true, cache="forward.0"} : f32[S,512]
        %4 = param() {name="w", shape=[10,512]} : f32[10,512]
        %5 = linear(%3, %4) : f32[S,10]
        return logits=%5
      }`);
    const r = rng(11);
    const params = new Map([["emb", [50, 512]], ["w", [10, 512]]].map(([name, shape]) => [name as string, { name: name as string, shape: shape as number[], data: r.floats((shape as number[])[0] * (shape as number[])[1]) }]));
    const p: Program = { model: "t", config: {}, context: 128, graphs: [graph], params };
    const ids = Array.from({ length: 80 }, (_, i) => (i * 7 + 3) % 50);
    const steps = [4, 9, 2];
    const traceOf = (m: Model) => {
      m.reset();
      return [m.run("forward", { ids }).logits, ...steps.map((id) => m.run("forward", { ids: [id] }).logits)];
    };
    const one = traceOf(await load(p, 1));
    for (const threads of [2, 3]) traceOf(await load(p, threads)).forEach((o, i) => expect(o, `${threads} threads, call ${i}`).toEqual(one[i]));
    const s = newSession();
    interpret(p, "forward", { ids: Int32Array.from(ids) }, s);
    for (const [i, id] of steps.entries()) expect(relError(one[i + 1], interpret(p, "forward", { ids: Int32Array.from([id]) }, s).logits as Float32Array)).toBeLessThan(1e-5);
  });

  it("int8 kernels split the same way; greedy generation is unchanged", async () => {
    const p = runPipeline(loadProgram(join(root, "examples", "gpt2.wf"), join(root, "examples", "tiny-gpt2")), {}, withQuantization(passes, "int8"));
    const a = await load(p, 1), b = await load(p, 2);
    expect(b.run("forward", { ids: prompt }).logits).toEqual(a.run("forward", { ids: prompt }).logits);
    const ga = (await generate(a, prompt, { maxNewTokens: 12, stopAtEos: false })).ids;
    expect((await generate(b, prompt, { maxNewTokens: 12, stopAtEos: false })).ids).toEqual(ga);
  });

  it("the runtime picks the threaded module only when asked for threads", () => {
    const variants = [
      { file: "model.wasm", features: ["simd128"] },
      { file: "model.threads.wasm", features: ["simd128", "threads"] },
    ];
    expect(pickVariant(variants).file).toBe("model.wasm");
    expect(pickVariant(variants, { threads: 2 }).file).toBe("model.threads.wasm");
  });

  it("threads need the threaded module and a host; dispose stops the workers", async () => {
    const p = fixtureProgram("gpt2");
    const art = generateArtifact(p);
    const files = { manifest: art.manifest, wasm: art.wasm, weights: art.weights };
    await expect(Model.load(files, { threads: 2, host: nodeThreads })).rejects.toThrow(/need the threaded module/);
    const threaded = { ...files, wasm: art.variants!.find((v) => v.file === "model.threads.wasm")!.wasm };
    await expect(Model.load(threaded, { threads: 2 })).rejects.toThrow(ArtifactError);
    await expect(Model.load(threaded, { threads: 0 })).rejects.toThrow(/positive integer/);
    const m = await Model.load(threaded, { threads: 2, host: nodeThreads });
    const before = m.run("forward", { ids: prompt }).logits;
    m.dispose();
    expect(m.threads).toBe(1);
    // after dispose the model still runs, on the calling thread
    m.reset();
    expect(m.run("forward", { ids: prompt }).logits).toEqual(before);
  });
});
