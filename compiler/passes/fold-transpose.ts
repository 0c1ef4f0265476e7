// fold-transpose: transposes of parameters are done at compile time (a new parameter holding
// the transposed data), and transpose(transpose(x)) is x. Tied weights used both ways keep
// sharing storage where the layouts agree. A reshaped parameter is a parameter of the new shape
// over the same values (a Conv2d weight [out, C, k, k] read by a linear as [out, C·k·k]).

import { isOp } from "../../ir/ops.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";
import { lazyParam } from "../../ir/params.js";
import type { Program } from "../../ir/types.js";

/** x[A, B] → [B, A], in 32 × 32 tiles so that reads and writes both stay in cache. */
function transpose(x: Float32Array, A: number, B: number): Float32Array {
  const out = new Float32Array(x.length), T = 32;
  for (let i0 = 0; i0 < A; i0 += T)
    for (let j0 = 0; j0 < B; j0 += T) {
      const i1 = Math.min(i0 + T, A), j1 = Math.min(j0 + T, B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * A + i] = x[i * B + j];
    }
  return out;
}

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
      if (!isOp(src, "param")) return null;
      // the transpose of a folded transpose is the original parameter
      const srcName = src.attrs.name;
      const name = srcName.endsWith("^T") ? srcName.slice(0, -2) : `${srcName}^T`;
      const [A, B] = src.type.shape as number[];
      if (!c.params.has(name)) {
        const src = c.params.get(srcName)!;
        c.params.set(name, lazyParam(name, [B, A], () => transpose(src.data, A, B)));
      }
      return c.b.add("param", [], { name, shape: [B, A] }, n.loc);
    },
  },
  {
    name: "reshape-param",
    apply: (n, c) => {
      if (n.op !== "reshape") return null;
      const src = c.node(n.args[0]);
      if (!isOp(src, "param")) return null;
      const shape = n.type.shape as number[];
      if (shape.join() === src.attrs.shape.join()) return src.id;
      const name = `${src.attrs.name}^[${shape.join(",")}]`;
      if (!c.params.has(name)) {
        const from = c.params.get(src.attrs.name)!;
        c.params.set(name, lazyParam(name, shape, () => from.data));
      }
      return c.b.add("param", [], { name, shape }, n.loc);
    },
  },
];

export function foldTranspose(p: Program): Program {
  return rewriteProgram(p, rulesFoldTranspose);
}
