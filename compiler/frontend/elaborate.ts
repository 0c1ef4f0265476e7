// Elaboration: binds a parsed model to a checkpoint's config.json and tensors and unrolls
// it into IR graphs (one per entry). Blocks are inlined, loops unrolled, config arithmetic
// folded; every IR node records the DSL span it came from.

import { GraphBuilder, IRError } from "../../ir/graph.js";
import type { Param, Program } from "../../ir/types.js";
import { Diagnostic, type Span } from "../diagnostics.js";
import type { WeightSource } from "../weights/source.js";
import type { BlockDecl, ConfigField, EntryDecl, Expr, ModelDecl, Stmt, WeightItem } from "./ast.js";
import { builtins } from "./builtins.js";

export type Value =
  | number
  | boolean
  | string
  | { kind: "tensor"; id: number }
  | { kind: "param"; name: string; shape: readonly number[] }
  | { kind: "params"; name: string; items: Map<number, { name: string; shape: readonly number[] }> }
  | { kind: "tuple"; items: Value[] }
  | { kind: "bias"; table: number; bidirectional: boolean; buckets: number; maxDistance: number }
  | { kind: "block"; decl: BlockDecl };

export type ConfigValue = number | boolean | string;

export interface ElaborateOptions {
  /** Longest sequence to compile for; defaults to the model's `max_context` config field, at most 2048, else 512. */
  context?: number;
  onProgress?: (done: number, total: number, what: string) => void;
}

class Scope {
  private readonly vars = new Map<string, Value>();
  constructor(private readonly parent?: Scope) {}
  get(name: string): Value | undefined {
    return this.vars.get(name) ?? this.parent?.get(name);
  }
  has(name: string): boolean {
    return this.vars.has(name) || (this.parent?.has(name) ?? false);
  }
  define(name: string, v: Value) {
    this.vars.set(name, v);
  }
  assign(name: string, v: Value): boolean {
    if (this.vars.has(name)) return this.vars.set(name, v), true;
    return this.parent?.assign(name, v) ?? false;
  }
}

export const describe = (v: Value): string =>
  typeof v === "object" ? (v.kind === "tensor" ? "a tensor" : v.kind === "params" ? "a per-layer parameter" : `a ${v.kind}`) : `a ${typeof v}`;

export class Elaborator {
  readonly globals = new Scope();
  readonly config: Record<string, ConfigValue> = {};
  readonly params = new Map<string, Param>();
  g!: GraphBuilder;
  private returned: Value | undefined;
  private cacheSlots = 0;

  /** A new KV cache key for a cached attention of the entry being elaborated. */
  cacheSlot(): string {
    return `${this.g.name}.${this.cacheSlots++}`;
  }

  constructor(readonly model: ModelDecl, readonly hf: Record<string, unknown>, readonly weights: WeightSource, readonly opts: ElaborateOptions = {}) {}

  run(): Program {
    for (const f of this.model.config) this.bindConfigField(f);
    const declared = this.model.config.find((f) => f.name === "max_context");
    const max = declared ? (this.config.max_context as number) : Infinity;
    const context = this.opts.context ?? Math.min(max, declared ? 2048 : 512);
    if (context > max) throw new Diagnostic(`--context ${context} exceeds the model's max_context ${max}`, declared?.span);
    this.globals.define("context", context);
    for (const w of this.model.weights) this.bindWeights(w);
    for (const b of this.model.blocks) this.globals.define(b.name, { kind: "block", decl: b });
    if (!this.model.entries.length) throw new Diagnostic(`model '${this.model.name}' has no entry`, this.model.span);
    const graphs = this.model.entries.map((e) => this.elaborateEntry(e));
    return { model: this.model.name, config: this.config, context, graphs, params: this.params };
  }

  // ---- config --------------------------------------------------------------------------

  private bindConfigField(f: ConfigField) {
    let v: unknown;
    const key = f.keys.find((k) => this.hf[k] !== undefined && this.hf[k] !== null);
    if (key !== undefined) v = this.hf[key];
    else if (f.value) v = this.eval(f.value, this.globals);
    else throw new Diagnostic(`config.json has no ${f.keys.map((k) => `'${k}'`).join(" or ")} (needed for '${f.name}')`, f.span);
    const where = key !== undefined ? `config.json '${key}'` : `'${f.name}'`;
    const ok =
      f.type === "int" ? typeof v === "number" && Number.isInteger(v) :
      f.type === "float" ? typeof v === "number" :
      f.type === "bool" ? typeof v === "boolean" :
      f.type === "string" ? typeof v === "string" : false;
    if (!["int", "float", "bool", "string"].includes(f.type)) throw new Diagnostic(`unknown config type '${f.type}' (use int, float, bool or string)`, f.span);
    if (!ok) throw new Diagnostic(`${where} should be ${f.type === "int" ? "an int" : `a ${f.type}`}, found ${JSON.stringify(v)}`, f.span);
    this.config[f.name] = v as ConfigValue;
    this.globals.define(f.name, v as ConfigValue);
  }

