// fuse-ffn: folds what follows a matrix product into the matrix kernel's epilogue, so the
// result is written once: an activation (linear → gelu/silu/relu), a residual add
// (x + linear(...), as in every transformer block's down and output projections), and a gated
// FFN's act(x·Wg) ⊙ (x·Wu) as one gated_linear reading both weights in one pass over x.
// Only a linear whose result nothing else reads is fused.

import { type OpNode, hasTrait, isOp } from "../../ir/ops.js";
import type { Node, Program } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

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
