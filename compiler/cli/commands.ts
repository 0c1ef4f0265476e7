// The commands: each one's options as a table (compiler/cli/options.ts) and what it does.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { classify, embed } from "@wasmformer/runtime/embed";
import { klDivergence, meanNll } from "@wasmformer/runtime/eval";
import { loadArtifactTokenizer, readManifest } from "@wasmformer/runtime/node";
import { encodeNpy } from "@wasmformer/runtime/npy";
import { SHARD_SIZE, compileModel } from "../compile.js";
import { InputError } from "../diagnostics.js";
import { exportOnnx, onnxCacheLayout } from "../export/onnx.js";
import { loadProgram } from "../load.js";
import { NPY_FILE, ONNX_FILE, checkFileOut, writeFileOut } from "../output.js";
import { passes, runPipeline, selectPasses, withQuantization } from "../passes/manager.js";
import { KV_DTYPES } from "../passes/kv-cache.js";
import { QUANTIZE_CHOICES, parseOverride } from "../passes/quantize-weights.js";
import { fsReason, isFsError } from "./errors.js";
import { classifyImagesRun, readImagePixels } from "./image.js";
import { benchCommand, compareCommand } from "./bench.js";
import { profileCommand } from "./profile.js";
import { chatCommand, generateCommand } from "./generation.js";
import { answerCommand, classifyTokensRun, fillMaskCommand } from "./heads.js";
import { serveCommand } from "./serve.js";
import { type CommandSpec, type Io, byteSize, checkedBy, command, ids, int, oneOf, optionError, path, text, usageError } from "./options.js";
import { MiB, adapter, adapterSpec, autoThreads, context, force, progressOn, readAdapterOption, threads, threadsFor, weights, withModel } from "./shared.js";

/** `RANK` or `RANK:MODULES` (comma-separated module names) of compile --lora-slots. */
function parseSlots(text: string): { rank: number; modules?: string[] } {
  const m = /^(\d+)(?::([A-Za-z0-9_.]+(?:,[A-Za-z0-9_.]+)*))?$/.exec(text);
  const rank = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(rank) || rank < 1 || rank > 512) throw new Error(`'${text}' is not RANK[:MODULES]`);
  return { rank, ...(m[2] ? { modules: m[2].split(",") } : {}) };
}

const quantize = (help: string) => ({ kind: oneOf(QUANTIZE_CHOICES), arg: QUANTIZE_CHOICES.join("|"), help }) as const;

/** The passes --disable-pass accepts: those code generation can do without. */
const skippable = passes.map((p) => p.name).filter((name) => {
  try {
    return selectPasses([name]), true;
  } catch {
    return false;
  }
});

/** KEY=VALUE of compile --config: VALUE read as JSON when it is JSON, else as text. */
const configOverride = checkedBy("KEY=VALUE with a dotted config key (e.g. rope_theta=500000 or architectures.0=BertModel)", (text) => {
  const m = /^([A-Za-z_][\w]*(?:\.\w+)*)=(.*)$/s.exec(text);
  if (!m) throw new Error("not KEY=VALUE");
  let value: unknown;
  try {
    value = JSON.parse(m[2]);
  } catch {
    value = m[2];
  }
  return { key: m[1], value };
});

