// The commands: each one's options as a table (compiler/cli/options.ts) and what it does.

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { type ChatMessage, chatIds, chatTemplate } from "../../runtime/chat.js";
import { classify, embed } from "../../runtime/embed.js";
import { meanNll } from "../../runtime/eval.js";
import { stream as generateStream } from "../../runtime/generate.js";
import type { Manifest } from "../../runtime/manifest.js";
import type { Model } from "../../runtime/model.js";
import { loadArtifact, loadArtifactChat, loadArtifactTokenizer, readManifest } from "../../runtime/node.js";
import type { TextTokenizer } from "../../runtime/tokenizer.js";
import { encodeNpy } from "../../runtime/npy.js";
import { compileModel } from "../compile.js";
import { InputError } from "../diagnostics.js";
import { exportOnnx } from "../export/onnx.js";
import { loadProgram } from "../load.js";
import { NPY_FILE, ONNX_FILE, checkFileOut, writeFileOut } from "../output.js";
import { passes, runPipeline, selectPasses, withQuantization } from "../passes/manager.js";
import { QUANTIZE_CHOICES, parseOverride } from "../passes/quantize-weights.js";
import { type Progress, terminalProgress } from "../progress.js";
import { fsReason, isFsError } from "./errors.js";
import { type CommandSpec, type Writer, checkedBy, command, ids, int, nonNegativeNumber, numberIn, oneOf, optionError, path, text, usageError } from "./options.js";

/** Progress lines on `stream` when it is a terminal. */
const progressOn = (stream: Writer): Progress | undefined => ((stream as NodeJS.WriteStream).isTTY ? terminalProgress(stream as NodeJS.WriteStream) : undefined);

const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

const weights = { kind: path, arg: "PATH", required: true, help: "Hugging Face folder (config.json + safetensors) or a .gguf file" } as const;
const context = { kind: int({ min: 1 }), arg: "N", help: "longest sequence to support (default: the model's, at most 2048)" } as const;
const force = (what: string) => ({ kind: "flag", help: `replace --out even if it is not ${what} (never the current folder, a folder above it, the home folder, / or an input)` }) as const;
const threads = { kind: int({ min: 1, max: 256 }), arg: "N", default: "1", help: "threads running the matrix kernels (model.threads.wasm above 1)" } as const;
/** --threads of the commands that generate: by default every core, where the artifact has the threaded module. */
const autoThreads = { kind: int({ min: 1, max: 256 }), arg: "N", help: "threads running the matrix kernels (default: the machine's cores, when the artifact has model.threads.wasm; else 1)" } as const;
function threadsFor(given: number | undefined, man: Manifest): number {
  if (given !== undefined) return given;
  if (!man.variants.some((v) => v.features.includes("threads"))) return 1;
  return Math.max(1, Math.min(availableParallelism(), man.memory.max_threads ?? 1));
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
    "disable-pass": { kind: oneOf(skippable, `a pass that may be skipped (${skippable.join(", ")})`), arg: "NAME", repeatable: true, help: "skip a pass by name (e.g. fuse-ffn)" },
    quantize: quantize("store matrices as GGUF q8_0 (8.5 bits a weight), q4_0 (4.5 bits) or q4_1 (int4-min: 5 bits, a per-block minimum) blocks of 32, computed on directly"),
    "quantize-tensor": { kind: checkedBy("NAME=int8|int4|int4-min|f32", parseOverride), arg: "NAME=SCHEME", repeatable: true, help: "another scheme (or f32) for the checkpoint tensors NAME matches (* is a wildcard), e.g. lm_head.weight=int8; first match wins" },
  },
  async run(model, a, io) {
    if (a["quantize-tensor"].length && !a.quantize) throw usageError("--quantize-tensor needs --quantize int8, int4 or int4-min");
    const t0 = performance.now();
    const r = compileModel(model, a.weights, a.out, {
      context: a.context,
      force: a.force,
      emitWat: a["emit-wat"],
      disablePasses: a["disable-pass"],
      quantize: a.quantize ? { scheme: a.quantize, overrides: a["quantize-tensor"] } : undefined,
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
    io.stderr.write(`wrote ${a.out}: ONNX opset 17, ${MiB(bytes.byteLength)} MiB (inputs input_ids, past_key_i/past_value_i; outputs logits, present_*)\n`);
  },
});

