// The next token from a row of logits, with Hugging Face `generate` semantics: repetition
// penalty, presence and frequency penalties (OpenAI), logit bias, temperature, top-k, top-p,
// min-p, then a draw from a seeded generator. Only the candidates are sorted, never the whole
// vocabulary: top-k and top-p select with a bounded heap, and min-p is a threshold.

import { ArtifactError, show } from "./errors.js";

export interface SamplingOptions {
  /** 0 (default) picks the most likely token after the penalties and bias. */
  temperature?: number;
  /** Keep the k most likely tokens (ties at the k-th kept, as HF does); 0 = off. */
  topK?: number;
  /** Keep the most likely tokens whose probabilities reach top_p; in (0, 1], 1 = off. */
  topP?: number;
  /** Drop tokens less likely than minP × the top probability; in [0, 1], 0 = off. */
  minP?: number;
  /** HF's: positive logits of every id seen (prompt and generated) divided by it, negative ones multiplied; 1 = off. */
  repetitionPenalty?: number;
  /** OpenAI's: subtracted once from the logit of every generated id. */
  presencePenalty?: number;
  /** OpenAI's: subtracted per occurrence of a generated id. */
  frequencyPenalty?: number;
  /** Token id → a number added to its logit. */
  logitBias?: Record<number, number>;
  seed?: number;
}

const f32 = Math.fround;

/** Throws WF510 naming the first invalid option. */
export function checkSampling(opts: SamplingOptions, vocab: number): void {
  const bad = (name: string, v: unknown, want: string) => new ArtifactError("WF510", `${name} should be ${want}, got ${show(v)}`);
  const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  const { temperature = 0, topK = 0, topP = 1, minP = 0, repetitionPenalty = 1, presencePenalty = 0, frequencyPenalty = 0, seed = 0, logitBias } = opts;
  if (!num(temperature) || temperature < 0) throw bad("temperature", temperature, "a finite number ≥ 0");
  if (!Number.isSafeInteger(topK) || topK < 0) throw bad("topK", topK, "an integer ≥ 0");
  if (!num(topP) || topP <= 0 || topP > 1) throw bad("topP", topP, "in (0, 1]");
  if (!num(minP) || minP < 0 || minP > 1) throw bad("minP", minP, "in [0, 1]");
  if (!num(repetitionPenalty) || repetitionPenalty <= 0) throw bad("repetitionPenalty", repetitionPenalty, "a finite number > 0");
  if (!num(presencePenalty) || presencePenalty < 0) throw bad("presencePenalty", presencePenalty, "a finite number ≥ 0");
  if (!num(frequencyPenalty) || frequencyPenalty < 0) throw bad("frequencyPenalty", frequencyPenalty, "a finite number ≥ 0");
  if (!Number.isSafeInteger(seed)) throw bad("seed", seed, "an integer");
  if (logitBias !== undefined) {
    if (typeof logitBias !== "object" || logitBias === null || Array.isArray(logitBias)) throw bad("logitBias", logitBias, "an object of token id → number");
    for (const [k, v] of Object.entries(logitBias)) {
      const id = Number(k);
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw bad(`logitBias key`, k, `a token id in [0, ${vocab})`);
      if (!num(v)) throw bad(`logitBias[${k}]`, v, "a finite number");
    }
  }
}

/**
 * Uniform draws in [0, 1): xoshiro128** seeded through splitmix32, so seeds 1, 2, 3… start
 * from unrelated states. 32-bit integer arithmetic only: the same draws in every engine.
 */
export function random(seed: number): () => number {
  let z = (seed | 0) ^ Math.floor(seed / 2 ** 32);
  const splitmix = () => {
    z = (z + 0x9e3779b9) | 0;
    let x = z;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  let a = splitmix(), b = splitmix(), c = splitmix(), d = splitmix();
  if ((a | b | c | d) === 0) a = 1;
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11);
    return r / 4294967296;
  };
}
const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** The largest value's index, the lowest one among equals (as torch.argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/**
 * The ids of the `k` largest values of `v` (fewer if v is shorter), in descending order of
 * value, lowest id first among equals: a min-heap of k entries over one pass. The heap keeps
 * its values beside the ids so the sift reads no value through an id.
 */
export function topIds(v: Float32Array, k: number): Int32Array {
  // `| 0` keeps n, and the scan's index that starts from it, a small integer for the JIT (Math.min's result is not: 2.5× slower)
  const n = Math.min(k, v.length) | 0;
  const ids = new Int32Array(n), vals = new Float32Array(n);
  for (let i = 0; i < n; i++) (ids[i] = i), (vals[i] = v[i]);
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(ids, vals, i, n);
  let weakest = vals[0];
  for (let i = n; i < v.length; i++) {
    const x = v[i];
    if (x > weakest) {
      ids[0] = i;
      vals[0] = x;
      siftDown(ids, vals, 0, n);
      weakest = vals[0];
    }
  }
  // heap sort: the weakest goes last
  for (let m = n - 1; m > 0; m--) {
    const id = ids[0], x = vals[0];
    ids[0] = ids[m]; vals[0] = vals[m];
    ids[m] = id; vals[m] = x;
    siftDown(ids, vals, 0, m);
  }
  return ids;
}

