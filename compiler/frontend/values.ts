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
