// Shape-specialised SIMD128 matrix kernels: y[rows, N] = x[rows, K] · w[N, K]ᵀ (+ b).
//
// Weights are packed at compile time (packLinearWeight) in groups of 4 output rows: for each
// 4-wide chunk of K, the 4 rows' chunks follow each other (64 bytes), then each row's K % 4
// tail; f32 weights of K > 512 in K panels of at most 512, each panel all groups. A GEMV
// (decode) then reads every weight exactly once as one sequential stream, and a GEMM tile
// reuses each loaded weight vector for 2 rows of x.
//
// K and N are compile-time constants: every loop bound except `rows` is constant, tails are
// unrolled, row offsets are load immediates. Rows are processed in chunks of ROW_BLOCK so
// that the weights stream once per chunk while the chunk of x stays in cache.

import { floatToHalf, halfToFloat } from "../../ir/half.js";
import { Q8_BLOCK } from "../../ir/quant.js";
import type { QuantScheme } from "../../ir/types.js";
import { PANEL, ROW_BLOCK, SKEW_PERIOD, STREAM_ROWS, TILE_ROWS, integerRowBound } from "./tuning.js";
import { vectorActivation } from "./vmath.js";
import { type Expr, WasmModule, createType, f32, i32, none, v128 } from "./wasm.js";

const GROUP = 4;

/** A range [k0, k0 + size) of K that a kernel reads in one pass over the output groups, stored from float `at` of the packed weight. */
export interface Panel {
  k0: number;
  size: number;
  at: number;
  index: number;
  last: boolean;
}

/** The panels of an f32 weight [N, K]: one if K ≤ PANEL or K % 8 ≠ 0, else equal sizes, multiples of 8, each (but the first) starting `stride` floats after the one before. */
export function linearPanels(N: number, K: number): Panel[] {
  const size = K <= PANEL || K % 8 !== 0 ? K : Math.ceil(K / Math.ceil(K / PANEL) / 8) * 8;
  const stride = panelStride(N, size);
  const out: Panel[] = [];
  for (let k0 = 0, index = 0; k0 < K; k0 += size, index++) out.push({ k0, size: Math.min(size, K - k0), at: index * stride, index, last: k0 + size >= K });
  return out;
}
/** Floats from one panel of `size` k's to the next: its groups, then padding to one group's panel past a multiple of SKEW_PERIOD. */
export const panelStride = (N: number, size: number) => {
  const R = GROUP * size, all = linearUnits(N) * R;
  return all + ((((R - all) % SKEW_PERIOD) + SKEW_PERIOD) % SKEW_PERIOD);
};

/** Packs w[N, K] (row-major) into the kernel layout; rows past N in the last group are zero. */
export function packLinearWeight(w: Float32Array, N: number, K: number): Float32Array {
  const K4 = K - (K % 4), Kt = K % 4;
  const groups = Math.ceil(N / GROUP);
  const panels = linearPanels(N, K), lastP = panels[panels.length - 1];
  const out = new Float32Array(lastP.at + groups * GROUP * lastP.size);
  for (const { k0, size, at: from } of panels) {
    const end = Math.min(k0 + size, K4);
    for (let n = 0; n < N; n++) {
      const g = n >> 2, j = n & 3, base = from + GROUP * g * size, src = n * K;
      // row n's 4-wide chunks go 16 floats apart (an unrolled copy: this runs over every weight)
      for (let k = k0, at = base + j * 4; k < end; k += 4, at += 16) {
        out[at] = w[src + k];
        out[at + 1] = w[src + k + 1];
        out[at + 2] = w[src + k + 2];
        out[at + 3] = w[src + k + 3];
      }
      // (a K % 4 tail: one panel only)
      for (let t = 0; t < Kt; t++) out[base + 4 * K4 + j * Kt + t] = w[src + K4 + t];
    }
  }
  return out;
}

// parameters of every generated linear kernel: (x, w, b, residual, out, rows, from, to, thread),
// where [from, to) are the groups of 4 output rows to compute (a thread's share; see
// WasmModule.parallel) and `thread` picks the thread's scratch
const X = 0, W = 1, B = 2, RES = 3, OUT = 4, ROWS = 5, G0 = 6, G1 = 7, TID = 8;
const PARAMS = [i32, i32, i32, i32, i32, i32, i32, i32, i32];
// locals
const R = 9, G = 10, KB = 11, PX = 12, PW = 13, RB = 14, REND = 15;
const XV = 16; // 2 v128 locals: x vectors
const WV = 18; // 1 v128 local: the weight vector
const ACC = 19; // 8 v128 accumulators
// quantized kernels also use: a v128 of the 4 rows' block scales, 4 i16x8 weight vectors, a block
// pointer, each x row's block scale (f32), a single row's 4 vectors of x codes, and 2×4 vectors
// of a block's per-output dot products
const VV = 27, WQ = 28, PWB = 32, XSF = 33, XQ = 35, DOT = 39;
// every kernel: each row's 4 sums; gated kernels: each row's 4 gate sums
const ROWV = 47, GATE = 49;
// quantized kernels on many rows: the thread's buffer of dequantized weights
const DQ = 51;
// q4_1: the block's 4 minimums
const MM = 52;
// single-row f32 calls: the second group's weights, the pair step, the pairs, the groups
const PW2 = 53, T = 54, HALF = 55, NG = 56;
const LOCALS = [...Array<number>(7).fill(i32), ...Array<number>(16).fill(v128), i32, f32, f32, ...Array<number>(16).fill(v128), i32, v128, ...Array<number>(4).fill(i32)];

/** Threads a kernel may run on (each has its own dequantization buffer). */
export const MAX_THREADS = 16;
/** Bytes of one thread's dequantization buffer for a kernel of input width K (gated: two groups). */
export const dequantBytes = (K: number) => 2 * GROUP * K * 4;

/** Bytes of one x row quantized by quantize_rows_q8: K/32 f32 scales, K i16 codes, K/32 i32 block sums of the codes, K i8 codes. */
export const quantRowBytes = (K: number) => (K / Q8_BLOCK) * 8 + K * 3;

