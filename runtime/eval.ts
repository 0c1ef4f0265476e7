// Held-out quality of a causal LM: mean negative log-likelihood and perplexity of a token
// sequence, scored in windows no longer than the artifact's context. No Node-only imports.

import { ArtifactError, type Ids, type Model } from "./model.js";

export interface NllOptions {
  /** Tokens per window, its first included (default and maximum: the artifact's context). */
  window?: number;
  /**
   * Tokens between window starts (default `window`: non-overlapping windows, the first token of
   * each unpredicted). Below `window`, each window scores only the tokens the one before did not,
   * so every token after the first is scored once, with at least `window − stride` tokens before it.
   */
  stride?: number;
  /** Called after each window with the tokens scored so far and the total to score. */
  onProgress?: (scored: number, total: number) => void;
}

export interface NllResult {
  /** Tokens scored (next-token predictions). */
  tokens: number;
  /** Mean natural-log negative log-likelihood per scored token. */
  meanNll: number;
  /** exp(meanNll). */
  perplexity: number;
  window: number;
  stride: number;
  /** Forward calls made. */
  windows: number;
}

/** The windows `[start, end)` of `n` ids and the first target each scores (targets before it are scored already). */
export function nllWindows(n: number, window: number, stride: number): { start: number; end: number; from: number }[] {
  const out: { start: number; end: number; from: number }[] = [];
  let scored = 0; // targets below this index are scored (index 0 never is)
  for (let start = 0; ; start += stride) {
    const end = Math.min(start + window, n);
    const from = Math.max(start + 1, scored);
    if (from < end) out.push({ start, end, from });
    scored = end;
    if (end === n) return out;
  }
}

/**
 * −log softmax(row)[target], in float64: (max − row[target]) + log Σ exp(row − max). The
 * difference first: it is exact, where adding max to the log would round away its low bits.
 */
export function tokenNll(row: ArrayLike<number>, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max - row[target] + Math.log(sum);
}

/** The forward entry's logits output of a causal LM (one row per position), or an ArtifactError. */
function logitsOutput(model: Model, what: string) {
  const man = model.manifest;
  if (man.kind !== "causal-lm") throw new ArtifactError("WF511", `${what} needs a causal LM; this artifact is ${man.kind === "encoder" ? "an" : "a"} ${man.kind} model`);
  const entry = model.entry("forward");
  const out = entry.outputs.find((o) => o.name === "logits") ?? entry.outputs[0];
  if (!out || out.rows !== "S") throw new ArtifactError("WF511", "forward must output logits for every position");
  return { entry, out };
}

