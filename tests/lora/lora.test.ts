// LoRA adapters (PEFT format): merged at compile time (compile --lora) and applied at run time in
// compiled slots (compile --lora-slots, run/generate --adapter, LoraSlots), against PyTorch
// references of W + s·B·A from tests/fixtures/make_lora.py.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generate as generateArtifact } from "../../compiler/codegen/emit.js";
import { GROUP, linearPanels, packLinearWeight } from "../../compiler/codegen/linear/layout.js";
import { main } from "../../compiler/cli.js";
import { loadProgram } from "../../compiler/load.js";
import { loraLayout, mergeAdapters, withLoraSlots } from "../../compiler/lora.js";
import { passes, runPipeline, withQuantization } from "../../compiler/passes/manager.js";
import { interpret, newSession } from "../../ir/interp.js";
import type { Program } from "../../ir/types.js";
import { type LoraAdapter, LoraSlots, packForKernel, parseAdapter } from "../../runtime/lora.js";
import { readAdapter } from "../../runtime/lora-node.js";
import type { Manifest } from "../../runtime/manifest.js";
import { Model } from "../../runtime/model.js";
import { loadArtifact, nodeThreads } from "../../runtime/node.js";
import { decodeNpy } from "../../runtime/npy.js";
import { generate } from "../../runtime/generate.js";
import { compileInMemory, fixtureDir, relError, rng, root, safetensors } from "../helpers.js";

const TOL = 1e-4;
const loraDir = (name: string) => join(root, "tests", "fixtures", "lora", name);
const wf = (family: string) => join(root, "examples", `${family}.wf`);
interface Case { name: string; input_ids: number[]; output: string }
const cases = (name: string): Case[] => JSON.parse(readFileSync(join(loraDir(name), "reference.json"), "utf8")).cases;
const expected = (name: string, c: Case) => decodeNpy(readFileSync(join(loraDir(name), c.output))).data as Float32Array;
const logits = (model: Model, ids: number[]) => (model.reset(), model.run("forward", { ids }).logits);

/** Compiles `p` with its slots' layout in the manifest, as compile --lora-slots does. */
async function withSlots(p: Program, rank: number, opts: { threads?: number; adapters?: number } = {}) {
  const art = generateArtifact(p);
  const manifest: Manifest = { ...art.manifest, lora: loraLayout(p, art, rank) };
  const threads = opts.threads ?? 1;
  const wasm = threads > 1 ? art.variants!.find((v) => v.file === "model.threads.wasm")!.wasm : art.wasm;
  const model = await Model.load({ manifest, wasm, weights: art.weights }, { threads, host: nodeThreads, adapters: opts.adapters });
  return { art, manifest, model };
}

const slotsProgram = (family: string, fixture: string, rank: number, modules?: string[], quantize?: "int4") =>
  runPipeline(loadProgram(wf(family), fixture), {}, withLoraSlots(withQuantization(passes, quantize && { scheme: quantize }), { rank, modules }));

const tmp = mkdtempSync(join(tmpdir(), "wf-lora-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of a fixture adapter with its config or tensors edited, in a fresh folder. */
function editedAdapter(from: string, edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: Record<string, { shape: number[]; data: Float32Array }>) => void }): string {
  const dir = mkdtempSync(join(tmp, "adapter-"));
  const cfg = JSON.parse(readFileSync(join(loraDir(from), "adapter_config.json"), "utf8"));
  edit.config?.(cfg);
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(cfg));
  const a = readAdapter(loraDir(from));
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const m of a.modules) {
    t[m.aName] = { shape: [m.r, m.in], data: m.a };
    t[m.bName] = { shape: [m.out, m.r], data: m.b };
  }
  edit.tensors?.(t);
  writeFileSync(join(dir, "adapter_model.safetensors"), safetensors(t));
  return dir;
}