const compile = command({
  summary: "compile a .wf model with a checkpoint into an artifact folder",
  positional: { arg: "MODEL.wf", help: "model definition (.wf)" },
  options: {
    weights,
    out: { kind: path, arg: "DIR", required: true, help: "artifact folder to write: absent, empty or an earlier artifact (written beside it, then swapped in)" },
    force: force("an artifact or an empty folder"),
    context,
    "print-ir": { kind: "flag", help: "print the IR before and after every pass" },
    "emit-wat": { kind: "flag", help: "also write model.wat" },
    profile: { kind: "flag", help: "also write model.profile.wasm, which `wasmformer profile` times kernel by kernel" },
    "disable-pass": { kind: oneOf(skippable, `a pass that may be skipped (${skippable.join(", ")})`), arg: "NAME", repeatable: true, help: "skip a pass by name (e.g. fuse-ffn)" },
    quantize: quantize("store matrices as GGUF q8_0 (8.5 bits a weight), q4_0 (4.5 bits) or q4_1 (int4-min: 5 bits, a per-block minimum) blocks of 32, computed on directly"),
    "quantize-tensor": { kind: checkedBy("NAME=int8|int4|int4-min|f32", parseOverride), arg: "NAME=SCHEME", repeatable: true, help: "another scheme (or f32) for the checkpoint tensors NAME matches (* is a wildcard), e.g. lm_head.weight=int8; first match wins" },
    lora: { kind: adapterSpec, arg: "DIR[=SCALE]", repeatable: true, help: "merge a PEFT LoRA adapter into the weights (W + SCALE·alpha/r·B·A) before fusion and quantization" },
    config: { kind: configOverride, arg: "KEY=VALUE", repeatable: true, help: "replace a config.json value (dotted key; VALUE as JSON, else text), e.g. architectures.0=BertModel for the bare encoder of a masked-LM checkpoint" },
    "shard-size": { kind: byteSize(SHARD_SIZE.min, SHARD_SIZE.max), arg: "SIZE", default: `${SHARD_SIZE.default / 2 ** 20}M`, help: "most bytes in one weights file: larger weights are written as weights-00001-of-0000N.bin shards (K, M, G are binary units)" },
    "kv-cache": { kind: oneOf(KV_DTYPES), arg: KV_DTYPES.join("|"), default: "f32", help: "the KV cache's values: f32, or bf16 (half the memory and of the bytes a decode step reads from it; each key and value rounded once to bfloat16)" },
    "lora-slots": { kind: checkedBy("RANK or RANK:MODULES (a rank from 1 to 512, then comma-separated module names)", parseSlots), arg: "RANK[:MODULES]", help: "compile run-time LoRA side paths of this rank on the named linears (e.g. 16:q_proj,v_proj; default all but the head), for run/generate --adapter" },
  },
  async run(model, a, io) {
    if (a["quantize-tensor"].length && !a.quantize) throw usageError("--quantize-tensor needs --quantize int8, int4 or int4-min");
    const t0 = performance.now();
    const r = compileModel(model, a.weights, a.out, {
      context: a.context,
      force: a.force,
      emitWat: a["emit-wat"],
      profile: a.profile,
      config: a.config,
      disablePasses: a["disable-pass"],
      quantize: a.quantize ? { scheme: a.quantize, overrides: a["quantize-tensor"] } : undefined,
      lora: a.lora,
      loraSlots: a["lora-slots"],
      kvCache: a["kv-cache"],
      shardSize: a["shard-size"],
      printAfter: a["print-ir"] ? (pass, ir) => io.stdout.write(`// ---- IR after ${pass} ----\n${ir}\n`) : undefined,
      progress: progressOn(io.stderr),
    });
    const m = r.manifest;
    io.stderr.write(
      `compiled ${m.model} (${m.kind}, context ${m.context}) to ${a.out}: ${r.files.join(", ")}; ` +
        `weights ${MiB(m.memory.weights_bytes)} MiB, activations ${MiB(m.memory.activation_bytes)} MiB, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  },
});

const exportOnnxCommand = command({
  summary: "write an ONNX model of the same graph (for comparisons with ONNX Runtime)",
  positional: { arg: "MODEL.wf", help: "model definition (.wf)" },
  options: {
    weights,
    out: { kind: path, arg: "FILE", required: true, help: "file to write (.onnx)" },
    force: force("an ONNX model"),
    context,
    entry: { kind: path, arg: "NAME", help: "entry to export (default forward)" },
    quantize: quantize("quantize matrices as compile does; q8_0/q4_0 written as com.microsoft MatMulNBits (ONNX Runtime), q4_1 dequantized"),
  },
  async run(model, a, io) {
    const outOpts = { force: a.force, inputs: [model, a.weights] };
    checkFileOut(a.out, ONNX_FILE, outOpts);
    const progress = progressOn(io.stderr);
    const loaded = loadProgram(model, a.weights, { context: a.context, onProgress: progress && ((d, t, what) => (progress.update("loading weights", d, t, what), d === t && progress.done())) });
    // quantized matrices are written as ONNX Runtime's MatMulNBits (8 or 4 bits, blocks of 32)
    const program = runPipeline(loaded, {}, withQuantization(passes, a.quantize));
    const bytes = exportOnnx(program, { entry: a.entry });
    writeFileOut(a.out, bytes, ONNX_FILE, outOpts);
    // an entry with a KV cache takes one sequence and its pasts; an image entry one image; any other (an encoder) a batch [B, S]
    const image = program.graphs.find((g) => g.name === (a.entry ?? "forward"))?.nodes.find((n) => n.op === "input" && n.attrs.kind === "image");
    const ioNote = onnxCacheLayout(program, a.entry).length
      ? "inputs input_ids [1, S], past_key_i/past_value_i; outputs logits, present_*"
      : image ? `inputs pixel_values [${image.type.shape.join(", ")}]: one image; outputs [1, rows, width]`
      : "inputs input_ids, token_type_ids, attention_mask as the entry has them, [B, S]: a batch of sequences; outputs [B, S or 1, width]";
    io.stderr.write(`wrote ${a.out}: ONNX opset 17, ${MiB(bytes.byteLength)} MiB (${ioNote})\n`);
  },
});

const run = command({
  summary: "run an artifact on ids and write the output as .npy",
  positional: { arg: "ARTIFACT", help: "artifact folder, from compile" },
  options: {
    "input-ids": { kind: ids, arg: "IDS", help: "comma-separated token ids (T5: the encoder's)" },
    image: { kind: path, arg: "FILE", help: "a PNG or JPEG image for an image model (ViT), preprocessed as its preprocessor_config.json says" },
    "token-type-ids": { kind: ids, arg: "IDS", help: "BERT's segment ids, one per input id" },
    "decoder-input-ids": { kind: ids, arg: "IDS", help: "T5's decoder ids (default: the decoder start token)" },
    out: { kind: path, arg: "FILE.npy", required: true, help: "float32 [S, vocab] logits, or [S, hidden] for an encoder" },
    force: force("a .npy file"),
    threads,
    adapter,
  },
  conflicts: [["image", "input-ids"]],
  async run(artifact, a, io) {
    if (!a["input-ids"] && a.image === undefined) throw usageError("give --input-ids IDS or --image FILE");
    const outOpts = { force: a.force, inputs: [artifact] };
    checkFileOut(a.out, NPY_FILE, outOpts);
    const pixels = a.image === undefined ? undefined : readImagePixels(a.image, readManifest(artifact));
    await withModel(artifact, a.threads, (model) => {
      let out: Float32Array, width: number;
      if (pixels) {
        const e = model.manifest.entries[0];
        out = model.runImage(e.name, pixels)[e.outputs[0].name];
        width = e.outputs[0].width;
      } else if (model.manifest.kind === "seq2seq") {
        const enc = model.run("encode", { ids: a["input-ids"]! });
        model.setState("hidden", enc.hidden);
        const d = a["decoder-input-ids"] ?? [model.manifest.tokens?.decoder_start ?? 0];
        out = model.run("decode", { ids: d }).logits;
        width = out.length / d.length;
      } else {
        const e = model.manifest.entries[0];
        const res = model.run(e.name, { ids: a["input-ids"]!, segments: a["token-type-ids"] });
        out = res[e.outputs[0].name];
        width = e.outputs[0].width;
      }
      writeFileOut(a.out, encodeNpy(out, [out.length / width, width]), NPY_FILE, outOpts);
      io.stderr.write(`wrote ${a.out}: float32 [${out.length / width}, ${width}]\n`);
    }, readAdapterOption(a.adapter));
  },
});

const embedCommand = command({
  summary: "sentence embeddings of texts (or ids) from an encoder",
  positional: { arg: "ARTIFACT", help: "artifact folder of an encoder (BERT-style), from compile" },
  options: {
    text: { kind: text, arg: "TEXT", repeatable: true, help: "a text to embed (needs the artifact's tokenizer.json); repeatable" },
    "input-ids": { kind: ids, arg: "IDS", repeatable: true, help: "a sequence of comma-separated token ids to embed; repeatable" },
    pooling: { kind: oneOf(["mean", "cls", "last"] as const), arg: "mean|cls|last", default: "mean", help: "average the tokens' hidden states, or take the first or last token's" },
    normalize: { kind: "flag", help: "scale each embedding to unit length (for cosine similarity)" },
    json: { kind: "flag", help: 'print one object: {"pooling", "normalize", "dims", "embeddings"}' },
    threads: autoThreads,
  },
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    if (man.kind !== "encoder") throw usageError(`embed needs an encoder, and ${artifact} is ${man.kind === "causal-lm" ? "a causal LM" : "a seq2seq model"}`);
    if (!a.text.length && !a["input-ids"].length) throw usageError("give --text TEXT or --input-ids IDS (each repeatable)");
    if (a.text.length && !man.tokenizer) throw usageError(`--text needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json, or pass --input-ids)`);
    const tokenizer = a.text.length ? loadArtifactTokenizer(artifact, man) : undefined;
    await withModel(artifact, threadsFor(a.threads, man), async (model) => {
      const vectors = await embed(model, [...a.text, ...a["input-ids"]], { pooling: a.pooling, normalize: a.normalize, tokenizer });
      const rows = vectors.map((v) => Array.from(v));
      if (a.json) io.stdout.write(JSON.stringify({ pooling: a.pooling, normalize: a.normalize, dims: rows[0].length, embeddings: rows }) + "\n");
      else for (const r of rows) io.stdout.write(JSON.stringify(r) + "\n");
    });
  },
});

const classifyCommand = command({
  summary: "labels and scores of texts (or ids) from a sequence classifier, or of images from an image classifier",
  positional: { arg: "ARTIFACT", help: "artifact folder of a sequence- or image-classification encoder, from compile" },
  options: {
    text: { kind: text, arg: "TEXT", repeatable: true, help: "a text to classify (needs the artifact's tokenizer.json); repeatable" },
    "input-ids": { kind: ids, arg: "IDS", repeatable: true, help: "comma-separated token ids to classify; repeatable" },
    "top-k": { kind: int({ min: 1 }), arg: "K", help: "labels to print per input (default: all)" },
    tokens: { kind: "flag", help: "label every token with a token classifier (NER) and print the entities their B-/I- tags form" },
    image: { kind: path, arg: "FILE", repeatable: true, help: "a PNG or JPEG image to classify with an image classifier (ViT), resized and normalized as its preprocessor_config.json says" },
    json: { kind: "flag", help: "print one JSON array per input: [{label, score}, ...], most likely first (--tokens: {tokens, entities})" },
    threads: autoThreads,
  },
  conflicts: [["image", "text"], ["image", "input-ids"], ["image", "tokens"]],
  async run(artifact, a, io) {
    if (a.image.length) return classifyImagesRun(artifact, a, io);
    if (a.tokens) return classifyTokensRun(artifact, a, io);
    const man = readManifest(artifact);
    if (!man.classifier) throw usageError(`classify needs a sequence classifier, and ${artifact} has no classification head (compile a *ForSequenceClassification checkpoint)`);
    if (!a.text.length && !a["input-ids"].length) throw usageError("give --text TEXT or --input-ids IDS (each repeatable)");
    if (a.text.length && !man.tokenizer) throw usageError(`--text needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json, or pass --input-ids)`);
    const tokenizer = a.text.length ? loadArtifactTokenizer(artifact, man) : undefined;
    await withModel(artifact, threadsFor(a.threads, man), async (model) => {
      const results = await classify(model, [...a.text, ...a["input-ids"]], { tokenizer, topK: a["top-k"] });
      for (const r of results) io.stdout.write(a.json ? JSON.stringify(r) + "\n" : r.map((x) => `${x.label} ${x.score.toFixed(4)}`).join(", ") + "\n");
    });
  },
});

/** The ids of a text file under the artifact's tokenizer. */
function readTextIds(artifact: string, file: string): number[] {
  const man = readManifest(artifact);
  if (!man.tokenizer) throw usageError(`--text needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json, or pass --ids)`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw isFsError(e) ? new InputError(`--text ${file}: ${fsReason(e)}`, undefined, { code: "WF605" }) : e;
  }
  const ids = loadArtifactTokenizer(artifact, man)!.encode(text);
  if (ids.length < 2) throw optionError(`--text ${file}: ${ids.length} token${ids.length === 1 ? "" : "s"}; scoring needs at least 2`);
  return ids;
}

/** Token ids from a file: a JSON array of integers, or integers separated by whitespace or commas. */
function readIdsFile(file: string): number[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (e) {
    throw isFsError(e) ? new InputError(`--ids ${file}: ${fsReason(e)}`, undefined, { code: "WF605" }) : e;
  }
  let items: unknown[];
  if (text.startsWith("[")) {
    try {
      items = JSON.parse(text);
    } catch {
      throw optionError(`--ids ${file}: not a valid JSON array`);
    }
    if (!Array.isArray(items)) throw optionError(`--ids ${file}: not a JSON array`);
  } else {
    items = text.split(/[\s,]+/).filter((s) => s !== "");
  }
  const values = items.map((v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v));
  const bad = values.findIndex((v) => typeof v !== "number" || !Number.isSafeInteger(v) || v < 0);
  if (bad >= 0) throw optionError(`--ids ${file}: item ${bad + 1} (${(JSON.stringify(items[bad]) ?? String(items[bad])).slice(0, 60)}) is not a non-negative integer token id`);
  if (values.length < 2) throw optionError(`--ids ${file}: ${values.length} token id${values.length === 1 ? "" : "s"}; scoring needs at least 2`);
  return values as number[];
}

const evalCommand = command({
  summary: "mean NLL and perplexity of a causal LM over a file of text or token ids",
  positional: { arg: "ARTIFACT", help: "artifact folder of a causal LM, from compile" },
  options: {
    ids: { kind: path, arg: "FILE", help: "token ids: a JSON array, or integers separated by whitespace or commas" },
    text: { kind: path, arg: "FILE", help: "UTF-8 text, tokenized by the artifact's tokenizer as transformers does (its special tokens included)" },
    window: { kind: int({ min: 2 }), arg: "N", help: "tokens per window, scored from a fresh context (default and most: the artifact's context)" },
    stride: { kind: int({ min: 1 }), arg: "N", help: "tokens between window starts (default: the window; below it, each window scores only tokens not yet scored)" },
    "kl-base": { kind: path, arg: "BASE_ARTIFACT", help: "also compare each next-token distribution with BASE_ARTIFACT's (e.g. fp32 for an int4 artifact): KL divergence, same top-1, ΔNLL" },
    threads,
    json: { kind: "flag", help: "print {tokens, mean_nll, perplexity, window, stride, windows, ids, tokens_per_s} (with --kl-base: {tokens, mean_kld, median_kld, p99_kld, p999_kld, max_kld, same_top1, mean_nll, base_mean_nll, delta_nll, window, stride})" },
  },
  conflicts: [["ids", "text"]],
  async run(artifact, a, io) {
    if (a.ids === undefined && a.text === undefined) throw usageError("give --ids FILE or --text FILE");
    const tokens = a.ids !== undefined ? readIdsFile(a.ids) : readTextIds(artifact, a.text!);
    if (a["kl-base"] !== undefined) return klEval(artifact, a["kl-base"], tokens, a, io);
    await withModel(artifact, a.threads, (model) => {
      const ctx = model.manifest.context;
      if (a.window !== undefined && a.window > ctx) throw optionError(`--window should be at most the artifact's context, ${ctx}, found '${a.window}'`);
      const window = a.window ?? ctx;
      if (a.stride !== undefined && a.stride > window) throw optionError(`--stride should be at most the window, ${window}, found '${a.stride}'`);
      const progress = a.json ? undefined : progressOn(io.stderr);
      const t0 = performance.now();
      const r = meanNll(model, tokens, { window: a.window, stride: a.stride, onProgress: progress && ((d, t) => progress.update("scoring", d, t)) });
      progress?.done();
      const s = (performance.now() - t0) / 1000;
      if (a.json) {
        io.stdout.write(JSON.stringify({ tokens: r.tokens, mean_nll: r.meanNll, perplexity: r.perplexity, window: r.window, stride: r.stride, windows: r.windows, ids: tokens.length, tokens_per_s: r.tokens / s }) + "\n");
      } else {
        io.stdout.write(`tokens ${r.tokens}, mean NLL ${r.meanNll.toFixed(6)}, perplexity ${r.perplexity.toFixed(4)}\n`);
        io.stderr.write(`${r.windows} windows of up to ${r.window} tokens, stride ${r.stride}; ${(r.tokens / s).toFixed(1)} tokens/s${model.threads > 1 ? ` (${model.threads} threads)` : ""}\n`);
      }
    });
  },
});

