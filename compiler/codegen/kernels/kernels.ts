// Generic kernel library (AssemblyScript, SIMD128). Every kernel works on raw pointers into
// the one linear memory and takes its sizes as arguments; the compiler calls these with
// constant sizes from its generated entry functions, and generates its own shape-specialised
// kernels (see ../lower.ts) where specialisation pays.
//
// Row-major f32 tensors throughout; `rows` is the run-time row count.

// @ts-nocheck  (AssemblyScript, not TypeScript)

@inline function f32at(p: usize, i: i32): f32 { return load<f32>(p + (<usize>i << 2)); }
@inline function setf32(p: usize, i: i32, v: f32): void { store<f32>(p + (<usize>i << 2), v); }

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** out[r,:] = table[ids[r],:] */
export function embedding(table: usize, ids: usize, out: usize, rows: i32, D: i32): void {
  for (let r = 0; r < rows; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    memory.copy(out + (<usize>(r * D) << 2), table + (<usize>(id * D) << 2), <usize>D << 2);
  }
}

/**
 * embedding() over a table stored in the packed matrix layout (compiler/codegen/linear/layout.ts):
 * panels of `panel` columns (the last may be shorter; a D % 4 tail only when panel = D), `stride`
 * floats apart, each all groups of 4 rows, each group 4-column chunks of its 4 rows.
 */
export function embedding_packed(table: usize, ids: usize, out: usize, rows: i32, D: i32, panel: i32, stride: i32): void {
  const D4 = D & ~3, Dt = D - D4;
  for (let r = 0; r < rows; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    const g = id >> 2, j = id & 3;
    const po = out + (<usize>(r * D) << 2);
    for (let k0 = 0, q = 0; k0 < D4; k0 += panel, q++) {
      const size = min(panel, D - k0), end = min(size, D4 - k0);
      const base = table + (<usize>(q * stride + 4 * g * size + 4 * j) << 2);
      for (let k = 0; k < end; k += 4) v128.store(po + (<usize>(k0 + k) << 2), v128.load(base + (<usize>(k * 4) << 2)));
    }
    const base = table + (<usize>(g * 4 * D) << 2);
    for (let t = 0; t < Dt; t++) setf32(po, D4 + t, f32at(base, 4 * D4 + j * Dt + t));
  }
}

/**
 * q8_0 quantization of activation rows for the integer matrix kernels: each row of x[rows, K]
 * becomes K/32 f32 scales, K codes widened to i16 (ir/quant.ts: quantizeRowQ8), each block's
 * i32 sum of codes (q4_0 kernels fold the nibbles' offset 8 into it: Σ(n − 8)·x = Σn·x − 8·Σx),
 * then the K codes again as i8 (relaxed SIMD's 8-bit dot products). linear/layout.ts: quantRowBytes.
 */
export function quantize_rows_q8(x: usize, out: usize, rows: i32, K: i32): void {
  const blocks = K >> 5;
  const rowBytes = (blocks << 3) + (K << 1) + K;
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * K) << 2);
    const ps = out + <usize>(r * rowBytes);
    const pc = ps + (<usize>blocks << 2);
    const psum = pc + (<usize>K << 1);
    const pc8 = psum + (<usize>blocks << 2);
    for (let b = 0; b < blocks; b++) {
      const pb = px + (<usize>(b << 5) << 2);
      let m = f32x4.splat(0);
      for (let t = 0; t < 32; t += 4) m = f32x4.max(m, f32x4.abs(v128.load(pb + (<usize>t << 2))));
      const amax = Mathf.max(Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), Mathf.max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      const d: f32 = amax / <f32>127.0;
      const inv: f32 = d != 0 ? <f32>1.0 / d : 0;
      store<f32>(ps + (<usize>b << 2), d);
      let sum = 0;
      for (let t = 0; t < 32; t++) {
        let q = nearest<f32>(f32at(pb, t) * inv);
        q = Mathf.min(Mathf.max(q, -127), 127);
        store<i16>(pc + (<usize>((b << 5) + t) << 1), <i16><i32>q);
        store<i8>(pc8 + <usize>((b << 5) + t), <i8><i32>q);
        sum += <i32>q;
      }
      store<i32>(psum + (<usize>b << 2), sum);
    }
  }
}

