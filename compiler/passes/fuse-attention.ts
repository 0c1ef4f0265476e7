// fuse-attention: attention written out as matrix products — softmax(scale · q·kᵀ) · v over
// activations q [S, d], k [P, d], v [P, dv] — becomes one `attention` op (one head, no mask), whose
// kernel streams k and v with an online softmax and never materialises the [S, P] scores. Runs
// first: canonicalize-matmul would otherwise read `q @ transpose(k)` as a product with a weight.
// Only a chain whose intermediate values nothing else reads is fused.

import { isOp } from "../../ir/ops.js";
import type { Program } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

export const rulesFuseAttention: Rule[] = [
  {
    name: "softmax-attention",
    apply: (n, c) => {
      // matmul(softmax(scale?(matmul(q, transpose(k)))), v)
      if (n.op !== "matmul") return null;
      const once = (id: number) => c.uses(id) === 1;
      const p = c.node(n.args[0]);
      if (p.op !== "softmax" || !once(p.id)) return null;
      let s = c.node(p.args[0]);
      let scale = 1;
      if (isOp(s, "scale") && once(s.id)) {
        scale = s.attrs.by;
        s = c.node(s.args[0]);
      }
      if (s.op !== "matmul" || !once(s.id)) return null;
      const kt = c.node(s.args[1]);
      if (kt.op !== "transpose" || !once(kt.id)) return null;
      const [q, k, v] = [c.node(s.args[0]), c.node(kt.args[0]), c.node(n.args[1])];
      // 2-D activations (a transposed parameter is a weight: canonicalize-matmul's case)
      if ([q, k, v].some((t) => t.type.shape.length !== 2 || t.op === "param")) return null;
      if (k.type.shape[0] !== v.type.shape[0]) return null;
      return c.b.add("attention", [q.id, k.id, v.id], { heads: 1, kv_heads: 1, scale, causal: false, cache: false }, n.loc);
    },
  },
];

export function fuseAttention(p: Program): Program {
  return rewriteProgram(p, rulesFuseAttention);
}
