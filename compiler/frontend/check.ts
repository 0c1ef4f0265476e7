// Static checks of a whole model, run on the syntax tree before elaboration and independent of
// any checkpoint: every name is resolved and every expression given a kind in both branches of
// every `if`, in every block (called or not), in weight templates and conditions; calls are
// checked against block arities and the builtins' declared signatures; blocks that call
// themselves, directly or through others, are found from the call graph. The elaborator still
// checks what depends on config values (shapes, integer bounds, tuple lengths).

import { type Code, Diagnostic, DiagnosticList, type Span } from "../diagnostics.js";
import { type BlockDecl, type ConfigField, type EntryDecl, type Expr, type ModelDecl, type Stmt, type WeightItem, alwaysReturns, callsIn, exprsOf, formatExpr, statements } from "./ast.js";
import { type BuiltinDef, builtins, positionalParams } from "./builtins.js";
import { ANY, BIAS, BOOL, INT, type Kind, NUM, PARAMS, STR, Scope, TENSOR, accepts, argWords, describeKind, isAny, isBool, isNum, isScalar, isTensor, join, literal } from "./kinds.js";


/** Where a body is: a block (whose returns are collected) or an entry. */
interface Frame {
  block?: BlockDecl;
  returns: Kind[];
}

export class Checker {
  readonly diagnostics: Diagnostic[] = [];
  private readonly globals = new Scope();
  private readonly blockReturns = new Map<BlockDecl, Kind>();

  constructor(readonly model: ModelDecl) {}

  private error(message: string, span: Span, code: Code) {
    this.diagnostics.push(new Diagnostic(message, span, { code }));
  }

  run(): Diagnostic[] {
    this.checkConfig();
    this.globals.define("context", INT);
    const weights = new Map<string, { indexed: boolean; conditions: Set<string> }>();
    for (const w of this.model.weights) this.checkWeights(w.items, this.globals, false, weights);
    const blocks = this.declareBlocks();
    for (const b of this.blockOrder(blocks)) this.checkBlock(b);
    this.checkEntries();
    return this.diagnostics.sort((a, b) => a.span!.line - b.span!.line || a.span!.col - b.span!.col);
  }

  // ---- declarations --------------------------------------------------------------------

  private checkConfig() {
    for (const c of this.model.config) {
      if (c.kind === "require") {
        const t = this.expr(c.cond, this.globals);
        if (!isBool(t)) this.error(`a requirement should be a bool, found ${describeKind(t)}`, c.cond.span, "WF204");
        continue;
      }
      this.checkConfigField(c);
    }
  }

  private checkConfigField(f: ConfigField) {
    const kinds: Record<string, Kind> = { int: INT, float: NUM, bool: BOOL, string: STR, "float[]": { k: "tuple" } };
    const kind = kinds[f.type];
    if (!kind) this.error(`unknown config type '${f.type}' (use int, float, bool, string or float[])`, f.span, "WF208");
    if (f.range) {
      if (kind && !isNum(kind) && f.type !== "float[]") this.error(`a range needs an int, float or float[] field, not ${f.type}`, f.range.span, "WF204");
      for (const e of [f.range.lo, f.range.hi]) {
        const t = this.expr(e, this.globals);
        if (!isNum(t)) this.error(`a bound of '${f.name}' should be a number, found ${describeKind(t)}`, e.span, "WF204");
      }
    }
    if (f.value) {
      const t = this.expr(f.value, this.globals);
      const fits = !kind || isAny(t) || (isNum(kind) ? isNum(t) : t.k === kind.k);
      if (!fits) this.error(`the default of '${f.name}' should be ${describeKind(kind!)}, found ${describeKind(t)}`, f.value.span, "WF204");
    }
    if (f.name === "context") this.error(`'context' is the compiled context length; a config field cannot take its name`, f.span, "WF207");
    else if (this.globals.get(f.name)) this.error(`config field '${f.name}' is already declared`, f.span, "WF207");
    if (f.name === "max_context" && kind && kind.k !== "int") this.error(`'max_context' should be an int field`, f.span, "WF204");
    this.globals.define(f.name, kind ?? ANY);
  }

