// GGUF import and export of the families llama.cpp's converter maps beyond llama and gpt2:
// qwen2, qwen3, gemma, gemma2, phi3, and llama's rope scaling. Each small HF-layout checkpoint
// (random f32 tensors, odd sizes) is written by our writer and read back by our reader; every
// tensor and config key must come back (exactly at f32; at f16 as f16 rounds), the stored layout
// must be the converter's (no q/k permutation outside llama, Gemma's norm gains + 1, fused Phi-3
// projections, rope factors as tensors), and bad input is one coded line.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type GgufKVEntry, encodeGgufHeader, writeGguf } from "../../compiler/export/gguf.js";
import { openWeights, readHfConfig } from "../../compiler/load.js";
import { dequantize } from "../../compiler/weights/ggml-quants.js";
import type { GgufArch } from "../../compiler/weights/gguf-arch.js";
import { llama3Factors } from "../../compiler/weights/gguf-archs/llama.js";
import { GGUF_TYPE, type GgufHeader, parseGguf } from "../../compiler/weights/gguf.js";
import { openGguf } from "../../compiler/weights/gguf-source.js";
import { memoryWeights } from "../../compiler/weights/memory.js";
import type { WeightSource } from "../../compiler/weights/source.js";
import { floatToHalf, halfToFloat } from "../../ir/half.js";
import { fixtureDir, rng } from "../helpers.js";
import { inputError } from "./input-error.js";

type Tensors = Record<string, { shape: number[]; data: Float32Array }>;
type Config = Record<string, unknown>;

const tmp = () => mkdtempSync(join(tmpdir(), "wf-gguf-families-"));

/** Random tensors of the given HF shapes: norm gains near 1, the rest small. */
function tensors(shapes: Record<string, number[]>, seed: number, gain = (x: number) => 1 + 0.1 * x): Tensors {
  const r = rng(seed);
  const out: Tensors = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = /norm\.weight$|layernorm\.weight$/.test(name) ? r.floats(n, 1).map(gain) : r.floats(n, 0.2);
    out[name] = { shape, data };
  }
  return out;
}

/** Per-layer HF shapes, for layers 0..n−1. */
const layers = (n: number, per: Record<string, number[]>) => Object.fromEntries(Array.from({ length: n }, (_, i) => Object.entries(per).map(([k, s]) => [`model.layers.${i}.${k}`, s])).flat());

function write(arch: GgufArch, config: Config, t: Tensors | WeightSource, type: "f32" | "f16" = "f32") {
  const path = join(tmp(), `${arch}.gguf`);
  const weights = "names" in t ? (t as WeightSource) : memoryWeights(t as Tensors);
  const result = writeGguf(path, { arch, config, weights, type });
  const buf = readFileSync(path);
  const h = parseGguf(buf);
  return { path, result, h, meta: (k: string) => h.metadata.get(k)?.value, raw: (n: string) => rawTensor(h, n) };
}

/** A stored tensor's values as the file holds them (ggml order, before any HF layout). */
function rawTensor(h: GgufHeader, name: string): Float32Array {
  const t = h.tensors.get(name);
  if (!t) throw new Error(`no tensor ${name} in the file`);
  return dequantize(t.type, h.data(t), t.elements)!;
}

const f16 = (x: number) => halfToFloat(floatToHalf(x));

/** Every tensor reads back under its HF name in its HF shape; `expect` gives the value expected for each source value. */
function expectTensors(path: string, src: Tensors, expectValue: (name: string, x: number) => number = (_, x) => x) {
  const g = openGguf(path);
  for (const [name, { shape, data }] of Object.entries(src)) {
    expect([name, g.info(name)?.shape]).toEqual([name, shape]);
    const got = g.read(name);
    const want = Float32Array.from(data, (x) => expectValue(name, x));
    expect([name, Array.from(got)]).toEqual([name, Array.from(want)]);
  }
}

/** Every key of `config` reads back from the GGUF's metadata with its value. */
function expectConfig(path: string, arch: string, hfClass: string, config: Config) {
  const got = readHfConfig(path);
  expect([got.model_type, got.architectures]).toEqual([arch, [hfClass]]);
  for (const k of Object.keys(config)) expect([k, got[k]]).toEqual([k, config[k]]);
  return got;
}

