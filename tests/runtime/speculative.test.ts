// Speculative decoding (runtime/speculative.ts): greedy output equal to the target's own greedy
// ids on every decoder family, fp32 and int4 targets, with a draft model or prompt lookup; the
// sampled output's distribution equal to the target's (chi-square on fixed seeds: deterministic);
// the KV caches left as plain decoding leaves them; bad options refused.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadProgram } from "../../compiler/load.js";
import { passes, runPipeline, withQuantization } from "../../compiler/passes/manager.js";
import { ArtifactError } from "../../runtime/errors.js";
import { type GenerateOptions, generate, stream } from "../../runtime/generate.js";
import type { Model } from "../../runtime/model.js";
import { Sampler } from "../../runtime/sampling.js";
import { lookupDraft } from "../../runtime/speculative.js";
import type { Program } from "../../ir/types.js";
import { compileInMemory, families, fixtureDir, fixtureProgram, root } from "../helpers.js";
import { lazyParam } from "../../ir/params.js";

const DECODERS = ["gpt2", "llama", "qwen2", "qwen3", "llama3", "mistral", "gemma", "gemma2", "phi3"];

const int4Program = (name: string) => runPipeline(loadProgram(join(root, "examples", `${families[name]}.wf`), fixtureDir(name)), {}, withQuantization(passes, "int4"));
const quantizedMatrices = (p: Program) => [...p.params.values()].filter((x) => x.quant).length;
const load = async (p: Program) => (await compileInMemory(p)).model;

/** A prompt of the fixture's first case, and the most new tokens its context leaves. */
function promptFor(m: Model, name: string, length = 6): { prompt: number[]; room: number } {
  const limit = m.entry("forward").inputs.find((i) => i.kind === "tokens")!.limit!;
  const prompt = Array.from({ length }, (_, i) => (i * 37 + name.length * 11 + 3) % limit);
  return { prompt, room: m.manifest.context - prompt.length };
}

async function collect(m: Model, prompt: number[], opts: GenerateOptions) {
  const chunks: number[] = [];
  const it = stream(m, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return { chunks, result: r.value };
    chunks.push(r.value.id);
  }
}

describe("greedy: exactly the target's greedy ids", () => {
  const greedySets: [string, GenerateOptions][] = [
    ["plain greedy", {}],
    ["greedy with repetition, presence and frequency penalties", { repetitionPenalty: 1.3, presencePenalty: 0.2, frequencyPenalty: 0.1 }],
  ];
  for (const name of DECODERS) {
    it(`${name}: fp32 and int4 targets, a draft model and prompt lookup`, async () => {
      const fp = fixtureProgram(name);
      const q4 = int4Program(name);
      // an int4 copy where some matrix has an input width that is a multiple of 32; else another compile of the same program
      const quantizable = quantizedMatrices(q4) > 0;
      const targets: [string, Program, Program][] = quantizable ? [["fp32", fp, q4], ["int4", q4, fp]] : [["fp32", fp, fp]];
      let rejected = 0;
      for (const [kind, tp, dp] of targets) {
        const target = await load(tp), draft = await load(dp), reference = await load(tp);
        const { prompt, room } = promptFor(target, name);
        for (const [what, extra] of greedySets) {
          const base = { maxNewTokens: room, stopAtEos: false, ...extra };
          reference.reset();
          const want = (await generate(reference, prompt, base)).ids;
          expect(want.length).toBe(room);
          for (const spec of [{ draft, draftTokens: 5 }, { draft, draftTokens: 1 }, { lookup: 3 }, { lookup: 1, draftTokens: 12 }] as GenerateOptions[]) {
            target.reset();
            const { chunks, result } = await collect(target, prompt, { ...base, ...spec });
            const label = `${name} ${kind} target, ${what}, ${spec.draft ? `draft of ${spec.draftTokens}` : `lookup ${spec.lookup}`}`;
            expect(result.ids, label).toEqual(want);
            expect(chunks, label).toEqual(want);
            expect(result.draftTokens, label).toBeGreaterThan(0);
            expect(result.acceptedTokens!, label).toBeLessThanOrEqual(result.draftTokens!);
            rejected += result.draftTokens! - result.acceptedTokens!;
            // the caches hold the prompt and every id but the last, as plain decoding leaves them
            expect(target.tokens, label).toEqual([...prompt, ...want.slice(0, -1)]);
            if (spec.draft) expect(draft.tokens.length, label).toBeLessThanOrEqual(target.tokens.length);
            if (spec.draft) expect(draft.tokens, label).toEqual(target.tokens.slice(0, draft.tokens.length));
          }
        }
      }
      // prompt lookup on a random model's text rejects some drafts: the rollback path ran
      expect(rejected).toBeGreaterThan(0);
    });
  }

  it("a draft identical to the target has every draft accepted, at the longest draft length", async () => {
    const target = await load(fixtureProgram("llama")), draft = await load(fixtureProgram("llama"));
    const { prompt, room } = promptFor(target, "llama");
    const r = await generate(target, prompt, { maxNewTokens: room, stopAtEos: false, draft, draftTokens: 4 });
    expect(r.acceptedTokens).toBe(r.draftTokens);
    // rounds of 4 drafts and one token of the target's, the last ones shortened by the room left
    expect(r.draftTokens).toBeGreaterThanOrEqual(Math.floor((room - 5) / 5) * 4);
  });

  it("a poor draft's length shrinks: fewer drafts than a fixed length would verify", async () => {
    // qwen2 and gpt2 fixtures share a vocabulary of 101 and nothing else
    const target = await load(fixtureProgram("qwen2")), draft = await load(fixtureProgram("gpt2"));
    const prompt = [3, 9, 27, 81, 42];
    const r = await generate(target, prompt, { maxNewTokens: 30, stopAtEos: false, draft, draftTokens: 8 });
    expect(r.acceptedTokens! / r.draftTokens!).toBeLessThan(0.3);
    const rounds = 30 - r.acceptedTokens!;
    expect(r.draftTokens!).toBeLessThan(rounds * 3);
  });
});