  private checkWeights(items: WeightItem[], scope: Scope, inLoop: boolean, declared: Map<string, { indexed: boolean; conditions: Set<string> }>) {
    // an indexed parameter may be declared in several loops, but in one loop only once per condition
    const indexedHere = new Map<string, Set<string>>();
    for (const it of items) {
      if (it.kind === "for") {
        this.loopBound(it.from, scope);
        this.loopBound(it.to, scope);
        const inner = new Scope(scope);
        inner.define(it.variable, INT);
        this.checkWeights(it.items, inner, true, declared);
        continue;
      }
      for (const d of it.shape) {
        const t = this.expr(d, scope);
        if (!isNum(t)) this.error(`a dimension should be an integer, found ${describeKind(t)}`, d.span, "WF204");
      }
      if (it.cond) this.condition(it.cond, scope);
      for (const [, v] of it.source.matchAll(/\{(\w+)\}/g)) {
        const t = scope.get(v);
        if (!t) this.error(`'{${v}}' in a tensor name is not defined (use a loop variable or config value)`, it.span, "WF201");
        else if (!isScalar(t) && !isAny(t)) this.error(`'{${v}}' in a tensor name must be a loop variable or config value, found ${describeKind(t)}`, it.span, "WF204");
      }
      if (it.fallback !== undefined) {
        const fb = declared.get(it.fallback);
        if (!fb || fb.indexed) this.error(`fallback '${it.fallback}' must be a parameter declared before it`, it.span, "WF208");
      }
      if (it.indexed && !inLoop) this.error(`'${it.name}[…]' is declared outside a for loop`, it.span, "WF208");
      // declarations of one name are alternatives only under different conditions ("" is none)
      const condition = it.cond ? formatExpr(it.cond, Infinity) : "";
      const clashes = (seen: Set<string> | undefined) => !!seen && (condition === "" || seen.has("") || seen.has(condition));
      const before = declared.get(it.name);
      if (before ? before.indexed !== it.indexed || (!it.indexed && clashes(before.conditions)) : this.globals.get(it.name))
        this.error(`'${it.name}' is already declared`, it.span, "WF207");
      else if (it.indexed && clashes(indexedHere.get(it.name))) this.error(`'${it.name}[…]' is already declared in this loop`, it.span, "WF207");
      if (it.indexed) indexedHere.set(it.name, (indexedHere.get(it.name) ?? new Set()).add(condition));
      declared.set(it.name, { indexed: it.indexed, conditions: (before?.conditions ?? new Set()).add(condition) });
      this.globals.define(it.name, it.indexed ? PARAMS : TENSOR);
    }
  }

  private declareBlocks(): BlockDecl[] {
    const seen = new Set<string>();
    for (const b of this.model.blocks) {
      if (seen.has(b.name)) this.error(`block '${b.name}' is already declared`, b.span, "WF207");
      else if (this.globals.get(b.name)) this.error(`'${b.name}' is already declared (a block cannot take the name of a config field or weight)`, b.span, "WF207");
      seen.add(b.name);
      this.globals.define(b.name, { k: "block", decl: b });
      b.params.forEach((p, i) => {
        if (b.params.indexOf(p) !== i) this.error(`block '${b.name}' has two parameters named '${p}'`, b.span, "WF207");
      });
    }
    return this.model.blocks;
  }

  /**
   * The blocks, each after the blocks it calls, so that a call's result kind is known when it
   * is checked; a call that closes a cycle is a diagnostic naming the cycle.
   */
  private blockOrder(blocks: BlockDecl[]): BlockDecl[] {
    const byName = new Map<string, BlockDecl>();
    for (const b of blocks) byName.set(b.name, b);
    const edges = new Map<BlockDecl, { to: BlockDecl; span: Span }[]>();
    for (const b of blocks) {
      // names a block binds itself shadow blocks of the same name
      const local = new Set(b.params);
      for (const s of statements(b.body)) {
        if (s.kind === "let") s.names.forEach((n) => local.add(n.name));
        if (s.kind === "for") local.add(s.variable);
      }
      const calls: { callee: string; span: Span }[] = [];
      for (const s of statements(b.body)) exprsOf(s).forEach((e) => callsIn(e, calls));
      edges.set(b, calls.filter((c) => !local.has(c.callee) && byName.get(c.callee)?.name === c.callee && this.globals.get(c.callee)?.k === "block")
        .map((c) => ({ to: byName.get(c.callee)!, span: c.span })));
    }
    // depth-first, with an explicit stack; a node is finished after everything it calls
    const state = new Map<BlockDecl, "open" | "done">();
    const order: BlockDecl[] = [];
    for (const root of blocks) {
      if (state.has(root)) continue;
      const stack: { b: BlockDecl; next: number }[] = [{ b: root, next: 0 }];
      state.set(root, "open");
      while (stack.length) {
        const top = stack[stack.length - 1];
        const out = edges.get(top.b)!;
        if (top.next === out.length) {
          state.set(top.b, "done");
          order.push(top.b);
          stack.pop();
          continue;
        }
        const { to, span } = out[top.next++];
        const st = state.get(to);
        if (st === "open") {
          const from = stack.findIndex((f) => f.b === to);
          const names = [...stack.slice(from).map((f) => f.b.name), to.name];
          const cycle = (names.length > 8 ? [...names.slice(0, 3), `… ${names.length - 6} more …`, ...names.slice(-3)] : names).join(" → ");
          const how = to === top.b ? `block '${to.name}' calls itself` : `block '${top.b.name}' calls '${to.name}', which calls it back: ${cycle}`;
          this.error(`${how} (blocks are inlined, so none may call itself)`, span, "WF205");
        } else if (st === undefined) {
          state.set(to, "open");
          stack.push({ b: to, next: 0 });
        }
      }
    }
    return order;
  }

