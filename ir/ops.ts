// The op table: every IR op is defined here once, with its operand count, its
// shape/dtype rule and its reference semantics (the interpreter). Lowerings to wasm
// live in compiler/codegen/lower.ts, keyed by the same OpKind, so a missing lowering
// is a type error there.

import { Q8_BLOCK, integerPath, quantizeRowQ8 } from "./quant.js";
import { relativeBucket } from "./relpos.js";
import { type Attrs, type Dim, type Node, type QuantScheme, type Shape, type TensorType, QUANT_SCHEMES, rowWidth, sameShape, formatType } from "./types.js";

export type Value = Float32Array | Int32Array;

/** Run-time state the reference semantics need: past length and the KV caches. */
export interface InterpState {
  past: number;
  context: number;
  /** Per cached attention node (keyed "graph:node"), keys and values for `context` rows. */
  caches: Map<string, { k: Float32Array; v: Float32Array }>;
  graph: string;
  params: (name: string) => Float32Array;
  inputs: (name: string) => Value;
}

export class ShapeError extends Error {}

/** Which KV cache a cached attention node uses: entries sharing a key share the cache. */
export function cacheKey(graph: string, n: Node): string {
  return typeof n.attrs.cache === "string" ? n.attrs.cache : `${graph}:${n.id}`;
}

export interface OpDef {
  /** Operand count: exact, or [min, max]. */
  readonly arity: number | readonly [number, number];
  readonly infer: (args: readonly TensorType[], attrs: Attrs) => TensorType;
  readonly interp: (args: readonly Value[], attrs: Attrs, node: Node, types: readonly TensorType[], st: InterpState) => Value;
}

const f32 = (shape: Shape): TensorType => ({ dtype: "f32", shape });
const rowsOf = (v: Value, width: number) => v.length / width;

function expect(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new ShapeError(msg);
}
function expectF32(t: TensorType, what: string) {
  expect(t.dtype === "f32", `${what} must be f32, got ${formatType(t)}`);
}
function lastDim(t: TensorType): number {
  const d = t.shape[t.shape.length - 1];
  expect(typeof d === "number", `last dimension of ${formatType(t)} must be static`);
  return d;
}
function num(a: Attrs, k: string): number {
  return a[k] as number;
}

function unary(fn: (x: number) => number): OpDef {
  return {
    arity: 1,
    infer: ([x]) => (expectF32(x, "operand"), x),
    interp: ([x]) => (x as Float32Array).map(fn),
  };
}

/** Shapes broadcast when they are equal or when b is a trailing part of a. */
function broadcast(a: TensorType, b: TensorType): TensorType {
  expectF32(a, "left operand");
  expectF32(b, "right operand");
  const tail = a.shape.slice(a.shape.length - b.shape.length);
  expect(sameShape(tail, b.shape), `cannot broadcast ${formatType(b)} onto ${formatType(a)}`);
  return a;
}
function binary(fn: (x: number, y: number) => number): OpDef {
  return {
    arity: 2,
    infer: ([a, b]) => broadcast(a, b),
    interp: ([a, b]) => {
      const out = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = fn(a[i], b[i % b.length]);
      return out;
    },
  };
}

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

/** Elementwise activations: ops of their own, and epilogues a fused linear can apply. */
export const activations = {
  gelu: geluErf,
  gelu_tanh: geluTanh,
  silu: (x: number) => x / (1 + Math.exp(-x)),
  relu: (x: number) => (x > 0 ? x : 0),
} satisfies Record<string, (x: number) => number>;
export type Activation = keyof typeof activations;

/**
 * Dot products of x's rows with rows of a weight [N, K]: exact f32 inputs summed in f64, or, for
 * quantized linears, each x row quantized to q8_0 blocks first (as the integer kernels do).
 */
/**
 * Each row's LayerNorm mean and factor 1 / sqrt(var + eps), for a linear with a fused LayerNorm
 * (attr ln_eps), summed in f64 and rounded once to f32 (the kernel sums in f32).
 */
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

/** Rotary angle of pair j at position pos: f32(pos · f32(1 / f32(theta^f32(2j / hd)))), as the reference computes it. */
export function ropeAngle(pos: number, j: number, hd: number, theta: number): number {
  const inv = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * j) / hd))));
  return Math.fround(pos * inv);
}

