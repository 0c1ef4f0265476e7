// pack-sequences: an encoder call of several sequences side by side. For each packable entry the
// pass adds `<entry>_packed`, the same computation with an input of kind "sequences" (each row's
// sequence [first, end)) that its attention, position and first-row ops take as an operand: a
// query sees only its own sequence's keys, positions count from the sequence's first row, and a
// task head's first row (a classifier's pooled token) is each row's sequence's first row. The
// runtime then runs a batch of short sentences as one call, the matrix kernels at the rows of the
// whole batch instead of one sentence's (Model.runSequences); the entry itself is unchanged.
//
// Packable: no KV cache, no state or image input, and every op row-wise (trait rowwise),
// computed from parameters alone, or one that takes the sequences: positions,
// sinusoidal_positions, first_row, and attention the generated kernel runs (no bias or soft-cap,
// head sizes multiples of 4); every output one row per input row, or a first row's.

import { GraphBuilder, compact } from "../../ir/graph.js";
import { hasTrait, isOp } from "../../ir/ops.js";
import type { Graph, Program } from "../../ir/types.js";
import { rowWidth } from "../../ir/types.js";
import { generatedAttentionFits } from "../codegen/attention.js";

const SEQUENCE_OPS = new Set(["positions", "sinusoidal_positions", "attention", "first_row"]);

/** The packed form of entry `name` (Model.runSequences looks for it by this name). */
const packedName = (name: string) => `${name}_packed`;

/** Why `g` cannot run packed sequences, or null when it can. */
export function unpackable(g: Graph): string | null {
  const rows = (id: number) => g.nodes[id].type.shape[0];
  // a node depends on the call's rows when it reads an input or a node that does; after a
  // first_row, on the sequence's first row
  const perCall = new Set<number>(), firstRowOf = new Set<number>();
  for (const n of g.nodes) {
    if (isOp(n, "input")) {
      if (n.attrs.kind === "state" || n.attrs.kind === "image" || n.attrs.kind === "sequences") return `its input ${n.attrs.name} is of kind ${n.attrs.kind}`;
      perCall.add(n.id);
      continue;
    }
    if (!n.args.some((a) => perCall.has(a))) continue;
    perCall.add(n.id);
    if (n.args.some((a) => firstRowOf.has(a))) {
      if (!hasTrait(n, "rowwise") || n.args.some((a) => perCall.has(a) && !firstRowOf.has(a))) return `${n.op} %${n.id} mixes a first row with other rows`;
      firstRowOf.add(n.id);
    } else if (isOp(n, "first_row")) firstRowOf.add(n.id);
    else if (isOp(n, "attention")) {
      if (n.attrs.cache) return "it has a KV cache";
      const [q, k, v] = n.args.map((a) => g.nodes[a]);
      if (rows(q.id) !== rows(k.id)) return `attention %${n.id} takes fewer queries than keys`;
      if (!generatedAttentionFits({ dk: rowWidth(k.type.shape) / n.attrs.kv_heads, dv: rowWidth(v.type.shape) / n.attrs.kv_heads, cap: n.attrs.softcap ?? 0, table: n.attrs.bias ? 1 : 0 }))
        return `attention %${n.id} is not one the generated kernel runs`;
    } else if (!SEQUENCE_OPS.has(n.op) && !hasTrait(n, "rowwise")) return `${n.op} %${n.id} mixes rows`;
  }
  for (const o of g.outputs) if (rows(o.id) !== "S" && !firstRowOf.has(o.id)) return `its output ${o.name} is neither one row per input row nor a first row's`;
  if (!g.nodes.some((n) => isOp(n, "input") && n.attrs.kind === "tokens")) return "it has no tokens input";
  return null;
}

/** `g` as `<name>_packed`: a sequences input passed to its attention, position and first-row ops. */
function packGraph(g: Graph): Graph {
  const b = new GraphBuilder(packedName(g.name));
  const seq = b.add("input", [], { name: "sequences", kind: "sequences", dtype: "i32", shape: ["S", 2] });
  const map = new Map<number, number>();
  for (const n of g.nodes) {
    const args = n.args.map((a) => map.get(a)!);
    map.set(n.id, SEQUENCE_OPS.has(n.op) ? b.add(n.op, [...args, seq], { ...n.attrs, sequences: true }, n.loc) : b.add(n.op, args, n.attrs, n.loc));
  }
  for (const o of g.outputs) b.output(o.name, map.get(o.id)!);
  return compact(b.build());
}

export function packSequences(p: Program): Program {
  const names = new Set(p.graphs.map((g) => g.name));
  const extra = p.graphs.filter((g) => !names.has(packedName(g.name)) && unpackable(g) === null).map(packGraph);
  return { ...p, graphs: [...p.graphs, ...extra] };
}