/** Restores the min-heap below `i`: the weakest on top (the smaller value, or the higher id among equals). */
function siftDown(ids: Int32Array, vals: Float32Array, i: number, n: number): void {
  for (;;) {
    const l = 2 * i + 1, r = l + 1;
    let m = i;
    if (l < n && (vals[l] < vals[m] || (vals[l] === vals[m] && ids[l] > ids[m]))) m = l;
    if (r < n && (vals[r] < vals[m] || (vals[r] === vals[m] && ids[r] > ids[m]))) m = r;
    if (m === i) return;
    const id = ids[i], x = vals[i];
    ids[i] = ids[m]; vals[i] = vals[m];
    ids[m] = id; vals[m] = x;
    i = m;
  }
}

export class Sampler {
  private readonly temperature: number;
  private readonly greedy: boolean;
  private readonly topK: number;
  private readonly topP: number;
  private readonly minP: number;
  private readonly repetition: number;
  private readonly presence: number;
  private readonly frequency: number;
  private readonly bias: [number, number][];
  private readonly rand: () => number;
  /** Ids seen in the prompt or generated (repetition penalty), and generated counts (OpenAI penalties). */
  private readonly seen = new Set<number>();
  private readonly counts = new Map<number, number>();
  /** The processed logits of the current step, every id in order, and a full distribution: reused each step. */
  private readonly work: Float32Array;
  private readonly all: Int32Array;
  private readonly allProbs: Float64Array;
  private readonly scratchIds: Int32Array;
  private readonly bucketMass = new Float64Array(NUCLEUS_BUCKETS);
  private readonly bucketOf: Uint16Array;

  constructor(opts: SamplingOptions, readonly vocab: number) {
    checkSampling(opts, vocab);
    const { temperature = 0, topK = 0, topP = 1, minP = 0, repetitionPenalty = 1, presencePenalty = 0, frequencyPenalty = 0, logitBias = {}, seed = 0 } = opts;
    this.temperature = temperature;
    this.greedy = temperature === 0 || topK === 1;
    this.topK = topK >= vocab ? 0 : topK;
    this.topP = topP;
    this.minP = minP;
    this.repetition = repetitionPenalty;
    this.presence = presencePenalty;
    this.frequency = frequencyPenalty;
    this.bias = Object.entries(logitBias).map(([k, v]) => [Number(k), v]);
    this.rand = random(seed);
    this.work = new Float32Array(vocab);
    this.all = allIds(vocab);
    this.allProbs = new Float64Array(vocab);
    this.scratchIds = new Int32Array(vocab);
    this.bucketOf = new Uint16Array(vocab);
  }

  /** Starts a sequence: the prompt's ids count for the repetition penalty. */
  reset(prompt: ArrayLike<number>): void {
    this.seen.clear();
    this.counts.clear();
    for (let i = 0; i < prompt.length; i++) this.seen.add(prompt[i]);
  }

