// fold-transpose: transposes of parameters are done at compile time (a new parameter holding
// the transposed data), and transpose(transpose(x)) is x. Tied weights used both ways keep
// sharing storage where the layouts agree.

import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";
import type { Program } from "../../ir/types.js";

export const rulesFoldTranspose: Rule[] = [
  {
    name: "transpose-transpose",
    apply: (n, c) => {
      if (n.op !== "transpose") return null;
      const inner = c.node(n.args[0]);
      return inner.op === "transpose" ? inner.args[0] : null;
    },
  },
  {
    name: "transpose-param",
    apply: (n, c) => {
      if (n.op !== "transpose") return null;
      const src = c.node(n.args[0]);
      if (src.op !== "param") return null;
      // the transpose of a folded transpose is the original parameter
      const srcName = src.attrs.name as string;
      const name = srcName.endsWith("^T") ? srcName.slice(0, -2) : `${srcName}^T`;
      const [A, B] = src.type.shape as number[];
      if (!c.program.params.has(name)) {
        const x = c.program.params.get(src.attrs.name as string)!.data;
        const data = new Float32Array(x.length);
        for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) data[j * A + i] = x[i * B + j];
        c.program.params.set(name, { name, shape: [B, A], data });
      }
      return c.b.add("param", [], { name, shape: [B, A] }, n.loc);
    },
  },
];

export function foldTranspose(p: Program): Program {
  return rewriteProgram(p, rulesFoldTranspose);
}
