// What DSL expressions evaluate to during elaboration, and the part of the elaborator that
// built-in functions use. Shared by elaborate.ts and builtins.ts, so neither imports the other's
// implementation.

import type { TensorType } from "../../ir/types.js";
import type { Span } from "../diagnostics.js";
import type { BlockDecl } from "./ast.js";

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

export const describe = (v: Value): string =>
  typeof v === "object" ? (v.kind === "tensor" ? "a tensor" : v.kind === "params" ? "a per-layer parameter" : `a ${v.kind}`) : `a ${typeof v}`;

/** What a built-in function may ask of the elaborator: adding IR nodes to the entry's graph. */
export interface BuiltinHost {
  /** Adds an IR node; a shape-rule failure is a diagnostic at `span`. */
  node(op: string, args: number[], attrs: Record<string, unknown>, span: Span): number;
  /** The IR node of a tensor value (a parameter becomes a `param` node); anything else is a diagnostic. */
  tensor(v: Value, span: Span, what?: string): number;
  typeOf(id: number): TensorType;
  /** A new KV cache key for a cached attention of the entry being elaborated. */
  cacheSlot(): string;
}

/** The names a body can see: its own, then its parents' up to the model's globals. */
export class Scope {
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
  /** Rebinds a local name; "global" for a name of the model's top scope, which is never reassigned. */
  assign(name: string, v: Value): boolean | "global" {
    if (this.vars.has(name)) {
      if (!this.parent) return "global";
      this.vars.set(name, v);
      return true;
    }
    return this.parent?.assign(name, v) ?? false;
  }
}

/** config.json's value at `key` (a dotted key reads into nested objects, a number part indexes a list); undefined where absent or null. */
export function configAt(hf: Record<string, unknown>, key: string): unknown {
  let v: unknown = hf;
  for (const part of key.split(".")) {
    if (Array.isArray(v) && /^\d+$/.test(part)) {
      v = Number(part) < v.length ? v[Number(part)] : undefined;
      continue;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v === null ? undefined : v;
}