  /** An id was appended to the sequence. */
  accept(id: number): void {
    this.seen.add(id);
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  /** The next id from one row of logits (not modified). */
  next(logits: Float32Array): number {
    const v = this.process(logits);
    if (this.greedy) return argmax(v);
    const { ids, probs } = this.candidates(v);
    let u = this.rand();
    for (let i = 0; i < ids.length - 1; i++) if ((u -= probs[i]) < 0) return ids[i];
    return ids[ids.length - 1];
  }

  /**
   * The distribution next() draws from: candidate ids, most likely first, and their
   * probabilities (summing to 1). Greedy options give the argmax with probability 1.
   */
  distribution(logits: Float32Array): { ids: Int32Array; probs: Float64Array } {
    const v = this.process(logits);
    if (this.greedy) return { ids: Int32Array.of(argmax(v)), probs: Float64Array.of(1) };
    const { ids, probs } = this.candidates(v);
    return { ids: ids.slice(), probs: probs.slice() };
  }

  /** Penalties and bias applied to a copy of the row, in float32 as torch computes them. */
  private process(logits: Float32Array): Float32Array {
    if (logits.length !== this.vocab) throw new ArtifactError("WF510", `sampler: a row of ${logits.length} logits for a vocabulary of ${this.vocab}`);
    const v = this.work;
    v.set(logits);
    if (this.repetition !== 1) {
      const p = f32(this.repetition);
      for (const id of this.seen) if (id >= 0 && id < v.length) v[id] = v[id] < 0 ? v[id] * p : v[id] / p;
    }
    if (this.presence !== 0 || this.frequency !== 0)
      for (const [id, n] of this.counts) if (id >= 0 && id < v.length) v[id] -= n * this.frequency + this.presence;
    for (const [id, b] of this.bias) v[id] += b;
    return v;
  }

  /**
   * Temperature, top-k, top-p and min-p in HF's order on processed logits: the survivors and
   * their probabilities. Temperature divides inside the softmax only (selection by value does
   * not depend on it), so no pass over the vocabulary is spent on it. Candidates come most
   * likely first after top-k, in id order otherwise.
   */
  private candidates(v: Float32Array): { ids: Int32Array; probs: Float64Array } {
    const t = f32(this.temperature);
    let ids: Int32Array;
    let probs: Float64Array;
    if (this.topK > 0) {
      ids = withTies(v, topIds(v, this.topK));
      probs = softmaxOf(v, ids, t);
      if (this.topP < 1) {
        const n = nucleusLength(probs, this.topP);
        if (n < ids.length) probs = softmaxOf(v, (ids = ids.subarray(0, n)), t);
      }
    } else if (this.topP < 1) {
      ids = this.nucleus(v, t);
      probs = softmaxOf(v, ids, t);
    } else if (this.minP > 0) {
      // min-p alone is a threshold on the logits: p / p_max ≥ min_p ⟺ (v − v_max) / t ≥ ln(min_p)
      const top = v[argmax(v)], floor = Math.log(this.minP), out = this.scratchIds;
      let n = 0;
      for (let i = 0; i < v.length; i++) if ((v[i] - top) / t >= floor) out[n++] = i;
      ids = out.slice(0, n);
      return { ids, probs: softmaxOf(v, ids, t) };
    } else {
      return { ids: this.all, probs: softmaxOf(v, this.all, t, this.allProbs) };
    }
    if (this.minP > 0) {
      let top = 0;
      for (const p of probs) if (p > top) top = p;
      if (probs.some((p) => p < this.minP * top)) {
        ids = ids.filter((_, i) => probs[i] >= this.minP * top);
        probs = softmaxOf(v, ids, t);
      }
    }
    return { ids, probs };
  }

  /**
   * Top-p over the whole vocabulary without sorting it: the probability mass is histogrammed
   * by distance below the top logit, the histogram's cumulative sum finds the bucket where the
   * nucleus ends, and only that bucket's tokens are sorted to find the exact boundary.
   */
  private nucleus(v: Float32Array, t: number): Int32Array {
    const e = softmaxOf(v, this.all, t, this.allProbs);
    const top = v[argmax(v)];
    const B = NUCLEUS_BUCKETS, perUnit = B / NUCLEUS_RANGE;
    const mass = this.bucketMass.fill(0), bucketOf = this.bucketOf;
    for (let i = 0; i < v.length; i++) {
      const b = Math.min(B - 1, Math.floor(((top - v[i]) / t) * perUnit));
      bucketOf[i] = b;
      mass[b] += e[i];
    }
    // the nucleus ends in bucket `end`: the mass of the buckets above it is below top_p
    let end = 0, above = 0;
    for (; end < B - 1 && above + mass[end] < this.topP; end++) above += mass[end];
    const out = this.scratchIds;
    let n = 0;
    for (let i = 0; i < v.length; i++) if (bucketOf[i] < end) out[n++] = i;
    const edge: number[] = [];
    for (let i = 0; i < v.length; i++) if (bucketOf[i] === end) edge.push(i);
    edge.sort((a, b) => v[b] - v[a] || a - b);
    for (let j = 0; j < edge.length && above < this.topP; j++) {
      above += e[edge[j]];
      out[n++] = edge[j];
    }
    return out.slice(0, n);
  }
}

/** The nucleus histogram: buckets over [0, NUCLEUS_RANGE) of (top − logit) / temperature; beyond that, e^-x is negligible mass. */
const NUCLEUS_BUCKETS = 4096;
const NUCLEUS_RANGE = 64;

/**
 * How many of `probs` (descending) top-p keeps: a token stays while the mass above it is below
 * top_p (HF drops where the ascending cumulative sum ≤ 1 − top_p), the top one always.
 */
function nucleusLength(probs: Float64Array, topP: number): number {
  let n = 1;
  for (let above = probs[0]; n < probs.length && above < topP; n++) above += probs[n];
  return n;
}

function allIds(n: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return ids;
}

/** The top-k ids extended by every other id equal to the k-th value (HF keeps those), in descending order. */
function withTies(v: Float32Array, top: Int32Array): Int32Array {
  const kth = v[top[top.length - 1]];
  let ties = 0, tiesInTop = 0;
  for (let i = 0; i < v.length; i++) if (v[i] === kth) ties++;
  for (const id of top) if (v[id] === kth) tiesInTop++;
  if (ties === tiesInTop) return top;
  const have = new Set(top);
  const out = Array.from(top);
  for (let i = 0; i < v.length; i++) if (v[i] === kth && !have.has(i)) out.push(i);
  return Int32Array.from(out);
}

/** softmax(v / t) over the ids given (others excluded), in their order (into `p` when given). */
function softmaxOf(v: Float32Array, ids: Int32Array, t: number, p: Float64Array = new Float64Array(ids.length)): Float64Array {
  let m = -Infinity;
  for (const id of ids) if (v[id] > m) m = v[id];
  let sum = 0;
  for (let i = 0; i < ids.length; i++) sum += p[i] = Math.exp((v[ids[i]] - m) / t);
  for (let i = 0; i < ids.length; i++) p[i] /= sum;
  return p;
}