describe("PEFT adapters", () => {
  it("reads r, alpha, rsLoRA and fan_in_fan_out: scale alpha/r or alpha/√r, times the user's", () => {
    const g = readAdapter(loraDir("gpt2"));
    expect(g.fanInFanOut).toBe(true);
    expect(g.modules.length).toBe(8);
    expect(g.modules[0].scale).toBe(8 / 4);
    const l = readAdapter(loraDir("llama"), 0.5);
    expect(l.fanInFanOut).toBe(false);
    expect(l.modules.find((m) => m.module === "model.layers.0.self_attn.k_proj")).toMatchObject({ r: 8, in: 60, out: 20 });
    expect(l.modules[0].scale).toBeCloseTo((16 / Math.sqrt(8)) * 0.5, 12);
  });

  it("the runtime's packing is the compiler's layout (one panel, K % 4 tails, several panels)", () => {
    const r = rng(3);
    for (const [N, K] of [[5, 7], [16, 60], [60, 16], [90, 8], [9, 1032], [3, 2048]]) {
      const w = Float32Array.from({ length: N * K }, () => r.next() - 0.5);
      const want = packLinearWeight(w, N, K);
      const panels = linearPanels(N, K).map((q): [number, number, number] => [q.k0, q.size, q.at]);
      expect(packForKernel(w, N, K, panels, GROUP, want.length), `${N}x${K}`).toEqual(want);
    }
  });
});

describe.each([
  ["gpt2", "gpt2"],
  ["llama", "llama"],
])("%s adapter", (name, family) => {
  const adapter = readAdapter(loraDir(name));

  it("merged at compile time: logits equal PyTorch's W + s·B·A", async () => {
    const p = runPipeline(loadProgram(wf(family), fixtureDir(family), { mapWeights: (w) => mergeAdapters(w, [adapter]) }));
    const { model } = await compileInMemory(p);
    for (const c of cases(name)) expect(relError(logits(model, c.input_ids), expected(name, c)), c.name).toBeLessThan(TOL);
  });

  it("at run time in LoRA slots: logits equal PyTorch's, none gives the base exactly, switching is cheap", async () => {
    const { model, manifest } = await withSlots(slotsProgram(family, fixtureDir(family), 8), 8);
    const base = await compileInMemory(runPipeline(loadProgram(wf(family), fixtureDir(family)), {}, passes.filter((p) => p.name !== "fuse-norm")));
    const slots = new LoraSlots(model);
    slots.load("a", adapter);
    slots.load("half", readAdapter(loraDir(name), 0.5));
    const c = cases(name).at(-1)!;
    const none = logits(model, c.input_ids);
    // zero slots compute the base model; only the epilogues the side path keeps apart (an
    // activation, a gated pair) round differently from the fused kernels
    expect(relError(none, logits(base.model, c.input_ids))).toBeLessThan(1e-6);
    slots.use("a");
    for (const x of cases(name)) expect(relError(logits(model, x.input_ids), expected(name, x)), x.name).toBeLessThan(TOL);
    const withA = logits(model, c.input_ids);
    expect(relError(withA, none)).toBeGreaterThan(0.05);
    slots.use("half");
    const half = logits(model, c.input_ids);
    expect(relError(half, withA)).toBeGreaterThan(0.01);
    slots.use(null);
    expect(logits(model, c.input_ids)).toEqual(none);
    // switching back gives the same outputs bit for bit; a switch writes the slots' pointer cells
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) slots.use(i % 2 ? "a" : "half");
    expect((performance.now() - t0) / 100).toBeLessThan(1);
    expect(logits(model, c.input_ids)).toEqual(withA);
    // a slot parameter is slot rows only (a cell moves the whole of it)
    for (const lp of manifest.lora!.params) expect(lp.parts.reduce((s, q) => s + q.rows, 0), lp.name).toBe(lp.rows);
    if (family === "llama") {
      // fuse-qkv stacked the q/k/v side paths' A matrices (and gate/up's): one pass over x
      const stacked = manifest.lora!.params.filter((p) => p.parts.length > 1).map((p) => p.parts.map((q) => q.module.split(".").at(-1)));
      expect(stacked).toContainEqual(["q_proj", "k_proj", "v_proj"]);
      expect(stacked).toContainEqual(["gate_proj", "up_proj"]);
    }
  });

  it("generation with the run-time adapter equals generation with the merged one", async () => {
    const merged = await compileInMemory(runPipeline(loadProgram(wf(family), fixtureDir(family), { mapWeights: (w) => mergeAdapters(w, [adapter]) })));
    const { model } = await withSlots(slotsProgram(family, fixtureDir(family), 8), 8);
    const slots = new LoraSlots(model);
    slots.load("a", adapter);
    slots.use("a");
    const prompt = cases(name)[1].input_ids;
    const want = (await generate(merged.model, prompt, { maxNewTokens: 12, stopAtEos: false })).ids;
    expect((await generate(model, prompt, { maxNewTokens: 12, stopAtEos: false })).ids).toEqual(want);
  });
});

