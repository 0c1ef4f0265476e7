// Encoder task heads as transformers' pipelines use them: token classification (a label for every
// token, and B-/I- tags grouped into entities as aggregation_strategy "simple" groups them),
// extractive question answering (the best span of the context, long contexts in overlapping
// windows) and fill-mask (the likeliest tokens for each mask). No Node-only imports.

import { callGroups } from "./embed.js";
import { ArtifactError, show } from "./errors.js";
import type { Ids, Model, RunInputs } from "./model.js";
import type { TextTokenizer } from "./tokenizer.js";

/** One token of a token classifier's input. */
export interface TokenTag {
  /** Position in the sequence. */
  index: number;
  id: number;
  /** The token as the vocabulary writes it ("##ing", "Ġthe"), with a tokenizer that can say. */
  word?: string;
  /** The likeliest label (config.json id2label) and its probability (softmax over the labels). */
  entity: string;
  score: number;
  /** The probability of every label, by index. */
  scores: number[];
  /** A token the tokenizer's post-processor added ([CLS], [SEP], <s>, </s>), which the pipeline leaves out; only known for a text. */
  special: boolean;
}

/** Tokens of one entity: adjacent tags of one type, a B- tag starting a new one. */
export interface Entity {
  /** The type, without its B-/I- prefix ("PER"). */
  entity_group: string;
  /** Mean of the tokens' scores. */
  score: number;
  /** The tokens decoded by the tokenizer (without one, their vocabulary strings joined by spaces). */
  word: string;
  /** Positions of the tokens in the sequence. */
  tokens: number[];
}

/**
 * The label of every token of a text (through the tokenizer, with its special tokens) or of ids,
 * from a token classifier (`*ForTokenClassification`): softmax over the labels and the likeliest,
 * as transformers' token-classification pipeline scores them before aggregation. A list of inputs
 * gives a list of results, the inputs packed into calls as `embed` packs them.
 */
export function classifyTokens(model: Model, input: string | Ids | RunInputs, opts?: { tokenizer?: TextTokenizer }): TokenTag[];
export function classifyTokens(model: Model, inputs: readonly (string | Ids | RunInputs)[], opts?: { tokenizer?: TextTokenizer }): TokenTag[][];
export function classifyTokens(model: Model, input: string | Ids | RunInputs | readonly (string | Ids | RunInputs)[], opts: { tokenizer?: TextTokenizer } = {}): TokenTag[] | TokenTag[][] {
  const man = model.manifest;
  const entry = man.entries[0];
  const out = entry.outputs.find((o) => o.name === "token_logits");
  if (man.kind !== "encoder" || !out || !man.classifier) throw new ArtifactError("WF511", `classifyTokens: this artifact (${man.model}) has no token-classification head`);
  const { tokenizer } = opts;
  const batch = isBatch(input);
  if (batch && input.length === 0) throw new ArtifactError("WF510", "classifyTokens: inputs should be a non-empty list of texts or id sequences, got []");
  const list = batch ? input : [input];
  const prepared = list.map((x, n) => {
    if (typeof x !== "string") return { inputs: isRunInputs(x) ? x : { ids: x }, special: new Set<number>() };
    if (!tokenizer) throw new ArtifactError("WF510", `classifyTokens: ${batch ? `inputs[${n}]` : "input"} should be token ids (a text needs a tokenizer), got ${show(x)}`);
    const ids = tokenizer.encode(x);
    return { inputs: { ids }, special: added(ids, tokenizer.encode(x, { addSpecialTokens: false })) };
  });
  const labels = man.classifier.labels;
  const tagsOf = ({ inputs, special }: (typeof prepared)[number], logits: Float32Array): TokenTag[] =>
    Array.from(inputs.ids, (id, i) => {
      const scores = softmax(logits.subarray(i * out.width, (i + 1) * out.width));
      const best = argmax(scores);
      const word = tokenizer?.idToToken?.(id);
      return { index: i, id, ...(word !== undefined ? { word } : {}), entity: labels[best] ?? `LABEL_${best}`, score: scores[best], scores, special: special.has(i) };
    });
  const all = runAll(model, entry.name, prepared.map((p) => p.inputs), (r, n) => tagsOf(prepared[n], r[out.name]));
  return batch ? all : all[0];
}

/**
 * Entities of tagged tokens as the token-classification pipeline's aggregation_strategy "simple"
 * makes them: special tokens left out, adjacent tokens of one type merged unless the later is a
 * B- tag (a tag with neither prefix continues), the score the mean, and groups of
 * `ignoreLabels` (default ["O"]) dropped.
 */