/** out[r] = past + r */
export function positions(out: usize, rows: i32, past: i32): void {
  for (let r = 0; r < rows; r++) store<i32>(out + (<usize>r << 2), past + r);
}

/** out[i] = a[i] + b[i % bn] (b broadcast over rows when bn < n) */
export function add(a: usize, b: usize, out: usize, n: i32, bn: i32): void {
  for (let base = 0; base < n; base += bn) {
    const pa = a + (<usize>base << 2), po = out + (<usize>base << 2);
    let i = 0;
    for (; i + 4 <= bn; i += 4) v128.store(po + (<usize>i << 2), f32x4.add(v128.load(pa + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
    for (; i < bn; i++) setf32(po, i, f32at(pa, i) + f32at(b, i));
  }
}

export function mul(a: usize, b: usize, out: usize, n: i32, bn: i32): void {
  for (let base = 0; base < n; base += bn) {
    const pa = a + (<usize>base << 2), po = out + (<usize>base << 2);
    let i = 0;
    for (; i + 4 <= bn; i += 4) v128.store(po + (<usize>i << 2), f32x4.mul(v128.load(pa + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
    for (; i < bn; i++) setf32(po, i, f32at(pa, i) * f32at(b, i));
  }
}

export function scale(a: usize, out: usize, n: i32, c: f32): void {
  const cv = f32x4.splat(c);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), f32x4.mul(v128.load(a + (<usize>i << 2)), cv));
  for (; i < n; i++) setf32(out, i, f32at(a, i) * c);
}

/** Mean of the D values at px. */
function rowMean(px: usize, D: i32): f32 {
  let sv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) sv = f32x4.add(sv, v128.load(px + (<usize>i << 2)));
  let s = hsum(sv);
  for (; i < D; i++) s += f32at(px, i);
  return s / <f32>D;
}

/** 1 / sqrt(var + eps) of the D values at px with mean `mean` (two-pass variance). */
function rowInvStd(px: usize, D: i32, mean: f32, eps: f32): f32 {
  const mv = f32x4.splat(mean);
  let qv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) { const d = f32x4.sub(v128.load(px + (<usize>i << 2)), mv); qv = f32x4.add(qv, f32x4.mul(d, d)); }
  let q = hsum(qv);
  for (; i < D; i++) { const d = f32at(px, i) - mean; q += d * d; }
  return <f32>1.0 / Mathf.sqrt(q / <f32>D + eps);
}

export function layernorm(x: usize, g: usize, b: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    const mean = rowMean(px, D);
    const mv = f32x4.splat(mean);
    const inv = rowInvStd(px, D, mean, eps);
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      const n = f32x4.mul(f32x4.sub(v128.load(px + o), mv), iv);
      v128.store(po + o, f32x4.add(f32x4.mul(n, v128.load(g + o)), v128.load(b + o)));
    }
    for (; i < D; i++) setf32(po, i, (f32at(px, i) - mean) * inv * f32at(g, i) + f32at(b, i));
  }
}

/** 1 / sqrt(mean(x²) + eps) of the D values at px. */
function rmsInv(px: usize, D: i32, eps: f32): f32 {
  let qv = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) { const v = v128.load(px + (<usize>i << 2)); qv = f32x4.add(qv, f32x4.mul(v, v)); }
  let q = hsum(qv);
  for (; i < D; i++) { const v = f32at(px, i); q += v * v; }
  return <f32>1.0 / Mathf.sqrt(q / <f32>D + eps);
}

/** Each row's RMSNorm factor (a matrix kernel with a fused RMSNorm scales its sums by it). */
export function row_rms_inv(x: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) setf32(out, r, rmsInv(x + (<usize>(r * D) << 2), D, eps));
}

