// Speculative decoding: cheap drafts of the next tokens (a draft model of the same vocabulary, or
// prompt lookup: the tokens that followed an earlier occurrence of the last n-gram), verified in
// one forward call of the target over every drafted position. Rejected positions are dropped by
// rewinding the KV caches (nothing is copied). Greedy output equals the target's greedy ids;
// sampled output follows the target's distribution (accept a draft x with min(1, p(x)/q(x)), on
// rejection draw from norm(max(0, p − q))). No Node-only imports.

import { ArtifactError, show } from "./errors.js";
import type { Model } from "./model.js";
import { Sampler, type SamplingOptions, random } from "./sampling.js";

export interface SpeculativeOptions {
  /**
   * A draft model with the target's vocabulary (e.g. an int4 copy of it), loaded separately: its
   * KV cache follows the generated sequence like the target's.
   */
  draft?: Model;
  /** Prompt lookup: draft the tokens that followed the most recent earlier match of the last N ids (N down to 1). */
  lookup?: number;
  /** Most tokens drafted per verification, 1 to 32 (default 4 with a draft model, 8 with lookup); the length adapts to the recent acceptance. */
  draftTokens?: number;
}

/** Most drafted tokens per verification: the rows a sliding window's ring buffer keeps for a rewind. */
export const MAX_DRAFT_TOKENS = 32;
/** Longest n-gram prompt lookup matches. */
export const MAX_LOOKUP = 16;

/** Whether the options ask for speculative decoding. */
export const isSpeculative = (opts: SpeculativeOptions) => opts.draft !== undefined || opts.lookup !== undefined;

/** Checks the speculative options against the target; WF510 for a bad value, WF511 for a target or draft that cannot serve. */
export function checkSpeculative(target: Model, opts: SpeculativeOptions, vocab: number, promptLength: number): void {
  const { draft, lookup, draftTokens } = opts;
  const bad = (name: string, v: unknown, want: string) => new ArtifactError("WF510", `${name} should be ${want}, got ${show(v)}`);
  if (draftTokens !== undefined) {
    if (!Number.isInteger(draftTokens) || draftTokens < 1 || draftTokens > MAX_DRAFT_TOKENS) throw bad("draftTokens", draftTokens, `an integer from 1 to ${MAX_DRAFT_TOKENS}`);
    if (!isSpeculative(opts)) throw new ArtifactError("WF510", "draftTokens needs a draft model or lookup");
  }
  if (lookup !== undefined && (!Number.isInteger(lookup) || lookup < 1 || lookup > MAX_LOOKUP)) throw bad("lookup", lookup, `an integer from 1 to ${MAX_LOOKUP}`);
  if (draft !== undefined && lookup !== undefined) throw new ArtifactError("WF510", "draft and lookup cannot be used together (pick one source of drafts)");
  if (!isSpeculative(opts)) return;
  if (target.manifest.kind !== "causal-lm") throw new ArtifactError("WF511", `speculative decoding needs a causal LM, and the target is ${target.manifest.kind === "seq2seq" ? "a seq2seq model" : "an encoder"} (${target.manifest.model})`);
  if (draft === undefined) return;
  if (typeof draft !== "object" || draft === null || typeof (draft as Model).run !== "function") throw bad("draft", draft, "a loaded Model");
  if (draft === target) throw new ArtifactError("WF510", "draft should be another Model than the target (each needs its own KV cache); load the artifact twice");
  if (draft.manifest.kind !== "causal-lm") throw new ArtifactError("WF511", `the draft model should be a causal LM, and it is ${draft.manifest.kind === "seq2seq" ? "a seq2seq model" : "an encoder"} (${draft.manifest.model})`);
  const draftVocab = draft.entry("forward").outputs[0].width;
  if (draftVocab !== vocab) throw new ArtifactError("WF510", `the draft model's vocabulary has ${draftVocab} tokens, the target's ${vocab}: a draft needs the target's vocabulary`);
  if (draft.manifest.context < promptLength) throw new ArtifactError("WF510", `the draft model's context of ${draft.manifest.context} is shorter than the prompt (${promptLength} tokens)`);
}

