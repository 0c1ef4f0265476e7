// The timing loop behind `wasmformer bench`, `npm run bench` (bench/*.js) and the bench page:
// prompt processing (pp) and token generation (tg) of a causal LM at a context depth, as
// llama-bench measures them. Each repetition starts from an empty cache, feeds `depth` tokens
// untimed, then times the test; untimed warm-up repetitions come first. With `fixedDepth`, each
// step is instead timed at exactly the depth (a decode step at a fixed past length); with several
// subjects, each repetition runs on all of them in turn, so that their ratios are paired.
// No Node-only imports.

import { ArtifactError, type Model } from "./model.js";

export interface BenchOptions {
  /** Prompt lengths to time (pp): one call of that many tokens (default [128]). */
  prompt?: number[];
  /** Generation lengths to time (tg): that many one-token calls (default [32]). */
  gen?: number[];
  /** Tokens already in the context before each test (default [0]). */
  depths?: number[];
  /** Timed repetitions of each test (default 5). */
  repetitions?: number;
  /** Untimed repetitions of each test before the timed ones (default 1). */
  warmups?: number;
  /**
   * Tests at a fixed depth: the depth is fed once per test and each repetition rewinds to it
   * instead of resetting and feeding it again; each one-token step of a tg test starts from it
   * too (the subject rewinds before the step, untimed), so that every step attends over exactly
   * `depth` cached rows, as a decode step at that past length. Needs subject.rewind; tg tests
   * are then named "tg8 @ d128 fixed".
   */
  fixedDepth?: boolean;
  /** Most tokens of the depth fed in one call (default: the whole depth in one call). */
  depthBatch?: number;
  /** Called before each repetition: 0 for a warm-up, then 1 to `repetitions`. */
  onProgress?: (test: string, repetition: number, repetitions: number) => void;
  /** Seed of the random token ids fed (default 1). */
  seed?: number;
}

export interface BenchResult {
  /** llama-bench's name: pp128, tg32, with "@ d512" at a depth (and " fixed" with fixedDepth). */
  test: string;
  kind: "pp" | "tg";
  tokens: number;
  depth: number;
  fixedDepth: boolean;
  /** Seconds of each timed repetition (with fixedDepth, of its steps alone). */
  seconds: number[];
  /** Tokens per second: mean and sample standard deviation over the repetitions. */
  tokensPerS: number;
  sd: number;
  /** Tokens per second: median, slowest and fastest repetition. */
  median: number;
  min: number;
  max: number;
}

const now = () => performance.now() / 1000;

/** Mean and sample standard deviation. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

/** The median (the mean of the middle two of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Per repetition, how many times faster `other` ran than `base`: both timed by one benchSubjects
 * call, repetition by repetition in turn, so that each ratio compares runs seconds apart.
 */
export function speedups(base: BenchResult, other: BenchResult): number[] {
  if (base.seconds.length !== other.seconds.length) throw new ArtifactError("WF510", `speedups: ${base.test} has ${base.seconds.length} repetitions and ${other.test} ${other.seconds.length}; time both in one benchSubjects call`);
  return base.seconds.map((s, i) => s / other.seconds[i]);
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
  /** Keeps the first `rows` cached rows and forgets the rest (fixedDepth tests need it). */
  rewind?(rows: number): void | Promise<void>;
}

export interface ModelSubjectOptions {
  /**
   * Which logits a call of several tokens computes: "last" (the `forward_last` entry, what
   * generation runs; the default where the artifact has one) or "all" (`forward`: every
   * position's, as an ONNX export computes them). One-token calls take `forward_last` either way.
   */
  logits?: "last" | "all";
  /** Writes each call's outputs into arrays kept from the last call of the same entry and length (run's `into`) instead of fresh ones. */
  reuseOutputs?: boolean;
}

/** A compiled causal LM as a bench subject. */
export function modelSubject(model: Model, opts: ModelSubjectOptions = {}): BenchSubject {
  const man = model.manifest;
  if (man.kind !== "causal-lm") throw new ArtifactError("WF511", `bench times causal LMs; this artifact is ${man.kind === "encoder" ? "an" : "a"} ${man.kind} model`);
  const last = man.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
  const prompts = opts.logits === "all" ? "forward" : last;
  const kept = new Map<string, Record<string, Float32Array>>();
  return {
    context: man.context,
    vocab: model.entry(last).outputs[0].width,
    reset: () => model.reset(),
    feed(ids) {
      const entry = ids.length > 1 ? prompts : last;
      if (!opts.reuseOutputs) return void model.run(entry, { ids });
      const key = `${entry}/${ids.length}`;
      kept.set(key, model.run(entry, { ids }, kept.get(key)));
    },
    rewind: (rows) => model.rewind(rows),
  };
}

/** Times each pp and tg test at each depth on a causal LM; the model is left reset. */
export async function benchModel(model: Model, opts: BenchOptions = {}): Promise<BenchResult[]> {
  return benchSubject(modelSubject(model), opts);
}

