// Elaboration: binds a parsed model to a checkpoint's config.json and tensors and unrolls
// it into IR graphs (one per entry). Blocks are inlined, loops unrolled, config arithmetic
// folded; every IR node records the DSL span it came from.
//
// Nothing is sized by an unchecked number: config values are checked against the model's
// declared ranges and requirements before any tensor is read, every loop's trip count is
// capped before it starts, and loop iterations, block calls, graph nodes and tensor sizes
// have budgets, each a located diagnostic when exceeded.

import { GraphBuilder, IRError } from "../../ir/graph.js";
import type { Param, Program, TensorType } from "../../ir/types.js";
import { lazyParam } from "../../ir/params.js";
import { Diagnostic, InputError, type Span } from "../diagnostics.js";
import { type WeightSource, shown } from "../weights/source.js";
import { type BlockDecl, type ConfigField, type ConfigRequire, type EntryDecl, type Expr, type ModelDecl, type Stmt, type WeightItem, formatExpr, namesIn } from "./ast.js";
import { bindArgs, builtins } from "./builtins.js";
import { binary } from "./operations.js";
import { countParams } from "./count-params.js";
import { MAX_CALL_DEPTH, MAX_CONFIG_LIST, MAX_CONTEXT, MAX_DEPTH, MAX_ELEMENTS, MAX_NODES, MAX_STEPS, MAX_TRIPS } from "./limits.js";
import { type BuiltinHost, Scope, type Value, configAt, describe } from "./values.js";

export type { Value } from "./values.js";
export type ConfigValue = number | boolean | string;

export interface ElaborateOptions {
  /** Longest sequence to compile for; defaults to the model's `max_context` config field, at most 2048, else 512. */
  context?: number;
  onProgress?: (done: number, total: number, what: string) => void;
  /** What messages call the config: "config.json" unless it was read from elsewhere (a GGUF file's metadata). */
  configName?: string;
}

type ParamItem = Extract<WeightItem, { kind: "param" }>;
type LoopItem = Extract<WeightItem, { kind: "for" }> | Extract<Stmt, { kind: "for" }>;

/**
 * Whether a checkpoint's tensor binds to a declared shape: equal once leading dims of 1 are left
 * out of both (torch keeps a batch dim of 1 on parameters such as ViT's cls_token [1, 1, d]).
 */
