// Encoders as applications call them: sentence embeddings as sentence-transformers computes them
// (the last hidden states pooled — mean over the tokens, the first token's or the last token's —
// and optionally L2-normalized), and a sequence classifier's labels with scores, as transformers'
// text-classification pipeline gives them. No Node-only imports.

import { ArtifactError, show } from "./errors.js";
import type { Manifest } from "./manifest.js";
import type { Ids, Model, RunInputs } from "./model.js";
import type { TextTokenizer } from "./tokenizer.js";

export type Pooling = "mean" | "cls" | "last";

export interface EmbedOptions {
  /** "mean" (default): the average over the sequence's tokens; "cls": the first token's; "last": the last token's. */
  pooling?: Pooling;
  /** Scale each embedding to unit L2 norm (default false). */
  normalize?: boolean;
  /** Turns texts into ids (with the tokenizer's special tokens, e.g. [CLS] … [SEP]); ids need none. */
  tokenizer?: TextTokenizer;
}

const POOLINGS: Pooling[] = ["mean", "cls", "last"];

/**
 * One embedding per input (a text, a sequence of ids, or {ids, segments}). The inputs may differ in length: each
 * runs as its own sequence, so no padding enters the pooling and a batch gives exactly what
 * one-by-one calls give. Where the artifact has the entry's packed form (the pack-sequences
 * pass), as many inputs run in one call as its context holds (Model.runSequences): short
 * sentences then share the matrix kernels' rows. Yields to the event loop between calls.
 */
export async function embed(model: Model, inputs: readonly (string | Ids | RunInputs)[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
  const man = model.manifest;
  if (man.kind !== "encoder") throw new ArtifactError("WF511", `embed: this artifact is a ${man.kind} model (${man.model}); embeddings come from an encoder`);
  const { pooling = "mean", normalize = false, tokenizer } = opts;
  const bad = (what: string, v: unknown, want: string) => new ArtifactError("WF510", `embed: ${what} should be ${want}, got ${show(v)}`);
  if (!POOLINGS.includes(pooling)) throw bad("pooling", pooling, POOLINGS.map((p) => JSON.stringify(p)).join(", "));
  if (typeof normalize !== "boolean") throw bad("normalize", normalize, "true or false");
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad("inputs", inputs, "a non-empty list of texts or id sequences");
  const entry = man.entries[0];
  const output = entry.outputs.find((o) => o.name === "hidden") ?? entry.outputs[0];
  const width = output.width;
  const out: Float32Array[] = [];
  for await (const r of outputsOf(model, entry.name, inputs.map((_, n) => runInputs("embed", inputs, n, tokenizer)))) out.push(pool(r[output.name], width, pooling, normalize));
  return out;
}

/**
 * Each input's outputs of an encoder entry, in order, a call at a time (callGroups), yielding to
 * the event loop between calls.
 */
async function* outputsOf(model: Model, entry: string, all: RunInputs[]): AsyncGenerator<Record<string, Float32Array>> {
  let first = true;
  for (const group of callGroups(model, entry, all)) {
    if (!first) await breath();
    first = false;
    model.reset();
    yield* model.runSequences(entry, group);
  }
}

/**
 * `all` cut into the groups of consecutive inputs that run as one call of `entry`: as many as
 * its context holds where the artifact has the entry's packed form (Model.runSequences), else
 * one a group.
 */
export function* callGroups(model: Model, entry: string, all: readonly RunInputs[]): Generator<RunInputs[]> {
  const packs = model.manifest.entries.some((e) => e.name === `${entry}_packed`);
  // (runSequences checks the inputs: a malformed one counts 0 rows here)
  const length = (n: number) => {
    const k = (all[n]?.ids as { length?: unknown } | null | undefined)?.length;
    return typeof k === "number" ? k : 0;
  };
  for (let n = 0, rows = 0, first = 0; n < all.length; n++) {
    rows += length(n);
    const next = n + 1 < all.length ? length(n + 1) : undefined;
    if (packs && next !== undefined && rows + next <= model.manifest.context) continue;
    yield all.slice(first, n + 1);
    (rows = 0), (first = n + 1);
  }
}

/** A sequence's last hidden states [rows, width] pooled into one embedding. */
function pool(hidden: Float32Array, width: number, pooling: Pooling, normalize: boolean): Float32Array {
  const rows = hidden.length / width;
  const v = new Float32Array(width);
  if (pooling === "mean") {
    for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) v[j] += hidden[r * width + j];
    for (let j = 0; j < width; j++) v[j] /= rows;
  } else {
    v.set(hidden.subarray(pooling === "cls" ? 0 : (rows - 1) * width, (pooling === "cls" ? 1 : rows) * width));
  }
  if (normalize) {
    let norm = 0;
    for (const x of v) norm += x * x;
    // as torch.nn.functional.normalize: the norm floored at 1e-12
    const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let j = 0; j < width; j++) v[j] *= scale;
  }
  return v;
}

