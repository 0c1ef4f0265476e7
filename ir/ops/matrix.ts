// Matrix products: linear (with the epilogues and fused norms the passes fold into it), the gated
// pair of a gated FFN, and matmul (which canonicalize-matmul turns into linear).

import { bool, float, int, oneOf, optional } from "../attrs.js";
import { Q8_BLOCK, integerPath, quantizeRowQ8 } from "../quant.js";
import { QUANT_SCHEMES, type TensorType, formatType, sameShape } from "../types.js";
import { ACTIVATIONS, activations } from "./elementwise.js";
import { type OpDef, type Role, defineOp, expect, expectF32, f32, lastDim, operand } from "./def.js";

/** Each row's LayerNorm mean and factor 1 / sqrt(var + eps), summed in f64 and rounded once to f32 (the kernel sums in f32). */
function rowMeanInv(x: ArrayLike<number>, K: number, eps: number): { mean: Float32Array; inv: Float32Array } {
  const R = x.length / K, mean = new Float32Array(R), inv = new Float32Array(R);
  for (let i = 0; i < R; i++) {
    let s = 0, q = 0;
    for (let k = 0; k < K; k++) s += x[i * K + k];
    const mu = s / K;
    for (let k = 0; k < K; k++) q += (x[i * K + k] - mu) ** 2;
    mean[i] = mu;
    inv[i] = 1 / Math.sqrt(q / K + eps);
  }
  return { mean, inv };
}

/** Each row's RMSNorm factor 1 / sqrt(mean(x²) + eps), for a matrix kernel with a fused RMSNorm (attr rms_eps). */
function rowRmsInv(x: ArrayLike<number>, K: number, eps: number | undefined): (i: number) => number {
  if (eps === undefined) return () => 1;
  const inv = new Float32Array(x.length / K);
  for (let i = 0; i < inv.length; i++) {
    let ss = 0;
    for (let k = 0; k < K; k++) ss += x[i * K + k] ** 2;
    inv[i] = 1 / Math.sqrt(ss / K + eps);
  }
  return (i) => inv[i];
}

/**
 * Dot products of x's rows with rows of a weight [N, K]: exact f32 inputs summed in f64, or, for
 * quantized linears, each x row quantized to q8_0 blocks first (as the integer kernels do).
 */
function rowDots(x: ArrayLike<number>, K: number, quantized: boolean) {
  const rows = new Map<number, ReturnType<typeof quantizeRowQ8>>();
  return (i: number, w: ArrayLike<number>, n: number): number => {
    let s = 0;
    if (!quantized) {
      for (let k = 0; k < K; k++) s += x[i * K + k] * w[n * K + k];
      return s;
    }
    let q = rows.get(i);
    if (!q) rows.set(i, (q = quantizeRowQ8(x, i * K, K)));
    for (let bl = 0; bl < K / Q8_BLOCK; bl++) {
      let dot = 0;
      for (let t = bl * Q8_BLOCK; t < (bl + 1) * Q8_BLOCK; t++) dot += q.codes[t] * w[n * K + t];
      s += q.scales[bl] * dot;
    }
    return s;
  };
}

/** A matrix kernel's quantization attributes, checked against its input x. */
function expectQuant(op: string, x: TensorType, a: { quant?: string; int_rows?: number; int_rows_relaxed?: number }) {
  if (a.quant !== undefined) expect(lastDim(x) % Q8_BLOCK === 0, `${op}: quant ${a.quant} needs K a multiple of ${Q8_BLOCK}`);
  for (const [name, rows] of [["int_rows", a.int_rows], ["int_rows_relaxed", a.int_rows_relaxed]] as const)
    if (rows !== undefined) expect(a.quant !== undefined && rows >= 0, `${op}: ${name} needs quantized weights and a row count ≥ 0, got ${rows}`);
}

const quantAttrs = { quant: optional(oneOf(QUANT_SCHEMES)), int_rows: optional(int), int_rows_relaxed: optional(int) };

/** linear's operands: x, w, then a bias where there is one more, then the residual (attr residual) last. */
const linearRoles = (a: { residual?: boolean }, count: number): readonly Role[] => {
  const extra = count - 2 - (a.residual ? 1 : 0);
  return ["activation", "weight", ...(extra > 0 ? (["bias"] as const) : []), ...(a.residual ? (["residual"] as const) : [])];
};

