// quantize-weights (compile --quantize int8): matrices read only by linear become q8_0 —
// symmetric blocks of 32 along the input dimension, one scale per block (d = max|w| / 127,
// q = round(w / d), as GGUF's Q8_0; the scale is kept in f32 here). The parameter's data
// becomes the dequantized values, so the interpreter computes exactly what the kernels do.
// Matrices whose input width is not a multiple of 32, or that other ops also read (a tied
// embedding), stay f32.

import { Q8_BLOCK, quantizeQ8 } from "../../ir/quant.js";
import type { Program } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

/** Parameters every user of which reads them as a linear weight, in every entry. */
function linearOnly(p: Program): Set<string> {
  const ok = new Map<string, boolean>();
  for (const g of p.graphs)
    for (const n of g.nodes)
      n.args.forEach((a, i) => {
        const src = g.nodes[a];
        if (src.op !== "param") return;
        const name = src.attrs.name as string;
        ok.set(name, (ok.get(name) ?? true) && n.op === "linear" && i === 1);
      });
  return new Set([...ok].filter(([, v]) => v).map(([k]) => k));
}

/** `scheme` names the storage; int8 (q8_0) is the one implemented. */
export function quantizeWeights(p: Program, scheme: "int8"): Program {
  if (scheme !== "int8") throw new Error(`unknown quantization scheme '${String(scheme)}'`);
  const eligible = linearOnly(p);
  const rules: Rule[] = [
    {
      name: "quantize-linear-weight",
      apply: (n, c) => {
        if (n.op !== "param" || n.attrs.quant !== undefined || !eligible.has(n.attrs.name as string)) return null;
        const [N, K] = n.type.shape as number[];
        if (K % Q8_BLOCK) return null;
        const name = `${n.attrs.name}@q8_0`;
        if (!c.program.params.has(name)) {
          const q = quantizeQ8(c.program.params.get(n.attrs.name as string)!.data, N, K);
          c.program.params.set(name, { name, shape: [N, K], data: q.dequant, quant: { scheme: q.scheme, codes: q.codes, scales: q.scales } });
        }
        return c.b.add("param", [], { name, shape: [N, K], quant: "q8_0" }, n.loc);
      },
    },
    {
      // a linear over q8_0 weights quantizes its input rows the same way: integer dot products
      name: "quantize-linear-input",
      apply: (n, c) => {
        if (n.op !== "linear" || n.attrs.quant !== undefined || c.node(n.args[1]).attrs.quant !== "q8_0") return null;
        return c.b.add("linear", n.args, { ...n.attrs, quant: "q8_0" }, n.loc);
      },
    },
  ];
  return rewriteProgram(p, rules);
}