/** The window and stride options checked against an artifact's context. */
function checkWindows(context: number, opts: NllOptions) {
  const window = opts.window ?? context;
  const stride = opts.stride ?? window;
  if (!Number.isInteger(window) || window < 2 || window > context)
    throw new ArtifactError("WF510", `window must be an integer in [2, ${context}] (the artifact's context), got ${window}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > window) throw new ArtifactError("WF510", `stride must be an integer in [1, window = ${window}], got ${stride}`);
  return { window, stride };
}

function checkIds(ids: Ids, vocab: number) {
  if (ids.length < 2) throw new ArtifactError("WF510", `need at least 2 token ids to score, got ${ids.length}`);
  for (let i = 0; i < ids.length; i++)
    if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= vocab) throw new ArtifactError("WF510", `id ${ids[i]} at position ${i} is outside the vocabulary [0, ${vocab})`);
}

/**
 * Mean next-token NLL of `ids` under a causal LM's `forward` entry (logits at every position).
 * Each window starts a fresh sequence (the KV cache is reset); the model is left reset.
 */
export function meanNll(model: Model, ids: Ids, opts: NllOptions = {}): NllResult {
  const { entry, out } = logitsOutput(model, "perplexity");
  const vocab = out.width;
  const { window, stride } = checkWindows(model.manifest.context, opts);
  checkIds(ids, vocab);

  const windows = nllWindows(ids.length, window, stride);
  const total = windows.reduce((s, w) => s + w.end - w.from, 0);
  let nll = 0, tokens = 0;
  // one logits array for every window (a fresh [window, vocab] array each would be touched anew)
  const into = { [out.name]: new Float32Array(Math.max(...windows.map((w) => w.end - 1 - w.start)) * vocab) };
  try {
    for (const { start, end, from } of windows) {
      model.reset();
      // the last id is only a target: logits at positions start..end−2 predict start+1..end−1
      const logits = model.run(entry.name, { ids: Array.prototype.slice.call(ids, start, end - 1) }, into)[out.name];
      for (let t = from; t < end; t++) nll += tokenNll(logits.subarray((t - 1 - start) * vocab, (t - start) * vocab), ids[t]);
      tokens += end - from;
      opts.onProgress?.(tokens, total);
    }
  } finally {
    model.reset();
  }
  const mean = nll / tokens;
  return { tokens, meanNll: mean, perplexity: Math.exp(mean), window, stride, windows: windows.length };
}

export interface KlResult {
  /** Tokens scored (next-token distributions compared). */
  tokens: number;
  /** KL(base ‖ model) per scored token, in nats: mean, median, 99th and 99.9th percentile, largest. */
  meanKld: number;
  medianKld: number;
  p99Kld: number;
  p999Kld: number;
  maxKld: number;
  /** Fraction of positions where both put their largest logit on the same token. */
  sameTop1: number;
  /** Mean NLL of the actual next tokens under each, and model − base. */
  meanNll: number;
  baseMeanNll: number;
  deltaNll: number;
  window: number;
  stride: number;
}

/** The q-quantile of sorted values, interpolated linearly between ranks (as numpy.percentile). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const at = (sorted.length - 1) * q, lo = Math.floor(at), hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/**
 * How far `model`'s next-token distributions are from `base`'s on the same ids (e.g. an int4
 * artifact against its fp32 one), as llama-perplexity's --kl-divergence reports: per token
 * KL(base ‖ model) = Σ p_base (log p_base − log p_model) in float64, over the windows meanNll scores.
 */
export function klDivergence(model: Model, base: Model, ids: Ids, opts: NllOptions = {}): KlResult {
  const a = logitsOutput(model, "KL divergence"), b = logitsOutput(base, "KL divergence");
  const vocab = a.out.width;
  if (b.out.width !== vocab) throw new ArtifactError("WF510", `the base artifact's logits have ${b.out.width} columns, this one's ${vocab}: compare artifacts of one vocabulary`);
  const { window, stride } = checkWindows(Math.min(model.manifest.context, base.manifest.context), opts);
  checkIds(ids, vocab);
  const windows = nllWindows(ids.length, window, stride);
  const total = windows.reduce((s, w) => s + w.end - w.from, 0);
  const kld = new Float64Array(total);
  let n = 0, same = 0, nll = 0, baseNll = 0;
  const rows = Math.max(...windows.map((w) => w.end - 1 - w.start)) * vocab;
  const intoA = { [a.out.name]: new Float32Array(rows) }, intoB = { [b.out.name]: new Float32Array(rows) };
  const logp = new Float64Array(vocab), logq = new Float64Array(vocab);
  const logSoftmax = (row: Float32Array, into: Float64Array) => {
    let max = -Infinity, arg = 0;
    for (let i = 0; i < row.length; i++) if (row[i] > max) (max = row[i]), (arg = i);
    let sum = 0;
    for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
    const lse = Math.log(sum);
    for (let i = 0; i < row.length; i++) into[i] = row[i] - max - lse;
    return arg;
  };
  try {
    for (const { start, end, from } of windows) {
      model.reset();
      base.reset();
      const input = { ids: Array.prototype.slice.call(ids, start, end - 1) };
      const la = model.run(a.entry.name, input, intoA)[a.out.name], lb = base.run(b.entry.name, input, intoB)[b.out.name];
      for (let t = from; t < end; t++) {
        const at = (t - 1 - start) * vocab;
        const top = logSoftmax(la.subarray(at, at + vocab), logq), baseTop = logSoftmax(lb.subarray(at, at + vocab), logp);
        let d = 0;
        for (let i = 0; i < vocab; i++) d += Math.exp(logp[i]) * (logp[i] - logq[i]);
        kld[n++] = Math.max(0, d);
        if (top === baseTop) same++;
        nll -= logq[ids[t]];
        baseNll -= logp[ids[t]];
      }
      opts.onProgress?.(n, total);
    }
  } finally {
    model.reset();
    base.reset();
  }
  const sorted = kld.slice().sort();
  const mean = kld.reduce((s, x) => s + x, 0) / n;
  return {
    tokens: n, meanKld: mean, medianKld: quantile(sorted, 0.5), p99Kld: quantile(sorted, 0.99), p999Kld: quantile(sorted, 0.999), maxKld: sorted[n - 1],
    sameTop1: same / n, meanNll: nll / n, baseMeanNll: baseNll / n, deltaNll: (nll - baseNll) / n, window, stride,
  };
}