/** Loads an artifact, runs `use` on it, and stops its worker threads. */
async function withModel<T>(artifact: string, threadCount: number, use: (model: Model) => T | Promise<T>): Promise<T> {
  const model = await loadArtifact(artifact, { threads: threadCount });
  try {
    return await use(model);
  } finally {
    model.dispose();
  }
}

const run = command({
  summary: "run an artifact on ids and write the output as .npy",
  positional: { arg: "ARTIFACT", help: "artifact folder, from compile" },
  options: {
    "input-ids": { kind: ids, arg: "IDS", required: true, help: "comma-separated token ids (T5: the encoder's)" },
    "token-type-ids": { kind: ids, arg: "IDS", help: "BERT's segment ids, one per input id" },
    "decoder-input-ids": { kind: ids, arg: "IDS", help: "T5's decoder ids (default: the decoder start token)" },
    out: { kind: path, arg: "FILE.npy", required: true, help: "float32 [S, vocab] logits, or [S, hidden] for an encoder" },
    force: force("a .npy file"),
    threads,
  },
  async run(artifact, a, io) {
    const outOpts = { force: a.force, inputs: [artifact] };
    checkFileOut(a.out, NPY_FILE, outOpts);
    await withModel(artifact, a.threads, (model) => {
      let out: Float32Array, width: number;
      if (model.manifest.kind === "seq2seq") {
        const enc = model.run("encode", { ids: a["input-ids"] });
        model.setState("hidden", enc.hidden);
        const d = a["decoder-input-ids"] ?? [model.manifest.tokens?.decoder_start ?? 0];
        out = model.run("decode", { ids: d }).logits;
        width = out.length / d.length;
      } else {
        const e = model.manifest.entries[0];
        const res = model.run(e.name, { ids: a["input-ids"], segments: a["token-type-ids"] });
        out = res[e.outputs[0].name];
        width = e.outputs[0].width;
      }
      writeFileOut(a.out, encodeNpy(out, [out.length / width, width]), NPY_FILE, outOpts);
      io.stderr.write(`wrote ${a.out}: float32 [${out.length / width}, ${width}]\n`);
    });
  },
});

const maxNewTokens = { kind: int({ min: 0 }), arg: "N", help: "tokens to generate (default: generation_config.json's max_new_tokens, else 32)" } as const;

/** The sampling flags of generate and chat; unset ones fall back to what the checkpoint ships. */
const samplingFlags = {
  temperature: { kind: nonNegativeNumber, arg: "T", help: "0 picks the most likely token; above 0 samples from softmax(logits / T) (default 0, or the checkpoint's when it samples)" },
  "top-k": { kind: int({ min: 0 }), arg: "K", help: "sample from the K most likely tokens (0: all)" },
  "top-p": { kind: numberIn(0, 1, true), arg: "P", help: "sample from the most likely tokens holding probability P (1: all)" },
  "min-p": { kind: numberIn(0, 1), arg: "P", help: "drop tokens less likely than P × the most likely one" },
  "repetition-penalty": { kind: numberIn(0, Infinity, true), arg: "R", help: "divide positive logits of tokens already seen by R, multiply negative ones (1: off)" },
  "presence-penalty": { kind: nonNegativeNumber, arg: "A", help: "subtract A from the logits of generated tokens" },
  "frequency-penalty": { kind: nonNegativeNumber, arg: "F", help: "subtract F per occurrence from the logits of generated tokens" },
  seed: { kind: int(), arg: "S", default: "0", help: "seed of the sampler" },
} as const;

/**
 * Generation options from the flags; a flag not given takes the checkpoint's setting
 * (generation_config.json), as transformers does: its sampling settings when do_sample is true
 * (top-k 50 when it names none), its repetition penalty and length always.
 */
