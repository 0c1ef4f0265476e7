// Reads the canonical text form printed by printGraph back into graphs (round trip), so
// pass tests can state their Before and Expected IR as text. Each attribute is read as the
// kind its op's schema declares.

import { describeKind, parseAttr } from "./attrs.js";
import { GraphBuilder, IRError } from "./graph.js";
import { opDef, opKinds } from "./ops.js";
import type { AttrValue, Graph } from "./types.js";

/** Splits `a=1, b="x,y", c=[1,2]` at top-level commas. */
function splitAttrs(s: string): string[] {
  const out: string[] = [];
  let depth = 0, quote = false, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) { if (c === "\\") i++; else if (c === '"') quote = false; continue; }
    if (c === '"') quote = true;
    else if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === "," && depth === 0) { out.push(s.slice(start, i)); start = i + 1; }
  }
  if (s.slice(start).trim()) out.push(s.slice(start));
  return out;
}

const NODE = /^%(\d+) = (\w+)\(([^)]*)\)(?: \{(.*)\})? : (\w+)\[([^\]]*)\]$/;

export function parseGraphs(text: string): Graph[] {
  const graphs: Graph[] = [];
  let b: GraphBuilder | undefined;
  const ids = new Map<number, number>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("//")) continue;
    const fail = (msg: string): never => { throw new IRError(`IR text line ${i + 1}: ${msg}`); };
    let m: RegExpExecArray | null;
    if ((m = /^graph (\w+) \{$/.exec(line))) {
      b = new GraphBuilder(m[1]);
      ids.clear();
    } else if (line === "}") {
      if (!b) fail("'}' outside a graph");
      graphs.push(b!.build());
      b = undefined;
    } else if ((m = /^return (.*)$/.exec(line))) {
      for (const o of m[1].split(",").map((x) => x.trim()).filter(Boolean)) {
        const [name, ref] = o.split("=");
        b!.output(name, ids.get(Number(ref.slice(1))) ?? fail(`unknown %${ref}`));
      }
    } else if ((m = NODE.exec(line))) {
      if (!b) fail("node outside a graph");
      const op = m[2];
      if (!(opKinds as string[]).includes(op)) fail(`unknown op '${op}'`);
      const schema = opDef(op).attrs;
      const args = m[3].split(",").map((x) => x.trim()).filter(Boolean).map((a) => ids.get(Number(a.slice(1))) ?? fail(`unknown operand ${a}`));
      const attrs: Record<string, AttrValue> = {};
      for (const kv of splitAttrs(m[4] ?? "")) {
        const eq = kv.indexOf("=");
        const name = kv.slice(0, eq).trim(), text = kv.slice(eq + 1);
        const spec = schema[name] ?? fail(`${op} has no attribute '${name}'`);
        attrs[name] = parseAttr(spec.kind, text) ?? fail(`${op} attribute ${name}=${text.trim()} should be ${describeKind(spec.kind)}`);
      }
      const id = b!.add(op, args, attrs);
      const printed = `${m[5]}[${m[6]}]`;
      const t = b!.type(id);
      if (`${t.dtype}[${t.shape.join(",")}]` !== printed) fail(`type ${printed} disagrees with the op rule's ${t.dtype}[${t.shape.join(",")}]`);
      ids.set(Number(m[1]), id);
    } else fail(`cannot read '${line}'`);
  }
  return graphs;
}