describe("adapters in memory of their own", () => {
  const llama = () => slotsProgram("llama", fixtureDir("llama"), 8);
  const c = cases("llama").at(-1)!;

  it("load grows memory once per adapter, unload frees it for the next, and unloading the applied one applies none", async () => {
    const { model } = await withSlots(llama(), 8);
    const slots = new LoraSlots(model);
    const none = logits(model, c.input_ids);
    const bytes = () => model.memory.buffer.byteLength;
    const start = bytes();
    slots.load("a", readAdapter(loraDir("llama")));
    const one = bytes() - start;
    expect(one).toBeGreaterThan(0);
    slots.load("half", readAdapter(loraDir("llama"), 0.5));
    expect(bytes() - start).toBe(2 * one);
    slots.use("a");
    const withA = logits(model, c.input_ids);
    expect(relError(withA, none)).toBeGreaterThan(0.05);
    // reloading a name overwrites its matrices in place, applied or not
    slots.load("a", readAdapter(loraDir("llama"), 0.5));
    const half = logits(model, c.input_ids);
    slots.use("half");
    expect(logits(model, c.input_ids)).toEqual(half);
    expect(bytes() - start).toBe(2 * one);
    slots.unload("half");
    expect(slots.active).toBe(null);
    expect(logits(model, c.input_ids)).toEqual(none);
    expect(slots.names).toEqual(["a"]);
    slots.load("b", readAdapter(loraDir("llama")));
    expect(bytes() - start).toBe(2 * one);
    slots.use("b");
    expect(logits(model, c.input_ids)).toEqual(withA);
    slots.use("a");
    expect(logits(model, c.input_ids)).toEqual(half);
  });

  it("past the room Model.load made: one WF508 line, nothing loaded, the applied adapter stays", async () => {
    const { model } = await withSlots(llama(), 8, { adapters: 1 });
    const slots = new LoraSlots(model);
    slots.load("a", readAdapter(loraDir("llama")));
    slots.use("a");
    const withA = logits(model, c.input_ids);
    let err: unknown;
    try {
      slots.load("b", readAdapter(loraDir("llama"), 0.5));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "WF508" });
    expect((err as Error).message).toMatch(/cannot load adapter "b": its matrices need [\d.]+ MiB more WebAssembly memory and 1 adapters fill the room made for them \(unload one, or load the model with a larger `adapters` option\)$/);
    expect(slots.names).toEqual(["a"]);
    expect(logits(model, c.input_ids)).toEqual(withA);
    slots.unload("a");
    slots.load("b", readAdapter(loraDir("llama")));
    slots.use("b");
    expect(logits(model, c.input_ids)).toEqual(withA);
  });

  it("on 3 threads the shared memory grows for an adapter and the outputs equal one thread's", async () => {
    const one = await withSlots(llama(), 8);
    const three = await withSlots(llama(), 8, { threads: 3 });
    try {
      for (const { model } of [one, three]) {
        const slots = new LoraSlots(model);
        slots.load("a", readAdapter(loraDir("llama")));
        slots.use("a");
      }
      const want = logits(one.model, c.input_ids);
      expect(relError(want, expected("llama", c))).toBeLessThan(TOL);
      expect(logits(three.model, c.input_ids)).toEqual(want);
    } finally {
      three.model.dispose();
    }
  });
});