/** A GGUF rebuilt from another with its metadata and tensors edited (data kept as stored). */
function rebuild(h: GgufHeader, edit: { kv?: (kv: GgufKVEntry[]) => GgufKVEntry[]; tensors?: (t: { name: string; dims: number[]; type: number; data: Uint8Array }[]) => { name: string; dims: number[]; type: number; data: Uint8Array }[] }): string {
  const kv = (edit.kv ?? ((x) => x))([...h.metadata].map(([key, e]) => ({ key, ...e })));
  const ts = (edit.tensors ?? ((x) => x))([...h.tensors.values()].map((t) => ({ name: t.name, dims: [...t.dims], type: t.type, data: new Uint8Array(h.data(t)) })));
  const { header, offsets } = encodeGgufHeader(kv, ts);
  const size = ts.length ? offsets[offsets.length - 1] + ts[ts.length - 1].data.length : 0;
  const data = Buffer.alloc(size);
  ts.forEach((t, i) => data.set(t.data, offsets[i]));
  const path = join(tmp(), "model.gguf");
  writeFileSync(path, Buffer.concat([header, data]));
  return path;
}
const f32Tensor = (name: string, values: number[]) => ({ name, dims: [values.length], type: 0, data: new Uint8Array(new Float32Array(values).buffer) });

// ---- the families ---------------------------------------------------------------------------

const qwen2Config = {
  hidden_size: 36, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, intermediate_size: 50,
  rms_norm_eps: 1e-6, rope_theta: 1000000, max_position_embeddings: 64, vocab_size: 67, tie_word_embeddings: false, bos_token_id: 5, eos_token_id: 6,
};
const qwen2Shapes = {
  "model.embed_tokens.weight": [67, 36], "model.norm.weight": [36], "lm_head.weight": [67, 36],
  ...layers(2, {
    "input_layernorm.weight": [36], "self_attn.q_proj.weight": [36, 36], "self_attn.q_proj.bias": [36], "self_attn.k_proj.weight": [12, 36], "self_attn.k_proj.bias": [12],
    "self_attn.v_proj.weight": [12, 36], "self_attn.v_proj.bias": [12], "self_attn.o_proj.weight": [36, 36], "post_attention_layernorm.weight": [36],
    "mlp.gate_proj.weight": [50, 36], "mlp.up_proj.weight": [50, 36], "mlp.down_proj.weight": [36, 50],
  }),
};

const qwen3Config = {
  hidden_size: 36, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 10, intermediate_size: 44,
  rms_norm_eps: 1e-6, rope_theta: 1000000, max_position_embeddings: 40, vocab_size: 53, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
};
const qwen3Shapes = {
  "model.embed_tokens.weight": [53, 36], "model.norm.weight": [36],
  ...layers(2, {
    "input_layernorm.weight": [36], "self_attn.q_proj.weight": [40, 36], "self_attn.k_proj.weight": [20, 36], "self_attn.v_proj.weight": [20, 36],
    "self_attn.q_norm.weight": [10], "self_attn.k_norm.weight": [10], "self_attn.o_proj.weight": [36, 40], "post_attention_layernorm.weight": [36],
    "mlp.gate_proj.weight": [44, 36], "mlp.up_proj.weight": [44, 36], "mlp.down_proj.weight": [36, 44],
  }),
};

/** LLaMA with head_dim 64 (2 heads): 32 rotary frequencies, enough for llama3's blend to span several. */
const llamaConfig = {
  hidden_size: 24, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 64, intermediate_size: 30,
  rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 128, vocab_size: 37, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
};
const llamaShapes = {
  "model.embed_tokens.weight": [37, 24], "model.norm.weight": [24], "lm_head.weight": [37, 24],
  ...layers(1, {
    "input_layernorm.weight": [24], "self_attn.q_proj.weight": [128, 24], "self_attn.k_proj.weight": [64, 24], "self_attn.v_proj.weight": [64, 24],
    "self_attn.o_proj.weight": [24, 128], "post_attention_layernorm.weight": [24], "mlp.gate_proj.weight": [30, 24], "mlp.up_proj.weight": [30, 24], "mlp.down_proj.weight": [24, 30],
  }),
};

/** Gemma with head_dim 24 ≠ hidden / heads, as gemma-7b. */
const gemmaConfig = {
  hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 24, intermediate_size: 48,
  rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 64, vocab_size: 71, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1,
};
const gemmaLayer = {
  "input_layernorm.weight": [32], "self_attn.q_proj.weight": [48, 32], "self_attn.k_proj.weight": [24, 32], "self_attn.v_proj.weight": [24, 32],
  "self_attn.o_proj.weight": [32, 48], "mlp.gate_proj.weight": [48, 32], "mlp.up_proj.weight": [48, 32], "mlp.down_proj.weight": [32, 48],
};
const gemmaShapes = { "model.embed_tokens.weight": [71, 32], "model.norm.weight": [32], ...layers(2, { ...gemmaLayer, "post_attention_layernorm.weight": [32] }) };
const gemma2Config = { ...gemmaConfig, attn_logit_softcapping: 50, final_logit_softcapping: 30, sliding_window: 16, query_pre_attn_scalar: 24 };
const gemma2Shapes = {
  "model.embed_tokens.weight": [71, 32], "model.norm.weight": [32],
  ...layers(2, { ...gemmaLayer, "post_attention_layernorm.weight": [32], "pre_feedforward_layernorm.weight": [32], "post_feedforward_layernorm.weight": [32] }),
};