/** Each row's LayerNorm mean and factor 1 / sqrt(var + eps), as (mean, factor) pairs (a matrix kernel with a fused LayerNorm reads them). */
export function row_mean_inv(x: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2);
    const mean = rowMean(px, D);
    setf32(out, 2 * r, mean);
    setf32(out, 2 * r + 1, rowInvStd(px, D, mean, eps));
  }
}

export function rmsnorm(x: usize, g: usize, out: usize, rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    const inv = rmsInv(px, D, eps);
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      v128.store(po + o, f32x4.mul(f32x4.mul(v128.load(px + o), iv), v128.load(g + o)));
    }
    for (; i < D; i++) setf32(po, i, f32at(px, i) * inv * f32at(g, i));
  }
}

// erf with |error| < 1.2e-7 (W. J. Cody's rational approximations, as in many libms' erff).
function erf32(x: f32): f32 {
  const ax = Mathf.abs(x);
  let r: f64;
  const z = <f64>ax;
  if (ax < 0.84375) {
    const z2 = z * z;
    const p = 1.28379167095512558561e-1 + z2 * (-3.25042107247001499370e-1 + z2 * (-2.84817495755985104766e-2 + z2 * (-5.77027029648944159157e-3 + z2 * -2.37630166566501626084e-5)));
    const q = 1.0 + z2 * (3.97917223959155352819e-1 + z2 * (6.50222499887672944485e-2 + z2 * (5.08130628187576562776e-3 + z2 * (1.32494738004321644526e-4 + z2 * -3.96022827877536812320e-6))));
    r = z + z * (p / q);
  } else if (ax < 1.25) {
    const s = z - 1.0;
    const p = -2.36211856075265944077e-3 + s * (4.14856118683748331666e-1 + s * (-3.72207876035701323847e-1 + s * (3.18346619901161753674e-1 + s * (-1.10894694282396677476e-1 + s * (3.54783043256182359371e-2 + s * -2.16637559486879084300e-3)))));
    const q = 1.0 + s * (1.06420880400844228286e-1 + s * (5.40397917702171048937e-1 + s * (7.18286544141962662868e-2 + s * (1.26171219808761642112e-1 + s * (1.36370839120290507362e-2 + s * 1.19844998467991074170e-2)))));
    r = 8.45062911510467529297e-1 + p / q;
  } else if (ax < 6.0) {
    const s = 1.0 / (z * z);
    let R: f64, S: f64;
    if (ax < 2.857142857) {
      R = -9.86494403484714822705e-3 + s * (-6.93858572707181764372e-1 + s * (-1.05586262253232909814e1 + s * (-6.23753324503260060396e1 + s * (-1.62396669462573470355e2 + s * (-1.84605092906711035994e2 + s * (-8.12874355063065934246e1 + s * -9.81432934416914548592))))));
      S = 1.0 + s * (1.96512716674392571292e1 + s * (1.37657754143519042600e2 + s * (4.34565877475229228821e2 + s * (6.45387271733267880336e2 + s * (4.29008140027567833386e2 + s * (1.08635005541779435134e2 + s * (6.57024977031928170135 + s * -6.04244152148580987438e-2)))))));
    } else {
      R = -9.86494292470009928597e-3 + s * (-7.99283237680523006574e-1 + s * (-1.77579549177547519889e1 + s * (-1.60636384855821916062e2 + s * (-6.37566443368389627722e2 + s * (-1.02509513161107724954e3 + s * -4.83519191608651397019e2)))));
      S = 1.0 + s * (3.03380607434824582924e1 + s * (3.25792512996573918826e2 + s * (1.53672958608443695994e3 + s * (3.19985821950859553908e3 + s * (2.55305040643316442583e3 + s * (4.74528541206955367215e2 + s * -2.24409524465858183362e1))))));
    }
    r = 1.0 - Math.exp(-z * z - 0.5625 + R / S) / z;
  } else {
    r = 1.0;
  }
  return <f32>(x < 0 ? -r : r);
}