  private checkBlock(b: BlockDecl) {
    const scope = new Scope(this.globals);
    for (const p of b.params) scope.define(p, ANY);
    const frame: Frame = { block: b, returns: [] };
    this.body(b.body, scope, frame);
    if (!alwaysReturns(b.body)) this.error(`block '${b.name}' can end without returning a value`, b.span, "WF208");
    this.blockReturns.set(b, frame.returns.length ? frame.returns.reduce(join) : ANY);
  }

  private checkEntries() {
    if (!this.model.entries.length) this.error(`model '${this.model.name}' has no entry`, this.model.span, "WF208");
    const names = new Set<string>();
    const blocksOutput = this.model.blocks.some((b) => [...statements(b.body)].some((s) => s.kind === "output"));
    for (const e of this.model.entries) {
      if (names.has(e.name)) this.error(`entry '${e.name}' is already declared`, e.span, "WF207");
      names.add(e.name);
      this.checkEntry(e);
      if (!blocksOutput && ![...statements(e.body)].some((s) => s.kind === "output")) this.error(`entry '${e.name}' has no output`, e.span, "WF208");
    }
  }

  private checkEntry(e: EntryDecl) {
    const scope = new Scope(this.globals);
    const inputs = new Set<string>();
    for (const inp of e.inputs) {
      if (inputs.has(inp.name)) this.error(`entry '${e.name}' has two inputs named '${inp.name}'`, inp.span, "WF207");
      inputs.add(inp.name);
      if (!["tokens", "segments", "padding", "state", "image"].includes(inp.kind))
        this.error(`unknown input kind '${inp.kind}' (use tokens, segments, padding, state[...] or image[channels, height, width])`, inp.span, "WF208");
      else if (inp.kind === "image" && inp.shape.length !== 3) this.error(`an image input takes three dims, image[channels, height, width], found ${inp.shape.length}`, inp.span, "WF208");
      else if (inp.kind !== "state" && inp.kind !== "image" && inp.shape.length) this.error(`a ${inp.kind} input takes no shape (only state[...] and image[...] do)`, inp.span, "WF208");
      for (const d of inp.shape) {
        const t = this.expr(d, scope);
        if (!isNum(t)) this.error(`a dimension should be an integer, found ${describeKind(t)}`, d.span, "WF204");
      }
      scope.define(inp.name, TENSOR);
    }
    this.body(e.body, scope, { returns: [] });
  }

  // ---- statements ----------------------------------------------------------------------

  private body(stmts: Stmt[], scope: Scope, frame: Frame) {
    for (const s of stmts) this.stmt(s, scope, frame);
  }

  private stmt(s: Stmt, scope: Scope, frame: Frame) {
    switch (s.kind) {
      case "let": {
        const t = this.expr(s.value, scope);
        if (s.names.length === 1) return scope.define(s.names[0].name, t);
        if (t.k === "tuple" && t.items && t.items.length !== s.names.length)
          this.error(`cannot unpack ${describeKind(t)} into ${s.names.length} names`, s.span, "WF204");
        else if (t.k !== "tuple" && !isAny(t)) this.error(`cannot unpack ${describeKind(t)} into ${s.names.length} names`, s.span, "WF204");
        return s.names.forEach((n, i) => scope.define(n.name, t.k === "tuple" ? (t.items?.[i] ?? t.of ?? ANY) : ANY));
      }
      case "assign": {
        const t = this.expr(s.value, scope);
        const owner = scope.owner(s.name);
        if (!owner) return this.error(`'${s.name}' is not declared (use 'let')`, s.span, "WF206");
        if (owner === this.globals)
          return this.error(`'${s.name}' belongs to the model (config, weights or block) and cannot be reassigned; declare a local with 'let'`, s.span, "WF206");
        return owner.set(s.name, join(owner.get(s.name)!, t));
      }
      case "for": {
        this.loopBound(s.from, scope);
        this.loopBound(s.to, scope);
        const inner = new Scope(scope);
        inner.define(s.variable, INT);
        return this.body(s.body, inner, frame);
      }
      case "if":
        this.condition(s.cond, scope);
        this.body(s.then, new Scope(scope), frame);
        return this.body(s.else, new Scope(scope), frame);
      case "return": {
        const t = this.expr(s.value, scope);
        if (!frame.block) return this.error(`'return' outside a block (an entry ends with its outputs)`, s.span, "WF208");
        frame.returns.push(t);
        return;
      }
      case "output": {
        const t = this.expr(s.value, scope);
        if (!isTensor(t)) this.error(`output '${s.name}' should be a tensor, found ${describeKind(t)}`, s.value.span, "WF204");
        return;
      }
    }
  }

