// pack-sequences: an encoder call of several sequences side by side. Each packable entry gets an
// input of kind "sequences" (each row's sequence [first, end)), which its attention and position
// ops take as an operand: a query sees only its own sequence's keys and positions count from the
// sequence's first row. The runtime then runs a batch of short sentences as one call, the matrix
// kernels at the rows of the whole batch instead of one sentence's (runtime Model.runSequences).
// A call whose rows are one sequence computes what the entry computed before.
//
// Packable: no KV cache, no state or image input, every output one row per input row, and every
// op row-wise (trait rowwise), computed from parameters alone, or one that takes the sequences:
// positions, sinusoidal_positions, and attention the generated kernel runs (no bias or soft-cap,
// head sizes multiples of 4).

import { GraphBuilder, compact } from "../../ir/graph.js";
import { hasTrait, isOp } from "../../ir/ops.js";
import type { Attrs, Graph, Node, Program } from "../../ir/types.js";
import { rowWidth } from "../../ir/types.js";
import { generatedAttentionFits } from "../codegen/attention.js";

const SEQUENCE_OPS = new Set(["positions", "sinusoidal_positions", "attention"]);

/** Why `g` cannot run packed sequences, or null when it can. */
export function unpackable(g: Graph): string | null {
  const rows = (id: number) => g.nodes[id].type.shape[0];
  // a node depends on the call's rows when it reads an input or a node that does
  const perCall = new Set<number>();
  for (const n of g.nodes) {
    if (isOp(n, "input")) {
      if (n.attrs.kind === "state" || n.attrs.kind === "image") return `its input ${n.attrs.name} is of kind ${n.attrs.kind}`;
      perCall.add(n.id);
      continue;
    }
    if (!n.args.some((a) => perCall.has(a))) continue;
    perCall.add(n.id);
    if (isOp(n, "attention")) {
      if (n.attrs.cache) return "it has a KV cache";
      const [q, k, v] = n.args.map((a) => g.nodes[a]);
      const H = n.attrs.heads, Hkv = n.attrs.kv_heads;
      if (rows(q.id) !== rows(k.id)) return `attention %${n.id} takes fewer queries than keys`;
      if (!generatedAttentionFits({ dk: rowWidth(k.type.shape) / Hkv, dv: rowWidth(v.type.shape) / Hkv, cap: n.attrs.softcap ?? 0, table: n.attrs.bias ? 1 : 0 }) || H % Hkv)
        return `attention %${n.id} is not one the generated kernel runs`;
    } else if (!SEQUENCE_OPS.has(n.op) && !hasTrait(n, "rowwise")) return `${n.op} %${n.id} mixes rows`;
  }
  for (const o of g.outputs) if (rows(o.id) !== "S") return `its output ${o.name} is not one row per input row`;
  if (!g.nodes.some((n) => isOp(n, "input") && n.attrs.kind === "tokens")) return "it has no tokens input";
  return null;
}

/** `g` with a sequences input passed to its attention and position ops. */
function packGraph(g: Graph): Graph {
  const b = new GraphBuilder(g.name);
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
  return { ...p, graphs: p.graphs.map((g) => (unpackable(g) === null && !takesSequences(g) ? packGraph(g) : g)) };
}

/**
 * `g` as it was before pack-sequences: no sequences input, its ops without the operand (every
 * call one sequence). The ONNX export writes entries so: they take a batch dimension instead.
 */
export function unpackGraph(g: Graph): Graph {
  if (!takesSequences(g)) return g;
  const b = new GraphBuilder(g.name);
  const map = new Map<number, number>();
  for (const n of g.nodes) {
    if (isOp(n, "input") && n.attrs.kind === "sequences") continue;
    const { sequences, ...attrs } = n.attrs as Attrs;
    if (sequences) {
      map.set(n.id, b.add(n.op, n.args.slice(0, -1).map((a) => map.get(a)!), attrs, n.loc));
    } else map.set(n.id, b.add(n.op, n.args.map((a) => map.get(a)!), n.attrs, n.loc));
  }
  for (const o of g.outputs) b.output(o.name, map.get(o.id)!);
  return compact(b.build());
}

/** Whether an entry takes packed sequences (pack-sequences gave it the input). */
export const takesSequences = (g: Graph) => g.nodes.some((n: Node) => isOp(n, "input") && n.attrs.kind === "sequences");