/** cos and sin of every rotary angle, f32 [position][pair][cos, sin], for positions 0..context-1 (the kernel's table). */
export function ropeTable(context: number, hd: number, theta: number): Float32Array {
  const half = hd / 2, out = new Float32Array(context * half * 2);
  for (let pos = 0; pos < context; pos++)
    for (let j = 0; j < half; j++) {
      const ang = ropeAngle(pos, j, hd, theta);
      out[(pos * half + j) * 2] = Math.cos(ang);
      out[(pos * half + j) * 2 + 1] = Math.sin(ang);
    }
  return out;
}

/** Each row's RMSNorm factor 1 / sqrt(mean(x²) + eps), for a linear with a fused RMSNorm (attr rms_eps). */
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

export const ops = {
  input: {
    arity: 0,
    infer: (_, a) => ({ dtype: a.dtype as "f32" | "i32", shape: a.shape as unknown as Dim[] }),
    interp: (_, a, _n, _t, st) => st.inputs(a.name as string),
  },
  param: {
    arity: 0,
    infer: (_, a) => f32(a.shape as readonly number[]),
    interp: (_, a, _n, _t, st) => st.params(a.name as string),
  },
  /** Absolute positions past..past+rows-1 of the rows of x. */
  positions: {
    arity: 1,
    infer: ([x]) => ({ dtype: "i32", shape: [x.shape[0]] }),
    interp: ([x], _a, _n, [t], st) => {
      const rows = t.shape.length === 1 ? x.length : rowsOf(x, rowWidth(t.shape));
      return Int32Array.from({ length: rows }, (_, i) => st.past + i);
    },
  },
  embedding: {
    arity: 2,
    infer: ([table, ids]) => {
      expectF32(table, "embedding table");
      expect(table.shape.length === 2, `embedding table must be 2-D, got ${formatType(table)}`);
      expect(ids.dtype === "i32" && ids.shape.length === 1, `embedding ids must be i32[rows], got ${formatType(ids)}`);
      return f32([ids.shape[0], table.shape[1]]);
    },
    interp: ([table, ids], _a, _n, [tt]) => {
      const [V, D] = tt.shape as number[];
      const out = new Float32Array(ids.length * D);
      ids.forEach((id, r) => {
        if (id < 0 || id >= V) throw new RangeError(`id ${id} is outside the table of ${V} rows`);
        out.set(table.subarray(id * D, id * D + D), r * D);
      });
      return out;
    },
  },
  /**
   * x[R,K] · w[N,K]ᵀ (+ b[N]): the torch.nn.Linear convention. Epilogues (set by fuse-ffn):
   * attr act applies an activation, attr residual adds a last operand r[R,N] after it. attr
   * rms_eps (set by fuse-norm): x is RMS-normalised first, rows scaled by 1/sqrt(mean(x²) + eps)
   * (the norm's gain is folded into w). attr ln_eps (set by fuse-norm): x is LayerNorm-normalised
   * first, computed as (x·wᵀ − mean·Σₖw)·(1/sqrt(var + eps)): b is then [2, N], the bias (with the
   * norm's shift folded in, w·β + b) and the row sums Σₖ w[n, k] (with the gain folded into w).
   * attr quant "q8_0", "q4_0" or "q4_1" (set by quantize-weights): w holds the dequantized weights of
   * that scheme; in a call of at most attr int_rows rows (every call without it; set by
   * quantize-weights) each row of x is quantized to q8_0 on the fly (see quantizeRowQ8), as the
   * integer kernels do, while larger calls multiply f32 x by the dequantized weights.
   */
  linear: {
    arity: [2, 4],
    infer: ([x, w, ...rest], a) => {
      expectF32(x, "input");
      expect(w.shape.length === 2 && x.shape.length === 2, `linear needs x[rows,K] and w[N,K], got ${formatType(x)} and ${formatType(w)}`);
      expect(w.shape[1] === lastDim(x), `linear: input width ${lastDim(x)} does not match weight ${formatType(w)} (expected [N,${lastDim(x)}])`);
      const out = f32([x.shape[0], w.shape[0]]);
      const r = a.residual ? rest.pop() : undefined;
      const b = rest[0];
      expect(rest.length <= 1, `linear takes at most a bias and a residual`);
      if (a.ln_eps !== undefined) expect(b !== undefined && b.shape.length === 2 && b.shape[0] === 2 && b.shape[1] === w.shape[0], `linear: a fused LayerNorm (ln_eps) takes b[2, ${w.shape[0]}] (bias, weight row sums), got ${b ? formatType(b) : "none"}`);
      else if (b) expect(b.shape.length === 1 && b.shape[0] === w.shape[0], `linear: bias ${formatType(b)} does not match ${w.shape[0]} outputs`);
      expect(a.ln_eps === undefined || a.rms_eps === undefined, `linear: ln_eps and rms_eps exclude each other`);
      if (a.residual) expect(r !== undefined && sameShape(r.shape, out.shape), `linear: residual must be ${formatType(out)}`);
      if (a.act !== undefined) expect(String(a.act) in activations, `linear: unknown activation '${String(a.act)}'`);
      if (a.quant !== undefined) expect(QUANT_SCHEMES.includes(a.quant as QuantScheme) && lastDim(x) % Q8_BLOCK === 0, `linear: quant ${String(a.quant)} needs one of ${QUANT_SCHEMES.join(", ")} and K a multiple of ${Q8_BLOCK}`);
      if (a.int_rows !== undefined) expect(a.quant !== undefined && Number.isInteger(a.int_rows) && (a.int_rows as number) >= 0, `linear: int_rows needs quantized weights and a row count ≥ 0, got ${String(a.int_rows)}`);
      return out;
    },
    interp: ([x, w, ...rest], a, _n, [, wt]) => {
      const [N, K] = wt.shape as number[];
      const r = a.residual ? rest.pop() : undefined;
      const b = rest[0];
      const act = a.act ? activations[a.act as Activation] : undefined;
      const dots = rowDots(x, K, integerPath(a, x.length / K));
      const R = x.length / K;
      const out = new Float32Array(R * N);
      const inv = rowRmsInv(x, K, a.rms_eps as number | undefined);
      const ln = a.ln_eps === undefined ? undefined : rowMeanInv(x, K, a.ln_eps as number);
      const dot = ln ? (i: number, n: number) => (dots(i, w, n) - ln.mean[i] * b[N + n]) * ln.inv[i] : (i: number, n: number) => dots(i, w, n) * inv(i);
      for (let i = 0; i < R; i++)
        for (let n = 0; n < N; n++) {
          // each step rounds to f32 as the unfused ops would
          let y = Math.fround(Math.fround(dot(i, n)) + (b ? b[n] : 0));
          if (act) y = Math.fround(act(y));
          out[i * N + n] = r ? y + r[i * N + n] : y;
        }
      return out;
    },
  },
  /**
   * act(x · wgᵀ) ⊙ (x · wuᵀ): a gated FFN's gate and up projections in one pass (fuse-ffn makes
   * it from linear → act, linear, mul). attr quant as for linear (both weights one scheme).
   */
  gated_linear: {
    arity: 3,
    infer: ([x, wg, wu], a) => {
      expectF32(x, "input");
      expect(x.shape.length === 2 && wg.shape.length === 2 && sameShape(wg.shape, wu.shape), `gated_linear needs x[rows,K] and two weights [N,K] of one shape, got ${formatType(x)}, ${formatType(wg)}, ${formatType(wu)}`);
      expect(wg.shape[1] === lastDim(x), `gated_linear: input width ${lastDim(x)} does not match weight ${formatType(wg)}`);
      expect(String(a.act) in activations, `gated_linear: unknown activation '${String(a.act)}'`);
      if (a.quant !== undefined) expect(QUANT_SCHEMES.includes(a.quant as QuantScheme) && lastDim(x) % Q8_BLOCK === 0, `gated_linear: quant ${String(a.quant)} needs one of ${QUANT_SCHEMES.join(", ")} and K a multiple of ${Q8_BLOCK}`);
      if (a.int_rows !== undefined) expect(a.quant !== undefined && Number.isInteger(a.int_rows) && (a.int_rows as number) >= 0, `gated_linear: int_rows needs quantized weights and a row count ≥ 0, got ${String(a.int_rows)}`);
      return f32([x.shape[0], wg.shape[0]]);
    },
    interp: ([x, wg, wu], a, _n, [, wt]) => {
      const [N, K] = wt.shape as number[];
      const act = activations[a.act as Activation];
      const dots = rowDots(x, K, integerPath(a, x.length / K));
      const R = x.length / K;
      const out = new Float32Array(R * N);
      const inv = rowRmsInv(x, K, a.rms_eps as number | undefined);
      for (let i = 0; i < R; i++)
        for (let n = 0; n < N; n++) out[i * N + n] = Math.fround(act(Math.fround(dots(i, wg, n) * inv(i))) * Math.fround(dots(i, wu, n) * inv(i)));
      return out;
    },
  },
  /** x[R,K] · w[K,N]; codegen needs w to be a parameter (canonicalize-matmul turns it into linear). */
  matmul: {
    arity: 2,
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
  },
  /** Swaps the last two dims: a matrix transpose of a 2-D parameter, or a per-row transpose of x[R, A, B]. */
  transpose: {
    arity: 1,
    infer: ([x]) => {
      expect(x.shape.length === 2 || x.shape.length === 3, `transpose takes a 2-D or 3-D tensor, got ${formatType(x)}`);
      const s = [...x.shape];
      [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
      return { dtype: x.dtype, shape: s };
    },
    interp: ([x], _a, _n, [t]) => {
      const [A, B] = t.shape.slice(-2) as number[];
      const out = new Float32Array(x.length);
      for (let base = 0; base < x.length; base += A * B)
        for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) out[base + j * A + i] = x[base + i * B + j];
      return out;
    },
  },
  /** New trailing dims for each row: x[R, ...] → [R, ...shape] with the same row width. */
  reshape: {
    arity: 1,
    infer: ([x], a) => {
      const dims = a.shape as readonly number[];
      const w = x.shape.length > 1 ? rowWidth(x.shape) : 1;
      expect(dims.every((d) => Number.isInteger(d) && d > 0), `reshape: dims must be positive integers, got [${dims.join(", ")}]`);
      expect(dims.reduce((p, d) => p * d, 1) === w, `reshape: [${dims.join(", ")}] does not hold a row of ${w} values of ${formatType(x)}`);
      return { dtype: x.dtype, shape: [x.shape[0], ...dims] };
    },
    interp: ([x]) => x.slice(),
  },
  add: binary((x, y) => x + y),
  mul: binary((x, y) => x * y),
  scale: {
    arity: 1,
    infer: ([x]) => (expectF32(x, "operand"), x),
    interp: ([x], a) => (x as Float32Array).map((v) => v * num(a, "by")),
  },
  layernorm: {
    arity: 3,
    infer: ([x, g, b]) => {
      expectF32(x, "input");
      const D = lastDim(x);
      expect(g.shape.length === 1 && g.shape[0] === D && b.shape.length === 1 && b.shape[0] === D, `layernorm: gain/bias must be [${D}], got ${formatType(g)} and ${formatType(b)}`);
      return x;
    },
    interp: ([x, g, b], a) => {
      const D = g.length, eps = num(a, "eps");
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        let mean = 0, v = 0;
        for (let i = 0; i < D; i++) mean += x[r * D + i];
        mean /= D;
        for (let i = 0; i < D; i++) v += (x[r * D + i] - mean) ** 2;
        const inv = 1 / Math.sqrt(v / D + eps);
        for (let i = 0; i < D; i++) out[r * D + i] = (x[r * D + i] - mean) * inv * g[i] + b[i];
      }
      return out;
    },
  },
  rmsnorm: {
    arity: 2,
    infer: ([x, g]) => {
      expectF32(x, "input");
      const D = lastDim(x);
      expect(g.shape.length === 1 && g.shape[0] === D, `rmsnorm: gain must be [${D}], got ${formatType(g)}`);
      return x;
    },
    interp: ([x, g], a) => {
      const D = g.length, eps = num(a, "eps");
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        let ss = 0;
        for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
        const inv = 1 / Math.sqrt(ss / D + eps);
        for (let i = 0; i < D; i++) out[r * D + i] = x[r * D + i] * inv * g[i];
      }
      return out;
    },
  },
  gelu: unary(activations.gelu),
  gelu_tanh: unary(activations.gelu_tanh),
  silu: unary(activations.silu),
  relu: unary(activations.relu),
  softmax: {
    arity: 1,
    infer: ([x]) => (expectF32(x, "operand"), lastDim(x), x),
    interp: ([x], _a, _n, [t]) => {
      const D = lastDim(t);
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        let m = -Infinity, s = 0;
        for (let i = 0; i < D; i++) m = Math.max(m, x[r * D + i]);
        for (let i = 0; i < D; i++) s += out[r * D + i] = Math.exp(x[r * D + i] - m);
        for (let i = 0; i < D; i++) out[r * D + i] /= s;
      }
      return out;
    },
  },
  /** The last row of x (generation needs only the last position's logits). */
  last_row: {
    arity: 1,
    infer: ([x]) => ({ dtype: x.dtype, shape: [1, ...x.shape.slice(1)] }),
    interp: ([x], _a, _n, [t]) => {
      const w = t.shape.length > 1 ? rowWidth(t.shape) : 1;
      return x.slice(x.length - w);
    },
  },
  /** Columns start..start+size-1 of the last dimension. */
  slice: {
    arity: 1,
    infer: ([x], a) => {
      const D = lastDim(x);
      expect(num(a, "start") >= 0 && num(a, "start") + num(a, "size") <= D, `slice [${num(a, "start")}, +${num(a, "size")}) is outside width ${D}`);
      return { dtype: x.dtype, shape: [...x.shape.slice(0, -1), num(a, "size")] };
    },
    interp: ([x], a, _n, [t]) => {
      const D = lastDim(t), start = num(a, "start"), size = num(a, "size");
      const R = x.length / D;
      const out = new Float32Array(R * size);
      for (let r = 0; r < R; r++) out.set(x.subarray(r * D + start, r * D + start + size), r * size);
      return out;
    },
  },
  /** Rotary position embedding, rotate_half convention, on every head of x[R, heads*head_dim]. */
  rope: {
    arity: 1,
    infer: ([x], a) => {
      expectF32(x, "operand");
      const D = lastDim(x), hd = num(a, "head_dim");
      expect(hd % 2 === 0 && D % hd === 0, `rope: width ${D} is not a whole number of heads of even size ${hd}`);
      return x;
    },
    interp: ([x], a, _n, [t], st) => {
      const D = lastDim(t), hd = num(a, "head_dim"), half = hd / 2, theta = num(a, "theta");
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        const pos = st.past + r;
        for (let j = 0; j < half; j++) {
          const ang = ropeAngle(pos, j, hd, theta);
          const c = Math.cos(ang), s = Math.sin(ang);
          for (let h = 0; h < D / hd; h++) {
            const o = r * D + h * hd + j;
            const x1 = x[o], x2 = x[o + half];
            out[o] = x1 * c - x2 * s;
            out[o + half] = x2 * c + x1 * s;
          }
        }
      }
      return out;
    },
  },
  /**
   * Scaled dot-product attention over heads packed in the last dim: q[R,H*dk], k[L,Hkv*dk], v[L,Hkv*dv].
   * q has k's rows, or one row: the query of the last position only (see specialize-last-row).
   * attrs: heads, kv_heads, scale, causal, cache (false, or the key of a KV cache — see cacheKey —
   * that keys/values append to at rows
   * past..past+R-1 and attention spans all past+R rows), bias (operand: a relative-position table
   * [buckets, heads], with bias_bidirectional/bias_buckets/bias_max_distance), mask (operand: f32[L] of 0/1).
   */
  attention: {
    arity: [3, 5],
    infer: ([q, k, v, ...rest], a) => {
      const H = num(a, "heads"), Hkv = num(a, "kv_heads");
      for (const [t, w] of [[q, "q"], [k, "k"], [v, "v"]] as const) {
        expectF32(t, w);
        expect(t.shape.length === 2, `attention: ${w} must be [rows, heads*head_dim], got ${formatType(t)}`);
      }
      expect(H % Hkv === 0, `attention: ${H} query heads are not a multiple of ${Hkv} key/value heads`);
      const dq = lastDim(q), dk = lastDim(k), dv = lastDim(v);
      expect(dq % H === 0, `attention: q width ${dq} is not divisible by ${H} heads`);
      expect(dk === (dq / H) * Hkv, `attention: k width ${dk} should be ${Hkv} heads × ${dq / H}`);
      expect(dv % Hkv === 0, `attention: v width ${dv} is not divisible by ${Hkv} heads`);
      expect(k.shape[0] === v.shape[0], `attention: k and v have different rows (${k.shape[0]} vs ${v.shape[0]})`);
      if (a.cache) expect(q.shape[0] === k.shape[0] || q.shape[0] === 1, `attention: a cached attention's q has ${q.shape[0]} rows; it takes the k/v rows of the call (${k.shape[0]}), or 1 (the last query)`);
      let i = 0;
      if (a.bias) {
        const t = rest[i++];
        expect(t !== undefined && t.shape.length === 2 && t.shape[1] === H, `attention: relative bias table must be [buckets, ${H}]`);
        expect(t.shape[0] === num(a, "bias_buckets"), `attention: bias table has ${t.shape[0]} buckets, expected ${num(a, "bias_buckets")}`);
      }
      if (a.mask) {
        const t = rest[i++];
        expect(t !== undefined && t.shape.length === 1 && t.shape[0] === k.shape[0], `attention: mask must be [${k.shape[0]}]`);
      }
      return f32([q.shape[0], (dv / Hkv) * H]);
    },
    interp: ([q, k, v, ...rest], a, node, types, st) => {
      const H = num(a, "heads"), Hkv = num(a, "kv_heads"), scale = num(a, "scale");
      const dk = lastDim(types[0]) / H, kw = dk * Hkv, vw = lastDim(types[2]), dv = vw / Hkv;
      const R = q.length / (dk * H), Rk = k.length / kw;
      let keys = k as Float32Array, vals = v as Float32Array, L = Rk;
      if (a.cache) {
        const key = cacheKey(st.graph, node);
        let c = st.caches.get(key);
        if (!c) st.caches.set(key, (c = { k: new Float32Array(st.context * kw), v: new Float32Array(st.context * vw) }));
        if (st.past + Rk > st.context) throw new RangeError(`sequence of ${st.past + Rk} exceeds the context of ${st.context}`);
        c.k.set(k, st.past * kw);
        c.v.set(v, st.past * vw);
        keys = c.k; vals = c.v; L = st.past + Rk;
      }
      // the queries are the last R of the L positions
      const q0 = L - R;
      let i = 0;
      const table = a.bias ? rest[i++] : undefined;
      const mask = a.mask ? rest[i++] : undefined;
      const out = new Float32Array(R * H * dv);
      const scores = new Float64Array(L);
      for (let r = 0; r < R; r++)
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / (H / Hkv));
          const limit = a.causal ? Math.min(L, q0 + r + 1) : L;
          let m = -Infinity;
          for (let j = 0; j < limit; j++) {
            let s = 0;
            for (let d = 0; d < dk; d++) s += q[r * H * dk + h * dk + d] * keys[j * kw + g * dk + d];
            s *= scale;
            if (table) s += table[relativeBucket(j - (q0 + r), a.bias_bidirectional as boolean, num(a, "bias_buckets"), num(a, "bias_max_distance")) * H + h];
            if (mask && mask[j] === 0) s += -3.4028234663852886e38;
            scores[j] = s;
            m = Math.max(m, s);
          }
          let sum = 0;
          for (let j = 0; j < limit; j++) sum += scores[j] = Math.exp(scores[j] - m);
          for (let d = 0; d < dv; d++) {
            let acc = 0;
            for (let j = 0; j < limit; j++) acc += scores[j] * vals[j * vw + g * dv + d];
            out[r * H * dv + h * dv + d] = acc / sum;
          }
        }
      return out;
    },
  },
} satisfies Record<string, OpDef>;

export type OpKind = keyof typeof ops;
export const opKinds = Object.keys(ops) as OpKind[];
export function opDef(kind: string): OpDef {
  const d = (ops as Record<string, OpDef>)[kind];
  if (!d) throw new Error(`unknown op '${kind}'`);
  return d;
}
