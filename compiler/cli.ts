// The wasmformer command line: compile, run, generate, eval.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { IRError } from "../ir/graph.js";
import { meanNll } from "../runtime/eval.js";
import { generate } from "../runtime/generate.js";
import { ArtifactError, type Model } from "../runtime/model.js";
import { loadArtifact } from "../runtime/node.js";
import { encodeNpy } from "../runtime/npy.js";
import { loadTokenizer } from "../runtime/tokenizer.js";
import { compileModel } from "./compile.js";
import { OnnxExportError, exportOnnx } from "./export/onnx.js";
import { loadProgram } from "./load.js";
import { passes, runPipeline, withQuantization } from "./passes/manager.js";
import { QUANTIZE_CHOICES, parseOverride } from "./passes/quantize-weights.js";
import { Diagnostic, DiagnosticList, formatDiagnostic } from "./diagnostics.js";
import { terminalProgress } from "./progress.js";

class UsageError extends Error {}

function parseIds(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const parts = String(text).split(",").map((s) => s.trim());
  const ids = parts.map(Number);
  const bad = parts.findIndex((s, i) => s === "" || !Number.isInteger(ids[i]) || ids[i] < 0);
  if (bad >= 0) throw new UsageError(`--${flag}: '${parts[bad]}' is not a non-negative integer id`);
  return ids;
}

type CompileArgs = { model: string; weights: string; out: string; context?: number; "print-ir"?: boolean; "emit-wat"?: boolean; "disable-pass"?: string[]; quantize?: (typeof QUANTIZE_CHOICES)[number]; "quantize-tensor"?: string[] };
async function cmdCompile(a: CompileArgs) {
  const t0 = performance.now();
  const overrides = (a["quantize-tensor"] ?? []).map((t) => {
    try {
      return parseOverride(t);
    } catch (e) {
      throw new UsageError(`--quantize-tensor: ${(e as Error).message}`);
    }
  });
  if (overrides.length && !a.quantize) throw new UsageError("--quantize-tensor needs --quantize int8, int4 or int4-min");
  const r = compileModel(a.model, a.weights, a.out, {
    context: a.context,
    emitWat: a["emit-wat"],
    disablePasses: a["disable-pass"],
    quantize: a.quantize ? { scheme: a.quantize, overrides } : undefined,
    printAfter: a["print-ir"] ? (pass, ir) => process.stdout.write(`// ---- IR after ${pass} ----\n${ir}\n`) : undefined,
    progress: terminalProgress(),
  });
  const m = r.manifest;
  process.stderr.write(
    `compiled ${m.model} (${m.kind}, context ${m.context}) to ${a.out}: ${r.files.join(", ")}; ` +
      `weights ${(m.memory.weights_bytes / 2 ** 20).toFixed(1)} MiB, activations ${(m.memory.activation_bytes / 2 ** 20).toFixed(1)} MiB, ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}

async function cmdExportOnnx(a: { model: string; weights: string; out: string; context?: number; entry?: string; quantize?: (typeof QUANTIZE_CHOICES)[number] }) {
  const loaded = loadProgram(a.model, a.weights, { context: a.context, onProgress: terminalProgressFn("loading weights") });
  // quantized matrices are written as ONNX Runtime's MatMulNBits (8 or 4 bits, blocks of 32)
  const program = runPipeline(loaded, {}, withQuantization(passes, a.quantize));
  const bytes = exportOnnx(program, { entry: a.entry });
  const tmp = `${a.out}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, a.out);
  process.stderr.write(`wrote ${a.out}: ONNX opset 17, ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB (inputs input_ids, past_key_i/past_value_i; outputs logits, present_*)\n`);
}

function terminalProgressFn(what: string) {
  const p = terminalProgress();
  return p ? (d: number, t: number, detail: string) => (p.update(what, d, t, detail), d === t && p.done()) : undefined;
}

