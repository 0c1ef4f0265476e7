// The op table: every IR op is defined once (in ir/ops/, by family) with its attribute schema,
// operand roles, traits, shape/dtype rule and reference semantics. Passes, codegen and the
// exporters ask the table what an operand or an op is. Lowerings to wasm live in
// compiler/codegen/lower.ts, keyed by the same OpKind, so a missing lowering is a type error there.

import type { AttrsOf } from "./attrs.js";
import { attentionOps } from "./ops/attention.js";
import { type OpDef, type Role, type Trait, rolesOf, traitsOf } from "./ops/def.js";
import { disentangledAttentionOps } from "./ops/disentangled-attention.js";
import { elementwiseOps } from "./ops/elementwise.js";
import { matrixOps } from "./ops/matrix.js";
import { normOps } from "./ops/norm.js";
import { patchOps } from "./ops/patches.js";
import { ropeOps } from "./ops/rope.js";
import { tensorOps } from "./ops/tensor.js";
import type { Node } from "./types.js";

export { cacheKey } from "./ops/attention.js";
export { sinusoidTable } from "./ops/tensor.js";
export { type RopeAttrs, ropeFrequencies, ropeLong, ropeTable } from "./ops/rope.js";
export { type Activation, activations, geluErf, geluTanh } from "./ops/elementwise.js";
export { type InterpState, type OpDef, type Role, ShapeError, type Trait, type Value } from "./ops/def.js";

/** Every IR op, by name. */
export type OpKind =
  | "input" | "param" | "positions" | "sinusoidal_positions" | "embedding"
  | "linear" | "gated_linear" | "matmul"
  | "transpose" | "reshape" | "first_row" | "last_row" | "slice" | "patches" | "concat"
  | "add" | "mul" | "scale" | "softcap" | "gelu" | "gelu_tanh" | "silu" | "relu"
  | "layernorm" | "rmsnorm" | "softmax"
  | "rope" | "attention" | "disentangled_attention";

export const ops = { ...tensorOps, ...patchOps, ...matrixOps, ...elementwiseOps, ...normOps, ...ropeOps, ...attentionOps, ...disentangledAttentionOps } satisfies Record<OpKind, OpDef>;
// ...and nothing is defined that OpKind does not name
const undeclared: Record<Exclude<keyof typeof ops, OpKind>, never> = {};
void undeclared;

export const opKinds = Object.keys(ops) as OpKind[];

export function opDef(kind: string): OpDef {
  const d = (ops as Record<string, OpDef>)[kind];
  if (!d) throw new Error(`unknown op '${kind}'`);
  return d;
}

/** The attributes of op K, typed by its schema. */
export type OpAttrs<K extends OpKind> = AttrsOf<(typeof ops)[K]["attrs"]>;
/** A node of op K. */
export interface OpNode<K extends OpKind> extends Node {
  readonly op: K;
  readonly attrs: OpAttrs<K>;
}

/** Whether n is a node of op `kind` (its attributes then typed). */
export function isOp<K extends OpKind>(n: Node, kind: K): n is OpNode<K> {
  return n.op === kind;
}

/** n's attributes as op `kind` declares them (n must be of that op; the verifier checked them). */
export function attrsOf<K extends OpKind>(n: Node, kind: K): OpAttrs<K> {
  if (n.op !== kind) throw new Error(`internal: %${n.id} is ${n.op}, not ${kind}`);
  return n.attrs as OpAttrs<K>;
}

/** The role of each of n's operands, in order. */
export function roles(n: Node): readonly Role[] {
  return rolesOf(opDef(n.op), n.attrs, n.args.length);
}

/** n's operands of `role`, in order (e.g. both weights of a gated_linear). */
export function operandsOf(n: Node, role: Role): number[] {
  const r = roles(n);
  return n.args.filter((_, i) => r[i] === role);
}

/** n's (first) operand of `role`, or undefined where it has none. */
export function operandOf(n: Node, role: Role): number | undefined {
  return operandsOf(n, role)[0];
}

export function hasTrait(n: Node, trait: Trait): boolean {
  return traitsOf(opDef(n.op), n.attrs).includes(trait);
}