  // ---- weights -------------------------------------------------------------------------

  private bindWeights(decl: ModelDecl["weights"][number]) {
    const flat: { item: Extract<WeightItem, { kind: "param" }>; scope: Scope; index?: number }[] = [];
    const walk = (items: WeightItem[], scope: Scope, index?: number) => {
      for (const it of items) {
        if (it.kind === "for") {
          const [from, to] = [this.int(it.from, scope), this.int(it.to, scope)];
          for (let i = from; i < to; i++) {
            const s = new Scope(scope);
            s.define(it.variable, i);
            walk(it.items, s, i);
          }
        } else if (!it.cond || this.truthy(it.cond, scope)) {
          flat.push({ item: it, scope, index });
        }
      }
    };
    walk(decl.items, this.globals);
    const template = (src: string, scope: Scope, span: Span) =>
      src.replace(/\{(\w+)\}/g, (_, v: string) => {
        const x = scope.get(v);
        if (x === undefined || typeof x === "object") throw new Diagnostic(`'{${v}}' in a tensor name must be a loop variable or config value`, span);
        return String(x);
      });
    // a prefix marked optional is used when the checkpoint has any declared tensor under it
    let prefix = "";
    for (const p of decl.prefixes) {
      const candidate = prefix + p.value;
      if (!p.optional || flat.some((f) => this.weights.info(candidate + template(f.item.source, f.scope, f.item.span)))) prefix = candidate;
    }
    let done = 0;
    for (const { item, scope, index } of flat) {
      const shape = item.shape.map((e) => this.int(e, scope));
      const tname = prefix + template(item.source, scope, item.span);
      let ref: { name: string; shape: readonly number[] };
      const info = this.weights.info(tname);
      if (info) {
        if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))
          throw new Diagnostic(`tensor '${tname}' in ${info.file}: expected shape [${shape.join(", ")}], found [${info.shape.join(", ")}]`, item.span);
        if (!this.params.has(tname)) this.params.set(tname, { name: tname, shape, data: this.weights.read(tname) });
        ref = { name: tname, shape };
      } else if (item.fallback) {
        const fb = this.globals.get(item.fallback);
        if (!fb || typeof fb !== "object" || fb.kind !== "param")
          throw new Diagnostic(`fallback '${item.fallback}' for missing tensor '${tname}' must be a parameter declared before it`, item.span);
        if (fb.shape.join() !== shape.join()) throw new Diagnostic(`fallback '${item.fallback}' is [${fb.shape.join(", ")}], expected [${shape.join(", ")}]`, item.span);
        ref = { name: fb.name, shape };
      } else {
        throw new Diagnostic(`missing tensor '${tname}' in ${this.weights.description}`, item.span);
      }
      if (item.indexed) {
        if (index === undefined) throw new Diagnostic(`'${item.name}[…]' is declared outside a for loop`, item.span);
        let arr = this.globals.get(item.name);
        if (arr === undefined) this.globals.define(item.name, (arr = { kind: "params", name: item.name, items: new Map() }));
        if (typeof arr !== "object" || arr.kind !== "params") throw new Diagnostic(`'${item.name}' is already declared`, item.span);
        arr.items.set(index, ref);
      } else {
        if (this.globals.has(item.name)) throw new Diagnostic(`'${item.name}' is already declared`, item.span);
        this.globals.define(item.name, { kind: "param", ...ref });
      }
      this.opts.onProgress?.(++done, flat.length, tname);
    }
  }

  // ---- entries -------------------------------------------------------------------------

  private elaborateEntry(e: EntryDecl) {
    this.g = new GraphBuilder(e.name);
    this.cacheSlots = 0;
    const scope = new Scope(this.globals);
    for (const inp of e.inputs) {
      const loc = inp.span;
      let attrs: Record<string, string | readonly (string | number)[]>;
      switch (inp.kind) {
        case "tokens":
        case "segments":
          attrs = { name: inp.name, kind: inp.kind, dtype: "i32", shape: ["S"] };
          break;
        case "padding":
          attrs = { name: inp.name, kind: inp.kind, dtype: "f32", shape: ["S"] };
          break;
        case "state":
          attrs = { name: inp.name, kind: inp.kind, dtype: "f32", shape: ["E", ...inp.shape.map((x) => this.int(x, scope))] };
          break;
        default:
          throw new Diagnostic(`unknown input kind '${inp.kind}' (use tokens, segments, padding or state[...])`, inp.span);
      }
      scope.define(inp.name, { kind: "tensor", id: this.node("input", [], attrs, loc) });
    }
    this.execBody(e.body, scope);
    if (!this.g.outputs.length) throw new Diagnostic(`entry '${e.name}' has no output`, e.span);
    return this.g.build();
  }

  /** Adds an IR node, turning shape-rule failures into diagnostics at the DSL span. */
  node(op: string, args: number[], attrs: Record<string, unknown>, span: Span): number {
    try {
      return this.g.add(op, args, attrs as never, span);
    } catch (e) {
      if (e instanceof IRError) throw new Diagnostic(e.message, span);
      throw e;
    }
  }

  tensor(v: Value, span: Span, what = "operand"): number {
    if (typeof v === "object" && v.kind === "tensor") return v.id;
    if (typeof v === "object" && v.kind === "param") return this.node("param", [], { name: v.name, shape: v.shape }, span);
    throw new Diagnostic(`${what} should be a tensor, found ${describe(v)}`, span);
  }

  // ---- statements ----------------------------------------------------------------------

  private execBody(stmts: Stmt[], scope: Scope) {
    for (const s of stmts) {
      if (this.returned !== undefined) return;
      this.exec(s, scope);
    }
  }

  private exec(s: Stmt, scope: Scope) {
    switch (s.kind) {
      case "let": {
        const v = this.eval(s.value, scope);
        if (s.names.length === 1) return scope.define(s.names[0].name, v);
        if (typeof v !== "object" || v.kind !== "tuple" || v.items.length !== s.names.length)
          throw new Diagnostic(`cannot unpack ${describe(v)} into ${s.names.length} names`, s.span);
        return s.names.forEach((n, i) => scope.define(n.name, v.items[i]));
      }
      case "assign":
        if (!scope.assign(s.name, this.eval(s.value, scope))) throw new Diagnostic(`'${s.name}' is not declared (use 'let')`, s.span);
        return;
      case "for": {
        const [from, to] = [this.int(s.from, scope), this.int(s.to, scope)];
        for (let i = from; i < to && this.returned === undefined; i++) {
          const inner = new Scope(scope);
          inner.define(s.variable, i);
          this.execBody(s.body, inner);
        }
        return;
      }
      case "if":
        return this.execBody(this.truthy(s.cond, scope) ? s.then : s.else, new Scope(scope));
      case "return":
        this.returned = this.eval(s.value, scope);
        return;
      case "output":
        this.g.output(s.name, this.tensor(this.eval(s.value, scope), s.value.span));
        return;
    }
  }

  callBlock(decl: BlockDecl, args: Value[], span: Span): Value {
    if (args.length !== decl.params.length)
      throw new Diagnostic(`block '${decl.name}' takes ${decl.params.length} arguments, got ${args.length}`, span);
    const scope = new Scope(this.globals);
    decl.params.forEach((p, i) => scope.define(p, args[i]));
    const saved = this.returned;
    this.returned = undefined;
    this.execBody(decl.body, scope);
    const r = this.returned;
    this.returned = saved;
    if (r === undefined) throw new Diagnostic(`block '${decl.name}' returns nothing`, decl.span);
    return r;
  }

  // ---- expressions ---------------------------------------------------------------------

  int(e: Expr, scope: Scope): number {
    const v = this.eval(e, scope);
    if (typeof v !== "number" || !Number.isInteger(v)) throw new Diagnostic(`expected an integer, found ${typeof v === "number" ? v : describe(v)}`, e.span);
    return v;
  }

  truthy(e: Expr, scope: Scope): boolean {
    const v = this.eval(e, scope);
    if (typeof v !== "boolean") throw new Diagnostic(`condition should be a bool, found ${describe(v)}`, e.span);
    return v;
  }

  eval(e: Expr, scope: Scope): Value {
    switch (e.kind) {
      case "num":
      case "str":
      case "bool":
        return e.value;
      case "list":
        return { kind: "tuple", items: e.items.map((x) => this.eval(x, scope)) };
      case "ident": {
        const v = scope.get(e.name);
        if (v === undefined) throw new Diagnostic(`'${e.name}' is not defined`, e.span);
        return v;
      }
      case "index": {
        const t = this.eval(e.target, scope);
        const i = this.eval(e.index, scope);
        if (typeof t === "object" && t.kind === "params") {
          if (typeof i !== "number") throw new Diagnostic(`index of '${t.name}' should be a layer number`, e.index.span);
          const p = t.items.get(i);
          if (!p) throw new Diagnostic(`'${t.name}[${i}]' was not declared`, e.span);
          return { kind: "param", ...p };
        }
        if (typeof t === "object" && t.kind === "tuple") {
          if (typeof i !== "number" || !t.items[i]) throw new Diagnostic(`index ${String(i)} is out of range`, e.index.span);
          return t.items[i];
        }
        // table[ids] is an embedding lookup
        return { kind: "tensor", id: this.node("embedding", [this.tensor(t, e.target.span, "indexed value"), this.tensor(i, e.index.span, "index")], {}, e.span) };
      }
      case "unary": {
        const v = this.eval(e.operand, scope);
        if (e.op === "!") {
          if (typeof v !== "boolean") throw new Diagnostic(`'!' needs a bool, found ${describe(v)}`, e.span);
          return !v;
        }
        if (typeof v === "number") return -v;
        return { kind: "tensor", id: this.node("scale", [this.tensor(v, e.span)], { by: -1 }, e.span) };
      }
      case "binary":
        return this.binary(e, this.eval(e.left, scope), this.eval(e.right, scope));
      case "call": {
        const f = scope.get(e.callee);
        const args = e.args.map((a) => this.eval(a, scope));
        if (f !== undefined) {
          if (typeof f === "object" && f.kind === "block") {
            if (e.named.length) throw new Diagnostic(`blocks take positional arguments only`, e.named[0].span);
            return this.callBlock(f.decl, args, e.span);
          }
          throw new Diagnostic(`'${e.callee}' is ${describe(f)}, not a function`, e.span);
        }
        const b = builtins[e.callee];
        if (!b) throw new Diagnostic(`unknown function '${e.callee}'`, e.span);
        const named = new Map(e.named.map((n) => [n.name, { value: this.eval(n.value, scope), span: n.span }]));
        const out = b(this, { args, argSpans: e.args.map((a) => a.span), named, span: e.span });
        for (const k of named.keys()) throw new Diagnostic(`${e.callee}() has no argument '${k}'`, named.get(k)!.span);
        return out;
      }
    }
  }

  private binary(e: Extract<Expr, { kind: "binary" }>, l: Value, r: Value): Value {
    const op = e.op;
    if (typeof l === "number" && typeof r === "number") {
      switch (op) {
        case "+": return l + r;
        case "-": return l - r;
        case "*": return l * r;
        case "/": return l / r;
        case "%": return l % r;
        case "<": return l < r;
        case ">": return l > r;
        case "<=": return l <= r;
        case ">=": return l >= r;
      }
    }
    if (op === "==") return l === r;
    if (op === "!=") return l !== r;
    if (typeof l === "boolean" && typeof r === "boolean") {
      if (op === "&&") return l && r;
      if (op === "||") return l || r;
    }
    const isT = (v: Value) => typeof v === "object" && (v.kind === "tensor" || v.kind === "param");
    const T = (id: number): Value => ({ kind: "tensor", id });
    if (isT(l) && typeof r === "number" && (op === "*" || op === "/"))
      return T(this.node("scale", [this.tensor(l, e.left.span)], { by: op === "*" ? r : 1 / r }, e.span));
    if (typeof l === "number" && isT(r) && op === "*") return T(this.node("scale", [this.tensor(r, e.right.span)], { by: l }, e.span));
    if (isT(l) && isT(r)) {
      let a = this.tensor(l, e.left.span), b = this.tensor(r, e.right.span);
      switch (op) {
        case "@":
          return T(this.node("matmul", [a, b], {}, e.span));
        case "-":
          return T(this.node("add", [a, this.node("scale", [b], { by: -1 }, e.span)], {}, e.span));
        case "+":
        case "*":
          // broadcasting takes the larger operand first
          if (this.g.type(a).shape.length < this.g.type(b).shape.length) [a, b] = [b, a];
          return T(this.node(op === "*" ? "mul" : "add", [a, b], {}, e.span));
      }
    }
    throw new Diagnostic(`'${op}' cannot combine ${describe(l)} and ${describe(r)}`, e.span);
  }
}

export function elaborate(model: ModelDecl, hfConfig: Record<string, unknown>, weights: WeightSource, opts?: ElaborateOptions): Program {
  return new Elaborator(model, hfConfig, weights, opts).run();
}
