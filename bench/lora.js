// Cost of a run-time LoRA adapter on the LLaMA-shape int4 model (bench/common.js's llama: dim 768,
// 12 layers, SwiGLU 2048, vocab 32000; random weights): the same artifact's decode step with its
// rank-16 slots on every attention and MLP projection empty (the base) and holding an adapter,
// against the plain int4 artifact without slots; and the time of an adapter switch. The three are
// timed in turn by the runtime's loop (runtime/bench.ts: 8 decode steps at 128 cached rows a
// repetition), their costs paired repetition by repetition.
// One thread. Not a test: `npm run build && node bench/lora.js [--rank 16] [--repetitions 15]`.

import { generateArtifact, memoryWeights, programFromSource, runPipeline, selectPasses, withQuantization } from "../dist/compiler/index.js";
import { loraLayout, withLoraSlots } from "../dist/compiler/lora.js";
import { LoraSlots } from "../runtime/dist/lora.js";
import { Model } from "../runtime/dist/model.js";
import { benchSubjects, median, modelSubject, speedups } from "../runtime/dist/bench.js";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { benchModels } from "./common.js";
import { rng } from "./weights.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RANK = arg("--rank", 16), REPETITIONS = arg("--repetitions", 15);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const spec = benchModels.llama;
const cfg = spec.config;
const source = readFileSync(here("../" + spec.wf), "utf8");
const tensors = spec.weights(cfg, 7);

/** The int4 artifact, with rank-RANK slots on every projection when `slots`. */
function build(slots) {
  let p = programFromSource(spec.wf, source, cfg, memoryWeights(tensors, spec.name), { context: 512 });
  p = runPipeline(p, {}, withLoraSlots(withQuantization(selectPasses([]), "int4"), slots ? { rank: RANK } : undefined));
  const art = generateArtifact(p);
  const manifest = slots ? { ...art.manifest, lora: loraLayout(p, art, RANK) } : art.manifest;
  return () => Model.load({ manifest, wasm: art.wasm, weights: art.weights });
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

const plain = await build(false)();
const loadSlotted = build(true);
// two instances of the slotted artifact: one left empty, one holding an adapter
const empty = await loadSlotted();
const model = await loadSlotted();
const slots = new LoraSlots(model);
slots.load("a", randomAdapter(slots, 1));
slots.load("b", randomAdapter(slots, 2));
slots.use("a");
const [[base], [none], [applied]] = await benchSubjects([plain, empty, model].map((m) => modelSubject(m)), {
  prompt: [],
  gen: [8],
  depths: [128],
  fixedDepth: true,
  repetitions: REPETITIONS,
});
const stepMs = (r) => (1000 * median(r.seconds)) / 8;
const switches = [];
for (let i = 0; i < 40; i++) {
  const t = performance.now();
  slots.use(i % 2 ? "a" : "b");
  switches.push(performance.now() - t);
}
const sw = median(switches);
// cost: how much longer than the plain artifact's step, repetition by repetition
const cost = (r) => {
  const c = speedups(r, base).map((x) => (x - 1) * 100);
  return `${median(c).toFixed(1)}% (${Math.min(...c).toFixed(1)} to ${Math.max(...c).toFixed(1)})`;
};
console.log(`| model | decode step @128 (ms, median) | cost vs plain int4, paired median (range over ${REPETITIONS}) |`);
console.log(`|---|---|---|`);
console.log(`| ${spec.name} int4, no slots | ${stepMs(base).toFixed(2)} | |`);
console.log(`| same, rank-${RANK} slots on ${slots.modules.length} projections, none applied | ${stepMs(none).toFixed(2)} | ${cost(none)} |`);
console.log(`| same, rank-${RANK} adapter applied | ${stepMs(applied).toFixed(2)} | ${cost(applied)} |`);
console.log(`adapter switch: ${(1000 * sw).toFixed(1)} µs (median of 40; max ${(1000 * Math.max(...switches)).toFixed(1)} µs)`);
