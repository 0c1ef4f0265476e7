// GPT-2 in GGUF, as llama.cpp's converter writes it: Conv1D weights, stored [in, out] by HF, are
// transposed to [out, in] (ggml dims [in, out], the layout of every other ggml matrix); every
// layer norm and linear has a bias.

import { type ArchSpec, type Sizes, type TensorRule, hfSizes, withBias } from "./types.js";

const t = (gguf: string, hf: string, shape: (s: Sizes) => readonly number[], more: Partial<TensorRule> = {}): TensorRule => ({ gguf, hf, shape, ...more });
const H = "transformer.h.{i}.";

export const gpt2: ArchSpec = {
  hfClass: "GPT2LMHeadModel",
  hfPrefix: "transformer.",
  tensors: [
    t("token_embd.weight", "transformer.wte.weight", (s) => [s.vocab, s.d]),
    t("position_embd.weight", "transformer.wpe.weight", (s) => [s.positions, s.d]),
    t("output.weight", "lm_head.weight", (s) => [s.vocab, s.d], { optional: true }),
    ...withBias(
      [
        t("output_norm.weight", "transformer.ln_f.weight", (s) => [s.d]),
        t("blk.{i}.attn_norm.weight", `${H}ln_1.weight`, (s) => [s.d]),
        t("blk.{i}.attn_qkv.weight", `${H}attn.c_attn.weight`, (s) => [s.d, 3 * s.d], { layout: "transpose" }),
        t("blk.{i}.attn_output.weight", `${H}attn.c_proj.weight`, (s) => [s.d, s.d], { layout: "transpose" }),
        t("blk.{i}.ffn_norm.weight", `${H}ln_2.weight`, (s) => [s.d]),
        t("blk.{i}.ffn_up.weight", `${H}mlp.c_fc.weight`, (s) => [s.d, s.ffn], { layout: "transpose" }),
        t("blk.{i}.ffn_down.weight", `${H}mlp.c_proj.weight`, (s) => [s.ffn, s.d], { layout: "transpose" }),
      ],
      false,
    ),
  ],
  config: [
    { hf: ["n_embd", "hidden_size"], gguf: "embedding_length", type: "u32", required: true },
    { hf: ["n_layer", "num_hidden_layers"], gguf: "block_count", type: "u32", required: true },
    { hf: ["n_head", "num_attention_heads"], gguf: "attention.head_count", type: "u32", required: true },
    { hf: ["n_positions", "n_ctx", "max_position_embeddings"], gguf: "context_length", type: "u32", required: true },
    { hf: ["layer_norm_epsilon"], gguf: "attention.layer_norm_epsilon", type: "f32", fallback: 1e-5 },
    // llama.cpp's converter writes 4·n_embd whatever n_inner is; on import the ffn_up shape decides
    { hf: ["n_inner"], gguf: "feed_forward_length", type: "u32", fallback: (s) => 4 * s.d },
  ],
  sizes: hfSizes,
  tied: undefined,
  importConfig(c) {
    const up = c.tensor("blk.0.ffn_up.weight");
    if (up?.dims.length === 2) c.cfg.n_inner = up.dims[1];
  },
};
