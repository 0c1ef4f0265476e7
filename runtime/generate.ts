// Token generation on a loaded model: greedy or temperature sampling, with the KV cache.

import { ArtifactError, show } from "./errors.js";
import { type Ids, Model } from "./model.js";

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (default) picks the most likely token; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  seed?: number;
  /** Stop after an end-of-sequence token (default true). */
  stopAtEos?: boolean;
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  /** Generated ids only (not the prompt). */
  ids: number[];
  prefillTokensPerS: number;
  decodeTokensPerS: number;
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

function sampler(temperature: number, seed: number) {
  let s = seed >>> 0 || 0x9e3779b9;
  const rand = () => {
    // xorshift32: small, seedable, the same everywhere
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  return (row: Float32Array) => {
    if (temperature <= 0) return argmax(row);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    const p = Array.from(row, (v) => Math.exp((v - m) / temperature));
    let u = rand() * p.reduce((a, b) => a + b, 0);
    for (let i = 0; i < p.length; i++) if ((u -= p[i]) <= 0) return i;
    return p.length - 1;
  };
}

const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

/**
 * Generates up to `opts.maxNewTokens` ids after `prompt` (a causal LM continues it, a seq2seq
 * model encodes it and decodes from its decoder start token). An artifact that does not
 * generate (an encoder) is an ArtifactError WF511, an invalid option WF510; the prompt's ids
 * are checked by Model.run.
 */
export function generate(model: Model, prompt: Ids, opts: GenerateOptions): GenerateResult {
  const man = model.manifest;
  if (man.kind !== "causal-lm" && man.kind !== "seq2seq")
    throw new ArtifactError("WF511", `generate: this artifact is an ${man.kind} model (${man.model}), which computes hidden states, not tokens; use run`);
  const option = (name: string, v: unknown, ok: boolean, want: string) => {
    if (!ok) throw new ArtifactError("WF510", `generate: ${name} should be ${want}, got ${show(v)}`);
  };
  option("prompt", prompt, typeof prompt === "object" && prompt !== null && typeof prompt.length === "number", "an array of token ids");
  option("maxNewTokens", opts.maxNewTokens, Number.isSafeInteger(opts.maxNewTokens) && opts.maxNewTokens >= 0, "a non-negative integer");
  const { temperature = 0, seed = 0 } = opts;
  option("temperature", temperature, typeof temperature === "number" && Number.isFinite(temperature) && temperature >= 0, "a finite number ≥ 0");
  option("seed", seed, Number.isSafeInteger(seed), "an integer");
  const pick = sampler(temperature, seed);
  const eos = new Set(opts.stopAtEos === false ? [] : man.tokens?.eos ?? []);
  const out: number[] = [];
  model.reset();
  // an entry's `_last` variant computes the last position's logits only
  const entryFor = (name: string) => (man.entries.some((e) => e.name === `${name}_last`) ? `${name}_last` : name);
  let step: (ids: number[]) => Float32Array;
  let first: number[];
  const t0 = now();
  let prefillRows: number;
  if (man.kind === "seq2seq") {
    const enc = model.run("encode", { ids: prompt });
    model.setState("hidden", enc.hidden);
    const entry = entryFor("decode");
    step = (ids) => model.run(entry, { ids }).logits;
    first = [man.tokens?.decoder_start ?? 0];
    prefillRows = prompt.length;
  } else {
    const entry = entryFor("forward");
    step = (ids) => model.run(entry, { ids }).logits;
    first = Array.from(prompt);
    prefillRows = prompt.length;
  }
  const vocab = model.entry(man.kind === "seq2seq" ? "decode" : "forward").outputs[0].width;
  let logits = step(first);
  const t1 = now();
  let next = pick(logits.subarray(logits.length - vocab));
  while (out.length < opts.maxNewTokens) {
    out.push(next);
    opts.onToken?.(next);
    if (eos.has(next) || out.length === opts.maxNewTokens || model.past + 1 > man.context) break;
    logits = step([next]);
    next = pick(logits.subarray(logits.length - vocab));
  }
  const t2 = now();
  const decoded = Math.max(0, out.length - 1);
  return {
    ids: out,
    prefillTokensPerS: prefillRows / ((t1 - t0) / 1000),
    decodeTokensPerS: decoded ? decoded / ((t2 - t1) / 1000) : 0,
  };
}