/**
 * The ids after the most recent earlier occurrence of the last n ids of `seq` (n from `ngram`
 * down to 1), at most `count` of them; empty when no n-gram recurs.
 */
export function lookupDraft(seq: readonly number[], ngram: number, count: number): number[] {
  const end = seq.length;
  for (let n = Math.min(ngram, end - 1); n >= 1; n--) {
    // a match starting at s: seq[s..s+n) equals the last n ids, and ids follow it
    for (let s = end - n - 1; s >= 0; s--) {
      let j = 0;
      while (j < n && seq[s + j] === seq[end - n + j]) j++;
      if (j === n) return seq.slice(s + n, Math.min(s + n + count, end));
    }
  }
  return [];
}

/** A distribution as Sampler.distribution gives it: candidate ids and their probabilities. */
type Dist = { ids: Int32Array; probs: Float64Array };

/** Rounds the acceptance rate is measured over. */
const RECENT = 8;

/**
 * Drafts and verifies: holds the generated sequence, the target's last unconsumed row of logits
 * (after prefill) or the pending id (the last confirmed one, not yet in the target's cache), and
 * the draft model's cache in step with the sequence.
 */
export class Speculator {
  /** Drafted tokens verified, and those the target accepted. */
  drafted = 0;
  accepted = 0;
  private readonly seq: number[];
  private readonly promptLength: number;
  private readonly vocab: number;
  private readonly maxDraft: number;
  private readonly greedy: boolean;
  private readonly sampler: Sampler;
  private readonly draftSampler?: Sampler;
  private readonly rand: () => number;
  /** The target's logits for the next position when no id is pending (right after prefill). */
  private head?: Float32Array;
  private readonly recent: { drafted: number; accepted: number }[] = [];
  private readonly draftEntry?: string;
  /** q scattered over the vocabulary while a residual is computed; zero otherwise. */
  private readonly qDense: Float64Array;
  /** The target's entry for one row (its last-row variant where it has one): a round without drafts is a plain decode step. */
  private readonly stepEntry: string;
  /** Logits of the verify calls and of the draft's single steps, reused (a fresh array's first touch costs more than the copy). */
  private verifyLogits = new Float32Array(0);
  private readonly draftLogits: Float32Array;

  constructor(
    private readonly target: Model,
    private readonly opts: SpeculativeOptions & SamplingOptions,
    prompt: readonly number[],
    sampler: Sampler,
  ) {
    this.seq = prompt.slice();
    this.promptLength = prompt.length;
    this.vocab = sampler.vocab;
    this.sampler = sampler;
    this.maxDraft = opts.draftTokens ?? (opts.draft ? 4 : 8);
    this.greedy = (opts.temperature ?? 0) === 0 || opts.topK === 1;
    this.rand = random(opts.seed ?? 0);
    if (opts.draft) {
      const man = opts.draft.manifest;
      this.draftEntry = man.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
      this.draftSampler = new Sampler(opts, this.vocab);
    }
    this.qDense = new Float64Array(this.vocab);
    this.draftLogits = new Float32Array(opts.draft ? this.vocab : 0);
    this.stepEntry = target.manifest.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
  }

  /**
   * Runs the prompt's ids not in the target's cache (`feed`, at least one) through the target,
   * keeping the last row for the first token, and brings the draft's cache to the prompt.
   */
  prefill(feed: number[]): void {
    const logits = this.target.run(this.stepEntry, { ids: feed }).logits;
    this.head = logits.slice(logits.length - this.vocab);
    const draft = this.opts.draft;
    if (draft) {
      // the draft holds all but the last prompt id: its first round feeds that one
      this.syncDraft(this.seq.length - 1, false);
    }
  }

