// A quantized block of a 4-row group (layout.ts) into registers: its scales (and q4_1's
// minimums) as f32x4, each row's 32 codes as 4 i16x8 vectors. The integer and the dequantize
// paths both read blocks this way.

import type { Expr } from "../wasm.js";
import { v128 } from "../wasm.js";
import type { KernelGen } from "./gen.js";
import { CODE_BYTES, SCALES_BYTES, type WeightScheme, codesAt } from "./layout.js";

const bytesOf = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const i32x4Const = (v: number) => [0, 1, 2, 3].flatMap(() => bytesOf(v));

/**
 * 4 f16 values (at PWB + offset) → f32x4, ×2^112 (exact for finite f16 values, subnormals
 * included): sign-extended and shifted left 13, the exponent and mantissa sit in f32 position
 * and the sign at bit 28 and above; clearing bits 28-30 leaves the sign at 31.
 */
function halves(g: KernelGen, offset: number): Expr {
  const { m } = g;
  return m.f32x4.mul(
    m.v128.and(m.i32x4.shl(m.i32x4.extend_low_i16x8_s(m.v128.load64_zero(offset, 2, g.get(g.r.PWB))), g.c32(13)), m.v128.const(i32x4Const(0x8fffffff | 0))),
    m.f32x4.splat(m.f32.const(2 ** 112)));
}

/** The block's 4 row scales into VV (q4_1: its minimums into MM). */
export const blockScales = (g: KernelGen, scheme?: WeightScheme): Expr[] => [
  g.m.local.set(g.r.VV, halves(g, 0)),
  ...(scheme === "q4_1" ? [g.m.local.set(g.r.MM, halves(g, SCALES_BYTES))] : []),
];

/**
 * Weight row j's 32 codes of the block at PWB as 4 i16x8 vectors in element order, in WQ.
 * q4_0 with `offset` false: the nibbles n = q + 8 as they are (the integer path subtracts
 * 8·Σx once per block instead).
 */
export function unpackCodes(g: KernelGen, scheme: WeightScheme, j: number, offset = true): Expr[] {
  const { m, r } = g;
  const codes = codesAt(scheme) + j * CODE_BYTES[scheme];
  if (scheme === "q4_1") offset = false; // its codes are the nibbles
  // widening loads: 8 codes → i16x8 in one instruction (pmovsxbw from memory on x64)
  // (the address added here, not as the load's offset: V8 would keep base + offset of each
  // widening load in a register of its own across the loop, spilling)
  const codeAt = (offset: number) => m.i32.add(g.get(r.PWB), g.c32(offset));
  if (scheme === "q8_0") return [0, 1, 2, 3].map((p) => m.local.set(r.WQ + p, m.v128.load8x8_s(0, 1, codeAt(codes + p * 8))));
  // byte t holds element t (low nibble) and t + 16 (high): 8 bytes zero-extended to i16
  // lanes give elements t..t+7 masked and t+16..t+23 shifted, then minus 8
  const c = (v: number) => m.v128.const(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? v : 0)));
  const out: Expr[] = [];
  const centre = (v: Expr) => (offset ? m.i16x8.sub(v, c(8)) : v);
  for (let h = 0; h < 2; h++) {
    out.push(m.local.set(r.WV, m.v128.load8x8_u(0, 1, codeAt(codes + h * 8))));
    out.push(m.local.set(r.WQ + h, centre(m.v128.and(g.get(r.WV, v128), c(15)))));
    out.push(m.local.set(r.WQ + 2 + h, centre(m.i16x8.shr_u(g.get(r.WV, v128), g.c32(4)))));
  }
  return out;
}
