// Sentence-embedding throughput of encoders: wasmformer beside ONNX Runtime Web (wasm backend), one
// thread each, on the same random weights in two shapes: DistilBERT-base (dim 768, 6 layers, 12
// heads, ffn 3072) and all-MiniLM-L6 (a BERT of dim 384, 6 layers, 12 heads, ffn 1536), vocab 30522.
//
//   flock /tmp/timing.lock node --no-liftoff bench/encoders.js [--quick] [--relaxed]
//   options: --models distilbert,minilm  --lengths 16,128  --batches 1,32  --rounds N  --seed N
//   --relaxed: wasmformer's relaxed-SIMD module (the one Chrome and Firefox pick; children run
//   with --experimental-wasm-relaxed-simd) against ORT-web's, which has no relaxed build
//   (npm run bench runs it from bench/all.js)
//
// Method: for each model a fresh child process makes the weights (bench/weights.js), compiles
// them (examples/distilbert.wf, examples/bert.wf) and exports the same program to ONNX
// (compiler/export/onnx.ts: input_ids and attention_mask [B, S], BERT's token_type_ids too), loads
// both, and checks the two systems' mean-pooled embeddings of a padded batch against each other
// (1e-3 relative) before it times anything. A case is B sentences of S random ids: wasmformer's
// embed() (the runtime's API: the sentences packed side by side into calls of at most the
// context's 512 rows, pack-sequences) against one ORT session.run of the [B, S] batch and the
// same mean pooling. The runtime's timing loop (runtime/bench.ts
// benchSubjects) runs each case once untimed, then `rounds` repetitions (B = 1: 8 × rounds) on both
// systems in turn, the one going first alternating. Reported: each system's median sentences/s,
// and the median of the repetitions' ratios (the paired figure: this VM's speed drifts).
// Rows {model, system, variant, threads: 1, metric, value, unit} go to bench/results/latest.json.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { MB, cliOptions, compareLogits, log, median, mergeResults, now, procStatus } from "./common.js";
import { randomEncoderWeights } from "./weights.js";

const VOCAB = 30522;
/** The two shapes, as their HF configs (bare DistilBertModel and BertModel). */
export const encoderModels = {
  distilbert: {
    name: "distilbert-base-random",
    wf: "examples/distilbert.wf",
    shape: "dim 768, 6 layers, 12 heads, ffn 3072, vocab 30522",
    config: {
      model_type: "distilbert", architectures: ["DistilBertModel"], vocab_size: VOCAB, dim: 768, n_layers: 6, n_heads: 12, hidden_dim: 3072,
      max_position_embeddings: 512, activation: "gelu", sinusoidal_pos_embds: false, pad_token_id: 0,
    },
  },
  minilm: {
    name: "all-minilm-l6-random",
    wf: "examples/bert.wf",
    shape: "BERT, dim 384, 6 layers, 12 heads, ffn 1536, vocab 30522",
    config: {
      model_type: "bert", architectures: ["BertModel"], vocab_size: VOCAB, hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12,
      intermediate_size: 1536, max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: "gelu", pad_token_id: 0,
    },
  },
};

const { flag, str, opt, list } = cliOptions();
const QUICK = flag("--quick");
const RELAXED = flag("--relaxed");
const VARIANT = RELAXED ? "relaxed-simd" : "simd128";
const SEED = opt("--seed", 1234);
const ROUNDS = opt("--rounds", QUICK ? 3 : 5);
const LENGTHS = list("--lengths", "16,128").map(Number);
const BATCHES = list("--batches", "1,32").map(Number);
/** A batch of one sentence takes milliseconds: this many times the repetitions. */
const SINGLE_CALLS = 8;
const self = fileURLToPath(import.meta.url);

// (imported for encoderModels, it runs nothing)
if (process.argv[1] === self) {
  if (flag("--child")) await child(str("--child"));
  else parent();
}

/** Seeded ids in [1000, VOCAB) (clear of BERT's special tokens). */
function sentences(B, S, seed) {
  let x = seed >>> 0 || 1;
  const next = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8);
  return Array.from({ length: B }, () => Array.from({ length: S }, () => 1000 + (next() % (VOCAB - 1000))));
}

