// Elementwise ops: the activations (also epilogues of a fused linear), binary ops with a
// broadcast right operand, scaling and soft-capping.

import { float } from "../attrs.js";
import { type OpDef, type Role, type Trait, broadcast, defineOp, expect, expectF32 } from "./def.js";

const erf = (x: number): number => {
  // Abramowitz–Stegun 7.1.26 is too coarse for a reference; use a series/continued-fraction pair.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x, term = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for the tails.
  let fcf = ax, c = ax, d = 0;
  const tiny = 1e-300;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = ax + an * d; d = d === 0 ? tiny : d; d = 1 / d;
    c = ax + an / c; c = c === 0 ? tiny : c;
    const delta = c * d;
    fcf *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / fcf;
  return Math.sign(x) * (1 - erfc);
};
export const geluErf = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

/** Elementwise activations: ops of their own (trait fusible), and epilogues a fused linear applies (attr act). */
export const activations = {
  gelu: geluErf,
  gelu_tanh: geluTanh,
  silu: (x: number) => x / (1 + Math.exp(-x)),
  relu: (x: number) => (x > 0 ? x : 0),
} satisfies Record<string, (x: number) => number>;
export type Activation = keyof typeof activations;
export const ACTIVATIONS = Object.keys(activations) as Activation[];

const ELEMENTWISE: readonly Trait[] = ["pure", "rowwise", "elementwise"];
const ONE: readonly Role[] = ["activation"];

function activation(fn: (x: number) => number) {
  return defineOp({
    attrs: {},
    arity: 1,
    roles: ONE,
    traits: [...ELEMENTWISE, "fusible"],
    infer: ([x]) => (expectF32(x, "operand"), x),
    interp: ([x]) => (x as Float32Array).map(fn),
  });
}

function binary(fn: (x: number, y: number) => number) {
  return defineOp({
    attrs: {},
    arity: 2,
    roles: ["activation", "activation"],
    traits: ELEMENTWISE,
    infer: ([a, b]) => broadcast(a, b),
    interp: ([a, b]) => {
      const out = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = fn(a[i], b[i % b.length]);
      return out;
    },
  });
}

export const elementwiseOps = {
  gelu: activation(activations.gelu),
  gelu_tanh: activation(activations.gelu_tanh),
  silu: activation(activations.silu),
  relu: activation(activations.relu),
  add: binary((x, y) => x + y),
  mul: binary((x, y) => x * y),
  /** x · by. */
  scale: defineOp({
    attrs: { by: float },
    arity: 1,
    roles: ONE,
    traits: ELEMENTWISE,
    infer: ([x]) => (expectF32(x, "operand"), x),
    interp: ([x], a) => (x as Float32Array).map((v) => v * a.by),
  }),
  /** tanh(x / cap) · cap: values squashed smoothly into (−cap, cap), as Gemma 2 caps attention scores and logits. */
  softcap: defineOp({
    attrs: { cap: float },
    arity: 1,
    roles: ONE,
    traits: ELEMENTWISE,
    infer: ([x], a) => {
      expectF32(x, "operand");
      expect(Number.isFinite(a.cap) && a.cap > 0, `softcap: cap must be a finite number > 0, got ${a.cap}`);
      return x;
    },
    interp: ([x], a) => (x as Float32Array).map((v) => Math.tanh(v / a.cap) * a.cap),
  }),
} satisfies Record<string, OpDef>;
