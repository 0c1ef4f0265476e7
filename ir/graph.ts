// Building, verifying and printing graphs.

import { checkAttrs, formatAttr } from "./attrs.js";
import { type OpDef, ShapeError, isOp, opDef } from "./ops.js";
import { traitsOf } from "./ops/def.js";
import { type Attrs, type Graph, type Node, type Program, type SourceLoc, type TensorType, formatType, sameShape } from "./types.js";

/** A shape or dtype rule that failed, pointing at the user's source when the node has a location. */
export class IRError extends Error {
  constructor(message: string, readonly loc?: SourceLoc) {
    super(message);
  }
}

/** Why `count` operands do not fit the op's arity, or undefined. */
function arityError(op: string, def: OpDef, count: number): string | undefined {
  const [lo, hi] = typeof def.arity === "number" ? [def.arity, def.arity] : def.arity;
  return count < lo || count > hi ? `${op} takes ${lo === hi ? lo : `${lo}-${hi}`} operands, got ${count}` : undefined;
}

export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly outputs: { name: string; id: number }[] = [];
  private readonly memo = new Map<string, number>();

  constructor(readonly name: string) {}

  /** Appends a node (or returns an identical earlier one, unless the op has effects: a KV cache's writer stays). */
  add(op: string, args: readonly number[], attrs: Attrs = {}, loc?: SourceLoc): number {
    const def = opDef(op);
    const key = `${op}(${args.join(",")})${JSON.stringify(attrs)}`;
    const cse = !traitsOf(def, attrs).includes("effects");
    if (cse) {
      const hit = this.memo.get(key);
      if (hit !== undefined) return hit;
    }
    const arity = arityError(op, def, args.length);
    if (arity) throw new IRError(arity, loc);
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

/**
 * Checks that a graph is well formed: known ops, operands defined before use, attributes as each
 * op's schema declares them, types consistent with the op rules.
 */
export function verifyGraph(g: Graph): void {
  g.nodes.forEach((n, i) => {
    const where = `${g.name} %${n.id} = ${n.op}`;
    if (n.id !== i) throw new IRError(`${where}: node id ${n.id} at position ${i}`, n.loc);
    for (const a of n.args) if (a >= i || a < 0) throw new IRError(`${where}: operand %${a} is not defined before use`, n.loc);
    let t: TensorType;
    try {
      const def = opDef(n.op);
      const bad = checkAttrs(def.attrs, n.attrs) ?? arityError(n.op, def, n.args.length);
      if (bad) throw new ShapeError(bad);
      t = def.infer(n.args.map((a) => g.nodes[a].type), n.attrs);
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
      if (isOp(n, "param")) {
        const w = p.params.get(n.attrs.name);
        if (!w) throw new IRError(`${g.name} %${n.id}: parameter '${n.attrs.name}' has no data`, n.loc);
        if (!sameShape(w.shape, n.type.shape)) throw new IRError(`${g.name} %${n.id}: parameter '${n.attrs.name}' is [${w.shape}] but typed ${formatType(n.type)}`, n.loc);
      }
  }
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
