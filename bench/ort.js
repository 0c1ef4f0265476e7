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
//   decode         one token against pasts of fixed length P (a real prefill's presents for P = N,
//                  random ones otherwise), the same pasts fed every step, as bench/run.js rewinds
//   peak RSS       VmHWM from /proc/self/status at the end of the child
// Per child the medians of its timed runs; reported: the median (and min, max) over children.
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
  const caches = JSON.parse(str("--caches", "[]")); // [{kvHeads, keyDim, valueDim}]
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";

  const f32 = (data, dims) => new ort.Tensor("float32", data, dims);
  const idsTensor = (ids) => new ort.Tensor("int64", BigInt64Array.from(ids, (x) => BigInt(x)), [1, ids.length]);
  const feedsFor = (ids, pasts) => {
    const feeds = { input_ids: idsTensor(ids) };
    caches.forEach((c, i) => {
      feeds[`past_key_${i}`] = pasts ? pasts[2 * i] : f32(new Float32Array(0), [1, c.kvHeads, 0, c.keyDim]);
      feeds[`past_value_${i}`] = pasts ? pasts[2 * i + 1] : f32(new Float32Array(0), [1, c.kvHeads, 0, c.valueDim]);
    });
    return feeds;
  };
  const presentsOf = (out) => caches.flatMap((_, i) => [out[`present_key_${i}`], out[`present_value_${i}`]]);

  // runtime init: a one-node model, so that loading ORT's wasm is not counted as session creation
  let t0 = now();
  const tiny = await ort.InferenceSession.create(tinyModel());
  await tiny.run({ x: f32(new Float32Array([1]), [1]) });
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
    const pre = await sess.run(feedsFor(prompt));
    const next = await sess.run(feedsFor([step], presentsOf(pre)));
    const want = new Float32Array(readFileSync(str("--want")).buffer.slice(0));
    const n = pre.logits.data.length;
    const a = compare(pre.logits.data, want.subarray(0, n)), b = compare(next.logits.data, want.subarray(n));
    validation = { maxErr: Math.max(a.maxErr, b.maxErr), rel: Math.max(a.rel, b.rel) };
    if (!(validation.rel <= opt("--tol", 0))) throw new Error(`validation FAILED: ORT's logits differ from wasmformer's by ${validation.rel} relative (> ${opt("--tol", 0)}); not timing a wrong model`);
  }

  const PREFILL = opt("--prefill", 128);
  const prefillRepeats = opt("--prefill-repeats", 3);
  const decodeSteps = opt("--decode-steps", 16);
  const pastLens = JSON.parse(str("--pasts", "[128,512]"));
  const ids = Array.from({ length: PREFILL }, (_, i) => (i * 7919 + 13) % vocab);
  const decodeId = 198 % vocab;

  // prefill: warm-up, then timed runs
  let out = await sess.run(feedsFor(ids));
  if (out.logits.dims[1] !== PREFILL || out.logits.dims[2] !== vocab) throw new Error(`prefill logits dims ${out.logits.dims}`);
  const prefillS = [];
  for (let r = 0; r < prefillRepeats; r++) {
    out = null;
    t0 = now();
    out = await sess.run(feedsFor(ids));
    prefillS.push((now() - t0) / 1000);
  }
  if (!Number.isFinite(out.logits.data[out.logits.data.length - 1])) throw new Error("prefill produced non-finite logits");
  const realPasts = presentsOf(out);
  out = null;

  // decode at fixed past lengths
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
  const decode = {};
  const pastsOf = new Map();
  for (const P of pastLens) {
    const pasts =
      P === PREFILL
        ? realPasts
        : caches.flatMap((c) => [c.keyDim, c.valueDim].map((d) => f32(Float32Array.from({ length: c.kvHeads * P * d }, rand), [1, c.kvHeads, P, d])));
    pastsOf.set(P, pasts);
    const feeds = feedsFor([decodeId], pasts);
    for (let w = 0; w < 2; w++) await sess.run(feeds);
    const ts = [];
    for (let s = 0; s < decodeSteps; s++) {
      t0 = now();
      const o = await sess.run(feeds);
      ts.push((now() - t0) / 1000);
      if (s === 0 && o.present_key_0.dims[2] !== P + 1) throw new Error(`decode: present length ${o.present_key_0.dims[2]}, expected ${P + 1}`);
    }
    decode[P] = ts;
  }
  // --paired DIR: wasmformer's artifact of the same weights (bench/run.js's, plain SIMD128, 1 thread)
  // loaded beside the session, and both timed in alternation: on this VM the speed drifts over
  // minutes, and figures taken minutes apart carry that into their ratio
  // (ORT's own peak RSS is read first: wasmformer's memory would count in it)
  const peakRss = procStatus("VmHWM");
  const paired = str("--paired", undefined) && (await pairedPhase(str("--paired"), sess, feedsFor, ids, pastsOf, decodeId, vocab));
  await sess.release();
  const result = {
    paired,
    threads,
    validation,
    initS,
    readS,
    createS,
    prefillS: median(prefillS),
    prefillAll: prefillS,
    decode: Object.fromEntries(Object.entries(decode).map(([P, ts]) => [P, median(ts)])),
    rssAfterCreate,
    peakRss,
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

/**
 * ORT and wasmformer in one process, alternating: each round times decode steps at each past
 * length, a prefill with every position's logits and (wasmformer) the first token alone, in both
 * systems, the system that goes first alternating by round. Medians over all rounds.
 * (wasmformer's cache holds a real prompt of the longest past: the prefills rewrite its first rows.)
 */
async function pairedPhase(dir, sess, feedsFor, ids, pastsOf, decodeId, vocab) {
  const { loadArtifact, readManifest } = await import("../runtime/dist/node.js");
  const { pickVariant } = await import("../runtime/dist/index.js");
  const picked = pickVariant(readManifest(dir).variants).file;
  if (picked !== "model.wasm") throw new Error(`--paired: expected the plain SIMD128 module, the host picks ${picked}`);
  const model = await loadArtifact(dir);
  const rounds = opt("--paired-rounds", 6), steps = opt("--decode-steps", 16);
  const pasts = [...pastsOf.keys()];
  const t = { ortPrefill: [], wfPrefill: [], wfFirst: [], ...Object.fromEntries(pasts.flatMap((P) => [[`ortDecode${P}`, []], [`wfDecode${P}`, []]])) };
  const time = async (into, f) => {
    const t0 = now();
    await f();
    into.push((now() - t0) / 1000);
  };
  const ort = async () => {
    for (const P of pasts) {
      const feeds = feedsFor([decodeId], pastsOf.get(P));
      for (let s = 0; s < steps; s++) await time(t[`ortDecode${P}`], () => sess.run(feeds));
    }
    await time(t.ortPrefill, () => sess.run(feedsFor(ids)));
  };
  const wf = async () => {
    model.reset();
    await time(t.wfPrefill, () => model.run("forward", { ids }));
    model.reset();
    await time(t.wfFirst, () => model.run("forward_last", { ids }));
    for (const P of pasts)
      for (let s = 0; s < steps; s++) {
        model.past = P;
        await time(t[`wfDecode${P}`], () => model.run("forward_last", { ids: [decodeId] }));
      }
  };
  model.run("forward_last", { ids: Array.from({ length: Math.max(...pasts) }, (_, i) => (i * 104729 + 7) % vocab) });
  await wf(); // warm-up
  for (let r = 0; r < rounds; r++) for (const f of r % 2 ? [wf, ort] : [ort, wf]) await f();
  model.dispose();
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
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
            [onnxPath, "--threads", String(th), "--vocab", String(vocab), "--caches", JSON.stringify(caches), "--prefill", String(PREFILL),
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
            log(`    paired with wasmformer (${PAIRED_ROUNDS} alternating rounds): ` +
              PASTS.map((P) => `decode@${P} ${(1 / pr[`wfDecode${P}`]).toFixed(1)} vs ${(1 / pr[`ortDecode${P}`]).toFixed(1)} tok/s (${(pr[`ortDecode${P}`] / pr[`wfDecode${P}`]).toFixed(2)}×), `).join("") +
              `prefill ${(PREFILL / pr.wfPrefill).toFixed(1)} vs ${(PREFILL / pr.ortPrefill).toFixed(1)} (${(pr.ortPrefill / pr.wfPrefill).toFixed(2)}×), first token ${(PREFILL / pr.wfFirst).toFixed(1)} (${(pr.ortPrefill / pr.wfFirst).toFixed(2)}×)`);
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
            wfRow(`decode_tokens_per_s${suffix}`, median(pr.map((x) => 1 / x[`wfDecode${P}`])), "tok/s");
            pRow(`decode_tokens_per_s${suffix}`, median(pr.map((x) => 1 / x[`ortDecode${P}`])), "tok/s");
            wfRow(`decode_ratio_vs_ort${suffix}`, median(pr.map((x) => x[`ortDecode${P}`] / x[`wfDecode${P}`])), "x");
          }
          wfRow("prefill_tokens_per_s", median(pr.map((x) => PREFILL / x.wfPrefill)), "tok/s");
          wfRow("ttft_tokens_per_s", median(pr.map((x) => PREFILL / x.wfFirst)), "tok/s");
          pRow("prefill_tokens_per_s", median(pr.map((x) => PREFILL / x.ortPrefill)), "tok/s");
          wfRow("prefill_ratio_vs_ort", median(pr.map((x) => x.ortPrefill / x.wfPrefill)), "x");
          wfRow("ttft_ratio_vs_ort_prefill", median(pr.map((x) => x.ortPrefill / x.wfFirst)), "x");
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
