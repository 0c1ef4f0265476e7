// Gemma and Gemma 2 in GGUF, as llama.cpp's converter writes them.
// - Every RMSNorm gain is stored as HF's value + 1 (HF's GemmaRMSNorm multiplies by 1 + w), added
//   in f32; the import subtracts 1 in f32. Two roundings, so fl(fl(w + 1) − 1) is within
//   2⁻²⁴·(|w + 1| + |w|) of w: exact for a gain with no bits below the ulp of w + 1, e.g. any bf16
//   gain of magnitude at least 2⁻¹⁶ (Gemma's checkpoints are bf16), not for every f32 gain.
// - No output tensor: the converter drops lm_head, llama.cpp ties the head to token_embd.
// - NEOX rotary (no q/k permutation); head_dim always written (`<arch>.attention.key_length`);
//   rope_theta not written (llama.cpp's default 10000 stands in for it).
// - gemma2: post-attention and post-feed-forward norms, the two soft-caps, the sliding window
//   (on even layers: layer_types is not stored, llama.cpp alternates); query_pre_attn_scalar is
//   not stored: llama.cpp scales queries by 1/√head_dim, or by
//   1/√(hidden_size / heads) for its 27B model (46 layers), so the import derives it that way.

import { type ArchSpec, type ConfigRule, type ExportContext, type ImportContext, type Sizes, type TensorRule, hfSizes, num } from "./types.js";

const t = (gguf: string, hf: string, shape: (s: Sizes) => readonly number[], more: Partial<TensorRule> = {}): TensorRule => ({ gguf, hf, shape, ...more });
const norm = (gguf: string, hf: string) => t(gguf, hf, (s) => [s.d], { layout: "plus-one" });
const L = "model.layers.{i}.";

function rules(v2: boolean): TensorRule[] {
  return [
    t("token_embd.weight", "model.embed_tokens.weight", (s) => [s.vocab, s.d]),
    norm("output_norm.weight", "model.norm.weight"),
    norm("blk.{i}.attn_norm.weight", `${L}input_layernorm.weight`),
    t("blk.{i}.attn_q.weight", `${L}self_attn.q_proj.weight`, (s) => [s.heads * s.headDim, s.d]),
    t("blk.{i}.attn_k.weight", `${L}self_attn.k_proj.weight`, (s) => [s.kvHeads * s.headDim, s.d]),
    t("blk.{i}.attn_v.weight", `${L}self_attn.v_proj.weight`, (s) => [s.kvHeads * s.headDim, s.d]),
    t("blk.{i}.attn_output.weight", `${L}self_attn.o_proj.weight`, (s) => [s.d, s.heads * s.headDim]),
    ...(v2
      ? [
          norm("blk.{i}.post_attention_norm.weight", `${L}post_attention_layernorm.weight`),
          norm("blk.{i}.ffn_norm.weight", `${L}pre_feedforward_layernorm.weight`),
          norm("blk.{i}.post_ffw_norm.weight", `${L}post_feedforward_layernorm.weight`),
        ]
      : [norm("blk.{i}.ffn_norm.weight", `${L}post_attention_layernorm.weight`)]),
    t("blk.{i}.ffn_gate.weight", `${L}mlp.gate_proj.weight`, (s) => [s.ffn, s.d]),
    t("blk.{i}.ffn_up.weight", `${L}mlp.up_proj.weight`, (s) => [s.ffn, s.d]),
    t("blk.{i}.ffn_down.weight", `${L}mlp.down_proj.weight`, (s) => [s.d, s.ffn]),
  ];
}

