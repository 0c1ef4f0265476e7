// The shape of an architecture's entry in the GGUF ↔ Hugging Face table (weights/gguf-arch.ts):
// tensor names and layouts, metadata keys ↔ config.json keys, and the hooks a family needs for
// what a plain key-to-key rule cannot say (rope scaling, values llama.cpp derives).

import type { Code } from "../../diagnostics.js";

/**
 * How a tensor's values differ between the two files:
 * - same: as stored;
 * - transpose: a 2-D matrix stored the other way round (GPT-2's Conv1D);
 * - rope-q / rope-k: rows permuted per head for llama.cpp's interleaved rotary (LLaMA);
 * - plus-one: GGUF = HF + 1 (Gemma's RMSNorm gains, which HF applies as 1 + w).
 */
export type Layout = "same" | "transpose" | "rope-q" | "rope-k" | "plus-one";

/** The sizes a family's tensor shapes are written in, from an HF-style config. */
export interface Sizes {
  readonly vocab: number;
  readonly d: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffn: number;
  readonly positions: number;
}

export interface TensorRule {
  readonly gguf: string;
  readonly hf: string;
  readonly layout?: Layout;
  /** The tensor's HF shape. */
  readonly shape: (s: Sizes) => readonly number[];
  /** Absent from some checkpoints of the family (a tied head, optional biases). */
  readonly optional?: boolean;
}

export interface ConfigRule {
  /** config.json keys; the first is written on import, any is read on export. */
  readonly hf: readonly string[];
  /** The GGUF key after `<arch>.`. */
  readonly gguf: string;
  readonly type: "u32" | "f32";
  /** Needed on import and on export. */
  readonly required?: boolean;
  /** Written on export when the config has no value (the value llama.cpp's converter would see). */
  readonly fallback?: number | ((s: Sizes) => number);
}

/** What an architecture's import hook sees: the header's values and the config built so far. */
export interface ImportContext {
  readonly arch: string;
  readonly file: string;
  readonly cfg: Record<string, unknown>;
  /** A metadata value of the type its key needs (full key); a value of another type fails. */
  integer(key: string): number | undefined;
  real(key: string): number | undefined;
  text(key: string): string | undefined;
  /** A tensor's ggml dims and dequantized values, if the file has it. */
  tensor(name: string): { readonly dims: readonly number[]; values(): Float32Array } | undefined;
  fail(message: string, code?: Code): never;
}

export type MetaType = "u32" | "f32" | "string";

/** What an architecture's export hook sees: the config, the sizes, and the metadata so far. */
export interface ExportContext {
  readonly arch: string;
  readonly config: Record<string, unknown>;
  readonly sizes: Sizes;
  /** A metadata value under `<arch>.`, in writing order (replacing one already set). */
  set(key: string, type: MetaType, value: number | string): void;
  has(key: string): boolean;
  /** An F32 tensor computed from the config (rope factors), written before the model's tensors. */
  tensor(name: string, values: Float32Array): void;
  fail(message: string, code?: Code): never;
}

export interface ArchSpec {
  /** Hugging Face class, for the config's `architectures`. */
  readonly hfClass: string;
  /** Prefix of the HF names (a checkpoint may leave it out, as the .wf files allow). */
  readonly hfPrefix: string;
  readonly tensors: readonly TensorRule[];
  readonly config: readonly ConfigRule[];
  /** The sizes of an HF-style config (vocab from the token embedding). */
  readonly sizes: (cfg: Record<string, unknown>, vocab: number) => Sizes;
  /** tie_word_embeddings on import: "no-output" when output.weight is absent, "always" when the family never has one. */
  readonly tied?: "no-output" | "always";
  /** HF tensors the converter leaves out on purpose (Gemma's lm_head). */
  readonly dropped?: RegExp;
  /** config.json keys a rule cannot give: derived values, rope scaling. */
  readonly importConfig?: (c: ImportContext) => void;
  /** Metadata and tensors a rule cannot give; defaults the converter fills. */
  readonly exportConfig?: (c: ExportContext) => void;
}

/** The first of `keys` whose config value is a number. */
export function num(cfg: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const k of keys) if (typeof cfg[k] === "number") return cfg[k] as number;
  return undefined;
}

/** Sizes from the HF keys the decoder families share (GPT-2's names as alternatives). */
export function hfSizes(cfg: Record<string, unknown>, vocab: number): Sizes {
  const d = num(cfg, "hidden_size", "n_embd") ?? Number.NaN, heads = num(cfg, "num_attention_heads", "n_head") ?? Number.NaN;
  return {
    vocab,
    d,
    layers: num(cfg, "num_hidden_layers", "n_layer") ?? Number.NaN,
    heads,
    kvHeads: num(cfg, "num_key_value_heads") ?? heads,
    headDim: num(cfg, "head_dim") ?? d / heads,
    ffn: num(cfg, "intermediate_size", "n_inner") ?? 4 * d,
    positions: num(cfg, "n_positions", "n_ctx", "max_position_embeddings") ?? Number.NaN,
  };
}

/** Each rule followed by its bias (a vector of the weight's output size), `optional` as given. */
export const withBias = (rules: readonly TensorRule[], optional: boolean): TensorRule[] =>
  rules.flatMap((r) => [
    r,
    {
      gguf: r.gguf.replace(/\.weight$/, ".bias"),
      hf: r.hf.replace(/\.weight$/, ".bias"),
      layout: r.layout === "transpose" ? "same" : r.layout,
      shape: (s: Sizes) => [r.shape(s)[r.layout === "transpose" ? 1 : 0]],
      optional,
    },
  ]);

/**
 * The shortest decimal of at most 9 significant digits near `x` that `ok` accepts, `preferred`
 * first (a config value recovered from rounded data reads as config.json wrote it: 8, not 7.9999995).
 */
export function shortest(x: number, ok: (v: number) => boolean, preferred?: number): number | undefined {
  if (preferred !== undefined && ok(preferred)) return preferred;
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (ok(y)) return y;
  }
  return ok(x) ? x : undefined;
}