// Scalar activations: used by the elementwise kernels below and by the epilogues of the
// generated matrix kernels.
export function act_gelu(v: f32): f32 { return <f32>0.5 * v * (<f32>1.0 + erf32(v * <f32>0.7071067811865476)); }
export function act_gelu_tanh(v: f32): f32 { return <f32>0.5 * v * (<f32>1.0 + Mathf.tanh(<f32>0.7978845608028654 * (v + <f32>0.044715 * v * v * v))); }
export function act_silu(v: f32): f32 { return v / (<f32>1.0 + Mathf.exp(-v)); }

export function gelu(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) setf32(out, i, act_gelu(f32at(x, i)));
}

export function gelu_tanh(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) setf32(out, i, act_gelu_tanh(f32at(x, i)));
}

export function silu(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) setf32(out, i, act_silu(f32at(x, i)));
}

export function relu(x: usize, out: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), f32x4.max(v128.load(x + (<usize>i << 2)), z));
  for (; i < n; i++) { const v = f32at(x, i); setf32(out, i, v > 0 ? v : 0); }
}

export function softmax(x: usize, out: usize, rows: i32, D: i32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    let m = -Infinity as f32;
    for (let i = 0; i < D; i++) m = Mathf.max(m, f32at(px, i));
    let s: f32 = 0;
    for (let i = 0; i < D; i++) { const e = Mathf.exp(f32at(px, i) - m); setf32(po, i, e); s += e; }
    const inv = <f32>1.0 / s;
    for (let i = 0; i < D; i++) setf32(po, i, f32at(po, i) * inv);
  }
}

/** out[r, 0:size] = x[r, start:start+size] for x of width D */
export function slice(x: usize, out: usize, rows: i32, D: i32, start: i32, size: i32): void {
  for (let r = 0; r < rows; r++) memory.copy(out + (<usize>(r * size) << 2), x + (<usize>(r * D + start) << 2), <usize>size << 2);
}

/** out[r] = x[r]ᵀ for each row r holding an A×B matrix */
export function transpose_rows(x: usize, out: usize, rows: i32, A: i32, B: i32): void {
  for (let r = 0; r < rows; r++) {
    const base = r * A * B;
    for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) setf32(out, base + j * A + i, f32at(x, base + i * B + j));
  }
}

/** Rotary embedding (rotate_half pairs j, j+hd/2) on every head of x[rows, D], positions past+r; table: f32 [position][pair][cos, sin]. */
export function rope(x: usize, out: usize, rows: i32, D: i32, hd: i32, past: i32, table: usize): void {
  const half = hd >> 1;
  for (let r = 0; r < rows; r++) {
    // cos and sin of position past + r's angles (ir/ops.ts ropeTable)
    const pt = table + (<usize>((past + r) * half) << 3);
    for (let j = 0; j < half; j++) {
      const c = f32at(pt, 2 * j), s = f32at(pt, 2 * j + 1);
      for (let h = 0; h < D; h += hd) {
        const o = r * D + h + j;
        const x1 = f32at(x, o), x2 = f32at(x, o + half);
        setf32(out, o, x1 * c - x2 * s);
        setf32(out, o + half, x2 * c + x1 * s);
      }
    }
  }
}

/**
 * Attention with online softmax (one pass over keys, no score matrix).
 * q[rows, H*dk]; keys/values: L rows of width Hkv*dk / Hkv*dv; query r sits at absolute position
 * q0 + r. causal: keys j <= q0 + r only. bias: table[bucket(j - (q0 + r)) * H + h] with
 * bucket() read from `buckets` (i32, indexed by distance + range). mask: f32[L], 0 = padding.
 * Heads h0..h1-1 only (threads split the heads; each head's result is the same on any split).
 */
export function attention(
  q: usize, k: usize, v: usize, out: usize, rows: i32, L: i32, q0: i32,
  H: i32, Hkv: i32, dk: i32, dv: i32, scale: f32, causal: i32,
  table: usize, buckets: usize, range: i32, mask: usize, h0: i32, h1: i32,
): void {
  const group = H / Hkv;
  for (let r = 0; r < rows; r++) {
    const limit = causal ? min(L, q0 + r + 1) : L;
    for (let h = h0; h < h1; h++) {
      const pq = q + (<usize>(r * H * dk + h * dk) << 2);
      const po = out + (<usize>(r * H * dv + h * dv) << 2);
      const l = attendKeys(pq, k, v, po, 0, limit, h, h / group, Hkv, dk, dv, scale, table, buckets, range, mask, q0 + r, H);
      const inv: f32 = <f32>1.0 / l;
      for (let d = 0; d < dv; d++) setf32(po, d, f32at(po, d) * inv);
    }
  }
}

