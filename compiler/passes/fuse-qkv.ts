// fuse-qkv: linears that read the same input become one linear over their weights stacked by
// rows, and each former result is a slice of its output: LLaMA's, BERT's and T5's separate
// q/k/v projections become what GPT-2's c_attn already is. The input is read (and normalised, once
// fuse-norm has folded the norm in) once instead of three times, a GEMM gets a wider N, and a
// threaded decode waits at one barrier instead of three.
// Fires for linears with the same attributes (no residual: each would add its own) whose
// weights and biases are parameters nothing else reads (a tied embedding stays whole), all f32 or
// all quantized in one scheme (rows stack; a block never spans rows, so codes stay exact).

import { GraphBuilder, compact } from "../../ir/graph.js";
import { type OpNode, attrsOf, isOp, operandOf } from "../../ir/ops.js";
import type { Graph, Param, Program } from "../../ir/types.js";
import { lazyParam } from "../../ir/params.js";

/** The stacked rows of parameters [Nᵢ, K] (or biases [Nᵢ]), as a new parameter in `params` (made once per list). */
function stack(params: Map<string, Param>, names: string[]): Param {
  const name = `cat(${names.join(", ")})`;
  const known = params.get(name);
  if (known) return known;
  const parts = names.map((n) => params.get(n)!);
  const cat = <T extends Float32Array | Int8Array>(arrays: T[], make: (n: number) => T): T => {
    const out = make(arrays.reduce((s, a) => s + a.length, 0));
    let at = 0;
    for (const a of arrays) out.set(a, (at += a.length) - a.length);
    return out;
  };
  const rows = parts.reduce((s, w) => s + w.shape[0], 0);
  const quantized = parts[0].quant !== undefined;
  const stackQuant = () => {
    const qs = parts.map((w) => w.quant!);
    return {
      scheme: qs[0].scheme,
      codes: cat(qs.map((q) => q.codes), (n) => new Int8Array(n)),
      scales: cat(qs.map((q) => q.scales), (n) => new Float32Array(n)),
      ...(qs[0].mins && { mins: cat(qs.map((q) => q.mins!), (n) => new Float32Array(n)) }),
    };
  };
  const param = lazyParam(name, [rows, ...parts[0].shape.slice(1)], () => cat(parts.map((w) => w.data), (n) => new Float32Array(n)), quantized ? stackQuant : undefined);
  params.set(name, param);
  return param;
}

/** g with sibling linears stacked; the stacked parameters are added to `params`. */
export function fuseSiblingLinears(g: Graph, params: Map<string, Param>): Graph {
  const uses = new Map<number, number>();
  for (const n of g.nodes) for (const a of n.args) uses.set(a, (uses.get(a) ?? 0) + 1);
  for (const o of g.outputs) uses.set(o.id, (uses.get(o.id) ?? 0) + 1);
  const ownParam = (id: number) => g.nodes[id].op === "param" && uses.get(id) === 1;
  const param = (id: number) => attrsOf(g.nodes[id], "param");
  const scheme = (id: number) => params.get(param(id).name)?.quant?.scheme ?? "f32";

  // candidates grouped by input, attributes, bias or not, and weight storage
  const groups = new Map<string, OpNode<"linear">[]>();
  for (const n of g.nodes) {
    if (!isOp(n, "linear") || n.attrs.residual || n.attrs.ln_eps !== undefined) continue;
    const x = n.args[0], w = operandOf(n, "weight")!, b = operandOf(n, "bias");
    if (!ownParam(w) || (b !== undefined && !ownParam(b))) continue;
    // (a swappable matrix stacks only with swappable ones: its runtime pointer moves the whole stack)
    const key = `${x}|${n.args.length}|${scheme(w)}|${JSON.stringify(param(w).quant ?? null)}|${param(w).swappable === true}|${JSON.stringify(n.attrs)}`;
    groups.set(key, [...(groups.get(key) ?? []), n]);
  }
  const first = new Map<number, OpNode<"linear">[]>();
  for (const members of groups.values()) if (members.length > 1) first.set(members[0].id, members);
  if (first.size === 0) return g;

  const b = new GraphBuilder(g.name);
  const map = new Map<number, number>();
  const skip = new Set<number>();
  for (const n of g.nodes) {
    if (skip.has(n.id)) continue;
    const members = first.get(n.id);
    if (!members) {
      map.set(n.id, b.add(n.op, n.args.map((a) => map.get(a)!), n.attrs, n.loc));
      continue;
    }
    const stacked = (arg: number) => {
      const s = stack(params, members.map((m) => param(m.args[arg]).name));
      return b.add("param", [], { ...g.nodes[members[0].args[arg]].attrs, name: s.name, shape: s.shape }, g.nodes[members[0].args[arg]].loc);
    };
    const args = [map.get(n.args[0])!, stacked(1), ...(n.args.length > 2 ? [stacked(2)] : [])];
    const merged = b.add("linear", args, n.attrs, n.loc);
    let start = 0;
    for (const m of members) {
      const size = m.type.shape[1] as number;
      map.set(m.id, b.add("slice", [merged], { start, size }, m.loc));
      start += size;
      skip.add(m.id);
    }
  }
  for (const o of g.outputs) b.output(o.name, map.get(o.id)!);
  return compact(b.build());
}

export function fuseQkv(p: Program): Program {
  const params = new Map(p.params);
  return { ...p, graphs: p.graphs.map((g) => fuseSiblingLinears(g, params)), params };
}