function sameShapeBut1s(stored: readonly number[], declared: readonly number[]): boolean {
  const strip = (s: readonly number[]) => {
    let i = 0;
    while (i < s.length - 1 && s[i] === 1) i++;
    return s.slice(i);
  };
  const [a, b] = [strip(stored), strip(declared)];
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A config or argument value for a one-line message. */
const shownValue = (v: unknown) => (typeof v === "number" ? String(v) : shown(v));

export class Elaborator implements BuiltinHost {
  readonly globals = new Scope();
  readonly config: Record<string, ConfigValue> = {};
  /** Where each config field's value came from: a config.json key, or its default expression. */
  private readonly configSource = new Map<string, { key?: string; field: ConfigField }>();
  private readonly configName: string;
  readonly params = new Map<string, Param>();
  g!: GraphBuilder;
  private context = 0;
  private returned: Value | undefined;
  private cacheSlots = 0;
  private steps = 0;
  private depth = 0;
  private readonly calls: string[] = [];

  constructor(readonly model: ModelDecl, readonly hf: Record<string, unknown>, readonly weights: WeightSource, readonly opts: ElaborateOptions = {}) {
    this.configName = opts.configName ?? "config.json";
  }

  run(): Program {
    for (const c of this.model.config) {
      if (c.kind === "require") this.checkRequire(c);
      else this.bindConfigField(c);
    }
    this.context = this.chooseContext();
    this.globals.define("context", this.context);
    for (const w of this.model.weights) this.bindWeights(w);
    for (const b of this.model.blocks) this.globals.define(b.name, { kind: "block", decl: b });
    if (!this.model.entries.length) throw new Diagnostic(`model '${this.model.name}' has no entry`, this.model.span, { code: "WF208" });
    const graphs = this.model.entries.map((e) => this.elaborateEntry(e));
    return { model: this.model.name, config: this.config, context: this.context, graphs, params: this.params };
  }

  // ---- config --------------------------------------------------------------------------

  /** A config field as a message names it: `config.json 'n_head' = 7`, or `'ffn' = 240 (default 4 * d)`. */
  private describeField(name: string): string {
    const src = this.configSource.get(name)!;
    const v = shownValue(this.config[name]);
    return src.key !== undefined ? `${this.configName} '${src.key}' = ${v}` : `'${name}' = ${v} (default ${formatExpr(src.field.value!)})`;
  }

  /** The config values an expression reads (as bound in `scope`), for a message; "" if none. */
  private origins(exprs: Expr[], scope: Scope = this.globals): string {
    const names = exprs.flatMap((e) => namesIn(e)).filter((n, i, all) => all.indexOf(n) === i);
    return names.filter((n) => this.configSource.has(n) && scope.get(n) === this.globals.get(n)).map((n) => this.describeField(n)).join(", ");
  }

  private bindConfigField(f: ConfigField) {
    if (!["int", "float", "bool", "string", "float[]"].includes(f.type))
      throw new Diagnostic(`unknown config type '${f.type}' (use int, float, bool, string or float[])`, f.span, { code: "WF208" });
    const key = f.keys.find((k) => configAt(this.hf, k) !== undefined);
    let v: unknown;
    if (key !== undefined) v = configAt(this.hf, key);
    else if (f.value) v = this.eval(f.value, this.globals);
    else throw new Diagnostic(`${this.configName} has no ${f.keys.map((k) => `'${k}'`).join(" or ")} (needed for '${f.name}')`, f.span, { code: "WF301" });
    const from = key !== undefined ? `${this.configName} '${key}'` : `'${f.name}' (default ${formatExpr(f.value!)})`;
    const inputs = key === undefined ? this.origins([f.value!]) : "";
    const ok =
      f.type === "int" ? Number.isSafeInteger(v) :
      f.type === "float" ? typeof v === "number" && Number.isFinite(v) :
      f.type === "bool" ? typeof v === "boolean" :
      f.type === "float[]" ? Array.isArray(v) && v.length <= MAX_CONFIG_LIST && v.every((x) => typeof x === "number" && Number.isFinite(x)) :
      typeof v === "string";
    const want = { int: "an int", float: "a finite number", bool: "a bool", string: "a string", "float[]": `a list of at most ${MAX_CONFIG_LIST} finite numbers` }[f.type];
    if (!ok) throw new Diagnostic(`${from} should be ${want}, found ${shownValue(v)}${inputs ? `; ${inputs}` : ""}`, f.span, { code: "WF302" });
    const value: Value = Array.isArray(v) ? { kind: "tuple", items: v as number[] } : (v as ConfigValue);
    if (!Array.isArray(v)) this.config[f.name] = v as ConfigValue;
    this.configSource.set(f.name, { key, field: f });
    if (f.range) for (const x of Array.isArray(v) ? v : [v]) this.checkRange(f, x as number, inputs);
    this.globals.define(f.name, value);
  }

  private checkRange(f: ConfigField, v: number, inputs: string) {
    const r = f.range!;
    const bound = (e: Expr) => {
      const b = this.eval(e, this.globals);
      if (typeof b !== "number") throw new Diagnostic(`a bound of '${f.name}' should be a number, found ${describe(b)}`, e.span, { code: "WF204" });
      return b;
    };
    const [lo, hi] = [bound(r.lo), bound(r.hi)];
    if (v >= lo && (r.inclusive ? v <= hi : v < hi)) return;
    const dots = r.inclusive ? "..=" : "..";
    const literal = r.lo.kind === "num" && r.hi.kind === "num";
    const range = `${lo}${dots}${hi}` + (literal ? "" : ` (${formatExpr(r.lo)}${dots}${formatExpr(r.hi)})`);
    const bounds = literal ? "" : this.origins([r.lo, r.hi]);
    const why = [inputs, bounds].filter(Boolean).join(", ");
    throw new Diagnostic(`${this.describeField(f.name)} is outside ${range} (needed for '${f.name}')${why ? `; ${why}` : ""}`, f.span, { code: "WF303" });
  }

  private checkRequire(r: ConfigRequire) {
    const ok = this.eval(r.cond, this.globals);
    if (typeof ok !== "boolean") throw new Diagnostic(`a requirement should be a bool, found ${describe(ok)}`, r.cond.span, { code: "WF204" });
    if (ok) return;
    const inputs = this.origins([r.cond]);
    throw new Diagnostic(`requirement '${formatExpr(r.cond)}' is not met${inputs ? `: ${inputs}` : ""}`, r.span, { code: "WF304" });
  }

  /** The context to compile for: the option, checked against the model's max_context, or a default. */
  private chooseContext(): number {
    const declared = this.configSource.has("max_context");
    let max = MAX_CONTEXT;
    if (declared) {
      const m = this.config.max_context;
      if (typeof m !== "number" || !Number.isInteger(m) || m < 1)
        throw new Diagnostic(`${this.describeField("max_context")}: 'max_context' should be an integer of at least 1`, this.configSource.get("max_context")!.field.span, { code: "WF303" });
      max = Math.min(m, MAX_CONTEXT);
    }
    const c = this.opts.context;
    if (c === undefined) return Math.min(max, declared ? 2048 : 512);
    if (typeof c !== "number" || !Number.isInteger(c) || c < 1)
      throw new InputError(`--context ${shownValue(c)} should be a whole number from 1 to ${max}`, undefined, { code: "WF601" });
    if (c > max) {
      const why = declared && max === this.config.max_context ? `the model's max_context (${this.describeField("max_context")})` : "the longest context wasmformer compiles";
      throw new InputError(`--context ${c} exceeds ${max}, ${why}`, undefined, { code: "WF601" });
    }
    return c;
  }

  // ---- budgets -------------------------------------------------------------------------

  /** Counts one loop iteration or block call against MAX_STEPS. */
  step(span: Span) {
    if (++this.steps > MAX_STEPS)
      throw new Diagnostic(`elaboration takes more than ${MAX_STEPS} steps (loop iterations and block calls together)`, span, { code: "WF212" });
  }

  /** A loop's bounds, refused before it starts if it would run more than MAX_TRIPS times. */
  loopBounds(s: LoopItem, scope: Scope): [number, number] {
    const [from, to] = [this.int(s.from, scope), this.int(s.to, scope)];
    if (to - from > MAX_TRIPS) {
      const inputs = this.origins([s.from, s.to], scope);
      throw new Diagnostic(
        `loop 'for ${s.variable} in ${formatExpr(s.from)}..${formatExpr(s.to)}' would run ${to - from} times, more than ${MAX_TRIPS}${inputs ? ` (${inputs})` : ""}`,
        s.span, { code: "WF211" });
    }
    return [from, to];
  }

  /** Elements of a tensor type, its run-time row dims taken at the context. */
  private elements(t: TensorType): number {
    return t.shape.reduce<number>((n, d) => n * (typeof d === "number" ? d : this.context), 1);
  }

  // ---- weights -------------------------------------------------------------------------

  /** The parameters a weights block declares, with their loop scopes, walked lazily in order. */
  private *paramsOf(items: WeightItem[], scope: Scope, index?: number): Generator<{ item: ParamItem; scope: Scope; index?: number }> {
    for (const it of items) {
      if (it.kind === "for") {
        const [from, to] = this.loopBounds(it, scope);
        for (let i = from; i < to; i++) {
          this.step(it.span);
          const s = new Scope(scope);
          s.define(it.variable, i);
          yield* this.paramsOf(it.items, s, i);
        }
      } else if (!it.cond || this.truthy(it.cond, scope)) {
        yield { item: it, scope, index };
      }
    }
  }

  private bindWeights(decl: ModelDecl["weights"][number]) {
    const template = (src: string, scope: Scope, span: Span) =>
      src.replace(/\{(\w+)\}/g, (_, v: string) => {
        const x = scope.get(v);
        if (x === undefined) throw new Diagnostic(`'{${v}}' in a tensor name is not defined (use a loop variable or config value)`, span, { code: "WF201" });
        if (typeof x === "object") throw new Diagnostic(`'{${v}}' in a tensor name must be a loop variable or config value, found ${describe(x)}`, span, { code: "WF204" });
        return String(x);
      });
    // a prefix marked optional is used when the checkpoint has any declared tensor under it
    let prefix = "";
    for (const p of decl.prefixes) {
      const candidate = prefix + p.value;
      if (!p.optional) prefix = candidate;
      else for (const f of this.paramsOf(decl.items, this.globals)) {
        if (this.weights.info(candidate + template(f.item.source, f.scope, f.item.span))) {
          prefix = candidate;
          break;
        }
      }
    }
    const total = this.opts.onProgress ? countParams(decl.items, this.globals, new Set(), this) : 0;
    let done = 0;
    for (const { item, scope, index } of this.paramsOf(decl.items, this.globals)) {
      const shape = item.shape.map((e) => this.int(e, scope));
      const tname = prefix + template(item.source, scope, item.span);
      const size = shape.reduce((n, d) => n * d, 1);
      if (size > MAX_ELEMENTS) {
        const inputs = this.origins(item.shape, scope);
        throw new Diagnostic(`tensor '${tname}' of shape [${shape.join(", ")}] has ${size} elements, more than ${MAX_ELEMENTS}${inputs ? ` (${inputs})` : ""}`, item.span, { code: "WF213" });
      }
      let ref: { name: string; shape: readonly number[] };
      const info = this.weights.info(tname);
      if (info) {
        if (!sameShapeBut1s(info.shape, shape)) {
          const inputs = this.origins(item.shape, scope);
          throw new Diagnostic(`tensor '${tname}' in ${info.file}: expected shape [${shape.join(", ")}], found [${info.shape.join(", ")}]${inputs ? ` (${inputs})` : ""}`, item.span, { code: "WF305" });
        }
        if (!this.params.has(tname)) {
          const weights = this.weights;
          this.params.set(tname, lazyParam(tname, shape, () => weights.read(tname)));
        }
        ref = { name: tname, shape };
      } else if (item.fallback) {
        const fb = this.globals.get(item.fallback);
        if (!fb || typeof fb !== "object" || fb.kind !== "param")
          throw new Diagnostic(`fallback '${item.fallback}' for missing tensor '${tname}' must be a parameter declared before it`, item.span, { code: "WF208" });
        if (fb.shape.join() !== shape.join()) throw new Diagnostic(`fallback '${item.fallback}' is [${fb.shape.join(", ")}], expected [${shape.join(", ")}]`, item.span, { code: "WF305" });
        ref = { name: fb.name, shape };
      } else {
        throw new Diagnostic(`missing tensor '${tname}' in ${this.weights.description}`, item.span, { code: "WF401" });
      }
      if (item.indexed) {
        if (index === undefined) throw new Diagnostic(`'${item.name}[…]' is declared outside a for loop`, item.span, { code: "WF208" });
        let arr = this.globals.get(item.name);
        if (arr === undefined) this.globals.define(item.name, (arr = { kind: "params", name: item.name, items: new Map() }));
        if (typeof arr !== "object" || arr.kind !== "params") throw new Diagnostic(`'${item.name}' is already declared`, item.span, { code: "WF207" });
        if (arr.items.has(index)) throw new Diagnostic(`'${item.name}[${index}]' is already declared`, item.span, { code: "WF207" });
        arr.items.set(index, ref);
      } else {
        if (this.globals.has(item.name)) throw new Diagnostic(`'${item.name}' is already declared`, item.span, { code: "WF207" });
        this.globals.define(item.name, { kind: "param", ...ref });
      }
      this.opts.onProgress?.(++done, Math.max(total, done), tname);
    }
    if (done < total) this.opts.onProgress?.(done, done, "");
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
        case "image": {
          // one image a call: pixel values [1, channels, height, width]
          const dims = inp.shape.map((x) => this.int(x, scope));
          const bad = inp.shape.find((_, i) => dims[i] < 1);
          if (bad) throw new Diagnostic(`an image dimension should be at least 1, found ${dims[inp.shape.indexOf(bad)]}${this.origins([bad], scope) ? ` (${this.origins([bad], scope)})` : ""}`, bad.span, { code: "WF210" });
          attrs = { name: inp.name, kind: inp.kind, dtype: "f32", shape: [1, ...dims] };
          break;
        }
        default:
          throw new Diagnostic(`unknown input kind '${inp.kind}' (use tokens, segments, padding, state[...] or image[channels, height, width])`, inp.span, { code: "WF208" });
      }
      scope.define(inp.name, { kind: "tensor", id: this.node("input", [], attrs, loc) });
    }
    this.execBody(e.body, scope);
    this.returned = undefined;
    if (!this.g.outputs.length) throw new Diagnostic(`entry '${e.name}' has no output`, e.span, { code: "WF208" });
    return this.g.build();
  }

  /** A new KV cache key for a cached attention of the entry being elaborated. */
  cacheSlot(): string {
    return `${this.g.name}.${this.cacheSlots++}`;
  }

  typeOf(id: number): TensorType {
    return this.g.type(id);
  }

  /** Adds an IR node, turning shape-rule failures into diagnostics at the DSL span; graph and tensor sizes are capped. */
  node(op: string, args: number[], attrs: Record<string, unknown>, span: Span): number {
    let id: number;
    try {
      id = this.g.add(op, args, attrs as never, span);
    } catch (e) {
      if (e instanceof IRError) throw new Diagnostic(e.message, span, { code: "WF209" });
      throw e;
    }
    if (this.g.nodes.length > MAX_NODES)
      throw new Diagnostic(`entry '${this.g.name}' needs more than ${MAX_NODES} operations`, span, { code: "WF213" });
    const n = this.elements(this.g.type(id));
    if (n > MAX_ELEMENTS) {
      const shape = this.g.type(id).shape.join(", ");
      throw new Diagnostic(`${op} gives a tensor [${shape}] of ${n} elements at context ${this.context}, more than ${MAX_ELEMENTS}`, span, { code: "WF213" });
    }
    return id;
  }

  tensor(v: Value, span: Span, what = "operand"): number {
    if (typeof v === "object" && v.kind === "tensor") return v.id;
    if (typeof v === "object" && v.kind === "param") return this.node("param", [], { name: v.name, shape: v.shape }, span);
    throw new Diagnostic(`${what} should be a tensor, found ${describe(v)}`, span, { code: "WF204" });
  }

  // ---- statements ----------------------------------------------------------------------

  private execBody(stmts: Stmt[], scope: Scope) {
    for (const s of stmts) {
      if (this.returned !== undefined) return;
      this.exec(s, scope);
    }
  }

  /** Counts one level of recursion against MAX_DEPTH; the caller undoes it when the level returns. */
  private enter(span: Span) {
    if (++this.depth <= MAX_DEPTH) return;
    const chain = this.calls.length ? ` (in ${this.calls.length > 6 ? [...this.calls.slice(0, 3), "…", ...this.calls.slice(-3)].join(" → ") : this.calls.join(" → ")})` : "";
    throw new Diagnostic(`statements and expressions nested deeper than ${MAX_DEPTH} levels, counted through block calls${chain}`, span, { code: "WF212" });
  }

  private exec(s: Stmt, scope: Scope) {
    this.enter(s.span);
    this.execStmt(s, scope);
    this.depth--;
  }

  private execStmt(s: Stmt, scope: Scope) {
    switch (s.kind) {
      case "let": {
        const v = this.eval(s.value, scope);
        if (s.names.length === 1) return scope.define(s.names[0].name, v);
        if (typeof v !== "object" || v.kind !== "tuple" || v.items.length !== s.names.length) {
          const what = typeof v === "object" && v.kind === "tuple" ? `a tuple of ${v.items.length}` : describe(v);
          throw new Diagnostic(`cannot unpack ${what} into ${s.names.length} names`, s.span, { code: "WF204" });
        }
        return s.names.forEach((n, i) => scope.define(n.name, v.items[i]));
      }
      case "assign": {
        const done = scope.assign(s.name, this.eval(s.value, scope));
        if (done === "global") throw new Diagnostic(`'${s.name}' belongs to the model (config, weights or block) and cannot be reassigned; declare a local with 'let'`, s.span, { code: "WF206" });
        if (!done) throw new Diagnostic(`'${s.name}' is not declared (use 'let')`, s.span, { code: "WF206" });
        return;
      }
      case "for": {
        const [from, to] = this.loopBounds(s, scope);
        for (let i = from; i < to && this.returned === undefined; i++) {
          this.step(s.span);
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
        this.g.output(s.name, this.tensor(this.eval(s.value, scope), s.value.span, `output '${s.name}'`));
        return;
    }
  }

  callBlock(decl: BlockDecl, args: Value[], span: Span): Value {
    if (args.length !== decl.params.length)
      throw new Diagnostic(`block '${decl.name}' takes ${decl.params.length} arguments, got ${args.length}`, span, { code: "WF203" });
    this.step(span);
    if (this.calls.length >= MAX_CALL_DEPTH) {
      const chain = [...this.calls.slice(0, 3), "…", ...this.calls.slice(-2), decl.name].join(" → ");
      throw new Diagnostic(`block calls nested deeper than ${MAX_CALL_DEPTH}: ${chain}`, span, { code: "WF212" });
    }
    const scope = new Scope(this.globals);
    decl.params.forEach((p, i) => scope.define(p, args[i]));
    const saved = this.returned;
    this.returned = undefined;
    this.calls.push(decl.name);
    this.execBody(decl.body, scope);
    this.calls.pop();
    const r = this.returned;
    this.returned = saved;
    if (r === undefined) throw new Diagnostic(`block '${decl.name}' returns nothing`, decl.span, { code: "WF208" });
    return r;
  }

  // ---- expressions ---------------------------------------------------------------------

  int(e: Expr, scope: Scope): number {
    const v = this.eval(e, scope);
    if (typeof v !== "number" || !Number.isSafeInteger(v)) {
      const inputs = typeof v === "number" ? this.origins([e], scope) : "";
      throw new Diagnostic(`expected an integer, found ${typeof v === "number" ? v : describe(v)}${inputs ? ` (${inputs})` : ""}`, e.span, { code: "WF204" });
    }
    return v;
  }

  truthy(e: Expr, scope: Scope): boolean {
    const v = this.eval(e, scope);
    if (typeof v !== "boolean") throw new Diagnostic(`condition should be a bool, found ${describe(v)}`, e.span, { code: "WF204" });
    return v;
  }

  eval(e: Expr, scope: Scope): Value {
    this.enter(e.span);
    const v = this.evalExpr(e, scope);
    this.depth--;
    return v;
  }

  private evalExpr(e: Expr, scope: Scope): Value {
    switch (e.kind) {
      case "num":
      case "str":
      case "bool":
        return e.value;
      case "list":
        return { kind: "tuple", items: e.items.map((x) => this.eval(x, scope)) };
      case "ident": {
        const v = scope.get(e.name);
        if (v === undefined) throw new Diagnostic(`'${e.name}' is not defined`, e.span, { code: "WF201" });
        return v;
      }
      case "index": {
        const t = this.eval(e.target, scope);
        const i = this.eval(e.index, scope);
        if (typeof t === "object" && t.kind === "params") {
          if (typeof i !== "number") throw new Diagnostic(`index of '${t.name}' should be a layer number, found ${describe(i)}`, e.index.span, { code: "WF204" });
          const p = t.items.get(i);
          if (!p) throw new Diagnostic(`'${t.name}[${i}]' was not declared`, e.span, { code: "WF201" });
          return { kind: "param", ...p };
        }
        if (typeof t === "object" && t.kind === "tuple") {
          if (typeof i !== "number") throw new Diagnostic(`index of a tuple should be a number, found ${describe(i)}`, e.index.span, { code: "WF204" });
          if (!Number.isInteger(i) || i < 0 || i >= t.items.length) throw new Diagnostic(`index ${i} is out of range (a tuple of ${t.items.length})`, e.index.span, { code: "WF210" });
          return t.items[i];
        }
        // table[ids] is an embedding lookup
        return { kind: "tensor", id: this.node("embedding", [this.tensor(t, e.target.span, "indexed value"), this.tensor(i, e.index.span, "index")], {}, e.span) };
      }
      case "unary": {
        const v = this.eval(e.operand, scope);
        if (e.op === "!") {
          if (typeof v !== "boolean") throw new Diagnostic(`'!' needs a bool, found ${describe(v)}`, e.span, { code: "WF204" });
          return !v;
        }
        if (typeof v === "number") return -v;
        return { kind: "tensor", id: this.node("scale", [this.tensor(v, e.span)], { by: -1 }, e.span) };
      }
      case "binary":
        return binary(this, e, this.eval(e.left, scope), this.eval(e.right, scope));
      case "call": {
        const f = scope.get(e.callee);
        const args = e.args.map((a) => this.eval(a, scope));
        if (f !== undefined) {
          if (typeof f === "object" && f.kind === "block") {
            if (e.named.length) throw new Diagnostic(`blocks take positional arguments only`, e.named[0].span, { code: "WF203" });
            return this.callBlock(f.decl, args, e.span);
          }
          throw new Diagnostic(`'${e.callee}' is ${describe(f)}, not a function`, e.span, { code: "WF204" });
        }
        const b = Object.hasOwn(builtins, e.callee) ? builtins[e.callee] : undefined;
        if (!b) throw new Diagnostic(`unknown function '${e.callee}'`, e.span, { code: "WF202" });
        const named = e.named.map((n) => ({ name: n.name, value: this.eval(n.value, scope), span: n.span }));
        return b.run(this, bindArgs(e.callee, b, this, { args, argSpans: e.args.map((a) => a.span), named, span: e.span }));
      }
    }
  }
}

export function elaborate(model: ModelDecl, hfConfig: Record<string, unknown>, weights: WeightSource, opts?: ElaborateOptions): Program {
  return new Elaborator(model, hfConfig, weights, opts).run();
}
