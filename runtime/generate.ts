// Token generation on a loaded model: a stream of tokens and the text they complete, with
// logits processing and sampling (sampling.ts), stop conditions (end-of-sequence ids, stop
// strings, a length, an AbortSignal), and reuse of the KV cache across calls. Generation yields
// to the event loop between tokens, so a page keeps painting and a server keeps serving.

import { TextStream, StopMatcher } from "./detokenize.js";
import { ArtifactError, show } from "./errors.js";
import { type Ids, Model } from "./model.js";
import { Sampler, type SamplingOptions, checkSampling } from "./sampling.js";
import { type SpeculativeOptions, Speculator, checkSpeculative, isSpeculative } from "./speculative.js";
import type { TextTokenizer } from "./tokenizer.js";

export { argmax } from "./sampling.js";

export interface GenerateOptions extends SamplingOptions, SpeculativeOptions {
  /** Most tokens to generate (default 32). */
  maxNewTokens?: number;
  /** Stop after an end-of-sequence token (default true); `eos` overrides the artifact's list. */
  stopAtEos?: boolean;
  eos?: number[];
  /** Stop strings, matched across tokens and left out of the text (needs `tokenizer`). */
  stop?: string[];
  /** Turns ids into text: chunks and the result then carry `text`. */
  tokenizer?: TextTokenizer;
  /** Stops the generation within one token; the model stays usable. */
  signal?: AbortSignal;
  /** Called with each generated id (the stream API is the richer form). */
  onToken?: (id: number) => void;
}

export type StopReason = "eos" | "stop" | "length" | "context" | "abort";

export interface GenerateChunk {
  id: number;
  /** The text this id completes (empty while a character or a possible stop string is incomplete). */
  text: string;
}

export interface GenerateResult {
  /** Generated ids only (not the prompt), the end-of-sequence id included when one ended it. */
  ids: number[];
  /** Their text, stop string excluded (with a tokenizer). */
  text?: string;
  stopReason: StopReason;
  /** Prompt tokens found in the KV cache from an earlier call, and so not computed again. */
  cachedTokens: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  /** With speculative decoding: tokens drafted and verified, and those the target accepted. */
  draftTokens?: number;
  acceptedTokens?: number;
}

const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

/** Lets the event loop run: setImmediate in Node, a message in pages (no 4 ms timer clamp). */
function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === "function") return new Promise((r) => setImmediate(r));
  if (typeof MessageChannel === "function")
    return new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        r();
      };
      ch.port2.postMessage(null);
    });
  return new Promise((r) => setTimeout(r, 0));
}

/** Checks options and the artifact's kind; WF511 for an encoder, WF510 for a bad option. */
function check(model: Model, prompt: Ids, opts: GenerateOptions, vocab: number) {
  const man = model.manifest;
  if (man.kind !== "causal-lm" && man.kind !== "seq2seq")
    throw new ArtifactError("WF511", `generate: this artifact is an ${man.kind} model (${man.model}), which computes hidden states, not tokens; use run`);
  const option = (name: string, v: unknown, ok: boolean, want: string) => {
    if (!ok) throw new ArtifactError("WF510", `generate: ${name} should be ${want}, got ${show(v)}`);
  };
  option("prompt", prompt, typeof prompt === "object" && prompt !== null && typeof prompt.length === "number" && prompt.length > 0, "a non-empty array of token ids");
  const { maxNewTokens = 32, stop = [], eos } = opts;
  option("maxNewTokens", maxNewTokens, Number.isSafeInteger(maxNewTokens) && maxNewTokens >= 0, "a non-negative integer");
  option("stop", stop, Array.isArray(stop) && stop.every((s) => typeof s === "string" && s.length > 0), "a list of non-empty strings");
  if (stop.length && !opts.tokenizer) option("stop", stop, false, "used with a tokenizer (stop strings are matched in text)");
  if (eos !== undefined) option("eos", eos, Array.isArray(eos) && eos.every((x) => Number.isInteger(x) && x >= 0), "a list of token ids");
  if (opts.signal !== undefined) option("signal", opts.signal, typeof opts.signal === "object" && opts.signal !== null && "aborted" in opts.signal, "an AbortSignal");
  try {
    checkSampling(opts, vocab);
    checkSpeculative(model, opts, vocab, prompt.length);
  } catch (e) {
    throw e instanceof ArtifactError ? new ArtifactError(e.code, `generate: ${e.message}`) : e;
  }
}

/**
 * Generates up to `maxNewTokens` ids after `prompt` (a causal LM continues it, a seq2seq model
 * encodes it and decodes from its decoder start token), yielding each id with the text it
 * completes; the generator's return value is the whole result. A causal LM keeps its KV cache
 * between calls: a prompt that starts with ids already cached prefills only the rest. With a
 * `draft` model or `lookup`, a causal LM decodes speculatively (speculative.ts), each id yielded
 * once the target has confirmed it.
 */