function samplingOptions(a: { [K in keyof typeof samplingFlags]?: number } & { "max-new-tokens"?: number }, man: Manifest) {
  const g = man.generation ?? {};
  const sample = g.do_sample === true;
  return {
    maxNewTokens: a["max-new-tokens"] ?? g.max_new_tokens ?? 32,
    temperature: a.temperature ?? (sample ? (g.temperature ?? 1) : 0),
    topK: a["top-k"] ?? (sample ? (g.top_k ?? 50) : 0),
    topP: a["top-p"] ?? (sample ? (g.top_p ?? 1) : 1),
    minP: a["min-p"] ?? (sample ? (g.min_p ?? 0) : 0),
    repetitionPenalty: a["repetition-penalty"] ?? g.repetition_penalty ?? 1,
    presencePenalty: a["presence-penalty"] ?? 0,
    frequencyPenalty: a["frequency-penalty"] ?? 0,
    seed: a.seed ?? 0,
  };
}

const generateCommand = command({
  summary: "generate tokens from a prompt, printing the text as it is produced",
  positional: { arg: "ARTIFACT", help: "artifact folder of a causal LM or T5, from compile" },
  options: {
    prompt: { kind: text, arg: "TEXT", help: "the prompt as text (needs the artifact's tokenizer.json)" },
    "input-ids": { kind: ids, arg: "IDS", help: "the prompt as comma-separated token ids" },
    "max-new-tokens": maxNewTokens,
    ...samplingFlags,
    seed: { kind: int(), arg: "S", default: "0", help: "seed of the sampler" },
    stop: { kind: text, arg: "STR", repeatable: true, help: "stop where this text appears, leaving it out (needs the tokenizer)" },
    "ignore-eos": { kind: "flag", help: "keep going after an end-of-sequence token" },
    json: { kind: "flag", help: 'print one object at the end: {"ids", "text", "stop_reason", "prefill_tokens_per_s", "decode_tokens_per_s"}' },
    threads: autoThreads,
  },
  conflicts: [["prompt", "input-ids"]],
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    let tokenizer: TextTokenizer | undefined;
    if (a.prompt !== undefined || a.stop.length) {
      const why = a.prompt !== undefined ? "--prompt" : "--stop";
      if (!man.tokenizer) throw usageError(`${why} needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json${a.prompt !== undefined ? ", or pass --input-ids" : ""})`);
      tokenizer = loadArtifactTokenizer(artifact, man)!;
    } else if (man.tokenizer) {
      tokenizer = loadArtifactTokenizer(artifact, man)!;
    }
    const prompt = a.prompt !== undefined ? tokenizer!.encode(a.prompt) : a["input-ids"];
    if (!prompt?.length) throw usageError("give a non-empty --prompt or --input-ids");
    if (a.stop.some((s) => s === "")) throw usageError("--stop needs a non-empty text");
    return withModel(artifact, threadsFor(a.threads, man), async (model) => {
      const abort = new AbortController();
      const interrupt = () => abort.abort();
      process.once("SIGINT", interrupt);
      try {
        const stream = generateStream(model, prompt, {
          ...samplingOptions(a, man),
          stop: a.stop,
          tokenizer,
          stopAtEos: !a["ignore-eos"],
          signal: abort.signal,
        });
        const printing = !a.json;
        if (printing && a.prompt !== undefined) io.stdout.write(a.prompt);
        let r;
        for (;;) {
          const step = await stream.next();
          if (step.done) {
            r = step.value;
            break;
          }
          if (printing) io.stdout.write(tokenizer ? step.value.text : `${step.value.id},`);
        }
        if (a.json) {
          io.stdout.write(JSON.stringify({ ids: r.ids, ...(r.text !== undefined ? { text: r.text } : {}), stop_reason: r.stopReason, prefill_tokens_per_s: r.prefillTokensPerS, decode_tokens_per_s: r.decodeTokensPerS }) + "\n");
        } else {
          io.stdout.write("\n");
          io.stderr.write(`prefill ${r.prefillTokensPerS.toFixed(1)} tokens/s, decode ${r.decodeTokensPerS.toFixed(1)} tokens/s${model.threads > 1 ? ` (${model.threads} threads)` : ""}, stopped: ${r.stopReason}\n`);
        }
        // stopped by Ctrl-C: the shell's status for SIGINT
        return r.stopReason === "abort" ? 130 : 0;
      } finally {
        process.off("SIGINT", interrupt);
      }
    });
  },
});

