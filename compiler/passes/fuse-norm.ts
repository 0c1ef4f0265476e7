// fuse-norm: a norm feeding a matrix kernel is computed inside it; the normalised rows are never
// written. The norm's gain folds into the weights at compile time (w'[n, k] = w[n, k]·g[k]).
//  - RMSNorm: the kernel scales each row's sums by 1/sqrt(mean(x²) + eps), computed before the
//    call. Fires for linear and gated_linear (LLaMA's q/k/v, gate/up and head; T5's projections).
//  - LayerNorm: LN(x)·wᵀ + b = (x·w'ᵀ − mean·Σₖw')·(1/sqrt(var + eps)) + (w·β + b): the kernel
//    reads raw x, and each row's mean and factor are computed before the call. The shift β folds
//    into the bias, which carries the weights' row sums as a second row. Fires for linear
//    (GPT-2's c_attn and c_fc, BERT's projections).
// Only when the weights have no other reader (a tied embedding keeps its norm: folding would copy
// the table).
// Not in the --quantize pipeline: weights are quantized as the checkpoint has them (GGUF blocks
// stay exact), so the norm stays its own op there.

import { type OpNode, isOp, operandOf, operandsOf } from "../../ir/ops.js";
import type { Node, Program } from "../../ir/types.js";
import { lazyParam } from "../../ir/params.js";
import type { Rule, RewriteCtx } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

type ParamNode = OpNode<"param">;

/** A parameter w[N, K] with the gain g[K] folded in, as a new parameter (made once per pair). */
function foldGain(c: RewriteCtx, w: ParamNode, g: ParamNode): ParamNode {
  const name = `${w.attrs.name}*${g.attrs.name}`;
  const [N, K] = w.type.shape as number[];
  if (!c.params.has(name)) {
    const [wp, gp] = [c.params.get(w.attrs.name)!, c.params.get(g.attrs.name)!];
    c.params.set(name, lazyParam(name, [N, K], () => {
      const wd = wp.data, gd = gp.data;
      const data = new Float32Array(N * K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) data[n * K + k] = wd[n * K + k] * gd[k];
      return data;
    }));
  }
  return c.node(c.b.add("param", [], { name, shape: [N, K] }, w.loc)) as ParamNode;
}

/** The bias of a linear on LayerNorm(x, g, β) with folded weights wf = w·g: [w·β + b; Σₖ wf[n, k]] (sums in f64). */
function lnBias(c: RewriteCtx, w: ParamNode, wf: ParamNode, beta: ParamNode, b: ParamNode | undefined): number {
  const name = `${wf.attrs.name}:bias(${b ? `${b.attrs.name}+` : ""}${beta.attrs.name}·w, Σw)`;
  const [N, K] = w.type.shape as number[];
  if (!c.params.has(name)) {
    const get = (n: string) => c.params.get(n)!;
    const [wp, wfp, bp, biasp] = [get(w.attrs.name), get(wf.attrs.name), get(beta.attrs.name), b && get(b.attrs.name)];
    c.params.set(name, lazyParam(name, [2, N], () => {
      const wd = wp.data, wfd = wfp.data, bd = bp.data, bias = biasp?.data;
      const data = new Float32Array(2 * N);
      for (let n = 0; n < N; n++) {
        let shift = bias ? bias[n] : 0, sum = 0;
        for (let k = 0; k < K; k++) {
          shift += wd[n * K + k] * bd[k];
          sum += wfd[n * K + k];
        }
        data[n] = shift;
        data[N + n] = sum;
      }
      return data;
    }));
  }
  return c.b.add("param", [], { name, shape: [2, N] }, w.loc);
}

/** A matrix kernel that already has a norm folded in, or computes on quantized weights. */
const folded = (a: { rms_eps?: number; ln_eps?: number; quant?: string }) => a.rms_eps !== undefined || a.ln_eps !== undefined || a.quant !== undefined;
const asParam = (n: Node): ParamNode | undefined => (isOp(n, "param") ? n : undefined);

export const rulesFuseNorm: Rule[] = [
  {
    name: "rmsnorm-into-matrix-kernel",
    apply: (n, c) => {
      if (!(isOp(n, "linear") || isOp(n, "gated_linear")) || folded(n.attrs)) return null;
      const norm = c.node(n.args[0]);
      if (!isOp(norm, "rmsnorm") || norm.attrs.group !== undefined || norm.attrs.offset !== undefined) return null;
      const g = asParam(c.node(norm.args[1]));
      const weights = operandsOf(n, "weight");
      // parameters read by this node alone (and not both weights of one gated kernel)
      if (!g || weights.some((w) => !isOp(c.node(w), "param") || c.uses(w) !== 1) || new Set(weights).size !== weights.length) return null;
      const gained = weights.map((w) => foldGain(c, c.node(w) as ParamNode, g).id);
      return c.b.add(n.op, [norm.args[0], ...gained, ...n.args.slice(1 + weights.length)], { ...n.attrs, rms_eps: norm.attrs.eps }, n.loc);
    },
  },
  {
    name: "layernorm-into-linear",
    apply: (n, c) => {
      if (!isOp(n, "linear") || folded(n.attrs)) return null;
      const norm = c.node(n.args[0]);
      if (!isOp(norm, "layernorm")) return null;
      const [g, beta] = [asParam(c.node(norm.args[1])), asParam(c.node(norm.args[2]))];
      const w = operandOf(n, "weight")!, residual = operandOf(n, "residual"), bias = operandOf(n, "bias");
      const b = bias === undefined ? undefined : c.node(bias);
      const wn = asParam(c.node(w));
      if (!g || !beta || !wn || c.uses(w) !== 1 || (b && !isOp(b, "param"))) return null;
      const wf = foldGain(c, wn, g);
      const lb = lnBias(c, wn, wf, beta, b && asParam(b));
      return c.b.add("linear", [norm.args[0], wf.id, lb, ...(residual === undefined ? [] : [residual])], { ...n.attrs, ln_eps: norm.attrs.eps }, n.loc);
    },
  },
];

export function fuseNorm(p: Program): Program {
  return rewriteProgram(p, rulesFuseNorm);
}
