// The same model under the names other checkpoints use: GPT-2 without the `transformer.`
// prefix, BERT under `bert.`, LLaMA with a tied head.

import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadProgram } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { openSafetensors } from "../../compiler/weights/safetensors.js";
import { compileInMemory, fixtureDir, readExpected, readFixture, relError, root } from "../helpers.js";

function writeSafetensors(path: string, tensors: Record<string, { shape: readonly number[]; data: Float32Array }>) {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let at = 0;
  const names = Object.keys(tensors).sort();
  for (const n of names) {
    header[n] = { dtype: "F32", shape: tensors[n].shape, data_offsets: [at, at + tensors[n].data.byteLength] };
    at += tensors[n].data.byteLength;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, ...names.map((n) => Buffer.from(tensors[n].data.buffer, tensors[n].data.byteOffset, tensors[n].data.byteLength))]));
}

/** A copy of a fixture with tensor names mapped (undefined drops the tensor). */
function variant(name: string, rename: (t: string) => string | undefined, config?: (c: Record<string, unknown>) => void): string {
  const src = openSafetensors(fixtureDir(name));
  const out: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const t of src.names()) {
    const to = rename(t);
    if (to !== undefined) out[to] = { shape: src.info(t)!.shape, data: src.read(t) };
  }
  const dir = mkdtempSync(join(tmpdir(), `wf-${name}-`));
  writeSafetensors(join(dir, "model.safetensors"), out);
  if (config) {
    const c = JSON.parse(readFileSync(join(fixtureDir(name), "config.json"), "utf8"));
    config(c);
    writeFileSync(join(dir, "config.json"), JSON.stringify(c));
  } else copyFileSync(join(fixtureDir(name), "config.json"), join(dir, "config.json"));
  return dir;
}

async function outputs(model: string, dir: string, ids: number[]) {
  const { model: m } = await compileInMemory(runPipeline(loadProgram(join(root, "examples", `${model}.wf`), dir)));
  const o = m.run("forward", { ids });
  return o.logits ?? o.hidden;
}

describe("checkpoint naming variants", () => {
  it("GPT-2 without the transformer. prefix", async () => {
    const c = readFixture("gpt2").cases[1];
    const dir = variant("gpt2", (t) => t.replace(/^transformer\./, ""));
    expect(relError(await outputs("gpt2", dir, c.input_ids), readExpected("gpt2", c))).toBeLessThan(1e-4);
  });
  it("BERT under bert. (as in BertForMaskedLM)", async () => {
    const c = readFixture("bert").cases[1];
    const dir = variant("bert", (t) => `bert.${t}`);
    const { model } = await compileInMemory(runPipeline(loadProgram(join(root, "examples", "bert.wf"), dir)));
    expect(relError(model.run("forward", { ids: c.input_ids, segments: c.token_type_ids }).hidden, readExpected("bert", c))).toBeLessThan(1e-4);
  });
  it("LLaMA with a tied head uses the embedding", async () => {
    const ids = [5, 9, 2];
    const tied = variant("llama", (t) => (t === "lm_head.weight" ? undefined : t), (c) => (c.tie_word_embeddings = true));
    // the reference for a tied head: a checkpoint whose lm_head is the embedding, stored
    const src = openSafetensors(fixtureDir("llama"));
    const explicit = mkdtempSync(join(tmpdir(), "wf-llama-explicit-"));
    const all: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const t of src.names()) all[t] = { shape: src.info(t)!.shape, data: src.read(t) };
    all["lm_head.weight"] = all["model.embed_tokens.weight"];
    writeSafetensors(join(explicit, "model.safetensors"), all);
    copyFileSync(join(fixtureDir("llama"), "config.json"), join(explicit, "config.json"));
    const want = await outputs("llama", explicit, ids);
    expect(relError(await outputs("llama", tied, ids), want)).toBeLessThan(1e-6);
  });
});
