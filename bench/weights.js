// Random weights for the benchmarks, made in process from a seed (shared by bench/run.js and
// bench/ort.js so both systems run the very same model). Tensors are keyed by their Hugging Face
// names: { name: { shape, data: Float32Array } }, as compiler/weights/memory.ts reads them.

/**
 * Seeded normal-ish values, fast enough for 124 M weights on a busy 2-core machine: a pool of
 * 2^20 Box–Muller normals (xorshift128 uniforms), copied out in 4096-value chunks that each
 * start at a random pool offset.
 */
export function rng(seed) {
  let x = seed >>> 0 || 1, y = 362436069, z = 521288629, w = 88675123;
  const next = () => {
    const t = x ^ (x << 11);
    x = y; y = z; z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return w;
  };
  const POOL = 1 << 20, CHUNK = 4096;
  const pool = new Float32Array(POOL + CHUNK);
  for (let i = 0; i < pool.length; i += 2) {
    const u1 = (next() + 1) / 4294967297, u2 = next() / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    pool[i] = r * Math.cos(2 * Math.PI * u2);
    pool[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return {
    fill(a, std, mean = 0) {
      for (let off = 0; off < a.length; off += CHUNK) {
        const src = next() % POOL, n = Math.min(CHUNK, a.length - off);
        for (let j = 0; j < n; j++) a[off + j] = mean + std * pool[src + j];
      }
      return a;
    },
  };
}

export function randomGpt2Weights(cfg, seed) {
  const r = rng(seed);
  const { vocab_size: V, n_embd: d, n_layer: L, n_positions: P, n_inner: F } = cfg;
  const t = {};
  const add = (name, shape, std = 0.02, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    t[`transformer.${name}`] = { shape, data: r.fill(new Float32Array(n), std, mean) };
  };
  add("wte.weight", [V, d]);
  add("wpe.weight", [P, d], 0.01);
  for (let i = 0; i < L; i++) {
    add(`h.${i}.ln_1.weight`, [d], 0.02, 1);
    add(`h.${i}.ln_1.bias`, [d]);
    add(`h.${i}.attn.c_attn.weight`, [d, 3 * d]);
    add(`h.${i}.attn.c_attn.bias`, [3 * d]);
    add(`h.${i}.attn.c_proj.weight`, [d, d]);
    add(`h.${i}.attn.c_proj.bias`, [d]);
    add(`h.${i}.ln_2.weight`, [d], 0.02, 1);
    add(`h.${i}.ln_2.bias`, [d]);
    add(`h.${i}.mlp.c_fc.weight`, [d, F]);
    add(`h.${i}.mlp.c_fc.bias`, [F]);
    add(`h.${i}.mlp.c_proj.weight`, [F, d]);
    add(`h.${i}.mlp.c_proj.bias`, [d]);
  }
  add("ln_f.weight", [d], 0.02, 1);
  add("ln_f.bias", [d]);
  return t;
}

/**
 * LLaMA-layout random weights (HF LlamaForCausalLM names; Qwen2's biases and a tied head where the
 * config says), from the same generator: std 0.02 everywhere, RMSNorm gains 1 ± 0.02.
 */
export function randomLlamaWeights(cfg, seed) {
  const r = rng(seed);
  const { vocab_size: V, hidden_size: d, num_hidden_layers: L, intermediate_size: F } = cfg;
  const H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H, hd = cfg.head_dim ?? d / H;
  const t = {};
  const add = (name, shape, std = 0.02, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    t[name] = { shape, data: r.fill(new Float32Array(n), std, mean) };
  };
  add("model.embed_tokens.weight", [V, d]);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [d], 0.02, 1);
    add(`${p}.self_attn.q_proj.weight`, [H * hd, d]);
    add(`${p}.self_attn.k_proj.weight`, [Hkv * hd, d]);
    add(`${p}.self_attn.v_proj.weight`, [Hkv * hd, d]);
    add(`${p}.self_attn.o_proj.weight`, [d, H * hd]);
    add(`${p}.post_attention_layernorm.weight`, [d], 0.02, 1);
    add(`${p}.mlp.gate_proj.weight`, [F, d]);
    add(`${p}.mlp.up_proj.weight`, [F, d]);
    add(`${p}.mlp.down_proj.weight`, [d, F]);
  }
  add("model.norm.weight", [d], 0.02, 1);
  // Qwen2's q/k/v biases; a tied checkpoint has no lm_head
  if (cfg.model_type === "qwen2")
    for (let i = 0; i < L; i++) for (const [m, n] of [["q", H * hd], ["k", Hkv * hd], ["v", Hkv * hd]]) add(`model.layers.${i}.self_attn.${m}_proj.bias`, [n]);
  if (!cfg.tie_word_embeddings) add("lm_head.weight", [V, d]);
  return t;
}

