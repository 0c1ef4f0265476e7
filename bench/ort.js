// ONNX Runtime Web (wasm backend) on the same models as bench/run.js, for a side-by-side.
//
//   node bench/ort.js               (after `npm run build`)
//   node bench/ort.js --quick       one process, 1 thread, shorter loops (~1.5 min on 2 busy cores)
//   options: --models gpt2,llama  --threads 1,2  --repeats N (fresh processes per thread count)
//            --prefill N (default 128)  --pasts 128,512  --decode-steps N  --prefill-repeats N
//            --seed N  --no-validate  --liftoff (children without --no-liftoff)  --keep (keep the .onnx files)
//            --quantize int8|int4 (MatMulNBits models of the weights wasmformer's --quantize makes)
//   node bench/ort.js --merge       only merge bench/results/ort.json into bench/results/latest.json
//
// Method (PEERS.md habits): the parent makes the random weights (bench/weights.js, the generator
// bench/run.js uses, same seed), elaborates the .wf model, exports it with compiler/export/onnx.ts
// (decoder with explicit KV cache: input_ids, past_*/present_*) to a temp file, and checks ORT's
// logits against wasmformer's compiled model on a short prompt plus one cached step (1e-3 relative;
// the first trial process checks them before it times anything, and stops the bench if they
// disagree). Every trial then runs in a fresh `node` child (clean RSS, cold caches):
//   runtime init   a one-node model's InferenceSession.create (loads and compiles ORT's wasm)
//   session create InferenceSession.create of the model from its bytes (parse, optimise, prepack)
//   prefill        N tokens with empty pasts, logits for every position (1 warm-up, then timed runs)
//   decode         one token against pasts of fixed length P: a real P-token prefix (fed N tokens a
//                  call), each step fed the same pasts again (2 warm-up steps, then timed steps)
//   peak RSS       VmHWM from /proc/self/status at the end of the child
// Prefill and decode are timed by the runtime's timing loop (runtime/bench.ts) on the session as a
// bench subject (compiler/cli/peer-subjects.ts, as `wasmformer bench --peer ort`), exactly as
// bench/run.js times wasmformer. Per child the medians of its timed runs; reported: the median
// (and min, max) over children.
// Rows {model, system: "onnxruntime-web", variant: "wasm", threads, metric, value, unit} replace
// earlier onnxruntime-web rows of the same model/threads in bench/results/latest.json and are also
// written alone to bench/results/ort.json (bench/run.js rewrites latest.json with its own rows).

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MB, benchModels, cliOptions, compareLogits as compare, log, median, mergeResults, now, procStatus, resultsDir } from "./common.js";

const SYSTEM = "onnxruntime-web";
// --quantize int8|int4: the weights quantized as wasmformer's --quantize does, written as
// com.microsoft MatMulNBits (8 or 4 bits, blocks of 32: the same codes and scales)
const QUANT = cliOptions().str("--quantize", undefined);
if (QUANT !== undefined && QUANT !== "int8" && QUANT !== "int4") throw new Error(`--quantize: int8 or int4, got '${QUANT}'`);
const VARIANT = QUANT ? `wasm matmulnbits ${QUANT === "int8" ? 8 : 4}-bit` : "wasm";
const ORT_JSON = QUANT ? `ort-${QUANT}.json` : "ort.json";
const self = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// options

const { flag, str, opt, list } = cliOptions();


if (flag("--child")) await child();
else if (flag("--merge")) mergeRows(JSON.parse(readFileSync(join(resultsDir, ORT_JSON), "utf8")));
else await parent();

// ---------------------------------------------------------------------------------------------
// child: one trial (or the validation run) in a fresh process

