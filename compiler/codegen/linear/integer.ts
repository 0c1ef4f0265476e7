// The integer path (calls of at most intRows rows over quantized weights): x rows arrive
// quantized to q8_0 (quantize_rows_q8), weight codes widen to i16 and i32x4.dot_i16x8_s sums
// the code products exactly, block by block. A GEMV (one row) keeps the row's x codes in
// registers for the whole block; a GEMM tile (TILE_ROWS rows) loads them at each use.

import { Q8_BLOCK } from "../../../ir/quant.js";
import { type Expr, f32, v128 } from "../wasm.js";
import { blockScales, unpackCodes } from "./blocks.js";
import type { KernelGen } from "./gen.js";
import { CODE_BYTES, GROUP, type WeightScheme, blockBytes, codesAt } from "./layout.js";

/**
 * Row R + i's sums of group G (i < rowsT) over the quantized weights at local `weights`, each
 * into local into(i) (lane j = output j; rows past N in the last group are zero codes).
 */
export function integerSums(g: KernelGen, rowsT: number, cols: number, weights: number, into: (i: number) => number): Expr[] {
  const { m, r, plan } = g;
  const body: Expr[] = [m.local.set(r.PW, m.i32.add(g.get(weights), m.i32.mul(g.get(r.G), g.c32(plan.groupBytes))))];
  // one accumulator a row, lane j = output j
  for (let i = 0; i < rowsT; i++) body.push(m.local.set(r.ACC + i, g.zero()));
  body.push(m.local.set(r.PWB, g.get(r.PW)));
  body.push(g.wm.loop(`q${rowsT}x${cols}_${weights}`, r.KB, g.c32(0), plan.K / Q8_BLOCK, 1, integerBlock(g, plan.quant!, rowsT)));
  for (let i = 0; i < rowsT; i++) body.push(m.local.set(into(i), g.get(r.ACC + i, v128)));
  return body;
}

/**
 * Block KB for rowsT rows (PWB walks the blocks): the 4 outputs' integer sums are reduced into
 * one vector, converted once and scaled by the 4 weight scales × the row's x scale into
 * accumulator ACC + i (lane j = output j of the group).
 */
