// Phi-3 in GGUF, as llama.cpp's converter writes it.
// - HF's fused projections keep their layout: attn_qkv is qkv_proj (q, k, v rows stacked),
//   ffn_up is gate_up_proj (2·intermediate rows, gate first); NEOX rotary, no permutation.
// - Rotary dimensions `phi3.rope.dimension_count` = ⌊partial_rotary_factor·hidden⌋ / heads;
//   `phi3.rope.scaling.original_context_length` is original_max_position_embeddings;
//   `phi3.attention.sliding_window` 0 stands for none.
// - LongRoPE: rope_scaling's long_factor / short_factor become the F32 tensors
//   rope_factors_long.weight / rope_factors_short.weight (one per rotary pair, rounded to f32),
//   with `phi3.rope.scaling.attn_factor` = √(1 + ln s / ln original) for s = max / original > 1.

import { shortestF32 } from "../gguf.js";
import { type ArchSpec, type ExportContext, type ImportContext, type Sizes, type TensorRule, hfSizes, num } from "./types.js";
import { ropeScaling } from "./llama.js";

const t = (gguf: string, hf: string, shape: (s: Sizes) => readonly number[], more: Partial<TensorRule> = {}): TensorRule => ({ gguf, hf, shape, ...more });
const L = "model.layers.{i}.";

const FACTORS = [["long_factor", "rope_factors_long.weight"], ["short_factor", "rope_factors_short.weight"]] as const;

/** Rotary dimensions as the converter counts them. */
const ropeDims = (cfg: Record<string, unknown>, s: Sizes) => Math.floor(Math.floor((num(cfg, "partial_rotary_factor") ?? 1) * s.d) / s.heads);

function importConfig(c: ImportContext) {
  const cfg = c.cfg;
  const headDim = (cfg.hidden_size as number) / (cfg.num_attention_heads as number);
  const dims = c.integer("phi3.rope.dimension_count") ?? headDim;
  if (dims !== headDim) cfg.partial_rotary_factor = dims / headDim;
  if (cfg.sliding_window === 0) cfg.sliding_window = null;
  const [long, short] = FACTORS.map(([, name]) => {
    const f = c.tensor(name);
    if (!f) return undefined;
    const n = f.dims.reduce((a, b) => a * b, 1);
    if (f.dims.length !== 1 || n !== dims / 2) c.fail(`tensor '${name}' has dims [${f.dims.join(", ")}], expected [${dims / 2}] (one factor per pair of the ${dims} rotary dimensions)`, "WF305");
    return Array.from(f.values(), shortestF32);
  });
  if (!long !== !short) c.fail(`${long ? "rope_factors_long.weight" : "rope_factors_short.weight"} without ${long ? "rope_factors_short.weight" : "rope_factors_long.weight"}: LongRoPE needs both`, "WF401");
  if (long) cfg.rope_scaling = { type: "longrope", long_factor: long, short_factor: short };
}

function exportConfig(c: ExportContext) {
  const dims = ropeDims(c.config, c.sizes);
  c.set("rope.dimension_count", "u32", dims);
  const sw = c.config.sliding_window;
  if (sw !== undefined && sw !== null && !(typeof sw === "number" && Number.isInteger(sw) && sw >= 0)) c.fail(`config sliding_window should be a non-negative integer or null, found ${JSON.stringify(sw)}`, "WF302");
  c.set("attention.sliding_window", "u32", (sw as number | null | undefined) ?? 0);
  const rs = ropeScaling(c.config, (m) => c.fail(m, "WF302"));
  if (!rs) return;
  if (rs.type !== "longrope" && rs.type !== "su") c.fail(`config rope_scaling type '${rs.type}' has no GGUF form for phi3 (wasmformer writes longrope)`, "WF303");
  const max = num(c.config, "max_position_embeddings")!, original = num(c.config, "original_max_position_embeddings")!;
  const scale = max / original;
  c.set("rope.scaling.attn_factor", "f32", scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(original)) : 1);
  for (const [key, name] of FACTORS) {
    const v = rs.get(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isFinite(x)))
      c.fail(`config rope_scaling.${key} should be a list of numbers, found ${JSON.stringify(v)?.slice(0, 60) ?? "nothing"}`, "WF301");
    if (v.length !== dims / 2) c.fail(`config rope_scaling.${key} has ${v.length} values, expected ${dims / 2} (one per pair of the ${dims} rotary dimensions)`, "WF305");
    c.tensor(name, Float32Array.from(v as number[]));
  }
}

export const phi3: ArchSpec = {
  hfClass: "Phi3ForCausalLM",
  hfPrefix: "model.",
  tensors: [
    t("token_embd.weight", "model.embed_tokens.weight", (s) => [s.vocab, s.d]),
    t("output_norm.weight", "model.norm.weight", (s) => [s.d]),
    t("output.weight", "lm_head.weight", (s) => [s.vocab, s.d], { optional: true }),
    t("blk.{i}.attn_norm.weight", `${L}input_layernorm.weight`, (s) => [s.d]),
    t("blk.{i}.attn_qkv.weight", `${L}self_attn.qkv_proj.weight`, (s) => [(s.heads + 2 * s.kvHeads) * s.headDim, s.d]),
    t("blk.{i}.attn_output.weight", `${L}self_attn.o_proj.weight`, (s) => [s.d, s.heads * s.headDim]),
    t("blk.{i}.ffn_norm.weight", `${L}post_attention_layernorm.weight`, (s) => [s.d]),
    t("blk.{i}.ffn_up.weight", `${L}mlp.gate_up_proj.weight`, (s) => [2 * s.ffn, s.d]),
    t("blk.{i}.ffn_down.weight", `${L}mlp.down_proj.weight`, (s) => [s.d, s.ffn]),
  ],
  config: [
    { hf: ["max_position_embeddings"], gguf: "context_length", type: "u32", required: true },
    { hf: ["original_max_position_embeddings"], gguf: "rope.scaling.original_context_length", type: "u32", required: true },
    { hf: ["hidden_size"], gguf: "embedding_length", type: "u32", required: true },
    { hf: ["intermediate_size"], gguf: "feed_forward_length", type: "u32", required: true },
    { hf: ["num_hidden_layers"], gguf: "block_count", type: "u32", required: true },
    { hf: ["num_attention_heads"], gguf: "attention.head_count", type: "u32", required: true },
    { hf: ["num_key_value_heads"], gguf: "attention.head_count_kv", type: "u32", fallback: (s) => s.heads },
    { hf: ["rms_norm_eps"], gguf: "attention.layer_norm_rms_epsilon", type: "f32", required: true },
    { hf: ["rope_theta"], gguf: "rope.freq_base", type: "f32", required: true },
    { hf: ["sliding_window"], gguf: "attention.sliding_window", type: "u32" },
  ],
  // Phi3 has no head_dim key: a head is hidden_size / heads wide
  sizes: (cfg, vocab) => {
    const s = hfSizes(cfg, vocab);
    return { ...s, headDim: s.d / s.heads };
  },
  tied: "no-output",
  importConfig,
  exportConfig,
};
