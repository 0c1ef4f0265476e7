// How GGUF architectures map onto Hugging Face checkpoints, following llama.cpp's
// convert_hf_to_gguf.py: tensor names, the layouts its converter changes, and metadata keys ↔
// config.json keys. Used both ways: reading a .gguf (weights/gguf.ts) and writing one
// (export/gguf.ts).
//
// Layouts the converter changes:
// - LLaMA q_proj/k_proj rows are permuted per head for llama.cpp's interleaved rotary: GGUF row
//   h·hd + 2b + a holds HF row h·hd + a·hd/2 + b (a ∈ {0, 1}, b < hd/2), k with the KV head count.
// - GPT-2's Conv1D weights, stored [in, out] by HF, are transposed to [out, in] (ggml dims
//   [in, out], the layout of every other ggml matrix).

import { InputError } from "../diagnostics.js";
import { GGUF_INTEGER_TYPES, GGUF_TYPE, type GgufHeader, type GgufTensor, ggufValueText } from "./gguf.js";
import { quoted } from "./source.js";

export type Layout = "same" | "transpose" | "rope-q" | "rope-k";

interface TensorRule {
  readonly gguf: string;
  readonly hf: string;
  readonly layout?: Layout;
}

export interface ConfigRule {
  /** config.json keys; the first is written on import, any is read on export. */
  readonly hf: readonly string[];
  /** The GGUF key after `<arch>.`. */
  readonly gguf: string;
  readonly type: "u32" | "f32";
  readonly required?: boolean;
}

export interface ArchSpec {
  /** Hugging Face class, for the config's `architectures`. */
  readonly hfClass: string;
  /** Prefix of the HF names (a checkpoint may leave it out, as the .wf files allow). */
  readonly hfPrefix: string;
  readonly tensors: readonly TensorRule[];
  readonly config: readonly ConfigRule[];
}

const bias = (rules: TensorRule[]): TensorRule[] =>
  rules.flatMap((r) => [r, { gguf: r.gguf.replace(/\.weight$/, ".bias"), hf: r.hf.replace(/\.weight$/, ".bias"), layout: r.layout === "transpose" ? "same" : r.layout }]);

