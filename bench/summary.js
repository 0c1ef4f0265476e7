// Prints the side-by-side table of bench/results/latest.json: wasmformer against ONNX Runtime
// Web (fp32) and against llama.cpp's wasm and native builds (quantized), with the ratios the
// performance issues ask for. bench/all.js runs it at the end; run it alone after single steps.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const results = fileURLToPath(new URL("./results/latest.json", import.meta.url));
const rows = JSON.parse(readFileSync(results, "utf8"));
const get = (model, system, variant, threads, metric) => rows.find((r) => r.model === model && r.system === system && (variant === undefined || r.variant === variant) && r.threads === threads && r.metric === metric)?.value;
const fmt = (x, d = 1) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
console.log("\nsummary (medians; single thread unless stated; ratios are wasmformer simd128 / ONNX Runtime Web 1 thread)\n");
// (encoders, bench/encoders.js, have their own table below)
const encoders = new Set(rows.filter((r) => r.metric.startsWith("sentences_per_s")).map((r) => r.model));
for (const model of [...new Set(rows.map((r) => r.model))].filter((m) => !encoders.has(m))) {
  const wf = (metric, variant = "simd128") => get(model, "wasmformer", variant, 1, metric);
  const ort = (metric, threads = 1) => get(model, "onnxruntime-web", "wasm", threads, metric);
  const line = (name, a, b, unit, higherIsBetter = true) =>
    console.log(`  ${name.padEnd(34)} ${fmt(a).padStart(9)} ${fmt(b).padStart(9)}  ${unit.padEnd(6)} ${a && b ? `${(higherIsBetter ? a / b : b / a).toFixed(2)}×` : ""}`);
  console.log(`${model}                      wasmformer  ORT-web`);
  line("prefill 128, all logits", wf("prefill_tokens_per_s"), ort("prefill_tokens_per_s"), "tok/s");
  line("first token of 128 (vs ORT prefill)", wf("ttft_tokens_per_s"), ort("prefill_tokens_per_s"), "tok/s");
  line("decode @ past 128", wf("decode_tokens_per_s"), ort("decode_tokens_per_s"), "tok/s");
  line("decode @ past 512", wf("decode_tokens_per_s_past512"), ort("decode_tokens_per_s_past512"), "tok/s");
  // the same figures from ORT's trial processes, both systems timed in alternation (bench/ort.js --paired)
  const paired = (metric) => get(model, "wasmformer", "simd128 paired", 1, metric);
  if (paired("decode_ratio_vs_ort") !== undefined)
    console.log(`  ${"paired in one process (ratios)".padEnd(34)} prefill ${fmt(paired("prefill_ratio_vs_ort"), 2)}×, first token ${fmt(paired("ttft_ratio_vs_ort_prefill"), 2)}×, decode @128 ${fmt(paired("decode_ratio_vs_ort"), 2)}×, @512 ${fmt(paired("decode_ratio_vs_ort_past512"), 2)}× ` +
      `(${fmt(paired("prefill_tokens_per_s"))} / ${fmt(paired("ttft_tokens_per_s"))} / ${fmt(paired("decode_tokens_per_s"))} tok/s)`);
  line("start (load vs init+create)", wf("load_time"), (ort("runtime_init_time") ?? 0) + (ort("session_create_time") ?? NaN), "s", false);
  line("peak RSS of a serving process", (wf("serve_peak_rss") ?? NaN) / 1e6, (ort("peak_rss") ?? NaN) / 1e6, "MB", false);
  console.log(`  ${"serving peak RSS / weight bytes".padEnd(34)} ${fmt(wf("serve_peak_rss_per_weight_byte"), 2).padStart(9)}`);
  console.log(`  ${"decode roofline fraction".padEnd(34)} ${fmt(wf("decode_roofline_fraction"), 2).padStart(9)}  (in alternation with the bandwidth probe: ${fmt(wf("decode_roofline_fraction_paired"), 2)})`);
  console.log(`  ${"prefill into reused logits (run's into)".padEnd(34)} ${fmt(wf("prefill_into_tokens_per_s")).padStart(9)}  tok/s (no fresh output array to touch)`);
  console.log(`  ${"relaxed SIMD prefill / decode".padEnd(34)} ${fmt(wf("prefill_tokens_per_s", "relaxed-simd")).padStart(9)} ${fmt(wf("decode_tokens_per_s", "relaxed-simd")).padStart(9)}`);
  console.log(`  ${"int8 prefill / decode".padEnd(34)} ${fmt(wf("prefill_tokens_per_s", "simd128-int8")).padStart(9)} ${fmt(wf("decode_tokens_per_s", "simd128-int8")).padStart(9)}`);
  console.log(`  ${"unfused prefill / decode".padEnd(34)} ${fmt(wf("prefill_tokens_per_s", "simd128-unfused")).padStart(9)} ${fmt(wf("decode_tokens_per_s", "simd128-unfused")).padStart(9)}`);
  console.log(`  ${"ORT 2 threads prefill / decode".padEnd(34)} ${fmt(ort("prefill_tokens_per_s", 2)).padStart(9)} ${fmt(ort("decode_tokens_per_s", 2)).padStart(9)}`);
  const t2 = (metric) => get(model, "wasmformer", "simd128", 2, metric);
  const speedup = (metric) => (t2(metric) && wf(metric) ? `${(t2(metric) / wf(metric)).toFixed(2)}×` : "–");
  console.log(`  ${"2 threads prefill / decode @128".padEnd(34)} ${fmt(t2("prefill_tokens_per_s")).padStart(9)} ${fmt(t2("decode_tokens_per_s")).padStart(9)}  tok/s  ${speedup("prefill_tokens_per_s")} / ${speedup("decode_tokens_per_s")} of 1 thread` +
    (t2("decode_speedup_vs_1_thread_paired") ? ` (decode in alternation with the 1-thread module: ${fmt(t2("decode_speedup_vs_1_thread_paired"), 2)}×)` : ""));
}

