// Shape-specialised SIMD128 matrix kernels: y[rows, N] = x[rows, K] · w[N, K]ᵀ (+ b).
//
// Weights are packed at compile time (packLinearWeight) in groups of 4 output rows: for each
// 4-wide chunk of K, the 4 rows' chunks follow each other (64 bytes), then each row's K % 4
// tail. A GEMV (decode) then reads every weight exactly once as one sequential stream, and a
// GEMM tile reuses each loaded weight vector for 2 rows of x.
//
// K and N are compile-time constants: every loop bound except `rows` is constant, tails are
// unrolled, row offsets are load immediates. Rows are processed in chunks of ROW_BLOCK so
// that the weights stream once per chunk while the chunk of x stays in cache.

import { floatToHalf, halfToFloat } from "../../ir/half.js";
import { Q8_BLOCK } from "../../ir/quant.js";
import { vectorActivation } from "./vmath.js";
import { type Expr, WasmModule, createType, f32, i32, none, v128 } from "./wasm.js";

const GROUP = 4;
const ROW_BLOCK = 32;
// 2 rows × 4 outputs: 8 accumulators + 2 x + 1 w registers. Measured here (K 768/3072, 128 rows):
// 45 GFLOP/s, against 25 for 3×4 and 4×4 tiles, which run out of the 16 xmm registers.
const TILE_ROWS = 2;

/** Packs w[N, K] (row-major) into the kernel layout; rows past N in the last group are zero. */
export function packLinearWeight(w: Float32Array, N: number, K: number): Float32Array {
  const K4 = K - (K % 4), Kt = K % 4;
  const groups = Math.ceil(N / GROUP);
  const out = new Float32Array(groups * GROUP * K);
  for (let n = 0; n < N; n++) {
    const g = n >> 2, j = n & 3, base = g * GROUP * K;
    for (let k = 0; k < K4; k++) out[base + (k >> 2) * 16 + j * 4 + (k & 3)] = w[n * K + k];
    for (let t = 0; t < Kt; t++) out[base + 4 * K4 + j * Kt + t] = w[n * K + K4 + t];
  }
  return out;
}

// parameters of every generated linear kernel: (x, w, b, residual, out, rows, from, to), where
// [from, to) are the groups of 4 output rows to compute (a thread's share; see WasmModule.parallel)
const X = 0, W = 1, B = 2, RES = 3, OUT = 4, ROWS = 5, G0 = 6, G1 = 7;
// locals
const R = 8, G = 9, KB = 10, PX = 11, PW = 12, RB = 13, REND = 14;
const XV = 15; // 2 v128 locals: x vectors
const WV = 17; // 1 v128 local: the weight vector
const ACC = 18; // 8 v128 accumulators
// int8 (q8_0) kernels also use: 16 weight codes, 4 i16x8 weight vectors, a block pointer
// and each row's block scale (f32), and for a single row its 4 vectors of x codes
const VV = 26, WQ = 27, PWB = 31, XSF = 32, XQ = 34;
const LOCALS = [...Array<number>(7).fill(i32), ...Array<number>(16).fill(v128), i32, f32, f32, v128, v128, v128, v128];

/** Work units of a linear kernel with N outputs: its groups of 4 output rows. */
export const linearUnits = (N: number) => Math.ceil(N / GROUP);

/** q8_0 blocks: 32 weights of a row share one scale. A packed block of a 4-row group is the 4 f16
 * scales (8 bytes) then each row's 32 int8 codes (128 bytes): 8.5 bits a weight, as GGUF's Q8_0. */
const Q8_SCALES = GROUP * 2;
const Q8_BLOCK_BYTES = Q8_SCALES + GROUP * Q8_BLOCK;