/** Loads an artifact, runs `use` on it, and stops its worker threads. */
async function withModel<T>(a: { artifact: string; threads: number }, use: (model: Model) => T | Promise<T>): Promise<T> {
  if (!Number.isInteger(a.threads) || a.threads < 1) throw new UsageError(`--threads must be a positive integer, got ${a.threads}`);
  const model = await loadArtifact(a.artifact, { threads: a.threads });
  try {
    return await use(model);
  } finally {
    model.dispose();
  }
}

const cmdRun = (a: { artifact: string; threads: number; "input-ids": string; "token-type-ids"?: string; "decoder-input-ids"?: string; out: string }) => withModel(a, (model) => {
  const ids = parseIds("input-ids", a["input-ids"])!;
  const types = parseIds("token-type-ids", a["token-type-ids"]);
  const dec = parseIds("decoder-input-ids", a["decoder-input-ids"]);
  let out: Float32Array, width: number;
  if (model.manifest.kind === "seq2seq") {
    const enc = model.run("encode", { ids });
    model.setState("hidden", enc.hidden);
    const d = dec ?? [model.manifest.tokens?.decoder_start ?? 0];
    out = model.run("decode", { ids: d }).logits;
    width = out.length / d.length;
  } else {
    const e = model.manifest.entries[0];
    const res = model.run(e.name, { ids, segments: types });
    out = res[e.outputs[0].name];
    width = e.outputs[0].width;
  }
  writeFileSync(a.out, encodeNpy(out, [out.length / width, width]));
  process.stderr.write(`wrote ${a.out}: float32 [${out.length / width}, ${width}]\n`);
});

type GenerateArgs = { artifact: string; threads: number; prompt?: string; "input-ids"?: string; "max-new-tokens": number; temperature: number; seed: number; json?: boolean; "ignore-eos"?: boolean };
const cmdGenerate = (a: GenerateArgs) => withModel(a, (model) => {
  const tokPath = model.manifest.tokenizer ? join(a.artifact, model.manifest.tokenizer) : undefined;
  const readJson = (p: string) => JSON.parse(readFileSync(p, "utf8"));
  let tokenizer;
  if (a.prompt !== undefined) {
    if (!tokPath) throw new UsageError(`--prompt needs a tokenizer, and ${a.artifact} has none (compile from a folder with tokenizer.json, or pass --input-ids)`);
    let cfg = {};
    try { cfg = readJson(join(a.artifact, "tokenizer_config.json")); } catch { /* optional */ }
    tokenizer = loadTokenizer(readJson(tokPath), cfg);
  }
  const ids = a.prompt !== undefined ? tokenizer!.encode(a.prompt) : parseIds("input-ids", a["input-ids"]);
  if (!ids || !ids.length) throw new UsageError(`give a non-empty --prompt or --input-ids`);
  if (a.prompt !== undefined && !a.json) process.stdout.write(a.prompt);
  const r = generate(model, ids, {
    maxNewTokens: a["max-new-tokens"],
    temperature: a.temperature,
    seed: a.seed,
    stopAtEos: !a["ignore-eos"],
    onToken: tokenizer && !a.json ? (id) => process.stdout.write(tokenizer.decode([id])) : undefined,
  });
  if (a.json) {
    process.stdout.write(JSON.stringify({ ids: r.ids, prefill_tokens_per_s: r.prefillTokensPerS, decode_tokens_per_s: r.decodeTokensPerS, ...(tokenizer ? { text: tokenizer.decode(r.ids) } : {}) }) + "\n");
  } else {
    if (!tokenizer) process.stdout.write(r.ids.join(","));
    process.stdout.write("\n");
    process.stderr.write(`prefill ${r.prefillTokensPerS.toFixed(1)} tokens/s, decode ${r.decodeTokensPerS.toFixed(1)} tokens/s${model.threads > 1 ? ` (${model.threads} threads)` : ""}\n`);
  }
});

