// The peers as bench subjects (runtime/bench.ts) once their model is loaded: an ONNX Runtime Web
// session of this project's ONNX export, and a node-llama-cpp context sequence. peers.ts exports
// and loads the weights for `wasmformer bench --peer`; bench/ort.js and bench/llamacpp.js load
// their own and time them through these too. No imports but types, so that a process timing a
// peer holds nothing of the compiler.

import type { BenchSubject } from "@wasmformer/runtime/bench";

type Tensor = { dims: readonly number[]; data: unknown };
/** The part of onnxruntime-web the subject uses. */
export interface OrtModule {
  env: { wasm: { numThreads: number }; logLevel: string };
  Tensor: new (type: string, data: unknown, dims: number[]) => Tensor;
  InferenceSession: { create(bytes: Uint8Array): Promise<OrtSession> };
}
export interface OrtSession {
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}
/** One KV cache of the export, in the order of its past_key_{i} / past_value_{i} inputs (onnxCacheLayout). */
export interface OrtCache {
  kvHeads: number;
  keyDim: number;
  valueDim: number;
}

/** The export's inputs for `ids` after `pasts` (the presents of the last call; empty when absent). */
export function ortFeeds(ort: OrtModule, caches: readonly OrtCache[], ids: readonly number[], pasts?: readonly Tensor[]): Record<string, Tensor> {
  const empty = (d: number, c: OrtCache) => new ort.Tensor("float32", new Float32Array(0), [1, c.kvHeads, 0, d]);
  const feeds: Record<string, Tensor> = { input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, (x) => BigInt(x)), [1, ids.length]) };
  caches.forEach((c, i) => {
    feeds[`past_key_${i}`] = pasts ? pasts[2 * i] : empty(c.keyDim, c);
    feeds[`past_value_${i}`] = pasts ? pasts[2 * i + 1] : empty(c.valueDim, c);
  });
  return feeds;
}

/** The presents of a call, to feed as the next call's pasts. */
export function ortPresents(out: Record<string, Tensor>, caches: readonly OrtCache[]): Tensor[] {
  return caches.flatMap((_, i) => [out[`present_key_${i}`], out[`present_value_${i}`]]);
}

/**
 * A session of the export as a bench subject: each feed runs it on the new ids with the pasts the
 * last call returned. Every call computes every position's logits (the export's only form).
 * Rewinding to the rows before the last feed takes that feed's pasts back; other depths copy the
 * first rows of each cache.
 */
export function ortSubject(ort: OrtModule, session: OrtSession, shape: { context: number; vocab: number; caches: readonly OrtCache[] }): BenchSubject {
  const { caches } = shape;
  let pasts: Tensor[] | undefined, rows = 0;
  let before: { pasts: Tensor[] | undefined; rows: number } = { pasts: undefined, rows: 0 };
  const firstRows = (t: Tensor, keep: number) => {
    const [, heads, length, dim] = t.dims;
    const data = t.data as Float32Array, out = new Float32Array(heads * keep * dim);
    for (let h = 0; h < heads; h++) out.set(data.subarray(h * length * dim, (h * length + keep) * dim), h * keep * dim);
    return new ort.Tensor("float32", out, [1, heads, keep, dim]);
  };
  return {
    context: shape.context,
    vocab: shape.vocab,
    reset() {
      pasts = undefined;
      rows = 0;
      before = { pasts, rows };
    },
    async feed(ids) {
      const out = await session.run(ortFeeds(ort, caches, ids, pasts));
      before = { pasts, rows };
      pasts = ortPresents(out, caches);
      rows += ids.length;
    },
    rewind(keep) {
      if (keep === rows) return;
      if (!(Number.isInteger(keep) && keep >= 0 && keep < rows)) throw new Error(`rewind: rows should be an integer in [0, ${rows}], got ${keep}`);
      pasts = keep === before.rows ? before.pasts : keep === 0 ? undefined : pasts!.map((t) => firstRows(t, keep));
      rows = keep;
    },
  };
}

/** The part of a node-llama-cpp context sequence the subject uses. */
export interface LlamaSequence {
  readonly nextTokenIndex: number;
  clearHistory(): Promise<void>;
  eraseContextTokenRanges(ranges: { start: number; end: number }[]): Promise<void>;
  controlledEvaluate(input: (number | [number, { generateNext?: { token?: boolean } }])[]): Promise<unknown[]>;
}

/**
 * A node-llama-cpp context sequence as a bench subject. Each feed computes the last position's
 * logits and samples a token from them, as generation does (without logits llama.cpp skips the
 * output layer, which the other subjects all run).
 */
export function llamaCppSubject(seq: LlamaSequence, shape: { context: number; vocab: number }): BenchSubject {
  return {
    context: shape.context,
    vocab: shape.vocab,
    reset: () => seq.clearHistory(),
    async feed(ids) {
      await seq.controlledEvaluate(ids.map((t, i) => (i === ids.length - 1 ? [t, { generateNext: { token: true } }] : t)));
    },
    async rewind(rows) {
      if (rows < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: rows, end: seq.nextTokenIndex }]);
    },
  };
}
