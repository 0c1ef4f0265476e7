// lora-slots (compile --lora-slots RANK[:MODULES]): each targeted linear y = linear(x, W) gains a
// low-rank side path y + (x·Aᵀ)·Bᵀ, two more linears over parameters A [RANK, K] and B [N, RANK]
// that start at zero (the base model's outputs exactly) and that the runtime overwrites with an
// adapter's A and s·B (runtime/lora.ts). It runs before the fusion passes, which keep working:
// fuse-qkv stacks the A matrices of q/k/v (one pass over x), fuse-ffn folds residual adds.
// Artifacts compiled without the option never see this pass.

import { isOp, operandOf, roles } from "../../ir/ops.js";
import type { Program } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

export interface LoraSlotOptions {
  rank: number;
  /** Module names to target (last path component, e.g. q_proj, c_attn, or a dotted suffix); default every linear but the LM head. */
  modules?: readonly string[];
}

/** Names of the slot parameters: `lora:<module path>.A` / `.B`, so quantization and the layout find them. */
export const SLOT_PREFIX = "lora:";
export const slotName = (module: string, role: "A" | "B") => `${SLOT_PREFIX}${module}.${role}`;

/** The module path of a linear's weight parameter (`<module>.weight`, or its folded transpose), or undefined. */
export function moduleOfWeight(name: string): string | undefined {
  const m = /^(.+)\.weight(\^T)?$/.exec(name);
  return m && !name.startsWith(SLOT_PREFIX) ? m[1] : undefined;
}

/** Parameters every reader of which uses them as a linear's weight (not an embedding table or other operand). */
function linearOnly(p: Program): Set<string> {
  const ok = new Map<string, boolean>();
  for (const g of p.graphs)
    for (const n of g.nodes) {
      const r = roles(n);
      n.args.forEach((a, i) => {
        const src = g.nodes[a];
        if (isOp(src, "param")) ok.set(src.attrs.name, (ok.get(src.attrs.name) ?? true) && isOp(n, "linear") && r[i] === "weight");
      });
    }
  return new Set([...ok].filter(([, v]) => v).map(([k]) => k));
}

export function loraSlots(p: Program, opts: LoraSlotOptions): Program {
  const eligible = linearOnly(p);
  const wanted = (module: string) =>
    opts.modules ? opts.modules.some((m) => module === m || module.endsWith(`.${m}`)) : !/(^|\.)lm_head$/.test(module);
  const zeros = (c: Parameters<Rule["apply"]>[1], name: string, shape: [number, number]) => {
    if (!c.params.has(name)) c.params.set(name, { name, shape, data: new Float32Array(shape[0] * shape[1]) });
    return c.b.add("param", [], { name, shape, swappable: true }, undefined);
  };
  const rule: Rule = {
    name: "linear-side-path",
    apply: (n, c) => {
      if (!isOp(n, "linear") || n.attrs.residual) return null;
      const w = c.node(operandOf(n, "weight")!);
      if (!isOp(w, "param") || !eligible.has(w.attrs.name)) return null;
      const module = moduleOfWeight(w.attrs.name);
      if (module === undefined || !wanted(module)) return null;
      const [N, K] = w.type.shape as number[];
      const t = c.b.add("linear", [n.args[0], zeros(c, slotName(module, "A"), [opts.rank, K])], {}, n.loc);
      return c.b.add("linear", [t, zeros(c, slotName(module, "B"), [N, opts.rank]), n.id], { residual: true }, n.loc);
    },
  };
  return rewriteProgram(p, [rule]);
}