// quantized weights: wasmformer int8/int4 beside llama.cpp's wasm (wllama) and native builds
const q = (system, variant, metric) => get("llama-small-random", system, variant, 1, metric);
if (rows.some((r) => r.model === "llama-small-random" && r.system === "wasmformer" && r.variant.includes("-int"))) {
  console.log(`
llama-small-random, quantized (1 thread)      ${["fp32", "int8", "int4", "int4-min", "wllama q8", "wllama q4", "native q8", "native q4", "ORT nb8", "ORT nb4"].map((h) => h.padStart(9)).join(" ")}`);
  const cols = [["wasmformer", "simd128"], ["wasmformer", "simd128-int8"], ["wasmformer", "simd128-int4"], ["wasmformer", "simd128-int4-min"], ["wllama", "q8_0"], ["wllama", "q4_0"], ["llama.cpp-native", "q8_0"], ["llama.cpp-native", "q4_0"],
    ["onnxruntime-web", "wasm matmulnbits 8-bit"], ["onnxruntime-web", "wasm matmulnbits 4-bit"]];
  for (const [name, metric, d] of [
    ["prefill 128 (wasmformer: all logits)", "prefill_tokens_per_s", 1],
    ["first token of 128", "ttft_tokens_per_s", 1],
    ["decode @ past 128", "decode_tokens_per_s", 1],
    ["decode @ past 512", "decode_tokens_per_s_past512", 1],
    ["load", "load_time", 2],
    ["weight bytes (MB)", "weight_bytes", 1],
  ])
    console.log(`  ${name.padEnd(43)} ${cols.map(([sys, v]) => {
      // ONNX Runtime's names: session create for load, the .onnx file for the weights; its prefill is its prompt
      const m = sys !== "onnxruntime-web" ? metric : ({ load_time: "session_create_time", weight_bytes: "onnx_bytes", ttft_tokens_per_s: "prefill_tokens_per_s" })[metric] ?? metric;
      return fmt(metric === "weight_bytes" ? (q(sys, v, m) ?? NaN) / 1e6 : q(sys, v, m), d).padStart(9);
    }).join(" ")}`);
  const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "–");
  const dec = (sys, v) => q(sys, v, "decode_tokens_per_s");
  console.log(`  int8 decode: ${ratio(dec("wasmformer", "simd128-int8"), dec("wllama", "q8_0"))} wllama Q8_0, ${ratio(dec("wasmformer", "simd128-int8"), dec("wasmformer", "simd128"))} wasmformer fp32; ` +
    `int8 prompt of 128 (last-row logits, as llama.cpp computes): ${ratio(q("wasmformer", "simd128-int8", "ttft_tokens_per_s"), q("wllama", "q8_0", "ttft_tokens_per_s"))} wllama Q8_0; ` +
    `int8 prefill (all logits): ${ratio(q("wasmformer", "simd128-int8", "prefill_tokens_per_s"), q("wasmformer", "simd128", "prefill_tokens_per_s"))} fp32`);
  // the same ratios with both modules timed in alternation in the quantized run (bench/run.js)
  const pq = (v, metric) => {
    const x = q("wasmformer", v, metric);
    return x === undefined ? "–" : `${x.toFixed(2)}×`;
  };
  if (q("wasmformer", "simd128-int8", "prefill_speedup_vs_fp32_paired") !== undefined)
    console.log(`  in alternation in one process: int8 / fp32 prefill (all logits) ${pq("simd128-int8", "prefill_speedup_vs_fp32_paired")}, decode ${pq("simd128-int8", "decode_speedup_vs_fp32_paired")}; ` +
      `int4 / int8 decode ${pq("simd128-int4", "decode_speedup_vs_int8_paired")}, int4 / fp32 decode ${pq("simd128-int4", "decode_speedup_vs_fp32_paired")}`);
  const ortNb = (bits) => dec("onnxruntime-web", `wasm matmulnbits ${bits}-bit`);
  if (ortNb(8) || ortNb(4)) console.log(`  vs ONNX Runtime Web MatMulNBits: int8 decode ${ratio(dec("wasmformer", "simd128-int8"), ortNb(8))}, int4 decode ${ratio(dec("wasmformer", "simd128-int4"), ortNb(4))}`);
  console.log(`  int4 decode: ${ratio(dec("wasmformer", "simd128-int4"), dec("wasmformer", "simd128-int8"))} wasmformer int8, ${ratio(dec("wasmformer", "simd128-int4"), dec("wllama", "q4_0"))} wllama Q4_0, ${ratio(dec("wasmformer", "simd128-int4"), dec("llama.cpp-native", "q4_0"))} native Q4_0`);
  // relaxed SIMD (browsers have it; Node 20 behind a flag): 4-bit weights take 8-bit dot products
  const rx = (bits) => dec("wasmformer", `relaxed-simd-int${bits}`);
  if (rx(4) || rx(8))
    console.log(`  relaxed SIMD decode: int8 ${fmt(rx(8))}, int4 ${fmt(rx(4))} tok/s; int4 ${ratio(rx(4), rx(8))} int8 on the same module, ${ratio(rx(4), dec("wllama", "q4_0"))} wllama Q4_0, ${ratio(rx(4), dec("llama.cpp-native", "q4_0"))} native Q4_0; ` +
      `int8 ${ratio(rx(8), dec("wasmformer", "relaxed-simd"))} relaxed fp32`);
}