export const matrixOps = {
  /**
   * x[R,K] · w[N,K]ᵀ (+ b[N]): the torch.nn.Linear convention. Epilogues (set by fuse-ffn):
   * attr act applies an activation, attr residual adds a last operand r[R,N] after it. attr
   * rms_eps (set by fuse-norm): x is RMS-normalised first, rows scaled by 1/sqrt(mean(x²) + eps)
   * (the norm's gain is folded into w). attr ln_eps (set by fuse-norm): x is LayerNorm-normalised
   * first, computed as (x·wᵀ − mean·Σₖw)·(1/sqrt(var + eps)): b is then [2, N], the bias (with the
   * norm's shift folded in, w·β + b) and the row sums Σₖ w[n, k] (with the gain folded into w).
   * attr quant "q8_0", "q4_0" or "q4_1" (set by quantize-weights): w holds the dequantized weights of
   * that scheme; in a call of at most attr int_rows rows (every call without it; set by
   * quantize-weights; int_rows_relaxed instead in the relaxed-SIMD module where set) each row of x
   * is quantized to q8_0 on the fly (see quantizeRowQ8), as the integer kernels do, while larger
   * calls multiply f32 x by the dequantized weights (ir/quant.ts integerPath).
   */
  linear: defineOp({
    attrs: { act: optional(oneOf(ACTIVATIONS)), residual: optional(bool), rms_eps: optional(float), ln_eps: optional(float), ...quantAttrs },
    arity: [2, 4],
    roles: linearRoles,
    traits: ["pure", "rowwise"],
    infer: (args, a) => {
      const [x, w] = args;
      expectF32(x, "input");
      expect(w.shape.length === 2 && x.shape.length === 2, `linear needs x[rows,K] and w[N,K], got ${formatType(x)} and ${formatType(w)}`);
      expect(w.shape[1] === lastDim(x), `linear: input width ${lastDim(x)} does not match weight ${formatType(w)} (expected [N,${lastDim(x)}])`);
      const out = f32([x.shape[0], w.shape[0]]);
      expect(args.length - (a.residual ? 1 : 0) <= 3, `linear takes at most a bias and a residual`);
      const roles = linearRoles(a, args.length);
      const b = operand(roles, args, "bias"), r = operand(roles, args, "residual");
      if (a.ln_eps !== undefined) expect(b !== undefined && b.shape.length === 2 && b.shape[0] === 2 && b.shape[1] === w.shape[0], `linear: a fused LayerNorm (ln_eps) takes b[2, ${w.shape[0]}] (bias, weight row sums), got ${b ? formatType(b) : "none"}`);
      else if (b) expect(b.shape.length === 1 && b.shape[0] === w.shape[0], `linear: bias ${formatType(b)} does not match ${w.shape[0]} outputs`);
      expect(a.ln_eps === undefined || a.rms_eps === undefined, `linear: ln_eps and rms_eps exclude each other`);
      if (a.residual) expect(r !== undefined && sameShape(r.shape, out.shape), `linear: residual must be ${formatType(out)}`);
      expectQuant("linear", x, a);
      return out;
    },
    interp: (args, a, _n, [, wt], st) => {
      const [x, w] = args;
      const [N, K] = wt.shape as number[];
      const roles = linearRoles(a, args.length);
      const b = operand(roles, args, "bias"), r = operand(roles, args, "residual");
      const act = a.act ? activations[a.act] : undefined;
      const dots = rowDots(x, K, integerPath(a, x.length / K, st.relaxed));
      const R = x.length / K;
      const out = new Float32Array(R * N);
      const inv = rowRmsInv(x, K, a.rms_eps);
      const ln = a.ln_eps === undefined ? undefined : rowMeanInv(x, K, a.ln_eps);
      const dot = ln ? (i: number, n: number) => (dots(i, w, n) - ln.mean[i] * b![N + n]) * ln.inv[i] : (i: number, n: number) => dots(i, w, n) * inv(i);
      for (let i = 0; i < R; i++)
        for (let n = 0; n < N; n++) {
          // each step rounds to f32 as the unfused ops would
          let y = Math.fround(Math.fround(dot(i, n)) + (b ? b[n] : 0));
          if (act) y = Math.fround(act(y));
          out[i * N + n] = r ? y + r[i * N + n] : y;
        }
      return out;
    },
  }),
  /**
   * act(x · wgᵀ) ⊙ (x · wuᵀ): a gated FFN's gate and up projections in one pass (fuse-ffn makes
   * it from linear → act, linear, mul). attrs rms_eps, quant, int_rows and int_rows_relaxed as for linear (both
   * weights one scheme).
   */
  gated_linear: defineOp({
    attrs: { act: oneOf(ACTIVATIONS), rms_eps: optional(float), ...quantAttrs },
    arity: 3,
    roles: ["activation", "weight", "weight"],
    traits: ["pure", "rowwise"],
    infer: ([x, wg, wu], a) => {
      expectF32(x, "input");
      expect(x.shape.length === 2 && wg.shape.length === 2 && sameShape(wg.shape, wu.shape), `gated_linear needs x[rows,K] and two weights [N,K] of one shape, got ${formatType(x)}, ${formatType(wg)}, ${formatType(wu)}`);
      expect(wg.shape[1] === lastDim(x), `gated_linear: input width ${lastDim(x)} does not match weight ${formatType(wg)}`);
      expectQuant("gated_linear", x, a);
      return f32([x.shape[0], wg.shape[0]]);
    },
    interp: ([x, wg, wu], a, _n, [, wt], st) => {
      const [N, K] = wt.shape as number[];
      const act = activations[a.act];
      const dots = rowDots(x, K, integerPath(a, x.length / K, st.relaxed));
      const R = x.length / K;
      const out = new Float32Array(R * N);
      const inv = rowRmsInv(x, K, a.rms_eps);
      for (let i = 0; i < R; i++)
        for (let n = 0; n < N; n++) out[i * N + n] = Math.fround(act(Math.fround(dots(i, wg, n) * inv(i))) * Math.fround(dots(i, wu, n) * inv(i)));
      return out;
    },
  }),
  /** x[R,K] · w[K,N]; codegen needs w to be a parameter (canonicalize-matmul turns it into linear). */
  matmul: defineOp({
    attrs: {},
    arity: 2,
    roles: ["activation", "activation"],
    traits: ["pure"],
    infer: ([x, w]) => {
      expect(w.shape.length === 2 && x.shape.length === 2, `matmul needs 2-D operands, got ${formatType(x)} and ${formatType(w)}`);
      expect(w.shape[0] === lastDim(x), `matmul: inner dimensions differ: ${formatType(x)} @ ${formatType(w)}`);
      return f32([x.shape[0], w.shape[1]]);
    },
    interp: ([x, w], _a, _n, [, wt]) => {
      const [K, N] = wt.shape as number[];
      const R = x.length / K;
      const out = new Float32Array(R * N);
      for (let r = 0; r < R; r++)
        for (let k = 0; k < K; k++) {
          const xv = x[r * K + k];
          for (let n = 0; n < N; n++) out[r * N + n] += xv * w[k * N + n];
        }
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