const chatCommand = command({
  summary: "chat with a model: a REPL on a terminal, or turns read line by line from stdin",
  positional: { arg: "ARTIFACT", help: "artifact folder of a causal LM with a chat template, from compile" },
  options: {
    system: { kind: text, arg: "TEXT", help: "a system message before the first turn" },
    "max-new-tokens": maxNewTokens,
    ...samplingFlags,
    json: { kind: "flag", help: 'print one object per turn: {"text", "ids", "prompt_tokens", "cached_tokens", "stop_reason", "prefill_tokens_per_s", "decode_tokens_per_s"}' },
    threads: autoThreads,
  },
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    if (man.kind !== "causal-lm") throw usageError(`chat needs a causal LM, and ${artifact} is ${man.kind === "encoder" ? "an encoder" : "a seq2seq model"}`);
    if (!man.tokenizer) throw usageError(`chat needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json)`);
    const chat = loadArtifactChat(artifact, man);
    if (!chat) throw usageError(`chat needs a chat template, and ${artifact} has none (compile from a folder whose tokenizer_config.json has a chat_template, or with a chat_template.jinja)`);
    const tokenizer = loadArtifactTokenizer(artifact, man)!;
    const template = chatTemplate(chat.template, `${artifact}/${man.chat!.template}`);
    const messages: ChatMessage[] = a.system !== undefined ? [{ role: "system", content: a.system }] : [];
    const options = samplingOptions(a, man);
    const terminal = !!(process.stdin as { isTTY?: boolean }).isTTY && !a.json;
    return withModel(artifact, threadsFor(a.threads, man), async (model) => {
      const lines = createInterface({ input: process.stdin, terminal: false });
      const ask = () => terminal && io.stderr.write("> ");
      // Ctrl-C stops the reply in progress; at the prompt it ends the session
      let abort: AbortController | undefined;
      const interrupt = () => (abort ? abort.abort() : lines.close());
      process.on("SIGINT", interrupt);
      try {
        ask();
        for await (const line of lines) {
          if (line.trim() === "") {
            ask();
            continue;
          }
          messages.push({ role: "user", content: line });
          const ids = chatIds(tokenizer, template, messages, { bosToken: chat.bosToken, eosToken: chat.eosToken });
          abort = new AbortController();
          const it = generateStream(model, ids, { ...options, tokenizer, signal: abort.signal });
          let r;
          for (;;) {
            const step = await it.next();
            if (step.done) {
              r = step.value;
              break;
            }
            if (!a.json) io.stdout.write(step.value.text);
          }
          abort = undefined;
          messages.push({ role: "assistant", content: r.text ?? "" });
          if (a.json)
            io.stdout.write(JSON.stringify({ text: r.text, ids: r.ids, prompt_tokens: ids.length, cached_tokens: r.cachedTokens, stop_reason: r.stopReason, prefill_tokens_per_s: r.prefillTokensPerS, decode_tokens_per_s: r.decodeTokensPerS }) + "\n");
          else io.stdout.write("\n");
          if (terminal) io.stderr.write(`(${ids.length} prompt tokens, ${r.cachedTokens} from the cache; ${r.decodeTokensPerS.toFixed(1)} tokens/s${r.stopReason === "abort" ? "; stopped" : ""})\n`);
          ask();
        }
      } finally {
        process.off("SIGINT", interrupt);
      }
    });
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
  summary: "labels and scores of texts (or ids) from a sequence classifier",
  positional: { arg: "ARTIFACT", help: "artifact folder of a sequence-classification encoder, from compile" },
  options: {
    text: { kind: text, arg: "TEXT", repeatable: true, help: "a text to classify (needs the artifact's tokenizer.json); repeatable" },
    "input-ids": { kind: ids, arg: "IDS", repeatable: true, help: "comma-separated token ids to classify; repeatable" },
    "top-k": { kind: int({ min: 1 }), arg: "K", help: "labels to print per input (default: all)" },
    json: { kind: "flag", help: "print one JSON array per input: [{label, score}, ...], most likely first" },
    threads: autoThreads,
  },
  async run(artifact, a, io) {
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
    threads,
    json: { kind: "flag", help: "print {tokens, mean_nll, perplexity, window, stride, windows, ids, tokens_per_s}" },
  },
  conflicts: [["ids", "text"]],
  async run(artifact, a, io) {
    if (a.ids === undefined && a.text === undefined) throw usageError("give --ids FILE or --text FILE");
    const tokens = a.ids !== undefined ? readIdsFile(a.ids) : readTextIds(artifact, a.text!);
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
};