/** The nearest bf16 (round half up in magnitude): Gemma's checkpoints hold bf16 gains. */
const bf16 = (x: number) => {
  const u = new Uint32Array(new Float32Array([x]).buffer);
  u[0] = (u[0] + 0x8000) & 0xffff0000;
  return new Float32Array(u.buffer)[0];
};

/** Phi-3 with partial rotary 0.6 (6 of 10 dimensions per head), LongRoPE over 3 pairs. */
const phi3Config = {
  hidden_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 36,
  rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 128, original_max_position_embeddings: 32, partial_rotary_factor: 0.6,
  sliding_window: 31, vocab_size: 45, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 32,
  rope_scaling: { type: "longrope", long_factor: [1.03, 2.5, 7.125], short_factor: [1, 1.05, 1.7] },
};
const phi3Shapes = {
  "model.embed_tokens.weight": [45, 40], "model.norm.weight": [40], "lm_head.weight": [45, 40],
  ...layers(2, {
    "input_layernorm.weight": [40], "self_attn.qkv_proj.weight": [80, 40], "self_attn.o_proj.weight": [40, 40], "post_attention_layernorm.weight": [40],
    "mlp.gate_up_proj.weight": [72, 40], "mlp.down_proj.weight": [40, 36],
  }),
};

describe("qwen2", () => {
  const src = tensors(qwen2Shapes, 1);

  it("round-trips every tensor and config key at f32; q/k are stored unpermuted (NEOX rotary) with their biases", () => {
    const { path, result, raw, h } = write("qwen2", qwen2Config, src);
    expect(result.skipped).toEqual([]);
    expectTensors(path, src);
    expectConfig(path, "qwen2", "Qwen2ForCausalLM", qwen2Config);
    expect(Array.from(raw("blk.1.attn_q.weight"))).toEqual(Array.from(src["model.layers.1.self_attn.q_proj.weight"].data));
    expect(Array.from(raw("blk.1.attn_k.bias"))).toEqual(Array.from(src["model.layers.1.self_attn.k_proj.bias"].data));
    expect(h.tensors.get("blk.0.attn_q.bias")!.dims).toEqual([36]);
    expect(h.tensors.has("blk.0.attn_output.bias")).toBe(false);
    // the converter writes no rotary dimension count or head size for qwen2 without head_dim
    expect([...h.metadata.keys()].filter((k) => /rope\.dimension_count|key_length/.test(k))).toEqual([]);
  });

  it("at f16, matrices read back as f16 rounds them; norms and biases stay f32", () => {
    const { path, h } = write("qwen2", qwen2Config, src, "f16");
    expect(h.tensors.get("blk.0.ffn_up.weight")!.type).toBe(1);
    expect(h.tensors.get("blk.0.attn_v.bias")!.type).toBe(0);
    expectTensors(path, src, (name, x) => (/norm|bias/.test(name) ? x : f16(x)));
  });

  it("yarn rope scaling: qwen2.rope.scaling.* ↔ rope_scaling", () => {
    const config = { ...qwen2Config, rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 16, beta_fast: 32, beta_slow: 1 } };
    const { path, meta } = write("qwen2", config, src);
    expect([meta("qwen2.rope.scaling.type"), meta("qwen2.rope.scaling.factor"), meta("qwen2.rope.scaling.original_context_length")]).toEqual(["yarn", 4, 16]);
    expectConfig(path, "qwen2", "Qwen2ForCausalLM", config);
  });
});

describe("qwen3", () => {
  const src = tensors(qwen3Shapes, 2);

  it("round-trips every tensor and config key, q/k norms and an explicit head_dim (key_length) included", () => {
    const { path, h, meta } = write("qwen3", qwen3Config, src);
    expectTensors(path, src);
    expectConfig(path, "qwen3", "Qwen3ForCausalLM", qwen3Config);
    expect([meta("qwen3.attention.key_length"), meta("qwen3.attention.value_length")]).toEqual([10, 10]);
    expect(h.tensors.get("blk.1.attn_k_norm.weight")!.dims).toEqual([10]);
    expect(h.tensors.has("output.weight")).toBe(false); // tied
  });
});