  /**
   * Rewinds the draft to its longest prefix in common with seq[0..upTo) and runs the rest: at
   * least one id when `logits` is asked for, whose row it returns.
   */
  private syncDraft(upTo: number, logits: true): Float32Array;
  private syncDraft(upTo: number, logits: false): void;
  private syncDraft(upTo: number, logits: boolean): Float32Array | void {
    const draft = this.opts.draft!;
    const common = keepPrefix(draft, this.seq, logits ? upTo - 1 : upTo);
    if (common === upTo) return;
    const out = draft.run(this.draftEntry!, { ids: this.seq.slice(common, upTo) }).logits;
    return out.subarray(out.length - this.vocab);
  }

  /** Drafts to verify next: this many at most, from the recent acceptance rate. */
  private draftLength(room: number): number {
    let k = this.maxDraft;
    const d = this.recent.reduce((a, r) => a + r.drafted, 0);
    if (d > 0) {
      // the chance that every one of k drafts is accepted, α^k, kept above 1/5: drafts past that point are mostly wasted
      const alpha = (this.recent.reduce((a, r) => a + r.accepted, 0) + 0.5) / (d + 1);
      k = alpha >= 1 ? this.maxDraft : Math.max(1, Math.ceil(Math.log(0.2) / Math.log(alpha)));
    }
    // rows of the verify call, the pending id included, must fit the target's context; one token always comes from the verify itself
    const pending = this.head ? 0 : 1;
    k = Math.min(k, this.maxDraft, room - 1, this.target.manifest.context - this.target.past - pending);
    // LongRoPE picks its table by a call's sequence length: a verify crossing `original` would
    // rotate its first rows otherwise than single steps do, so it stops there
    const cfg = this.target.manifest.config;
    if (cfg.rope_type === "longrope" && typeof cfg.original === "number") {
      const start = this.target.past, original = cfg.original;
      if (start < original && start + pending + k > original) k = original - start - pending;
    }
    if (this.opts.draft) k = Math.min(k, this.opts.draft.manifest.context - this.seq.length + 1);
    return Math.max(0, k);
  }

  /**
   * One round: drafts up to `room − 1` tokens, verifies them in one call of the target, and
   * returns the confirmed ids (1 to room): the accepted drafts and one token of the target's.
   */
  next(room: number): number[] {
    const k = this.draftLength(room);
    const { drafts, q } = this.opts.draft ? this.draftModel(k) : { drafts: lookupDraft(this.seq, this.opts.lookup!, k), q: undefined };
    // the target's rows: the pending id (the last of seq) unless the head row stands for it, then the drafts
    const head = this.head;
    this.head = undefined;
    const feed = head ? drafts : [this.seq[this.seq.length - 1], ...drafts];
    const base = this.target.past;
    if (this.verifyLogits.length < feed.length * this.vocab) this.verifyLogits = new Float32Array(feed.length * this.vocab);
    const logits = feed.length ? this.target.run(feed.length === 1 ? this.stepEntry : "forward", { ids: feed }, { logits: this.verifyLogits }).logits : undefined;
    // the distribution after the pending id and i drafts
    const shift = head ? 1 : 0;
    const rowOf = (i: number) => (head && i === 0 ? head : logits!.subarray((i - shift) * this.vocab, (i - shift + 1) * this.vocab));
    const out: number[] = [];
    let n = 0;
    for (; n < drafts.length; n++) {
      const p = this.sampler.distribution(rowOf(n));
      const x = drafts[n];
      const px = probOf(p, x);
      const qx = q ? probOf(q[n], x) : 1;
      // accept with probability min(1, p/q); greedy distributions are 0 or 1, so no draw decides
      const ok = this.greedy ? px > 0 : px >= qx || this.rand() * qx < px;
      if (!ok) {
        out.push(this.residual(p, q ? q[n] : undefined, x));
        break;
      }
      out.push(x);
      this.sampler.accept(x);
    }
    if (n === drafts.length) out.push(this.draw(this.sampler.distribution(rowOf(n))));
    this.sampler.accept(out[out.length - 1]);
    this.drafted += drafts.length;
    this.accepted += n;
    if (drafts.length) {
      this.recent.push({ drafted: drafts.length, accepted: n });
      if (this.recent.length > RECENT) this.recent.shift();
    }
    // keep the rows of the pending id and the accepted drafts; the new last id is pending
    if (logits) this.target.rewind(base + (head ? 0 : 1) + n);
    this.seq.push(...out);
    return out;
  }

