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

/**
 * Mean next-token NLL of `ids` under a causal LM's `forward` entry (logits at every position).
 * Each window starts a fresh sequence (the KV cache is reset); the model is left reset.
 */
export function meanNll(model: Model, ids: Ids, opts: NllOptions = {}): NllResult {
  const man = model.manifest;
  if (man.kind !== "causal-lm") throw new ArtifactError("WF511", `perplexity needs a causal LM; this artifact is ${man.kind === "encoder" ? "an" : "a"} ${man.kind} model`);
  const entry = model.entry("forward");
  const out = entry.outputs.find((o) => o.name === "logits") ?? entry.outputs[0];
  if (!out || out.rows !== "S") throw new ArtifactError("WF511", "forward must output logits for every position");
  const vocab = out.width;
  const window = opts.window ?? man.context;
  const stride = opts.stride ?? window;
  if (!Number.isInteger(window) || window < 2 || window > man.context)
    throw new ArtifactError("WF510", `window must be an integer in [2, ${man.context}] (the artifact's context), got ${window}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > window) throw new ArtifactError("WF510", `stride must be an integer in [1, window = ${window}], got ${stride}`);
  if (ids.length < 2) throw new ArtifactError("WF510", `need at least 2 token ids to score, got ${ids.length}`);
  for (let i = 0; i < ids.length; i++)
    if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= vocab) throw new ArtifactError("WF510", `id ${ids[i]} at position ${i} is outside the vocabulary [0, ${vocab})`);

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
