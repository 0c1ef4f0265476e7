// specialize-last-row: generation needs the logits of the last position only. For each entry
// with a `logits` output and a KV cache, this adds an entry `<name>_last` that computes just
// that row: working back from the output, every row-wise op whose full result nothing else
// needs runs on one row (an op of trait rowwise), and a last_row op sits where the full rows end. An attention only the
// last row of which is needed takes the last query alone (over every key), so after the last
// attention's q/k/v projections everything runs on one row: o-proj, FFN, norms and the LM head.

import { GraphBuilder, compact } from "../../ir/graph.js";
import { hasTrait, isOp } from "../../ir/ops.js";
import type { Graph, Node, Program } from "../../ir/types.js";

const rowwise = (n: Node) => hasTrait(n, "rowwise");
const cachedAttention = (n: Node) => isOp(n, "attention") && !!n.attrs.cache;

export function lastRowGraph(g: Graph, output = "logits"): Graph | null {
  const out = g.outputs.find((o) => o.name === output);
  if (!out || !g.nodes.some(cachedAttention)) return null;
  const rowsOf = (id: number) => g.nodes[id].type.shape[0];
  const users = new Map<number, number[]>();
  for (const n of g.nodes) for (const a of n.args) users.set(a, [...(users.get(a) ?? []), n.id]);
  const otherOutputs = new Set(g.outputs.filter((o) => o !== out).map((o) => o.id));

  // local: only the last row of this node is needed
  const local = new Set<number>([out.id]);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const us = users.get(i) ?? [];
    if (i !== out.id && rowsOf(i) === "S" && us.length > 0 && !otherOutputs.has(i) && us.every((u) => local.has(u) && rowwise(g.nodes[u])))
      local.add(i);
  }
  // an attention whose output is needed for the last row only runs that row's query (over all keys)
  const lastQuery = (n: Node) => isOp(n, "attention") && local.has(n.id);

  const b = new GraphBuilder(`${g.name}_last`);
  const full = new Map<number, number>();
  const last = new Map<number, number>();
  const lastOf = (a: number): number => {
    if (rowsOf(a) !== "S") return full.get(a)!;
    let id = last.get(a);
    if (id === undefined) last.set(a, (id = b.add("last_row", [full.get(a)!], {}, g.nodes[a].loc)));
    return id;
  };
  for (const n of g.nodes) {
    if (local.has(n.id) && rowwise(n)) {
      last.set(n.id, b.add(n.op, n.args.map(lastOf), n.attrs, n.loc));
    } else if (lastQuery(n)) {
      const [q, ...kv] = n.args;
      last.set(n.id, b.add(n.op, [lastOf(q), ...kv.map((a) => full.get(a)!)], n.attrs, n.loc));
    } else {
      full.set(n.id, b.add(n.op, n.args.map((a) => full.get(a) ?? lastOf(a)), n.attrs, n.loc));
    }
  }
  b.output(output, lastOf(out.id));
  return compact(b.build());
}

export function specializeLastRow(p: Program): Program {
  const extra = p.graphs.filter((g) => !g.name.endsWith("_last") && !p.graphs.some((x) => x.name === `${g.name}_last`)).map((g) => lastRowGraph(g)).filter((g): g is Graph => g !== null);
  return { ...p, graphs: [...p.graphs, ...extra] };
}
