// The reference interpreter: runs a graph with each op's reference semantics.

import { type InterpState, type Value, isOp, opDef } from "./ops.js";
import type { Graph, Program } from "./types.js";

export interface Session {
  past: number;
  caches: InterpState["caches"];
  /** Outputs of earlier entries kept as inputs of later ones (e.g. an encoder's output). */
  state: Map<string, Value>;
  /** Be the reference of the relaxed-SIMD module where its semantics differ (which calls of a quantized linear take the integer path). */
  relaxed: boolean;
}

export function newSession({ relaxed = false }: { relaxed?: boolean } = {}): Session {
  return { past: 0, caches: new Map(), state: new Map(), relaxed };
}

// parameters compute their values on every read (ir/params.ts): the interpreter keeps them per program
const paramCache = new WeakMap<Program, Map<string, Float32Array>>();
function paramValues(p: Program, name: string): Float32Array {
  let m = paramCache.get(p);
  if (!m) paramCache.set(p, (m = new Map()));
  let v = m.get(name);
  if (!v) m.set(name, (v = p.params.get(name)!.data));
  return v;
}

/**
 * Runs entry `graph` on `inputs`, advancing `session.past` by the rows of its tokens when it
 * has a cached attention. Returns every output by name. A sequences input (pack-sequences) not
 * given makes the call's rows one sequence.
 */
export function interpret(p: Program, graphName: string, inputs: Record<string, Value>, session: Session): Record<string, Value> {
  const g = p.graphs.find((x) => x.name === graphName);
  if (!g) throw new Error(`no entry '${graphName}'`);
  const seq = g.nodes.find((n) => isOp(n, "input") && n.attrs.kind === "sequences");
  if (seq && isOp(seq, "input") && !inputs[seq.attrs.name]) {
    const tok = g.nodes.find((n) => isOp(n, "input") && n.attrs.kind === "tokens");
    const rows = tok && isOp(tok, "input") ? (inputs[tok.attrs.name]?.length ?? 0) : 0;
    inputs = { ...inputs, [seq.attrs.name]: Int32Array.from({ length: 2 * rows }, (_, i) => (i % 2 ? rows : 0)) };
  }
  const st: InterpState = {
    past: session.past,
    context: p.context,
    caches: session.caches,
    graph: g.name,
    relaxed: session.relaxed,
    params: (name) => paramValues(p, name),
    inputs: (name) => {
      const v = inputs[name] ?? session.state.get(name);
      if (!v) throw new Error(`missing input '${name}'`);
      return v;
    },
  };
  const vals: Value[] = [];
  for (const n of g.nodes) {
    vals[n.id] = opDef(n.op).interp(n.args.map((a) => vals[a]), n.attrs, n, n.args.map((a) => g.nodes[a].type), st);
  }
  if (usesCache(g)) session.past += rowsOfCall(g, vals);
  return Object.fromEntries(g.outputs.map((o) => [o.name, vals[o.id]]));
}

export function usesCache(g: Graph): boolean {
  return g.nodes.some((n) => isOp(n, "attention") && !!n.attrs.cache);
}

function rowsOfCall(g: Graph, vals: Value[]): number {
  const tok = g.nodes.find((n) => isOp(n, "input") && n.attrs.kind === "tokens");
  if (!tok) throw new Error(`${g.name}: a cached entry needs a tokens input`);
  return vals[tok.id].length;
}
