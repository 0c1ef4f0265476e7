// npm run bench: every system on identical random weights, one after another, each in a fresh
// process, then one table of ratios. `--quick` keeps the whole run under ~5 minutes here.
//
//   wasmformer: GPT-2 small and the LLaMA shape; plain SIMD128, relaxed SIMD, unfused (GPT-2), int8 (LLaMA)
//   ONNX Runtime Web (wasm backend, 1 and 2 threads) on an ONNX file exported from the same IR
//
// Rows accumulate in bench/results/latest.json ({model, system, variant, threads, metric, value, unit}).

import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const quick = process.argv.includes("--quick");
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const results = here("./results/latest.json");
rmSync(results, { force: true });

const node = (flags, script, args) => {
  const cmd = [...flags, here(script), ...args, ...(quick ? ["--quick"] : [])];
  console.log(`\n$ node ${cmd.join(" ")}`);
  const r = spawnSync(process.execPath, cmd, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`bench step failed (exit ${r.status}): node ${cmd.join(" ")}`);
    process.exit(1);
  }
};
const relaxed = ["--no-liftoff", "--experimental-wasm-relaxed-simd"];
node(["--no-liftoff"], "./run.js", ["--model", "gpt2"]);
// variants reuse the base runs' serving-process figures; kernel shapes are timed in the base runs
// and, for int8, in its own
node(relaxed, "./run.js", ["--model", "gpt2", "--no-serve", "--no-kernels"]);
if (!quick) node(["--no-liftoff"], "./run.js", ["--model", "gpt2", "--unfused", "--no-serve", "--no-kernels"]);
node(["--no-liftoff"], "./run.js", ["--model", "llama"]);
node(["--no-liftoff"], "./run.js", ["--model", "llama", "--quantize", "int8", "--no-serve"]);
if (!quick) node(relaxed, "./run.js", ["--model", "llama", "--no-serve", "--no-kernels"]);
node([], "./ort.js", []);

// ---- summary -------------------------------------------------------------------------------
const rows = JSON.parse(readFileSync(results, "utf8"));
const get = (model, system, variant, threads, metric) => rows.find((r) => r.model === model && r.system === system && (variant === undefined || r.variant === variant) && r.threads === threads && r.metric === metric)?.value;
const fmt = (x, d = 1) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
console.log("\nsummary (medians; single thread unless stated; ratios are wasmformer simd128 / ONNX Runtime Web 1 thread)\n");
for (const model of [...new Set(rows.map((r) => r.model))]) {
  const wf = (metric, variant = "simd128") => get(model, "wasmformer", variant, 1, metric);
  const ort = (metric, threads = 1) => get(model, "onnxruntime-web", "wasm", threads, metric);
  const line = (name, a, b, unit, higherIsBetter = true) =>
    console.log(`  ${name.padEnd(34)} ${fmt(a).padStart(9)} ${fmt(b).padStart(9)}  ${unit.padEnd(6)} ${a && b ? `${(higherIsBetter ? a / b : b / a).toFixed(2)}×` : ""}`);
  console.log(`${model}                      wasmformer  ORT-web`);
  line("prefill 128, all logits", wf("prefill_tokens_per_s"), ort("prefill_tokens_per_s"), "tok/s");
  line("first token of 128 (vs ORT prefill)", wf("ttft_tokens_per_s"), ort("prefill_tokens_per_s"), "tok/s");
  line("decode @ past 128", wf("decode_tokens_per_s"), ort("decode_tokens_per_s"), "tok/s");
  line("decode @ past 512", wf("decode_tokens_per_s_past512"), ort("decode_tokens_per_s_past512"), "tok/s");
  line("start (load vs init+create)", wf("load_time"), (ort("runtime_init_time") ?? 0) + (ort("session_create_time") ?? NaN), "s", false);
  line("peak RSS of a serving process", (wf("serve_peak_rss") ?? NaN) / 1e6, (ort("peak_rss") ?? NaN) / 1e6, "MB", false);
  console.log(`  ${"serving peak RSS / weight bytes".padEnd(34)} ${fmt(wf("serve_peak_rss_per_weight_byte"), 2).padStart(9)}`);
  console.log(`  ${"decode roofline fraction".padEnd(34)} ${fmt(wf("decode_roofline_fraction"), 2).padStart(9)}`);
  console.log(`  ${"relaxed SIMD prefill / decode".padEnd(34)} ${fmt(wf("prefill_tokens_per_s", "relaxed-simd")).padStart(9)} ${fmt(wf("decode_tokens_per_s", "relaxed-simd")).padStart(9)}`);
  console.log(`  ${"int8 prefill / decode".padEnd(34)} ${fmt(wf("prefill_tokens_per_s", "simd128-int8")).padStart(9)} ${fmt(wf("decode_tokens_per_s", "simd128-int8")).padStart(9)}`);
  console.log(`  ${"unfused prefill / decode".padEnd(34)} ${fmt(wf("prefill_tokens_per_s", "simd128-unfused")).padStart(9)} ${fmt(wf("decode_tokens_per_s", "simd128-unfused")).padStart(9)}`);
  console.log(`  ${"ORT 2 threads prefill / decode".padEnd(34)} ${fmt(ort("prefill_tokens_per_s", 2)).padStart(9)} ${fmt(ort("decode_tokens_per_s", 2)).padStart(9)}`);
}
