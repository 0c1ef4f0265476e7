// A Hugging Face-layout checkpoint with random weights on disk (config.json + model.safetensors),
// written tensor by tensor, for timing `compile` on real file sizes: the bench shapes plus a
// TinyLlama-1.1B shape. Not a test fixture: the values are seeded noise.
//
//   node bench/make-checkpoint.js SHAPE OUT_DIR [--dtype bf16|f32] [--seed N]
//   SHAPE: gpt2 | llama | qwen | tinyllama

import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { benchModels } from "./common.js";
import { rng } from "./weights.js";

const TINYLLAMA = {
  model_type: "llama", architectures: ["LlamaForCausalLM"], vocab_size: 32000, hidden_size: 2048, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, intermediate_size: 5632, max_position_embeddings: 2048,
  rms_norm_eps: 1e-5, rope_theta: 10000.0, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, torch_dtype: "bfloat16",
};

const DTYPES = { bf16: ["BF16", 2], f32: ["F32", 4] };

function main() {
  const [shapeName, out, ...rest] = process.argv.slice(2);
  const opt = (flag, dflt) => (rest.includes(flag) ? rest[rest.indexOf(flag) + 1] : dflt);
  const dtype = opt("--dtype", "bf16"), seed = Number(opt("--seed", "1"));
  const config = shapeName === "tinyllama" ? TINYLLAMA : benchModels[shapeName]?.config;
  if (!config || !out || !DTYPES[dtype]) {
    console.error("usage: node bench/make-checkpoint.js gpt2|llama|qwen|tinyllama OUT_DIR [--dtype bf16|f32] [--seed N]");
    process.exit(2);
  }
  const [stDtype, bytes] = DTYPES[dtype];
  const shapes = layoutOf(config);
  const header = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: stDtype, shape, data_offsets: [offset, offset + n * bytes] };
    offset += n * bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "config.json"), JSON.stringify({ ...config, torch_dtype: { bf16: "bfloat16", f32: "float32" }[dtype] }, null, 2));
  const fd = openSync(join(out, "model.safetensors"), "w");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, Buffer.from(json));
  const r = rng(seed);
  const CHUNK = 1 << 22;
  const f = new Float32Array(CHUNK);
  let done = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = /norm|ln_/.test(name) && shape.length === 1 && !name.endsWith(".bias");
    for (let at = 0; at < n; at += CHUNK) {
      const k = Math.min(CHUNK, n - at);
      const v = r.fill(f.subarray(0, k), 0.02, norm ? 1 : 0);
      writeSync(fd, encode(v, dtype));
    }
    done += n * bytes;
    if (process.stderr.isTTY) process.stderr.write(`\r${(done / 2 ** 20).toFixed(0)} / ${(offset / 2 ** 20).toFixed(0)} MiB`);
  }
  closeSync(fd);
  process.stderr.write(`\n${out}: ${shapes.length} tensors, ${(offset / 1e9).toFixed(2)} GB of ${dtype}\n`);
}

/** The full-size tensor list of a config (names in the bench generators' order). */
function layoutOf(config) {
  if (config.model_type === "gpt2") {
    const { vocab_size: V, n_embd: d, n_layer: L, n_positions: P, n_inner: F } = config;
    const t = [["transformer.wte.weight", [V, d]], ["transformer.wpe.weight", [P, d]]];
    for (let i = 0; i < L; i++)
      for (const [n, s] of [["ln_1.weight", [d]], ["ln_1.bias", [d]], ["attn.c_attn.weight", [d, 3 * d]], ["attn.c_attn.bias", [3 * d]], ["attn.c_proj.weight", [d, d]], ["attn.c_proj.bias", [d]], ["ln_2.weight", [d]], ["ln_2.bias", [d]], ["mlp.c_fc.weight", [d, F]], ["mlp.c_fc.bias", [F]], ["mlp.c_proj.weight", [F, d]], ["mlp.c_proj.bias", [d]]])
        t.push([`transformer.h.${i}.${n}`, s]);
    t.push(["transformer.ln_f.weight", [d]], ["transformer.ln_f.bias", [d]]);
    return t;
  }
  const { vocab_size: V, hidden_size: d, num_hidden_layers: L, intermediate_size: F } = config;
  const H = config.num_attention_heads, Hkv = config.num_key_value_heads ?? H, hd = config.head_dim ?? d / H;
  const t = [["model.embed_tokens.weight", [V, d]]];
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    t.push([`${p}.input_layernorm.weight`, [d]], [`${p}.self_attn.q_proj.weight`, [H * hd, d]], [`${p}.self_attn.k_proj.weight`, [Hkv * hd, d]], [`${p}.self_attn.v_proj.weight`, [Hkv * hd, d]], [`${p}.self_attn.o_proj.weight`, [d, H * hd]]);
    if (config.model_type === "qwen2") t.push([`${p}.self_attn.q_proj.bias`, [H * hd]], [`${p}.self_attn.k_proj.bias`, [Hkv * hd]], [`${p}.self_attn.v_proj.bias`, [Hkv * hd]]);
    t.push([`${p}.post_attention_layernorm.weight`, [d]], [`${p}.mlp.gate_proj.weight`, [F, d]], [`${p}.mlp.up_proj.weight`, [F, d]], [`${p}.mlp.down_proj.weight`, [d, F]]);
  }
  t.push(["model.norm.weight", [d]]);
  if (!config.tie_word_embeddings) t.push(["lm_head.weight", [V, d]]);
  return t;
}

/** f32 values as little-endian bytes of `dtype` (bf16 rounded to nearest even). */
function encode(v, dtype) {
  if (dtype === "f32") return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const o = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) o[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return new Uint8Array(o.buffer);
}

main();
