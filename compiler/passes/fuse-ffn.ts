// fuse-ffn: folds what follows a matrix product into the matrix kernel's epilogue, so the
// result is written once: an activation (linear → gelu/silu/relu), a residual add
// (x + linear(...), as in every transformer block's down and output projections), and a gated
// FFN's act(x·Wg) ⊙ (x·Wu) as one gated_linear reading both weights in one pass over x (also
// when Wg and Wu are the halves of one stored matrix).
// Only a linear whose result nothing else reads is fused.

import { type OpNode, hasTrait, isOp } from "../../ir/ops.js";
import { lazyParam } from "../../ir/params.js";
import type { Node, Program } from "../../ir/types.js";
import type { RewriteCtx, Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

/** Rows start..start+size of a parameter w[N, K], as a new parameter. */
function rowsOf(c: RewriteCtx, w: OpNode<"param">, start: number, size: number): number {
  const name = `${w.attrs.name}[${start}:${start + size}]`;
  const K = w.type.shape[1] as number;
  if (!c.params.has(name)) {
    const src = c.params.get(w.attrs.name)!;
    c.params.set(name, lazyParam(name, [size, K], () => src.data.slice(start * K, (start + size) * K)));
  }
  return c.b.add("param", [], { name, shape: [size, K] }, w.loc);
}

export const rulesFuseFfn: Rule[] = [
  {
    name: "activation-into-linear",
    apply: (n, c) => {
      if (!hasTrait(n, "fusible")) return null;
      const l = c.node(n.args[0]);
      if (!isOp(l, "linear") || l.attrs.act !== undefined || l.attrs.residual || c.uses(l.id) !== 1) return null;
      return c.b.add("linear", l.args, { ...l.attrs, act: n.op }, n.loc);
    },
  },
  {
    // mul(linear(x, wg, act), linear(x, wu)), either order, no biases: SwiGLU / GeGLU
    name: "gated-linear",
    apply: (n, c) => {
      if (n.op !== "mul") return null;
      const [a, b] = n.args.map((i) => c.node(i));
      // a linear of x and w alone (no bias, no residual), f32, read once
      const plain = (l: Node): l is OpNode<"linear"> => isOp(l, "linear") && l.args.length === 2 && l.attrs.quant === undefined && c.uses(l.id) === 1;
      for (const [gate, up] of [[a, b], [b, a]]) {
        if (!plain(gate) || !plain(up) || gate.attrs.act === undefined || up.attrs.act !== undefined || gate.id === up.id) continue;
        const [wg, wu] = [c.node(gate.args[1]), c.node(up.args[1])];
        // the same x, weights of one shape, and K a multiple of 4 (the kernels' vector epilogue)
        if (gate.args[0] !== up.args[0] || wg.type.shape.join() !== wu.type.shape.join() || (wg.type.shape[1] as number) % 4) continue;
        return c.b.add("gated_linear", [gate.args[0], gate.args[1], up.args[1]], { act: gate.attrs.act }, n.loc);
      }
      return null;
    },
  },
  {
    // mul(act(slice(l)), slice(l)) of one linear l = linear(x, w[2n, K]) whose halves are the gate
    // and up projections (Phi-3's gate_up_proj): l becomes two linears on the halves of w, which
    // gated-linear then fuses
    name: "split-gate-up",
    apply: (n, c) => {
      if (n.op !== "mul") return null;
      const [a, b] = n.args.map((i) => c.node(i));
      for (const [act, up] of [[a, b], [b, a]]) {
        if (!hasTrait(act, "fusible") || c.uses(act.id) !== 1 || !isOp(up, "slice") || c.uses(up.id) !== 1) continue;
        const gate = c.node(act.args[0]);
        if (!isOp(gate, "slice") || c.uses(gate.id) !== 1 || gate.args[0] !== up.args[0]) continue;
        const l = c.node(gate.args[0]), w = c.node(l.args[1]);
        if (!isOp(l, "linear") || l.args.length !== 2 || l.attrs.act !== undefined || l.attrs.quant !== undefined || c.uses(l.id) !== 2) continue;
        if (!isOp(w, "param") || c.uses(w.id) !== 1) continue;
        const [wg, wu] = [gate, up].map((s) => rowsOf(c, w, s.attrs.start, s.attrs.size));
        // as gated-linear fuses separate gate and up linears (K a multiple of 4), else the two linears
        if (gate.attrs.size === up.attrs.size && (w.type.shape[1] as number) % 4 === 0) return c.b.add("gated_linear", [l.args[0], wg, wu], { act: act.op }, n.loc);
        return c.b.add("mul", [c.b.add("linear", [l.args[0], wg], { act: act.op }, gate.loc), c.b.add("linear", [l.args[0], wu], {}, up.loc)], {}, n.loc);
      }
      return null;
    },
  },
  {
    name: "residual-into-linear",
    apply: (n, c) => {
      if (n.op !== "add") return null;
      const [a, b] = n.args.map((i) => c.node(i));
      const same = a.type.shape.length === b.type.shape.length && a.type.shape.every((d, i) => d === b.type.shape[i]);
      if (!same) return null;
      // the residual is linear's last operand
      for (const [l, r] of [[b, a], [a, b]]) {
        if (isOp(l, "linear") && !l.attrs.residual && c.uses(l.id) === 1 && l.id !== r.id)
          return c.b.add("linear", [...l.args, r.id], { ...l.attrs, residual: true }, n.loc);
      }
      return null;
    },
  },
];

export function fuseFfn(p: Program): Program {
  return rewriteProgram(p, rulesFuseFfn);
}
