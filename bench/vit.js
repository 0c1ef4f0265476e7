// Image classification: a ViT-base-shaped ViTForImageClassification (224 × 224, patch 16, 768
// wide, 12 layers, 12 heads, ffn 3072, 1000 labels) with random weights, wasmformer beside ONNX
// Runtime Web (wasm backend) on the same program exported by `export-onnx`, one thread each.
//
//   node --no-liftoff bench/vit.js [--rounds N] [--seed N]
//
// Method: the weights are made in-process (seeded normal noise, HF tensor names), compiled
// (examples/vit.wf) and exported to ONNX (pixel_values [1, 3, 224, 224]); the two systems' logits
// of one image must agree (1e-3 relative) before anything is timed. A repetition classifies one
// image on each system in turn, the one going first alternating (runtime/bench.ts benchSubjects);
// reported: each system's median images/s and the median of the repetitions' ratios. Rows go to
// bench/results/latest.json.

import os from "node:os";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { exportOnnx, generateArtifact, memoryWeights, passes, programFromSource, runPipeline } from "../dist/compiler/index.js";
import { Model, pickVariant } from "../runtime/dist/index.js";
import { benchSubjects, speedups } from "../runtime/dist/bench.js";
import { cliOptions, compareLogits, log, median, mergeResults, now } from "./common.js";
import { randomVitWeights, rng } from "./weights.js";

const { opt } = cliOptions();
const ROUNDS = opt("--rounds", 7);
const SEED = opt("--seed", 1234);
const NAME = "vit-base-patch16-224-random";
const config = {
  model_type: "vit", architectures: ["ViTForImageClassification"], hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12,
  intermediate_size: 3072, image_size: 224, patch_size: 16, num_channels: 3, qkv_bias: true, layer_norm_eps: 1e-12, hidden_act: "gelu", num_labels: 1000,
};

const ort = await import("onnxruntime-web");
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";
const ortVersion = JSON.parse(readFileSync(fileURLToPath(new URL("../node_modules/onnxruntime-web/package.json", import.meta.url)), "utf8")).version;
log(`ViT bench: ${NAME}; wasmformer (1 thread) and onnxruntime-web ${ortVersion} (wasm, 1 thread); ${ROUNDS} paired rounds`);
log(`node ${process.version}; host CPUs: ${os.availableParallelism?.() ?? os.cpus().length} (${os.cpus()[0]?.model ?? "?"})`);

let t0 = now();
const wf = "examples/vit.wf";
const program = runPipeline(
  programFromSource(wf, readFileSync(fileURLToPath(new URL(`../${wf}`, import.meta.url)), "utf8"), config, memoryWeights(randomVitWeights(config, SEED), "random ViT weights")),
  {},
  passes,
);
const art = generateArtifact(program);
const onnx = exportOnnx(program);
const variant = pickVariant(art.manifest.variants);
const model = await Model.load({ manifest: art.manifest, wasm: art.variants.find((v) => v.file === variant.file).wasm, weights: art.weights });
const sess = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"] });
log(`weights, compile, export and load: ${((now() - t0) / 1000).toFixed(1)} s; module ${variant.file}; ONNX ${(onnx.byteLength / 1e6).toFixed(1)} MB`);

const [C, S] = [config.num_channels, config.image_size];
const image = (seed) => rng(seed).fill(new Float32Array(C * S * S), 1, 0);
const ortLogits = async (pixels) => (await sess.run({ pixel_values: new ort.Tensor("float32", pixels, [1, C, S, S]) })).logits.data;
const wfLogits = (pixels) => model.runImage("forward", pixels).logits;
{
  const pixels = image(SEED + 1);
  const v = compareLogits(wfLogits(pixels), await ortLogits(pixels));
  log(`validate (one image's 1000 logits): max abs err ${v.maxErr.toExponential(2)}, relative ${v.rel.toExponential(2)}`);
  if (!(v.rel <= 1e-3)) throw new Error(`validation FAILED: relative error ${v.rel} > 1e-3; not benchmarking a wrong model`);
}

// a repetition classifies one image (made from the test's seed) on each system
const pixels = image(SEED + 2);
const subject = (classify) => ({ context: 1, vocab: 2, reset() {}, feed: async () => void (await classify(pixels)) });
const [[mine], [peer]] = await benchSubjects([subject(wfLogits), subject(ortLogits)], { prompt: [1], gen: [], repetitions: ROUNDS, seed: SEED });
const ratios = speedups(peer, mine);
const [wfRate, ortRate, ratio] = [1 / median(mine.seconds), 1 / median(peer.seconds), median(ratios)];
log(`one 224 × 224 image: wasmformer ${wfRate.toFixed(2)} images/s (${(1000 / wfRate).toFixed(0)} ms), ORT ${ortRate.toFixed(2)} (${(1000 / ortRate).toFixed(0)} ms); paired ratio ${ratio.toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
const row = (system, metric, value, unit) => ({ model: NAME, system, variant: system === "wasmformer" ? variant.file : "wasm", threads: 1, metric, value, unit });
mergeResults([
  row("wasmformer", "images_per_s", wfRate, "images/s"),
  row("onnxruntime-web", "images_per_s", ortRate, "images/s"),
  row("wasmformer", "ratio_vs_ort", ratio, "x"),
]);
model.dispose();
await sess.release();
