// Logits processing and sampling (runtime/sampling.ts) against a plain-torch reimplementation of
// Hugging Face's processors (tests/fixtures/sampling/make_sampling.py), and its draws against the
// distribution they come from, by chi-square tests on fixed seeds (deterministic: they cannot flake).

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ArtifactError } from "../../runtime/errors.js";
import { Sampler, type SamplingOptions, argmax, random, topIds } from "../../runtime/sampling.js";

interface Case { options: SamplingOptions; logits: number[]; prompt: number[]; generated: number[]; ids: number[]; probs: number[] }
const { cases } = JSON.parse(readFileSync(new URL("../fixtures/sampling/cases.json", import.meta.url), "utf8")) as { cases: Case[] };

function samplerFor(c: Case, extra: SamplingOptions = {}) {
  const s = new Sampler({ ...c.options, ...extra }, c.logits.length);
  s.reset(c.prompt);
  c.generated.forEach((g) => s.accept(g));
  return s;
}

/** The chi-square statistic's value that a true hypothesis exceeds with probability 1e-4 (Wilson–Hilferty). */
function critical(df: number): number {
  const z = 3.719;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

function chiSquare(counts: number[], probs: number[], n: number): number {
  return counts.reduce((acc, c, i) => acc + (c - n * probs[i]) ** 2 / (n * probs[i]), 0);
}

describe("processed distribution", () => {
  it.each(cases.map((c, i) => [i, JSON.stringify(c.options), c] as const))("case %i %s equals the HF reference", (_, __, c) => {
    const { ids, probs } = samplerFor(c).distribution(Float32Array.from(c.logits));
    // float32 softmax rounds what float64 keeps at e^-100 to 0
    const got = new Map(Array.from(ids, (id, i) => [id, probs[i]] as const).filter(([, p]) => p > 1e-30));
    expect([...got.keys()].sort((a, b) => a - b)).toEqual(c.ids);
    c.ids.forEach((id, i) => expect(Math.abs(got.get(id)! - c.probs[i])).toBeLessThan(1e-6));
  });

  it("lists the candidates most likely first after top-k", () => {
    const c = cases.find((x) => x.options.topK === 40)!;
    const { probs } = samplerFor(c).distribution(Float32Array.from(c.logits));
    for (let i = 1; i < probs.length; i++) expect(probs[i]).toBeLessThanOrEqual(probs[i - 1]);
  });

  it("does not modify the logits it is given", () => {
    const c = cases[cases.length - 2];
    const row = Float32Array.from(c.logits);
    samplerFor(c).next(row);
    expect(Array.from(row)).toEqual(Array.from(Float32Array.from(c.logits)));
  });
});

describe("greedy", () => {
  const logits = Float32Array.from([0.5, 2, -1, 2, 1.9]);
  it("temperature 0 and top-k 1 pick the argmax, the lowest id among equals", () => {
    for (const o of [{}, { temperature: 0 }, { temperature: 1.5, topK: 1 }]) {
      const s = new Sampler(o, 5);
      s.reset([]);
      expect(s.next(logits)).toBe(1);
    }
    expect(argmax(logits)).toBe(1);
  });
  it("applies the penalties and bias before the argmax, as HF's processors do", () => {
    const s = new Sampler({ repetitionPenalty: 1.2 }, 5);
    s.reset([1]);
    expect(s.next(logits)).toBe(3);
    s.accept(3);
    expect(s.next(logits)).toBe(4);
    const b = new Sampler({ logitBias: { 0: 10 } }, 5);
    b.reset([]);
    expect(b.next(logits)).toBe(0);
    const p = new Sampler({ presencePenalty: 0.05, frequencyPenalty: 0.1 }, 5);
    p.reset([1, 3]); // the prompt does not count for OpenAI's penalties
    expect(p.next(logits)).toBe(1);
    p.accept(1);
    expect(p.next(logits)).toBe(3);
  });
});

describe("draws", () => {
  it("follow distribution() (chi-square, 20,000 draws, three option sets)", () => {
    for (const c of [cases[2], cases[4], cases[8]]) {
      const row = Float32Array.from(c.logits);
      const s = samplerFor(c, { seed: 7 });
      const { ids, probs } = s.distribution(row);
      const index = new Map(Array.from(ids, (id, i) => [id, i]));
      // cells of at least 5 expected draws; the rest pooled
      const n = 20_000;
      const big = Array.from(probs.keys()).filter((i) => probs[i] * n >= 5);
      const cell = new Map(big.map((i, j) => [i, j]));
      const counts = new Array(big.length + 1).fill(0);
      for (let k = 0; k < n; k++) {
        const i = index.get(s.next(row));
        expect(i).toBeDefined();
        counts[cell.get(i!) ?? big.length]++;
      }
      const expected = big.map((i) => probs[i]);
      const rest = 1 - expected.reduce((a, b) => a + b, 0);
      const [cs, ps] = rest * n >= 5 ? [counts, [...expected, rest]] : [counts.slice(0, -1), expected];
      if (rest * n < 5) expect(counts[big.length]).toBeLessThan(10);
      expect(chiSquare(cs, ps, n)).toBeLessThan(critical(ps.length - 1));
    }
  });

  it("of seeds 1, 2, 3… are independent: first draws uniform, consecutive pairs uniform", () => {
    const flat = new Float32Array(16);
    const first = (seed: number) => {
      const s = new Sampler({ temperature: 1, seed }, 16);
      s.reset([]);
      return s.next(flat);
    };
    const n = 8192;
    const draws = Array.from({ length: n + 1 }, (_, i) => first(i + 1));
    const single = new Array(16).fill(0);
    draws.slice(0, n).forEach((d) => single[d]++);
    expect(chiSquare(single, new Array(16).fill(1 / 16), n)).toBeLessThan(critical(15));
    const pairs = new Array(256).fill(0);
    for (let i = 0; i < n; i++) pairs[draws[i] * 16 + draws[i + 1]]++;
    expect(chiSquare(pairs, new Array(256).fill(1 / 256), n)).toBeLessThan(critical(255));
  });

  it("repeat for the same seed and options, and differ for another seed", () => {
    const c = cases[7];
    const run = (seed: number) => {
      const s = samplerFor(c, { seed });
      return Array.from({ length: 30 }, () => s.next(Float32Array.from(c.logits)));
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it("random() is uniform on [0, 1)", () => {
    const r = random(42);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const u = r();
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 10)]++;
    }
    expect(chiSquare(bins, new Array(10).fill(0.1), 10_000)).toBeLessThan(critical(9));
  });
});

describe("top-k selection", () => {
  it("topIds finds the k largest in order, lowest id first among equals", () => {
    const r = random(5);
    for (const n of [1, 7, 100, 1001]) {
      const v = Float32Array.from({ length: n }, () => Math.floor(r() * 50));
      for (const k of [1, 3, 64, n]) {
        const want = Array.from(v.keys()).sort((a, b) => v[b] - v[a] || a - b).slice(0, k);
        expect(Array.from(topIds(v, k))).toEqual(want);
      }
    }
  });
});

describe("options", () => {
  const bad: [SamplingOptions, RegExp][] = [
    [{ topP: 1.5 }, /^topP should be in \(0, 1\], got 1\.5$/],
    [{ topP: 0 }, /^topP should be in \(0, 1\], got 0$/],
    [{ topK: -1 }, /^topK should be an integer ≥ 0, got -1$/],
    [{ topK: 2.5 }, /^topK should be an integer ≥ 0, got 2\.5$/],
    [{ minP: 2 }, /^minP should be in \[0, 1\], got 2$/],
    [{ temperature: -1 }, /^temperature should be a finite number ≥ 0, got -1$/],
    [{ temperature: Infinity }, /^temperature should be a finite number ≥ 0, got Infinity$/],
    [{ repetitionPenalty: 0 }, /^repetitionPenalty should be a finite number > 0, got 0$/],
    [{ presencePenalty: -0.5 }, /^presencePenalty should be a finite number ≥ 0, got -0\.5$/],
    [{ frequencyPenalty: NaN }, /^frequencyPenalty should be a finite number ≥ 0, got NaN$/],
    [{ seed: 1.5 }, /^seed should be an integer, got 1\.5$/],
    [{ logitBias: { 99: 1 } }, /^logitBias key should be a token id in \[0, 10\), got "99"$/],
    [{ logitBias: { 3: Infinity } }, /^logitBias\[3\] should be a finite number, got Infinity$/],
  ];
  it.each(bad)("%o is refused with WF510", (o, message) => {
    let err: unknown;
    try {
      new Sampler(o, 10);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArtifactError);
    expect((err as ArtifactError).code).toBe("WF510");
    expect((err as ArtifactError).message).toMatch(message);
  });
});
