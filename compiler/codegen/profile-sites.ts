// What each kernel call site of the profiling module does, for `wasmformer profile`: the op, a
// label with its shape, and the work of one call as a function of its rows and keys (multiply-adds
// count two flops; bytes are the weights it reads once a call plus what it reads and writes per
// row). Estimates of the data a kernel must touch, not of what the hardware moves.

import { isOp, operandsOf } from "../../ir/ops.js";
import { type Graph, type Node, rowWidth } from "../../ir/types.js";
import { packedQuantBytes } from "./linear/index.js";
import type { ProfileSite } from "@wasmformer/runtime/manifest";

export type { ProfileSite };


const weightBytes = (w: Node) => {
  const [N, K] = w.type.shape as number[];
  const q = isOp(w, "param") ? w.attrs.quant : undefined;
  return q ? packedQuantBytes(q, N, K) : N * K * 4;
};

/** The site of node `n` of entry graph `g`. */
export function profileSite(g: Graph, n: Node): ProfileSite {
  // a node after last_row (the head of forward_last) has one row whatever the call's
  const fixed = typeof n.type.shape[0] === "number" ? { rows: n.type.shape[0] } : {};
  const base = { entry: g.name, node: n.id, op: n.op, flops_row: 0, flops_row_key: 0, bytes_call: 0, bytes_key: 0, ...fixed };
  const width = (id: number) => rowWidth(g.nodes[id].type.shape);
  const out = rowWidth(n.type.shape);
  const ins = n.args.reduce((s, a) => s + (g.nodes[a].op === "param" ? 0 : width(a)), 0);
  if (isOp(n, "linear") || isOp(n, "gated_linear")) {
    const ws = operandsOf(n, "weight").map((w) => g.nodes[w]);
    const [N, K] = ws[0].type.shape as number[];
    const q = isOp(ws[0], "param") ? ws[0].attrs.quant : undefined;
    const intRows = n.attrs.int_rows;
    return {
      ...base, kind: "weights", label: `${n.op} ${K}→${N}${ws.length > 1 ? " ×2" : ""} ${q ?? "f32"}`,
      ...(q ? { quant: q, ...(typeof intRows === "number" ? { int_rows: intRows } : {}) } : {}),
      flops_row: 2 * N * K * ws.length, bytes_call: ws.reduce((s, w) => s + weightBytes(w), 0), bytes_row: 4 * (K + out),
    };
  }
  if (isOp(n, "attention")) {
    const [q, k, v] = n.args.map((a) => g.nodes[a]);
    const dk = rowWidth(q.type.shape) / n.attrs.heads, dv = out / n.attrs.heads;
    return {
      ...base, kind: "attention", label: `attention ${n.attrs.heads}×${dk}${n.attrs.kv_heads !== n.attrs.heads ? ` kv ${n.attrs.kv_heads}` : ""}${n.attrs.window ? ` window ${n.attrs.window}` : ""}`,
      flops_row_key: 2 * n.attrs.heads * (dk + dv), bytes_row: 4 * (rowWidth(q.type.shape) + out), bytes_key: 4 * (rowWidth(k.type.shape) + rowWidth(v.type.shape)),
    };
  }
  // elementwise ops, norms, lookups and copies: one pass over their operands and result
  return { ...base, kind: "other", label: `${n.op} ${out}`, flops_row: out, bytes_row: 4 * (ins + out) };
}
