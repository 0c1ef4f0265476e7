// The DSL's syntax tree. Every node carries the span it came from.

import type { Span } from "../diagnostics.js";

export type Expr =
  | { kind: "num"; value: number; isInt: boolean; span: Span }
  | { kind: "str"; value: string; span: Span }
  | { kind: "bool"; value: boolean; span: Span }
  | { kind: "ident"; name: string; span: Span }
  | { kind: "list"; items: Expr[]; span: Span }
  | { kind: "call"; callee: string; args: Expr[]; named: { name: string; value: Expr; span: Span }[]; span: Span }
  | { kind: "index"; target: Expr; index: Expr; span: Span }
  | { kind: "unary"; op: string; operand: Expr; span: Span }
  | { kind: "binary"; op: string; left: Expr; right: Expr; span: Span };

export type Stmt =
  | { kind: "let"; names: { name: string; span: Span }[]; value: Expr; span: Span }
  | { kind: "assign"; name: string; value: Expr; span: Span }
  | { kind: "for"; variable: string; from: Expr; to: Expr; body: Stmt[]; span: Span }
  | { kind: "if"; cond: Expr; then: Stmt[]; else: Stmt[]; span: Span }
  | { kind: "return"; value: Expr; span: Span }
  | { kind: "output"; name: string; value: Expr; span: Span };

export interface ConfigField {
  kind: "field";
  name: string;
  type: "int" | "float" | "bool" | "string" | "float[]";
  /** config.json keys, the first present one read; a dotted key reads a nested object's field. */
  keys: string[];
  /** Bounds the value must lie within: `in lo..hi` (hi excluded) or `in lo..=hi`. */
  range?: { lo: Expr; hi: Expr; inclusive: boolean; span: Span };
  value?: Expr;
  span: Span;
}

/** `require cond;` in a config block: a condition the config values must meet. */
export interface ConfigRequire {
  kind: "require";
  cond: Expr;
  span: Span;
}

export type ConfigItem = ConfigField | ConfigRequire;

/** The expressions of a config item, in source order. */
export const configExprs = (c: ConfigItem): Expr[] =>
  c.kind === "require" ? [c.cond] : [...(c.range ? [c.range.lo, c.range.hi] : []), ...(c.value ? [c.value] : [])];

export type WeightItem =
  | { kind: "param"; name: string; indexed: boolean; shape: Expr[]; source: string; fallback?: string; cond?: Expr; span: Span }
  | { kind: "for"; variable: string; from: Expr; to: Expr; items: WeightItem[]; span: Span };

export interface WeightsDecl {
  prefixes: { value: string; optional: boolean; span: Span }[];
  items: WeightItem[];
  span: Span;
}

export interface BlockDecl {
  name: string;
  params: string[];
  body: Stmt[];
  span: Span;
}

export interface EntryInput {
  name: string;
  kind: string;
  shape: Expr[];
  span: Span;
}

export interface EntryDecl {
  name: string;
  inputs: EntryInput[];
  body: Stmt[];
  span: Span;
}

export interface ModelDecl {
  file: string;
  name: string;
  config: ConfigItem[];
  weights: WeightsDecl[];
  blocks: BlockDecl[];
  entries: EntryDecl[];
  span: Span;
}

/** Binding strength of the binary operators, as the parser folds them. */
const strength: Record<string, number> = {
  "||": 1, "&&": 2, "==": 3, "!=": 3, "<=": 3, ">=": 3, "<": 3, ">": 3, "+": 4, "-": 4, "*": 5, "/": 5, "@": 5, "%": 5,
};

/** An expression as DSL text for a message, with the brackets its operators need; cut to `max` characters. */
export function formatExpr(e: Expr, max = 80): string {
  const text = format(e);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function format(e: Expr): string {
  switch (e.kind) {
    case "num": return String(e.value);
    case "str": return JSON.stringify(e.value);
    case "bool": return String(e.value);
    case "ident": return e.name;
    case "list": return `[${e.items.map(format).join(", ")}]`;
    case "call": return `${e.callee}(${[...e.args.map(format), ...e.named.map((n) => `${n.name}: ${format(n.value)}`)].join(", ")})`;
    case "index": return `${operand(e.target)}[${format(e.index)}]`;
    case "unary": return `${e.op}${operand(e.operand)}`;
    case "binary": {
      const s = strength[e.op];
      const side = (x: Expr, tighter: boolean) => (x.kind === "binary" && (tighter ? strength[x.op] <= s : strength[x.op] < s) ? `(${format(x)})` : format(x));
      return `${side(e.left, false)} ${e.op} ${side(e.right, true)}`;
    }
  }
}

/** An operand of a prefix or postfix operator: bracketed unless a primary. */
const operand = (e: Expr) => (e.kind === "binary" || e.kind === "unary" ? `(${format(e)})` : format(e));

/** Whether a statement list returns on every path. */
export function alwaysReturns(stmts: Stmt[]): boolean {
  return stmts.some((s) => s.kind === "return" || (s.kind === "if" && alwaysReturns(s.then) && alwaysReturns(s.else)));
}

/** Every statement of a body, nested ones included, with an explicit stack. */
export function* statements(stmts: Stmt[]): Generator<Stmt> {
  const stack = [...stmts].reverse();
  while (stack.length) {
    const s = stack.pop()!;
    yield s;
    if (s.kind === "for") stack.push(...[...s.body].reverse());
    if (s.kind === "if") stack.push(...[...s.then, ...s.else].reverse());
  }
}

/** The expressions a statement evaluates itself (not those of nested statements). */
export function exprsOf(s: Stmt): Expr[] {
  switch (s.kind) {
    case "let": case "assign": case "return": case "output": return [s.value];
    case "for": return [s.from, s.to];
    case "if": return [s.cond];
  }
}

/** The calls in an expression, by callee name. */
export function callsIn(e: Expr, out: { callee: string; span: Span }[]): void {
  switch (e.kind) {
    case "call":
      out.push({ callee: e.callee, span: e.span });
      e.args.forEach((a) => callsIn(a, out));
      e.named.forEach((n) => callsIn(n.value, out));
      break;
    case "list": e.items.forEach((x) => callsIn(x, out)); break;
    case "index": callsIn(e.target, out); callsIn(e.index, out); break;
    case "unary": callsIn(e.operand, out); break;
    case "binary": callsIn(e.left, out); callsIn(e.right, out); break;
  }
}

/** Whether an expression mentions any of `names`. */
export function mentions(e: Expr, names: ReadonlySet<string>): boolean {
  switch (e.kind) {
    case "num": case "str": case "bool": return false;
    case "ident": return names.has(e.name);
    case "list": return e.items.some((x) => mentions(x, names));
    case "call": return names.has(e.callee) || e.args.some((x) => mentions(x, names)) || e.named.some((n) => mentions(n.value, names));
    case "index": return mentions(e.target, names) || mentions(e.index, names);
    case "unary": return mentions(e.operand, names);
    case "binary": return mentions(e.left, names) || mentions(e.right, names);
  }
}

/** The names an expression reads, in order, each once. */
export function namesIn(e: Expr, out: string[] = []): string[] {
  switch (e.kind) {
    case "ident": if (!out.includes(e.name)) out.push(e.name); break;
    case "list": e.items.forEach((x) => namesIn(x, out)); break;
    case "call": e.args.forEach((x) => namesIn(x, out)); e.named.forEach((n) => namesIn(n.value, out)); break;
    case "index": namesIn(e.target, out); namesIn(e.index, out); break;
    case "unary": namesIn(e.operand, out); break;
    case "binary": namesIn(e.left, out); namesIn(e.right, out); break;
  }
  return out;
}
