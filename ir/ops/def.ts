// What an op definition holds (ir/ops.ts is the table of them): its attribute schema, operand
// count and roles, traits, shape/dtype rule and reference semantics (the interpreter).

import type { AttrsOf, Schema } from "../attrs.js";
import { type Dim, type Node, type Shape, type TensorType, formatType, sameShape } from "../types.js";

export type Value = Float32Array | Int32Array;

/** Run-time state the reference semantics need: past length and the KV caches. */
export interface InterpState {
  past: number;
  context: number;
  /** Per cached attention node (keyed "graph:node"), keys and values for `context` rows. */
  caches: Map<string, { k: Float32Array; v: Float32Array }>;
  graph: string;
  params: (name: string) => Float32Array;
  inputs: (name: string) => Value;
  /** Computes as the relaxed-SIMD module does where the IR lets modules differ (ir/quant.ts integerPath). */
  relaxed: boolean;
}

/** A shape or dtype rule that failed (the graph builder reports it as an IRError at the node's source). */
export class ShapeError extends Error {}

/**
 * What an operand is to its op. activation: a value computed per call; weight: a matrix [N, K]
 * the matrix kernels read in their packed layout (and quantize-weights may quantize); table: an
 * embedding table (read in either layout); bias: added to the result (a vector, or attention's
 * relative-position table); gain: a norm's per-column scale; residual: added after a fused
 * epilogue; ids: token ids; mask: a 0/1 padding mask; sequences: each row's sequence bounds
 * (an input of kind "sequences").
 */
export type Role = "activation" | "weight" | "table" | "bias" | "gain" | "residual" | "ids" | "mask" | "sequences";

/** Row r's sequence [first, end) from a "sequences" operand (i32[rows, 2]); the whole call without one. */
export const sequenceOf = (seq: Value | undefined, r: number, rows: number): [number, number] => (seq ? [seq[2 * r], seq[2 * r + 1]] : [0, rows]);

/** The shape rule of a "sequences" operand beside rows of `what`. */
export function expectSequences(t: TensorType | undefined, rows: Dim, what: string): void {
  expect(t !== undefined && t.dtype === "i32" && t.shape.length === 2 && t.shape[1] === 2 && t.shape[0] === rows, `${what}: sequences must be i32[${rows}, 2], got ${t ? formatType(t) : "none"}`);
}

/**
 * pure: the result depends on the operands only (no input, past length or cache), so it can be
 * computed once ahead of calls and shared by identical nodes; effects: writes state (a KV cache),
 * so two identical nodes stay two; rowwise: row i of the result depends on row i of each operand
 * with the call's rows alone; elementwise: each value depends on the same position of the operands;
 * fusible: an activation a matrix kernel's epilogue applies (linear's attr act).
 */
export type Trait = "pure" | "effects" | "rowwise" | "elementwise" | "fusible";

/** A function of an op's attributes, compared bivariantly so that every OpDef<S> is an OpDef. */
type OfAttrs<A, Args extends unknown[], R> = { of(a: A, ...rest: Args): R }["of"];

export interface OpDef<S extends Schema = Schema> {
  readonly attrs: S;
  /** Operand count: exact, or [min, max]. */
  readonly arity: number | readonly [number, number];
  /** Each operand's role, in order (for `count` operands, where that and the attributes decide). */
  readonly roles: readonly Role[] | OfAttrs<AttrsOf<S>, [count: number], readonly Role[]>;
  readonly traits: readonly Trait[] | OfAttrs<AttrsOf<S>, [], readonly Trait[]>;
  /** The shape and dtype rule: throws ShapeError for operands or attributes the op does not accept. */
  infer(args: readonly TensorType[], attrs: AttrsOf<S>): TensorType;
  /** The reference semantics. */
  interp(args: readonly Value[], attrs: AttrsOf<S>, node: Node, types: readonly TensorType[], st: InterpState): Value;
}

/** An op definition, its attributes typed by its schema. */
export const defineOp = <S extends Schema>(def: OpDef<S>): OpDef<S> => def;

export function rolesOf<S extends Schema>(def: OpDef<S>, attrs: AttrsOf<S>, count: number): readonly Role[] {
  return typeof def.roles === "function" ? def.roles(attrs, count) : def.roles;
}
export function traitsOf<S extends Schema>(def: OpDef<S>, attrs: AttrsOf<S>): readonly Trait[] {
  return typeof def.traits === "function" ? def.traits(attrs) : def.traits;
}

/** The operand of `role` among `xs` (operands, their types or values), in a role list; the first where several share it. */
export function operand<T>(roles: readonly Role[], xs: readonly T[], role: Role): T | undefined {
  const i = roles.indexOf(role);
  return i < 0 ? undefined : xs[i];
}

export const f32 = (shape: Shape): TensorType => ({ dtype: "f32", shape });

export function expect(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new ShapeError(msg);
}
export function expectF32(t: TensorType, what: string) {
  expect(t.dtype === "f32", `${what} must be f32, got ${formatType(t)}`);
}
export function lastDim(t: TensorType): number {
  const d = t.shape[t.shape.length - 1];
  expect(typeof d === "number", `last dimension of ${formatType(t)} must be static`);
  return d;
}

/** Shapes broadcast when they are equal or when b is a trailing part of a. */
export function broadcast(a: TensorType, b: TensorType): TensorType {
  expectF32(a, "left operand");
  expectF32(b, "right operand");
  // leading 1s of b broadcast too (a [1, V] bias row onto [S, V])
  let bs = b.shape;
  while (bs.length > 1 && bs[0] === 1 && !sameShape(a.shape.slice(a.shape.length - bs.length), bs)) bs = bs.slice(1);
  const tail = a.shape.slice(a.shape.length - bs.length);
  expect(bs.length <= a.shape.length && sameShape(tail, bs), `cannot broadcast ${formatType(b)} onto ${formatType(a)}`);
  return a;
}