export function groupEntities(tags: readonly TokenTag[], opts: { tokenizer?: TextTokenizer; ignoreLabels?: readonly string[] } = {}): Entity[] {
  const { tokenizer, ignoreLabels = ["O"] } = opts;
  const tagOf = (entity: string): [bi: string, type: string] => (entity.startsWith("B-") || entity.startsWith("I-") ? [entity[0], entity.slice(2)] : ["I", entity]);
  const groups: TokenTag[][] = [];
  for (const t of tags) {
    if (t.special) continue;
    const last = groups.at(-1)?.at(-1);
    const [bi, type] = tagOf(t.entity);
    if (last && type === tagOf(last.entity)[1] && bi !== "B") groups.at(-1)!.push(t);
    else groups.push([t]);
  }
  return groups
    .map((g) => ({
      // as the pipeline: the first token's label after its last '-'
      entity_group: g[0].entity.split("-").at(-1)!,
      score: g.reduce((a, t) => a + t.score, 0) / g.length,
      word: tokenizer ? tokenizer.decode(g.map((t) => t.id)) : g.map((t) => t.word ?? String(t.id)).join(" "),
      tokens: g.map((t) => t.index),
    }))
    .filter((e) => !ignoreLabels.includes(e.entity_group));
}

/** A span of the context answering the question. */
export interface Answer {
  /** The span's tokens decoded. */
  answer: string;
  /** P(start) · P(end), each a softmax over one window's context tokens and its first special token. */
  score: number;
  /** Positions of the span's first and last token among the context's tokens. */
  first: number;
  last: number;
}

export interface AnswerOptions {
  /** Answers to return, best first (default 1). */
  topK?: number;
  /** Most tokens in an answer (default 15). */
  maxAnswerLen?: number;
  /** Most tokens in one window of question and context (default 384, at most the artifact's context). */
  maxSeqLen?: number;
  /** Tokens shared by consecutive windows of a long context (default min(128, maxSeqLen / 2)). */
  docStride?: number;
}

/**
 * The best span of `context` answering `question`, from an extractive QA model
 * (`*ForQuestionAnswering`), as transformers' question-answering pipeline finds it: the pair
 * encoded as the tokenizer's post-processor joins it, a context too long for `maxSeqLen` split
 * into windows overlapping by `docStride` tokens; in each window, start and end logits outside
 * the context (but for the first special token, [CLS] or <s>) are left out of the softmax, and
 * the span maximises P(start) · P(end) with start ≤ end < start + maxAnswerLen. The pair's segment
 * ids go in where the model has token types to tell them apart (BERT's); a table of one
 * (RoBERTa's type_vocab_size 1, whose tokenizer gives the model none) gets zeros. The pipeline cuts
 * the answer's text from the context by character offsets, widened to whole words; tokenizers.js
 * gives no offsets, so `answer` is the span's tokens decoded (lower case for an uncased vocabulary).
 */
export function answer(model: Model, tokenizer: TextTokenizer, question: string, context: string, opts: Omit<AnswerOptions, "topK"> = {}): Answer {
  return answers(model, tokenizer, question, context, { ...opts, topK: 1 })[0];
}