describe("B = 0", () => {
  it("an adapter whose B is zero gives the base model's logits exactly (merged and at run time)", async () => {
    const zero = readAdapter(loraDir("llama-zero"));
    const c = cases("llama-zero").at(-1)!;
    const base = await compileInMemory(runPipeline(loadProgram(wf("llama"), fixtureDir("llama"))));
    const merged = await compileInMemory(runPipeline(loadProgram(wf("llama"), fixtureDir("llama"), { mapWeights: (w) => mergeAdapters(w, [zero]) })));
    expect(logits(merged.model, c.input_ids)).toEqual(logits(base.model, c.input_ids));
    expect(relError(logits(base.model, c.input_ids), expected("llama-zero", c))).toBeLessThan(TOL);
    const { model } = await withSlots(slotsProgram("llama", fixtureDir("llama"), 4, ["q_proj", "k_proj", "v_proj", "o_proj"]), 4);
    const before = logits(model, c.input_ids);
    const slots = new LoraSlots(model);
    slots.load("zero", zero);
    slots.use("zero");
    expect(logits(model, c.input_ids)).toEqual(before);
  });
});

describe("QLoRA: int4 base + run-time adapter", () => {
  it("equals the interpreter on the dequantized base with the adapter in its slots", async () => {
    const tiny = join(root, "examples", "tiny-gpt2");
    const p = slotsProgram("gpt2", tiny, 16, undefined, "int4");
    // the base matrices are q4_0, the slot matrices f32
    const params = p.graphs[0].nodes.filter((n) => n.op === "param").map((n) => p.params.get(n.attrs.name as string)!);
    expect(params.filter((w) => w.name.includes("lora:")).every((w) => !w.quant)).toBe(true);
    expect(params.filter((w) => w.quant?.scheme === "q4_0").length).toBe(17); // 16 block matrices and the tied head's copy
    // a random rank-16 adapter on every linear but the head
    const r = rng(11);
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    const rand = (n: number, std: number) => Float32Array.from({ length: n }, () => (r.next() - 0.5) * 2 * std);
    for (let i = 0; i < 4; i++)
      for (const [m, inp, out] of [["attn.c_attn", 128, 384], ["attn.c_proj", 128, 128], ["mlp.c_fc", 128, 512], ["mlp.c_proj", 512, 128]] as const) {
        tensors[`base_model.model.transformer.h.${i}.${m}.lora_A.weight`] = { shape: [16, inp], data: rand(16 * inp, 0.2) };
        tensors[`base_model.model.transformer.h.${i}.${m}.lora_B.weight`] = { shape: [out, 16], data: rand(out * 16, 0.2) };
      }
    const config = JSON.stringify({ peft_type: "LORA", r: 16, lora_alpha: 32, fan_in_fan_out: true, target_modules: ["c_attn", "c_proj", "c_fc"] });
    const adapter = parseAdapter(config, safetensors(tensors), { source: "random" });
    const { model, manifest } = await withSlots(p, 16);
    const slots = new LoraSlots(model);
    slots.load("a", adapter);
    slots.use("a");
    // the interpreter's program: the slot parameters hold A and s·B row-major
    const filled = new Map(p.params);
    for (const lp of manifest.lora!.params) {
      const data = new Float32Array(lp.rows * lp.cols);
      for (const part of lp.parts) {
        const m = adapter.modules.find((x) => x.module === part.module)!;
        if (part.role === "A") data.set(m.a, part.row * lp.cols);
        else for (let o = 0; o < m.out; o++) for (let j = 0; j < m.r; j++) data[o * lp.cols + j] = Math.fround(m.b[o * m.r + j] * m.scale);
      }
      filled.set(lp.name, { ...p.params.get(lp.name)!, data });
    }
    const ids = [5, 71, 300, 12, 9, 640, 77, 3];
    const got = logits(model, ids);
    const want = interpret({ ...p, params: filled }, "forward", { ids: Int32Array.from(ids) }, newSession()).logits as Float32Array;
    expect(relError(got, want)).toBeLessThan(1e-4);
    slots.use(null);
    expect(relError(logits(model, ids), got)).toBeGreaterThan(0.01);
  });
});