  private loopBound(e: Expr, scope: Scope) {
    const t = this.expr(e, scope);
    if (!isNum(t)) this.error(`a loop bound should be an integer, found ${describeKind(t)}`, e.span, "WF204");
  }

  private condition(e: Expr, scope: Scope) {
    const t = this.expr(e, scope);
    if (!isBool(t)) this.error(`condition should be a bool, found ${describeKind(t)}`, e.span, "WF204");
  }

  // ---- expressions ---------------------------------------------------------------------

  expr(e: Expr, scope: Scope): Kind {
    switch (e.kind) {
      case "num": return e.isInt ? INT : NUM;
      case "str": return STR;
      case "bool": return BOOL;
      case "list": return { k: "tuple", items: e.items.map((x) => this.expr(x, scope)) };
      case "ident": {
        const t = scope.get(e.name);
        if (t) return t;
        this.error(`'${e.name}' is not defined`, e.span, "WF201");
        return ANY;
      }
      case "index": return this.index(e, this.expr(e.target, scope), this.expr(e.index, scope));
      case "unary": {
        const t = this.expr(e.operand, scope);
        if (e.op === "!") {
          if (!isBool(t)) this.error(`'!' needs a bool, found ${describeKind(t)}`, e.span, "WF204");
          return BOOL;
        }
        if (isNum(t) || t.k === "tensor") return t;
        this.error(`'-' needs a number or a tensor, found ${describeKind(t)}`, e.span, "WF204");
        return ANY;
      }
      case "binary": return this.binary(e, this.expr(e.left, scope), this.expr(e.right, scope));
      case "call": return this.call(e, scope);
    }
  }

  private index(e: Extract<Expr, { kind: "index" }>, t: Kind, i: Kind): Kind {
    switch (t.k) {
      case "params":
        if (!isNum(i)) this.error(`a layer index should be an integer, found ${describeKind(i)}`, e.index.span, "WF204");
        return TENSOR;
      case "tuple": {
        if (!isNum(i)) {
          this.error(`index of a tuple should be an integer, found ${describeKind(i)}`, e.index.span, "WF204");
          return ANY;
        }
        const at = literal(e.index);
        if (t.items && at !== undefined) {
          if (Number.isInteger(at) && at >= 0 && at < t.items.length) return t.items[at];
          this.error(`index ${at} is out of range (${describeKind(t)})`, e.index.span, "WF210");
          return ANY;
        }
        return t.of ?? ANY;
      }
      case "tensor":
        if (!isTensor(i)) this.error(`index should be a tensor of ids, found ${describeKind(i)}`, e.index.span, "WF204");
        return TENSOR;
      case "any":
        return ANY;
      default:
        this.error(`indexed value should be a tensor, found ${describeKind(t)}`, e.target.span, "WF204");
        return ANY;
    }
  }

  /** The operator rules of Elaborator.binary, on kinds. */
  private binary(e: Extract<Expr, { kind: "binary" }>, l: Kind, r: Kind): Kind {
    const op = e.op;
    type Case = [(t: Kind) => boolean, (t: Kind) => boolean, Kind];
    const N = isNum, T = isTensor, B = isBool;
    const arith = !isAny(l) && !isAny(r) && (l.k === "int" && r.k === "int") && op !== "/" ? INT : NUM;
    const cases: Record<string, Case[]> = {
      "==": [[() => true, () => true, BOOL]],
      "!=": [[() => true, () => true, BOOL]],
      "&&": [[B, B, BOOL]],
      "||": [[B, B, BOOL]],
      "<": [[N, N, BOOL]], ">": [[N, N, BOOL]], "<=": [[N, N, BOOL]], ">=": [[N, N, BOOL]],
      "%": [[N, N, arith]],
      "+": [[N, N, arith], [T, T, TENSOR]],
      "-": [[N, N, arith], [T, T, TENSOR]],
      "*": [[N, N, arith], [T, N, TENSOR], [N, T, TENSOR], [T, T, TENSOR]],
      "/": [[N, N, NUM], [T, N, TENSOR]],
      "@": [[T, T, TENSOR]],
    };
    const fits = (cases[op] ?? []).filter(([a, b]) => a(l) && b(r));
    if (!fits.length) {
      this.error(`'${op}' cannot combine ${describeKind(l)} and ${describeKind(r)}`, e.span, "WF204");
      return ANY;
    }
    return fits.map((c) => c[2]).reduce(join);
  }

