// Attention: scaled dot-product attention over packed heads, with a KV cache, a relative-position
// bias or a padding mask.

import { bool, cache, float, int, oneOf, optional } from "../attrs.js";
import { roundBf16 } from "../half.js";
import { relativeBucket } from "../relpos.js";
import { type Node, formatType } from "../types.js";
import { type OpDef, type Role, defineOp, expect, expectF32, expectSequences, f32, lastDim, operand, sequenceOf } from "./def.js";

/** Which KV cache a cached attention node uses: entries sharing a key share the cache. */
export function cacheKey(graph: string, n: Node): string {
  return typeof n.attrs.cache === "string" ? n.attrs.cache : `${graph}:${n.id}`;
}

/** attention's operands: q, k, v, then the relative-position table (attr bias), the mask (attr mask) and the rows' sequences (attr sequences). */
const attentionRoles = (a: { bias?: boolean; mask?: boolean; sequences?: boolean }): readonly Role[] =>
  ["activation", "activation", "activation", ...(a.bias ? (["bias"] as const) : []), ...(a.mask ? (["mask"] as const) : []), ...(a.sequences ? (["sequences"] as const) : [])];

export const attentionOps = {
  /**
   * Scaled dot-product attention over heads packed in the last dim: q[R,H*dk], k[L,Hkv*dk], v[L,Hkv*dv].
   * q has k's rows, or one row: the query of the last position only (see specialize-last-row).
   * attrs: heads, kv_heads, scale, causal, cache (false, or the key of a KV cache — see cacheKey —
   * that keys/values append to at rows past..past+R-1 and attention spans all past+R rows), bias
   * (operand: a relative-position table [buckets, heads], with bias_bidirectional/bias_buckets/
   * bias_max_distance), mask (operand: f32[L] of 0/1), window (causal: the query at position i sees
   * keys i − window < j ≤ i, Mistral's sliding window), softcap (scores → softcap·tanh(s / softcap)
   * before the bias and mask, Gemma 2), sequences (operand, pack-sequences: i32[rows, 2], each
   * row's sequence [first, end); a query sees only its own sequence's keys; no cache), kv_dtype
   * (bf16: the cache holds keys and values rounded to bfloat16, and every call attends over the
   * rounded ones, its own rows included: compile --kv-cache bf16).
   */
  attention: defineOp({
    attrs: {
      heads: int, kv_heads: int, scale: float, causal: optional(bool), window: optional(int), softcap: optional(float), cache: optional(cache),
      bias: optional(bool), bias_bidirectional: optional(bool), bias_buckets: optional(int), bias_max_distance: optional(int), mask: optional(bool),
      sequences: optional(bool), kv_dtype: optional(oneOf(["bf16"])),
    },
    arity: [3, 6],
    roles: attentionRoles,
    // a cached attention appends to its KV cache
    traits: (a) => (a.cache ? ["effects"] : ["pure"]),
    infer: (args, a) => {
      const [q, k, v] = args;
      const H = a.heads, Hkv = a.kv_heads;
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
      expect(a.window === undefined || (a.causal === true && a.window > 0), `attention: a window needs causal attention and at least 1 key`);
      expect(a.softcap === undefined || (Number.isFinite(a.softcap) && a.softcap > 0), `attention: softcap must be a finite number > 0, got ${a.softcap}`);
      if (a.cache) expect(q.shape[0] === k.shape[0] || q.shape[0] === 1, `attention: a cached attention's q has ${q.shape[0]} rows; it takes the k/v rows of the call (${k.shape[0]}), or 1 (the last query)`);
      const roles = attentionRoles(a);
      if (a.bias) {
        const t = operand(roles, args, "bias");
        expect(t !== undefined && t.shape.length === 2 && t.shape[1] === H, `attention: relative bias table must be [buckets, ${H}]`);
        expect(t.shape[0] === a.bias_buckets, `attention: bias table has ${t.shape[0]} buckets, expected ${a.bias_buckets}`);
      }
      if (a.mask) {
        const t = operand(roles, args, "mask");
        expect(t !== undefined && t.shape.length === 1 && t.shape[0] === k.shape[0], `attention: mask must be [${k.shape[0]}]`);
      }
      expect(a.kv_dtype === undefined || !!a.cache, `attention: kv_dtype ${a.kv_dtype} needs a KV cache`);
      if (a.sequences) {
        expect(!a.cache && q.shape[0] === k.shape[0], `attention: sequences need an uncached attention whose queries are its keys' rows`);
        expectSequences(operand(roles, args, "sequences"), k.shape[0], "attention");
      }
      return f32([q.shape[0], (dv / Hkv) * H]);
    },
    interp: (args, a, node, types, st) => {
      const [q, k, v] = args;
      const H = a.heads, Hkv = a.kv_heads, scale = a.scale;
      const dk = lastDim(types[0]) / H, kw = dk * Hkv, vw = lastDim(types[2]), dv = vw / Hkv;
      const R = q.length / (dk * H), Rk = k.length / kw;
      let keys = k as Float32Array, vals = v as Float32Array, L = Rk;
      if (a.cache) {
        const key = cacheKey(st.graph, node);
        let c = st.caches.get(key);
        if (!c) st.caches.set(key, (c = { k: new Float32Array(st.context * kw), v: new Float32Array(st.context * vw) }));
        if (st.past + Rk > st.context) throw new RangeError(`sequence of ${st.past + Rk} exceeds the context of ${st.context}`);
        const stored = (x: ArrayLike<number>) => (a.kv_dtype === "bf16" ? Float32Array.from(x, roundBf16) : x);
        c.k.set(stored(k), st.past * kw);
        c.v.set(stored(v), st.past * vw);
        keys = c.k; vals = c.v; L = st.past + Rk;
      }
      // the queries are the last R of the L positions
      const q0 = L - R;
      const roles = attentionRoles(a);
      const table = operand(roles, args, "bias"), mask = operand(roles, args, "mask"), seq = operand(roles, args, "sequences");
      const out = new Float32Array(R * H * dv);
      const scores = new Float64Array(L);
      for (let r = 0; r < R; r++)
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / (H / Hkv));
          // (a packed call's row sees its own sequence's keys only)
          const [from, end] = sequenceOf(seq, q0 + r, L);
          const limit = Math.min(end, a.causal ? Math.min(L, q0 + r + 1) : L);
          const first = Math.max(from, a.window ? Math.max(0, q0 + r - a.window + 1) : 0);
          let m = -Infinity;
          for (let j = first; j < limit; j++) {
            let s = 0;
            for (let d = 0; d < dk; d++) s += q[r * H * dk + h * dk + d] * keys[j * kw + g * dk + d];
            s *= scale;
            if (a.softcap) s = Math.tanh(s / a.softcap) * a.softcap;
            if (table) s += table[relativeBucket(j - (q0 + r), a.bias_bidirectional!, a.bias_buckets!, a.bias_max_distance!) * H + h];
            if (mask && mask[j] === 0) s += -3.4028234663852886e38;
            scores[j] = s;
            m = Math.max(m, s);
          }
          let sum = 0;
          for (let j = first; j < limit; j++) sum += scores[j] = Math.exp(scores[j] - m);
          for (let d = 0; d < dv; d++) {
            let acc = 0;
            for (let j = first; j < limit; j++) acc += scores[j] * vals[j * vw + g * dv + d];
            out[r * H * dv + h * dv + d] = acc / sum;
          }
        }
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
