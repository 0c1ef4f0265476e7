// Attention kernels (AssemblyScript, SIMD128): one pass of online softmax over the keys per query
// row and head, and decode attention split over the keys for threads (flash-decoding).

// @ts-nocheck  (AssemblyScript, not TypeScript)

import { f32at, hsum, setf32 } from "./memory";

/**
 * Attention with online softmax (one pass over keys, no score matrix).
 * q[rows, H*dk]; keys/values: L rows of width Hkv*dk / Hkv*dv; query r sits at absolute position
 * q0 + r. causal: keys j <= q0 + r only; window (0: none): keys j > q0 + r − window only. cap (0:
 * none): scores soft-capped to cap·tanh(s / cap). bias: table[bucket(j - (q0 + r)) * H + h] with
 * bucket() read from `buckets` (i32, indexed by distance + range). mask: f32[L], 0 = padding.
 * Heads h0..h1-1 only (threads split the heads; each head's result is the same on any split).
 */
export function attention(
  q: usize, k: usize, v: usize, out: usize, rows: i32, L: i32, q0: i32,
  H: i32, Hkv: i32, dk: i32, dv: i32, scale: f32, causal: i32, window: i32, cap: f32,
  table: usize, buckets: usize, range: i32, mask: usize, h0: i32, h1: i32,
): void {
  const group = H / Hkv;
  // head by head: one head's keys and values stay in L1 for all the query rows
  for (let h = h0; h < h1; h++) {
    for (let r = 0; r < rows; r++) {
      const limit = causal ? min(L, q0 + r + 1) : L;
      const first = window ? max(0, q0 + r - window + 1) : 0;
      const pq = q + (<usize>(r * H * dk + h * dk) << 2);
      const po = out + (<usize>(r * H * dv + h * dv) << 2);
      const l = attendKeys(pq, k, v, po, first, limit, h, h / group, Hkv, dk, dv, scale, cap, table, buckets, range, mask, q0 + r, H);
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

/** Key j's score for the query at pq: scale·q·k, soft-capped (cap ≠ 0) (+ relative bias) (+ −FLT_MAX where masked). */
@inline function keyScore(
  pq: usize, k: usize, j: i32, kw: i32, g: i32, h: i32, dk: i32, scale: f32, cap: f32,
  table: usize, buckets: usize, range: i32, mask: usize, qpos: i32, H: i32,
): f32 {
  const pk = k + (<usize>(j * kw + g * dk) << 2);
  let sv = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= dk; d += 4) sv = f32x4.add(sv, f32x4.mul(v128.load(pq + (<usize>d << 2)), v128.load(pk + (<usize>d << 2))));
  let s = hsum(sv);
  for (; d < dk; d++) s += f32at(pq, d) * f32at(pk, d);
  s *= scale;
  if (cap != 0) s = Mathf.tanh(s / cap) * cap;
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
 * The scores of keys j..j+3 side by side for the query at pq (dk % 4 = 0, no cap or bias):
 * scale·q·k, plus −FLT_MAX where the padding mask is 0, as keyScore adds it.
 */
@inline function scores4(pq: usize, k: usize, j: i32, kw: i32, g: i32, dk: i32, scale: f32, mask: usize): v128 {
  const pk = k + (<usize>(j * kw + g * dk) << 2), stride = <usize>kw << 2;
  const p1 = pk + stride, p2 = pk + 2 * stride, p3 = pk + 3 * stride;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let o: usize = 0; o < (<usize>dk << 2); o += 16) {
    const qv = v128.load(pq + o);
    a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(pk + o)));
    a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(p1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(p2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(p3 + o)));
  }
  const s = f32x4.mul(sum4(a0, a1, a2, a3), f32x4.splat(scale));
  return mask ? f32x4.add(s, v128.and(f32x4.eq(v128.load(mask + (<usize>j << 2)), f32x4.splat(0)), f32x4.splat(-3.4028234663852886e38))) : s;
}

/** po[0..dv) += p·pv[0..dv) */
@inline function addValue(po: usize, pv: usize, dv: i32, p: f32): void {
  const pv4 = f32x4.splat(p);
  let d = 0;
  for (; d + 4 <= dv; d += 4) v128.store(po + (<usize>d << 2), f32x4.add(v128.load(po + (<usize>d << 2)), f32x4.mul(pv4, v128.load(pv + (<usize>d << 2)))));
  for (; d < dv; d++) setf32(po, d, f32at(po, d) + p * f32at(pv, d));
}

