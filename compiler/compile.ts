// compile: .wf model + checkpoint → artifact folder (model.wasm, weights.bin or its shards, manifest.json).

import type { QuantizeOptions } from "./passes/quantize-weights.js";
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, openSync, statSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Program } from "../ir/types.js";
import { MAX_SHARD_BYTES, type Manifest, type WeightShard } from "@wasmformer/runtime/manifest";
import { generate } from "./codegen/emit.js";
import { forcedTokens, readChatTemplate, readGenerationConfig, readImageProcessor } from "./checkpoint-files.js";
import { type ConfigOverride, loadProgram, openWeights, readHfConfig, withConfig } from "./load.js";
import { loraLayout, mergeAdapters, withLoraSlots } from "./lora.js";
import type { LoraSlotOptions } from "./passes/lora-slots.js";
import { readAdapter } from "@wasmformer/runtime/lora-node";
import { LoraError } from "@wasmformer/runtime/lora";
import { InputError } from "./diagnostics.js";
import { checkFolderOut, writeFolderOut } from "./output.js";
import type { KvDtype } from "./passes/kv-cache.js";
import { type PipelineOptions, runPipeline, selectPasses, withKvCache, withQuantization } from "./passes/manager.js";
import type { Progress } from "./progress.js";

export interface CompileOptions {
  context?: number;
  emitWat?: boolean;
  /** Values that replace config.json's before the model reads it (e.g. architectures.0 = "BertModel": the bare encoder). */
  config?: readonly ConfigOverride[];
  /** Also write model.profile.wasm, the module `wasmformer profile` times kernel by kernel. */
  profile?: boolean;
  printAfter?: PipelineOptions["printAfter"];
  /** Passes to skip, by name (e.g. fuse-ffn, for an unfused baseline). */
  disablePasses?: string[];
  /** Weight quantization of the matrices (int8: q8_0 blocks of 32). */
  quantize?: QuantizeOptions | QuantizeOptions["scheme"];
  /** The KV caches' values: f32 (default) or bf16 (half the memory; compiler/passes/kv-cache.ts). */
  kvCache?: KvDtype;
  progress?: Progress;
  /** PEFT LoRA adapters folded into the weights before fusion and quantization: W + scale·s·B·A. */
  lora?: readonly { dir: string; scale?: number }[];
  /** Run-time LoRA slots of this rank on the linears of these modules (default all but the head); the manifest says where. */
  loraSlots?: LoraSlotOptions;
  /** Most bytes in one weights file (default SHARD_SIZE.default); larger weights are split into shards. */
  shardSize?: number;
  /**
   * Replace `outDir` even when it is not an earlier artifact (a file, a folder of other files);
   * never the current folder, a folder above it, the home folder, the root or a folder holding an input.
   */
  force?: boolean;
}

/**
 * Refuses, before any tensor is read, a checkpoint whose tensors alone would not fit a 32-bit
 * WebAssembly memory even stored as compactly as compile stores them: matrices with rows of a
 * multiple of 32 at the quantized scheme's bits, everything else f32. A lower bound (copies,
 * the KV cache and activations come on top), so it never refuses a model that fits; planMemory
 * checks the exact size later.
 */
function checkWeightsFit(weightsPath: string, scheme: QuantizeOptions["scheme"] | undefined) {
  const source = openWeights(weightsPath);
  const bits = { int8: 8.5, int4: 4.5, "int4-min": 5 }[scheme ?? "int8"];
  let bytes = 0;
  for (const name of source.names()) {
    const shape = source.info(name)?.shape ?? [];
    const n = shape.reduce((a, b) => a * b, 1);
    bytes += scheme && shape.length === 2 && shape[1] % 32 === 0 ? (n * bits) / 8 : n * 4;
  }
  if (bytes <= WASM32_BYTES) return;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  throw new InputError(
    `the checkpoint's tensors take ${gib(bytes)} ${scheme ? `at --quantize ${scheme}` : "as f32"}; a 32-bit WebAssembly memory holds at most 4 GiB: ${scheme === "int4" ? "the model is too large for wasm32" : "quantize the weights (--quantize int4)"}`,
    undefined,
    { code: "WF307" },
  );
}
const WASM32_BYTES = 2 ** 32;

/** The shard sizes compile takes, in bytes: from 64 KiB (4 GiB of weights in at most MAX_SHARDS shards) to MAX_SHARD_BYTES. */
export const SHARD_SIZE = { min: 2 ** 16, max: MAX_SHARD_BYTES, default: 2 ** 29 } as const;

/**
 * The weights' files for `total` bytes in shards of at most `size`: one is weights.bin, several
 * weights-00001-of-0000N.bin and on (hashes are filled in as they are written).
 */
export function weightShards(total: number, size: number): WeightShard[] {
  const n = Math.max(1, Math.ceil(total / size));
  const index = (i: number) => String(i).padStart(5, "0");
  return Array.from({ length: n }, (_, i) => ({
    file: n === 1 ? "weights.bin" : `weights-${index(i + 1)}-of-${index(n)}.bin`,
    offset: i * size,
    bytes: Math.min(size, total - i * size),
    sha256: "",
  }));
}

