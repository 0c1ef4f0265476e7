// The kinds the static checker gives expressions before any config is known (what a value is,
// not its shape), how two paths' kinds join, and which builtin parameters accept which kinds.

import type { BlockDecl, Expr } from "./ast.js";
import type { ArgKind } from "./builtins.js";

/** What an expression evaluates to, as far as is known without the config. */
export type Kind =
  | { k: "int" } // an integer
  | { k: "num" } // a number, integer or not
  | { k: "bool" }
  | { k: "str" }
  | { k: "tensor" } // a tensor or a single parameter
  | { k: "params" } // a per-layer parameter, indexed by layer
  | { k: "bias" } // relative_bias(...)
  | { k: "tuple"; items?: Kind[]; of?: Kind } // items when the length is known, else `of` for every item
  | { k: "block"; decl: BlockDecl }
  | { k: "any" }; // unknown: a block parameter, or a value whose kind depends on the config

export const INT: Kind = { k: "int" }, NUM: Kind = { k: "num" }, BOOL: Kind = { k: "bool" }, STR: Kind = { k: "str" };
export const TENSOR: Kind = { k: "tensor" }, PARAMS: Kind = { k: "params" }, BIAS: Kind = { k: "bias" }, ANY: Kind = { k: "any" };

export function describeKind(t: Kind): string {
  switch (t.k) {
    case "int": return "an int";
    case "num": return "a number";
    case "bool": return "a bool";
    case "str": return "a string";
    case "tensor": return "a tensor";
    case "params": return "a per-layer parameter";
    case "bias": return "a relative bias";
    case "tuple": return t.items ? `a tuple of ${t.items.length}` : "a tuple";
    case "block": return `block '${t.decl.name}'`;
    case "any": return "a value";
  }
}

export const isAny = (t: Kind) => t.k === "any";
export const isNum = (t: Kind) => t.k === "int" || t.k === "num" || isAny(t);
export const isTensor = (t: Kind) => t.k === "tensor" || isAny(t);
export const isBool = (t: Kind) => t.k === "bool" || isAny(t);
export const isScalar = (t: Kind) => isNum(t) || t.k === "bool" || t.k === "str";

/** The kind of a value that is `a` on one path and `b` on another. */
export function join(a: Kind, b: Kind): Kind {
  if (a.k === b.k) {
    if (a.k === "block") return a.decl === (b as typeof a).decl ? a : ANY;
    if (a.k === "tuple") return a.items?.length === (b as typeof a).items?.length ? a : { k: "tuple" };
    return a;
  }
  if (isNum(a) && isNum(b) && !isAny(a) && !isAny(b)) return NUM;
  return ANY;
}

/** Whether a builtin's parameter of `kind` can take a value of kind `t`. */
export function accepts(kind: ArgKind, t: Kind): boolean {
  if (isAny(t)) return true;
  switch (kind) {
    case "tensor": return t.k === "tensor";
    case "number": case "int": return isNum(t);
    case "bool": return t.k === "bool";
    case "string": return t.k === "str";
    case "numbers": return t.k === "tuple";
    case "bias": return t.k === "bias";
    case "parts": return isNum(t) || t.k === "tuple";
    case "dims": return t.k === "tuple";
  }
}
export const argWords: Record<ArgKind, string> = {
  tensor: "a tensor", number: "a number", int: "an integer", bool: "true or false", string: "a string", numbers: "a list of numbers", bias: "relative_bias(...)", parts: "a count or a list of widths", dims: "a list of integers",
};

/** A number written in the source (`3`, `-1.5`), or undefined. */
export function literal(e: Expr): number | undefined {
  if (e.kind === "num") return e.value;
  if (e.kind === "unary" && e.op === "-" && e.operand.kind === "num") return -e.operand.value;
  return undefined;
}

export class Scope {
  private readonly vars = new Map<string, Kind>();
  constructor(readonly parent?: Scope) {}
  get(name: string): Kind | undefined {
    return this.vars.get(name) ?? this.parent?.get(name);
  }
  define(name: string, t: Kind) {
    this.vars.set(name, t);
  }
  /** The scope that declares `name`, if any. */
  owner(name: string): Scope | undefined {
    return this.vars.has(name) ? this : this.parent?.owner(name);
  }
  set(name: string, t: Kind) {
    this.vars.set(name, t);
  }
}