export interface Classification {
  label: string;
  score: number;
}

/**
 * A sequence classifier's labels for each input (a text, ids, or {ids, segments}), most likely
 * first, as transformers' text-classification pipeline scores them: softmax over the labels,
 * sigmoid for multi-label classifiers and single-output ones, the raw value for regression.
 * `topK` keeps that many per input (default: all). Inputs are packed into calls as `embed` packs them.
 */
export async function classify(model: Model, inputs: readonly (string | Ids | RunInputs)[], opts: { tokenizer?: TextTokenizer; topK?: number } = {}): Promise<Classification[][]> {
  const man = model.manifest;
  const entry = man.entries[0];
  const output = entry.outputs.find((o) => o.name === "logits" && o.rows === "1");
  if (man.kind !== "encoder" || !man.classifier || !output) throw new ArtifactError("WF511", `classify: this artifact (${man.model}) has no sequence-classification head`);
  const { topK = man.classifier.labels.length, tokenizer } = opts;
  if (!Number.isSafeInteger(topK) || topK < 1) throw new ArtifactError("WF510", `classify: topK should be a positive integer, got ${show(topK)}`);
  if (!Array.isArray(inputs) || inputs.length === 0) throw new ArtifactError("WF510", `classify: inputs should be a non-empty list of texts or id sequences, got ${show(inputs)}`);
  const out: Classification[][] = [];
  for await (const r of outputsOf(model, entry.name, inputs.map((_, n) => runInputs("classify", inputs, n, tokenizer)))) out.push(labelScores(r[output.name], man.classifier).slice(0, topK));
  return out;
}

/**
 * A classifier's logits as labels with scores, most likely first, as transformers' pipelines score
 * them: softmax over the labels, sigmoid for multi-label classifiers and single-output ones, the
 * raw value for regression.
 */
export function labelScores(logits: ArrayLike<number>, classifier: NonNullable<Manifest["classifier"]>): Classification[] {
  const { labels, problem_type } = classifier;
  let scores: number[];
  if (problem_type === "regression") scores = Array.from(logits);
  else if (problem_type === "multi_label_classification" || labels.length === 1) scores = Array.from(logits, (x) => 1 / (1 + Math.exp(-x)));
  else {
    const m = Math.max(...Array.from(logits));
    const e = Array.from(logits, (x) => Math.exp(x - m));
    const sum = e.reduce((a, b) => a + b, 0);
    scores = e.map((x) => x / sum);
  }
  return scores.map((score, i) => ({ label: labels[i], score })).sort((a, b) => b.score - a.score);
}

/** The run inputs of inputs[n]: a text through the tokenizer (WF510 without one), ids, or {ids, segments}. */
function runInputs(call: string, inputs: readonly (string | Ids | RunInputs)[], n: number, tokenizer?: TextTokenizer): RunInputs {
  const input = inputs[n];
  if (typeof input === "string") {
    if (!tokenizer) throw new ArtifactError("WF510", `${call}: inputs[${n}] should be token ids (texts need a tokenizer), got ${show(input)}`);
    return { ids: tokenizer.encode(input) };
  }
  return isRunInputs(input) ? input : { ids: input };
}

/** Lets the event loop run between inputs. */
const breath = () => new Promise<void>((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));

const isRunInputs = (v: Ids | RunInputs): v is RunInputs => typeof v === "object" && v !== null && !("length" in v) && "ids" in v;
