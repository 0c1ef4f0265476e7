// wasmformer benchmark: prefill and decode throughput of a GPT-2-small-shaped model with random
// weights made in-process (nothing downloaded, nothing written to disk but the results).
//
//   npm run bench               (node --no-liftoff bench/run.js)
//   npm run bench -- --quick    fewer repeats, for a quick check
//   options: --context N (compiled context, default 1024), --prefill N (default 128),
//            --repeats N, --decode-steps N, --seed N, --no-validate, --threads N,
//            --no-long (skip decode at past 512), --kv-cache bf16 (compile --kv-cache)
//
// Method (llm.c / ggml habits): validate the compiled model against the IR interpreter first,
// then time each test with the runtime's timing loop (runtime/bench.ts, as `wasmformer bench`):
// a warm-up repetition, N timed ones, reported as median, min and max. Decode is measured at a
// fixed past length: the cache holds P tokens, and every timed step first rewinds it to P and
// then runs one token, so each step attends over exactly P cached rows. Ratios against another
// module (threads, quantized) time both in turn, repetition by repetition.
// The decode roofline is weight bytes per token / the wasm SIMD read bandwidth measured over the
// model's own weights in its linear memory: the best of 1, 2 and 4 streams read side by side (one
// stream reads 25-29 GB/s here, two 28-32: a kernel reading two streams beat a 1-stream roofline).
// On N threads (--threads N) it is N cores reading their slices of the weights side by side
// (bench/bandwidth.js), the bandwidth the threaded decode can reach.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import os from "node:os";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { fileURLToPath } from "node:url";
import { generateArtifact, memoryWeights, programFromSource, runPipeline, selectPasses, withKvCache, withQuantization } from "../dist/compiler/index.js";
import { Model, pickVariant } from "../runtime/dist/index.js";
import { benchSubject, benchSubjects, modelSubject, speedups } from "../runtime/dist/bench.js";
import { nodeThreads } from "../runtime/dist/node.js";
import { interpret, newSession } from "../dist/ir/interp.js";
import { integerRowBound } from "../dist/compiler/codegen/tuning.js";
import { MB, benchModels, cliOptions, compareLogits as compare, mergeResults, log, median, now, procStatus } from "./common.js";
import { peakDotGops, peakMaddGflops, peakRelaxedDotGops, timeLinear } from "./kernels.js";
import { bandwidthModule } from "../dist/compiler/measure/roofline.js";
import { parallelReadBandwidth } from "./bandwidth.js";

// ---------------------------------------------------------------------------------------------
// options

const { flag, str: strOpt, opt } = cliOptions();
const QUICK = flag("--quick");
const CONTEXT = opt("--context", 1024);
const PREFILL = opt("--prefill", 128);
const REPEATS = opt("--repeats", QUICK ? 3 : 10);
const DECODE_STEPS = opt("--decode-steps", QUICK ? 12 : 64);
const BW_REPEATS = QUICK ? 3 : 5;
const SEED = opt("--seed", 1234);
const VALIDATE = !flag("--no-validate");
// max |compiled - interpreter| / max |interpreter|. With int8, activations are quantized on the
// fly: a 1e-7 difference upstream can move a value across a rounding boundary, so the compiled
// and interpreted models may differ by a few code steps; 5e-2 still catches a wrong kernel.
const VALIDATE_TOL_FP = 1e-3, VALIDATE_TOL_INT8 = 5e-2;

const MODEL_KEY = strOpt("--model", "gpt2");
const UNFUSED = flag("--unfused");
const QUANT = strOpt("--quantize", undefined); // int8 | int4 | int4-min
const KV = strOpt("--kv-cache", undefined); // bf16: compile --kv-cache bf16
const VALIDATE_TOL = QUANT ? VALIDATE_TOL_INT8 : VALIDATE_TOL_FP;
const SYSTEM = "wasmformer";
const THREADS = opt("--threads", 1); // threads running the matrix kernels (model.threads.wasm above 1)

// --cache DIR (bench/all.js): the first run of a model writes its artifact and validated logits
// there; variant runs of the same weights (relaxed SIMD, threads) load them instead of making the
// weights, compiling and interpreting again, and validate against the interpreter logits stored
const CACHE = strOpt("--cache", undefined);

const specs = benchModels;
const spec = specs[MODEL_KEY];
if (!spec) throw new Error(`--model: unknown '${MODEL_KEY}' (gpt2, llama)`);
const MODEL = spec.name;
const hfConfig = spec.config;

// ---------------------------------------------------------------------------------------------
// helpers