describe("streaming and the caches", () => {
  it("a stop inside a round of accepted ids leaves the caches as plain decoding does; the next call equals a fresh model's", async () => {
    const p = fixtureProgram("gemma2");
    const target = await load(p), draft = await load(p), fresh = await load(p);
    const prompt = [5, 17, 29, 41, 53];
    const free = await generate(fresh, prompt, { maxNewTokens: 20, stopAtEos: false });
    // an end-of-sequence id that the 7th token is: generation stops there, mid-round
    const eos = free.ids[6];
    const first = free.ids.indexOf(eos);
    target.reset();
    const r = await generate(target, prompt, { maxNewTokens: 20, eos: [eos], draft, draftTokens: 5 });
    expect(r.stopReason).toBe("eos");
    expect(r.ids).toEqual(free.ids.slice(0, first + 1));
    expect(target.tokens).toEqual([...prompt, ...r.ids.slice(0, -1)]);
    expect(target.past).toBe(prompt.length + r.ids.length - 1);
    // continuing the conversation reuses the cache and gives a fresh model's ids
    const next = [...prompt, ...r.ids, 7, 8];
    const again = await generate(target, next, { maxNewTokens: 10, stopAtEos: false, draft, draftTokens: 3 });
    fresh.reset();
    expect(again.ids).toEqual((await generate(fresh, next, { maxNewTokens: 10, stopAtEos: false })).ids);
    expect(again.cachedTokens).toBe(prompt.length + r.ids.length - 1);
  });

  it("maxNewTokens is exact, abort stops within a round, and the context ends a generation", async () => {
    const p = fixtureProgram("phi3");
    const target = await load(p), fresh = await load(p);
    const prompt = [1, 2, 3, 1, 2, 3, 1, 2];
    const want = (await generate(fresh, prompt, { maxNewTokens: 9, stopAtEos: false })).ids;
    for (const n of [1, 2, 9]) {
      target.reset();
      expect((await generate(target, prompt, { maxNewTokens: n, stopAtEos: false, lookup: 2 })).ids).toEqual(want.slice(0, n));
    }
    target.reset();
    const abort = new AbortController();
    const it = stream(target, prompt, { maxNewTokens: 30, stopAtEos: false, lookup: 2, signal: abort.signal });
    const got: number[] = [];
    for (;;) {
      const r = await it.next();
      if (r.done) {
        expect(r.value.stopReason).toBe("abort");
        break;
      }
      got.push(r.value.id);
      if (got.length === 4) abort.abort();
    }
    expect(got).toEqual(want.slice(0, 4));
    expect(target.tokens).toEqual([...prompt, ...got.slice(0, 3)]);
    target.reset();
    const all = await generate(target, prompt, { maxNewTokens: 1000, stopAtEos: false, lookup: 2, draftTokens: 32 });
    expect(all.stopReason).toBe("context");
    expect(prompt.length + all.ids.length).toBe(target.manifest.context + 1);
    fresh.reset();
    expect(all.ids).toEqual((await generate(fresh, prompt, { maxNewTokens: 1000, stopAtEos: false })).ids);
  });
});