async function child(key) {
  const spec = encoderModels[key];
  const { exportOnnx, generateArtifact, memoryWeights, passes, programFromSource, runPipeline } = await import("../dist/compiler/index.js");
  const { Model, embed, pickVariant } = await import("../runtime/dist/index.js");
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const rows = [];
  const row = (system, metric, value, unit) => rows.push({ model: spec.name, system, variant: system === "wasmformer" ? VARIANT : "wasm", threads: 1, metric, value, unit });

  // ---- the model: weights → program → artifact and ONNX file
  let t0 = now();
  let program = runPipeline(
    programFromSource(spec.wf, readFileSync(fileURLToPath(new URL(`../${spec.wf}`, import.meta.url)), "utf8"), spec.config, memoryWeights(randomEncoderWeights(spec.config, SEED), `random ${key} weights`)),
    {},
    passes,
  );
  const tProgram = (now() - t0) / 1000;
  t0 = now();
  let art = generateArtifact(program);
  const compileS = (now() - t0) / 1000;
  t0 = now();
  let onnx = exportOnnx(program);
  const exportS = (now() - t0) / 1000;
  program = null;
  const variant = pickVariant(art.manifest.variants), want = RELAXED ? "model.relaxed.wasm" : "model.wasm";
  if (variant.file !== want) throw new Error(`expected ${want}, the host picks ${variant.file}`);
  t0 = now();
  const model = await Model.load({ manifest: art.manifest, wasm: art.variants.find((v) => v.file === want).wasm, weights: art.weights });
  const loadS = (now() - t0) / 1000;
  const weightBytes = art.manifest.memory.weights_bytes;
  art = null;
  t0 = now();
  const sess = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"] });
  const createS = (now() - t0) / 1000;
  const onnxBytes = onnx.byteLength;
  onnx = null;
  log(`weights + passes ${tProgram.toFixed(1)} s; wasmformer codegen ${compileS.toFixed(1)} s, load ${(loadS * 1000).toFixed(0)} ms (weights ${MB(weightBytes)}); ` +
    `ONNX export ${exportS.toFixed(1)} s (${MB(onnxBytes)}), session create ${createS.toFixed(1)} s; inputs ${sess.inputNames.join(", ")}`);
  row("wasmformer", "load_time", loadS, "s");
  row("wasmformer", "weight_bytes", weightBytes, "bytes");
  row("onnxruntime-web", "session_create_time", createS, "s");
  row("onnxruntime-web", "onnx_bytes", onnxBytes, "bytes");

  const D = model.manifest.entries[0].outputs.find((o) => o.name === "hidden").width;
  const withTypes = sess.inputNames.includes("token_type_ids");
  /** ORT's run of a batch (padded to the longest with mask 0), mean-pooled over each sentence's tokens as embed() pools. */
  const ortEmbed = async (batch) => {
    const B = batch.length, S = Math.max(...batch.map((s) => s.length));
    const i64 = (f) => new ort.Tensor("int64", BigInt64Array.from(batch.flatMap((s) => Array.from({ length: S }, (_, i) => BigInt(f(s, i))))), [B, S]);
    const feeds = { input_ids: i64((s, i) => s[i] ?? 0), attention_mask: i64((s, i) => (i < s.length ? 1 : 0)) };
    if (withTypes) feeds.token_type_ids = i64(() => 0);
    const hidden = (await sess.run(feeds)).hidden.data;
    return batch.map((s, b) => {
      const v = new Float32Array(D);
      for (let r = 0; r < s.length; r++) for (let j = 0; j < D; j++) v[j] += hidden[(b * S + r) * D + j];
      for (let j = 0; j < D; j++) v[j] /= s.length;
      return v;
    });
  };
  const wfEmbed = (batch) => embed(model, batch, { pooling: "mean" });

  // ---- validation: a padded batch of two, pooled, before anything is timed
  {
    const batch = [sentences(1, 16, SEED)[0], sentences(1, 9, SEED + 1)[0]];
    const [a, b] = [await wfEmbed(batch), await ortEmbed(batch)];
    const flat = (vs) => Float32Array.from(vs.flatMap((v) => Array.from(v)));
    const v = compareLogits(flat(a), flat(b));
    log(`validate (2 sentences of 16 and 9 tokens, mean-pooled): max abs err ${v.maxErr.toExponential(2)}, relative ${v.rel.toExponential(2)}`);
    row("wasmformer", "validate_max_rel_err_vs_ort", v.rel, "rel");
    if (!(v.rel <= 1e-3)) throw new Error(`validation FAILED: relative error ${v.rel} > 1e-3; not benchmarking a wrong model`);
  }

  // ---- timed cases, by the runtime's timing loop (runtime/bench.ts): a case is a pp test of S
  // tokens on two subjects that each embed a batch of B sentences made from the test's S ids,
  // each repetition on both systems in turn (the one going first alternating)
  const { benchSubjects, speedups } = await import("../runtime/dist/bench.js");
  /** Sentence b of a batch: the test's ids shifted by 7919·b, in [1000, VOCAB) (clear of BERT's special tokens). */
  const batchOf = (ids, B) => Array.from({ length: B }, (_, b) => ids.map((id) => 1000 + ((id + 7919 * b) % (VOCAB - 1000))));
  const subject = (embedBatch, B) => ({ context: 512, vocab: VOCAB, reset() {}, feed: async (ids) => void (await embedBatch(batchOf(ids, B))) });
  const table = [];
  for (const S of LENGTHS)
    for (const B of BATCHES) {
      const opts = { prompt: [S], gen: [], repetitions: B === 1 ? ROUNDS * SINGLE_CALLS : ROUNDS, seed: SEED + 31 * S + B };
      const [[wf], [ortR]] = await benchSubjects([subject(wfEmbed, B), subject(ortEmbed, B)], opts);
      const ratios = speedups(ortR, wf);
      const wfRate = B / median(wf.seconds), ortRate = B / median(ortR.seconds), ratio = median(ratios);
      const tag = `b${B}_s${S}`;
      row("wasmformer", `sentences_per_s_${tag}`, wfRate, "sentences/s");
      row("onnxruntime-web", `sentences_per_s_${tag}`, ortRate, "sentences/s");
      row("wasmformer", `ratio_vs_ort_${tag}`, ratio, "x");
      row("wasmformer", `ratio_vs_ort_${tag}_min`, Math.min(...ratios), "x");
      row("wasmformer", `ratio_vs_ort_${tag}_max`, Math.max(...ratios), "x");
      table.push({ B, S, wfRate, ortRate, ratio, lo: Math.min(...ratios), hi: Math.max(...ratios) });
      log(`  batch ${String(B).padStart(2)} × ${String(S).padStart(3)} tokens: wasmformer ${wfRate.toFixed(1)} sentences/s, ORT ${ortRate.toFixed(1)}; paired ratio ${ratio.toFixed(2)}× (repetitions ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
    }
  row("wasmformer", "peak_rss_both", procStatus("VmHWM"), "bytes");
  model.dispose();
  await sess.release();
  process.stdout.write(`RESULT ${JSON.stringify({ rows, table })}\n`);
}

function parent() {
  const models = list("--models", "distilbert,minilm");
  for (const m of models) if (!encoderModels[m]) throw new Error(`--models: unknown model '${m}' (${Object.keys(encoderModels).join(", ")})`);
  const ortVersion = JSON.parse(readFileSync(fileURLToPath(new URL("../node_modules/onnxruntime-web/package.json", import.meta.url)), "utf8")).version;
  log(`encoder bench${QUICK ? " (--quick)" : ""}: wasmformer (${VARIANT}, 1 thread) and onnxruntime-web ${ortVersion} (wasm, 1 thread); batches ${BATCHES.join(", ")} of ${LENGTHS.join(", ")} tokens, ${ROUNDS} paired rounds`);
  log(`node ${process.version}, children with [--no-liftoff]; host CPUs: ${os.availableParallelism?.() ?? os.cpus().length} (${os.cpus()[0]?.model ?? "?"}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const all = [];
  const summary = [];
  for (const key of models) {
    const spec = encoderModels[key];
    log(`\n== ${spec.name} (${spec.shape})`);
    const t0 = now();
    const args = ["--no-liftoff", ...(RELAXED ? ["--experimental-wasm-relaxed-simd"] : []), self, ...(RELAXED ? ["--relaxed"] : []), "--child", key, "--seed", String(SEED), "--rounds", String(ROUNDS), "--lengths", LENGTHS.join(","), "--batches", BATCHES.join(",")];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 });
    const lines = (r.stdout ?? "").split("\n");
    for (const l of lines) if (l && !l.startsWith("RESULT ")) log(l);
    const line = lines.find((l) => l.startsWith("RESULT "));
    if (r.status !== 0 || !line) {
      console.error(`encoder bench child for ${key} failed (status ${r.status}${r.signal ? `, ${r.signal}` : ""})`);
      process.exit(1);
    }
    const { rows, table } = JSON.parse(line.slice("RESULT ".length));
    all.push(...rows);
    summary.push([spec.name, table]);
    log(`(${((now() - t0) / 1000).toFixed(0)} s)`);
  }
  const kept = mergeResults(all);
  log(`\n${all.length} rows merged into bench/results/latest.json (${kept} other rows kept)`);
  log(`\nsentences/s, 1 thread          batch × tokens   wasmformer     ORT-web   paired ratio (goal)`);
  for (const [name, table] of summary)
    for (const t of table) {
      const goal = t.B >= 32 ? "≥ 1.5×" : t.B === 1 && t.S <= 16 ? "≥ 2×" : "";
      log(`  ${name.padEnd(28)} ${`${t.B} × ${t.S}`.padStart(10)} ${t.wfRate.toFixed(1).padStart(12)} ${t.ortRate.toFixed(1).padStart(11)}   ${t.ratio.toFixed(2)}× ${goal ? `(${goal})` : ""}`);
    }
}