/** The largest lane of s. */
@inline function hmax(s: v128): f32 {
  return max(max(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1)), max(f32x4.extract_lane(s, 2), f32x4.extract_lane(s, 3)));
}

/** po[0..dv) += Σ p_i·v_{j+i} over the 4 keys j..j+3 (p: their weights). */
@inline function addValues4(po: usize, v: usize, j: i32, vw: i32, g: i32, dv: i32, p: v128): void {
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

// A bf16 cache (attention attr kv_dtype) stores each 8 values of a row x0..x7 as x0 x4 x1 x5 x2
// x6 x3 x7 (the compiler's to_bf16): one load gives x0..x3 as the low halves of its i32 lanes and
// x4..x7 as the high halves, so two bit operations widen 8 values to f32 (a bf16 is the top half
// of its f32), in order. Head sizes are multiples of 8.

/** Values 0..3 of the bf16 8-block loaded as v. */
@inline function bfLow(v: v128): v128 {
  return i32x4.shl(v, 16);
}

/** Values 4..7 of the bf16 8-block loaded as v. */
@inline function bfHigh(v: v128): v128 {
  return v128.and(v, i32x4.splat(0xffff0000));
}

/** scores4 over a bf16 cache (rows of kw bf16 values in 8-blocks; dk % 8 = 0). */
@inline function scores4b(pq: usize, k: usize, j: i32, kw: i32, g: i32, dk: i32, scale: f32, mask: usize): v128 {
  const pk = k + (<usize>(j * kw + g * dk) << 1), stride = <usize>kw << 1;
  const p1 = pk + stride, p2 = pk + 2 * stride, p3 = pk + 3 * stride;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let o: usize = 0, b: usize = 0; o < (<usize>dk << 2); o += 32, b += 16) {
    const q0 = v128.load(pq + o), q1 = v128.load(pq + o, 16);
    const k0 = v128.load(pk + b), k1 = v128.load(p1 + b), k2 = v128.load(p2 + b), k3 = v128.load(p3 + b);
    a0 = f32x4.add(a0, f32x4.add(f32x4.mul(q0, bfLow(k0)), f32x4.mul(q1, bfHigh(k0))));
    a1 = f32x4.add(a1, f32x4.add(f32x4.mul(q0, bfLow(k1)), f32x4.mul(q1, bfHigh(k1))));
    a2 = f32x4.add(a2, f32x4.add(f32x4.mul(q0, bfLow(k2)), f32x4.mul(q1, bfHigh(k2))));
    a3 = f32x4.add(a3, f32x4.add(f32x4.mul(q0, bfLow(k3)), f32x4.mul(q1, bfHigh(k3))));
  }
  const s = f32x4.mul(sum4(a0, a1, a2, a3), f32x4.splat(scale));
  return mask ? f32x4.add(s, v128.and(f32x4.eq(v128.load(mask + (<usize>j << 2)), f32x4.splat(0)), f32x4.splat(-3.4028234663852886e38))) : s;
}

/** addValues4 over a bf16 cache (dv % 8 = 0). */
@inline function addValues4b(po: usize, v: usize, j: i32, vw: i32, g: i32, dv: i32, p: v128): void {
  const p0 = f32x4.splat(f32x4.extract_lane(p, 0)), p1 = f32x4.splat(f32x4.extract_lane(p, 1));
  const p2 = f32x4.splat(f32x4.extract_lane(p, 2)), p3 = f32x4.splat(f32x4.extract_lane(p, 3));
  const pv = v + (<usize>(j * vw + g * dv) << 1), vs = <usize>vw << 1;
  for (let d = 0; d < dv; d += 8) {
    const pd = pv + (<usize>d << 1), out = po + (<usize>d << 2);
    const v0 = v128.load(pd), v1 = v128.load(pd + vs), v2 = v128.load(pd + 2 * vs), v3 = v128.load(pd + 3 * vs);
    const lo = f32x4.add(f32x4.add(f32x4.mul(p0, bfLow(v0)), f32x4.mul(p1, bfLow(v1))), f32x4.add(f32x4.mul(p2, bfLow(v2)), f32x4.mul(p3, bfLow(v3))));
    const hi = f32x4.add(f32x4.add(f32x4.mul(p0, bfHigh(v0)), f32x4.mul(p1, bfHigh(v1))), f32x4.add(f32x4.mul(p2, bfHigh(v2)), f32x4.mul(p3, bfHigh(v3))));
    v128.store(out, f32x4.add(v128.load(out), lo));
    v128.store(out, f32x4.add(v128.load(out, 16), hi), 16);
  }
}

