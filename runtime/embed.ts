// Sentence embeddings from an encoder artifact (BERT-style), as sentence-transformers computes
// them: the last hidden states pooled (mean over the tokens, the first token's, or the last
// token's) and optionally L2-normalized. No Node-only imports.

import { ArtifactError, show } from "./errors.js";
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
 * one-by-one calls give. Yields to the event loop between inputs.
 */
export async function embed(model: Model, inputs: readonly (string | Ids | RunInputs)[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
  const man = model.manifest;
  if (man.kind !== "encoder") throw new ArtifactError("WF511", `embed: this artifact is a ${man.kind} model (${man.model}); embeddings come from an encoder`);
  const { pooling = "mean", normalize = false, tokenizer } = opts;
  const bad = (what: string, v: unknown, want: string) => new ArtifactError("WF510", `embed: ${what} should be ${want}, got ${show(v)}`);
  if (!POOLINGS.includes(pooling)) throw bad("pooling", pooling, POOLINGS.map((p) => JSON.stringify(p)).join(", "));
  if (typeof normalize !== "boolean") throw bad("normalize", normalize, "true or false");
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad("inputs", inputs, "a non-empty list of texts or id sequences");
  const entry = man.entries.find((e) => !e.cached && e.outputs.length === 1) ?? man.entries[0];
  const width = entry.outputs[0].width;
  const out: Float32Array[] = [];
  for (let n = 0; n < inputs.length; n++) {
    const input = inputs[n];
    let run: RunInputs;
    if (typeof input === "string") {
      if (!tokenizer) throw bad(`inputs[${n}]`, input, "token ids (texts need a tokenizer)");
      run = { ids: tokenizer.encode(input) };
    } else run = isRunInputs(input) ? input : { ids: input };
    model.reset();
    const hidden = model.run(entry.name, run)[entry.outputs[0].name];
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
    out.push(v);
    if (n + 1 < inputs.length) await new Promise<void>((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));
  }
  return out;
}

const isRunInputs = (v: Ids | RunInputs): v is RunInputs => typeof v === "object" && v !== null && !("length" in v) && "ids" in v;
