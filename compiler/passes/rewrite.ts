// The rewrite driver: a pass is a list of small rules `(node, ctx) => replacement | null`,
// applied to every node until none fires (a fixed point), then dead nodes are dropped. Rules
// add parameters to the output program's own map: the input program is left as it was.

import { GraphBuilder, compact } from "../../ir/graph.js";
import type { Graph, Node, Param, Program } from "../../ir/types.js";

export interface RewriteCtx {
  readonly b: GraphBuilder;
  /** The parameters of the program being built: the input's, and those rules add. */
  readonly params: Map<string, Param>;
  node(id: number): Node;
  /** How many nodes (and outputs) of the input graph use the value now at `id`. */
  uses(id: number): number;
}

export interface Rule {
  readonly name: string;
  /** Returns the id of a node to use instead of `n`, or null when the rule does not apply. */
  readonly apply: (n: Node, c: RewriteCtx) => number | null;
}

export function rewriteGraph(g: Graph, params: Map<string, Param>, rules: readonly Rule[]): Graph {
  const b = new GraphBuilder(g.name);
  const oldUses = new Map<number, number>();
  for (const n of g.nodes) for (const a of n.args) oldUses.set(a, (oldUses.get(a) ?? 0) + 1);
  for (const o of g.outputs) oldUses.set(o.id, (oldUses.get(o.id) ?? 0) + 1);
  const origin = new Map<number, number[]>();
  const ctx: RewriteCtx = { b, params, node: (id) => b.nodes[id], uses: (id) => (origin.get(id) ?? []).reduce((s, o) => s + (oldUses.get(o) ?? 0), 0) };
  const map = new Map<number, number>();
  for (const n of g.nodes) {
    let id = b.add(n.op, n.args.map((a) => map.get(a)!), n.attrs, n.loc);
    for (let rounds = 0, fired = true; fired; rounds++) {
      if (rounds > 100) throw new Error(`rewrite rules did not reach a fixed point on ${g.name} %${n.id}`);
      fired = false;
      for (const r of rules) {
        const out = r.apply(b.nodes[id], ctx);
        if (out !== null && out !== id) {
          id = out;
          fired = true;
          break;
        }
      }
    }
    map.set(n.id, id);
    origin.set(id, [...(origin.get(id) ?? []), n.id]);
  }
  for (const o of g.outputs) b.output(o.name, map.get(o.id)!);
  return compact(b.build());
}

/** The program with `rules` applied to every graph, and a new parameter map (the input's and those the rules added). */
export function rewriteProgram(p: Program, rules: readonly Rule[]): Program {
  const params = new Map(p.params);
  return { ...p, graphs: p.graphs.map((g) => rewriteGraph(g, params, rules)), params };
}