describe("llama rope scaling", () => {
  const src = tensors(llamaShapes, 3);

  it("linear: llama.rope.scaling.type and factor", () => {
    const config = { ...llamaConfig, rope_scaling: { rope_type: "linear", factor: 2.5 } };
    const { path, meta } = write("llama", config, src);
    expect([meta("llama.rope.scaling.type"), meta("llama.rope.scaling.factor")]).toEqual(["linear", 2.5]);
    expectTensors(path, src);
    expectConfig(path, "llama", "LlamaForCausalLM", config);
  });

  it("llama3: no metadata key, a rope_freqs.weight tensor of per-frequency divisors, read back into rope_scaling", () => {
    const config = { ...llamaConfig, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } };
    const { path, h, raw, result } = write("llama", config, src);
    expect([...h.metadata.keys()].filter((k) => k.includes("scaling"))).toEqual([]);
    expect(result.tensors[0]).toEqual({ name: "rope_freqs.weight", type: "F32", dims: [32] });
    const f = Array.from(raw("rope_freqs.weight"));
    // 1 for the high frequencies, 8 for the low ones, a blend of 3 between (θ 500000, 64 dimensions)
    expect([f.filter((x) => x === 1).length, f.filter((x) => x === 8).length]).toEqual([15, 14]);
    expect(f.slice(15, 18).every((x) => x > 1 && x < 8)).toBe(true);
    expectTensors(path, src);
    expectConfig(path, "llama", "LlamaForCausalLM", config);
  });

  it("llama3 factors are the converter's bit for bit (its float32 torch code, run under torch 1.13 for Llama 3.1's θ 500000, head_dim 128, factor 8)", () => {
    const f = llama3Factors(500000, 128, { factor: 8, low: 1, high: 4, ctx: 8192 });
    expect(Array.from(f.slice(29, 35))).toEqual([1.2074838876724243, 1.5534145832061768, 2.026313066482544, 2.6945300102233887, 3.684253215789795, 5.257327079772949]);
    expect([f[28], f[35], f[63]]).toEqual([1, 8, 8]);
  });

  it("llama3 factors fix only the factor and the wavelength bounds original/low and original/high: low_freq_factor 1 reads back exactly at any original context, another as the config with the same factors", () => {
    const exact = { ...llamaConfig, rope_scaling: { rope_type: "llama3", factor: 16, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 4096 } };
    expectConfig(write("llama", exact, src).path, "llama", "LlamaForCausalLM", exact);
    const config = { ...llamaConfig, rope_scaling: { rope_type: "llama3", factor: 16, low_freq_factor: 2, high_freq_factor: 8, original_max_position_embeddings: 8192 } };
    const { path, raw } = write("llama", config, src);
    const got = readHfConfig(path).rope_scaling;
    expect(got).toEqual({ rope_type: "llama3", factor: 16, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 4096 });
    const again = write("llama", { ...config, rope_scaling: got }, src);
    expect(Array.from(again.raw("rope_freqs.weight"))).toEqual(Array.from(raw("rope_freqs.weight")));
    // with the original context in the metadata, low and high are solved instead
    const named = rebuild(parseGguf(readFileSync(path)), { kv: (kv) => [...kv, { key: "llama.rope.scaling.original_context_length", type: GGUF_TYPE.U32, value: 8192 }] });
    expect(readHfConfig(named).rope_scaling).toEqual(config.rope_scaling);
  });

  it("rope scaling llama.cpp has no form for, a rope_freqs tensor of the wrong length or of no llama3 shape, are one coded line", () => {
    const dir = tmp();
    expect(inputError(() => writeGguf(join(dir, "x.gguf"), { arch: "llama", config: { ...llamaConfig, rope_scaling: { rope_type: "dynamic", factor: 2 } }, weights: memoryWeights(src), type: "f32" }))).toBe(
      "error[WF303]: config rope_scaling type 'dynamic' has no GGUF form for llama (llama.cpp's converter writes linear, yarn and llama3)",
    );
    expect(inputError(() => writeGguf(join(dir, "x.gguf"), { arch: "qwen2", config: { ...qwen2Config, rope_scaling: { rope_type: "llama3", factor: 8 } }, weights: memoryWeights(tensors(qwen2Shapes, 1)), type: "f32" }))).toBe(
      "error[WF303]: config rope_scaling type 'llama3' has no GGUF form for qwen2 (llama.cpp's converter writes linear, yarn)",
    );
    const { h } = write("llama", { ...llamaConfig, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, src);
    const withFreqs = (values: number[]) => rebuild(h, { tensors: (ts) => ts.map((t) => (t.name === "rope_freqs.weight" ? f32Tensor(t.name, values) : t)) });
    expect(inputError(() => readHfConfig(withFreqs(Array(31).fill(1))))).toBe(
      "error[WF305]: model.gguf: tensor 'rope_freqs.weight' has dims [31], expected [32] (one factor per pair of the 64 rotary dimensions)",
    );
    expect(inputError(() => readHfConfig(withFreqs(Array.from({ length: 32 }, (_, i) => 32 - i))))).toBe(
      "error[WF408]: model.gguf: tensor 'rope_freqs.weight' holds factors that no llama3 rope_scaling gives (rope theta 500000, 64 rotary dimensions)",
    );
  });
});