/** Writes a file and waits until it is on disk, so that no write-back runs during the timed loops. */
function writeSynced(path, data) {
  const fd = openSync(path, "w");
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
/** The artifact's files (manifest, weights, every module variant) in `dir`, as `compile` writes them (one weights shard). */
function writeArtifact(dir) {
  mkdirSync(dir, { recursive: true });
  const shard = { file: "weights.bin", offset: 0, bytes: art.weights.byteLength, sha256: createHash("sha256").update(art.weights).digest("hex") };
  writeSynced(join(dir, "manifest.json"), JSON.stringify({ ...art.manifest, weights: { shards: [shard] } }));
  writeSynced(join(dir, "weights.bin"), art.weights);
  for (const v of art.variants) writeSynced(join(dir, v.file), v.wasm);
}

// ---------------------------------------------------------------------------------------------
// 1. model: random weights, compile

const rows = [];
let VARIANT_NOW = "pending";
const row = (metric, value, unit) => rows.push({ model: MODEL, system: SYSTEM, variant: VARIANT_NOW, threads: THREADS, metric, value, unit });
const stat = (metric, xs, unit) => {
  row(metric, median(xs), unit);
  row(`${metric}_min`, Math.min(...xs), unit);
  row(`${metric}_max`, Math.max(...xs), unit);
};

const tStart = now();
log(`wasmformer bench${QUICK ? " (--quick)" : ""}: ${MODEL} (${spec.wf}, vocab ${hfConfig.vocab_size})${UNFUSED ? ", unfused" : ""}`);
log(`node ${process.version} (${process.arch}), V8 ${process.versions.v8}, exec flags [${process.execArgv.join(" ")}]`);
log(`threads: ${THREADS}${THREADS > 1 ? " (matrix kernels split by output rows over worker threads)" : ""}; host CPUs: ${os.availableParallelism?.() ?? os.cpus().length} (${os.cpus()[0]?.model ?? "?"})`);
log(`context ${CONTEXT}, prefill ${PREFILL} tokens, ${REPEATS} repeats, ${DECODE_STEPS} decode steps at past ${PREFILL}`);
if (!process.execArgv.includes("--no-liftoff")) log("warning: not run with --no-liftoff (use `npm run bench`)");

const cacheDir = CACHE && join(CACHE, `${MODEL_KEY}${QUANT ? `-${QUANT}` : ""}${UNFUSED ? "-unfused" : ""}${KV ? `-kv-${KV}` : ""}-s${SEED}-c${CONTEXT}`);
const cached = cacheDir && existsSync(join(cacheDir, "bench.json")) ? JSON.parse(readFileSync(join(cacheDir, "bench.json"), "utf8")) : undefined;

let t0 = now();
let tensors, program0, program, art, compileS;
if (cached) {
  const manifest = JSON.parse(readFileSync(join(cacheDir, "manifest.json"), "utf8"));
  const variants = manifest.variants.map((v) => ({ ...v, wasm: readFileSync(join(cacheDir, v.file)) }));
  art = { manifest, wasm: variants[0].wasm, variants, weights: readFileSync(join(cacheDir, "weights.bin")) };
  log(`artifact of this model's first run read from ${cacheDir} in ${((now() - t0) / 1000).toFixed(2)} s (weights ${MB(art.weights.byteLength)})`);
} else {
  tensors = spec.weights(hfConfig, SEED);
  const tWeights = (now() - t0) / 1000;
  const paramCount = Object.values(tensors).reduce((s, t) => s + t.data.length, 0);
  log(`random weights: ${(paramCount / 1e6).toFixed(1)} M params (${MB(paramCount * 4)}) in ${tWeights.toFixed(2)} s`);

  const wfPath = fileURLToPath(new URL(`../${spec.wf}`, import.meta.url));
  const wfText = readFileSync(wfPath, "utf8");

  t0 = now();
  program0 = programFromSource(spec.wf, wfText, hfConfig, memoryWeights(tensors, `random ${MODEL_KEY} weights`), { context: CONTEXT });
  const tElab = now();
  program = runPipeline(program0, {}, withKvCache(withQuantization(selectPasses(UNFUSED ? ["fuse-ffn"] : []), QUANT), KV));
  const tPasses = now();
  art = generateArtifact(program);
  const tGen = now();
  compileS = (tGen - t0) / 1000;
  log(
    `compile: ${compileS.toFixed(2)} s (elaborate ${((tElab - t0) / 1000).toFixed(2)} s, passes ${((tPasses - tElab) / 1000).toFixed(2)} s, codegen ${((tGen - tPasses) / 1000).toFixed(2)} s); ` +
      `wasm ${(art.wasm.byteLength / 1e3).toFixed(1)} kB, weights ${MB(art.manifest.memory.weights_bytes)}, activations ${MB(art.manifest.memory.activation_bytes)}, memory ${MB(art.manifest.memory.pages * 65536)}`,
  );
  row("compile_time", compileS, "s");
}
const weightBytes = art.manifest.memory.weights_bytes;

// Bytes one decode step reads from the weights: every parameter in full, except tables that are
// only gathered from (embedding lookups), of which one row per token is read. Parameters are
// counted once per name, as the artifact stores them.
function decodeWeightBytes(p) {
  const g = p.graphs.find((x) => x.name === "forward");
  const users = new Map();
  for (const n of g.nodes) n.args.forEach((a, k) => users.set(a, [...(users.get(a) ?? []), { n, k }]));
  const seen = new Map();
  for (const n of g.nodes) {
    if (n.op !== "param") continue;
    const name = n.attrs.name;
    const param = p.params.get(name);
    // a block of 32 weights + a 2-byte scale: q8_0 34 bytes (1.0625 a weight), q4_0 18 (0.5625), q4_1 + a 2-byte minimum 20
    const bytes = param.quant ? param.data.length * ({ q8_0: 34, q4_0: 18, q4_1: 20 })[param.quant.scheme] / 32 : param.data.byteLength;
    const us = users.get(n.id) ?? [];
    const gatherOnly = us.length > 0 && us.every(({ n: u, k }) => u.op === "embedding" && k === 0);
    const read = gatherOnly ? (bytes / n.type.shape[0]) * us.length : bytes;
    seen.set(name, Math.max(seen.get(name) ?? 0, read));
  }
  return { read: [...seen.values()].reduce((a, b) => a + b, 0), names: [...seen.keys()] };
}
const dw = cached ? cached.dw : decodeWeightBytes(program);
// the model's distinct matrix shapes, timed alone below
const linearShapes = cached ? cached.linearShapes : [...new Map(program.graphs.find((g) => g.name === "forward").nodes
  .filter((n) => n.op === "linear")
  .map((n) => {
    const [N, K] = program.graphs.find((g) => g.name === "forward").nodes[n.args[1]].type.shape;
    return [`${K}x${N}`, { K, N, quant: n.attrs.quant }];
  })).values()];
const tied = dw.names.filter((n) => n.endsWith("^T^T"));
if (tied.length) log(`note: the artifact holds a second copy of ${tied.map((n) => n.replace(/\^T\^T$/, "")).join(", ")} as '${tied.join("', '")}' (tied weights not shared)`);
row("weight_bytes", weightBytes, "bytes");
row("wasm_bytes", art.wasm.byteLength, "bytes");
row("linear_memory_bytes", art.manifest.memory.pages * 65536, "bytes");

t0 = now();
// the variant the runtime would pick on this host (relaxed SIMD under --experimental-wasm-relaxed-simd)
const variant = pickVariant(art.manifest.variants, { threads: THREADS });
if (THREADS > 1 && !variant.features.includes("threads")) throw new Error("--threads: this host has no shared WebAssembly memory");
const VARIANT = `${variant.features.includes("relaxed-simd") ? "relaxed-simd" : "simd128"}${UNFUSED ? "-unfused" : ""}${QUANT ? `-${QUANT}` : ""}${KV ? `-kv-${KV}` : ""}`;
for (const r of rows) r.variant = VARIANT;
VARIANT_NOW = VARIANT;
log(`variant: ${VARIANT} (${variant.file})`);
const model = await Model.load({ manifest: art.manifest, wasm: art.variants.find((v) => v.file === variant.file).wasm, weights: art.weights }, { threads: THREADS, host: nodeThreads });
const loadS = (now() - t0) / 1000;
log(`Model.load: ${(loadS * 1000).toFixed(0)} ms`);
row("load_time", loadS, "s");

// ---------------------------------------------------------------------------------------------
// 2. validate against the IR interpreter (a short prompt: the interpreter is slow at this size)

const vocab = hfConfig.vocab_size;
const prompt = [464, 2068, 7586, 21831].map((x) => x % vocab); // "The quick brown fox" in GPT-2's vocabulary
if (VALIDATE) {
  t0 = now();
  let refPre, refStep;
  if (cached) {
    // the first run's logits, which it checked against the interpreter
    [refPre, refStep] = [Float32Array.from(cached.refPre), Float32Array.from(cached.refStep)];
  } else {
    const sess = newSession();
    refPre = interpret(program, "forward", { ids: Int32Array.from(prompt) }, sess).logits;
    refStep = interpret(program, "forward", { ids: Int32Array.from([625]) }, sess).logits;
  }
  const tInterp = (now() - t0) / 1000;
  model.reset();
  const gotPre = model.run("forward", { ids: prompt }).logits;
  const gotStep = model.run("forward", { ids: [625] }).logits;
  const a = compare(gotPre, refPre), b = compare(gotStep, refStep);
  const worst = a.rel >= b.rel ? a : b;
  log(
    `validate vs ${cached ? "the IR interpreter's logits stored by the first run" : `IR interpreter`} (${prompt.length}-token prefill + 1 cached step${cached ? "" : `, interpreter ${tInterp.toFixed(1)} s`}): ` +
      `max abs err ${Math.max(a.maxErr, b.maxErr).toExponential(2)} (max |logit| ${worst.maxRef.toFixed(3)}, relative ${Math.max(a.rel, b.rel).toExponential(2)})`,
  );
  row("validate_max_abs_err", Math.max(a.maxErr, b.maxErr), "abs");
  row("validate_max_rel_err", Math.max(a.rel, b.rel), "rel");
  if (!(Math.max(a.rel, b.rel) <= VALIDATE_TOL)) {
    console.error(`validation FAILED: relative error ${Math.max(a.rel, b.rel)} > ${VALIDATE_TOL}; not benchmarking a wrong model`);
    process.exit(1);
  }
  if (cacheDir && !cached) {
    // for the variant runs of these weights (see --cache)
    t0 = now();
    writeArtifact(cacheDir);
    writeSynced(join(cacheDir, "bench.json"), JSON.stringify({ dw, linearShapes, refPre: Array.from(refPre), refStep: Array.from(refStep) }));
    log(`artifact and validated logits written to ${cacheDir} for variant runs (${((now() - t0) / 1000).toFixed(2)} s)`);
  }
}

// a serving process as users run one: the artifact on disk, loadArtifact, generate; its peak RSS.
// The files are written (and synced) now, while the artifact is in memory; the process runs after
// the timed loops (run before them, it slowed them down here by a quarter).
let serveDir, serveOwnDir = false;
if (!flag("--no-serve")) {
  // the cached artifact when there is one (the same files)
  serveOwnDir = !(cacheDir && existsSync(join(cacheDir, "manifest.json")));
  serveDir = serveOwnDir ? mkdtempSync(join(os.tmpdir(), "wasmformer-serve-")) : cacheDir;
  if (serveOwnDir) writeArtifact(serveDir);
}

// --threads N: this host's single-thread module of the same artifact, loaded beside the threaded
// one, so that the speedup is also measured with the two timed in turn (section 4)
const single = THREADS > 1 ? await Model.load({ manifest: art.manifest, wasm: art.variants.find((v) => v.file === pickVariant(art.manifest.variants).file).wasm, weights: art.weights }) : undefined;
const peakBeforeReset = procStatus("VmHWM");
// the compile-side copies are no longer needed: drop them before timing
tensors = null;
program0 = program = null;
art = { manifest: art.manifest };
// reset the RSS high-water mark (Linux: clear_refs 5) after a GC, so the serving peak is known too
let servingPeak = false;
try {
  v8.setFlagsFromString("--expose-gc");
  runInNewContext("gc")();
  writeFileSync("/proc/self/clear_refs", "5");
  servingPeak = true;
} catch {
  /* not Linux or not permitted: only the whole-process peak is reported */
}
const compilePeakRss = peakBeforeReset;

// ---------------------------------------------------------------------------------------------
// 3-4. timed runs, through the runtime's timing loop (runtime/bench.ts), each test after an
// untimed warm-up repetition: the prefill with every position's logits (`forward`), the same into
// reused output arrays, the first token (`forward_last`, the last position's logits only), and
// decode steps at fixed past lengths (each step rewinds the cache to the past first)

const last = modelSubject(model); // forward_last: what generation runs
const all = modelSubject(model, { logits: "all" });
const prefillTest = { prompt: [PREFILL], gen: [], repetitions: REPEATS };
const [prefillRun] = await benchSubject(all, prefillTest);
const [prefillIntoRun] = await benchSubject(modelSubject(model, { logits: "all", reuseOutputs: true }), prefillTest);
const [ttftRun] = await benchSubject(last, prefillTest);
const LONG_PAST = Math.min(512, CONTEXT - 1);
const LONG = !flag("--no-long");
const [decodeRun, decodeLongRun] = await benchSubject(last, { prompt: [], gen: [1], depths: LONG ? [PREFILL, LONG_PAST] : [PREFILL], repetitions: DECODE_STEPS, fixedDepth: true });
const [prefillS, prefillIntoS, ttftS, decodeS] = [prefillRun, prefillIntoRun, ttftRun, decodeRun].map((r) => r.seconds);
const decodeLongS = decodeLongRun?.seconds ?? [];
/** Decode at past PREFILL, 8 steps a repetition. */
const decode8 = (repetitions, extra = {}) => ({ prompt: [], gen: [8], depths: [PREFILL], repetitions, fixedDepth: true, ...extra });

// threads: decode on N threads and on one, the two modules in turn
const pairedSpeedups = [];
if (single) {
  const [[one], [many]] = await benchSubjects([modelSubject(single), last], decode8(QUICK ? 6 : 10));
  pairedSpeedups.push(...speedups(one, many));
  single.dispose();
}

// ---------------------------------------------------------------------------------------------
// 5. roofline: wasm SIMD read bandwidth over the model's weights (in its own linear memory)

const STREAMS = [1, 2, 4];
const lo = model.manifest.memory.weights_offset;
const probes = await Promise.all(STREAMS.map(async (streams) => {
  const bw = await WebAssembly.instantiate(bandwidthModule(model.memory.buffer.byteLength / 65536, THREADS > 1, streams), { env: { memory: model.memory } });
  // each stream a 128-byte multiple, together at most the weights
  const len = Math.floor(weightBytes / streams / 128) * 128;
  const sum = bw.instance.exports.sum;
  sum(lo, lo + (1 << 16), len); // warm up the function
  /** One read of the weights: GB/s. */
  const probe = () => {
    const t = now();
    const x = sum(lo, lo + len, len);
    if (!Number.isInteger(x)) throw new Error("bandwidth sum is not an integer");
    return (streams * len) / ((now() - t) / 1000) / 1e9;
  };
  return { streams, probe, gbps: [] };
}));
for (let r = 0; r < BW_REPEATS; r++) for (const p of probes) p.gbps.push(p.probe());
// the stream count that reads fastest here is the roofline's
const best = probes.reduce((a, b) => (median(b.gbps) > median(a.gbps) ? b : a));
const gbps = best.gbps;
// bytes one decode step must read: the weights (see decodeWeightBytes) plus the K and V cache
// rows of all layers
const kvBytes = 2 * spec.layers * PREFILL * spec.kvWidth * (KV === "bf16" ? 2 : 4);
const bytesPerToken = dw.read + kvBytes;
const bestBw = Math.max(...gbps);
// on N threads the roofline is N cores reading side by side (each its slice of the weights), not
// one core: the single-core figure stays the per-kernel GEMVs' yardstick
const multi = THREADS > 1 ? await parallelReadBandwidth(model.memory, lo, weightBytes, THREADS, BW_REPEATS) : undefined;
const rooflineBw = multi ? multi.gbps : bestBw;
const rooflineTokS = (rooflineBw * 1e9) / bytesPerToken;
// the same fraction with bandwidth and decode measured in alternation, a probe then 8 steps a
// round: the VM's speed drifts, and the figures above are taken seconds to minutes apart
const pairedFractions = [];
if (THREADS === 1) {
  for (let r = 0; r < (QUICK ? 6 : 10); r++) {
    const roofline = (best.probe() * 1e9) / bytesPerToken;
    const [steps] = await benchSubject(last, decode8(1, { warmups: 0 }));
    pairedFractions.push(steps.tokensPerS / roofline);
  }
}

// per-kernel figures beside the wasm peaks: each matrix shape as a GEMV (1 row) and a GEMM (PREFILL rows)
// (skipped by --quick, which must stay under 5 minutes for all systems; --kernels forces it)
const KERNELS = flag("--kernels") || (!QUICK && !flag("--no-kernels"));
// timeLinear runs the single-threaded module the runtime picks: its own integer-path bound decides the path
const kernelsRelaxed = pickVariant(art.manifest.variants).features.includes("relaxed-simd");
const peakGflops = KERNELS ? await peakMaddGflops() : NaN;
// the integer paths' ceilings (a multiply and an add a byte pair): 8-bit products summed by
// i32x4.dot_i16x8_s, and in the relaxed module, on 4-bit weights, by i16x8.relaxed_dot_i8x16_i7x16_s
const peakDot = KERNELS && QUANT ? await peakDotGops() : NaN;
const peakRelaxedDot = KERNELS && QUANT && kernelsRelaxed ? await peakRelaxedDotGops() : NaN;
const dotPeakOf = (quant) => (kernelsRelaxed && quant !== "q8_0" ? peakRelaxedDot : peakDot);
const kernelRows = [];
if (KERNELS) {
  for (const { K, N, quant } of linearShapes) {
    const gemv = await timeLinear(K, N, 1, { quant });
    const wBytes = quant ? (K * N * { q8_0: 34, q4_0: 18, q4_1: 20 }[quant]) / 32 : K * N * 4;
    const gflops = (s) => (2 * K * N * PREFILL) / s / 1e9;
    const k = { shape: `${K}x${N}${quant ? ` ${quant}` : ""}`, gemvGBs: wBytes / gemv / 1e9 };
    row(`linear_${K}x${N}_gemv_bandwidth`, k.gemvGBs, "GB/s");
    if (quant) {
      // decode's GEMV also on dequantized f32 weights (the path it does not take), and the GEMM
      // on both paths: integer dot products on x rows quantized to q8_0, or f32 x times the
      // dequantized weights (which one a call takes depends on the scheme and K: integerRowBound)
      k.gemvDequantGBs = wBytes / (await timeLinear(K, N, 1, { quant, path: "dequantized" })) / 1e9;
      k.gemmIntegerGflops = gflops(await timeLinear(K, N, PREFILL, { quant, path: "integer", repeats: 3 }));
      k.gemmDequantGflops = gflops(await timeLinear(K, N, PREFILL, { quant, path: "dequantized", repeats: 3 }));
      // calls of up to intRows rows take the integer path (Infinity: every call)
      k.intRows = integerRowBound(quant, K, kernelsRelaxed) ?? Infinity;
      k.gemmDefault = k.intRows >= PREFILL ? "integer" : "dequantized";
      k.gemmGflops = k.gemmDefault === "integer" ? k.gemmIntegerGflops : k.gemmDequantGflops;
      k.dotPeak = dotPeakOf(quant);
      row(`linear_${K}x${N}_gemm_integer_fraction_of_dot_peak`, k.gemmIntegerGflops / k.dotPeak, "fraction");
      row(`linear_${K}x${N}_integer_path_max_rows`, Number.isFinite(k.intRows) ? k.intRows : art.manifest.context, "rows");
      row(`linear_${K}x${N}_gemv_bandwidth_dequantized_path`, k.gemvDequantGBs, "GB/s");
      row(`linear_${K}x${N}_gemm_gflops_integer_path`, k.gemmIntegerGflops, "GFLOP/s");
      row(`linear_${K}x${N}_gemm_gflops_dequantized_path`, k.gemmDequantGflops, "GFLOP/s");
    } else k.gemmGflops = gflops(await timeLinear(K, N, PREFILL, { repeats: 3 }));
    row(`linear_${K}x${N}_gemm_gflops`, k.gemmGflops, "GFLOP/s");
    kernelRows.push(k);
  }
  row("peak_f32x4_madd_gflops", peakGflops, "GFLOP/s");
  if (QUANT) row("peak_int8_dot_gops", peakDot, "GOP/s");
  if (QUANT && kernelsRelaxed) row("peak_relaxed_int8_dot_gops", peakRelaxedDot, "GOP/s");
}

// ---------------------------------------------------------------------------------------------
// 6. report

const prefillTokS = prefillS.map((s) => PREFILL / s);
const decodeTokS = decodeS.map((s) => 1 / s);
const prefillFlops = 2 * (dw.read / 4) * PREFILL; // rough: 2 flops per weight a token reads
stat("prefill_tokens_per_s", prefillTokS, "tok/s");
stat("prefill_time", prefillS, "s");
stat("prefill_into_tokens_per_s", prefillIntoS.map((s) => PREFILL / s), "tok/s");
stat("ttft_tokens_per_s", ttftS.map((s) => PREFILL / s), "tok/s");
stat("ttft_time", ttftS, "s");
stat(`decode_tokens_per_s`, decodeTokS, "tok/s");
if (LONG) stat(`decode_tokens_per_s_past${LONG_PAST}`, decodeLongS.map((s) => 1 / s), "tok/s");
stat("decode_time_per_token", decodeS.map((s) => s * 1000), "ms");
stat("mem_read_bandwidth", gbps, "GB/s");
for (const p of probes) stat(`mem_read_bandwidth_${p.streams}_stream${p.streams > 1 ? "s" : ""}`, p.gbps, "GB/s");
row("mem_read_streams", best.streams, "count");
if (multi) stat(`mem_read_bandwidth_${THREADS}_threads`, multi.rounds, "GB/s");
row("decode_bytes_per_token", bytesPerToken, "bytes");
row("decode_roofline_tokens_per_s", rooflineTokS, "tok/s");
row("decode_roofline_fraction", median(decodeTokS) / rooflineTokS, "ratio");
if (pairedFractions.length) stat("decode_roofline_fraction_paired", pairedFractions, "ratio");
if (pairedSpeedups.length) stat("decode_speedup_vs_1_thread_paired", pairedSpeedups, "x");

const rss = procStatus("VmRSS");
const servingRss = servingPeak ? procStatus("VmHWM") : NaN;
const peakRss = Math.max(compilePeakRss, procStatus("VmHWM"));
row("peak_rss", peakRss, "bytes");
if (servingPeak) row("peak_rss_after_compile", servingRss, "bytes");
row("final_rss", rss, "bytes");

// quantized runs: the same prefill and decode steps on this module and on the fp32 (and, for the
// 4-bit schemes, the int8) artifact of the same weights that the earlier runs of bench/all.js left
// in --cache, the two timed in turn: the runs themselves are minutes apart and this VM drifts.
// (Read after the RSS figures above: the second model is not part of them.)
const pairedVs = [];
if (QUANT && cacheDir && THREADS === 1) {
  for (const other of ["fp32", ...(QUANT === "int8" ? [] : ["int8"])]) {
    const dir = join(CACHE, `${MODEL_KEY}${other === "fp32" ? "" : `-${other}`}-s${SEED}-c${CONTEXT}`);
    if (!existsSync(join(dir, "manifest.json"))) continue;
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    const file = pickVariant(manifest.variants).file;
    const ref = await Model.load({ manifest, wasm: readFileSync(join(dir, file)), weights: readFileSync(join(dir, "weights.bin")) });
    const rounds = QUICK ? 4 : 8;
    const [[refPrefill], [minePrefill]] = await benchSubjects([modelSubject(ref, { logits: "all" }), all], { ...prefillTest, repetitions: rounds });
    const [[refDecode], [mineDecode]] = await benchSubjects([modelSubject(ref), last], decode8(rounds));
    const prefillRatios = speedups(refPrefill, minePrefill), decodeRatios = speedups(refDecode, mineDecode);
    ref.dispose();
    stat(`prefill_speedup_vs_${other}_paired`, prefillRatios, "x");
    stat(`decode_speedup_vs_${other}_paired`, decodeRatios, "x");
    pairedVs.push({ other, prefillRatios, decodeRatios });
  }
}

const fmt = (x, dp) => x.toFixed(dp).padStart(10);
const table = [
  ["metric", "median", "min", "max", "unit"],
  [`prefill ${PREFILL} tok`, median(prefillTokS), Math.min(...prefillTokS), Math.max(...prefillTokS), "tok/s"],
  [`prefill ${PREFILL} tok`, median(prefillS) * 1000, Math.min(...prefillS) * 1000, Math.max(...prefillS) * 1000, "ms"],
  [`prefill, reused out`, median(prefillIntoS) * 1000, Math.min(...prefillIntoS) * 1000, Math.max(...prefillIntoS) * 1000, "ms"],
  [`first token, ${PREFILL} tok`, median(ttftS) * 1000, Math.min(...ttftS) * 1000, Math.max(...ttftS) * 1000, "ms"],
  [`decode @ past ${PREFILL}`, median(decodeTokS), Math.min(...decodeTokS), Math.max(...decodeTokS), "tok/s"],
  ...(LONG ? [[`decode @ past ${LONG_PAST}`, median(decodeLongS.map((s) => 1 / s)), Math.min(...decodeLongS.map((s) => 1 / s)), Math.max(...decodeLongS.map((s) => 1 / s)), "tok/s"]] : []),
  [`decode @ past ${PREFILL}`, median(decodeS) * 1000, Math.min(...decodeS) * 1000, Math.max(...decodeS) * 1000, "ms/tok"],
  ...probes.map((p) => [`v128 read, ${p.streams} stream${p.streams > 1 ? "s" : ""}`, median(p.gbps), Math.min(...p.gbps), Math.max(...p.gbps), "GB/s"]),
];
log("");
log(`${"".padEnd(22)}${table[0].slice(1, 4).map((h) => h.padStart(10)).join("")}  unit`);
for (const [name, med, mn, mx, unit] of table.slice(1)) log(`${name.padEnd(22)}${fmt(med, 2)}${fmt(mn, 2)}${fmt(mx, 2)}  ${unit}`);
log("");
if (pairedSpeedups.length)
  log(`decode @${PREFILL} on ${THREADS} threads vs the single-thread module, in turn (${pairedSpeedups.length} repetitions of 8 steps): median ${median(pairedSpeedups).toFixed(2)}×, range ${Math.min(...pairedSpeedups).toFixed(2)}-${Math.max(...pairedSpeedups).toFixed(2)}×`);
for (const { other, prefillRatios: p, decodeRatios: d } of pairedVs)
  log(`${QUANT} vs the ${other} artifact of the same weights, in turn (${p.length} repetitions each of a prefill and of 8 decode steps): prefill (all logits) ${median(p).toFixed(2)}× (${Math.min(...p).toFixed(2)}-${Math.max(...p).toFixed(2)}), decode @${PREFILL} ${median(d).toFixed(2)}× (${Math.min(...d).toFixed(2)}-${Math.max(...d).toFixed(2)})`);
log(`prefill compute: ~${((prefillFlops / median(prefillS)) / 1e9).toFixed(1)} GFLOP/s (2 flops per weight per token)`);
if (kernelRows.length) {
  log(
    `kernels alone, repeated calls (small matrices stay in cache; wasm peaks here: f32x4 mul+add ${peakGflops.toFixed(1)} GFLOP/s, ` +
      `${QUANT ? `8-bit dot (i32x4.dot_i16x8_s) ${peakDot.toFixed(1)} GOP/s, ${kernelsRelaxed ? `relaxed 8-bit dot on 4-bit weights ${peakRelaxedDot.toFixed(1)} GOP/s, ` : ""}` : ""}v128 read of the weights ${bestBw.toFixed(1)} GB/s):`,
  );
  for (const k of kernelRows) {
    log(`  linear ${k.shape.padEnd(16)} GEMV ${k.gemvGBs.toFixed(1).padStart(6)} GB/s (${((100 * k.gemvGBs) / bestBw).toFixed(0)}% of read bw)   GEMM ${PREFILL} rows ${k.gemmGflops.toFixed(1).padStart(6)} GFLOP/s (${((100 * k.gemmGflops) / peakGflops).toFixed(0)}% of peak)`);
    if (k.gemvDequantGBs !== undefined)
      log(
        `  ${"".padEnd(23)}paths: GEMV integer ${k.gemvGBs.toFixed(1)} (default) vs dequantized ${k.gemvDequantGBs.toFixed(1)} GB/s; GEMM integer ${k.gemmIntegerGflops.toFixed(1)} ` +
          `(${((100 * k.gemmIntegerGflops) / k.dotPeak).toFixed(0)}% of the ${k.dotPeak === peakRelaxedDot ? "relaxed " : ""}8-bit dot peak) vs dequantized ${k.gemmDequantGflops.toFixed(1)} GFLOP/s; ` +
          `integer path for calls of ${Number.isFinite(k.intRows) ? `1-${k.intRows} rows, dequantized above` : "any row count"}`,
      );
  }
}
log(
  `decode roofline: ${MB(bytesPerToken)} per token (weights read ${MB(dw.read)} of ${MB(weightBytes)} + KV ${MB(kvBytes)}) / ` +
    (multi ? `${rooflineBw.toFixed(2)} GB/s (${THREADS} threads reading side by side; one thread ${bestBw.toFixed(2)}) = ` : `${bestBw.toFixed(2)} GB/s (best v128 read, ${best.streams} stream${best.streams > 1 ? "s" : ""}) = `) +
    `${rooflineTokS.toFixed(2)} tok/s ceiling; measured ${median(decodeTokS).toFixed(2)} tok/s = ${((100 * median(decodeTokS)) / rooflineTokS).toFixed(0)}% of it` +
    (pairedFractions.length ? `; in alternation with the bandwidth probe (${pairedFractions.length} rounds): median ${(100 * median(pairedFractions)).toFixed(0)}%, range ${(100 * Math.min(...pairedFractions)).toFixed(0)}-${(100 * Math.max(...pairedFractions)).toFixed(0)}%` : ""),
);
log(`${compileS === undefined ? "compile reused" : `compile ${compileS.toFixed(2)} s`}, load ${(loadS * 1000).toFixed(0)} ms, weights ${MB(weightBytes)}, peak RSS (VmHWM) ${MB(peakRss)} ` +
  `(compile + validate + run${servingPeak ? `; ${MB(servingRss)} from warm-up on, compile-side copies freed` : ""}), final RSS ${MB(rss)}`);

if (serveDir) {
  let serve;
  try {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(new URL("./serve.js", import.meta.url)), serveDir, String(PREFILL), "32"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`serving process failed: ${r.stderr}`);
    serve = JSON.parse(r.stdout.trim().split("\n").pop());
  } finally {
    if (serveOwnDir) rmSync(serveDir, { recursive: true, force: true });
  }
  log(`serving process (loadArtifact + generate ${PREFILL}+32): load ${(serve.load_s * 1000).toFixed(0)} ms, peak RSS ${MB(serve.peak_rss)} = ${(serve.peak_rss / weightBytes).toFixed(2)}× the weight bytes, prefill ${serve.prefill_tokens_per_s.toFixed(1)} tok/s, decode ${serve.decode_tokens_per_s.toFixed(1)} tok/s`);
  row("serve_load_time", serve.load_s, "s");
  row("serve_peak_rss", serve.peak_rss, "bytes");
  row("serve_peak_rss_per_weight_byte", serve.peak_rss / weightBytes, "ratio");
}

// read-merge-write: keep other systems' rows (bench/ort.js writes ONNX Runtime's)
mergeResults(rows);
log(`wrote ${rows.length} rows to bench/results/latest.json; total ${((now() - tStart) / 1000).toFixed(1)} s`);
model.dispose();
