// compile --kv-cache bf16 (compiler/passes/kv-cache.ts): the caches hold keys and values rounded
// to bfloat16. The compiled model (its generated prefill kernel widening the packed blocks, the
// library's bf16 decode kernel, the to_bf16 appends) against the interpreter, which rounds the
// same; incremental decode against one call; the cache's memory, a saved state's bytes, threads,
// a sliding window's ring buffer, and the attentions it refuses.

import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// (the bench's seeded random checkpoints in the HF layout: these shapes have head sizes of 16)
import { randomGpt2Weights, randomLlamaWeights } from "../../bench/weights.js";
import { generate as generateArtifact } from "../../compiler/codegen/emit.js";
import { Diagnostic } from "../../compiler/diagnostics.js";
import { loadProgram, programFromSource } from "../../compiler/load.js";
import { memoryWeights } from "../../compiler/weights/memory.js";
import { passes, runPipeline, withKvCache, withQuantization } from "../../compiler/passes/manager.js";
import { roundBf16 } from "../../ir/half.js";
import { interpret, newSession } from "../../ir/interp.js";
import type { Program } from "../../ir/types.js";
import { Model } from "../../runtime/model.js";
import { nodeThreads } from "../../runtime/node.js";
import { families, fixtureDir, relError, root } from "../helpers.js";
import { cli } from "../cli/run-cli.js";

const open: Model[] = [];
afterAll(() => open.forEach((m) => m.dispose()));

/** Small random models whose head sizes are multiples of 8 (the fixtures' are 10 and 12): GPT-2 (MHA), LLaMA (GQA 2), Qwen2 (biases, GQA 3), Mistral (window 8). */
const CONFIGS: Record<string, { wf: string; config: Record<string, unknown> }> = {
  gpt2: { wf: "gpt2", config: { model_type: "gpt2", vocab_size: 97, n_embd: 48, n_head: 3, n_layer: 2, n_inner: 192, n_positions: 64, layer_norm_epsilon: 1e-5 } },
  llama: {
    wf: "llama",
    config: { model_type: "llama", vocab_size: 97, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 80, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000 },
  },
  qwen2: {
    wf: "qwen2",
    config: { model_type: "qwen2", vocab_size: 97, hidden_size: 48, num_attention_heads: 6, num_key_value_heads: 2, head_dim: 8, num_hidden_layers: 2, intermediate_size: 72, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1e6, tie_word_embeddings: true },
  },
  mistral: {
    wf: "mistral",
    config: { model_type: "mistral", vocab_size: 97, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 80, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000, sliding_window: 8 },
  },
};

const program = (name: string, opts: { kv?: "bf16"; quantize?: "int4" } = {}): Program => {
  const { wf, config } = CONFIGS[name];
  const file = join(root, "examples", `${wf}.wf`);
  const tensors = name === "gpt2" ? randomGpt2Weights(config, 5) : randomLlamaWeights(config, 5);
  return runPipeline(programFromSource(file, readFileSync(file, "utf8"), config, memoryWeights(tensors)), {}, withKvCache(withQuantization(passes, opts.quantize), opts.kv));
};

async function load(p: Program, threads = 1) {
  const art = generateArtifact(p);
  const wasm = threads > 1 ? art.variants!.find((v) => v.file === "model.threads.wasm")!.wasm : art.wasm;
  const m = await Model.load({ manifest: art.manifest, wasm, weights: art.weights }, { threads, host: nodeThreads });
  open.push(m);
  return m;
}

const prompt = Array.from({ length: 23 }, (_, i) => (i * 17 + 3) % 90);
const steps = [4, 9, 2, 33, 7, 12, 5, 61, 8, 3];

/** The prompt's logits, then each decode step's. */
function trace(m: Model): Float32Array[] {
  m.reset();
  return [m.run("forward", { ids: prompt }).logits, ...steps.map((id) => m.run("forward", { ids: [id] }).logits)];
}

