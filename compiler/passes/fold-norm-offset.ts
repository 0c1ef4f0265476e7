// fold-norm-offset: an RMSNorm whose gain is offset + g (Gemma's 1 + w) gets the gain computed
// once at compile time, in f32 as the reference computes it, as a new parameter; the kernels
// then see a plain RMSNorm.

import { isOp } from "../../ir/ops.js";
import { lazyParam } from "../../ir/params.js";
import type { Program } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

export const rulesFoldNormOffset: Rule[] = [
  {
    name: "norm-offset-into-gain",
    apply: (n, c) => {
      if (!isOp(n, "rmsnorm") || n.attrs.offset === undefined) return null;
      const g = c.node(n.args[1]);
      if (!isOp(g, "param")) return null;
      const offset = n.attrs.offset, name = `${offset}+${g.attrs.name}`;
      if (!c.params.has(name)) {
        const src = c.params.get(g.attrs.name)!;
        c.params.set(name, lazyParam(name, [...g.attrs.shape] as number[], () => src.data.map((v) => Math.fround(offset + v))));
      }
      const gain = c.b.add("param", [], { name, shape: g.attrs.shape }, g.loc);
      const { offset: _, ...attrs } = n.attrs;
      return c.b.add("rmsnorm", [n.args[0], gain], attrs, n.loc);
    },
  },
];

export function foldNormOffset(p: Program): Program {
  return rewriteProgram(p, rulesFoldNormOffset);
}