  private call(e: Extract<Expr, { kind: "call" }>, scope: Scope): Kind {
    const args = e.args.map((a) => this.expr(a, scope));
    const named = e.named.map((n) => ({ ...n, t: this.expr(n.value, scope) }));
    const f = scope.get(e.callee);
    if (f) {
      if (f.k === "block") {
        if (e.named.length) this.error(`blocks take positional arguments only`, e.named[0].span, "WF203");
        if (args.length !== f.decl.params.length)
          this.error(`block '${f.decl.name}' takes ${f.decl.params.length} arguments, got ${args.length}`, e.span, "WF203");
        return this.blockReturns.get(f.decl) ?? ANY;
      }
      if (!isAny(f)) this.error(`'${e.callee}' is ${describeKind(f)}, not a function`, e.span, "WF204");
      return ANY;
    }
    const def = Object.hasOwn(builtins, e.callee) ? builtins[e.callee] : undefined;
    if (!def) {
      this.error(`unknown function '${e.callee}'`, e.span, "WF202");
      return ANY;
    }
    this.builtinArgs(e, def, args, named);
    switch (def.result) {
      case "tensor": return TENSOR;
      case "number": return NUM;
      case "bias": return BIAS;
      case "tuple": {
        const i = positionalParams(def).findIndex((p) => p.name === def.tupleLength);
        const src = e.named.find((n) => n.name === def.tupleLength)?.value ?? e.args[i];
        const n = src && (src.kind === "list" ? src.items.length : literal(src));
        return n !== undefined && Number.isInteger(n) && n >= 0 ? { k: "tuple", items: Array(n).fill(TENSOR) } : { k: "tuple", of: TENSOR };
      }
    }
  }

  /** A builtin call's arguments against its signature, as bindArgs checks them at elaboration. */
  private builtinArgs(e: Extract<Expr, { kind: "call" }>, def: BuiltinDef, args: Kind[], named: { name: string; value: Expr; span: Span; t: Kind }[]) {
    const fn = e.callee;
    const positional = positionalParams(def);
    if (args.length > positional.length)
      this.error(`${fn}() takes at most ${positional.length} positional arguments, got ${args.length}`, e.args[positional.length].span, "WF203");
    const given = new Map<string, { t: Kind; value: Expr }>();
    args.slice(0, positional.length).forEach((t, i) => given.set(positional[i].name, { t, value: e.args[i] }));
    for (const n of named) {
      if (!def.params.some((p) => p.name === n.name)) this.error(`${fn}() has no argument '${n.name}' (it takes ${def.params.map((p) => p.name).join(", ")})`, n.span, "WF203");
      else if (given.has(n.name)) this.error(`${fn}(): '${n.name}' is given twice`, n.span, "WF203");
      else given.set(n.name, { t: n.t, value: n.value });
    }
    for (const p of def.params) {
      const g = given.get(p.name);
      if (!g) {
        if (!p.optional && p.dflt === undefined) this.error(`${fn}() needs '${p.name}'`, e.span, "WF203");
        continue;
      }
      if (!accepts(p.kind, g.t)) {
        this.error(`${fn}(): '${p.name}' should be ${argWords[p.kind]}, found ${describeKind(g.t)}`, g.value.span, "WF204");
        continue;
      }
      const x = literal(g.value);
      if (x !== undefined && p.sign && !(p.sign === "positive" ? x > 0 : x >= 0))
        this.error(`${fn}(): '${p.name}' should be ${p.sign === "positive" ? "positive" : "non-negative"}, found ${x}`, g.value.span, "WF210");
    }
  }
}

/** Checks a parsed model; throws a DiagnosticList of every static error found. */
export function checkModel(model: ModelDecl): void {
  const diagnostics = new Checker(model).run();
  if (diagnostics.length) throw new DiagnosticList(diagnostics);
}
