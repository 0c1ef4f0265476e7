// The timing loop behind `wasmformer bench`, bench/run.js and the bench page: prompt processing
// (pp) and token generation (tg) of a causal LM at a context depth, as llama-bench measures them.
// Each repetition starts from an empty cache, feeds `depth` tokens untimed, then times the test;
// one untimed repetition warms the module up first. No Node-only imports.

import { ArtifactError, type Model } from "./model.js";

export interface BenchOptions {
  /** Prompt lengths to time (pp): one call of that many tokens, last-row logits (default [128]). */
  prompt?: number[];
  /** Generation lengths to time (tg): that many one-token calls (default [32]). */
  gen?: number[];
  /** Tokens already in the context before each test (default [0]). */
  depths?: number[];
  /** Timed repetitions of each test (default 5). */
  repetitions?: number;
  /** Called before each repetition (the warm-up is repetition 0). */
  onProgress?: (test: string, repetition: number, repetitions: number) => void;
  /** Seed of the random token ids fed (default 1). */
  seed?: number;
}

export interface BenchResult {
  /** llama-bench's name: pp128, tg32, with "@ d512" at a depth. */
  test: string;
  kind: "pp" | "tg";
  tokens: number;
  depth: number;
  /** Seconds of each timed repetition. */
  seconds: number[];
  /** Tokens per second: mean and sample standard deviation over the repetitions. */
  tokensPerS: number;
  sd: number;
}

const now = () => performance.now() / 1000;

/** Mean and sample standard deviation. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

/** Seeded token ids in [0, vocab) (xorshift32): the same ids on every host. */
function randomIds(n: number, vocab: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % vocab;
  });
}

/**
 * What the timing loop drives: a causal LM with a cache that takes ids after those it holds. A
 * compiled model is one (modelSubject); a peer runtime on the same weights is another, so both
 * are timed by the same loop.
 */
export interface BenchSubject {
  readonly context: number;
  readonly vocab: number;
  /** Empties the cache. */
  reset(): void | Promise<void>;
  /** Feeds ids after those in the cache, in one call. */
  feed(ids: number[]): void | Promise<void>;
}

/** A compiled causal LM as a bench subject: its `forward_last` entry (last-row logits) where it has one. */
export function modelSubject(model: Model): BenchSubject {
  const man = model.manifest;
  if (man.kind !== "causal-lm") throw new ArtifactError("WF511", `bench times causal LMs; this artifact is ${man.kind === "encoder" ? "an" : "a"} ${man.kind} model`);
  const entry = man.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
  return {
    context: man.context,
    vocab: model.entry(entry).outputs[0].width,
    reset: () => model.reset(),
    feed: (ids) => void model.run(entry, { ids }),
  };
}

/** Times each pp and tg test at each depth on a causal LM; the model is left reset. */
export async function benchModel(model: Model, opts: BenchOptions = {}): Promise<BenchResult[]> {
  return benchSubject(modelSubject(model), opts);
}

/** Times each pp and tg test at each depth on a subject; the subject is left reset. */
export async function benchSubject(subject: BenchSubject, opts: BenchOptions = {}): Promise<BenchResult[]> {
  const { prompt = [128], gen = [32], depths = [0], repetitions = 5, seed = 1 } = opts;
  if (!Number.isInteger(repetitions) || repetitions < 1) throw new ArtifactError("WF510", `repetitions must be a positive integer, got ${repetitions}`);
  const man = { context: subject.context };
  const vocab = subject.vocab;
  const tests = depths.flatMap((depth) => [
    ...prompt.map((tokens) => ({ kind: "pp" as const, tokens, depth })),
    ...gen.map((tokens) => ({ kind: "tg" as const, tokens, depth })),
  ]);
  for (const t of tests) {
    if (!Number.isInteger(t.tokens) || t.tokens < 1 || !Number.isInteger(t.depth) || t.depth < 0)
      throw new ArtifactError("WF510", `${t.kind} ${t.tokens} at depth ${t.depth}: token counts must be positive integers and depths non-negative`);
    if (t.depth + t.tokens > man.context)
      throw new ArtifactError("WF510", `${t.kind}${t.tokens} at depth ${t.depth} needs ${t.depth + t.tokens} positions; the artifact's context is ${man.context}`);
  }
  const ids = randomIds(man.context, vocab, seed);
  const results: BenchResult[] = [];
  try {
    for (const t of tests) {
      const test = `${t.kind}${t.tokens}${t.depth ? ` @ d${t.depth}` : ""}`;
      const seconds: number[] = [];
      for (let r = 0; r <= repetitions; r++) {
        opts.onProgress?.(test, r, repetitions);
        // let a page draw its progress between repetitions
        await new Promise((resolve) => setTimeout(resolve, 0));
        await subject.reset();
        if (t.depth) await subject.feed(ids.slice(0, t.depth));
        const start = now();
        if (t.kind === "pp") await subject.feed(ids.slice(t.depth, t.depth + t.tokens));
        else for (let i = 0; i < t.tokens; i++) await subject.feed([ids[t.depth + i]]);
        const s = now() - start;
        if (r > 0) seconds.push(s);
      }
      const { mean, sd } = meanSd(seconds.map((s) => t.tokens / s));
      results.push({ test, ...t, seconds, tokensPerS: mean, sd });
    }
  } finally {
    await subject.reset();
  }
  return results;
}