/** Token ids from a file: a JSON array of integers, or integers separated by whitespace or commas. */
function readIdsFile(path: string): number[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new UsageError(`--ids: ${(e as Error).message}`);
  }
  let items: unknown[];
  if (text.startsWith("[")) {
    try {
      items = JSON.parse(text);
    } catch {
      throw new UsageError(`--ids ${path}: not a valid JSON array`);
    }
    if (!Array.isArray(items)) throw new UsageError(`--ids ${path}: not a JSON array`);
  } else {
    items = text.split(/[\s,]+/).filter((s) => s !== "");
  }
  const ids = items.map((v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v));
  const bad = ids.findIndex((v) => typeof v !== "number" || !Number.isSafeInteger(v) || v < 0);
  if (bad >= 0) throw new UsageError(`--ids ${path}: item ${bad + 1} (${JSON.stringify(items[bad])}) is not a non-negative integer token id`);
  if (ids.length < 2) throw new UsageError(`--ids ${path}: ${ids.length} token id${ids.length === 1 ? "" : "s"}; scoring needs at least 2`);
  return ids as number[];
}

type EvalArgs = { artifact: string; ids: string; window?: number; stride?: number; threads: number; json?: boolean };
const cmdEval = (a: EvalArgs) => {
  const ids = readIdsFile(a.ids);
  return withModel(a, (model) => {
    const progress = a.json ? undefined : terminalProgress();
    const t0 = performance.now();
    const r = meanNll(model, ids, { window: a.window, stride: a.stride, onProgress: progress && ((d, t) => progress.update("scoring", d, t)) });
    progress?.done();
    const s = (performance.now() - t0) / 1000;
    if (a.json) {
      process.stdout.write(JSON.stringify({ tokens: r.tokens, mean_nll: r.meanNll, perplexity: r.perplexity, window: r.window, stride: r.stride, windows: r.windows, ids: ids.length, tokens_per_s: r.tokens / s }) + "\n");
    } else {
      process.stdout.write(`tokens ${r.tokens}, mean NLL ${r.meanNll.toFixed(6)}, perplexity ${r.perplexity.toFixed(4)}\n`);
      process.stderr.write(`${r.windows} windows of up to ${r.window} tokens, stride ${r.stride}; ${(r.tokens / s).toFixed(1)} tokens/s${model.threads > 1 ? ` (${model.threads} threads)` : ""}\n`);
    }
  });
};