describe("bad adapters: one WF410 line naming the tensor, nothing applied", () => {
  const fail = (f: () => unknown, pattern: RegExp) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err, String(pattern)).toMatchObject({ code: "WF410" });
    expect((err as Error).message).toMatch(pattern);
    expect((err as Error).message).not.toContain("\n");
  };

  it("config: unknown peft_type, modules_to_save, DoRA", () => {
    fail(() => readAdapter(editedAdapter("gpt2", { config: (c) => (c.peft_type = "IA3") })), /'peft_type' should be "LORA".*found "IA3"/);
    fail(() => readAdapter(editedAdapter("gpt2", { config: (c) => (c.modules_to_save = ["lm_head"]) })), /'modules_to_save' should be null/);
    fail(() => readAdapter(editedAdapter("gpt2", { config: (c) => (c.use_dora = true) })), /'use_dora'/);
  });

  it("tensors: missing, wrong rank, not a LoRA matrix", () => {
    const A0 = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", B1 = "base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight";
    fail(() => readAdapter(editedAdapter("gpt2", { tensors: (t) => delete t[B1] })), new RegExp(`tensor '${B1.replace(/\./g, "\\.")}' is missing`));
    fail(() => readAdapter(editedAdapter("gpt2", { tensors: (t) => (t[A0] = { shape: [3, 60], data: new Float32Array(180) }) })), /'base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight' has shape \[3, 60\], expected \[4, in\]/);
    fail(() => readAdapter(editedAdapter("gpt2", { tensors: (t) => (t["base_model.model.lm_head.weight"] = { shape: [1], data: new Float32Array(1) }) })), /'base_model\.model\.lm_head\.weight' is not a LoRA matrix/);
  });

  it("merge: a module the checkpoint lacks, or of other in/out sizes", () => {
    const renamed = editedAdapter("llama", {
      tensors: (t) => {
        for (const k of Object.keys(t).filter((k) => k.includes("layers.1.self_attn.q_proj"))) {
          t[k.replace("self_attn.q_proj", "self_attn.qkv_proj")] = t[k];
          delete t[k];
        }
      },
    });
    const load = (dir: string) => loadProgram(wf("llama"), fixtureDir("llama"), { mapWeights: (w) => mergeAdapters(w, [readAdapter(dir)]) });
    fail(() => load(renamed), /tensor 'base_model\.model\.model\.layers\.1\.self_attn\.qkv_proj\.lora_A\.weight' targets .* the checkpoint has no 'model\.layers\.1\.self_attn\.qkv_proj\.weight'/);
    const swapped = editedAdapter("llama", {
      tensors: (t) => {
        const [a, b] = ["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight", "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"];
        t[a] = { shape: [8, 90], data: new Float32Array(720) };
        t[b] = { shape: [20, 8], data: t[b].data };
      },
    });
    fail(() => load(swapped), /'base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight' \[8, 90\].*but 'model\.layers\.0\.self_attn\.k_proj\.weight' is \[20, 60\]/);
  });

  it("run time: no slot for a module, a rank above the slots', and nothing written on failure", async () => {
    const { model } = await withSlots(slotsProgram("llama", fixtureDir("llama"), 4, ["q_proj", "k_proj", "v_proj", "o_proj"]), 4);
    const slots = new LoraSlots(model);
    const c = cases("llama").at(-1)!;
    const before = logits(model, c.input_ids);
    const full = readAdapter(loraDir("llama"));
    fail(() => slots.load("x", full), /tensor 'base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight' targets .* which has no LoRA slot in this artifact/);
    const attention: LoraAdapter = { ...full, modules: full.modules.filter((m) => m.module.includes("self_attn")) };
    fail(() => slots.load("y", attention), /'base_model\.model\.model\.layers\.0\.self_attn\.[kqvo]_proj\.lora_A\.weight' has rank 8, above the artifact's slot rank 4/);
    // the same modules at rank 4 but of another width
    const narrow: LoraAdapter = { ...full, modules: attention.modules.map((m) => ({ ...m, r: 4, in: 30, a: new Float32Array(120), b: new Float32Array(m.out * 4) })) };
    fail(() => slots.load("z", narrow), /self_attn\.[kqvo]_proj\.lora_A\.weight' reads 30 inputs, the base linear 'model\.layers\.0\.self_attn\.[kqvo]_proj' has 60/);
    expect(slots.names).toEqual([]);
    expect(logits(model, c.input_ids)).toEqual(before);
  });
});