/** int_rows of a linear whose every call takes the integer path: more rows than any context. */
const ALL_ROWS = 2 ** 30;
/** The most rows of a call for which a linear takes integer dot products (ir/quant.ts integerPath: attr int_rows, else every call; none without attr quant). */
export const integerRows = (attrs: { quant?: unknown; int_rows?: unknown }): number => (attrs.quant === undefined ? 0 : typeof attrs.int_rows === "number" ? attrs.int_rows : ALL_ROWS);
const defaultIntegerRows = (quant: WeightScheme, K: number) => integerRowBound(quant, K) ?? ALL_ROWS;

/** Work units of a linear kernel with N outputs: its groups of 4 output rows. */
export const linearUnits = (N: number) => Math.ceil(N / GROUP);

export type WeightScheme = QuantScheme;

/**
 * Quantized blocks: 32 weights of a row share one f16 scale. A packed block of a 4-row group is
 * the 4 scales (8 bytes), for q4_1 the 4 minimums (8 bytes), then each row's codes: q8_0 32 int8
 * (8.5 bits a weight, as GGUF's Q8_0); q4_0 16 bytes of nibbles, byte t holding element t low
 * and t+16 high, value q − 8 (4.5 bits a weight, as GGUF's Q4_0); q4_1 the same nibbles, value
 * q·d + min (5 bits a weight, as GGUF's Q4_1).
 */
const SCALES_BYTES = GROUP * 2;
const MINS_BYTES: Record<WeightScheme, number> = { q8_0: 0, q4_0: 0, q4_1: GROUP * 2 };
const CODE_BYTES: Record<WeightScheme, number> = { q8_0: Q8_BLOCK, q4_0: Q8_BLOCK / 2, q4_1: Q8_BLOCK / 2 };
const codesAt = (s: WeightScheme) => SCALES_BYTES + MINS_BYTES[s];
const blockBytes = (s: WeightScheme) => codesAt(s) + GROUP * CODE_BYTES[s];

/** Packs codes/scales (q4_1: and minimums) of w[N, K] (K a multiple of 32; q4_0 codes are −8..7, q4_1 0..15) into the kernel layout. */
export function packQuantWeight(scheme: WeightScheme, codes: Int8Array, scales: Float32Array, N: number, K: number, mins?: Float32Array): Uint8Array {
  if ((scheme === "q4_1") !== (mins !== undefined)) throw new Error(`internal: ${scheme} ${mins ? "has no" : "needs"} minimums`);
  const blocks = K / Q8_BLOCK, groups = Math.ceil(N / GROUP), bb = blockBytes(scheme);
  const out = new Uint8Array(groups * blocks * bb);
  const f = new DataView(out.buffer);
  const half = (v: number, what: string) => {
    const bits = floatToHalf(v);
    if (halfToFloat(bits) !== v) throw new Error(`${scheme} ${what} ${v} is not an f16 value`);
    return bits;
  };
  const offset = scheme === "q4_0" ? 8 : 0;
  for (let n = 0; n < N; n++) {
    const g = n >> 2, j = n & 3;
    for (let b = 0; b < blocks; b++) {
      const at = (g * blocks + b) * bb, row = n * K + b * Q8_BLOCK;
      f.setUint16(at + 2 * j, half(scales[n * blocks + b], "scale"), true);
      if (mins) f.setUint16(at + SCALES_BYTES + 2 * j, half(mins[n * blocks + b], "minimum"), true);
      const c = at + codesAt(scheme) + j * CODE_BYTES[scheme];
      if (scheme === "q8_0") for (let t = 0; t < Q8_BLOCK; t++) out[c + t] = codes[row + t] & 0xff;
      else for (let t = 0; t < 16; t++) out[c + t] = (codes[row + t] + offset) | ((codes[row + t + 16] + offset) << 4);
    }
  }
  return out;
}

export interface LinearEpilogue {
  bias: boolean;
  /** An activation applied after the bias: gelu, gelu_tanh, silu or relu (gated: to the gate). */
  act?: string;
  /**
   * Gated (gated_linear): the kernel reads two weights, the gate's at `w` and the up
   * projection's at `b` (no bias), and writes act(x·wgᵀ) ⊙ (x·wuᵀ).
   */
  gated?: boolean;
  /**
   * Address of each row's fused-norm factors (fuse-norm). RMSNorm: one f32 a row, the sums are
   * scaled by it first. LayerNorm (`ln`): (mean, factor) pairs, the sums become
   * (sums − mean · rowsum)·factor, the weights' row sums read after the N biases.
   */
  normAt?: number;
  ln?: boolean;
  /** A tensor [rows, N] added last. */
  residual: boolean;
  /** Gated f32 kernels of more than one panel: where the gate's partial sums wait (gateSumsBytes). */
  gateSumsAt?: number;
}

/** Bytes of a gated f32 kernel's partial gate sums ([ROW_BLOCK rows, N], at most `rows`), 0 if K is one panel. */
export const gateSumsBytes = (K: number, N: number, rows: number) => (linearPanels(N, K).length > 1 ? Math.min(ROW_BLOCK, rows) * N * 4 : 0);
const ZERO = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const bytesOf = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const i32x4Const = (v: number) => [0, 1, 2, 3].flatMap(() => bytesOf(v));

/** Where quantized kernels find the quantized x rows, and the threads' dequantization buffers (MAX_THREADS × dequantBytes(K) at least). */
export interface QuantScratch {
  xq: number;
  dq: number;
}

/**
 * The kernel for y = x · wᵀ with the epilogue; quantized weights (quant, with the scratch
 * addresses): calls of at most intRows rows take integer dot products on x rows quantized by
 * quantize_rows_q8, larger calls dequantize each weight group once per row block.
 */