/**
 * exp on f32x4 (Cephes' expf as compiler/codegen/vmath.ts's vexp: ~1 ulp on [-87.3, 88.4]), and
 * exactly 0 below -87.3 (a masked score's weight, as the scalar exp gives); NaN stays NaN.
 */
@inline function expv(x0: v128): v128 {
  const lo = f32x4.splat(-87.3365447505531);
  const x1 = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(88.3762626647949)), lo);
  // 1.5·2^23 rounds x·log2(e) to the nearest integer n, leaving bits(t) = 0x4B400000 + n
  const t = f32x4.add(f32x4.mul(x1, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
  const n = f32x4.sub(t, f32x4.splat(12582912.0));
  let x = f32x4.sub(x1, f32x4.mul(n, f32x4.splat(0.693359375)));
  x = f32x4.sub(x, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(x, x)), x), f32x4.splat(1.0));
  const pow2n = i32x4.shl(i32x4.add(t, i32x4.splat(127 - 0x4b400000)), 23);
  return v128.andnot(f32x4.mul(p, pow2n), f32x4.lt(x0, lo));
}

/** The lane sums of a, b, c, d as one vector, each (l0 + l1) + (l2 + l3), by pairwise shuffles. */
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  // (a0+a1, b0+b1, a2+a3, b2+b3) and the same of c, d
  const u = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 2, 6), v128.shuffle<f32>(a, b, 1, 5, 3, 7));
  const w = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 2, 6), v128.shuffle<f32>(c, d, 1, 5, 3, 7));
  return f32x4.add(v128.shuffle<f32>(u, w, 0, 1, 4, 5), v128.shuffle<f32>(u, w, 2, 3, 6, 7));
}

/** Key j's score for the query at pq: scale·q·k (+ relative bias) (+ −FLT_MAX where masked). */
@inline function keyScore(
  pq: usize, k: usize, j: i32, kw: i32, g: i32, h: i32, dk: i32, scale: f32,
  table: usize, buckets: usize, range: i32, mask: usize, qpos: i32, H: i32,
): f32 {
  const pk = k + (<usize>(j * kw + g * dk) << 2);
  let sv = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= dk; d += 4) sv = f32x4.add(sv, f32x4.mul(v128.load(pq + (<usize>d << 2)), v128.load(pk + (<usize>d << 2))));
  let s = hsum(sv);
  for (; d < dk; d++) s += f32at(pq, d) * f32at(pk, d);
  s *= scale;
  if (table) s += f32at(table, load<i32>(buckets + (<usize>(j - qpos + range) << 2)) * H + h);
  if (mask && f32at(mask, j) == 0) s += <f32>-3.4028234663852886e38;
  return s;
}

/** po[0..dv) *= c */
@inline function scaleRow(po: usize, dv: i32, c: f32): void {
  const cv = f32x4.splat(c);
  let d = 0;
  for (; d + 4 <= dv; d += 4) v128.store(po + (<usize>d << 2), f32x4.mul(v128.load(po + (<usize>d << 2)), cv));
  for (; d < dv; d++) setf32(po, d, f32at(po, d) * c);
}

/**
 * One head's online softmax over keys j0..j1-1 for the query at position qpos: po gets
 * Σ exp(s_j − m)·v_j (not yet divided), lastMax the running maximum m; returns Σ exp(s_j − m)
 * (0 for no keys, lastMax then −inf). Keys go 4 at a time: their 4 dot products side by side,
 * one rescale for the 4, their weights by one vector exp, and one pass over po for 4 values.
 */
