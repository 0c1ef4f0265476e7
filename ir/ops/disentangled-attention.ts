// DeBERTa's disentangled attention: self-attention whose scores add content→position and
// position→content terms, dot products with projected relative-position embeddings gathered at
// each query/key pair's (log-bucketed) relative position.

import { bool, float, int, optional } from "../attrs.js";
import { formatType } from "../types.js";
import { type OpDef, type Role, defineOp, expect, expectF32, f32, lastDim } from "./def.js";

const f = Math.fround;

/**
 * DeBERTa's bucket of relative position `rel` = query − key, as transformers'
 * make_log_bucket_position computes it (in float32 whatever the model's dtype): rel itself within
 * ±buckets/2, then logarithmic up to ±(buckets − 1) at max_distance − 1. No buckets: rel itself.
 */
export function logBucket(rel: number, buckets: number | undefined, maxDistance: number): number {
  const mid = Math.floor((buckets ?? 0) / 2);
  if (!buckets || Math.abs(rel) <= mid) return rel;
  const ratio = f(f(Math.log(f(Math.abs(rel) / mid))) / f(Math.log(f((maxDistance - 1) / mid))));
  return Math.sign(rel) * (Math.ceil(f(ratio * (mid - 1))) + mid);
}

export interface RelativeAttrs {
  readonly buckets?: number;
  readonly max_distance: number;
}

/** Rows of half the relative-position tables (HF's att_span): the buckets, else max_distance. */
export const relativeSpan = (a: RelativeAttrs) => a.buckets ?? a.max_distance;

/** The row of the relative-position tables a query/key pair at rel = query − key reads: its bucket + span, clamped to the tables. */
export function relativeRow(rel: number, a: RelativeAttrs): number {
  const span = relativeSpan(a);
  return Math.min(Math.max(logBucket(rel, a.buckets, a.max_distance) + span, 0), 2 * span - 1);
}

/** Its operands: q, k, v, then pos_key (attr c2p), pos_query (attr p2c) and the mask (attr mask). */
const disentangledRoles = (a: { c2p?: boolean; p2c?: boolean; mask?: boolean }): readonly Role[] => [
  "activation", "activation", "activation",
  ...(a.c2p ? (["activation"] as const) : []), ...(a.p2c ? (["activation"] as const) : []), ...(a.mask ? (["mask"] as const) : []),
];

/** The operands of a node (or their types), by what they are. */
export function disentangledOperands<T>(xs: readonly T[], a: { c2p?: boolean; p2c?: boolean; mask?: boolean }) {
  let at = 3;
  const posKey = a.c2p ? xs[at++] : undefined, posQuery = a.p2c ? xs[at++] : undefined, mask = a.mask ? xs[at] : undefined;
  return { q: xs[0], k: xs[1], v: xs[2], posKey, posQuery, mask };
}