describe("sampling: the target's distribution", () => {
  // the target's exact probability of each sequence of three tokens, through the same processors
  function exactJoint(m: Model, prompt: number[], opts: GenerateOptions): Map<string, number> {
    const vocab = m.entry("forward").outputs[0].width;
    const out = new Map<string, number>();
    const walk = (seq: number[], prob: number) => {
      if (seq.length === 3) return void out.set(seq.join(","), prob);
      m.reset();
      const l = m.run("forward", { ids: [...prompt, ...seq] }).logits;
      const s = new Sampler(opts, vocab);
      s.reset(prompt);
      seq.forEach((x) => s.accept(x));
      const d = s.distribution(l.subarray(l.length - vocab));
      d.ids.forEach((id, i) => walk([...seq, id], prob * d.probs[i]));
    };
    walk([], 1);
    m.reset();
    return out;
  }

  /** The chi-square statistic's value that a true hypothesis exceeds with probability 1e-4 (Wilson–Hilferty). */
  const critical = (df: number) => df * (1 - 2 / (9 * df) + 3.719 * Math.sqrt(2 / (9 * df))) ** 3;
  /** Chi-square of counts against probabilities, cells under 5 expected pooled. */
  function chiSquare(counts: Map<string, number>, probs: Map<string, number>, n: number): { stat: number; df: number } {
    let stat = 0, df = -1, restP = 0, restC = 0;
    for (const [k, p] of probs) {
      const c = counts.get(k) ?? 0;
      if (p * n >= 5) (stat += (c - n * p) ** 2 / (n * p)), df++;
      else (restP += p), (restC += c);
    }
    for (const [k, c] of counts) if (!probs.has(k)) restC += c;
    if (restP * n >= 5) (stat += (restC - n * restP) ** 2 / (n * restP)), df++;
    else stat += restC > 10 ? Infinity : 0;
    return { stat, df };
  }

  const sampling: GenerateOptions = { temperature: 1, topK: 3, repetitionPenalty: 1.3, stopAtEos: false, maxNewTokens: 3 };
  /** The qwen2 fixture with its final norm scaled: logits × 0.3, the target's top-3 at a flatter temperature. */
  function flatter(): Program {
    const p = loadProgram(join(root, "examples", "qwen2.wf"), fixtureDir("qwen2"));
    const norm = [...p.params.values()].find((x) => /(^|\.)norm\.weight$/.test(x.name) && !/layers\./.test(x.name))!;
    // parameters compute their values when read (ir/params.ts): a scaled copy takes the norm's place
    p.params.set(norm.name, lazyParam(norm.name, norm.shape, () => norm.data.map((v) => v * 0.3)));
    return runPipeline(p);
  }
  const sources: [string, () => Promise<GenerateOptions>][] = [
    ["a draft model with another distribution", async () => ({ draft: await load(flatter()), draftTokens: 3 })],
    ["prompt lookup", async () => ({ lookup: 2, draftTokens: 3 })],
  ];
  for (const [what, source] of sources) {
    it(`${what}: 4,000 seeded generations of three tokens follow the target's joint distribution (chi-square)`, async () => {
      const target = await load(fixtureProgram("qwen2"));
      // a prompt ending in the target's own greedy text, so that lookup finds likely continuations
      const start = [11, 12, 13, 14];
      const prompt = [...start, ...(await generate(target, start, { maxNewTokens: 12, stopAtEos: false })).ids];
      const spec = await source();
      const want = exactJoint(target, prompt, sampling);
      const n = 4000;
      const counts = new Map<string, number>();
      let drafted = 0, accepted = 0;
      for (let seed = 1; seed <= n; seed++) {
        const r = await generate(target, prompt, { ...sampling, ...spec, seed });
        const key = r.ids.join(",");
        counts.set(key, (counts.get(key) ?? 0) + 1);
        drafted += r.draftTokens!;
        accepted += r.acceptedTokens!;
      }
      // both branches ran many times: acceptances, and rejections with a draw from the residual
      expect(accepted).toBeGreaterThan(1000);
      expect(drafted - accepted).toBeGreaterThan(300);
      const { stat, df } = chiSquare(counts, want, n);
      expect(df).toBeGreaterThan(5);
      expect(stat).toBeLessThan(critical(df));
      // the test sees a wrong distribution: the draft's own (what accepting every draft would give)
      if (spec.draft) {
        const q = exactJoint(spec.draft, prompt, sampling);
        const wrong = chiSquare(counts, q, n);
        expect(wrong.stat).toBeGreaterThan(critical(wrong.df) * 3);
      }
    });
  }
});

