// The pass pipeline: one flat list of named passes. The manager, not the passes, verifies
// the IR after each pass (naming the pass that broke it), prints it, and times it.

import { IRError, printProgram, verifyProgram } from "../../ir/graph.js";
import type { Program } from "../../ir/types.js";
import { canonicalizeMatmul } from "./canonicalize-matmul.js";
import { foldTranspose } from "./fold-transpose.js";
import { fuseFfn } from "./fuse-ffn.js";
import { specializeLastRow } from "./specialize-last-row.js";

export interface Pass {
  readonly name: string;
  readonly run: (p: Program) => Program;
}

export const passes: readonly Pass[] = [
  { name: "canonicalize-matmul", run: canonicalizeMatmul },
  { name: "fold-transpose", run: foldTranspose },
  { name: "fuse-ffn", run: fuseFfn },
  { name: "specialize-last-row", run: specializeLastRow },
];

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
