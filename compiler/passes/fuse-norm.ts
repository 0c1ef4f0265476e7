// fuse-norm: an RMSNorm feeding a matrix kernel is computed inside it. The norm's gain folds into
// the weights at compile time (w'[n, k] = w[n, k]·g[k]) and the kernel scales each row's sums by
// 1/sqrt(mean(x²) + eps), computed before the call: the normalised rows are never written.
// Fires for linear and gated_linear (LLaMA's q/k/v, gate/up and head; T5's projections) when the
// weights have no other reader (a tied embedding keeps its norm: folding would copy the table).
// Not in the --quantize pipeline: weights are quantized as the checkpoint has them (GGUF blocks
// stay exact), so the norm stays its own op there.

import type { Node, Program } from "../../ir/types.js";
import type { Rule, RewriteCtx } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

/** A parameter w[N, K] with the gain g[K] folded in, as a new parameter (made once per pair). */
function foldGain(c: RewriteCtx, w: Node, g: Node): number {
  const name = `${w.attrs.name}*${g.attrs.name}`;
  const [N, K] = w.type.shape as number[];
  if (!c.program.params.has(name)) {
    const wd = c.program.params.get(w.attrs.name as string)!.data, gd = c.program.params.get(g.attrs.name as string)!.data;
    const data = new Float32Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) data[n * K + k] = wd[n * K + k] * gd[k];
    c.program.params.set(name, { name, shape: [N, K], data });
  }
  return c.b.add("param", [], { name, shape: [N, K] }, w.loc);
}

export const rulesFuseNorm: Rule[] = [
  {
    name: "rmsnorm-into-matrix-kernel",
    apply: (n, c) => {
      if ((n.op !== "linear" && n.op !== "gated_linear") || n.attrs.rms_eps !== undefined || n.attrs.quant !== undefined) return null;
      const norm = c.node(n.args[0]);
      if (norm.op !== "rmsnorm") return null;
      const g = c.node(norm.args[1]);
      const weights = n.op === "linear" ? [n.args[1]] : [n.args[1], n.args[2]];
      // parameters read by this node alone (and not both weights of one gated kernel)
      if (g.op !== "param" || weights.some((w) => c.node(w).op !== "param" || c.uses(w) !== 1) || new Set(weights).size !== weights.length) return null;
      const folded = weights.map((w) => foldGain(c, c.node(w), g));
      return c.b.add(n.op, [norm.args[0], ...folded, ...n.args.slice(1 + weights.length)], { ...n.attrs, rms_eps: norm.attrs.eps }, n.loc);
    },
  },
];

export function fuseNorm(p: Program): Program {
  return rewriteProgram(p, rulesFuseNorm);
}