/** po[0..dv) += p·(the bf16 row at pv) (dv % 8 = 0). */
@inline function addValues4b1(po: usize, pv: usize, dv: i32, p: f32): void {
  const pv4 = f32x4.splat(p);
  for (let d = 0; d < dv; d += 8) {
    const v = v128.load(pv + (<usize>d << 1)), out = po + (<usize>d << 2);
    v128.store(out, f32x4.add(v128.load(out), f32x4.mul(pv4, bfLow(v))));
    v128.store(out, f32x4.add(v128.load(out, 16), f32x4.mul(pv4, bfHigh(v))), 16);
  }
}

/** One key's scaled (and masked) score over a bf16 cache (dk % 8 = 0). */
@inline function keyScoreB(pq: usize, k: usize, j: i32, kw: i32, g: i32, dk: i32, scale: f32, mask: usize): f32 {
  const pk = k + (<usize>(j * kw + g * dk) << 1);
  let a = f32x4.splat(0);
  for (let d = 0; d < dk; d += 8) {
    const kv = v128.load(pk + (<usize>d << 1)), q = pq + (<usize>d << 2);
    a = f32x4.add(a, f32x4.add(f32x4.mul(v128.load(q), bfLow(kv)), f32x4.mul(v128.load(q, 16), bfHigh(kv))));
  }
  const s = hsum(a) * scale;
  return mask && f32at(mask, j) == 0 ? s + <f32>-3.4028234663852886e38 : s;
}

/**
 * One head's online softmax over keys j0..j1-1 for the query at position qpos: po gets
 * Σ exp(s_j − m)·v_j (not yet divided), lastMax the running maximum m; returns Σ exp(s_j − m)
 * (0 for no keys, lastMax then −inf). Plain scores (dk % 4 = 0, no cap or bias) go 16 keys at a
 * time: 4 groups of 4 dot products side by side, one maximum and one rescale for the 16, and 4
 * independent vector exps (the step's only serial dependence is the running maximum, once per
 * 16 keys); then 4 at a time the same way, then one by one.
 */
let lastMax: f32 = 0;
@inline function attendKeys(
  pq: usize, k: usize, v: usize, po: usize, j0: i32, j1: i32, h: i32, g: i32, Hkv: i32, dk: i32, dv: i32, scale: f32, cap: f32,
  table: usize, buckets: usize, range: i32, mask: usize, qpos: i32, H: i32,
): f32 {
  const kw = Hkv * dk, vw = Hkv * dv;
  memory.fill(po, 0, <usize>dv << 2);
  let m: f32 = -Infinity;
  let l: f32 = 0;
  let j = j0;
  const plain = dk % 4 == 0 && cap == 0 && !table;
  if (plain)
    for (; j + 16 <= j1; j += 16) {
      const s0 = scores4(pq, k, j, kw, g, dk, scale, mask), s1 = scores4(pq, k, j + 4, kw, g, dk, scale, mask);
      const s2 = scores4(pq, k, j + 8, kw, g, dk, scale, mask), s3 = scores4(pq, k, j + 12, kw, g, dk, scale, mask);
      const mb = hmax(f32x4.max(f32x4.max(s0, s1), f32x4.max(s2, s3)));
      if (mb > m) {
        const corr: f32 = m == -Infinity ? 0 : Mathf.exp(m - mb);
        l *= corr;
        scaleRow(po, dv, corr);
        m = mb;
      }
      const mv = f32x4.splat(m);
      const p0 = expv(f32x4.sub(s0, mv)), p1 = expv(f32x4.sub(s1, mv)), p2 = expv(f32x4.sub(s2, mv)), p3 = expv(f32x4.sub(s3, mv));
      l += hsum(f32x4.add(f32x4.add(p0, p1), f32x4.add(p2, p3)));
      addValues4(po, v, j, vw, g, dv, p0);
      addValues4(po, v, j + 4, vw, g, dv, p1);
      addValues4(po, v, j + 8, vw, g, dv, p2);
      addValues4(po, v, j + 12, vw, g, dv, p3);
    }
  for (; j + 4 <= j1; j += 4) {
    const s = plain
      ? scores4(pq, k, j, kw, g, dk, scale, mask)
      : f32x4(
        keyScore(pq, k, j, kw, g, h, dk, scale, cap, table, buckets, range, mask, qpos, H),
        keyScore(pq, k, j + 1, kw, g, h, dk, scale, cap, table, buckets, range, mask, qpos, H),
        keyScore(pq, k, j + 2, kw, g, h, dk, scale, cap, table, buckets, range, mask, qpos, H),
        keyScore(pq, k, j + 3, kw, g, h, dk, scale, cap, table, buckets, range, mask, qpos, H),
      );
    const mb = hmax(s);
    if (mb > m) {
      const corr: f32 = m == -Infinity ? 0 : Mathf.exp(m - mb);
      l *= corr;
      scaleRow(po, dv, corr);
      m = mb;
    }
    const p = expv(f32x4.sub(s, f32x4.splat(m)));
    l += hsum(p);
    addValues4(po, v, j, vw, g, dv, p);
  }
  for (; j < j1; j++) {
    const s = keyScore(pq, k, j, kw, g, h, dk, scale, cap, table, buckets, range, mask, qpos, H);
    if (s > m) {
      const corr: f32 = m == -Infinity ? 0 : Mathf.exp(m - s);
      l *= corr;
      scaleRow(po, dv, corr);
      m = s;
    }
    const p = Mathf.exp(s - m);
    l += p;
    addValue(po, v + (<usize>(j * vw + g * dv) << 2), dv, p);
  }
  lastMax = m;
  return l;
}