describe("gemma", () => {
  it("norm gains are stored + 1 (f32) and read back − 1: bf16 gains exactly; lm_head is dropped and the head tied", () => {
    const src = tensors({ ...gemmaShapes, "lm_head.weight": [71, 32] }, 4, (x) => bf16(0.5 * x));
    const { path, raw, result, h, meta } = write("gemma", gemmaConfig, src);
    expect(result.skipped).toEqual(["lm_head.weight"]);
    expect(h.tensors.has("output.weight")).toBe(false);
    const gain = src["model.layers.1.post_attention_layernorm.weight"].data;
    expect(Array.from(raw("blk.1.ffn_norm.weight"))).toEqual(Array.from(gain, (x) => Math.fround(x + 1)));
    expect(Array.from(raw("blk.1.attn_q.weight"))).toEqual(Array.from(src["model.layers.1.self_attn.q_proj.weight"].data)); // NEOX: unpermuted
    delete src["lm_head.weight"];
    expectTensors(path, src);
    expectConfig(path, "gemma", "GemmaForCausalLM", gemmaConfig);
    // head_dim 24 is written (key and value length); rope_theta 10000 is llama.cpp's default and not written
    expect([meta("gemma.attention.key_length"), meta("gemma.attention.value_length"), meta("gemma.rope.freq_base")]).toEqual([24, 24, undefined]);
    const theta = write("gemma", { ...gemmaConfig, rope_theta: 20000 }, src);
    expect([theta.meta("gemma.rope.freq_base"), readHfConfig(theta.path).rope_theta]).toEqual([20000, 20000]);
  });

  it("f32 gains come back within 2⁻²⁴·(|w + 1| + |w|), the two roundings of + 1 and − 1; not always exactly", () => {
    const src = tensors(gemmaShapes, 5, (x) => 0.5 * x);
    src["model.norm.weight"].data[0] = 1e-9; // 1 + 1e-9 rounds to 1: the gain reads back as 0
    const { path } = write("gemma", gemmaConfig, src);
    const g = openGguf(path);
    let inexact = 0;
    for (const [name, { data }] of Object.entries(src)) {
      const got = g.read(name);
      for (let i = 0; i < data.length; i++) {
        const w = data[i], err = Math.abs(got[i] - w);
        if (/norm/.test(name)) expect(err).toBeLessThanOrEqual(2 ** -24 * (Math.abs(w + 1) + Math.abs(w)));
        else expect(err).toBe(0);
        if (err) inexact++;
      }
    }
    expect(g.read("model.norm.weight")[0]).toBe(0);
    expect(inexact).toBeGreaterThan(10);
  });
});