let lastMax: f32 = 0;
@inline function attendKeys(
  pq: usize, k: usize, v: usize, po: usize, j0: i32, j1: i32, h: i32, g: i32, Hkv: i32, dk: i32, dv: i32, scale: f32,
  table: usize, buckets: usize, range: i32, mask: usize, qpos: i32, H: i32,
): f32 {
  const kw = Hkv * dk, vw = Hkv * dv;
  memory.fill(po, 0, <usize>dv << 2);
  let m: f32 = -Infinity;
  let l: f32 = 0;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    let s: v128;
    if (dk % 4 == 0 && !table && !mask) {
      // the 4 dot products side by side
      const pk = k + (<usize>(j * kw + g * dk) << 2), stride = <usize>kw << 2;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let d = 0; d < dk; d += 4) {
        const qv = v128.load(pq + (<usize>d << 2));
        const pd = pk + (<usize>d << 2);
        a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(pd)));
        a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(pd + stride)));
        a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(pd + 2 * stride)));
        a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(pd + 3 * stride)));
      }
      s = f32x4.mul(sum4(a0, a1, a2, a3), f32x4.splat(scale));
    } else {
      s = f32x4(
        keyScore(pq, k, j, kw, g, h, dk, scale, table, buckets, range, mask, qpos, H),
        keyScore(pq, k, j + 1, kw, g, h, dk, scale, table, buckets, range, mask, qpos, H),
        keyScore(pq, k, j + 2, kw, g, h, dk, scale, table, buckets, range, mask, qpos, H),
        keyScore(pq, k, j + 3, kw, g, h, dk, scale, table, buckets, range, mask, qpos, H),
      );
    }
    const mb = max(max(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1)), max(f32x4.extract_lane(s, 2), f32x4.extract_lane(s, 3)));
    if (mb > m) {
      const corr: f32 = m == -Infinity ? 0 : Mathf.exp(m - mb);
      l *= corr;
      scaleRow(po, dv, corr);
      m = mb;
    }
    const p = expv(f32x4.sub(s, f32x4.splat(m)));
    l += hsum(p);
    const p0 = f32x4.splat(f32x4.extract_lane(p, 0)), p1 = f32x4.splat(f32x4.extract_lane(p, 1));
    const p2 = f32x4.splat(f32x4.extract_lane(p, 2)), p3 = f32x4.splat(f32x4.extract_lane(p, 3));
    const pv = v + (<usize>(j * vw + g * dv) << 2), vs = <usize>vw << 2;
    let d = 0;
    for (; d + 4 <= dv; d += 4) {
      const pd = pv + (<usize>d << 2);
      const a = f32x4.add(f32x4.mul(p0, v128.load(pd)), f32x4.mul(p1, v128.load(pd + vs)));
      const b = f32x4.add(f32x4.mul(p2, v128.load(pd + 2 * vs)), f32x4.mul(p3, v128.load(pd + 3 * vs)));
      v128.store(po + (<usize>d << 2), f32x4.add(v128.load(po + (<usize>d << 2)), f32x4.add(a, b)));
    }
    for (; d < dv; d++) {
      const pd = pv + (<usize>d << 2);
      const e = f32x4.extract_lane(p, 0) * load<f32>(pd) + f32x4.extract_lane(p, 1) * load<f32>(pd + vs)
        + f32x4.extract_lane(p, 2) * load<f32>(pd + 2 * vs) + f32x4.extract_lane(p, 3) * load<f32>(pd + 3 * vs);
      setf32(po, d, f32at(po, d) + e);
    }
  }
  for (; j < j1; j++) {
    const s = keyScore(pq, k, j, kw, g, h, dk, scale, table, buckets, range, mask, qpos, H);
    if (s > m) {
      const corr: f32 = m == -Infinity ? 0 : Mathf.exp(m - s);
      l *= corr;
      scaleRow(po, dv, corr);
      m = s;
    }
    const p = Mathf.exp(s - m);
    l += p;
    const pv = v + (<usize>(j * vw + g * dv) << 2);
    const pv4 = f32x4.splat(p);
    let d = 0;
    for (; d + 4 <= dv; d += 4) v128.store(po + (<usize>d << 2), f32x4.add(v128.load(po + (<usize>d << 2)), f32x4.mul(pv4, v128.load(pv + (<usize>d << 2)))));
    for (; d < dv; d++) setf32(po, d, f32at(po, d) + p * f32at(pv, d));
  }
  lastMax = m;
  return l;
}