/** Keys a decode chunk takes at least: shorter ranges cost more in setup and merging than they save. */
const CHUNK_KEYS = 32;
/** Chunks of decode attention over L keys with at most `units` work units: depends on L only. */
@inline function decodeChunks(L: i32, units: i32): i32 { return max(1, min(units, L / CHUNK_KEYS)); }

/**
 * Floats of one head's slot in a decode chunk's part: m, l, two unused, o[dv] (from 16 bytes in,
 * aligned), then room for 16 weights (decodeRows), all in whole vectors.
 */
@inline function partFloats(dv: i32): i32 { return 4 + ((dv + 3) & ~3) + 16; }

/** The chunk of unit u, if it has one (c = ⌈u·n/units⌉ with ⌊units·c/n⌋ = u), else −1. */
@inline function chunkOf(u: i32, chunks: i32, units: i32): i32 {
  const c = <i32>((<i64>u * chunks + units - 1) / units);
  return c >= chunks || <i32>((<i64>units * c) / chunks) != u ? -1 : c;
}

/** The first of chunk c's keys, `keys` keys from `first` cut into `chunks`. */
@inline function chunkStart(first: i32, keys: i32, c: i32, chunks: i32): i32 {
  return first + <i32>((<i64>keys * c) / chunks);
}

/**
 * Decode attention split over the keys (flash-decoding), for one query row at position L − 1:
 * the visible keys first..L−1 are cut into n = decodeChunks(L − first, units) equal ranges, chunk
 * c the work of unit ⌊units·c/n⌋ (so that threads, which split the units, share the chunks evenly).
 * Chunk c writes, for every head, (m, l, ·, ·, o[dv]) to part + (c·H + h)·partFloats(dv) floats:
 * its maximum score, Σ exp(s − m) and Σ exp(s − m)·v. attention_merge combines the chunks. The
 * split does not depend on the thread count, nor do the results.
 */
export function attention_part(
  q: usize, k: usize, v: usize, part: usize, L: i32, first: i32,
  H: i32, Hkv: i32, dk: i32, dv: i32, scale: f32, cap: f32,
  table: usize, buckets: usize, range: i32, mask: usize, u0: i32, u1: i32, units: i32,
): void {
  const group = H / Hkv;
  const keys = L - first;
  const chunks = decodeChunks(keys, units);
  const pf = partFloats(dv);
  for (let u = u0; u < u1; u++) {
    const c = chunkOf(u, chunks, units);
    if (c < 0) continue;
    const j0 = chunkStart(first, keys, c, chunks), j1 = chunkStart(first, keys, c + 1, chunks);
    const pc = part + (<usize>(c * H * pf) << 2);
    if (dk % 4 == 0 && cap == 0 && !table) {
      decodeRows(q, k, v, pc, j0, j1, H, group, Hkv, dk, dv, scale, mask, pf, false);
      continue;
    }
    for (let h = 0; h < H; h++) {
      const pp = pc + (<usize>(h * pf) << 2);
      const l = attendKeys(q + (<usize>(h * dk) << 2), k, v, pp + 16, j0, j1, h, h / group, Hkv, dk, dv, scale, cap, table, buckets, range, mask, L - 1, H);
      setf32(pp, 0, lastMax);
      setf32(pp, 1, l);
    }
  }
}