export const ARCHS: Readonly<Record<string, ArchSpec>> = {
  llama: {
    hfClass: "LlamaForCausalLM",
    hfPrefix: "model.",
    tensors: [
      { gguf: "token_embd.weight", hf: "model.embed_tokens.weight" },
      { gguf: "output_norm.weight", hf: "model.norm.weight" },
      { gguf: "output.weight", hf: "lm_head.weight" },
      { gguf: "blk.{i}.attn_norm.weight", hf: "model.layers.{i}.input_layernorm.weight" },
      ...bias([
        { gguf: "blk.{i}.attn_q.weight", hf: "model.layers.{i}.self_attn.q_proj.weight", layout: "rope-q" },
        { gguf: "blk.{i}.attn_k.weight", hf: "model.layers.{i}.self_attn.k_proj.weight", layout: "rope-k" },
        { gguf: "blk.{i}.attn_v.weight", hf: "model.layers.{i}.self_attn.v_proj.weight" },
        { gguf: "blk.{i}.attn_output.weight", hf: "model.layers.{i}.self_attn.o_proj.weight" },
      ]),
      { gguf: "blk.{i}.ffn_norm.weight", hf: "model.layers.{i}.post_attention_layernorm.weight" },
      { gguf: "blk.{i}.ffn_gate.weight", hf: "model.layers.{i}.mlp.gate_proj.weight" },
      { gguf: "blk.{i}.ffn_up.weight", hf: "model.layers.{i}.mlp.up_proj.weight" },
      { gguf: "blk.{i}.ffn_down.weight", hf: "model.layers.{i}.mlp.down_proj.weight" },
    ],
    config: [
      { hf: ["hidden_size"], gguf: "embedding_length", type: "u32", required: true },
      { hf: ["num_hidden_layers"], gguf: "block_count", type: "u32", required: true },
      { hf: ["num_attention_heads"], gguf: "attention.head_count", type: "u32", required: true },
      { hf: ["num_key_value_heads"], gguf: "attention.head_count_kv", type: "u32" },
      { hf: ["intermediate_size"], gguf: "feed_forward_length", type: "u32", required: true },
      { hf: ["rms_norm_eps"], gguf: "attention.layer_norm_rms_epsilon", type: "f32" },
      { hf: ["rope_theta"], gguf: "rope.freq_base", type: "f32" },
      { hf: ["max_position_embeddings"], gguf: "context_length", type: "u32", required: true },
      { hf: ["head_dim"], gguf: "attention.key_length", type: "u32" },
    ],
  },
  gpt2: {
    hfClass: "GPT2LMHeadModel",
    hfPrefix: "transformer.",
    tensors: [
      { gguf: "token_embd.weight", hf: "transformer.wte.weight" },
      { gguf: "position_embd.weight", hf: "transformer.wpe.weight" },
      { gguf: "output.weight", hf: "lm_head.weight" },
      ...bias([
        { gguf: "output_norm.weight", hf: "transformer.ln_f.weight" },
        { gguf: "blk.{i}.attn_norm.weight", hf: "transformer.h.{i}.ln_1.weight" },
        { gguf: "blk.{i}.attn_qkv.weight", hf: "transformer.h.{i}.attn.c_attn.weight", layout: "transpose" },
        { gguf: "blk.{i}.attn_output.weight", hf: "transformer.h.{i}.attn.c_proj.weight", layout: "transpose" },
        { gguf: "blk.{i}.ffn_norm.weight", hf: "transformer.h.{i}.ln_2.weight" },
        { gguf: "blk.{i}.ffn_up.weight", hf: "transformer.h.{i}.mlp.c_fc.weight", layout: "transpose" },
        { gguf: "blk.{i}.ffn_down.weight", hf: "transformer.h.{i}.mlp.c_proj.weight", layout: "transpose" },
      ]),
    ],
    config: [
      { hf: ["n_embd", "hidden_size"], gguf: "embedding_length", type: "u32", required: true },
      { hf: ["n_layer", "num_hidden_layers"], gguf: "block_count", type: "u32", required: true },
      { hf: ["n_head", "num_attention_heads"], gguf: "attention.head_count", type: "u32", required: true },
      { hf: ["n_positions", "n_ctx", "max_position_embeddings"], gguf: "context_length", type: "u32", required: true },
      { hf: ["layer_norm_epsilon"], gguf: "attention.layer_norm_epsilon", type: "f32" },
      // llama.cpp's converter writes 4·n_embd whatever n_inner is; on import the ffn_up shape decides
      { hf: ["n_inner"], gguf: "feed_forward_length", type: "u32" },
    ],
  },
};

const patterns = new Map<string, RegExp>();
function match(pattern: string, name: string): string | undefined {
  let re = patterns.get(pattern);
  if (!re) patterns.set(pattern, (re = new RegExp(`^${pattern.replace(/\./g, "\\.").replace("{i}", "(\\d+)")}$`)));
  return re.exec(name)?.[1] ?? (re.test(name) ? "" : undefined);
}

/** `rule`'s counterpart of a name matching `from` ('{i}' carried over), or undefined. */
function rename(from: string, to: string, name: string): string | undefined {
  const i = match(from, name);
  return i === undefined ? undefined : to.replace("{i}", i);
}

/** Transposes a row-major [rows, cols] matrix. */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

/** Moves q/k rows between HF's half-split rotary order and llama.cpp's interleaved pairs. */
export function permuteRope(w: Float32Array, rows: number, heads: number, to: "gguf" | "hf", file: string, name: string): Float32Array {
  const hd = rows / heads;
  if (!Number.isInteger(hd) || hd % 2) throw new InputError(`${file}: tensor '${name}' has ${rows} rows, not ${heads} heads of an even size`);
  const cols = w.length / rows, half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++)
    for (let a = 0; a < 2; a++)
      for (let b = 0; b < half; b++) {
        const hf = (h * hd + a * half + b) * cols, gg = (h * hd + 2 * b + a) * cols;
        if (to === "hf") out.set(w.subarray(gg, gg + cols), hf);
        else out.set(w.subarray(hf, hf + cols), gg);
      }
  return out;
}

// (a function, not a set built at load: gguf.ts and this module import each other)
const isNumericType = (type: number) => GGUF_INTEGER_TYPES.has(type) || type === GGUF_TYPE.F32 || type === GGUF_TYPE.F64;

/**
 * A Hugging Face style config.json object from a GGUF header's metadata. Each value read is of the
 * type its key needs (a count or id: a non-negative integer of an integer type; a float: finite);
 * ranges (at least one layer, ...) are the model's config checks.
 */