/** Keys a decode chunk takes at least: shorter ranges cost more in setup and merging than they save. */
const CHUNK_KEYS = 32;
/** Chunks of decode attention over L keys with at most `units` work units: depends on L only. */
@inline function decodeChunks(L: i32, units: i32): i32 { return max(1, min(units, L / CHUNK_KEYS)); }

/**
 * Decode attention split over the keys (flash-decoding), for one query row at position L − 1:
 * the visible keys are cut into n = decodeChunks(L, units) equal ranges, chunk c the work of
 * unit ⌊units·c/n⌋ (so that threads, which split the units, share the chunks evenly). Chunk c
 * writes, for every head, (m, l, o[dv]) to part + (c·H + h)·(dv + 2) floats: its maximum score,
 * Σ exp(s − m) and Σ exp(s − m)·v. attention_merge combines the chunks. The split does not
 * depend on the thread count, nor do the results.
 */
export function attention_part(
  q: usize, k: usize, v: usize, part: usize, L: i32,
  H: i32, Hkv: i32, dk: i32, dv: i32, scale: f32,
  table: usize, buckets: usize, range: i32, mask: usize, u0: i32, u1: i32, units: i32,
): void {
  const group = H / Hkv;
  const chunks = decodeChunks(L, units);
  for (let u = u0; u < u1; u++) {
    // the chunk of unit u, if it has one: c = ⌈u·n/units⌉ with ⌊units·c/n⌋ = u
    const c = <i32>((<i64>u * chunks + units - 1) / units);
    if (c >= chunks || <i32>((<i64>units * c) / chunks) != u) continue;
    const j0 = <i32>((<i64>L * c) / chunks), j1 = <i32>((<i64>L * (c + 1)) / chunks);
    for (let h = 0; h < H; h++) {
      const pp = part + (<usize>((c * H + h) * (dv + 2)) << 2);
      const l = attendKeys(q + (<usize>(h * dk) << 2), k, v, pp + 8, j0, j1, h, h / group, Hkv, dk, dv, scale, table, buckets, range, mask, L - 1, H);
      setf32(pp, 0, lastMax);
      setf32(pp, 1, l);
    }
  }
}

/** out[h·dv + d] = Σ_c e^(m_c − M)·o_c[d] / Σ_c e^(m_c − M)·l_c over the chunks with keys (M: their largest m). */
export function attention_merge(part: usize, out: usize, H: i32, dv: i32, L: i32, units: i32): void {
  const chunks = decodeChunks(L, units);
  for (let h = 0; h < H; h++) {
    let M: f32 = -Infinity;
    for (let c = 0; c < chunks; c++) {
      const pp = part + (<usize>((c * H + h) * (dv + 2)) << 2);
      if (f32at(pp, 1) > 0) M = Mathf.max(M, f32at(pp, 0));
    }
    const po = out + (<usize>(h * dv) << 2);
    memory.fill(po, 0, <usize>dv << 2);
    let total: f32 = 0;
    for (let c = 0; c < chunks; c++) {
      const pp = part + (<usize>((c * H + h) * (dv + 2)) << 2);
      if (!(f32at(pp, 1) > 0)) continue;
      const w = Mathf.exp(f32at(pp, 0) - M);
      total += w * f32at(pp, 1);
      const wv = f32x4.splat(w);
      let d = 0;
      for (; d + 4 <= dv; d += 4) v128.store(po + (<usize>d << 2), f32x4.add(v128.load(po + (<usize>d << 2)), f32x4.mul(wv, v128.load(pp + 8 + (<usize>d << 2)))));
      for (; d < dv; d++) setf32(po, d, f32at(po, d) + w * f32at(pp + 8, d));
    }
    const inv: f32 = <f32>1.0 / total;
    for (let d = 0; d < dv; d++) setf32(po, d, f32at(po, d) * inv);
  }
}