/**
 * Writes weights.bin's consecutive `pieces` into the shard files in `dir`, each hashed as it is
 * written (its sha-256 set on the shard): one piece in memory at a time.
 */
function writeShards(dir: string, shards: WeightShard[], pieces: Iterable<Uint8Array>) {
  let i = -1, fd: number | undefined, left = 0;
  let hash = createHash("sha256");
  const close = () => {
    if (fd === undefined) return;
    closeSync(fd);
    fd = undefined;
    shards[i].sha256 = hash.digest("hex");
  };
  try {
    for (let piece of pieces)
      while (piece.byteLength) {
        if (left === 0) {
          close();
          if (++i >= shards.length) throw new Error("internal: the weights run past their shards");
          fd = openSync(join(dir, shards[i].file), "wx");
          hash = createHash("sha256");
          left = shards[i].bytes;
        }
        const part = piece.subarray(0, Math.min(left, piece.byteLength, 1 << 24));
        for (let done = 0; done < part.byteLength; ) done += writeSync(fd!, part, done);
        hash.update(part);
        left -= part.byteLength;
        piece = piece.subarray(part.byteLength);
      }
    close();
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (i !== shards.length - 1 || left !== 0) throw new Error("internal: the weights end before their shards");
}

/** The artifact's copy of the checkpoint's chat template. */
const CHAT_TEMPLATE_FILE = "chat_template.jinja";

export interface CompileResult {
  program: Program;
  manifest: Manifest;
  files: string[];
}

/**
 * The special token ids generation uses, from config.json: EOS ids and T5's decoder start must be
 * ids of the vocabulary; BOS and pad ids are informational and kept only when they are ids or -1.
 */
export function specialTokens(hf: Record<string, unknown>, vocab: number): Manifest["tokens"] {
  const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < vocab;
  const bad = (key: string, v: unknown) =>
    new InputError(`config.json '${key}' should be a token id in [0, ${vocab}) or a list of them, found ${JSON.stringify(v)}`, undefined, { code: "WF350" });
  const eos = hf.eos_token_id ?? [];
  const eosIds = Array.isArray(eos) ? eos : [eos];
  if (eosIds.length > 64 || !eosIds.every(isId)) throw bad("eos_token_id", eos);
  const start = hf.decoder_start_token_id ?? undefined;
  if (start !== undefined && !isId(start)) throw bad("decoder_start_token_id", start);
  const optional = (v: unknown) => (isId(v) || v === -1 ? (v as number) : undefined);
  return { eos: eosIds, bos: optional(hf.bos_token_id), decoder_start: start, pad: optional(hf.pad_token_id), ...forcedTokens(hf, vocab, "config.json", "WF350") };
}

/**
 * A classifier's labels: config.json's id2label in index order (LABEL_i where it names none), for
 * an artifact whose entry has a `logits` output of one row per sequence (a sequence classifier)
 * or a `token_logits` output (a token classifier).
 */
function classifierOf(hf: Record<string, unknown>, m: Manifest): Manifest["classifier"] {
  const out = m.kind === "encoder" ? m.entries.flatMap((e) => e.outputs).find((o) => (o.name === "logits" && o.rows === "1") || o.name === "token_logits") : undefined;
  if (!out) return undefined;
  const id2label = typeof hf.id2label === "object" && hf.id2label !== null ? (hf.id2label as Record<string, unknown>) : {};
  const labels = Array.from({ length: out.width }, (_, i) => (typeof id2label[String(i)] === "string" ? (id2label[String(i)] as string) : `LABEL_${i}`));
  const types = ["single_label_classification", "multi_label_classification", "regression"] as const;
  const problem = types.find((t) => t === hf.problem_type);
  if (hf.problem_type !== undefined && hf.problem_type !== null && !problem)
    throw new InputError(`config.json 'problem_type' should be one of ${types.join(", ")}, found ${JSON.stringify(hf.problem_type)}`, undefined, { code: "WF353" });
  return { labels, ...(problem ? { problem_type: problem } : {}) };
}

/** Rows of the smallest table token ids index: the vocabulary. */
function vocabulary(m: Manifest): number {
  const limits = m.entries.flatMap((e) => e.inputs.filter((i) => i.kind === "tokens" && i.limit !== undefined).map((i) => i.limit!));
  return Math.min(...limits);
}

/**
 * Compiles a model into an artifact folder. `outDir` is checked before any work: it must be absent,
 * an empty folder or an earlier artifact (or, with `force`, anything but the paths never replaced);
 * the artifact is written beside it and swapped in whole (compiler/output.ts).
 */
export function compileModel(modelPath: string, weightsPath: string, outDir: string, opts: CompileOptions = {}): CompileResult {
  const shardSize = opts.shardSize ?? SHARD_SIZE.default;
  if (!Number.isSafeInteger(shardSize) || shardSize < SHARD_SIZE.min || shardSize > SHARD_SIZE.max)
    throw new InputError(`shardSize should be an integer from ${SHARD_SIZE.min} to ${SHARD_SIZE.max} bytes, found ${JSON.stringify(shardSize)}`, undefined, { code: "WF601" });
  const outOpts = { force: opts.force, inputs: [modelPath, weightsPath] };
  checkFolderOut(outDir, outOpts);
  const progress = opts.progress;
  // adapters are read and checked against the checkpoint before any weight is bound
  const adapters = (opts.lora ?? []).map((a) => readAdapter(a.dir, a.scale));
  if (adapters.length && existsSync(weightsPath) && statSync(weightsPath).isFile() && weightsPath.toLowerCase().endsWith(".gguf"))
    throw new LoraError(`--lora merges into a Hugging Face checkpoint folder (the adapter's module names are transformers'), and '${weightsPath}' is a GGUF file`);
  const quantize = typeof opts.quantize === "string" ? { scheme: opts.quantize } : opts.quantize;
  checkWeightsFit(weightsPath, quantize?.scheme);
  const program = runPipeline(
    loadProgram(modelPath, weightsPath, {
      context: opts.context,
      config: opts.config,
      onProgress: (d, t, what) => progress?.update("binding weights", d, t, what),
      ...(adapters.length ? { mapWeights: (w) => mergeAdapters(w, adapters) } : {}),
    }),
    { printAfter: opts.printAfter },
    withKvCache(withLoraSlots(withQuantization(selectPasses(opts.disablePasses ?? []), quantize), opts.loraSlots), opts.kvCache),
  );
  progress?.done();
  // an image input's preprocessing (preprocessor_config.json, for runtimes given decoded images), checked before code is generated
  const imageInput = program.graphs.flatMap((g) => g.nodes).find((n) => n.op === "input" && n.attrs.kind === "image");
  const image = imageInput && readImageProcessor(statSync(weightsPath).isDirectory() ? weightsPath : dirname(weightsPath), imageInput.type.shape.slice(1) as number[]);
  const art = generate(program, {
    onWeights: (d, t) => {
      progress?.update("reading and converting weights", d, t);
      if (d === t) progress?.done();
    },
    onProgress: (d, t) => progress?.update("generating code", d, t),
    profile: opts.profile,
  });
  progress?.done();
  const vocab = vocabulary(art.manifest);
  const manifest: Manifest = { ...art.manifest, tokens: specialTokens(withConfig(readHfConfig(weightsPath), opts.config), vocab) };
  if (opts.loraSlots) manifest.lora = loraLayout(program, art, opts.loraSlots.rank);
  const weightsDir = statSync(weightsPath).isDirectory() ? weightsPath : dirname(weightsPath);
  const tokenizerFiles = ["tokenizer.json", "tokenizer_config.json"].filter((f) => existsSync(join(weightsDir, f)));
  if (tokenizerFiles.includes("tokenizer.json")) manifest.tokenizer = "tokenizer.json";
  // generation_config.json's EOS ids join config.json's (chat models end turns with their own)
  const gen = readGenerationConfig(weightsDir, vocab);
  manifest.tokens!.eos = [...new Set([...(manifest.tokens!.eos ?? []), ...gen.eos])];
  if (gen.generation) manifest.generation = gen.generation;
  // generation_config.json's forced ids take the place of config.json's
  Object.assign(manifest.tokens!, gen.forced);
  const classifier = classifierOf(withConfig(readHfConfig(weightsPath), opts.config), art.manifest);
  if (classifier) manifest.classifier = classifier;
  if (image) manifest.image = image;
  const chat = readChatTemplate(weightsDir);
  if (chat) manifest.chat = { template: CHAT_TEMPLATE_FILE, ...(chat.bos_token !== undefined ? { bos_token: chat.bos_token } : {}), ...(chat.eos_token !== undefined ? { eos_token: chat.eos_token } : {}) };

  // the weights are made tensor by tensor as the shards are written and hashed; the manifest
  // follows them, holding the hashes
  const shards = weightShards(art.weightsBytes, shardSize);
  manifest.weights = { shards };
  type Output = [files: string[], writeTo: (dir: string) => void];
  const write = (file: string, data: Uint8Array | string): Output => [[file], (dir) => writeFileSync(join(dir, file), data)];
  const outputs: Output[] = [
    write("model.wasm", art.wasm),
    [shards.map((s) => s.file), (dir) => writeShards(dir, shards, art.weightPieces())],
    [["manifest.json"], (dir) => writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n")],
    ...(art.variants ?? []).filter((v) => v.file !== "model.wasm").map((v) => write(v.file, v.wasm)),
    ...(opts.emitWat ? [write("model.wat", art.wat)] : []),
    ...tokenizerFiles.map((f): Output => [[f], (dir) => copyFileSync(join(weightsDir, f), join(dir, f))]),
    ...(chat ? [write(CHAT_TEMPLATE_FILE, chat.template)] : []),
  ];
  writeFolderOut(outDir, (tmp) => {
    outputs.forEach(([files, writeTo], i) => {
      progress?.update("writing", i, outputs.length, files.length === 1 ? files[0] : "weights");
      writeTo(tmp);
    });
    progress?.update("writing", outputs.length, outputs.length);
    progress?.done();
  }, outOpts);
  return { program, manifest, files: outputs.flatMap(([files]) => files) };
}