/**
 * Encoder random weights for bench/encoders.js: a bare BertModel (all-MiniLM-L6's layout) or
 * DistilBertModel, HF names, std 0.02, LayerNorm gains 1 ± 0.02.
 */
export function randomEncoderWeights(cfg, seed) {
  const r = rng(seed);
  const t = {};
  const add = (name, shape, std = 0.02, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    t[name] = { shape, data: r.fill(new Float32Array(n), std, mean) };
  };
  const distil = cfg.model_type === "distilbert";
  const d = distil ? cfg.dim : cfg.hidden_size, F = distil ? cfg.hidden_dim : cfg.intermediate_size, L = distil ? cfg.n_layers : cfg.num_hidden_layers;
  const ln = (name) => {
    add(`${name}.weight`, [d], 0.02, 1);
    add(`${name}.bias`, [d]);
  };
  const lin = (name, n, k) => {
    add(`${name}.weight`, [n, k]);
    add(`${name}.bias`, [n]);
  };
  add("embeddings.word_embeddings.weight", [cfg.vocab_size, d]);
  add("embeddings.position_embeddings.weight", [cfg.max_position_embeddings, d]);
  if (!distil) add("embeddings.token_type_embeddings.weight", [cfg.type_vocab_size, d]);
  ln("embeddings.LayerNorm");
  for (let i = 0; i < L; i++) {
    const p = distil ? `transformer.layer.${i}` : `encoder.layer.${i}`;
    const names = distil
      ? { q: "attention.q_lin", k: "attention.k_lin", v: "attention.v_lin", o: "attention.out_lin", ln1: "sa_layer_norm", up: "ffn.lin1", down: "ffn.lin2", ln2: "output_layer_norm" }
      : { q: "attention.self.query", k: "attention.self.key", v: "attention.self.value", o: "attention.output.dense", ln1: "attention.output.LayerNorm", up: "intermediate.dense", down: "output.dense", ln2: "output.LayerNorm" };
    for (const m of ["q", "k", "v", "o"]) lin(`${p}.${names[m]}`, d, d);
    ln(`${p}.${names.ln1}`);
    lin(`${p}.${names.up}`, F, d);
    lin(`${p}.${names.down}`, d, F);
    ln(`${p}.${names.ln2}`);
  }
  return t;
}

/**
 * ViTForImageClassification random weights for bench/vit.js: HF names and shapes, std 0.02,
 * LayerNorm gains 1 ± 0.02.
 */
export function randomVitWeights(cfg, seed) {
  const r = rng(seed);
  const t = {};
  const add = (name, shape, std = 0.02, mean = 0) => (t[name] = { shape, data: r.fill(new Float32Array(shape.reduce((a, b) => a * b, 1)), std, mean) });
  const d = cfg.hidden_size, F = cfg.intermediate_size, p = cfg.patch_size, grid = Math.floor(cfg.image_size / p);
  const lin = (name, n, k) => (add(`${name}.weight`, [n, k]), add(`${name}.bias`, [n]));
  const ln = (name) => (add(`${name}.weight`, [d], 0.02, 1), add(`${name}.bias`, [d]));
  add("vit.embeddings.cls_token", [1, 1, d]);
  add("vit.embeddings.position_embeddings", [1, grid * grid + 1, d]);
  add("vit.embeddings.patch_embeddings.projection.weight", [d, cfg.num_channels, p, p]);
  add("vit.embeddings.patch_embeddings.projection.bias", [d]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const l = `vit.encoder.layer.${i}`;
    ln(`${l}.layernorm_before`);
    for (const m of ["query", "key", "value"]) lin(`${l}.attention.attention.${m}`, d, d);
    lin(`${l}.attention.output.dense`, d, d);
    ln(`${l}.layernorm_after`);
    lin(`${l}.intermediate.dense`, F, d);
    lin(`${l}.output.dense`, d, F);
  }
  ln("vit.layernorm");
  lin("classifier", cfg.num_labels, d);
  return t;
}
