// npm run bench: every system on identical random weights, one after another, each in a fresh
// process, then one table of ratios. `--quick` keeps the whole run under ~5 minutes here.
//
//   wasmformer: GPT-2 small and the LLaMA shape; plain SIMD128 on 1 and 2 threads, relaxed SIMD,
//               unfused (GPT-2, full run), int8, int4 and int4-min (LLaMA; int4 and int4-min in the full run),
//               int8 and int4 on relaxed SIMD (LLaMA, full run)
//   ONNX Runtime Web (wasm backend, 1 and 2 threads) on an ONNX file exported from the same IR;
//               in the full run also its MatMulNBits models of the int8/int4 LLaMA (1 thread)
//   llama.cpp (full run): its wasm build (wllama, Chromium) and native build (node-llama-cpp) on a
//               GGUF file of the same LLaMA weights, Q8_0 and Q4_0 (bench/llamacpp.js)
//   encoders:   sentence embeddings of a DistilBERT-base and an all-MiniLM-L6 shape, batches of 1 and 32
//               sentences of 16 and 128 tokens, beside ONNX Runtime Web on [B, S] batches (bench/encoders.js)
//   ViT:        one 224 × 224 image through a ViT-base-shaped classifier beside ONNX Runtime Web on its
//               ONNX export (bench/vit.js; full run)
//   compile:    time and peak RSS of `wasmformer compile` on GPT-2-small and a TinyLlama-1.1B shape,
//               fp32 and int4 (bench/compile.js; --quick: GPT-2-small)
//   LoRA:       the int4 LLaMA shape's decode step with rank-16 run-time adapter slots, empty and
//               holding an adapter, against the plain artifact; adapter switch time (bench/lora.js, ~25 s)
//
// Rows accumulate in bench/results/latest.json ({model, system, variant, threads, metric, value, unit}).

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const quick = process.argv.includes("--quick");
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const results = here("./results/latest.json");
rmSync(results, { force: true });

const steps = [];
// run.js's first run of a model leaves its artifact here for the variant runs of the same weights
const cache = mkdtempSync(join(tmpdir(), "wasmformer-bench-"));
process.on("exit", () => rmSync(cache, { recursive: true, force: true }));
const node = (flags, script, args) => {
  const cmd = [...flags, here(script), ...args, ...(script === "./run.js" ? ["--cache", cache] : []), ...(quick ? ["--quick"] : [])];
  console.log(`\n$ node ${cmd.join(" ")}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, cmd, { stdio: "inherit" });
  steps.push([cmd.filter((c) => !c.startsWith("/") && c !== "--cache").join(" "), (performance.now() - t0) / 1000]);
  if (r.status !== 0) {
    console.error(`bench step failed (exit ${r.status}): node ${cmd.join(" ")}`);
    process.exit(1);
  }
};
const relaxed = ["--no-liftoff", "--experimental-wasm-relaxed-simd"];
node(["--no-liftoff"], "./run.js", ["--model", "gpt2"]);
// variants reuse the base runs' serving-process figures; kernel shapes are timed in the base runs
// and, for int8, in its own
// (--quick: variants skip decode at past 512, which the base runs measure)
const variant = quick ? ["--no-serve", "--no-kernels", "--no-long"] : ["--no-serve", "--no-kernels"];
node(relaxed, "./run.js", ["--model", "gpt2", ...variant]);
if (!quick) node(["--no-liftoff"], "./run.js", ["--model", "gpt2", "--unfused", "--no-serve", "--no-kernels"]);
node(["--no-liftoff"], "./run.js", ["--model", "gpt2", "--threads", "2", ...variant]);
// each model's ONNX Runtime figures are taken right after its own wasmformer base runs: this VM's
// speed drifts over minutes, and a ratio of figures taken a quarter of an hour apart carries that
// (its 1-thread trials also time wasmformer's artifact in alternation with it: --paired-cache)
node([], "./ort.js", ["--models", "gpt2", "--paired-cache", cache]);
node(["--no-liftoff"], "./run.js", ["--model", "llama"]);
node(["--no-liftoff"], "./run.js", ["--model", "llama", "--threads", "2", ...variant]);
node([], "./ort.js", ["--models", "llama", "--paired-cache", cache]);
node(["--no-liftoff"], "./run.js", ["--model", "llama", "--quantize", "int8", "--no-serve"]);
if (!quick) node(["--no-liftoff"], "./run.js", ["--model", "llama", "--quantize", "int4", "--no-serve"]);
if (!quick) node(["--no-liftoff"], "./run.js", ["--model", "llama", "--quantize", "int4-min", "--no-serve", "--no-kernels"]);
if (!quick) node(relaxed, "./run.js", ["--model", "llama", "--no-serve", "--no-kernels"]);
// relaxed SIMD's 8-bit dot products on 4-bit weights, beside int8 on the same module
if (!quick) for (const q of ["int8", "int4"]) node(relaxed, "./run.js", ["--model", "llama", "--quantize", q, "--no-serve", "--no-kernels", "--no-long"]);
if (!quick) {
  // ONNX Runtime Web on the same quantized weights (MatMulNBits): slow, so one process, decode at 128
  const nbits = ["--models", "llama", "--threads", "1", "--pasts", "128", "--repeats", "1", "--prefill-repeats", "1", "--decode-steps", "8"];
  node([], "./ort.js", [...nbits, "--quantize", "int8"]);
  node([], "./ort.js", [...nbits, "--quantize", "int4"]);
  node([], "./llamacpp.js", []);
}

// encoder embeddings beside ONNX Runtime Web on [B, S] batches (--quick: the MiniLM shape only)
node([], "./encoders.js", quick ? ["--models", "minilm"] : []);

// image classification (ViT-base shape) beside ONNX Runtime Web
if (!quick) node(["--no-liftoff"], "./vit.js", []);

// compile time and peak memory on checkpoint files (--quick: GPT-2-small only)
node([], "./compile.js", quick ? ["--models", "gpt2"] : []);

// the cost of a run-time LoRA adapter on the int4 LLaMA shape
node(["--no-liftoff"], "./lora.js", []);

// ---- summary (also `node bench/summary.js` on the rows of any earlier run) ------------------
await import("./summary.js");
console.log(`\nsteps: ${steps.map(([c, s]) => `${s.toFixed(0)} s  ${c}`).join("\n       ")}\ntotal ${steps.reduce((a, [, s]) => a + s, 0).toFixed(0)} s`);