describe("gemma2", () => {
  const src = tensors(gemma2Shapes, 6, (x) => bf16(0.5 * x));

  it("round-trips the four norms per layer (all + 1), the soft-caps, the sliding window and query_pre_attn_scalar as llama.cpp derives it", () => {
    const { path, h, meta } = write("gemma2", gemma2Config, src);
    for (const n of ["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"]) expect(h.tensors.get(`blk.1.${n}.weight`)!.dims).toEqual([32]);
    expect(Array.from(rawTensor(h, "blk.0.post_ffw_norm.weight"))).toEqual(Array.from(src["model.layers.0.post_feedforward_layernorm.weight"].data, (x) => Math.fround(x + 1)));
    expect(Array.from(rawTensor(h, "blk.0.ffn_norm.weight"))).toEqual(Array.from(src["model.layers.0.pre_feedforward_layernorm.weight"].data, (x) => Math.fround(x + 1)));
    expect([meta("gemma2.attn_logit_softcapping"), meta("gemma2.final_logit_softcapping"), meta("gemma2.attention.sliding_window")]).toEqual([50, 30, 16]);
    expectTensors(path, src);
    expectConfig(path, "gemma2", "Gemma2ForCausalLM", { ...gemma2Config, layer_types: ["sliding_attention", "full_attention"] });
  });

  it("query_pre_attn_scalar: hidden_size / heads for the 46-layer (27B) model, head_dim otherwise; a value llama.cpp would not derive is refused", () => {
    const { h } = write("gemma2", gemma2Config, src);
    const as46 = rebuild(h, { kv: (kv) => kv.map((e) => (e.key === "gemma2.block_count" ? { ...e, value: 46 } : e)) });
    expect(readHfConfig(as46).query_pre_attn_scalar).toBe(16);
    expect(inputError(() => writeGguf(join(tmp(), "x.gguf"), { arch: "gemma2", config: { ...gemma2Config, query_pre_attn_scalar: 256 }, weights: memoryWeights(src), type: "f32" }))).toBe(
      "error[WF303]: config query_pre_attn_scalar 256 cannot be written: GGUF has no key for it and llama.cpp derives 24 (head_dim)",
    );
    expect(inputError(() => writeGguf(join(tmp(), "x.gguf"), { arch: "gemma2", config: { ...gemma2Config, layer_types: ["full_attention", "sliding_attention"] }, weights: memoryWeights(src), type: "f32" }))).toBe(
      `error[WF303]: config layer_types ["full_attention","sliding_attention"] cannot be written: llama.cpp's gemma2 slides on even layers and attends globally on odd ones`,
    );
  });
});

describe("phi3", () => {
  const src = tensors(phi3Shapes, 7);

  it("round-trips the fused qkv_proj and gate_up_proj (2·intermediate rows), LongRoPE factors as tensors, partial rotary and sliding window", () => {
    const { path, h, meta, result, raw } = write("phi3", phi3Config, src);
    expect(h.tensors.get("blk.0.attn_qkv.weight")!.dims).toEqual([40, 80]);
    expect(h.tensors.get("blk.0.ffn_up.weight")!.dims).toEqual([40, 72]);
    expect(Array.from(raw("blk.1.attn_qkv.weight"))).toEqual(Array.from(src["model.layers.1.self_attn.qkv_proj.weight"].data));
    expect(result.tensors.slice(0, 2)).toEqual([{ name: "rope_factors_long.weight", type: "F32", dims: [3] }, { name: "rope_factors_short.weight", type: "F32", dims: [3] }]);
    expect(Array.from(raw("rope_factors_long.weight"))).toEqual([1.03, 2.5, 7.125].map(Math.fround));
    expect([meta("phi3.rope.dimension_count"), meta("phi3.rope.scaling.original_context_length"), meta("phi3.attention.sliding_window")]).toEqual([6, 32, 31]);
    expect(Math.fround(meta("phi3.rope.scaling.attn_factor") as number)).toBe(Math.fround(Math.sqrt(1 + Math.log(4) / Math.log(32))));
    expectTensors(path, src);
    // factors read back as the shortest decimals of their f32 values: 1.03, not 1.0299999713897705
    expectConfig(path, "phi3", "Phi3ForCausalLM", phi3Config);
  });

  it("no sliding window is written as 0 and reads back as null; no rope_scaling, no factor tensors", () => {
    const config = { ...phi3Config, sliding_window: null, rope_scaling: undefined, partial_rotary_factor: undefined };
    const { path, h, meta } = write("phi3", config, src);
    expect([meta("phi3.attention.sliding_window"), meta("phi3.rope.dimension_count"), h.tensors.has("rope_factors_long.weight")]).toEqual([0, 10, false]);
    const got = expectConfig(path, "phi3", "Phi3ForCausalLM", { ...config, rope_scaling: undefined, partial_rotary_factor: undefined });
    expect(got.sliding_window).toBe(null);
  });

  it("factor lists and tensors of the wrong length are one coded line", () => {
    const bad = { ...phi3Config, rope_scaling: { ...phi3Config.rope_scaling, long_factor: [1, 2, 3, 4] } };
    expect(inputError(() => writeGguf(join(tmp(), "x.gguf"), { arch: "phi3", config: bad, weights: memoryWeights(src), type: "f32" }))).toBe(
      "error[WF305]: config rope_scaling.long_factor has 4 values, expected 3 (one per pair of the 6 rotary dimensions)",
    );
    const { h } = write("phi3", phi3Config, src);
    const path = rebuild(h, { tensors: (ts) => ts.map((t) => (t.name === "rope_factors_short.weight" ? f32Tensor(t.name, [1, 1, 1, 1, 1]) : t)) });
    expect(inputError(() => readHfConfig(path))).toBe("error[WF305]: model.gguf: tensor 'rope_factors_short.weight' has dims [5], expected [3] (one factor per pair of the 6 rotary dimensions)");
    const alone = rebuild(h, { tensors: (ts) => ts.filter((t) => t.name !== "rope_factors_short.weight") });
    expect(inputError(() => readHfConfig(alone))).toBe("error[WF401]: model.gguf: rope_factors_long.weight without rope_factors_short.weight: LongRoPE needs both");
  });
});

