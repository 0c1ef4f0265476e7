// Token generation on a loaded model: greedy or temperature sampling, with the KV cache.

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

export function generate(model: Model, prompt: Ids, opts: GenerateOptions): GenerateResult {
  const man = model.manifest;
  const pick = sampler(opts.temperature ?? 0, opts.seed ?? 0);
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
  } else if (man.kind === "causal-lm") {
    const entry = entryFor("forward");
    step = (ids) => model.run(entry, { ids }).logits;
    first = Array.from(prompt);
    prefillRows = prompt.length;
  } else {
    throw new Error(`a ${man.kind} model does not generate tokens`);
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