export async function* stream(model: Model, prompt: Ids, opts: GenerateOptions = {}): AsyncGenerator<GenerateChunk, GenerateResult, undefined> {
  const man = model.manifest;
  const seq2seq = man.kind === "seq2seq";
  const vocab = man.kind === "encoder" ? 0 : model.entry(seq2seq ? "decode" : "forward").outputs[0].width;
  check(model, prompt, opts, vocab);
  const { maxNewTokens = 32, stop = [], tokenizer, signal } = opts;
  const eos = new Set(opts.stopAtEos === false ? [] : (opts.eos ?? man.tokens?.eos ?? []));
  const sampler = new Sampler(opts, vocab);
  // an entry's `_last` variant computes the last position's logits only
  const entryFor = (name: string) => (man.entries.some((e) => e.name === `${name}_last`) ? `${name}_last` : name);
  const entry = entryFor(seq2seq ? "decode" : "forward");
  const step = (ids: ArrayLike<number>) => model.run(entry, { ids }).logits;

  if (signal?.aborted) return { ids: [], ...(tokenizer ? { text: "" } : {}), stopReason: "abort", cachedTokens: 0, prefillTokensPerS: 0, decodeTokensPerS: 0 };
  const t0 = now();
  let feed: number[];
  let cached = 0;
  if (seq2seq) {
    model.reset();
    const enc = model.run("encode", { ids: prompt });
    model.setState("hidden", enc.hidden);
    feed = [man.tokens?.decoder_start ?? 0];
  } else {
    // reuse the longest common prefix of the cache and the prompt, keeping one token to feed
    const ids = Array.from(prompt);
    let common = 0;
    while (common < Math.min(model.tokens.length, ids.length - 1) && model.tokens[common] === ids[common]) common++;
    // (a sliding window's cache may have dropped the keys the prefix's end needs: start over)
    if (common < model.past && !model.canRewind(common)) common = 0;
    if (common < model.past) model.rewind(common);
    cached = common;
    feed = ids.slice(common);
  }
  sampler.reset(seq2seq ? [] : prompt);
  // where confirmed ids come from: a decode step and a draw each, or speculative rounds of several
  const speculator = isSpeculative(opts) ? new Speculator(model, opts, Array.from(prompt), sampler) : undefined;
  let logits: Float32Array | undefined;
  let last = -1;
  // transformers' ForcedBOS/ForcedEOS logits processors (seq2seq): every other logit of the first
  // generated id, or of the last one maxNewTokens allows (EOS first), becomes -inf and theirs 0
  let drawn = 0;
  const forced = (row: Float32Array): Float32Array => {
    const t = man.tokens, n = drawn++;
    const only = !seq2seq || !t ? undefined : n === maxNewTokens - 1 && t.forced_eos ? t.forced_eos : n === 0 && t.forced_bos !== undefined ? [t.forced_bos] : undefined;
    if (!only) return row;
    const out = new Float32Array(row.length).fill(-Infinity);
    for (const id of only) out[id] = 0;
    return out;
  };
  const next = (room: number): number[] => {
    if (speculator) return speculator.next(room);
    if (last >= 0) logits = step([last]);
    last = sampler.next(forced(logits!.subarray(logits!.length - vocab)));
    sampler.accept(last);
    return [last];
  };
  if (speculator) speculator.prefill(feed);
  else logits = step(feed);
  const text = tokenizer ? new TextStream(tokenizer, eos) : undefined;
  const stops = new StopMatcher(stop);
  let out = "";
  const ids: number[] = [];
  let reason: StopReason = "length";
  let batch: number[] = [];
  let at = 0;
  const t1 = now();
  try {
    while (ids.length < maxNewTokens) {
      if (signal?.aborted) {
        reason = "abort";
        break;
      }
      if (at === batch.length) {
        batch = next(maxNewTokens - ids.length);
        at = 0;
      }
      const id = batch[at++];
      ids.push(id);
      opts.onToken?.(id);
      let chunk = "";
      if (text) {
        chunk = stops.push(text.push(id));
        out += chunk;
      }
      // the cache holds the prompt and every id but this one: one more row must fit to go on
      const rows = seq2seq ? model.past : prompt.length + ids.length - 1;
      if (eos.has(id)) reason = "eos";
      else if (stops.stopped) reason = "stop";
      else if (ids.length === maxNewTokens) reason = "length";
      else if (rows + 1 > man.context) reason = "context";
      const done = reason !== "length" || ids.length === maxNewTokens;
      if (done && text && reason !== "stop") {
        // the end: what was held back for a possible stop string or an incomplete character
        const tail = stops.push(text.flush()) + stops.flush();
        chunk += tail;
        out += tail;
      }
      yield { id, text: chunk };
      if (done) break;
      await yieldToEventLoop();
    }
  } finally {
    // confirmed ids past the last one emitted leave the caches
    speculator?.finish(ids.length);
  }
  if (text && reason === "abort") out += stops.push(text.flush()) + stops.flush();
  const t2 = now();
  const decoded = Math.max(0, ids.length - 1);
  return {
    ids,
    ...(text ? { text: out } : {}),
    stopReason: reason,
    cachedTokens: cached,
    prefillTokensPerS: feed.length / ((t1 - t0) / 1000),
    decodeTokensPerS: decoded ? decoded / ((t2 - t1) / 1000) : 0,
    ...(speculator ? { draftTokens: speculator.drafted, acceptedTokens: speculator.accepted } : {}),
  };
}

/** Runs `stream` to the end and returns its result. */
export async function generate(model: Model, prompt: Ids, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const it = stream(model, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
