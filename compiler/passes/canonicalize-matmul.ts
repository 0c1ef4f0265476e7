// canonicalize-matmul: `x @ w` with a parameter (or a transposed parameter) on the right
// becomes `linear(x, transpose(w))`, and a following bias add folds into the linear.
// Kernels then see one matrix op in one weight layout ([N, K], rows contiguous along K).

import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";
import type { Program } from "../../ir/types.js";

const isWeight = (op: string) => op === "param" || op === "transpose";

export const rulesCanonicalizeMatmul: Rule[] = [
  {
    name: "matmul-to-linear",
    apply: (n, c) => {
      if (n.op !== "matmul" || !isWeight(c.node(n.args[1]).op)) return null;
      const wt = c.b.add("transpose", [n.args[1]], {}, n.loc);
      return c.b.add("linear", [n.args[0], wt], {}, n.loc);
    },
  },
  {
    name: "bias-into-linear",
    apply: (n, c) => {
      if (n.op !== "add") return null;
      const [a, b] = n.args.map((i) => c.node(i));
      if (a.op !== "linear" || a.args.length !== 2 || b.op !== "param" || b.type.shape.length !== 1) return null;
      return c.b.add("linear", [...a.args, b.id], {}, n.loc);
    },
  },
];

export function canonicalizeMatmul(p: Program): Program {
  return rewriteProgram(p, rulesCanonicalizeMatmul);
}
