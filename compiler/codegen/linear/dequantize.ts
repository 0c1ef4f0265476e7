// The dequantized path (calls of more than intRows rows over quantized weights): each group's
// weights are dequantized once per row block into the thread's buffer, in the f32 group layout,
// and the f32 tiles run on them.

import { Q8_BLOCK } from "../../../ir/quant.js";
import { type Expr, v128 } from "../wasm.js";
import { blockScales, unpackCodes } from "./blocks.js";
import type { KernelGen } from "./gen.js";
import { GROUP, type WeightScheme, blockBytes } from "./layout.js";

/**
 * Dequantizes group G of the quantized weights at local `weights` into the f32 group layout at
 * DQ + `into` bytes (chunks of 4 k's, 4 rows each), exactly as the IR's dequantized values:
 * code × f16 scale (q4_1: + minimum).
 */
export function dequantize(g: KernelGen, scheme: WeightScheme, weights: number, into: number, tag: string): Expr {
  const { m, r, plan } = g;
  const body: Expr[] = [m.local.set(r.PWB, m.i32.add(m.i32.add(g.get(weights), m.i32.mul(g.get(r.G), g.c32(plan.groupBytes))), m.i32.mul(g.get(r.KB), g.c32(blockBytes(scheme))))), ...blockScales(g, scheme)];
  // block KB's 32 k's are chunks 8·KB .. 8·KB + 7 (64 bytes each) of the f32 group
  const dst = () => m.i32.add(g.get(r.DQ), m.i32.shl(g.get(r.KB), g.c32(9)));
  for (let j = 0; j < GROUP; j++) {
    body.push(...unpackCodes(g, scheme, j), m.local.set(r.WV, m.f32x4.splat(m.f32x4.extract_lane(g.get(r.VV, v128), j))));
    // q4_1: code · scale + minimum, rounded as the IR's dequantized value
    const plusMin = (v: Expr) => (scheme === "q4_1" ? m.f32x4.add(v, m.f32x4.splat(m.f32x4.extract_lane(g.get(r.MM, v128), j))) : v);
    for (let p = 0; p < 4; p++) {
      const half = (lo: boolean) => plusMin(m.f32x4.mul(m.f32x4.convert_i32x4_s(lo ? m.i32x4.extend_low_i16x8_s(g.get(r.WQ + p, v128)) : m.i32x4.extend_high_i16x8_s(g.get(r.WQ + p, v128))), g.get(r.WV, v128)));
      body.push(m.v128.store(into + (2 * p) * 64 + j * 16, 4, dst(), half(true)), m.v128.store(into + (2 * p + 1) * 64 + j * 16, 4, dst(), half(false)));
    }
  }
  return g.wm.loop(`dq${weights}_${tag}`, r.KB, g.c32(0), plan.K / Q8_BLOCK, 1, body);
}