const config = (v2: boolean): ConfigRule[] => [
  { hf: ["max_position_embeddings"], gguf: "context_length", type: "u32", required: true },
  { hf: ["hidden_size"], gguf: "embedding_length", type: "u32", required: true },
  { hf: ["num_hidden_layers"], gguf: "block_count", type: "u32", required: true },
  { hf: ["intermediate_size"], gguf: "feed_forward_length", type: "u32", required: true },
  { hf: ["num_attention_heads"], gguf: "attention.head_count", type: "u32", required: true },
  { hf: ["num_key_value_heads"], gguf: "attention.head_count_kv", type: "u32", fallback: (s) => s.heads },
  { hf: ["rms_norm_eps"], gguf: "attention.layer_norm_rms_epsilon", type: "f32", fallback: 1e-6 },
  { hf: ["head_dim"], gguf: "attention.key_length", type: "u32", required: true },
  // Gemma2Config's defaults, which the converter sees through AutoConfig
  ...(v2
    ? ([
        { hf: ["attn_logit_softcapping"], gguf: "attn_logit_softcapping", type: "f32", fallback: 50 },
        { hf: ["final_logit_softcapping"], gguf: "final_logit_softcapping", type: "f32", fallback: 30 },
        { hf: ["sliding_window"], gguf: "attention.sliding_window", type: "u32", fallback: 4096 },
      ] as const)
    : []),
];

/** The rope base llama.cpp uses when a Gemma file does not name one. */
const GEMMA_ROPE_THETA = 10000;

/** llama.cpp's gemma2 attention: sliding on even layers, global on odd ones. */
const layerTypes = (layers: number) => Array.from({ length: Number.isInteger(layers) ? layers : 0 }, (_, i) => (i % 2 ? "full_attention" : "sliding_attention"));

/** llama.cpp's query scale for gemma2, as the query_pre_attn_scalar that gives it. */
const queryScalar = (layers: number, d: number, heads: number, headDim: number) => (layers === 46 ? Math.floor(d / heads) : headDim);

function importConfig(c: ImportContext) {
  c.cfg.rope_theta = c.real(`${c.arch}.rope.freq_base`) ?? GEMMA_ROPE_THETA;
  if (c.arch === "gemma2") {
    const n = (k: string) => c.cfg[k] as number;
    c.cfg.query_pre_attn_scalar = queryScalar(n("num_hidden_layers"), n("hidden_size"), n("num_attention_heads"), n("head_dim"));
    c.cfg.layer_types = layerTypes(n("num_hidden_layers"));
  }
}

function exportConfig(c: ExportContext) {
  if (c.config.rope_scaling !== undefined && c.config.rope_scaling !== null)
    c.fail(`config rope_scaling ${JSON.stringify(c.config.rope_scaling)} has no GGUF form for ${c.arch} (llama.cpp's converter writes none)`, "WF303");
  const theta = num(c.config, "rope_theta");
  if (theta !== undefined && theta !== GEMMA_ROPE_THETA) c.set("rope.freq_base", "f32", theta);
  c.set("attention.value_length", "u32", c.sizes.headDim);
  if (c.arch === "gemma2") {
    for (const k of ["attn_logit_softcapping", "final_logit_softcapping"])
      if (c.config[k] === null) c.fail(`config ${k} is null; llama.cpp's gemma2 always soft-caps (the converter writes ${c.arch}.${k})`, "WF302");
    const s = c.sizes;
    const types = c.config.layer_types;
    if (types !== undefined && types !== null && JSON.stringify(types) !== JSON.stringify(layerTypes(s.layers)))
      c.fail(`config layer_types ${JSON.stringify(types).slice(0, 80)} cannot be written: llama.cpp's gemma2 slides on even layers and attends globally on odd ones`, "WF303");
    const want = queryScalar(s.layers, s.d, s.heads, s.headDim);
    const got = num(c.config, "query_pre_attn_scalar") ?? 256;
    if (got !== want)
      c.fail(`config query_pre_attn_scalar ${got} cannot be written: GGUF has no key for it and llama.cpp derives ${want} (${s.layers === 46 ? "hidden_size / heads for 46 layers" : "head_dim"})`, "WF303");
  }
}

const spec = (v2: boolean): ArchSpec => ({
  hfClass: v2 ? "Gemma2ForCausalLM" : "GemmaForCausalLM",
  hfPrefix: "model.",
  tensors: rules(v2),
  config: config(v2),
  sizes: hfSizes,
  tied: "always",
  dropped: /^lm_head\.weight$/,
  importConfig,
  exportConfig,
});

export const gemma = spec(false);
export const gemma2 = spec(true);
