// kv-cache (compile --kv-cache bf16): every cached attention keeps its keys and values as
// bfloat16 (attention attr kv_dtype): half the cache's memory and half the bytes a decode step
// reads from it, each value rounded once as it enters the cache (the interpreter rounds the
// same). The generated kernels read it (head sizes multiples of 8, no soft-cap, no relative
// bias); an attention they do not run is an error naming it, not a silent f32 cache.

import { isOp } from "../../ir/ops.js";
import type { Program } from "../../ir/types.js";
import { rowWidth } from "../../ir/types.js";
import { InputError } from "../diagnostics.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

export const KV_DTYPES = ["f32", "bf16"] as const;
export type KvDtype = (typeof KV_DTYPES)[number];

export function kvCache(p: Program, dtype: KvDtype): Program {
  if (dtype === "f32") return p;
  const rule: Rule = {
    name: "kv-bf16",
    apply: (n, c) => {
      if (!isOp(n, "attention") || !n.attrs.cache || n.attrs.kv_dtype === dtype) return null;
      const a = n.attrs;
      const dk = rowWidth(c.node(n.args[1]).type.shape) / a.kv_heads, dv = rowWidth(c.node(n.args[2]).type.shape) / a.kv_heads;
      const why = dk % 8 || dv % 8 ? `its head size ${dk % 8 ? dk : dv} is not a multiple of 8` : a.softcap !== undefined ? "it soft-caps its scores" : a.bias ? "it adds a relative-position bias" : undefined;
      if (why) throw new InputError(`--kv-cache ${dtype}: this attention cannot keep a ${dtype} cache: ${why} (the f32 cache runs it)`, n.loc, { code: "WF601" });
      return c.b.add("attention", n.args, { ...a, kv_dtype: dtype }, n.loc);
    },
  };
  return rewriteProgram(p, [rule]);
}
