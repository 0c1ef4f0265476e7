// fuse-ffn: folds what follows a matrix product into the matrix kernel's epilogue, so the
// result is written once: an activation (linear → gelu/silu/relu) and a residual add
// (x + linear(...), as in every transformer block's down and output projections).
// Only a linear whose result nothing else reads is fused.

import { activations } from "../../ir/ops.js";
import type { Program } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

export const rulesFuseFfn: Rule[] = [
  {
    name: "activation-into-linear",
    apply: (n, c) => {
      if (!(n.op in activations)) return null;
      const l = c.node(n.args[0]);
      if (l.op !== "linear" || l.attrs.act !== undefined || l.attrs.residual || c.uses(l.id) !== 1) return null;
      return c.b.add("linear", l.args, { ...l.attrs, act: n.op }, n.loc);
    },
  },
  {
    name: "residual-into-linear",
    apply: (n, c) => {
      if (n.op !== "add") return null;
      const [a, b] = n.args.map((i) => c.node(i));
      const same = a.type.shape.length === b.type.shape.length && a.type.shape.every((d, i) => d === b.type.shape[i]);
      if (!same) return null;
      for (const [l, r] of [[b, a], [a, b]]) {
        if (l.op === "linear" && !l.attrs.residual && c.uses(l.id) === 1 && l.id !== r.id)
          return c.b.add("linear", [...l.args, r.id], { ...l.attrs, residual: true }, n.loc);
      }
      return null;
    },
  },
];

export function fuseFfn(p: Program): Program {
  return rewriteProgram(p, rulesFuseFfn);
}
