// Building, verifying and printing graphs.

import { opDef, ShapeError } from "./ops.js";
import { type Attrs, type Graph, type Node, type Program, type SourceLoc, type TensorType, formatType, sameShape } from "./types.js";

/** A shape or dtype rule that failed, pointing at the user's source when the node has a location. */
export class IRError extends Error {
  constructor(message: string, readonly loc?: SourceLoc) {
    super(message);
  }
}

export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly outputs: { name: string; id: number }[] = [];
  private readonly memo = new Map<string, number>();

  constructor(readonly name: string) {}

  /** Appends a node (or returns an identical earlier one: params and pure ops are shared). */
  add(op: string, args: readonly number[], attrs: Attrs = {}, loc?: SourceLoc): number {
    const key = `${op}(${args.join(",")})${JSON.stringify(attrs)}`;
    const cse = op !== "attention";
    if (cse) {
      const hit = this.memo.get(key);
      if (hit !== undefined) return hit;
    }
    const def = opDef(op);
    const [lo, hi] = typeof def.arity === "number" ? [def.arity, def.arity] : def.arity;
    if (args.length < lo || args.length > hi) throw new IRError(`${op} takes ${lo === hi ? lo : `${lo}-${hi}`} operands, got ${args.length}`, loc);
    let type: TensorType;
    try {
      type = def.infer(args.map((a) => this.nodes[a].type), attrs);
    } catch (e) {
      if (e instanceof ShapeError) throw new IRError(e.message, loc);
      throw e;
    }
    const id = this.nodes.length;
    this.nodes.push({ id, op, args, attrs, type, loc });
    if (cse) this.memo.set(key, id);
    return id;
  }

  type(id: number): TensorType {
    return this.nodes[id].type;
  }

  output(name: string, id: number) {
    this.outputs.push({ name, id });
  }

  build(): Graph {
    return { name: this.name, nodes: this.nodes, outputs: this.outputs };
  }
}

/** Checks that a graph is well formed: operands defined before use, types consistent with the op rules. */
export function verifyGraph(g: Graph): void {
  g.nodes.forEach((n, i) => {
    const where = `${g.name} %${n.id} = ${n.op}`;
    if (n.id !== i) throw new IRError(`${where}: node id ${n.id} at position ${i}`, n.loc);
    for (const a of n.args) if (a >= i || a < 0) throw new IRError(`${where}: operand %${a} is not defined before use`, n.loc);
    let t: TensorType;
    try {
      t = opDef(n.op).infer(n.args.map((a) => g.nodes[a].type), n.attrs);
    } catch (e) {
      throw new IRError(`${where}: ${(e as Error).message}`, n.loc);
    }
    if (t.dtype !== n.type.dtype || !sameShape(t.shape, n.type.shape))
      throw new IRError(`${where}: recorded type ${formatType(n.type)} but the op rule gives ${formatType(t)}`, n.loc);
  });
  for (const o of g.outputs) if (!g.nodes[o.id]) throw new IRError(`${g.name}: output ${o.name} names missing node %${o.id}`);
}

export function verifyProgram(p: Program): void {
  for (const g of p.graphs) {
    verifyGraph(g);
    for (const n of g.nodes)
      if (n.op === "param") {
        const w = p.params.get(n.attrs.name as string);
        if (!w) throw new IRError(`${g.name} %${n.id}: parameter '${n.attrs.name}' has no data`, n.loc);
        if (!sameShape(w.shape, n.type.shape)) throw new IRError(`${g.name} %${n.id}: parameter '${n.attrs.name}' is [${w.shape}] but typed ${formatType(n.type)}`, n.loc);
      }
  }
}

function formatAttr(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(",")}]` : String(v);
}

/** Canonical text form: one node a line, `%id = op(args) {attrs} : type`. */
export function printGraph(g: Graph): string {
  const lines = [`graph ${g.name} {`];
  for (const n of g.nodes) {
    const attrs = Object.entries(n.attrs).map(([k, v]) => `${k}=${formatAttr(v)}`).join(", ");
    lines.push(`  %${n.id} = ${n.op}(${n.args.map((a) => `%${a}`).join(", ")})${attrs ? ` {${attrs}}` : ""} : ${formatType(n.type)}`);
  }
  lines.push(`  return ${g.outputs.map((o) => `${o.name}=%${o.id}`).join(", ")}`, "}");
  return lines.join("\n");
}

export function printProgram(p: Program): string {
  return p.graphs.map(printGraph).join("\n\n") + "\n";
}

/** Rebuilds a graph from a node list, dropping nodes no output reaches and renumbering. */
export function compact(g: Graph): Graph {
  const live = new Set<number>();
  const stack = g.outputs.map((o) => o.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...g.nodes[id].args);
  }
  // inputs stay even when unused: they are the entry's calling convention
  for (const n of g.nodes) if (n.op === "input") live.add(n.id);
  const remap = new Map<number, number>();
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    remap.set(n.id, nodes.length);
    nodes.push({ ...n, id: nodes.length, args: n.args.map((a) => remap.get(a)!) });
  }
  return { name: g.name, nodes, outputs: g.outputs.map((o) => ({ name: o.name, id: remap.get(o.id)! })) };
}