describe("bf16 KV cache", () => {
  it("rounds as the cache stores: ties to even, NaN kept, overflow to infinity", () => {
    expect(roundBf16(1 + 2 ** -8)).toBe(1); // a tie: to the even 1
    expect(roundBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // a tie: to the even 1 + 2^-6
    expect(roundBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7);
    expect(roundBf16(-3.1415926)).toBe(-3.140625);
    expect(Number.isNaN(roundBf16(NaN))).toBe(true);
    expect(roundBf16(3.4e38)).toBe(Infinity);
  });

  describe.each(["gpt2", "llama", "qwen2"])("%s", (name) => {
    it("the compiled model equals the interpreter, prefill and 10 decode steps; incremental equals one call", async () => {
      const p = program(name, { kv: "bf16" });
      expect(p.graphs[0].nodes.filter((n) => n.op === "attention").every((n) => n.attrs.kv_dtype === "bf16")).toBe(true);
      const m = await load(p);
      const got = trace(m);
      const s = newSession();
      const want = [interpret(p, "forward", { ids: Int32Array.from(prompt) }, s).logits as Float32Array, ...steps.map((id) => interpret(p, "forward", { ids: Int32Array.from([id]) }, s).logits as Float32Array)];
      // the rounding is there: the f32 cache's logits differ by bf16 steps' worth
      const f32 = trace(await load(program(name)));
      const d = relError(got.at(-1)!, f32.at(-1)!);
      expect(d).toBeGreaterThan(5e-5);
      expect(d).toBeLessThan(3e-2);
      // and the kernels round as the interpreter does, well inside that difference (a key they
      // compute an ulp away from the interpreter's may round to the other bf16 neighbour: up to
      // 2.6e-5 seen)
      got.forEach((g, i) => expect(relError(g, want[i]), `call ${i}`).toBeLessThan(Math.min(1e-4, d / 4)));
      // the whole sequence in one call: its last row is the last decode step's
      m.reset();
      const all = m.run("forward", { ids: [...prompt, ...steps] }).logits;
      const V = got[1].length;
      expect(relError(all.subarray(all.length - V), got.at(-1)!)).toBeLessThan(1e-5);
    });
  });

  it("the cache takes half the bytes: the manifest's kv says 2 a value, a saved state is half as long and restores", async () => {
    const f32 = await load(program("llama"));
    const bf = await load(program("llama", { kv: "bf16" }));
    expect(bf.manifest.memory.kv!.every((c) => c.bytes === 2)).toBe(true);
    expect(f32.manifest.memory.kv!.every((c) => c.bytes === undefined)).toBe(true);
    for (const m of [f32, bf]) {
      m.reset();
      m.run("forward", { ids: prompt });
    }
    const state = bf.saveState(), full = f32.saveState();
    const kvBytes = (m: Model) => m.manifest.memory.kv!.reduce((a, c) => a + prompt.length * (c.k_width + c.v_width), 0);
    expect(full.byteLength - state.byteLength).toBe(kvBytes(bf) * 2);
    const next = bf.run("forward", { ids: [5] }).logits;
    bf.reset();
    bf.restoreState(state);
    expect(bf.run("forward", { ids: [5] }).logits).toEqual(next);
  });

  it("decode split over 2 and 3 threads is bit-identical to one", async () => {
    const p = program("llama", { kv: "bf16" });
    const one = trace(await load(p));
    for (const threads of [2, 3]) trace(await load(p, threads)).forEach((o, i) => expect(o, `${threads} threads, call ${i}`).toEqual(one[i]));
  });

  it("a sliding window's ring buffer (Mistral, window 8): decode past the window equals the interpreter", async () => {
    const p = program("mistral", { kv: "bf16" });
    expect(p.graphs[0].nodes.some((n) => n.op === "attention" && n.attrs.window === 8 && n.attrs.kv_dtype === "bf16")).toBe(true);
    const m = await load(p);
    expect(m.manifest.memory.kv![0].rows).toBeLessThan(64);
    const got = trace(m);
    const s = newSession();
    const want = [interpret(p, "forward", { ids: Int32Array.from(prompt) }, s).logits as Float32Array, ...steps.map((id) => interpret(p, "forward", { ids: Int32Array.from([id]) }, s).logits as Float32Array)];
    got.forEach((g, i) => expect(relError(g, want[i]), `call ${i}`).toBeLessThan(1e-4));
  });

  it("int4 weights with a bf16 cache: the interpreter agrees", async () => {
    const p = program("gpt2", { kv: "bf16", quantize: "int4" });
    const got = trace(await load(p));
    const s = newSession();
    const want = [interpret(p, "forward", { ids: Int32Array.from(prompt) }, s).logits as Float32Array, ...steps.map((id) => interpret(p, "forward", { ids: Int32Array.from([id]) }, s).logits as Float32Array)];
    got.forEach((g, i) => expect(relError(g, want[i]), `call ${i}`).toBeLessThan(1e-4));
  });

  it("refuses an attention the bf16 kernels do not run, naming why and where", () => {
    const refusal = (name: string) => {
      try {
        runPipeline(loadProgram(join(root, "examples", `${families[name]}.wf`), fixtureDir(name)), {}, withKvCache(passes, "bf16"));
      } catch (e) {
        expect(e).toBeInstanceOf(Diagnostic);
        expect((e as Diagnostic).code).toBe("WF601");
        return (e as Error).message.split("\n")[0];
      }
      return undefined;
    };
    expect(refusal("llama")).toBe("--kv-cache bf16: this attention cannot keep a bf16 cache: its head size 10 is not a multiple of 8 (the f32 cache runs it)");
    expect(refusal("gemma2")).toMatch(/^--kv-cache bf16: this attention cannot keep a bf16 cache: (it soft-caps its scores|its head size \d+ is not a multiple of 8)/);
    // f32 (the default) leaves the program as it is
    const p = runPipeline(loadProgram(join(root, "examples", "llama.wf"), fixtureDir("llama")));
    expect(runPipeline(loadProgram(join(root, "examples", "llama.wf"), fixtureDir("llama")), {}, withKvCache(passes, "f32"))).toEqual(p);
  });

  it("compile --kv-cache: a refused attention is the DSL's line and a code frame, exit 1, nothing written; an unknown type one line", async () => {
    const out = join(tmpdir(), `wf-kv-${process.pid}`);
    const r = await cli("compile", join(root, "examples", "llama.wf"), "--weights", fixtureDir("llama"), "--kv-cache", "bf16", "--out", out);
    expect(r.code).toBe(1);
    expect(r.err.split("\n")[0]).toMatch(/examples\/llama\.wf:\d+:\d+: error\[WF601\]: --kv-cache bf16: this attention cannot keep a bf16 cache: its head size 10 is not a multiple of 8/);
    expect(r.err).toMatch(/\|\s+let a = attention\(/);
    expect(existsSync(out)).toBe(false);
    const bad = await cli("compile", join(root, "examples", "llama.wf"), "--weights", fixtureDir("llama"), "--kv-cache", "fp16", "--out", out);
    expect([bad.code, bad.err]).toEqual([1, "error[WF601]: --kv-cache should be one of f32, bf16, found 'fp16'\n"]);
  });
});