/**
 * attention_part over a bf16 cache (attention attr kv_dtype): keys and values rows of Hkv·dk and
 * Hkv·dv bfloat16 values in 8-blocks (above), dk and dv multiples of 8, no cap or bias (what the
 * compiler allows).
 */
export function attention_part_bf16(
  q: usize, k: usize, v: usize, part: usize, L: i32, first: i32,
  H: i32, Hkv: i32, dk: i32, dv: i32, scale: f32, mask: usize, u0: i32, u1: i32, units: i32,
): void {
  const keys = L - first;
  const chunks = decodeChunks(keys, units);
  const pf = partFloats(dv);
  for (let u = u0; u < u1; u++) {
    const c = chunkOf(u, chunks, units);
    if (c < 0) continue;
    const j0 = chunkStart(first, keys, c, chunks), j1 = chunkStart(first, keys, c + 1, chunks);
    decodeRows(q, k, v, part + (<usize>(c * H * pf) << 2), j0, j1, H, H / Hkv, Hkv, dk, dv, scale, mask, pf, true);
  }
}

/**
 * The plain decode chunk (dk % 4 = 0, no cap or bias), keys j0..j1−1 for all heads, 16 keys at a
 * time in three passes: every head's 16 scores (for each 4 keys, head after head, so that key rows
 * are read front to back, 4 sequential streams the prefetchers follow, not head by head at the
 * cache's row stride), then each head's softmax step (one maximum and one rescale for the 16),
 * then the values the same way as the keys. The passes' inner work is independent from head to
 * head, which the out-of-order core overlaps. Each head's running (m, l, o) and its 16 weights
 * stay in its slot of the chunk's part (L1). Keys past the last 16 go 4 and then 1 at a time.
 */
@inline function decodeRows(
  q: usize, k: usize, v: usize, pc: usize, j0: i32, j1: i32, H: i32, group: i32, Hkv: i32,
  dk: i32, dv: i32, scale: f32, mask: usize, pf: i32, bf: bool,
): void {
  const kw = Hkv * dk, vw = Hkv * dv;
  memory.fill(pc, 0, <usize>(H * pf) << 2);
  for (let h = 0; h < H; h++) setf32(pc + (<usize>(h * pf) << 2), 0, -Infinity);
  // the 16 weights of head h sit after its o: pp + 16 + 4·dv4 (dv4: dv rounded up to a vector)
  const ws: usize = 16 + (<usize>((dv + 3) & ~3) << 2);
  let j = j0;
  for (; j + 16 <= j1; j += 16) {
    for (let i = 0; i < 16; i += 4)
      for (let h = 0; h < H; h++)
        v128.store(pc + (<usize>(h * pf) << 2) + ws + (<usize>i << 2), bf ? scores4b(q + (<usize>(h * dk) << 2), k, j + i, kw, h / group, dk, scale, mask) : scores4(q + (<usize>(h * dk) << 2), k, j + i, kw, h / group, dk, scale, mask));
    for (let h = 0; h < H; h++) {
      const pp = pc + (<usize>(h * pf) << 2), pw = pp + ws;
      const s0 = v128.load(pw), s1 = v128.load(pw, 16), s2 = v128.load(pw, 32), s3 = v128.load(pw, 48);
      const mv = f32x4.splat(softmaxStep(pp, dv, hmax(f32x4.max(f32x4.max(s0, s1), f32x4.max(s2, s3)))));
      const p0 = expv(f32x4.sub(s0, mv)), p1 = expv(f32x4.sub(s1, mv)), p2 = expv(f32x4.sub(s2, mv)), p3 = expv(f32x4.sub(s3, mv));
      setf32(pp, 1, f32at(pp, 1) + hsum(f32x4.add(f32x4.add(p0, p1), f32x4.add(p2, p3))));
      v128.store(pw, p0); v128.store(pw, p1, 16); v128.store(pw, p2, 32); v128.store(pw, p3, 48);
    }
    for (let i = 0; i < 16; i += 4)
      for (let h = 0; h < H; h++) {
        const pp = pc + (<usize>(h * pf) << 2);
        if (bf) addValues4b(pp + 16, v, j + i, vw, h / group, dv, v128.load(pp + ws + (<usize>i << 2)));
        else addValues4(pp + 16, v, j + i, vw, h / group, dv, v128.load(pp + ws + (<usize>i << 2)));
      }
  }
  for (; j + 4 <= j1; j += 4)
    for (let h = 0; h < H; h++) {
      const pp = pc + (<usize>(h * pf) << 2);
      const s = bf ? scores4b(q + (<usize>(h * dk) << 2), k, j, kw, h / group, dk, scale, mask) : scores4(q + (<usize>(h * dk) << 2), k, j, kw, h / group, dk, scale, mask);
      const p = expv(f32x4.sub(s, f32x4.splat(softmaxStep(pp, dv, hmax(s)))));
      setf32(pp, 1, f32at(pp, 1) + hsum(p));
      if (bf) addValues4b(pp + 16, v, j, vw, h / group, dv, p);
      else addValues4(pp + 16, v, j, vw, h / group, dv, p);
    }
  for (; j < j1; j++)
    for (let h = 0; h < H; h++) {
      const pp = pc + (<usize>(h * pf) << 2);
      const s = bf ? keyScoreB(q + (<usize>(h * dk) << 2), k, j, kw, h / group, dk, scale, mask) : keyScore(q + (<usize>(h * dk) << 2), k, j, kw, h / group, h, dk, scale, 0, 0, 0, 0, mask, 0, H);
      const p = Mathf.exp(s - softmaxStep(pp, dv, s));
      setf32(pp, 1, f32at(pp, 1) + p);
      if (bf) addValues4b1(pp + 16, v + (<usize>(j * vw + (h / group) * dv) << 1), dv, p);
      else addValue(pp + 16, v + (<usize>(j * vw + (h / group) * dv) << 2), dv, p);
    }
}