/** The `topK` best spans answering `question` (see answer()), best first. */
export function answers(model: Model, tokenizer: TextTokenizer, question: string, context: string, opts: AnswerOptions = {}): Answer[] {
  const man = model.manifest;
  const entry = man.entries[0];
  const [startOut, endOut] = ["start_logits", "end_logits"].map((n) => entry.outputs.find((o) => o.name === n && o.width === 1));
  if (man.kind !== "encoder" || !startOut || !endOut) throw new ArtifactError("WF511", `answer: this artifact (${man.model}) has no question-answering head`);
  const bad = (what: string, v: unknown, want: string) => new ArtifactError("WF510", `answer: ${what} should be ${want}, got ${show(v)}`);
  const maxSeqLen = opts.maxSeqLen ?? Math.min(384, man.context);
  const { topK = 1, maxAnswerLen = 15, docStride = Math.min(128, Math.floor(maxSeqLen / 2)) } = opts;
  for (const [k, v, lo] of [["topK", topK, 1], ["maxAnswerLen", maxAnswerLen, 1], ["maxSeqLen", maxSeqLen, 2], ["docStride", docStride, 0]] as const)
    if (!Number.isSafeInteger(v) || v < lo) throw bad(k, v, `an integer of at least ${lo}`);
  if (maxSeqLen > man.context) throw bad("maxSeqLen", maxSeqLen, `at most the artifact's context, ${man.context}`);
  if (typeof question !== "string" || !question.trim()) throw bad("question", question, "a non-empty text");
  if (typeof context !== "string" || !context.trim()) throw bad("context", context, "a non-empty text");
  if (!tokenizer?.encodePair) throw new ArtifactError("WF510", "answer: the tokenizer should encode pairs of texts (loadTokenizer's does)");

  // the pair's ids: what comes before the context's tokens (special tokens and the question) and after them
  const pair = tokenizer.encodePair(question, context);
  const ctx = tokenizer.encode(context, { addSpecialTokens: false });
  const q = tokenizer.encode(question, { addSpecialTokens: false });
  const at = lastRun(pair.ids, ctx);
  if (at < 0 || !ctx.length) throw new ArtifactError("WF510", "answer: the context's tokens are not found in the encoded pair (a tokenizer whose post-processor changes them)");
  const before = { ids: pair.ids.slice(0, at), segments: pair.segments.slice(0, at) };
  const after = { ids: pair.ids.slice(at + ctx.length), segments: pair.segments.slice(at + ctx.length) };
  const ctxSegments = pair.segments.slice(at, at + ctx.length);
  const typed = (entry.inputs.find((i) => i.kind === "segments")?.limit ?? 1) > 1;
  // the first token stays in the softmax when the post-processor put it there ([CLS], <s>)
  const firstSpecial = before.ids.length > 0 && firstRun(pair.ids, q) !== 0;
  const budget = maxSeqLen - before.ids.length - after.ids.length;
  if (budget < 1) throw bad("maxSeqLen", maxSeqLen, `more than the question's ${before.ids.length + after.ids.length} tokens with the special ones`);
  if (docStride >= budget) throw bad("docStride", docStride, `less than the ${budget} context tokens a window of maxSeqLen ${maxSeqLen} holds`);

  // the windows, run side by side where the artifact packs sequences
  const windows: { a: number; b: number; inputs: RunInputs }[] = [];
  for (let a = 0; ; a += budget - docStride) {
    const b = Math.min(a + budget, ctx.length);
    const ids = [...before.ids, ...ctx.slice(a, b), ...after.ids];
    const segments = [...before.segments, ...ctxSegments.slice(a, b), ...after.segments];
    windows.push({ a, b, inputs: typed ? { ids, segments } : { ids } });
    if (b === ctx.length) break;
  }
  const found: Answer[] = [];
  const logits = runAll(model, entry.name, windows.map((w) => w.inputs), (r) => [r[startOut.name], r[endOut.name]]);
  for (const [n, { a, b }] of windows.entries()) {
    const [start, end] = logits[n];
    const from = before.ids.length, to = from + b - a;
    const kept = (i: number) => (i >= from && i < to) || (i === 0 && firstSpecial);
    const ps = softmax(start, kept), pe = softmax(end, kept);
    ps[0] = pe[0] = 0;
    const spans: Answer[] = [];
    for (let s = from; s < to; s++)
      for (let e = s; e < Math.min(to, s + maxAnswerLen); e++) spans.push({ answer: "", score: ps[s] * pe[e], first: a + s - from, last: a + e - from });
    spans.sort((x, y) => y.score - x.score || x.first - y.first || x.last - y.last);
    found.push(...spans.slice(0, topK));
  }
  return found
    .sort((x, y) => y.score - x.score)
    .slice(0, topK)
    .map((s) => ({ ...s, answer: tokenizer.decode(ctx.slice(s.first, s.last + 1), { skipSpecialTokens: true }) }));
}

/** One prediction for a mask. */
export interface MaskFill {
  /** Softmax probability over the vocabulary. */
  score: number;
  token: number;
  /** The token decoded. */
  token_str: string;
  /** The text's ids with the mask replaced, decoded (special tokens skipped when the text has one mask). */
  sequence: string;
}

/**
 * The `topK` (default 5) likeliest tokens for each mask of `text`, one list per mask in order, from
 * a masked LM (`*ForMaskedLM`), as transformers' fill-mask pipeline gives them. The mask is
 * `maskToken`, else tokenizer_config.json's, else "[MASK]" (BERT's) or "<mask>" (RoBERTa's),
 * whichever the vocabulary holds. A list of texts gives a list of results, the texts packed into
 * calls as `embed` packs them.
 */