export function linearKernel(wm: WasmModule, K: number, N: number, { bias, act, residual, gated = false, normAt, ln = false, gateSumsAt }: LinearEpilogue, quant?: WeightScheme, addrs?: QuantScratch, intRows = ALL_ROWS): string {
  if (quant && K % Q8_BLOCK) throw new Error(`${quant} needs K a multiple of ${Q8_BLOCK}, got ${K}`);
  if (quant && !addrs) throw new Error("internal: a quantized kernel needs its scratch addresses");
  if (gated && (bias || !act || (!quant && K % 4))) throw new Error("internal: a gated kernel has an activation, no bias, and K a multiple of 4");
  if (ln && (gated || !bias || normAt === undefined)) throw new Error("internal: a fused LayerNorm needs a plain linear with its [2, N] bias and the factors' address");
  // quantized weights (and their dequantized groups) are read whole
  const panels = quant ? [{ k0: 0, size: K, at: 0, index: 0, last: true }] : linearPanels(N, K);
  if (gated && panels.length > 1 && gateSumsAt === undefined) throw new Error("internal: a gated kernel of several panels needs its gate sums' scratch");
  const name = `${gated ? "gated" : "linear"}_k${K}_n${N}${normAt !== undefined ? (ln ? "_ln" : "_rms") : ""}${quant ? `_${quant}${intRows === defaultIntegerRows(quant, K) ? "" : `_i${intRows}`}` : ""}${bias ? "_bias" : ""}${act ? `_${act}` : ""}${residual ? "_res" : ""}`;
  return wm.ensure(name, () => {
    const m = wm.m;
    const get = (l: number, t = i32) => m.local.get(l, t);
    const K4 = K - (K % 4), Kt = K % 4;
    // a quantized x row (quantize_rows_q8) is K/32 f32 scales then K i16 codes
    // x rows: f32 (K·4 bytes), or quantized by quantize_rows_q8 (K/32 f32 scales then K i16 codes)
    const rowBytesQ = quantRowBytes(K);
    const groupBytes = quant ? (K / Q8_BLOCK) * blockBytes(quant) : GROUP * K * 4;
    const lanes = (a: number[], b: number[]) => [...a, ...b].flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

    /**
     * The 4 lane sums of 4 vectors as one vector (lane j = vector j's sum), each summed
     * (l0 + l1) + (l2 + l3) like a scalar reduction, by pairwise shuffles. The WQ registers
     * serve as temporaries (free outside a quantized block's weight loads).
     */
    const reduce4 = (vs: number[], into: number, add: (a: Expr, b: Expr) => Expr): Expr[] => {
      const g = (l: number) => get(l, v128);
      // (x0+x1, y0+y1, x2+x3, y2+y3)
      const pair = (x: number, y: number, t: number) =>
        m.local.set(t, add(m.i8x16.shuffle(g(x), g(y), lanes([0, 4], [2, 6])), m.i8x16.shuffle(g(x), g(y), lanes([1, 5], [3, 7]))));
      return [
        pair(vs[0], vs[1], WQ),
        pair(vs[2], vs[3], WQ + 1),
        // (u0 + u2, u1 + u3, v0 + v2, v1 + v3)
        m.local.set(into, add(m.i8x16.shuffle(g(WQ), g(WQ + 1), lanes([0, 1], [4, 5])), m.i8x16.shuffle(g(WQ), g(WQ + 1), lanes([2, 3], [6, 7])))),
      ];
    };
    // integer sums in two steps (any order is exact): pairSum(a, b) = (a0+a2, b0+b2, a1+a3, b1+b3)
    // from the interleaves x64 has single instructions for (punpckl/hdq), then quadSum of two pairs
    const pairSum = (x: number, y: number, into: number, add: (a: Expr, b: Expr) => Expr) =>
      m.local.set(into, add(m.i8x16.shuffle(get(x, v128), get(y, v128), lanes([0, 4], [1, 5])), m.i8x16.shuffle(get(x, v128), get(y, v128), lanes([2, 6], [3, 7]))));
    const quadSum = (u: number, v: number, into: number, add: (a: Expr, b: Expr) => Expr) =>
      m.local.set(into, add(m.i8x16.shuffle(get(u, v128), get(v, v128), lanes([0, 1], [4, 5])), m.i8x16.shuffle(get(u, v128), get(v, v128), lanes([2, 3], [6, 7]))));
    const addF = (a: Expr, b: Expr) => m.f32x4.add(a, b);
    const addI = (a: Expr, b: Expr) => m.i32x4.add(a, b);

    /**
     * Quantized block KB for rowsT rows: x rows arrive quantized (quantize_rows_q8: K/32 f32
     * scales, then K i16 codes); weight codes widen to i16 and i32x4.dot_i16x8_s sums the code
     * products exactly. The 4 outputs' integer sums are reduced into one vector, converted once
     * and scaled by the 4 weight scales × the row's x scale into accumulator ACC + i (lane j =
     * output j of the group).
     */
    /**
     * The block's 4 f16 row scales (at PWB) → f32x4 in VV, ×2^112 (exact for finite f16 values,
     * subnormals included): sign-extended and shifted left 13, the exponent and mantissa sit in
     * f32 position and the sign at bit 28 and above; clearing bits 28-30 leaves the sign at 31.
     */
    const halves = (offset: number) => m.f32x4.mul(
      m.v128.and(m.i32x4.shl(m.i32x4.extend_low_i16x8_s(m.v128.load64_zero(offset, 2, get(PWB))), wm.c32(13)), m.v128.const(i32x4Const(0x8fffffff | 0))),
      m.f32x4.splat(m.f32.const(2 ** 112)));
    // (q4_1: the minimums, in MM, the same way)
    const blockScales = (scheme?: WeightScheme): Expr[] => [
      m.local.set(VV, halves(0)),
      ...(scheme === "q4_1" ? [m.local.set(MM, halves(SCALES_BYTES))] : []),
    ];
    /**
     * Weight row j's 32 codes of the block at PWB as 4 i16x8 vectors in element order, in WQ.
     * q4_0 with `offset` false: the nibbles n = q + 8 as they are (the integer path subtracts
     * 8·Σx once per block instead).
     */
    const unpackCodes = (scheme: WeightScheme, j: number, offset = true): Expr[] => {
      const codes = codesAt(scheme) + j * CODE_BYTES[scheme];
      if (scheme === "q4_1") offset = false; // its codes are the nibbles
      // widening loads: 8 codes → i16x8 in one instruction (pmovsxbw from memory on x64)
      // (the address added here, not as the load's offset: V8 would keep base + offset of each
      // widening load in a register of its own across the loop, spilling)
      const codeAt = (offset: number) => m.i32.add(get(PWB), wm.c32(offset));
      if (scheme === "q8_0") return [0, 1, 2, 3].map((p) => m.local.set(WQ + p, m.v128.load8x8_s(0, 1, codeAt(codes + p * 8))));
      // byte t holds element t (low nibble) and t + 16 (high): 8 bytes zero-extended to i16
      // lanes give elements t..t+7 masked and t+16..t+23 shifted, then minus 8
      const c = (v: number) => m.v128.const(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? v : 0)));
      const out: Expr[] = [];
      const centre = (v: Expr) => (offset ? m.i16x8.sub(v, c(8)) : v);
      for (let h = 0; h < 2; h++) {
        out.push(m.local.set(WV, m.v128.load8x8_u(0, 1, codeAt(codes + h * 8))));
        out.push(m.local.set(WQ + h, centre(m.v128.and(get(WV, v128), c(15)))));
        out.push(m.local.set(WQ + 2 + h, centre(m.i16x8.shr_u(get(WV, v128), wm.c32(4)))));
      }
      return out;
    };

    /**
     * Dequantizes group G of the quantized weights at `weights` into the f32 group layout at
     * DQ + `into` bytes (chunks of 4 k's, 4 rows each: what the f32 tiles read), exactly as the
     * IR's dequantized values: code × f16 scale.
     */
    const dequantize = (scheme: WeightScheme, weights: number, into: number, tag: string): Expr => {
      const body: Expr[] = [m.local.set(PWB, m.i32.add(m.i32.add(get(weights), m.i32.mul(get(G), wm.c32(groupBytes))), m.i32.mul(get(KB), wm.c32(blockBytes(scheme))))), ...blockScales(scheme)];
      // block KB's 32 k's are chunks 8·KB .. 8·KB + 7 (64 bytes each) of the f32 group
      const dst = () => m.i32.add(get(DQ), m.i32.shl(get(KB), wm.c32(9)));
      for (let j = 0; j < GROUP; j++) {
        body.push(...unpackCodes(scheme, j), m.local.set(WV, m.f32x4.splat(m.f32x4.extract_lane(get(VV, v128), j))));
        // q4_1: code · scale + minimum, rounded as the IR's dequantized value
        const plusMin = (v: Expr) => (scheme === "q4_1" ? m.f32x4.add(v, m.f32x4.splat(m.f32x4.extract_lane(get(MM, v128), j))) : v);
        for (let p = 0; p < 4; p++) {
          const half = (lo: boolean) => plusMin(m.f32x4.mul(m.f32x4.convert_i32x4_s(lo ? m.i32x4.extend_low_i16x8_s(get(WQ + p, v128)) : m.i32x4.extend_high_i16x8_s(get(WQ + p, v128))), get(WV, v128)));
          body.push(m.v128.store(into + (2 * p) * 64 + j * 16, 4, dst(), half(true)), m.v128.store(into + (2 * p + 1) * 64 + j * 16, 4, dst(), half(false)));
        }
      }
      return wm.loop(`dq${weights}_${tag}`, KB, wm.c32(0), K / Q8_BLOCK, 1, body);
    };

    /**
     * Quantized block KB for rowsT rows: x rows arrive quantized (quantize_rows_q8: K/32 f32
     * scales, then K i16 codes); weight codes widen to i16 and i32x4.dot_i16x8_s sums the code
     * products exactly. The 4 outputs' integer sums are reduced into one vector, converted once
     * and scaled by the 4 weight scales × the row's x scale into accumulator ACC + i (lane j =
     * output j of the group).
     */
    const qBlock = (scheme: WeightScheme, rowsT: number): Expr[] => {
      const xCodesAt = (K / Q8_BLOCK) * 4; // x codes follow the row's scales
      const xCodes = (i: number, part: number) => m.v128.load(i * rowBytesQ + xCodesAt + part * 16, 2, m.i32.add(get(PX), m.i32.shl(get(KB), wm.c32(6))));
      const xScale = (i: number) => m.f32.load(i * rowBytesQ, 4, m.i32.add(get(PX), m.i32.shl(get(KB), wm.c32(2))));
      // PWB walks the blocks (set to the group's first by the caller)
      const out: Expr[] = [...blockScales(scheme)];
      for (let i = 0; i < rowsT; i++) out.push(m.local.set(XSF + i, xScale(i)));
      // relaxed SIMD, nibbles (0..15, within the 7 bits the 8-bit dot product needs): the 16
      // code bytes split into elements 0..15 (low nibbles) and 16..31 (high), each times the
      // x block's i8 codes by i16x8.relaxed_dot_i8x16_i7x16_s (pair sums ≤ 2·127·15, the two
      // halves' sum ≤ 7620: no i16 overflow), widened to i32 once
      const bytes8 = wm.relaxed && scheme !== "q8_0";
      const x8At = (K / Q8_BLOCK) * 8 + K * 2; // the i8 codes follow the block sums
      const xCodes8 = (i: number, half: number) => m.v128.load(i * rowBytesQ + x8At + half * 16, 1, m.i32.add(get(PX), m.i32.shl(get(KB), wm.c32(5))));
      // a single row's codes stay in registers for the whole block
      const keepX = rowsT === 1;
      if (keepX) for (let p = 0; p < (bytes8 ? 2 : 4); p++) out.push(m.local.set(XQ + p, bytes8 ? xCodes8(0, p) : xCodes(0, p)));
      const xv = (i: number, p: number) => (keepX ? get(XQ + p, v128) : bytes8 ? xCodes8(i, p) : xCodes(i, p));
      const low4 = () => m.v128.const(new Array(16).fill(15));
      for (let j = 0; j < GROUP; j++) {
        if (bytes8) {
          const code = m.v128.load(0, 1, m.i32.add(get(PWB), wm.c32(codesAt(scheme) + j * CODE_BYTES[scheme])));
          out.push(m.local.set(WV, code), m.local.set(WQ, m.v128.and(get(WV, v128), low4())), m.local.set(WQ + 1, m.v128.and(m.i16x8.shr_u(get(WV, v128), wm.c32(4)), low4())));
        } else out.push(...unpackCodes(scheme, j, false));
        for (let i = 0; i < rowsT; i++) {
          const dot = (p: number) => m.i32x4.dot_i16x8_s(xv(i, p), get(WQ + p, v128));
          const sum = bytes8
            ? m.i32x4.extadd_pairwise_i16x8_s(m.i16x8.add(wm.dotI8x16I7x16(xv(i, 0), get(WQ, v128)), wm.dotI8x16I7x16(xv(i, 1), get(WQ + 1, v128))))
            : m.i32x4.add(m.i32x4.add(dot(0), dot(1)), m.i32x4.add(dot(2), dot(3)));
          out.push(m.local.set(DOT + 4 * i + j, sum));
          // an ordering store, into this thread's (here unused) dequantization buffer: V8 keeps
          // memory reads in program order but places pure SIMD ops as late as it can, so
          // without it every code and x load of the block would issue first and most of them
          // spill (the disassembly showed ~50 spill moves a block). The store needs this
          // output's sum before any load that follows it: loads stay next to their dot
          // products. 1.5× on 128-row integer GEMMs, 1.25× on GEMVs. (Relaxed 4-bit blocks
          // load half as much and gain nothing: no store there.)
          if (!bytes8) out.push(m.v128.store(16 * (4 * i + j), 16, get(DQ), get(DOT + 4 * i + j, v128)));
          // fold outputs (0, 1) and (2, 3) as soon as both exist: fewer live registers
          if (j % 2 === 1) out.push(pairSum(DOT + 4 * i + j - 1, DOT + 4 * i + j, DOT + 4 * i + (j >> 1), addI));
        }
      }
      // the block's sum of x codes (quantize_rows_q8). q4_0: the nibbles were n = q + 8, so
      // Σq·x = Σn·x − 8·Σx. q4_1: Σ(n·d + min)·x = d·Σn·x + min·Σx
      const xSum = (i: number) => m.i32.load(i * rowBytesQ + xCodesAt + K * 2, 4, m.i32.add(get(PX), m.i32.shl(get(KB), wm.c32(2))));
      for (let i = 0; i < rowsT; i++) {
        out.push(quadSum(DOT + 4 * i, DOT + 4 * i + 1, DOT + 4 * i, addI));
        if (scheme === "q4_0") out.push(m.local.set(DOT + 4 * i, m.i32x4.sub(get(DOT + 4 * i, v128), m.i32x4.splat(m.i32.shl(xSum(i), wm.c32(3))))));
        const scale = m.f32x4.mul(get(VV, v128), m.f32x4.splat(get(XSF + i, f32)));
        out.push(m.local.set(ACC + i, wm.madd(m.f32x4.convert_i32x4_s(get(DOT + 4 * i, v128)), scale, get(ACC + i, v128))));
        if (scheme === "q4_1")
          out.push(m.local.set(ACC + i, wm.madd(get(MM, v128), m.f32x4.splat(m.f32.mul(get(XSF + i, f32), m.f32.convert_s.i32(xSum(i)))), get(ACC + i, v128))));
      }
      out.push(m.local.set(PWB, m.i32.add(get(PWB), wm.c32(blockBytes(scheme)))));
      return out;
    };

    // (r+i)*N + 4g + j, in bytes
    const at = (base: number) => m.i32.add(get(base), m.i32.shl(m.i32.add(m.i32.mul(get(R), wm.c32(N)), m.i32.shl(get(G), wm.c32(2))), wm.c32(2)));
    const vact = act ? vectorActivation(wm, act) : undefined;
    const scalarAct = (s: Expr) => (!act ? s : act === "relu" ? m.f32.max(s, m.f32.const(0)) : wm.callLibF32(`act_${act}`, [s]));

    /**
     * Row i's sums of the group's outputs (lane j, `cols` valid) through the epilogue into out:
     * bias, activation, residual; or, gated, act(gate sums) ⊙ sums.
     */
    const epilogue = (i: number, sums: number, cols: number): Expr[] => {
      // fuse-norm: row R + i's RMSNorm factor scales its sums (and the gate's) before anything
      // else; a LayerNorm's mean times the weights' row sums comes off first
      const pre: Expr[] = [];
      if (ln && cols < GROUP) {
        // a partial group: lane by lane (the row sums end at output N)
        for (let j = 0; j < cols; j++) pre.push(m.local.set(sums, m.f32x4.replace_lane(get(sums, v128), j, normScalar(i, j, m.f32x4.extract_lane(get(sums, v128), j)))));
      } else if (ln) {
        const rowsum = m.v128.load(N * 4, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4))));
        const centred = m.f32x4.sub(get(sums, v128), m.f32x4.mul(m.f32x4.splat(lnMean(i)), rowsum));
        pre.push(m.local.set(sums, m.f32x4.mul(centred, m.f32x4.splat(normFactor(i)))));
      } else if (normAt !== undefined)
        for (const l of gated ? [GATE + i, sums] : [sums]) pre.push(m.local.set(l, m.f32x4.mul(get(l, v128), m.f32x4.splat(normFactor(i)))));
      return [...pre, ...epilogueScaled(i, sums, cols)];
    };
    /** Row R + i's fused-norm factor (RMSNorm) or its LayerNorm mean and factor. */
    const normRow = (i: number, at: number) => m.f32.load((ln ? 2 * i + at : i) * 4, 4, m.i32.add(wm.c32(normAt!), m.i32.shl(get(R), wm.c32(ln ? 3 : 2))));
    const normFactor = (i: number) => normRow(i, 1);
    const lnMean = (i: number) => normRow(i, 0);
    /** A scalar sum of output j of row i through the fused norm. */
    const normScalar = (i: number, j: number, s: Expr): Expr => {
      if (ln) s = m.f32.sub(s, m.f32.mul(lnMean(i), m.f32.load((N + j) * 4, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4))))));
      return normAt === undefined ? s : m.f32.mul(s, normFactor(i));
    };
    const epilogueScaled = (i: number, sums: number, cols: number): Expr[] => {
      if (cols === GROUP) {
        const activate = (v: Expr, tmp: number): Expr => {
          if (vact) return m.call(vact, [v], v128);
          if (!act) return v;
          const out: Expr[] = [m.local.set(tmp, v)];
          for (let j = 0; j < GROUP; j++) out.push(m.local.set(tmp, m.f32x4.replace_lane(get(tmp, v128), j, scalarAct(m.f32x4.extract_lane(get(tmp, v128), j)))));
          return m.block(null, [...out, get(tmp, v128)], v128);
        };
        let v = get(sums, v128);
        if (gated) v = m.f32x4.mul(activate(get(GATE + i, v128), GATE + i), v);
        else {
          if (bias) v = m.f32x4.add(v, m.v128.load(0, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4)))));
          v = activate(v, sums);
        }
        if (residual) v = m.f32x4.add(v, m.v128.load(i * N * 4, 4, at(RES)));
        return [m.v128.store(i * N * 4, 4, at(OUT), v)];
      }
      const out: Expr[] = [];
      for (let j = 0; j < cols; j++) {
        let s = m.f32x4.extract_lane(get(sums, v128), j);
        if (gated) s = m.f32.mul(scalarAct(m.f32x4.extract_lane(get(GATE + i, v128), j)), s);
        else {
          if (bias) s = m.f32.add(s, m.f32.load(j * 4, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4)))));
          s = scalarAct(s);
        }
        if (residual) s = m.f32.add(s, m.f32.load((i * N + j) * 4, 4, at(RES)));
        out.push(m.f32.store((i * N + j) * 4, 4, at(OUT), s));
      }
      return out;
    };

    /**
     * rowsT rows of x (from R) × group G of the weights at `weights` (a parameter local): each
     * row's 4 sums as one vector in local into(i). Paths: integer (quantized weights, x rows
     * quantized), f32 on dequantized weights in the thread's buffer (`dq`), or plain f32.
     * Needs K % 4 = 0 or quantized weights.
     */
    const sums = (rowsT: number, cols: number, weights: number, into: (i: number) => number, dq: boolean, panel: Panel | "all"): Expr[] => {
      if (quant && !dq) {
        const body: Expr[] = [m.local.set(PW, m.i32.add(get(weights), m.i32.mul(get(G), wm.c32(groupBytes))))];
        // one accumulator a row, lane j = output j (rows past N in the last group are zero codes)
        for (let i = 0; i < rowsT; i++) body.push(m.local.set(ACC + i, m.v128.const(ZERO)));
        body.push(m.local.set(PWB, get(PW)));
        body.push(wm.loop(`q${rowsT}x${cols}_${weights}`, KB, wm.c32(0), K / Q8_BLOCK, 1, qBlock(quant, rowsT)));
        for (let i = 0; i < rowsT; i++) body.push(m.local.set(into(i), get(ACC + i, v128)));
        return body;
      }
      const body: Expr[] = [];
      for (let a = 0; a < rowsT * cols; a++) body.push(m.local.set(ACC + a, m.v128.const(ZERO)));
      // "all": the panels one after the other into the same accumulators
      for (const p of panel === "all" ? panels : [panel]) {
        // the gated kernel's second weights (in the bias slot) dequantize after the first's group
        // (group G's piece of panel p)
        const at = dq ? m.i32.add(get(DQ), wm.c32(weights === W ? 0 : GROUP * K * 4)) : m.i32.add(get(weights), m.i32.add(wm.c32(p.at * 4), m.i32.mul(get(G), wm.c32(GROUP * p.size * 4))));
        body.push(m.local.set(PW, at), ...floatTile(rowsT, cols, `${weights}${dq ? "d" : ""}p${p.index}${panel === "all" ? "a" : ""}`, p));
      }
      // the lane sums of each row's accumulators (a partial group's missing outputs read as zero)
      for (let i = 0; i < rowsT; i++) {
        const accs = [0, 1, 2, 3].map((j) => (j < cols ? ACC + i * cols + j : DOT + j));
        for (let j = cols; j < GROUP; j++) body.push(m.local.set(DOT + j, m.v128.const(ZERO)));
        body.push(...reduce4(accs, into(i), addF));
      }
      return body;
    };

    /** Adds rowsT rows (f32 x at PX) × cols outputs of the f32 group's panel at PW to the accumulators ACC + i·cols + j. */
    const floatTile = (rowsT: number, cols: number, tag: string, { k0, size }: Panel): Expr[] => {
      const K4 = Math.min(k0 + size, K - Kt) - k0;
      const acc = (i: number, j: number) => ACC + i * cols + j;
      const body: Expr[] = [];
      // one k-chunk (16 bytes of x per row) at byte offset kb + 16·c of x
      const chunk = (c: number): Expr[] => {
        const kb = () => get(KB);
        const out: Expr[] = [];
        for (let i = 0; i < rowsT; i++) out.push(m.local.set(XV + i, m.v128.load(i * K * 4 + k0 * 4 + 16 * c, 4, m.i32.add(get(PX), kb()))));
        for (let j = 0; j < cols; j++) {
          // the chunk at x byte offset kb sits at 4·kb in the group, row j 16 bytes further
          out.push(m.local.set(WV, m.v128.load(j * 16 + 64 * c, 4, m.i32.add(get(PW), m.i32.shl(kb(), wm.c32(2))))));
          for (let i = 0; i < rowsT; i++) {
            const a = acc(i, j);
            out.push(m.local.set(a, wm.madd(get(XV + i, v128), get(WV, v128), get(a, v128))));
          }
        }
        return out;
      };
      // a single row (decode): 2 chunks an iteration, half the loop overhead on the weight stream
      const unroll = rowsT === 1 && K4 % 8 === 0 ? 2 : 1;
      if (K4 > 0) body.push(wm.loop(`k${rowsT}x${cols}_${tag}`, KB, wm.c32(0), K4 * 4, 16 * unroll, unroll === 2 ? [...chunk(0), ...chunk(1)] : chunk(0)));
      return body;
    };

    /** rowsT rows of x (from R) × cols outputs of group G (dq: on the dequantized group). */
    const tile = (rowsT: number, cols: number, dq: boolean, panel: Panel | "all"): Expr => {
      const intPath = quant !== undefined && !dq;
      // the integer path reads the rows quantize_rows_q8 wrote to the scratch area
      const xBase = intPath ? wm.c32(addrs!.xq) : get(X);
      const body: Expr[] = [m.local.set(PX, m.i32.add(xBase, m.i32.mul(get(R), wm.c32(intPath ? rowBytesQ : K * 4))))];
      if (gated) body.push(...sums(rowsT, cols, W, (i) => GATE + i, dq, panel), ...sums(rowsT, cols, B, (i) => ROWV + i, dq, panel));
      else if (quant || Kt === 0) body.push(...sums(rowsT, cols, W, (i) => ROWV + i, dq, panel));
      else {
        // K % 4 tail: scalar sums per output
        for (let a = 0; a < rowsT * cols; a++) body.push(m.local.set(ACC + a, m.v128.const(ZERO)));
        body.push(m.local.set(PW, m.i32.add(get(W), m.i32.mul(get(G), wm.c32(groupBytes)))), ...floatTile(rowsT, cols, "t", panels[0]));
        const acc = (i: number, j: number) => ACC + i * cols + j;
        for (let i = 0; i < rowsT; i++)
          for (let j = 0; j < cols; j++) {
            const lane = (l: number) => m.f32x4.extract_lane(get(acc(i, j), v128), l);
            let s = m.f32.add(m.f32.add(lane(0), lane(1)), m.f32.add(lane(2), lane(3)));
            for (let t = 0; t < Kt; t++)
              s = m.f32.add(s, m.f32.mul(m.f32.load(i * K * 4 + (K4 + t) * 4, 4, get(PX)), m.f32.load((4 * K4 + j * Kt + t) * 4, 4, get(PW))));
            s = normScalar(i, j, s);
            if (bias) s = m.f32.add(s, m.f32.load(j * 4, 4, m.i32.add(get(B), m.i32.shl(get(G), wm.c32(4)))));
            s = scalarAct(s);
            if (residual) s = m.f32.add(s, m.f32.load((i * N + j) * 4, 4, at(RES)));
            body.push(m.f32.store((i * N + j) * 4, 4, at(OUT), s));
          }
        return m.block(null, body);
      }
      for (let i = 0; i < rowsT; i++) body.push(...finish(i, ROWV + i, cols, panel));
      return m.block(null, body);
    };
    /**
     * Row R + i's sums of group G (in local `sums`; gated: and GATE + i) after `panel`: with
     * panels before it, their sums (left in out, the gate's in the scratch) are added; all but
     * the last panel leave the sums there, the last one runs the epilogue.
     */
    const finish = (i: number, sums: number, cols: number, panel: Panel | "all"): Expr[] => {
      if (panel === "all" || panels.length === 1) return epilogue(i, sums, cols);
      const body: Expr[] = [];
      const partials: [number, () => Expr][] = [[sums, () => at(OUT)], ...(gated ? [[GATE + i, gateAt] as [number, () => Expr]] : [])];
      for (const [l, addr] of partials) {
        if (panel.index > 0) body.push(m.local.set(l, m.f32x4.add(get(l, v128), loadLanes(i * N * 4, addr, cols))));
        if (!panel.last) body.push(...storeLanes(i * N * 4, addr, l, cols));
      }
      return panel.last ? [...body, ...epilogue(i, sums, cols)] : body;
    };

    /**
     * A single row (decode) × two groups of `panel` at once, G0 + T and G0 + HALF + T: two weight
     * streams read side by side, each x vector loaded once for both. One stream of v128 loads
     * reads 25-29 GB/s here, two 28-32 (the same 256 MB). The sums are those of the 1-row tile
     * (same accumulation order), so a group's outputs do not depend on its pairing.
     */
    const pairTile = (panel: Panel): Expr => {
      const { k0, size } = panel;
      const group = (G: Expr) => m.i32.add(get(W), m.i32.add(wm.c32(panel.at * 4), m.i32.mul(G, wm.c32(GROUP * size * 4))));
      const body: Expr[] = [
        m.local.set(R, get(RB)),
        m.local.set(PX, m.i32.add(get(X), m.i32.mul(get(R), wm.c32(K * 4)))),
        m.local.set(PW, group(m.i32.add(get(G0), get(T)))),
        m.local.set(PW2, group(m.i32.add(m.i32.add(get(G0), get(HALF)), get(T)))),
      ];
      for (let a = 0; a < 2 * GROUP; a++) body.push(m.local.set(ACC + a, m.v128.const(ZERO)));
      const chunk = (c: number): Expr[] => {
        const out: Expr[] = [m.local.set(XV, m.v128.load(k0 * 4 + 16 * c, 4, m.i32.add(get(PX), get(KB))))];
        for (const [h, pw] of [[0, PW], [1, PW2]])
          for (let j = 0; j < GROUP; j++) {
            out.push(m.local.set(WV, m.v128.load(j * 16 + 64 * c, 4, m.i32.add(get(pw), m.i32.shl(get(KB), wm.c32(2))))));
            out.push(m.local.set(ACC + 4 * h + j, wm.madd(get(XV, v128), get(WV, v128), get(ACC + 4 * h + j, v128))));
          }
        return out;
      };
      body.push(wm.loop(`pk${panel.index}`, KB, wm.c32(0), size * 4, 32, [...chunk(0), ...chunk(1)]));
      body.push(...reduce4([ACC, ACC + 1, ACC + 2, ACC + 3], ROWV, addF), ...reduce4([ACC + 4, ACC + 5, ACC + 6, ACC + 7], ROWV + 1, addF));
      body.push(m.local.set(G, m.i32.add(get(G0), get(T))), ...finish(0, ROWV, GROUP, panel));
      body.push(m.local.set(G, m.i32.add(m.i32.add(get(G0), get(HALF)), get(T))), ...finish(0, ROWV + 1, GROUP, panel));
      return m.block(null, body);
    };
    // a gated kernel's partial gate sums of rows R.. (from the row block's start RB), group G
    const gateAt = () => m.i32.add(wm.c32(gateSumsAt ?? 0), m.i32.shl(m.i32.add(m.i32.mul(m.i32.sub(get(R), get(RB)), wm.c32(N)), m.i32.shl(get(G), wm.c32(2))), wm.c32(2)));
    /** The first `cols` f32 at addr + offset as a vector (the others zero), and a vector's first `cols` lanes stored there. */
    const loadLanes = (offset: number, addr: () => Expr, cols: number): Expr => {
      if (cols === GROUP) return m.v128.load(offset, 4, addr());
      let v = m.v128.const(ZERO);
      for (let j = 0; j < cols; j++) v = m.f32x4.replace_lane(v, j, m.f32.load(offset + 4 * j, 4, addr()));
      return v;
    };
    const storeLanes = (offset: number, addr: () => Expr, l: number, cols: number): Expr[] =>
      cols === GROUP ? [m.v128.store(offset, 4, addr(), get(l, v128))] : Array.from({ length: cols }, (_, j) => m.f32.store(offset + 4 * j, 4, addr(), m.f32x4.extract_lane(get(l, v128), j)));

    /** All rows of the current row block against output group G (cols valid outputs). */
    const rowsOfGroup = (cols: number, panel: Panel | "all" = "all"): Expr[] => {
      const tag = `${cols}p${panel === "all" ? "a" : panel.index}`;
      const rowsLoops = (dq: boolean) => [
        wm.loop(`r${TILE_ROWS}x${tag}${dq ? "d" : ""}`, R, get(RB), () => m.i32.sub(get(REND), wm.c32(TILE_ROWS - 1)), TILE_ROWS, [tile(TILE_ROWS, cols, dq, panel)]),
        wm.loop(`r1x${tag}${dq ? "d" : ""}`, R, get(R), () => get(REND), 1, [tile(1, cols, dq, panel)]),
      ];
      if (!quant) return rowsLoops(false);
      // few rows: integer dot products; more: dequantize the group once for the row block, f32 tiles
      const dequantized = [dequantize(quant, W, 0, tag), ...(gated ? [dequantize(quant, B, GROUP * K * 4, tag)] : []), ...rowsLoops(true)];
      return [m.if(m.i32.le_s(get(ROWS), wm.c32(intRows)), m.block(null, rowsLoops(false)), m.block(null, dequantized))];
    };

    const full = N >> 2, part = N % 4;
    const perBlock: Expr[] = [
      m.local.set(REND, m.select(m.i32.lt_s(m.i32.add(get(RB), wm.c32(ROW_BLOCK)), get(ROWS)), m.i32.add(get(RB), wm.c32(ROW_BLOCK)), get(ROWS))),
    ];
    // full groups in [from, min(to, full)), then the partial group if it is in range
    const groups = (panel: Panel | "all"): Expr[] => {
      const tag = panel === "all" ? "a" : panel.index;
      return [
        ...(full > 0 ? [wm.loop(`g${tag}`, G, get(G0), () => m.select(m.i32.lt_s(get(G1), wm.c32(full)), get(G1), wm.c32(full)), 1, rowsOfGroup(4, panel))] : []),
        ...(part > 0 ? [m.if(m.i32.gt_s(get(G1), wm.c32(full)), m.block(null, [m.local.set(G, wm.c32(full)), ...rowsOfGroup(part, panel)]))] : []),
      ];
    };
    // a single row of a plain f32 linear: full groups in pairs (pairTile), then the odd one and
    // the partial group as above
    const pairs = (panel: Panel): Expr[] => {
      const end = () => m.select(m.i32.lt_s(get(G1), wm.c32(full)), get(G1), wm.c32(full));
      return [
        m.local.set(NG, m.i32.sub(end(), get(G0))),
        m.local.set(HALF, m.i32.shr_s(get(NG), wm.c32(1))),
        wm.loop(`pp${panel.index}`, T, wm.c32(0), () => get(HALF), 1, [pairTile(panel)]),
        m.if(m.i32.and(get(NG), wm.c32(1)), m.block(null, [m.local.set(G, m.i32.sub(end(), wm.c32(1))), ...rowsOfGroup(4, panel)])),
        ...(part > 0 ? [m.if(m.i32.gt_s(get(G1), wm.c32(full)), m.block(null, [m.local.set(G, wm.c32(full)), ...rowsOfGroup(part, panel)]))] : []),
      ];
    };
    const paired = !quant && !gated && Kt === 0 && panels.every((p) => p.size % 8 === 0) && full > 1;
    const streamed = (panel: Panel): Expr[] =>
      paired ? [m.if(m.i32.eq(get(ROWS), wm.c32(1)), m.block(null, pairs(panel)), m.block(null, groups(panel)))] : groups(panel);
    // calls of few rows (decode) go panel by panel over all groups, so that x's panel stays in
    // L1 while the weights stream; more rows group by group, the group's panels one after the
    // other into the same accumulators (its weights stay in cache for all rows of the block)
    if (panels.length === 1 && !paired) perBlock.push(...groups("all"));
    else perBlock.push(m.if(m.i32.le_s(get(ROWS), wm.c32(STREAM_ROWS)), m.block(null, panels.flatMap(streamed)), m.block(null, groups("all"))));
    const body = m.block(null, [
      // this thread's dequantization buffer
      ...(quant ? [m.local.set(DQ, m.i32.add(wm.c32(addrs!.dq), m.i32.mul(get(TID), wm.c32(dequantBytes(K)))))] : []),
      wm.loop("rb", RB, wm.c32(0), () => get(ROWS), ROW_BLOCK, perBlock),
    ]);
    m.addFunction(name, createType(PARAMS), none, LOCALS, body);
  });
}