/** eval --kl-base: the artifact's next-token distributions against a base artifact's on the same ids. */
async function klEval(artifact: string, baseArtifact: string, tokens: number[], a: { window?: number; stride?: number; threads: number; json?: boolean }, io: Io) {
  await withModel(baseArtifact, a.threads, (base) =>
    withModel(artifact, a.threads, (model) => {
      const ctx = Math.min(model.manifest.context, base.manifest.context);
      if (a.window !== undefined && a.window > ctx) throw optionError(`--window should be at most the artifacts' context, ${ctx}, found '${a.window}'`);
      const progress = a.json ? undefined : progressOn(io.stderr);
      const r = klDivergence(model, base, tokens, { window: a.window, stride: a.stride, onProgress: progress && ((d, t) => progress.update("comparing", d, t)) });
      progress?.done();
      if (a.json) {
        const { tokens: n, meanKld, medianKld, p99Kld, p999Kld, maxKld, sameTop1, meanNll, baseMeanNll, deltaNll, window, stride } = r;
        io.stdout.write(JSON.stringify({ tokens: n, mean_kld: meanKld, median_kld: medianKld, p99_kld: p99Kld, p999_kld: p999Kld, max_kld: maxKld, same_top1: sameTop1, mean_nll: meanNll, base_mean_nll: baseMeanNll, delta_nll: deltaNll, window, stride }) + "\n");
      } else {
        const f = (x: number) => x.toFixed(6);
        io.stdout.write(
          `tokens ${r.tokens}; KL divergence to ${baseArtifact}: mean ${f(r.meanKld)}, median ${f(r.medianKld)}, 99% ${f(r.p99Kld)}, 99.9% ${f(r.p999Kld)}, max ${f(r.maxKld)}\n` +
            `same top-1 ${(100 * r.sameTop1).toFixed(2)}%; mean NLL ${f(r.meanNll)} vs ${f(r.baseMeanNll)} (Δ ${r.deltaNll >= 0 ? "+" : ""}${f(r.deltaNll)})\n`,
        );
      }
    }),
  );
}

/** Every command, in the order --help lists them. */
export const commands: Record<string, CommandSpec> = {
  compile,
  "export-onnx": exportOnnxCommand,
  run,
  generate: generateCommand,
  chat: chatCommand,
  embed: embedCommand,
  classify: classifyCommand,
  eval: evalCommand,
  answer: answerCommand,
  "fill-mask": fillMaskCommand,
  bench: benchCommand,
  compare: compareCommand,
  profile: profileCommand,
  serve: serveCommand,
};