export function ggufConfig(h: GgufHeader): Record<string, unknown> {
  function fail(m: string): never {
    throw new InputError(`${h.file}: ${m}`, undefined, { code: "WF408" });
  }
  const integer = (key: string): number | undefined => {
    const e = h.metadata.get(key);
    if (e && !(GGUF_INTEGER_TYPES.has(e.type) && typeof e.value === "number" && e.value >= 0)) fail(`${key} should be a non-negative integer, found ${ggufValueText(e)}`);
    return e?.value as number | undefined;
  };
  const real = (key: string): number | undefined => {
    const e = h.metadata.get(key);
    if (e && !(isNumericType(e.type) && typeof e.value === "number" && Number.isFinite(e.value))) fail(`${key} should be a finite number, found ${ggufValueText(e)}`);
    return e?.value as number | undefined;
  };
  const archKV = h.metadata.get("general.architecture");
  if (!archKV) return fail(`no general.architecture in the metadata`);
  const arch = archKV.value;
  if (typeof arch !== "string") return fail(`general.architecture should be a string, found ${ggufValueText(archKV)}`);
  const spec = ARCHS[arch];
  if (!spec) return fail(`architecture ${quoted(arch)} is not supported (wasmformer maps ${Object.keys(ARCHS).join(" and ")})`);
  const cfg: Record<string, unknown> = { model_type: arch, architectures: [spec.hfClass] };
  for (const r of spec.config) {
    const key = `${arch}.${r.gguf}`;
    const v = r.type === "u32" ? integer(key) : real(key);
    if (v === undefined) {
      if (r.required) fail(`no ${key} in the metadata (needed for ${r.hf[0]})`);
      continue;
    }
    cfg[r.hf[0]] = v;
  }
  const tokens = h.metadata.get("tokenizer.ggml.tokens")?.value;
  const vocab = h.tensors.get("token_embd.weight")?.dims[1] ?? integer(`${arch}.vocab_size`) ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocab !== undefined) cfg.vocab_size = vocab;
  if (arch === "llama") cfg.tie_word_embeddings = !h.tensors.has("output.weight");
  if (arch === "gpt2") {
    const up = h.tensors.get("blk.0.ffn_up.weight");
    if (up?.dims.length === 2) cfg.n_inner = up.dims[1];
  }
  for (const t of ["bos", "eos", "pad"] as const) {
    const v = integer(`tokenizer.ggml.${t}_token_id`);
    if (v !== undefined) cfg[`${t}_token_id`] = v;
  }
  return cfg;
}

export interface HfTensor {
  readonly name: string;
  readonly shape: readonly number[];
  /** GGUF's layout (dequantized) → HF's. */
  readonly convert: (w: Float32Array) => Float32Array;
}

/** The HF view of a mapped architecture's tensors, or undefined for an architecture not mapped. */
export function ggufArch(h: GgufHeader): { toHf(t: GgufTensor): HfTensor | undefined } | undefined {
  const arch = h.metadata.get("general.architecture")?.value;
  const spec = typeof arch === "string" ? ARCHS[arch] : undefined;
  if (!spec) return undefined;
  const cfg = ggufConfig(h);
  const heads = cfg.num_attention_heads as number, kvHeads = (cfg.num_key_value_heads as number | undefined) ?? heads;
  return {
    toHf(t) {
      for (const r of spec.tensors) {
        const name = rename(r.gguf, r.hf, t.name);
        if (name === undefined) continue;
        const shape = [...t.dims].reverse();
        const layout = r.layout ?? "same";
        if (layout === "transpose" && shape.length === 2)
          return { name, shape: [shape[1], shape[0]], convert: (w) => transpose(w, shape[0], shape[1]) };
        if (layout === "rope-q" || layout === "rope-k")
          return { name, shape, convert: (w) => permuteRope(w, shape[0], layout === "rope-q" ? heads : kvHeads, "hf", h.file, t.name) };
        return { name, shape, convert: (w) => w };
      }
      return undefined;
    },
  };
}

/** The GGUF name and layout for an HF tensor name (with or without the architecture's prefix). */
export function ggufName(spec: ArchSpec, hfName: string): { name: string; layout: Layout } | undefined {
  for (const candidate of [hfName, spec.hfPrefix + hfName])
    for (const r of spec.tensors) {
      const name = rename(r.hf, r.gguf, candidate);
      if (name !== undefined) return { name, layout: r.layout ?? "same" };
    }
  return undefined;
}