export const disentangledAttentionOps = {
  /**
   * q[S,H*dk], k[S,H*dk], v[S,H*dv] of the same S positions (no cache). Score of query i and key j:
   * scale · (q_i·k_j + q_i·pos_key[r] (attr c2p) + k_j·pos_query[r] (attr p2c)), r = relativeRow(i − j),
   * per head; pos_key/pos_query [2·span, H*dk]: the relative embeddings through the key/query
   * projections. buckets (absent: none) and max_distance are HF's position_buckets and
   * max_relative_positions. mask: f32[S] of 0/1, a 0 key's score −FLT_MAX (XSoftmax's fill).
   */
  disentangled_attention: defineOp({
    attrs: { heads: int, scale: float, c2p: optional(bool), p2c: optional(bool), buckets: optional(int), max_distance: int, mask: optional(bool) },
    arity: [3, 6],
    roles: disentangledRoles,
    traits: ["pure"],
    infer: (args, a) => {
      const H = a.heads;
      const { q, k, v, posKey, posQuery, mask } = disentangledOperands(args, a);
      expect(args.length === disentangledRoles(a).length, `disentangled_attention: takes ${disentangledRoles(a).length} operands with c2p=${!!a.c2p}, p2c=${!!a.p2c}, mask=${!!a.mask}, got ${args.length}`);
      for (const [t, w] of [[q, "q"], [k, "k"], [v, "v"]] as const) {
        expectF32(t, w);
        expect(t.shape.length === 2, `disentangled_attention: ${w} must be [rows, heads*head_dim], got ${formatType(t)}`);
      }
      const dq = lastDim(q);
      expect(H > 0 && dq % H === 0, `disentangled_attention: q width ${dq} is not divisible by ${H} heads`);
      expect(lastDim(k) === dq, `disentangled_attention: k width ${lastDim(k)} should be q's, ${dq}`);
      expect(lastDim(v) % H === 0, `disentangled_attention: v width ${lastDim(v)} is not divisible by ${H} heads`);
      expect(q.shape[0] === k.shape[0] && k.shape[0] === v.shape[0], `disentangled_attention: q, k and v must have the same rows (their positions), got ${formatType(q)}, ${formatType(k)}, ${formatType(v)}`);
      expect(a.max_distance >= 1, `disentangled_attention: max_distance must be at least 1, got ${a.max_distance}`);
      if (a.buckets !== undefined) {
        const mid = Math.floor(a.buckets / 2);
        // log(|rel| / mid) / log((max_distance − 1) / mid) needs both logs of numbers > 1
        expect(mid >= 1 && a.max_distance - 1 > mid, `disentangled_attention: ${a.buckets} buckets need max_distance > buckets / 2 + 1, got ${a.max_distance}`);
      }
      const rows = 2 * relativeSpan(a);
      for (const [t, w] of [[posKey, "pos_key"], [posQuery, "pos_query"]] as const) {
        if (t === undefined) continue;
        expectF32(t, w);
        expect(t.shape.length === 2 && t.shape[0] === rows && t.shape[1] === dq, `disentangled_attention: ${w} must be [${rows}, ${dq}] (2 × ${a.buckets !== undefined ? "buckets" : "max_distance"} rows), got ${formatType(t)}`);
      }
      if (mask) expectF32(mask, "mask");
      if (mask) expect(mask.shape.length === 1 && mask.shape[0] === k.shape[0], `disentangled_attention: mask must be [${k.shape[0]}]`);
      return f32([q.shape[0], lastDim(v)]);
    },
    interp: (args, a, _node, types) => {
      const { q, k, v, posKey, posQuery, mask } = disentangledOperands(args, a);
      const H = a.heads, w = lastDim(types[0]), dk = w / H, vw = lastDim(types[2]), dv = vw / H;
      const S = q.length / w;
      const out = new Float32Array(S * vw);
      const scores = new Float64Array(S);
      const dot = (x: ArrayLike<number>, xi: number, y: ArrayLike<number>, yi: number) => {
        let s = 0;
        for (let d = 0; d < dk; d++) s += x[xi + d] * y[yi + d];
        return s;
      };
      for (let i = 0; i < S; i++)
        for (let h = 0; h < H; h++) {
          const qi = i * w + h * dk;
          let m = -Infinity;
          for (let j = 0; j < S; j++) {
            const kj = j * w + h * dk, r = relativeRow(i - j, a) * w + h * dk;
            let s = dot(q, qi, k, kj);
            if (posKey) s += dot(q, qi, posKey, r);
            if (posQuery) s += dot(k, kj, posQuery, r);
            s *= a.scale;
            if (mask && mask[j] === 0) s = -3.4028234663852886e38;
            scores[j] = s;
            m = Math.max(m, s);
          }
          let sum = 0;
          for (let j = 0; j < S; j++) sum += scores[j] = Math.exp(scores[j] - m);
          for (let d = 0; d < dv; d++) {
            let acc = 0;
            for (let j = 0; j < S; j++) acc += scores[j] * v[j * vw + h * dv + d];
            out[i * vw + h * dv + d] = acc / sum;
          }
        }
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