describe("options", () => {
  it("lookupDraft: the ids after the most recent earlier match of the longest n-gram", () => {
    expect(lookupDraft([1, 2, 3, 4, 1, 2, 5, 6, 1, 2], 2, 3)).toEqual([5, 6, 1]);
    expect(lookupDraft([1, 2, 3, 4, 1, 2, 5, 6, 1, 2], 2, 10)).toEqual([5, 6, 1, 2]);
    // no bigram recurs: the last unigram does
    expect(lookupDraft([7, 1, 9, 8, 3, 1], 2, 2)).toEqual([9, 8]);
    expect(lookupDraft([1, 2, 3], 3, 4)).toEqual([]);
    expect(lookupDraft([4], 2, 4)).toEqual([]);
  });

  it("are refused with WF510/WF511 before anything runs", async () => {
    const p = fixtureProgram("qwen2");
    const target = await load(p), same = await load(p);
    const other = await load(fixtureProgram("mistral"));
    const t5 = await load(fixtureProgram("t5"));
    const short = await load(fixtureProgram("qwen2", { context: 8 }));
    const long = Array.from({ length: 12 }, (_, i) => i + 1);
    const cases: [GenerateOptions, string, RegExp, Model?, number[]?][] = [
      [{ draft: same, draftTokens: 0 }, "WF510", /^generate: draftTokens should be an integer from 1 to 32, got 0$/],
      [{ lookup: 2, draftTokens: 33 }, "WF510", /^generate: draftTokens should be an integer from 1 to 32, got 33$/],
      [{ draftTokens: 4 }, "WF510", /^generate: draftTokens needs a draft model or lookup$/],
      [{ lookup: 0 }, "WF510", /^generate: lookup should be an integer from 1 to 16, got 0$/],
      [{ lookup: 2, draft: same }, "WF510", /^generate: draft and lookup cannot be used together/],
      [{ draft: target }, "WF510", /^generate: draft should be another Model than the target/],
      [{ draft: other }, "WF510", /^generate: the draft model's vocabulary has 83 tokens, the target's 101/],
      [{ lookup: 2 }, "WF511", /^generate: speculative decoding needs a causal LM, and the target is a seq2seq model/, t5],
      [{ draft: short }, "WF510", /^generate: the draft model's context of 8 is shorter than the prompt \(12 tokens\)$/, target, long],
    ];
    for (const [opts, code, message, m, prompt] of cases) {
      const before = (m ?? target).past;
      try {
        await generate(m ?? target, prompt ?? [1, 2, 3], opts);
        throw new Error(`accepted ${JSON.stringify(Object.keys(opts))}`);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(ArtifactError);
        expect((e as ArtifactError).code).toBe(code);
        expect((e as Error).message).toMatch(message);
      }
      expect((m ?? target).past).toBe(before);
    }
  });
});