async function child() {
  const file = str("--child");
  const threads = opt("--threads", 1);
  const vocab = opt("--vocab", 0);
  const context = opt("--context", 1024);
  const caches = JSON.parse(str("--caches", "[]")); // [{kvHeads, keyDim, valueDim}]
  const ort = await import("onnxruntime-web");
  const { benchSubject } = await import("../runtime/dist/bench.js");
  const { ortFeeds, ortPresents, ortSubject } = await import("../dist/compiler/cli/peer-subjects.js");
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";

  // runtime init: a one-node model, so that loading ORT's wasm is not counted as session creation
  let t0 = now();
  const tiny = await ort.InferenceSession.create(tinyModel());
  await tiny.run({ x: new ort.Tensor("float32", new Float32Array([1]), [1]) });
  await tiny.release();
  const initS = (now() - t0) / 1000;

  t0 = now();
  let bytes = readFileSync(file);
  const readS = (now() - t0) / 1000;
  t0 = now();
  const sess = await ort.InferenceSession.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const createS = (now() - t0) / 1000;
  bytes = null;
  const rssAfterCreate = procStatus("VmRSS");

  // validation, before anything is timed: a short prompt and one cached step against wasmformer's
  // logits (--want: both concatenated); a disagreement beyond --tol ends the process
  let validation;
  if (str("--want", undefined)) {
    const prompt = JSON.parse(str("--prompt"));
    const step = opt("--step", 0);
    const pre = await sess.run(ortFeeds(ort, caches, prompt));
    const next = await sess.run(ortFeeds(ort, caches, [step], ortPresents(pre, caches)));
    const want = new Float32Array(readFileSync(str("--want")).buffer.slice(0));
    const n = pre.logits.data.length;
    const a = compare(pre.logits.data, want.subarray(0, n)), b = compare(next.logits.data, want.subarray(n));
    validation = { maxErr: Math.max(a.maxErr, b.maxErr), rel: Math.max(a.rel, b.rel) };
    if (!(validation.rel <= opt("--tol", 0))) throw new Error(`validation FAILED: ORT's logits differ from wasmformer's by ${validation.rel} relative (> ${opt("--tol", 0)}); not timing a wrong model`);
  }

  // the runtime's timing loop (runtime/bench.ts): the prefill from an empty cache (every
  // position's logits: the export's only form), then decode steps at each fixed past length, each
  // step after rewinding the pasts to that length (the depth fed PREFILL tokens a call)
  const PREFILL = opt("--prefill", 128);
  const pastLens = JSON.parse(str("--pasts", "[128,512]"));
  const subject = ortSubject(ort, sess, { context, vocab, caches });
  const [prefill] = await benchSubject(subject, { prompt: [PREFILL], gen: [], repetitions: opt("--prefill-repeats", 3) });
  const decodeTests = { prompt: [], gen: [1], depths: pastLens, repetitions: opt("--decode-steps", 16), warmups: 2, fixedDepth: true, depthBatch: PREFILL };
  const decode = await benchSubject(subject, decodeTests);
  // --paired DIR: wasmformer's artifact of the same weights (bench/run.js's, plain SIMD128, 1 thread)
  // loaded beside the session, and both timed in turn: on this VM the speed drifts over minutes,
  // and figures taken minutes apart carry that into their ratio
  // (ORT's own peak RSS is read first: wasmformer's memory would count in it)
  const peakRss = procStatus("VmHWM");
  const paired = str("--paired", undefined) && (await pairedPhase(str("--paired"), subject, PREFILL, pastLens));
  await sess.release();
  const result = {
    paired,
    threads,
    validation,
    initS,
    readS,
    createS,
    prefillS: median(prefill.seconds),
    prefillAll: prefill.seconds,
    decode: Object.fromEntries(decode.map((r) => [r.depth, median(r.seconds)])),
    rssAfterCreate,
    peakRss,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

/**
 * ORT and wasmformer in one process, timed in turn by the runtime's loop (the first system
 * alternating by repetition): the prefill with every position's logits in both, wasmformer's
 * first token alone (the last position's logits), and decode steps at each past length. Per
 * system its median tokens/s; per pair the median of the repetitions' speed-ups.
 */
async function pairedPhase(dir, ortSubject, prefill, pasts) {
  const { loadArtifact, readManifest } = await import("../runtime/dist/node.js");
  const { pickVariant } = await import("../runtime/dist/index.js");
  const { benchSubjects, modelSubject, speedups } = await import("../runtime/dist/bench.js");
  const picked = pickVariant(readManifest(dir).variants).file;
  if (picked !== "model.wasm") throw new Error(`--paired: expected the plain SIMD128 module, the host picks ${picked}`);
  const model = await loadArtifact(dir);
  const repetitions = opt("--paired-rounds", 6);
  const wf = modelSubject(model);
  const [[ortPrefill], [wfPrefill], [wfFirst]] = await benchSubjects([ortSubject, modelSubject(model, { logits: "all" }), wf], { prompt: [prefill], gen: [], repetitions });
  const [ortDecode, wfDecode] = await benchSubjects([ortSubject, wf], {
    prompt: [], gen: [opt("--decode-steps", 16)], depths: pasts, repetitions, fixedDepth: true, depthBatch: prefill,
  });
  model.dispose();
  return {
    ortPrefill: ortPrefill.median, wfPrefill: wfPrefill.median, wfFirst: wfFirst.median,
    prefillRatio: median(speedups(ortPrefill, wfPrefill)), ttftRatio: median(speedups(ortPrefill, wfFirst)),
    decode: Object.fromEntries(pasts.map((P, i) => [P, { ort: ortDecode[i].median, wf: wfDecode[i].median, ratio: median(speedups(ortDecode[i], wfDecode[i])) }])),
  };
}

/** y = Identity(x): enough for ORT to load its wasm. */
function tinyModel() {
  const enc = new TextEncoder();
  const varint = (n) => {
    const b = [];
    while (n > 0x7f) {
      b.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    b.push(n);
    return b;
  };
  const field = (f, bytes) => [...varint(f * 8 + 2), ...varint(bytes.length), ...bytes];
  const int = (f, v) => [...varint(f * 8), ...varint(v)];
  const s = (f, x) => field(f, [...enc.encode(x)]);
  const vi = (name) => [...s(1, name), ...field(2, field(1, [...int(1, 1), ...field(2, field(1, int(1, 1)))]))];
  const node = [...s(1, "x"), ...s(2, "y"), ...s(4, "Identity")];
  const graph = [...field(1, node), ...s(2, "tiny"), ...field(11, vi("x")), ...field(12, vi("y"))];
  return new Uint8Array([...int(1, 8), ...field(7, graph), ...field(8, int(2, 17))]);
}

// ---------------------------------------------------------------------------------------------
// parent

function runChild(args, nodeFlags) {
  const r = spawnSync(process.execPath, [...nodeFlags, self, "--child", ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith("RESULT "));
  if (r.status !== 0 || !line) {
    process.stderr.write(r.stdout ?? "");
    process.stderr.write(r.stderr ?? "");
    throw new Error(`child ${args.join(" ")} failed (status ${r.status}${r.signal ? `, ${r.signal}` : ""})`);
  }
  return JSON.parse(line.slice("RESULT ".length));
}


function mergeRows(rows) {
  const kept = mergeResults(rows);
  log(`merged ${rows.length} ${SYSTEM} rows into bench/results/latest.json (${kept} other rows kept)`);
}

async function parent() {
  const { exportOnnx, onnxCacheLayout } = await import("../dist/compiler/export/onnx.js");
  const { generateArtifact, memoryWeights, passes, programFromSource, runPipeline, withQuantization } = await import("../dist/compiler/index.js");
  const { Model } = await import("../runtime/dist/index.js");

  const QUICK = flag("--quick");
  const MODELS = list("--models", "gpt2,llama");
  // (--quick: 1 thread; the full run adds ORT's 2-thread figures)
  const THREADS = list("--threads", QUICK ? "1" : "1,2").map(Number);
  const REPEATS = opt("--repeats", QUICK ? 1 : 5);
  if (!(REPEATS >= 1)) throw new Error("--repeats must be at least 1");
  const PREFILL = opt("--prefill", 128);
  const PASTS = list("--pasts", `${PREFILL},512`).map(Number);
  const DECODE_STEPS = opt("--decode-steps", QUICK ? 8 : 32);
  const PREFILL_REPEATS = opt("--prefill-repeats", QUICK ? 2 : 5);
  const SEED = opt("--seed", 1234);
  const VALIDATE = !flag("--no-validate");
  // quantized: wasmformer's decode step quantizes x to q8_0 (ORT keeps it f32): a looser bound, still far from a wrong model
  const VALIDATE_TOL = QUANT ? 5e-2 : 1e-3;
  const CONTEXT = 1024;
  const childFlags = flag("--liftoff") ? [] : ["--no-liftoff"];
  // --paired-cache DIR (bench/all.js): where bench/run.js left each model's artifact of the same
  // weights; every 1-thread trial then also times wasmformer in alternation with ORT
  const PAIRED_CACHE = QUANT ? undefined : str("--paired-cache", undefined);
  const PAIRED_ROUNDS = opt("--paired-rounds", QUICK ? 6 : 4);

  const specs = benchModels;
  for (const m of MODELS) if (!specs[m]) throw new Error(`--models: unknown model '${m}' (gpt2, llama)`);

  const tStart = now();
  const ortVersion = JSON.parse(readFileSync(fileURLToPath(new URL("../node_modules/onnxruntime-web/package.json", import.meta.url)), "utf8")).version;
  log(`onnxruntime-web ${ortVersion} bench${QUICK ? " (--quick)" : ""}: wasm backend${QUANT ? `, ${VARIANT}` : ""}, threads ${THREADS.join(", ")}; models ${MODELS.join(", ")}`);
  log(`node ${process.version}, children with [${childFlags.join(" ")}]; host CPUs: ${os.availableParallelism?.() ?? os.cpus().length} (${os.cpus()[0]?.model ?? "?"}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  log(`prefill ${PREFILL} tokens (${PREFILL_REPEATS} timed runs per process), decode at past ${PASTS.join(" and ")} (${DECODE_STEPS} steps each), ${REPEATS} fresh processes per thread count`);

  const rows = [];
  const tmp = join(os.tmpdir(), `wasmformer-ort-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  try {
    for (const key of MODELS) {
      const spec = specs[key];
      const row = (threads, metric, value, unit) => rows.push({ model: spec.name, system: SYSTEM, variant: VARIANT, threads, metric, value, unit });
      log("");
      log(`== ${spec.name} (${spec.shape})`);

      // model: weights → program → ONNX file
      let t0 = now();
      let tensors = spec.weights(spec.config, SEED);
      const params = Object.values(tensors).reduce((s, t) => s + t.data.length, 0);
      const wfPath = fileURLToPath(new URL(`../${spec.wf}`, import.meta.url));
      let program = runPipeline(
        programFromSource(spec.wf, readFileSync(wfPath, "utf8"), spec.config, memoryWeights(tensors, `random ${key} weights`), { context: CONTEXT }),
        {},
        withQuantization(passes, QUANT),
      );
      const tProgram = (now() - t0) / 1000;
      t0 = now();
      let onnx = exportOnnx(program);
      const exportS = (now() - t0) / 1000;
      const onnxPath = join(tmp, `${key}.onnx`);
      writeFileSync(onnxPath, onnx);
      const onnxBytes = onnx.byteLength;
      onnx = null;
      const caches = onnxCacheLayout(program);
      const vocab = spec.config.vocab_size;
      log(`random weights ${(params / 1e6).toFixed(1)} M params + elaborate/passes: ${tProgram.toFixed(1)} s; ONNX export ${exportS.toFixed(2)} s, ${MB(onnxBytes)} -> ${onnxPath}`);
      for (const th of THREADS) {
        row(th, "onnx_bytes", onnxBytes, "bytes");
        row(th, "export_time", exportS, "s");
      }

      // validation: ORT vs wasmformer's compiled model, short prompt + one cached step. ORT's
      // logits come from the first trial process, which runs them before it times anything.
      let validateArgs = [], tWf = 0;
      if (VALIDATE) {
        const prompt = [464, 2068, 7586, 21831].map((t) => t % vocab), step = 625 % vocab;
        t0 = now();
        let art = generateArtifact(program);
        let model = await Model.load({ manifest: art.manifest, wasm: art.wasm, weights: art.weights });
        const wantPre = model.run("forward", { ids: prompt }).logits;
        const wantStep = model.run("forward", { ids: [step] }).logits;
        art = model = null;
        tWf = (now() - t0) / 1000;
        const want = new Float32Array(wantPre.length + wantStep.length);
        want.set(wantPre);
        want.set(wantStep, wantPre.length);
        const wantFile = join(tmp, `${key}-want.bin`);
        writeFileSync(wantFile, want);
        validateArgs = ["--prompt", JSON.stringify(prompt), "--step", String(step), "--want", wantFile, "--tol", String(VALIDATE_TOL)];
      }
      tensors = program = null;

      const pairedDir = PAIRED_CACHE && join(PAIRED_CACHE, `${key}-s${SEED}-c${CONTEXT}`);
      const pairedArgs = pairedDir && existsSync(join(pairedDir, "manifest.json")) ? ["--paired", pairedDir, "--paired-rounds", String(PAIRED_ROUNDS)] : [];
      if (PAIRED_CACHE && !pairedArgs.length) log(`(no wasmformer artifact in ${pairedDir}: no paired timing)`);

      // trials: fresh processes, thread counts interleaved
      const trials = new Map(THREADS.map((t) => [t, []]));
      for (let r = 0; r < REPEATS; r++)
        for (const th of THREADS) {
          t0 = now();
          const first = r === 0 && th === THREADS[0];
          const res = runChild(
            [onnxPath, "--threads", String(th), "--vocab", String(vocab), "--context", String(CONTEXT), "--caches", JSON.stringify(caches), "--prefill", String(PREFILL),
              "--prefill-repeats", String(PREFILL_REPEATS), "--decode-steps", String(DECODE_STEPS), "--pasts", JSON.stringify(PASTS), ...(first ? validateArgs : []), ...(th === 1 ? pairedArgs : [])],
            childFlags,
          );
          if (first && res.validation) {
            const v = res.validation;
            log(`validate vs wasmformer (4-token prefill + 1 cached step, in the first trial process before timing; wasmformer compile+run ${tWf.toFixed(1)} s): max abs err ${v.maxErr.toExponential(2)}, relative ${v.rel.toExponential(2)}`);
            for (const t of THREADS) row(t, "validate_max_rel_err", v.rel, "rel");
          }
          trials.get(th).push(res);
          log(
            `  threads ${th} #${r + 1}: init ${(res.initS * 1000).toFixed(0)} ms, create ${res.createS.toFixed(2)} s, prefill ${(PREFILL / res.prefillS).toFixed(1)} tok/s, ` +
              PASTS.map((P) => `decode@${P} ${(1 / res.decode[P]).toFixed(2)} tok/s`).join(", ") + `, peak RSS ${MB(res.peakRss)} (${((now() - t0) / 1000).toFixed(1)} s)`,
          );
          const pr = res.paired;
          if (pr)
            log(`    paired with wasmformer (${PAIRED_ROUNDS} repetitions in turn): ` +
              PASTS.map((P) => `decode@${P} ${pr.decode[P].wf.toFixed(1)} vs ${pr.decode[P].ort.toFixed(1)} tok/s (${pr.decode[P].ratio.toFixed(2)}×), `).join("") +
              `prefill ${pr.wfPrefill.toFixed(1)} vs ${pr.ortPrefill.toFixed(1)} (${pr.prefillRatio.toFixed(2)}×), first token ${pr.wfFirst.toFixed(1)} (${pr.ttftRatio.toFixed(2)}×)`);
        }

      // report
      const table = [];
      for (const th of THREADS) {
        const rs = trials.get(th);
        const stat = (metric, xs, unit, label, show = (x) => x) => {
          row(th, metric, median(xs), unit);
          row(th, `${metric}_min`, Math.min(...xs), unit);
          row(th, `${metric}_max`, Math.max(...xs), unit);
          if (label) table.push([th, label, show(median(xs)), show(Math.min(...xs)), show(Math.max(...xs)), unit === "bytes" ? "MB" : unit]);
        };
        stat("runtime_init_time", rs.map((r) => r.initS), "s", "runtime init (wasm)");
        stat("session_create_time", rs.map((r) => r.createS), "s", "session create");
        stat("prefill_tokens_per_s", rs.map((r) => PREFILL / r.prefillS), "tok/s", `prefill ${PREFILL} tok`);
        stat("prefill_time", rs.map((r) => r.prefillS), "s");
        for (const P of PASTS) {
          const suffix = P === PREFILL ? "" : `_past${P}`; // past = prefill: the same names as bench/run.js
          stat(`decode_tokens_per_s${suffix}`, rs.map((r) => 1 / r.decode[P]), "tok/s", `decode @ past ${P}`);
          stat(`decode_time_per_token${suffix}`, rs.map((r) => r.decode[P] * 1000), "ms");
        }
        stat("peak_rss", rs.map((r) => r.peakRss), "bytes", "peak RSS (VmHWM)", (b) => b / 1e6);
        // paired: each system's median over the trials; the ratios are taken within each trial
        const pr = rs.map((r) => r.paired).filter(Boolean);
        if (pr.length) {
          const wfRow = (metric, value, unit) => rows.push({ model: spec.name, system: "wasmformer", variant: "simd128 paired", threads: th, metric, value, unit });
          const pRow = (metric, value, unit) => rows.push({ model: spec.name, system: SYSTEM, variant: `${VARIANT} paired`, threads: th, metric, value, unit });
          for (const P of PASTS) {
            const suffix = P === PREFILL ? "" : `_past${P}`;
            wfRow(`decode_tokens_per_s${suffix}`, median(pr.map((x) => x.decode[P].wf)), "tok/s");
            pRow(`decode_tokens_per_s${suffix}`, median(pr.map((x) => x.decode[P].ort)), "tok/s");
            wfRow(`decode_ratio_vs_ort${suffix}`, median(pr.map((x) => x.decode[P].ratio)), "x");
          }
          wfRow("prefill_tokens_per_s", median(pr.map((x) => x.wfPrefill)), "tok/s");
          wfRow("ttft_tokens_per_s", median(pr.map((x) => x.wfFirst)), "tok/s");
          pRow("prefill_tokens_per_s", median(pr.map((x) => x.ortPrefill)), "tok/s");
          wfRow("prefill_ratio_vs_ort", median(pr.map((x) => x.prefillRatio)), "x");
          wfRow("ttft_ratio_vs_ort_prefill", median(pr.map((x) => x.ttftRatio)), "x");
        }
        row(th, "rss_after_create", median(rs.map((r) => r.rssAfterCreate)), "bytes");
      }
      log("");
      log(`${"threads".padEnd(8)}${"".padEnd(22)}${["median", "min", "max"].map((h) => h.padStart(10)).join("")}  unit`);
      for (const [th, name, med, mn, mx, unit] of table) log(`${String(th).padEnd(8)}${name.padEnd(22)}${[med, mn, mx].map((x) => x.toFixed(2).padStart(10)).join("")}  ${unit}`);
    }
  } finally {
    if (!flag("--keep")) rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }

  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, ORT_JSON), JSON.stringify(rows, null, 2) + "\n");
  mergeRows(rows);
  log(`wrote ${rows.length} rows to bench/results/${ORT_JSON}; total ${((now() - tStart) / 1000).toFixed(1)} s`);
}
