// A linear kernel's registers: its parameters and locals, numbered by a small allocator in the
// order they are declared (which is the function's local list).

import { TILE_ROWS } from "../tuning.js";
import { type Type, f32, i32, v128 } from "../wasm.js";
import { GROUP } from "./layout.js";

/** Hands out consecutive wasm local indices, parameters first, and records their types. */
export class Locals {
  readonly params: Type[] = [];
  readonly vars: Type[] = [];

  param(type: Type): number {
    if (this.vars.length) throw new Error("internal: parameters come before locals");
    return this.params.push(type) - 1;
  }

  /** The first of `count` consecutive locals of one type. */
  local(type: Type, count = 1): number {
    const first = this.params.length + this.vars.length;
    for (let i = 0; i < count; i++) this.vars.push(type);
    return first;
  }
}

/** Local indices by role; a register of several (e.g. ACC) is its first, the rest follow. */
export interface Registers {
  // parameters of every generated linear kernel: (x, w, b, residual, out, rows, from, to,
  // thread), where [from, to) are the groups of 4 output rows to compute (a thread's share; see
  // WasmModule.parallel) and `thread` picks the thread's scratch
  X: number; W: number; B: number; RES: number; OUT: number; ROWS: number; G0: number; G1: number; TID: number;
  /** Loop counters and pointers: row, group, k (byte offset or block), x row, weights, row block and its end. */
  R: number; G: number; KB: number; PX: number; PW: number; RB: number; REND: number;
  /** f32 tiles: each row's x vector, the weight vector, the accumulators (rows × 4 outputs; pairs: 2 groups × 4). */
  XV: number; WV: number; ACC: number;
  /** Quantized blocks: the 4 rows' scales, 4 i16x8 weight code vectors (also reduce4's temporaries), the block pointer. */
  VV: number; WQ: number; PWB: number;
  /** Integer blocks: each x row's block scale, a single row's 4 vectors of x codes, the per-output dot products. */
  XSF: number; XQ: number; DOT: number;
  /** Each row's 4 sums, and (gated) each row's 4 gate sums. */
  ROWV: number; GATE: number;
  /** The thread's dequantization buffer; q4_1's block minimums. */
  DQ: number; MM: number;
  /** Single rows in pairs of groups: the second group's weights (gated: the up projection's), the pair step, the pairs, the groups. */
  PW2: number; T: number; HALF: number; NG: number;
}

export function linearRegisters(): { regs: Registers; locals: Locals } {
  const l = new Locals();
  const [X, W, B, RES, OUT, ROWS, G0, G1, TID] = Array.from({ length: 9 }, () => l.param(i32));
  const [R, G, KB, PX, PW, RB, REND] = Array.from({ length: 7 }, () => l.local(i32));
  // a tile holds TILE_ROWS rows of one group, or (pairs) one row of two groups
  const rows = Math.max(TILE_ROWS, 2);
  const XV = l.local(v128, TILE_ROWS), WV = l.local(v128), ACC = l.local(v128, rows * GROUP);
  const VV = l.local(v128), WQ = l.local(v128, 4), PWB = l.local(i32);
  const XSF = l.local(f32, TILE_ROWS), XQ = l.local(v128, 4), DOT = l.local(v128, TILE_ROWS * GROUP);
  const ROWV = l.local(v128, rows), GATE = l.local(v128, TILE_ROWS);
  const DQ = l.local(i32), MM = l.local(v128);
  const [PW2, T, HALF, NG] = Array.from({ length: 4 }, () => l.local(i32));
  return {
    regs: { X, W, B, RES, OUT, ROWS, G0, G1, TID, R, G, KB, PX, PW, RB, REND, XV, WV, ACC, VV, WQ, PWB, XSF, XQ, DOT, ROWV, GATE, DQ, MM, PW2, T, HALF, NG },
    locals: l,
  };
}
