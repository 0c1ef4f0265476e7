// What every part of a linear kernel's generator shares: the module, the plan, the registers,
// and the lane arithmetic of reducing accumulators to one vector of 4 outputs.

import { type Expr, type Module, type Type, type WasmModule, i32, v128 } from "../wasm.js";
import type { LinearPlan } from "./plan.js";
import { type Registers, linearRegisters } from "./registers.js";

export interface KernelGen {
  readonly wm: WasmModule;
  readonly m: Module;
  readonly plan: LinearPlan;
  readonly r: Registers;
  get(local: number, type?: Type): Expr;
  c32(n: number): Expr;
  /** A zero v128. */
  zero(): Expr;
  /** Address of row R's outputs of group G in a [rows, N] tensor whose address is in local `base`: base + ((R·N + 4G)·4). */
  at(base: number): Expr;
  /**
   * The 4 lane sums of 4 vectors as one vector (lane j = vector j's sum), each summed
   * (l0 + l1) + (l2 + l3) like a scalar reduction, by pairwise shuffles. The WQ registers
   * serve as temporaries (free outside a quantized block's weight loads).
   */
  reduce4(vs: number[], into: number, add: Add): Expr[];
  /** (a0+a2, b0+b2, a1+a3, b1+b3): integer lane sums in two steps (exact in any order), from the interleaves x64 has single instructions for (punpckl/hdq)... */
  pairSum(x: number, y: number, into: number, add: Add): Expr;
  /** ...then two pairs into (u0+u2, u1+u3, v0+v2, v1+v3). */
  quadSum(u: number, v: number, into: number, add: Add): Expr;
  addF: Add;
  addI: Add;
  /**
   * i16 lane sums of 4 outputs' i16x8 vectors (each lane at most 7620 in magnitude, so sums of 4
   * lanes fit i16): first pairs of outputs, (x0..x3 + x4..x7, y0..y3 + y4..y7) (punpckl/hqdq)...
   */
  pairSum16(x: number, y: number, into: number): Expr;
  /** ...then two pairs into one i32x4 vector of the 4 outputs' sums (shufps twice, an add, pmaddwd). */
  quadSum16(u: number, v: number, into: number): Expr[];
}
export type Add = (a: Expr, b: Expr) => Expr;

const ZERO = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/** Shuffle lanes taking f32/i32 lanes a of the first vector and b of the second. */
const lanes = (a: number[], b: number[]) => [...a, ...b].flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

export function kernelGen(wm: WasmModule, plan: LinearPlan) {
  const m = wm.m;
  const { regs: r, locals } = linearRegisters();
  const get = (l: number, t = i32) => m.local.get(l, t);
  const c32 = (n: number) => wm.c32(n);
  // two vectors' lanes combined by the shuffles `x` and `y` picks
  const combine = (x: number, y: number, into: number, add: Add, a: [number[], number[]], b: [number[], number[]]) =>
    m.local.set(into, add(m.i8x16.shuffle(get(x, v128), get(y, v128), lanes(...a)), m.i8x16.shuffle(get(x, v128), get(y, v128), lanes(...b))));
  const g: KernelGen = {
    wm,
    m,
    plan,
    r,
    get,
    c32,
    zero: () => m.v128.const(ZERO),
    at: (base) => m.i32.add(get(base), m.i32.shl(m.i32.add(m.i32.mul(get(r.R), c32(plan.N)), m.i32.shl(get(r.G), c32(2))), c32(2))),
    reduce4: (vs, into, add) => [
      // (x0+x1, y0+y1, x2+x3, y2+y3) of each pair
      combine(vs[0], vs[1], r.WQ, add, [[0, 4], [2, 6]], [[1, 5], [3, 7]]),
      combine(vs[2], vs[3], r.WQ + 1, add, [[0, 4], [2, 6]], [[1, 5], [3, 7]]),
      // (u0 + u2, u1 + u3, v0 + v2, v1 + v3)
      combine(r.WQ, r.WQ + 1, into, add, [[0, 1], [4, 5]], [[2, 3], [6, 7]]),
    ],
    pairSum: (x, y, into, add) => combine(x, y, into, add, [[0, 4], [1, 5]], [[2, 6], [3, 7]]),
    quadSum: (u, v, into, add) => combine(u, v, into, add, [[0, 1], [4, 5]], [[2, 3], [6, 7]]),
    addF: (a, b) => m.f32x4.add(a, b),
    addI: (a, b) => m.i32x4.add(a, b),
    pairSum16: (x, y, into) => combine(x, y, into, (a, b) => m.i16x8.add(a, b), [[0, 1], [4, 5]], [[2, 3], [6, 7]]),
    quadSum16: (u, v, into) => [
      combine(u, v, into, (a, b) => m.i16x8.add(a, b), [[0, 2], [4, 6]], [[1, 3], [5, 7]]),
      m.local.set(into, m.i32x4.extadd_pairwise_i16x8_s(get(into, v128))),
    ],
  };
  return { g, locals };
}