describe("bad input is one coded line naming the tensor or key, with what was expected and found", () => {
  const q3 = () => tensors(qwen3Shapes, 2);
  const exportError = (arch: GgufArch, config: Config, t: Tensors) => inputError(() => writeGguf(join(tmp(), "x.gguf"), { arch, config, weights: memoryWeights(t), type: "f32" }));

  it("an architecture not mapped, on export and on import", () => {
    expect(exportError("mamba" as GgufArch, qwen2Config, q3())).toBe("error: GGUF export supports llama, qwen2, qwen3, gemma, gemma2, phi3 and gpt2, not 'mamba'");
    const { h } = write("qwen3", qwen3Config, q3());
    const path = rebuild(h, { kv: (kv) => kv.map((e) => (e.key === "general.architecture" ? { ...e, value: "mamba" } : e)) });
    expect(inputError(() => readHfConfig(path))).toBe("error[WF408]: model.gguf: architecture 'mamba' is not supported (wasmformer maps llama, qwen2, qwen3, gemma, gemma2, phi3 and gpt2)");
  });

  it("a missing tensor, on export and on import", () => {
    const t = q3();
    delete t["model.layers.1.self_attn.k_norm.weight"];
    expect(exportError("qwen3", qwen3Config, t)).toBe("error[WF401]: in-memory weights: no tensor 'model.layers.1.self_attn.k_norm.weight' (GGUF qwen3 needs it as 'blk.1.attn_k_norm.weight')");
    const q2 = tensors(qwen2Shapes, 1);
    delete q2["model.layers.0.self_attn.v_proj.bias"];
    expect(exportError("qwen2", qwen2Config, q2)).toBe("error[WF401]: in-memory weights: no tensor 'model.layers.0.self_attn.v_proj.bias' (GGUF qwen2 needs it as 'blk.0.attn_v.bias')");
    const { h } = write("qwen3", qwen3Config, q3());
    const path = rebuild(h, { tensors: (ts) => ts.filter((x) => x.name !== "blk.1.attn_q_norm.weight") });
    expect(inputError(() => openGguf(path))).toBe("error[WF401]: model.gguf: no tensor 'blk.1.attn_q_norm.weight' (qwen3 needs it for model.layers.1.self_attn.q_norm.weight)");
  });

  it("a tensor of the wrong shape, or beyond the config's layers, on export and on import", () => {
    const p = tensors(phi3Shapes, 7);
    p["model.layers.0.self_attn.qkv_proj.weight"] = { shape: [70, 40], data: new Float32Array(70 * 40) };
    expect(exportError("phi3", phi3Config, p)).toBe("error[WF305]: in-memory weights: tensor 'model.layers.0.self_attn.qkv_proj.weight' has shape [70, 40], expected [80, 40] for the config");
    const up = tensors(phi3Shapes, 7);
    up["model.layers.1.mlp.gate_up_proj.weight"] = { shape: [36, 40], data: new Float32Array(36 * 40) };
    expect(exportError("phi3", phi3Config, up)).toBe("error[WF305]: in-memory weights: tensor 'model.layers.1.mlp.gate_up_proj.weight' has shape [36, 40], expected [72, 40] for the config");
    const extra = { ...q3(), "model.layers.2.input_layernorm.weight": { shape: [36], data: new Float32Array(36) } };
    expect(exportError("qwen3", qwen3Config, extra)).toBe("error[WF305]: in-memory weights: tensor 'model.layers.2.input_layernorm.weight' is in layer 2, but the config has 2 layers");
    const { h } = write("qwen3", qwen3Config, q3());
    const path = rebuild(h, { tensors: (ts) => ts.map((x) => (x.name === "blk.0.attn_k_norm.weight" ? f32Tensor(x.name, [1, 2, 3, 4, 5, 6, 7, 8]) : x)) });
    expect(inputError(() => openGguf(path))).toBe("error[WF305]: model.gguf: tensor 'blk.0.attn_k_norm.weight' (model.layers.0.self_attn.k_norm.weight) has shape [8], expected [10] for the config");
  });

  it("a config value the GGUF cannot hold", () => {
    expect(exportError("qwen3", { ...qwen3Config, num_attention_heads: 4.5 }, q3())).toBe(
      "error[WF302]: config num_attention_heads should be a non-negative integer (GGUF qwen3.attention.head_count is u32), found 4.5",
    );
    const { hidden_size: _, ...noHidden } = qwen3Config;
    expect(exportError("qwen3", noHidden, q3())).toBe("error[WF301]: config has no 'hidden_size' (needed for GGUF qwen3.embedding_length)");
  });
});