describe("command line", () => {
  const io = () => {
    const out = { stdout: "", stderr: "" };
    return { out, io: { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) } } };
  };
  const llama = fixtureDir("llama");
  const c = cases("llama").at(-1)!;

  it("compile --lora merges; compile --lora-slots then run --adapter applies at run time; both match PyTorch", async () => {
    const merged = join(tmp, "merged"), slotted = join(tmp, "slotted");
    let r = io();
    expect(await main(["compile", wf("llama"), "--weights", llama, "--lora", loraDir("llama"), "--out", merged], r.io), r.out.stderr).toBe(0);
    r = io();
    expect(await main(["compile", wf("llama"), "--weights", llama, "--lora-slots", "8", "--out", slotted], r.io), r.out.stderr).toBe(0);
    const ids = c.input_ids.join(",");
    for (const [dir, extra] of [[merged, []], [slotted, ["--adapter", loraDir("llama"), "--threads", "2"]]] as const) {
      const out = join(tmp, `${dir.endsWith("merged") ? "m" : "s"}.npy`);
      r = io();
      expect(await main(["run", dir, "--input-ids", ids, "--out", out, ...extra], r.io), r.out.stderr).toBe(0);
      expect(relError(decodeNpy(readFileSync(out)).data as Float32Array, expected("llama", c))).toBeLessThan(TOL);
    }
    // --adapter=DIR=SCALE scales s; generate takes --adapter too
    r = io();
    expect(await main(["generate", slotted, "--input-ids", ids, "--max-new-tokens", "4", "--adapter", `${loraDir("llama")}=0`, "--json"], r.io), r.out.stderr).toBe(0);
    const r2 = io();
    expect(await main(["generate", slotted, "--input-ids", ids, "--max-new-tokens", "4", "--json"], r2.io)).toBe(0);
    expect(JSON.parse(r.out.stdout).ids).toEqual(JSON.parse(r2.out.stdout).ids);
    // loadArtifact's `adapters` sets the room for them
    const model = await loadArtifact(slotted, { adapters: 1 });
    try {
      const slots = new LoraSlots(model);
      slots.load("a", readAdapter(loraDir("llama")));
      expect(() => slots.load("b", readAdapter(loraDir("llama")))).toThrow(/cannot load adapter "b".*1 adapters fill the room/);
    } finally {
      model.dispose();
    }
  });

  it("a bad adapter: exit 1, one error[WF410] line, nothing written", async () => {
    const bad = editedAdapter("llama", { config: (cfg) => (cfg.peft_type = "PREFIX_TUNING") });
    const out = join(tmp, "never");
    let r = io();
    expect(await main(["compile", wf("llama"), "--weights", llama, "--lora", bad, "--out", out], r.io)).toBe(1);
    expect(r.out.stderr).toMatch(/^error\[WF410\]: .*peft_type.*PREFIX_TUNING.*\n$/);
    expect(existsSync(out)).toBe(false);
    const slotted = join(tmp, "slotted4");
    r = io();
    expect(await main(["compile", wf("llama"), "--weights", llama, "--lora-slots", "4:q_proj,v_proj", "--out", slotted], r.io), r.out.stderr).toBe(0);
    const npy = join(tmp, "never.npy");
    r = io();
    expect(await main(["run", slotted, "--input-ids", "1,2,3", "--out", npy, "--adapter", loraDir("llama")], r.io)).toBe(1);
    expect(r.out.stderr).toMatch(/^error\[WF410\]: .*lora_A\.weight' targets .* which has no LoRA slot in this artifact.*\n$/);
    expect(existsSync(npy)).toBe(false);
    r = io();
    expect(await main(["compile", wf("llama"), "--weights", llama, "--lora-slots", "4:x", "--out", out], r.io)).toBe(1);
    expect(r.out.stderr).toMatch(/^error\[WF601\]: --lora-slots matched no linear/);
  });
});
