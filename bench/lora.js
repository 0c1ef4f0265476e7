// Cost of a run-time LoRA adapter on the LLaMA-shape int4 model (bench/common.js's llama: dim 768,
// 12 layers, SwiGLU 2048, vocab 32000; random weights): the same artifact's decode step with its
// rank-16 slots on every attention and MLP projection empty (the base) and holding an adapter,
// against the plain int4 artifact without slots; and the time of an adapter switch.
// One thread. Not a test: `npm run build && node bench/lora.js [--rank 16] [--steps 24]`.

import { generateArtifact, memoryWeights, programFromSource, runPipeline, selectPasses, withQuantization } from "../dist/compiler/index.js";
import { loraLayout, quantizeWithSlots, withLoraSlots } from "../dist/compiler/lora.js";
import { LoraSlots } from "../runtime/dist/lora.js";
import { Model } from "../runtime/dist/model.js";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { benchModels, median } from "./common.js";
import { rng } from "./weights.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RANK = arg("--rank", 16), STEPS = arg("--steps", 24);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const spec = benchModels.llama;
const cfg = spec.config;
const source = readFileSync(here("../" + spec.wf), "utf8");
const tensors = spec.weights(cfg, 7);

async function build(slots) {
  let p = programFromSource(spec.wf, source, cfg, memoryWeights(tensors, spec.name), { context: 512 });
  const q = slots ? quantizeWithSlots({ scheme: "int4" }) : "int4";
  p = runPipeline(p, {}, withLoraSlots(withQuantization(selectPasses([]), q), slots ? { rank: RANK } : undefined));
  const art = generateArtifact(p);
  const manifest = slots ? { ...art.manifest, lora: loraLayout(p, art, RANK) } : art.manifest;
  return Model.load({ manifest, wasm: art.wasm, weights: art.weights });
}

/** Median ms of a decode step at ~128 cached rows. */
function decodeStep(model) {
  const entry = model.manifest.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
  model.reset();
  model.run(entry, { ids: Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % 32000) });
  const ms = [];
  for (let i = 0, id = 100; i < STEPS; i++, id = (id * 31 + 7) % 32000) {
    const t = performance.now();
    model.run(entry, { ids: [id] });
    ms.push(performance.now() - t);
  }
  return median(ms.slice(4));
}

/** A random rank-RANK PEFT adapter on every slot of the artifact. */
function randomAdapter(slots, seed) {
  const r = rng(seed);
  const E = cfg.hidden_size, I = cfg.intermediate_size;
  const shape = { q_proj: [E, E], k_proj: [E, E], v_proj: [E, E], o_proj: [E, E], gate_proj: [E, I], up_proj: [E, I], down_proj: [I, E] };
  const modules = slots.modules.map((module) => {
    const [inp, out] = shape[module.split(".").at(-1)];
    const a = new Float32Array(RANK * inp), b = new Float32Array(out * RANK);
    r.fill(a, 0.02);
    r.fill(b, 0.02);
    return { module, r: RANK, in: inp, out, scale: 2, a, b, aName: `${module}.lora_A`, bName: `${module}.lora_B` };
  });
  return { source: `random-${seed}`, fanInFanOut: false, modules };
}

const plain = await build(false);
const base = decodeStep(plain);
const model = await build(true);
const slots = new LoraSlots(model);
const empty = decodeStep(model);
slots.load("a", randomAdapter(slots, 1));
slots.load("b", randomAdapter(slots, 2));
slots.use("a");
const withAdapter = decodeStep(model);
const switches = [];
for (let i = 0; i < 40; i++) {
  const t = performance.now();
  slots.use(i % 2 ? "a" : "b");
  switches.push(performance.now() - t);
}
const sw = median(switches);
const pct = (x) => `${(((x - base) / base) * 100).toFixed(1)}%`;
console.log(`| model | decode step (ms) | vs plain int4 |`);
console.log(`|---|---|---|`);
console.log(`| ${spec.name} int4, no slots | ${base.toFixed(2)} | |`);
console.log(`| same, rank-${RANK} slots on ${slots.modules.length} projections, none applied | ${empty.toFixed(2)} | ${pct(empty)} |`);
console.log(`| same, rank-${RANK} adapter applied | ${withAdapter.toFixed(2)} | ${pct(withAdapter)} |`);
console.log(`adapter switch: ${sw.toFixed(3)} ms (median of 40)`);