// ---- the committed HF fixtures of each family, where present ---------------------------------

/** Config keys each family's GGUF carries (others are not in the metadata). */
const CARRIED: Record<string, string[]> = {
  common: ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "rms_norm_eps", "max_position_embeddings", "vocab_size", "tie_word_embeddings"],
  llama: ["rope_theta", "head_dim", "rope_scaling"],
  qwen2: ["rope_theta", "head_dim", "rope_scaling"],
  qwen3: ["rope_theta", "head_dim", "rope_scaling"],
  gemma: ["rope_theta", "head_dim"],
  gemma2: ["rope_theta", "head_dim", "attn_logit_softcapping", "final_logit_softcapping", "sliding_window", "query_pre_attn_scalar", "layer_types"],
  phi3: ["rope_theta", "original_max_position_embeddings", "sliding_window", "rope_scaling"],
};

for (const [family, arch] of [["qwen2", "qwen2"], ["qwen3", "qwen3"], ["llama3", "llama"], ["gemma", "gemma"], ["gemma2", "gemma2"], ["phi3", "phi3"]] as const) {
  const dir = fixtureDir(family);
  describe.skipIf(!existsSync(join(dir, "model.safetensors")))(`tests/fixtures/${family}`, () => {
    it("round-trips model.safetensors and config.json through our writer and reader", () => {
      let config = readHfConfig(dir);
      const weights = openWeights(dir);
      if (arch === "gemma2" && config.query_pre_attn_scalar !== config.head_dim) {
        // llama.cpp scales queries by 1/√head_dim for this size and GGUF has no key to say otherwise
        expect(inputError(() => write(arch, config, weights))).toBe(
          `error[WF303]: config query_pre_attn_scalar ${config.query_pre_attn_scalar} cannot be written: GGUF has no key for it and llama.cpp derives ${config.head_dim} (head_dim)`,
        );
        config = { ...config, query_pre_attn_scalar: config.head_dim };
      }
      const { path, result } = write(arch, config, weights);
      const g = openGguf(path), got = readHfConfig(path);
      const gemmaLike = arch === "gemma" || arch === "gemma2";
      for (const name of weights.names()) {
        if (result.skipped.includes(name)) continue;
        const a = weights.read(name), b = g.read(name);
        expect([name, g.info(name)?.shape]).toEqual([name, weights.info(name)!.shape]);
        if (gemmaLike && /norm\.weight$/.test(name)) for (let i = 0; i < a.length; i++) expect(Math.abs(b[i] - a[i])).toBeLessThanOrEqual(2 ** -24 * (Math.abs(a[i] + 1) + Math.abs(a[i])));
        else expect([name, Array.from(b)]).toEqual([name, Array.from(a)]);
      }
      for (const k of [...CARRIED.common, ...CARRIED[arch]]) {
        const want = config[k];
        if (want === undefined || (want === null && got[k] === undefined)) continue;
        if (k === "rope_scaling" && arch === "phi3") {
          const w = want as { long_factor: number[]; short_factor: number[] }, r = got[k] as typeof w;
          expect([r.long_factor.map(Math.fround), r.short_factor.map(Math.fround)]).toEqual([w.long_factor.map(Math.fround), w.short_factor.map(Math.fround)]);
        } else expect([k, got[k]]).toEqual([k, want]);
      }
    });
  });
}

it("the metadata's value types are the ones llama.cpp reads", () => {
  const { h } = write("phi3", phi3Config, tensors(phi3Shapes, 7));
  const type = (k: string) => h.metadata.get(k)!.type;
  expect([type("phi3.rope.scaling.attn_factor"), type("phi3.rope.freq_base"), type("phi3.attention.layer_norm_rms_epsilon")]).toEqual([GGUF_TYPE.F32, GGUF_TYPE.F32, GGUF_TYPE.F32]);
  expect([type("phi3.rope.dimension_count"), type("phi3.attention.sliding_window"), type("phi3.rope.scaling.original_context_length")]).toEqual([GGUF_TYPE.U32, GGUF_TYPE.U32, GGUF_TYPE.U32]);
  const q = write("qwen2", { ...qwen2Config, rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 16 } }, tensors(qwen2Shapes, 1)).h;
  expect(q.metadata.get("qwen2.rope.scaling.type")!.type).toBe(GGUF_TYPE.STRING);
});