/**
 * A head's running maximum m (at pp) meets the next keys' largest score mb: if mb is larger, the
 * sum l (at pp + 4) and o (at pp + 16) are rescaled by exp(m − mb) and m becomes mb. Returns m.
 */
@inline function softmaxStep(pp: usize, dv: i32, mb: f32): f32 {
  const m = f32at(pp, 0);
  if (!(mb > m)) return m;
  const corr: f32 = m == -Infinity ? 0 : Mathf.exp(m - mb);
  setf32(pp, 1, f32at(pp, 1) * corr);
  scaleRow(pp + 16, dv, corr);
  setf32(pp, 0, mb);
  return mb;
}

/** out[h·dv + d] = Σ_c e^(m_c − M)·o_c[d] / Σ_c e^(m_c − M)·l_c over the chunks of `keys` visible keys (M: their largest m). */
export function attention_merge(part: usize, out: usize, H: i32, dv: i32, keys: i32, units: i32): void {
  const chunks = decodeChunks(keys, units);
  const pf = partFloats(dv);
  for (let h = 0; h < H; h++) {
    let M: f32 = -Infinity;
    for (let c = 0; c < chunks; c++) {
      const pp = part + (<usize>((c * H + h) * pf) << 2);
      if (f32at(pp, 1) > 0) M = Mathf.max(M, f32at(pp, 0));
    }
    const po = out + (<usize>(h * dv) << 2);
    memory.fill(po, 0, <usize>dv << 2);
    let total: f32 = 0;
    for (let c = 0; c < chunks; c++) {
      const pp = part + (<usize>((c * H + h) * pf) << 2);
      if (!(f32at(pp, 1) > 0)) continue;
      const w = Mathf.exp(f32at(pp, 0) - M);
      total += w * f32at(pp, 1);
      const wv = f32x4.splat(w);
      let d = 0;
      for (; d + 4 <= dv; d += 4) v128.store(po + (<usize>d << 2), f32x4.add(v128.load(po + (<usize>d << 2)), f32x4.mul(wv, v128.load(pp + 16 + (<usize>d << 2)))));
      for (; d < dv; d++) setf32(po, d, f32at(po, d) + w * f32at(pp + 16, d));
    }
    const inv: f32 = <f32>1.0 / total;
    for (let d = 0; d < dv; d++) setf32(po, d, f32at(po, d) * inv);
  }
}
