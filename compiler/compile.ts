// compile: .wf model + checkpoint → artifact folder (model.wasm, weights.bin, manifest.json).

import type { QuantizeOptions } from "./passes/quantize-weights.js";
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Program } from "../ir/types.js";
import type { Manifest } from "../runtime/manifest.js";
import { generate } from "./codegen/emit.js";
import { loadProgram, readHfConfig } from "./load.js";
import { type PipelineOptions, runPipeline, selectPasses, withQuantization } from "./passes/manager.js";
import type { Progress } from "./progress.js";

export interface CompileOptions {
  context?: number;
  emitWat?: boolean;
  printAfter?: PipelineOptions["printAfter"];
  /** Passes to skip, by name (e.g. fuse-ffn, for an unfused baseline). */
  disablePasses?: string[];
  /** Weight quantization of the matrices (int8: q8_0 blocks of 32). */
  quantize?: QuantizeOptions | QuantizeOptions["scheme"];
  progress?: Progress;
}

export interface CompileResult {
  program: Program;
  manifest: Manifest;
  files: string[];
}

function specialTokens(hf: Record<string, unknown>): Manifest["tokens"] {
  const ids = (v: unknown) => (typeof v === "number" ? [v] : Array.isArray(v) ? v.filter((x) => typeof x === "number") : []);
  const one = (v: unknown) => (typeof v === "number" ? v : undefined);
  return { eos: ids(hf.eos_token_id), bos: one(hf.bos_token_id), decoder_start: one(hf.decoder_start_token_id), pad: one(hf.pad_token_id) };
}

export function compileModel(modelPath: string, weightsPath: string, outDir: string, opts: CompileOptions = {}): CompileResult {
  const progress = opts.progress;
  const program = runPipeline(
    loadProgram(modelPath, weightsPath, { context: opts.context, onProgress: (d, t, what) => progress?.update("loading weights", d, t, what) }),
    { printAfter: opts.printAfter },
    withQuantization(selectPasses(opts.disablePasses ?? []), opts.quantize),
  );
  progress?.done();
  const art = generate(program, { onProgress: (d, t) => progress?.update("generating code", d, t) });
  progress?.done();
  const manifest: Manifest = { ...art.manifest, tokens: specialTokens(readHfConfig(weightsPath)) };
  const weightsDir = statSync(weightsPath).isDirectory() ? weightsPath : dirname(weightsPath);
  const tokenizerFiles = ["tokenizer.json", "tokenizer_config.json"].filter((f) => existsSync(join(weightsDir, f)));
  if (tokenizerFiles.includes("tokenizer.json")) manifest.tokenizer = "tokenizer.json";

  // write everything into a sibling temp folder, then swap it in: never a half-written artifact
  const out = resolve(outDir);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const files = ["model.wasm", "weights.bin", "manifest.json"];
    writeFileSync(join(tmp, "model.wasm"), art.wasm);
    for (const v of art.variants ?? [])
      if (v.file !== "model.wasm") {
        writeFileSync(join(tmp, v.file), v.wasm);
        files.push(v.file);
      }
    writeFileSync(join(tmp, "weights.bin"), art.weights);
    writeFileSync(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    if (opts.emitWat) {
      writeFileSync(join(tmp, "model.wat"), art.wat);
      files.push("model.wat");
    }
    for (const f of tokenizerFiles) {
      copyFileSync(join(weightsDir, f), join(tmp, f));
      files.push(f);
    }
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return { program, manifest, files };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