/** Packs q8_0 codes/scales of w[N, K] (K a multiple of 32) into the kernel layout. */
export function packQ8Weight(codes: Int8Array, scales: Float32Array, N: number, K: number): Uint8Array {
  const blocks = K / Q8_BLOCK, groups = Math.ceil(N / GROUP);
  const out = new Uint8Array(groups * blocks * Q8_BLOCK_BYTES);
  const f = new DataView(out.buffer);
  for (let n = 0; n < N; n++) {
    const g = n >> 2, j = n & 3;
    for (let b = 0; b < blocks; b++) {
      const at = (g * blocks + b) * Q8_BLOCK_BYTES;
      const bits = floatToHalf(scales[n * blocks + b]);
      if (halfToFloat(bits) !== scales[n * blocks + b]) throw new Error(`q8_0 scale ${scales[n * blocks + b]} is not an f16 value`);
      f.setUint16(at + 2 * j, bits, true);
      for (let t = 0; t < Q8_BLOCK; t++) out[at + Q8_SCALES + j * Q8_BLOCK + t] = codes[n * K + b * Q8_BLOCK + t] & 0xff;
    }
  }
  return out;
}

export interface LinearEpilogue {
  bias: boolean;
  /** An activation applied after the bias: gelu, gelu_tanh, silu or relu. */
  act?: string;
  /** A tensor [rows, N] added last. */
  residual: boolean;
}
const ZERO = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

