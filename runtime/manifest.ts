// The artifact's manifest: everything the runtime needs to know, and nothing of the compiler.
// runtime/validate.ts checks a manifest read from a file against these types.

/**
 * The manifest format this runtime reads. 2: every module holds its layout (LAYOUT_SECTION),
 * and `variants` is required. 3: the weights are files listed by `weights.shards`.
 */
export const MANIFEST_VERSION = 3;

/** Most bytes in one weights shard: a page holds a whole shard in memory to check its hash. */
export const MAX_SHARD_BYTES = 2 ** 31;
/** Most shards one artifact lists (names carry a five-digit index). */
export const MAX_SHARDS = 99999;

/**
 * One file of the weights: bytes [offset, offset + bytes) of the weights (offset counted from
 * memory.weights_offset), and the lower-case hex sha-256 of exactly those bytes.
 */
export interface WeightShard {
  file: string;
  offset: number;
  bytes: number;
  sha256: string;
}

/**
 * How the runtime feeds an input: token ids, segment ids, a 0/1 padding mask, a tensor kept from
 * another entry (setState), an image's pixels, or each row's sequence [first, end) as i32 pairs
 * (an entry that runs several sequences in one call: Model.runSequences).
 */
export type InputKind = "tokens" | "segments" | "padding" | "state" | "image" | "sequences";

export interface ManifestInput {
  name: string;
  kind: InputKind;
  dtype: "f32" | "i32";
  /** Byte address of the input buffer in linear memory. */
  offset: number;
  /** Elements per row. */
  width: number;
  /** Exclusive upper bound for ids (rows of the embedding tables they index). */
  limit?: number;
  /** An image input's [channels, height, width]: one row of width values a call, channel by channel. */
  shape?: number[];
}

export interface ManifestOutput {
  name: string;
  offset: number;
  width: number;
  /** Rows: "S" (rows of the call), "E" (rows of a state input) or a fixed count such as "1". */
  rows: string;
}

export interface ManifestEntry {
  /** Exported function `name(rows, past, erows)`. */
  name: string;
  /** Exported function computing values that depend only on state inputs, or null. */
  prepare: string | null;
  /** Whether the entry appends to a KV cache (and so advances the past length). */
  cached: boolean;
  inputs: ManifestInput[];
  outputs: ManifestOutput[];
}

/**
 * A kernel call site of the profiling module: its op, a label with its shape, and the work of one
 * call as a function of its rows and keys (multiply-adds count two flops; bytes are what the
 * kernel must read once a call, per row and per key of the KV cache).
 */
export interface ProfileSite {
  entry: string;
  node: number;
  op: string;
  label: string;
  flops_row: number;
  flops_row_key: number;
  bytes_call: number;
  bytes_row: number;
  bytes_key: number;
  /** "weights": a matrix kernel; "attention"; else "other" (elementwise, norms, lookups). */
  kind: "weights" | "attention" | "other";
  /** Rows of every call, where the site's rows do not follow the call's (the head after last_row). */
  rows?: number;
  /** A quantized matrix kernel's scheme, and the most rows it takes on the integer path (see ir/quant.ts integerPath). */
  quant?: string;
  int_rows?: number;
}

