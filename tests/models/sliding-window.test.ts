// A sliding window's KV cache is a ring buffer of 2·window + REWIND_ROWS rows: memory O(window)
// however long the context, decoding past the window exact against the interpreter's
// full-context window mask, long prompts split into calls the ring takes, rewinds within
// REWIND_ROWS, saved states.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REWIND_ROWS } from "../../compiler/codegen/lower.js";
import { openWeights, programFromSource, readHfConfig } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { interpret, newSession } from "../../ir/interp.js";
import type { Program } from "../../ir/types.js";
import { generate } from "../../runtime/generate.js";
import type { Model } from "../../runtime/model.js";
import { compileInMemory, fixtureDir, relError, rng, root } from "../helpers.js";

const CONTEXT = 200, WINDOW = 8;

describe("mistral's window of 8 in a context of 200", () => {
  let program: Program;
  let model: Model;
  const ids = (() => {
    const r = rng(3);
    return Array.from({ length: 150 }, () => r.int(0, 82));
  })();
  let full: Float32Array;
  beforeAll(async () => {
    const wf = join(root, "examples", "mistral.wf");
    const config = { ...readHfConfig(fixtureDir("mistral")), max_position_embeddings: CONTEXT };
    program = runPipeline(programFromSource(wf, readFileSync(wf, "utf8"), config, openWeights(fixtureDir("mistral")), { context: CONTEXT }));
    model = (await compileInMemory(program)).model;
    full = interpret(program, "forward", { ids: Int32Array.from(ids) }, newSession()).logits as Float32Array;
  });

  it("each cache holds 2·window + REWIND_ROWS rows, not the context", () => {
    const kv = model.manifest.memory.kv!;
    expect(kv.length).toBe(2);
    for (const c of kv) expect([c.rows, c.window, c.keep]).toEqual([2 * WINDOW + REWIND_ROWS, WINDOW, WINDOW - 1 + REWIND_ROWS]);
    expect(model.maxCallRows).toBe(WINDOW + 1);
  });

  it("a 150-token prompt (split into calls of 9) equals the interpreter's full-context window mask", () => {
    model.reset();
    expect(relError(model.run("forward", { ids }).logits, full)).toBeLessThan(1e-5);
    expect(model.past).toBe(150);
  });

  it("decoding one token at a time far past the window equals full recomputation", () => {
    model.reset();
    const rows = [model.run("forward", { ids: ids.slice(0, 5) }).logits];
    for (let i = 5; i < ids.length; i++) rows.push(model.run("forward", { ids: [ids[i]] }).logits);
    const inc = new Float32Array(full.length);
    rows.reduce((at, r) => (inc.set(r, at), at + r.length), 0);
    expect(relError(inc, full)).toBeLessThan(1e-5);
  });

  it("rewinds within REWIND_ROWS of the end, not past the dropped keys; generate then starts over", async () => {
    model.reset();
    model.run("forward", { ids: ids.slice(0, 120) });
    expect(model.canRewind(120 - REWIND_ROWS)).toBe(true);
    expect(model.canRewind(40)).toBe(false);
    expect(() => model.rewind(40)).toThrow(/no longer holds the keys/);
    model.rewind(120 - REWIND_ROWS);
    const vocab = full.length / ids.length;
    const next = model.run("forward", { ids: ids.slice(120 - REWIND_ROWS, 121 - REWIND_ROWS) }).logits;
    expect(relError(next, full.subarray((120 - REWIND_ROWS) * vocab, (121 - REWIND_ROWS) * vocab))).toBeLessThan(1e-5);
    // a prompt sharing only the first 40 ids with the cache: recomputed from the start
    model.reset();
    model.run("forward", { ids: ids.slice(0, 120) });
    const prompt = [...ids.slice(0, 40), 7, 7, 7];
    const reused = await generate(model, prompt, { maxNewTokens: 5, stopAtEos: false });
    model.reset();
    const fresh = await generate(model, prompt, { maxNewTokens: 5, stopAtEos: false });
    expect(reused.ids).toEqual(fresh.ids);
    expect(reused.cachedTokens).toBe(0);
  });

  it("saveState after the ring has moved, restored in another model, continues exactly", async () => {
    model.reset();
    model.run("forward", { ids: ids.slice(0, 100) });
    const state = model.saveState();
    // the rows kept, not the context's: O(window) bytes
    expect(state.byteLength).toBeLessThan(2 * (2 * WINDOW + REWIND_ROWS) * 2 * 20 * 4 + 4096);
    const other = (await compileInMemory(program)).model;
    other.restoreState(state);
    const vocab = full.length / ids.length;
    const a = other.run("forward", { ids: ids.slice(100, 110) }).logits;
    expect(relError(a, full.subarray(100 * vocab, 110 * vocab))).toBeLessThan(1e-5);
  });
});

describe("gemma2: sliding layers on a ring, global layers on the whole context", () => {
  it("its caches: 2·6 + REWIND_ROWS rows for layers 0 and 2, the context of 48 for layer 1", async () => {
    const { model } = await compileInMemory(runPipeline(programFromSource(join(root, "examples", "gemma2.wf"), readFileSync(join(root, "examples", "gemma2.wf"), "utf8"), readHfConfig(fixtureDir("gemma2")), openWeights(fixtureDir("gemma2")), {})));
    expect(model.manifest.memory.kv!.map((c) => c.rows ?? model.manifest.context)).toEqual([12 + REWIND_ROWS, 48, 12 + REWIND_ROWS]);
  });
});