function integerBlock(g: KernelGen, scheme: WeightScheme, rowsT: number): Expr[] {
  const { m, r, wm } = g;
  const { K, rowBytesQ } = g.plan;
  const get = g.get;
  // a quantized x row: K/32 f32 scales, K i16 codes, K/32 i32 block sums of the codes, K i8 codes
  const xCodesAt = (K / Q8_BLOCK) * 4;
  const xCodes = (i: number, part: number) => m.v128.load(i * rowBytesQ + xCodesAt + part * 16, 2, m.i32.add(get(r.PX), m.i32.shl(get(r.KB), g.c32(6))));
  const xScale = (i: number) => m.f32.load(i * rowBytesQ, 4, m.i32.add(get(r.PX), m.i32.shl(get(r.KB), g.c32(2))));
  const out: Expr[] = [...blockScales(g, scheme)];
  for (let i = 0; i < rowsT; i++) out.push(m.local.set(r.XSF + i, xScale(i)));
  // relaxed SIMD, nibbles (0..15, within the 7 bits the 8-bit dot product needs): the 16
  // code bytes split into elements 0..15 (low nibbles) and 16..31 (high), each times the
  // x block's i8 codes by i16x8.relaxed_dot_i8x16_i7x16_s (pair sums ≤ 2·127·15, the two
  // halves' sum ≤ 7620), the 4 outputs' lanes summed in i16 (4 lanes ≤ 30480: no overflow)
  // and widened to i32 once
  const bytes8 = wm.relaxed && scheme !== "q8_0";
  const x8At = (K / Q8_BLOCK) * 8 + K * 2;
  const xCodes8 = (i: number, half: number) => m.v128.load(i * rowBytesQ + x8At + half * 16, 1, m.i32.add(get(r.PX), m.i32.shl(get(r.KB), g.c32(5))));
  // GEMV: the single row's codes stay in registers for the whole block
  const keepX = rowsT === 1;
  if (keepX) for (let p = 0; p < (bytes8 ? 2 : 4); p++) out.push(m.local.set(r.XQ + p, bytes8 ? xCodes8(0, p) : xCodes(0, p)));
  const xv = (i: number, p: number) => (keepX ? get(r.XQ + p, v128) : bytes8 ? xCodes8(i, p) : xCodes(i, p));
  const low4 = () => m.v128.const(new Array(16).fill(15));
  const dotAt = (i: number, j: number) => r.DOT + 4 * i + j;
  for (let j = 0; j < GROUP; j++) {
    if (bytes8) {
      const code = m.v128.load(0, 1, m.i32.add(get(r.PWB), g.c32(codesAt(scheme) + j * CODE_BYTES[scheme])));
      out.push(m.local.set(r.WV, code), m.local.set(r.WQ, m.v128.and(get(r.WV, v128), low4())), m.local.set(r.WQ + 1, m.v128.and(m.i16x8.shr_u(get(r.WV, v128), g.c32(4)), low4())));
    } else out.push(...unpackCodes(g, scheme, j, false));
    for (let i = 0; i < rowsT; i++) {
      const dot = (p: number) => m.i32x4.dot_i16x8_s(xv(i, p), get(r.WQ + p, v128));
      const sum = bytes8
        ? m.i16x8.add(wm.dotI8x16I7x16(xv(i, 0), get(r.WQ, v128)), wm.dotI8x16I7x16(xv(i, 1), get(r.WQ + 1, v128)))
        : m.i32x4.add(m.i32x4.add(dot(0), dot(1)), m.i32x4.add(dot(2), dot(3)));
      out.push(m.local.set(dotAt(i, j), sum));
      // an ordering store into the thread's (here unused) dequantization buffer: it needs this
      // output's sum before any later load, so loads stay next to their dot products instead of
      // all issuing first and spilling (docs/kernels.md). Relaxed 4-bit blocks load half as
      // much and have none.
      if (!bytes8) out.push(m.v128.store(16 * (4 * i + j), 16, get(r.DQ), get(dotAt(i, j), v128)));
      // fold outputs (0, 1) and (2, 3) as soon as both exist: fewer live registers
      if (j % 2 === 1) out.push(bytes8 ? g.pairSum16(dotAt(i, j - 1), dotAt(i, j), dotAt(i, j >> 1)) : g.pairSum(dotAt(i, j - 1), dotAt(i, j), dotAt(i, j >> 1), g.addI));
    }
  }
  // the block's sum of x codes (quantize_rows_q8). q4_0: the nibbles were n = q + 8, so
  // Σq·x = Σn·x − 8·Σx. q4_1: Σ(n·d + min)·x = d·Σn·x + min·Σx
  const xSum = (i: number) => m.i32.load(i * rowBytesQ + xCodesAt + K * 2, 4, m.i32.add(get(r.PX), m.i32.shl(get(r.KB), g.c32(2))));
  for (let i = 0; i < rowsT; i++) {
    if (bytes8) out.push(...g.quadSum16(dotAt(i, 0), dotAt(i, 1), dotAt(i, 0)));
    else out.push(g.quadSum(dotAt(i, 0), dotAt(i, 1), dotAt(i, 0), g.addI));
    if (scheme === "q4_0") out.push(m.local.set(dotAt(i, 0), m.i32x4.sub(get(dotAt(i, 0), v128), m.i32x4.splat(m.i32.shl(xSum(i), g.c32(3))))));
    const scale = m.f32x4.mul(get(r.VV, v128), m.f32x4.splat(get(r.XSF + i, f32)));
    out.push(m.local.set(r.ACC + i, wm.madd(m.f32x4.convert_i32x4_s(get(dotAt(i, 0), v128)), scale, get(r.ACC + i, v128))));
    if (scheme === "q4_1")
      out.push(m.local.set(r.ACC + i, wm.madd(get(r.MM, v128), m.f32x4.splat(m.f32.mul(get(r.XSF + i, f32), m.f32.convert_s.i32(xSum(i)))), get(r.ACC + i, v128))));
  }
  out.push(m.local.set(r.PWB, m.i32.add(get(r.PWB), g.c32(blockBytes(scheme)))));
  return out;
}