// compile time and peak memory on checkpoint files (bench/compile.js)
const compileRows = rows.filter((r) => r.system === "wasmformer" && String(r.variant).startsWith("compile-"));
if (compileRows.length) {
  console.log("\ncompile (a fresh `wasmformer compile` process per row)");
  for (const model of [...new Set(compileRows.map((r) => r.model))])
    for (const variant of [...new Set(compileRows.filter((r) => r.model === model).map((r) => r.variant))]) {
      const v = (metric) => compileRows.find((r) => r.model === model && r.variant === variant && r.metric === metric)?.value;
      const refused = v("compile_refused_time");
      console.log(`  ${`${model} ${variant.slice("compile-".length)}`.padEnd(34)} ${fmt(v("compile_time") ?? refused).padStart(9)} s  peak RSS ${fmt((v("compile_peak_rss") ?? NaN) / 2 ** 30, 2)} GiB${refused !== undefined ? "  (refused: too large for 32-bit memory)" : ""}`);
    }
}

// encoders: sentences/s of batches, beside ONNX Runtime Web on a [B, S] batch (bench/encoders.js)
if (encoders.size) {
  console.log("\nencoders, sentences/s (1 thread)          wasmformer   ORT-web  paired ratio (goal)");
  for (const model of encoders)
    for (const m of rows.filter((r) => r.model === model && r.system === "wasmformer" && /^ratio_vs_ort_b\d+_s\d+$/.test(r.metric))) {
      const [, B, S] = /b(\d+)_s(\d+)/.exec(m.metric).map(Number);
      const rate = (system) => get(model, system, undefined, 1, `sentences_per_s_b${B}_s${S}`);
      const goal = B >= 32 ? " (≥ 1.5×)" : B === 1 && S <= 16 ? " (≥ 2×)" : "";
      console.log(`  ${`${model} ${B} × ${S}`.padEnd(38)} ${fmt(rate("wasmformer")).padStart(9)} ${fmt(rate("onnxruntime-web")).padStart(9)}  ${m.value.toFixed(2)}×${goal}`);
    }
}