export async function main(argv: string[]): Promise<number> {
  const cli = yargs(argv)
    .scriptName("wasmformer")
    .strict()
    .demandCommand(1, "give a command: compile, run, generate, eval or export-onnx")
    .command("compile <model>", "compile a .wf model with a checkpoint into an artifact folder", (y) =>
      y.positional("model", { type: "string", demandOption: true, describe: "model definition (.wf)" })
        .option("weights", { type: "string", demandOption: true, describe: "Hugging Face folder (config.json + safetensors) or a .gguf file" })
        .option("out", { type: "string", demandOption: true, describe: "artifact folder to write" })
        .option("context", { type: "number", describe: "longest sequence to support (default: the model's, at most 2048)" })
        .option("print-ir", { type: "boolean", describe: "print the IR before and after every pass" })
        .option("emit-wat", { type: "boolean", describe: "also write model.wat" })
        .option("disable-pass", { type: "string", array: true, describe: "skip a pass by name (e.g. fuse-ffn)" })
        .option("quantize", { choices: QUANTIZE_CHOICES, describe: "store matrices as GGUF q8_0 (8.5 bits a weight), q4_0 (4.5 bits) or q4_1 (int4-min: 5 bits, a per-block minimum) blocks of 32, computed on directly" })
        .option("quantize-tensor", { type: "string", array: true, describe: "NAME=int8|int4|int4-min|f32 for checkpoint tensors matching NAME (* is a wildcard), e.g. lm_head.weight=int8" }))
    .command("export-onnx <model>", "write an ONNX model of the same graph (for comparisons with ONNX Runtime)", (y) =>
      y.positional("model", { type: "string", demandOption: true })
        .option("weights", { type: "string", demandOption: true })
        .option("out", { type: "string", demandOption: true, describe: "file to write (.onnx)" })
        .option("context", { type: "number" })
        .option("entry", { type: "string", describe: "entry to export (default forward)" })
        .option("quantize", { choices: QUANTIZE_CHOICES, describe: "quantize matrices as compile does; q8_0/q4_0 written as com.microsoft MatMulNBits (ONNX Runtime), q4_1 dequantized" }))
    .command("run <artifact>", "run an artifact on ids and write the output as .npy", (y) =>
      y.positional("artifact", { type: "string", demandOption: true })
        .option("input-ids", { type: "string", demandOption: true })
        .option("token-type-ids", { type: "string" })
        .option("decoder-input-ids", { type: "string" })
        .option("threads", { type: "number", default: 1, describe: "threads running the matrix kernels (model.threads.wasm above 1)" })
        .option("out", { type: "string", demandOption: true }))
    .command("generate <artifact>", "generate tokens from a prompt", (y) =>
      y.positional("artifact", { type: "string", demandOption: true })
        .option("prompt", { type: "string" })
        .option("input-ids", { type: "string" })
        .option("max-new-tokens", { type: "number", default: 32 })
        .option("temperature", { type: "number", default: 0 })
        .option("seed", { type: "number", default: 0 })
        .option("ignore-eos", { type: "boolean", describe: "keep going after an end-of-sequence token" })
        .option("json", { type: "boolean" })
        .option("threads", { type: "number", default: 1, describe: "threads running the matrix kernels (model.threads.wasm above 1)" })
        .conflicts("prompt", "input-ids"))
    .command("eval <artifact>", "mean NLL and perplexity of a causal LM over a file of token ids", (y) =>
      y.positional("artifact", { type: "string", demandOption: true })
        .option("ids", { type: "string", demandOption: true, describe: "token ids: a JSON array, or integers separated by whitespace or commas" })
        .option("window", { type: "number", describe: "tokens per window, scored from a fresh context (default and most: the artifact's context)" })
        .option("stride", { type: "number", describe: "tokens between window starts (default: the window; below it, each window scores only tokens not yet scored)" })
        .option("threads", { type: "number", default: 1, describe: "threads running the matrix kernels (model.threads.wasm above 1)" })
        .option("json", { type: "boolean", describe: "print {tokens, mean_nll, perplexity, window, stride, windows, ids, tokens_per_s}" }))
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    })
    .help();
  try {
    const a = await cli.parseAsync(argv);
    const cmd = a._[0];
    if (cmd === "compile") await cmdCompile(a as never);
    else if (cmd === "run") await cmdRun(a as never);
    else if (cmd === "export-onnx") await cmdExportOnnx(a as never);
    else if (cmd === "generate") await cmdGenerate(a as never);
    else if (cmd === "eval") await cmdEval(a as never);
    return 0;
  } catch (e) {
    if (e instanceof Diagnostic || e instanceof DiagnosticList) process.stderr.write(formatDiagnostic(e) + "\n");
    else if (e instanceof IRError) process.stderr.write(formatDiagnostic(new Diagnostic(e.message, e.loc)) + "\n");
    else if (e instanceof ArtifactError || e instanceof UsageError || e instanceof OnnxExportError) process.stderr.write(`error: ${e.message}\n`);
    else if (e instanceof Error && (e as NodeJS.ErrnoException).code?.startsWith("E")) process.stderr.write(`error: ${e.message}\n`);
    else {
      process.stderr.write(`internal error: ${(e as Error)?.message ?? e}\n`);
      if (process.env.WASMFORMER_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
      return 2;
    }
    return 1;
  }
}