export function fillMask(model: Model, tokenizer: TextTokenizer, text: string, opts?: { topK?: number; maskToken?: string }): MaskFill[][];
export function fillMask(model: Model, tokenizer: TextTokenizer, texts: readonly string[], opts?: { topK?: number; maskToken?: string }): MaskFill[][][];
export function fillMask(model: Model, tokenizer: TextTokenizer, text: string | readonly string[], opts: { topK?: number; maskToken?: string } = {}): MaskFill[][] | MaskFill[][][] {
  const man = model.manifest;
  const entry = man.entries[0];
  const out = entry.outputs.find((o) => o.name === "logits" && o.rows === "S");
  if (man.kind !== "encoder" || !out) throw new ArtifactError("WF511", `fillMask: this artifact (${man.model}) has no masked-LM head`);
  const { topK = 5 } = opts;
  if (!Number.isSafeInteger(topK) || topK < 1) throw new ArtifactError("WF510", `fillMask: topK should be a positive integer, got ${show(topK)}`);
  const batch = Array.isArray(text);
  if (batch && text.length === 0) throw new ArtifactError("WF510", "fillMask: texts should be a non-empty list of strings, got []");
  const texts: readonly unknown[] = batch ? text : [text];
  texts.forEach((t, n) => {
    if (typeof t !== "string") throw new ArtifactError("WF510", `fillMask: ${batch ? `texts[${n}]` : "text"} should be a string, got ${show(t)}`);
  });
  if (!tokenizer?.tokenToId) throw new ArtifactError("WF510", "fillMask: the tokenizer should map tokens to ids (loadTokenizer's does)");
  const mask = opts.maskToken ?? tokenizer.maskToken ?? ["[MASK]", "<mask>"].find((t) => tokenizer.tokenToId!(t) !== undefined);
  const maskId = mask === undefined ? undefined : tokenizer.tokenToId(mask);
  if (maskId === undefined) throw new ArtifactError("WF510", `fillMask: ${mask === undefined ? "the tokenizer has no mask token (pass maskToken)" : `the mask token ${show(mask)} is not in the vocabulary`}`);
  const encoded = (texts as string[]).map((t) => {
    const ids = tokenizer.encode(t);
    const masks = ids.flatMap((id, i) => (id === maskId ? [i] : []));
    if (!masks.length) throw new ArtifactError("WF510", `fillMask: the text has no mask token (${mask}), got ${show(t)}`);
    return { ids, masks };
  });
  const fills = ({ ids, masks }: (typeof encoded)[number], logits: Float32Array): MaskFill[][] =>
    masks.map((m) => {
      const probs = softmax(logits.subarray(m * out.width, (m + 1) * out.width));
      const top = Array.from(probs.keys()).sort((x, y) => probs[y] - probs[x] || x - y).slice(0, topK);
      return top.map((token) => {
        const filled = ids.slice();
        filled[m] = token;
        return { score: probs[token], token, token_str: tokenizer.decode([token]), sequence: tokenizer.decode(filled, { skipSpecialTokens: masks.length === 1 }) };
      });
    });
  const all = runAll(model, entry.name, encoded.map((e) => ({ ids: e.ids })), (r, n) => fills(encoded[n], r[out.name]));
  return batch ? all : all[0];
}

/**
 * What `keep` makes of each input's outputs of `entry` (a call's outputs go before the next call
 * runs), the inputs packed into calls (callGroups).
 */
function runAll<T>(model: Model, entry: string, inputs: readonly RunInputs[], keep: (r: Record<string, Float32Array>, n: number) => T): T[] {
  const out: T[] = [];
  for (const group of callGroups(model, entry, inputs)) {
    model.reset();
    for (const r of model.runSequences(entry, group)) out.push(keep(r, out.length));
  }
  return out;
}

/** Softmax in float64 over the positions `kept` takes (all by default); the others get 0. */
function softmax(x: ArrayLike<number>, kept: (i: number) => boolean = () => true): number[] {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (kept(i)) m = Math.max(m, x[i]);
  const e = Array.from(x, (v, i) => (kept(i) ? Math.exp(v - m) : 0));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const argmax = (xs: readonly number[]) => xs.reduce((best, v, i) => (v > xs[best] ? i : best), 0);

/** Where `run` begins in `ids` at its first occurrence (-1 if none, 0 for an empty run). */
function firstRun(ids: readonly number[], run: readonly number[]): number {
  for (let i = 0; i + run.length <= ids.length; i++) if (run.every((v, j) => ids[i + j] === v)) return i;
  return -1;
}

/** Where `run` begins in `ids` at its last occurrence (-1 if none). */
function lastRun(ids: readonly number[], run: readonly number[]): number {
  for (let i = ids.length - run.length; i >= 0; i--) if (run.every((v, j) => ids[i + j] === v)) return i;
  return -1;
}

/** Positions of `ids` outside the first run of `core` (the text's ids alone): the tokens a post-processor added (none known if it changed the run). */
function added(ids: readonly number[], core: readonly number[]): Set<number> {
  const at = firstRun(ids, core);
  return new Set(ids.map((_, i) => i).filter((i) => at >= 0 && (i < at || i >= at + core.length)));
}

/** A list of inputs, not one input's ids (an array of numbers). */
const isBatch = <T>(v: T | readonly T[]): v is readonly T[] => Array.isArray(v) && (v.length === 0 || typeof v[0] !== "number");

const isRunInputs = (v: Ids | RunInputs): v is RunInputs => typeof v === "object" && v !== null && !("length" in v) && "ids" in v;