  /** k drafts from the draft model and the distribution each was drawn from. */
  private draftModel(k: number): { drafts: number[]; q: Dist[] } {
    const drafts: number[] = [];
    const q: Dist[] = [];
    if (k === 0) return { drafts, q };
    const draft = this.opts.draft!;
    const s = this.draftSampler!;
    this.resetDraftSampler();
    let row = this.syncDraft(this.seq.length, true);
    for (let i = 0; i < k; i++) {
      const d = s.distribution(row);
      const x = this.draw(d);
      drafts.push(x);
      q.push(d);
      if (i + 1 < k) {
        s.accept(x);
        row = draft.run(this.draftEntry!, { ids: [x] }, { logits: this.draftLogits }).logits;
      }
    }
    return { drafts, q };
  }

  /** The draft sampler's state back to the confirmed sequence (penalties count what was generated). */
  private resetDraftSampler() {
    const s = this.draftSampler;
    if (!s) return;
    s.reset(this.seq.slice(0, this.promptLength));
    for (let i = this.promptLength; i < this.seq.length; i++) s.accept(this.seq[i]);
  }

  /** A draw from d: its only id when greedy. */
  private draw(d: Dist): number {
    if (d.ids.length === 1) return d.ids[0];
    let u = this.rand();
    for (let i = 0; i < d.ids.length - 1; i++) if ((u -= d.probs[i]) < 0) return d.ids[i];
    return d.ids[d.ids.length - 1];
  }

  /** A draw from norm(max(0, p − q)) after the draft x was rejected (q: a point mass on x for lookup drafts). */
  private residual(p: Dist, q: Dist | undefined, x: number): number {
    if (this.greedy) return p.ids[0];
    const qd = this.qDense;
    if (q) for (let i = 0; i < q.ids.length; i++) qd[q.ids[i]] = q.probs[i];
    else qd[x] = 1;
    const r = new Float64Array(p.ids.length);
    let sum = 0;
    for (let i = 0; i < p.ids.length; i++) sum += r[i] = Math.max(0, p.probs[i] - qd[p.ids[i]]);
    if (q) for (let i = 0; i < q.ids.length; i++) qd[q.ids[i]] = 0;
    else qd[x] = 0;
    // p ≤ q everywhere only up to rounding: then p itself
    if (!(sum > 0)) return this.draw(p);
    let u = this.rand() * sum, last = 0;
    for (let i = 0; i < p.ids.length; i++) {
      if (r[i] === 0) continue;
      if ((u -= r[i]) < 0) return p.ids[i];
      last = i;
    }
    return p.ids[last];
  }

  /**
   * Leaves the caches holding the prompt and every emitted id but the last (`emitted` of the
   * confirmed ids were passed on), as plain decoding leaves them.
   */
  finish(emitted: number): void {
    const rows = this.promptLength + Math.max(0, emitted - 1);
    keepPrefix(this.target, this.seq, rows);
    if (this.opts.draft) keepPrefix(this.opts.draft, this.seq, rows);
  }
}

/**
 * Rewinds `m` to its longest cached prefix of seq[0..upTo), or resets it where a sliding
 * window's cache no longer holds what that prefix needs; the rows kept.
 */
function keepPrefix(m: Model, seq: readonly number[], upTo: number): number {
  let common = 0;
  const limit = Math.min(m.tokens.length, upTo);
  while (common < limit && m.tokens[common] === seq[common]) common++;
  if (common < m.past && !m.canRewind(common)) common = 0;
  if (common < m.past) m.rewind(common);
  return common;
}

/** p(x) of a distribution given by its candidates. */
function probOf(d: Dist, x: number): number {
  for (let i = 0; i < d.ids.length; i++) if (d.ids[i] === x) return d.probs[i];
  return 0;
}
