// The pass pipeline: one flat list of named passes. The manager, not the passes, verifies
// the IR after each pass (naming the pass that broke it), prints it, and times it.

import { IRError, printProgram, verifyProgram } from "../../ir/graph.js";
import type { Program } from "../../ir/types.js";
import { InputError } from "../diagnostics.js";
import { canonicalizeMatmul } from "./canonicalize-matmul.js";
import { foldTranspose } from "./fold-transpose.js";
import { foldNormOffset } from "./fold-norm-offset.js";
import { fuseAttention } from "./fuse-attention.js";
import { fuseFfn } from "./fuse-ffn.js";
import { fuseNorm } from "./fuse-norm.js";
import { fuseQkv } from "./fuse-qkv.js";
import { type KvDtype, kvCache } from "./kv-cache.js";
import { packSequences } from "./pack-sequences.js";
import { type QuantizeOptions, quantizeWeights } from "./quantize-weights.js";
import { specializeLastRow } from "./specialize-last-row.js";

export interface Pass {
  readonly name: string;
  readonly run: (p: Program) => Program;
}

export const passes: readonly Pass[] = [
  { name: "fold-norm-offset", run: foldNormOffset },
  { name: "fuse-attention", run: fuseAttention },
  { name: "canonicalize-matmul", run: canonicalizeMatmul },
  { name: "fold-transpose", run: foldTranspose },
  { name: "fuse-ffn", run: fuseFfn },
  { name: "fuse-qkv", run: fuseQkv },
  { name: "fuse-norm", run: fuseNorm },
  { name: "specialize-last-row", run: specializeLastRow },
  { name: "pack-sequences", run: packSequences },
];

/**
 * The pipeline for `compile --quantize`: quantize-weights runs after fuse-ffn (fuse-norm left out, see
 * below) and before fuse-qkv, so per-tensor overrides see the checkpoint's names and only q/k/v
 * projections of one scheme are stacked.
 */
export function withQuantization(pipeline: readonly Pass[], quantize: QuantizeOptions | QuantizeOptions["scheme"] | undefined): readonly Pass[] {
  if (!quantize) return pipeline;
  const opts = typeof quantize === "string" ? { scheme: quantize } : quantize;
  // fuse-norm would fold norm gains into the weights before they are quantized: the codes would
  // no longer be the checkpoint's (a GGUF Q8_0/Q4_0 file's exact blocks, llama.cpp's rounding)
  const kept = pipeline.filter((p) => p.name !== "fuse-norm");
  const at = kept.findIndex((p) => p.name === "fuse-qkv" || p.name === "specialize-last-row");
  const pass: Pass = { name: "quantize-weights", run: (p) => quantizeWeights(p, opts) };
  return at < 0 ? [...kept, pass] : [...kept.slice(0, at), pass, ...kept.slice(at)];
}

/** The pipeline for `compile --kv-cache bf16`: kv-cache last, once the attention nodes are final. */
export function withKvCache(pipeline: readonly Pass[], dtype: KvDtype | undefined): readonly Pass[] {
  return !dtype || dtype === "f32" ? pipeline : [...pipeline, { name: "kv-cache", run: (p) => kvCache(p, dtype) }];
}

/** The pipeline without the named passes; an unknown name is an error. Lowering needs fold-norm-offset, canonicalize-matmul and fold-transpose. */
export function selectPasses(disabled: readonly string[]): readonly Pass[] {
  const required = new Set(["fold-norm-offset", "canonicalize-matmul", "fold-transpose"]);
  for (const d of disabled) {
    if (!passes.some((p) => p.name === d)) throw new InputError(`no pass named '${d}' (passes: ${passes.map((p) => p.name).join(", ")})`);
    if (required.has(d)) throw new InputError(`pass '${d}' cannot be disabled: code generation needs its output`);
  }
  return passes.filter((p) => !disabled.includes(p.name));
}

export interface PipelineOptions {
  /** Called with the IR text before the first pass ("input") and after each pass. */
  printAfter?: (pass: string, ir: string) => void;
  timings?: Map<string, number>;
}

export function runPipeline(p: Program, opts: PipelineOptions = {}, pipeline: readonly Pass[] = passes): Program {
  opts.printAfter?.("input", printProgram(p));
  for (const pass of pipeline) {
    const t0 = performance.now();
    p = pass.run(p);
    opts.timings?.set(pass.name, performance.now() - t0);
    try {
      verifyProgram(p);
    } catch (e) {
      if (e instanceof IRError) throw new IRError(`after pass ${pass.name}: ${e.message}`, e.loc);
      throw e;
    }
    opts.printAfter?.(pass.name, printProgram(p));
  }
  return p;
}
