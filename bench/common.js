// What bench/run.js (wasmformer) and bench/ort.js (ONNX Runtime Web) share: the two model
// shapes with their HF-style configs and random-weight generators, and small measuring helpers
// (the timing loop itself is the runtime's: runtime/bench.ts).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { randomGpt2Weights, randomLlamaWeights } from "./weights.js";

/** The shapes of the performance issues; `wf` is relative to the repository root. */
export const benchModels = {
  gpt2: {
    name: "gpt2-small-random",
    wf: "examples/gpt2.wf",
    shape: "d 768, 12 layers, 12 heads, vocab 50257, ffn 3072",
    config: {
      model_type: "gpt2", architectures: ["GPT2LMHeadModel"], vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12,
      n_positions: 1024, n_ctx: 1024, n_inner: 3072, layer_norm_epsilon: 1e-5, bos_token_id: 50256, eos_token_id: 50256,
    },
    weights: randomGpt2Weights,
    kvWidth: 768,
    layers: 12,
  },
  llama: {
    name: "llama-small-random",
    wf: "examples/llama.wf",
    shape: "dim 768, 12 layers, 12 heads (no GQA), SwiGLU ffn 2048, vocab 32000",
    config: {
      model_type: "llama", architectures: ["LlamaForCausalLM"], vocab_size: 32000, hidden_size: 768, num_hidden_layers: 12,
      num_attention_heads: 12, num_key_value_heads: 12, intermediate_size: 2048, max_position_embeddings: 1024,
      rms_norm_eps: 1e-6, rope_theta: 10000.0, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
    },
    weights: randomLlamaWeights,
    kvWidth: 768,
    layers: 12,
  },
  // Qwen2.5-0.5B's shape (q/k/v biases, GQA 14:2, tied 151,936-word head)
  qwen: {
    name: "qwen2.5-0.5b-random",
    wf: "examples/qwen2.wf",
    ggufArch: "qwen2",
    shape: "dim 896, 24 layers, 14 heads, 2 KV heads, SwiGLU ffn 4864, vocab 151936, tied head",
    config: {
      model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], vocab_size: 151936, hidden_size: 896, num_hidden_layers: 24,
      num_attention_heads: 14, num_key_value_heads: 2, intermediate_size: 4864, max_position_embeddings: 32768,
      rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, use_sliding_window: false, bos_token_id: 151643, eos_token_id: 151645,
    },
    weights: randomLlamaWeights,
    kvWidth: 128,
    layers: 24,
  },
};

/** Command-line options of a bench script: --flag, --name VALUE (string, number or comma list). */
export function cliOptions(argv = process.argv.slice(2)) {
  const flag = (name) => argv.includes(name);
  const str = (name, def) => {
    const i = argv.indexOf(name);
    return i < 0 ? def : argv[i + 1];
  };
  const opt = (name, def) => {
    const s = str(name, undefined);
    if (s === undefined) return def;
    const v = Number(s);
    if (!Number.isFinite(v)) throw new Error(`${name} needs a number`);
    return v;
  };
  const list = (name, def) => String(str(name, def)).split(",").filter(Boolean);
  return { argv, flag, str, opt, list };
}

/** bench/results/, where every script writes its rows. */
export const resultsDir = fileURLToPath(new URL("./results/", import.meta.url));

/**
 * Read-merge-write of bench/results/latest.json: `rows` replace earlier rows of the same
 * model, system, variant and thread count; everything else is kept. Returns how many were kept.
 */
export function mergeResults(rows) {
  mkdirSync(resultsDir, { recursive: true });
  const path = `${resultsDir}latest.json`;
  let old = [];
  if (existsSync(path)) {
    try {
      old = JSON.parse(readFileSync(path, "utf8"));
      if (!Array.isArray(old)) old = [];
    } catch {
      old = [];
    }
  }
  const key = (r) => `${r.model}|${r.system}|${r.variant}|${r.threads}`;
  const replaced = new Set(rows.map(key));
  const kept = old.filter((r) => !replaced.has(key(r)));
  writeFileSync(path, JSON.stringify([...kept, ...rows], null, 2) + "\n");
  return kept.length;
}

export const now = () => performance.now();
export { median } from "../runtime/dist/bench.js";
/** A field of /proc/self/status in bytes (VmHWM, VmRSS), NaN where there is none. */
export const procStatus = (key) => {
  try {
    const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(key + ":"));
    return line ? Number(line.split(/\s+/)[1]) * 1024 : NaN; // kB → bytes
  } catch {
    return NaN;
  }
};
export const MB = (b) => (b / 1e6).toFixed(1) + " MB";
export const log = (...a) => console.log(...a);

/** Largest |got - want| and that relative to the largest |want|; non-finite values fail. */
export function compareLogits(got, want) {
  if (got.length !== want.length) throw new Error(`validation: ${got.length} logits vs ${want.length} expected`);
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) return { maxErr: Infinity, maxRef: 1, rel: Infinity };
    maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return { maxErr, maxRef, rel: maxErr / Math.max(maxRef, 1e-30) };
}