export function linearKernel(wm: WasmModule, K: number, N: number, { bias, act, residual }: LinearEpilogue, quant?: "q8_0"): string {
  if (quant && K % Q8_BLOCK) throw new Error(`q8_0 needs K a multiple of ${Q8_BLOCK}, got ${K}`);
  const name = `linear_k${K}_n${N}${quant ? `_${quant}` : ""}${bias ? "_bias" : ""}${act ? `_${act}` : ""}${residual ? "_res" : ""}`;
  return wm.ensure(name, () => {
    const m = wm.m;
    const get = (l: number, t = i32) => m.local.get(l, t);
    const K4 = K - (K % 4), Kt = K % 4;
    // a quantized x row (quantize_rows_q8) is K/32 f32 scales then K i16 codes
    const rowBytes = quant ? (K / Q8_BLOCK) * 4 + K * 2 : K * 4;
    const groupBytes = quant ? (K / Q8_BLOCK) * Q8_BLOCK_BYTES : GROUP * K * 4;

    /**
     * q8_0 block KB: rows of x arrive quantized (quantize_rows_q8: K/32 f32 scales, then K i16
     * codes); weight codes widen to i16 and i32x4.dot_i16x8_s sums code products exactly; the
     * block's sum is scaled by dx·dw into the f32 accumulators.
     */
    // f16 bits → f32 for non-negative finite values (normals and subnormals): move the exponent
    // and mantissa into an f32 and rescale by 2^112
    const f16 = (h: Expr): Expr => m.f32.mul(m.f32.reinterpret(m.i32.shl(m.i32.and(h, wm.c32(0x7fff)), wm.c32(13))), m.f32.const(2 ** 112));
    const q8Block = (rowsT: number, cols: number): Expr[] => {
      const acc = (i: number, j: number) => ACC + i * cols + j;
      const codesAt = (K / Q8_BLOCK) * 4; // x codes follow the row's scales
      const xCodes = (i: number, part: number) => m.v128.load(i * rowBytes + codesAt + part * 16, 2, m.i32.add(get(PX), m.i32.shl(get(KB), wm.c32(6))));
      const xScale = (i: number) => m.f32.load(i * rowBytes, 4, m.i32.add(get(PX), m.i32.shl(get(KB), wm.c32(2))));
      const out: Expr[] = [m.local.set(PWB, m.i32.add(get(PW), m.i32.mul(get(KB), wm.c32(Q8_BLOCK_BYTES))))];
      // per block, once: each row's scale, and a single row's codes (they fit in registers)
      for (let i = 0; i < rowsT; i++) out.push(m.local.set(XSF + i, xScale(i)));
      if (rowsT === 1) for (let p = 0; p < 4; p++) out.push(m.local.set(XQ + p, xCodes(0, p)));
      const xv = (i: number, p: number) => (rowsT === 1 ? get(XQ + p, v128) : xCodes(i, p));
      for (let j = 0; j < cols; j++) {
        for (let q = 0; q < 2; q++) {
          out.push(m.local.set(VV, m.v128.load(Q8_SCALES + j * Q8_BLOCK + q * 16, 1, get(PWB))));
          out.push(m.local.set(WQ + 2 * q, m.i16x8.extend_low_i8x16_s(get(VV, v128))));
          out.push(m.local.set(WQ + 2 * q + 1, m.i16x8.extend_high_i8x16_s(get(VV, v128))));
        }
        // the weight row's f16 scale, decoded once for all rows (VV is free again)
        out.push(m.local.set(VV, m.f32x4.splat(f16(m.i32.load16_u(j * 2, 2, get(PWB))))));
        for (let i = 0; i < rowsT; i++) {
          const dot = (p: number) => m.i32x4.dot_i16x8_s(xv(i, p), get(WQ + p, v128));
          const sum = m.i32x4.add(m.i32x4.add(dot(0), dot(1)), m.i32x4.add(dot(2), dot(3)));
          const scale = m.f32x4.mul(get(VV, v128), m.f32x4.splat(get(XSF + i, f32)));
          out.push(m.local.set(acc(i, j), wm.madd(m.f32x4.convert_i32x4_s(sum), scale, get(acc(i, j), v128))));
        }
      }
      return out;
    };

    /**
     * The 4 lane sums of 4 accumulators as one vector, each summed (l0 + l1) + (l2 + l3) like
     * the scalar epilogue: pairwise shuffles instead of 16 lane extractions.
     */
    const lanes = (a: number[], b: number[]) => [...a, ...b].flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
    const reduce4 = (accs: number[], into: number): Expr[] => {
      const g = (l: number) => get(l, v128);
      // (x0+x1, y0+y1, x2+x3, y2+y3) into a temporary (the quantized path's WQ registers are free here)
      const pair = (x: number, y: number, t: number) =>
        m.local.set(t, m.f32x4.add(m.i8x16.shuffle(g(x), g(y), lanes([0, 4], [2, 6])), m.i8x16.shuffle(g(x), g(y), lanes([1, 5], [3, 7]))));
      // (u0 + u2, u1 + u3, v0 + v2, v1 + v3) = the 4 sums in order
      return [
        pair(accs[0], accs[1], WQ),
        pair(accs[2], accs[3], WQ + 1),
        m.local.set(into, m.f32x4.add(m.i8x16.shuffle(g(WQ), g(WQ + 1), lanes([0, 1], [4, 5])), m.i8x16.shuffle(g(WQ), g(WQ + 1), lanes([2, 3], [6, 7])))),
      ];
    };

    /** rowsT rows of x (from R) × cols outputs of group G. */
    const tile = (rowsT: number, cols: number): Expr => {
      const body: Expr[] = [
        m.local.set(PX, m.i32.add(get(X), m.i32.mul(get(R), wm.c32(rowBytes)))),
        m.local.set(PW, m.i32.add(get(W), m.i32.mul(get(G), wm.c32(groupBytes)))),
      ];
      const acc = (i: number, j: number) => ACC + i * cols + j;
      for (let a = 0; a < rowsT * cols; a++) body.push(m.local.set(ACC + a, m.v128.const(ZERO)));
      // one k-chunk (16 bytes of x per row) at byte offset kb of x
      const chunk = (): Expr[] => {
        const kb = () => get(KB);
        const out: Expr[] = [];
        for (let i = 0; i < rowsT; i++) out.push(m.local.set(XV + i, m.v128.load(i * rowBytes, 4, m.i32.add(get(PX), kb()))));
        for (let j = 0; j < cols; j++) {
          // the chunk at x byte offset kb sits at 4·kb in the group, row j 16 bytes further
          out.push(m.local.set(WV, m.v128.load(j * 16, 4, m.i32.add(get(PW), m.i32.shl(kb(), wm.c32(2))))));
          for (let i = 0; i < rowsT; i++) {
            const a = acc(i, j);
            out.push(m.local.set(a, wm.madd(get(XV + i, v128), get(WV, v128), get(a, v128))));
          }
        }
        return out;
      };
      if (quant) {
        body.push(wm.loop(`q${rowsT}x${cols}`, KB, wm.c32(0), K / Q8_BLOCK, 1, q8Block(rowsT, cols)));
      } else if (K4 > 0) {
        body.push(wm.loop(`k${rowsT}x${cols}`, KB, wm.c32(0), K4 * 4, 16, chunk()));
      }
      // (r+i)*N + 4g + j, in bytes
      const at = (base: number) => m.i32.add(get(base), m.i32.shl(m.i32.add(m.i32.mul(get(R), wm.c32(N)), m.i32.shl(get(G), wm.c32(2))), wm.c32(2)));
      const vact = act ? vectorActivation(wm, act) : undefined;
      if (cols === GROUP && Kt === 0 && (!act || vact)) {
        // a full group: the 4 outputs of a row as one vector through the epilogue
        for (let i = 0; i < rowsT; i++) {
          body.push(...reduce4([0, 1, 2, 3].map((j) => acc(i, j)), VV));
          let v = get(VV, v128);
          if (bias) v = m.f32x4.add(v, m.v128.load(0, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4)))));
          if (vact) v = m.call(vact, [v], v128);
          if (residual) v = m.f32x4.add(v, m.v128.load(i * N * 4, 4, at(RES)));
          body.push(m.v128.store(i * N * 4, 4, at(OUT), v));
        }
        return m.block(null, body);
      }
      for (let i = 0; i < rowsT; i++)
        for (let j = 0; j < cols; j++) {
          const lane = (l: number) => m.f32x4.extract_lane(get(acc(i, j), v128), l);
          let s = m.f32.add(m.f32.add(lane(0), lane(1)), m.f32.add(lane(2), lane(3)));
          for (let t = 0; t < Kt; t++)
            s = m.f32.add(s, m.f32.mul(m.f32.load(i * rowBytes + (K4 + t) * 4, 4, get(PX)), m.f32.load((4 * K4 + j * Kt + t) * 4, 4, get(PW))));
          if (bias) s = m.f32.add(s, m.f32.load(j * 4, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4)))));
          if (act === "relu") s = m.f32.max(s, m.f32.const(0));
          else if (act) s = wm.callLibF32(`act_${act}`, [s]);
          if (residual) s = m.f32.add(s, m.f32.load((i * N + j) * 4, 4, at(RES)));
          body.push(m.f32.store((i * N + j) * 4, 4, at(OUT), s));
        }
      return m.block(null, body);
    };

    /** All rows of the current row block against output group G (cols valid outputs). */
    const rowsOfGroup = (cols: number): Expr[] => [
      wm.loop(`r${TILE_ROWS}x${cols}`, R, get(RB), () => m.i32.sub(get(REND), wm.c32(TILE_ROWS - 1)), TILE_ROWS, [tile(TILE_ROWS, cols)]),
      wm.loop(`r1x${cols}`, R, get(R), () => get(REND), 1, [tile(1, cols)]),
    ];

    const full = N >> 2, part = N % 4;
    const perBlock: Expr[] = [
      m.local.set(REND, m.select(m.i32.lt_s(m.i32.add(get(RB), wm.c32(ROW_BLOCK)), get(ROWS)), m.i32.add(get(RB), wm.c32(ROW_BLOCK)), get(ROWS))),
    ];
    // full groups in [from, min(to, full)), then the partial group if it is in range
    if (full > 0) perBlock.push(wm.loop("g", G, get(G0), () => m.select(m.i32.lt_s(get(G1), wm.c32(full)), get(G1), wm.c32(full)), 1, rowsOfGroup(4)));
    if (part > 0) perBlock.push(m.if(m.i32.gt_s(get(G1), wm.c32(full)), m.block(null, [m.local.set(G, wm.c32(full)), ...rowsOfGroup(part)])));
    const body = wm.loop("rb", RB, wm.c32(0), () => get(ROWS), ROW_BLOCK, perBlock);
    m.addFunction(name, createType([i32, i32, i32, i32, i32, i32, i32, i32]), none, LOCALS, body);
  });
}