/** Times each pp and tg test at each depth on a subject; the subject is left reset. */
export async function benchSubject(subject: BenchSubject, opts: BenchOptions = {}): Promise<BenchResult[]> {
  return (await benchSubjects([subject], opts))[0];
}

/**
 * Times each pp and tg test at each depth on several subjects in turn: every repetition of a test
 * runs on each subject, the first of them rotating from one repetition to the next, so that a
 * drift of the machine's speed falls on all of them alike (speedups pairs their repetitions). The
 * ids fed are the same for all. Results per subject, in the order given; the subjects are left reset.
 */
export async function benchSubjects(subjects: readonly BenchSubject[], opts: BenchOptions = {}): Promise<BenchResult[][]> {
  const { prompt = [128], gen = [32], depths = [0], repetitions = 5, warmups = 1, fixedDepth = false, depthBatch = Infinity, seed = 1 } = opts;
  const bad = (msg: string) => new ArtifactError("WF510", msg);
  if (!subjects.length) throw bad("bench needs at least one subject");
  if (!Number.isInteger(repetitions) || repetitions < 1) throw bad(`repetitions must be a positive integer, got ${repetitions}`);
  if (!Number.isInteger(warmups) || warmups < 0) throw bad(`warmups must be a non-negative integer, got ${warmups}`);
  if (!(depthBatch === Infinity || (Number.isInteger(depthBatch) && depthBatch >= 1))) throw bad(`depthBatch must be a positive integer, got ${depthBatch}`);
  if (fixedDepth && subjects.some((s) => !s.rewind)) throw bad("fixedDepth needs subjects that rewind their cache");
  const context = Math.min(...subjects.map((s) => s.context));
  const vocab = Math.min(...subjects.map((s) => s.vocab));
  const tests = depths.flatMap((depth) => [
    ...prompt.map((tokens) => ({ kind: "pp" as const, tokens, depth })),
    ...gen.map((tokens) => ({ kind: "tg" as const, tokens, depth })),
  ]);
  for (const t of tests) {
    if (!Number.isInteger(t.tokens) || t.tokens < 1 || !Number.isInteger(t.depth) || t.depth < 0)
      throw bad(`${t.kind} ${t.tokens} at depth ${t.depth}: token counts must be positive integers and depths non-negative`);
    const positions = t.depth + (fixedDepth && t.kind === "tg" ? 1 : t.tokens);
    if (positions > context) throw bad(`${t.kind}${t.tokens} at depth ${t.depth} needs ${positions} positions; the artifact's context is ${context}`);
  }
  const ids = randomIds(context, vocab, seed);
  const feedDepth = async (s: BenchSubject, depth: number) => {
    for (let at = 0; at < depth; at += depthBatch) await s.feed(ids.slice(at, Math.min(depth, at + depthBatch)));
  };
  /** One repetition of a test on a subject: seconds of its timed calls. */
  const once = async (s: BenchSubject, t: (typeof tests)[number]) => {
    if (fixedDepth) await s.rewind!(t.depth);
    else {
      await s.reset();
      await feedDepth(s, t.depth);
    }
    if (t.kind === "pp") {
      const start = now();
      await s.feed(ids.slice(t.depth, t.depth + t.tokens));
      return now() - start;
    }
    let seconds = 0;
    for (let i = 0; i < t.tokens; i++) {
      if (fixedDepth && i > 0) await s.rewind!(t.depth);
      const start = now();
      await s.feed([ids[fixedDepth ? t.depth : t.depth + i]]);
      seconds += now() - start;
    }
    return seconds;
  };
  const results: BenchResult[][] = subjects.map(() => []);
  try {
    for (const t of tests) {
      const test = `${t.kind}${t.tokens}${t.depth ? ` @ d${t.depth}` : ""}${fixedDepth && t.kind === "tg" ? " fixed" : ""}`;
      const seconds: number[][] = subjects.map(() => []);
      if (fixedDepth)
        for (const s of subjects) {
          await s.reset();
          await feedDepth(s, t.depth);
        }
      for (let r = 0; r < warmups + repetitions; r++) {
        opts.onProgress?.(test, Math.max(0, r - warmups + 1), repetitions);
        // let a page draw its progress between repetitions
        await new Promise((resolve) => setTimeout(resolve, 0));
        for (let k = 0; k < subjects.length; k++) {
          const i = (k + r) % subjects.length;
          const s = await once(subjects[i], t);
          if (r >= warmups) seconds[i].push(s);
        }
      }
      seconds.forEach((sec, i) => {
        const tokS = sec.map((s) => t.tokens / s);
        const { mean, sd } = meanSd(tokS);
        results[i].push({ test, ...t, fixedDepth, seconds: sec, tokensPerS: mean, sd, median: median(tokS), min: Math.min(...tokS), max: Math.max(...tokS) });
      });
    }
  } finally {
    for (const s of subjects) await s.reset();
  }
  return results;
}