export interface Manifest {
  format: "wasmformer";
  version: typeof MANIFEST_VERSION;
  model: string;
  kind: "causal-lm" | "encoder" | "seq2seq";
  /** Longest sequence (past + current rows) the artifact accepts. */
  context: number;
  config: Record<string, number | string | boolean>;
  memory: {
    pages: number;
    weights_offset: number;
    weights_bytes: number;
    activation_bytes: number;
    /** Address of the thread control block (runtime/control.ts). */
    control?: number;
    /** Most threads the kernels have scratch for. */
    max_threads?: number;
    /**
     * Each KV cache: addresses of its keys and values, `context` rows of k_width / v_width values
     * each, `bytes` a value (4: f32, the default; 2: bfloat16), row r at k + r · width · bytes. A sliding window's ring buffer has `rows` rows only: position j
     * at row j − base, base the i32 at address `base`; a call moves the last `keep` positions to the
     * front when its rows would not fit, so each call feeds at most rows − keep rows.
     */
    kv?: { k: number; v: number; k_width: number; v_width: number; bytes?: 2 | 4; rows?: number; window?: number; keep?: number; base?: number }[];
  };
  /**
   * The files holding the weights, in order, covering memory.weights_bytes exactly. Written with
   * every artifact folder (the loaders of a folder or URL need it); a manifest made in memory
   * and loaded with the weights' bytes has none.
   */
  weights?: { shards: WeightShard[] };
  /** The profiling module (compile --profile) and what each of its kernel call sites does. */
  profile?: { file: string; sites: ProfileSite[] };
  features: string[];
  /** Module files and the features each needs; the runtime runs the most capable one the host has. */
  variants: { file: string; features: string[] }[];
  entries: ManifestEntry[];
  /** Special token ids for generation, from the checkpoint's config. */
  tokens?: {
    eos?: number[]; bos?: number; decoder_start?: number; pad?: number;
    /** A seq2seq model's forced first generated id and last ids (transformers' ForcedBOS/ForcedEOS logits processors). */
    forced_bos?: number; forced_eos?: number[];
  };
  /** File name of a Hugging Face tokenizer.json shipped with the artifact. */
  tokenizer?: string;
  /** A sequence or token classifier's labels by index (config.json id2label), and how a sequence classifier's logits become scores. */
  classifier?: { labels: string[]; problem_type?: "single_label_classification" | "multi_label_classification" | "regression" };
  /** How an image becomes the pixel values of an image input (the checkpoint's preprocessor_config.json). */
  image?: ImagePreprocessing;
  /** The checkpoint's chat template (a file of the artifact) and the special tokens it reads. */
  chat?: { template: string; bos_token?: string; eos_token?: string };
  /** Sampling settings the checkpoint ships (generation_config.json); sampling applies when do_sample is true. */
  generation?: { do_sample?: boolean; temperature?: number; top_k?: number; top_p?: number; min_p?: number; repetition_penalty?: number; max_new_tokens?: number };
  /** LoRA slots (compile --lora-slots): the side-path matrices an adapter is written into (runtime/lora.ts). */
  lora?: LoraLayout;
}

/**
 * transformers' ViTImageProcessor steps, as preprocessor_config.json sets them: the image in RGB
 * is resized to the input's height × width by PIL's filter `resample` (1 Lanczos, 2 bilinear,
 * 3 bicubic, 4 box, 5 Hamming) when `resize`, multiplied by `rescale_factor` when `rescale`, and
 * normalized to (x − mean[c]) / std[c] per channel when `normalize`.
 */
export interface ImagePreprocessing {
  resize: boolean;
  resample: number;
  rescale: boolean;
  rescale_factor: number;
  normalize: boolean;
  mean: number[];
  std: number[];
}

/**
 * Where run-time LoRA matrices live: each parameter [rows, cols] at byte address `at`, `floats`
 * long in the f32 kernels' packed layout (groups of `group` rows; panels [k0, size, at] of K),
 * zeros: no adapter. `cell` is the i32 its kernels read their address from (0: `at`), so an
 * adapter's matrices anywhere in memory are applied by writing the cells. `parts` are its rows:
 * `rank` rows of a module's A, or a module's s·B [out, rank]; fuse-qkv may stack the A matrices
 * of linears reading one input (slot matrices stack only with each other).
 */
export interface LoraLayout {
  rank: number;
  group: number;
  params: {
    name: string;
    at: number;
    cell: number;
    rows: number;
    cols: number;
    floats: number;
    panels: [k0: number, size: number, at: number][];
    parts: { module: string; role: "A" | "B"; row: number; rows: number }[];
  }[];
}

/** Name of the module's custom section holding `layoutOf` its manifest, as JSON. */
export const LAYOUT_SECTION = "wasmformer.layout";

/**
 * The manifest's fields that the module's code was compiled for: addresses, widths, limits,
 * rows, entry names and the context. The compiler stores them in every module; the runtime
 * refuses a manifest that differs from the module it loads.
 */
export function layoutOf(m: Manifest) {
  return { version: m.version, kind: m.kind, context: m.context, memory: m.memory, entries: m.entries };
}
