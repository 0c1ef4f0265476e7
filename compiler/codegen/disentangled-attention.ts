// The lowering of disentangled_attention (DeBERTa): a generated kernel that scores each query/key
// pair directly — q·k plus the c2p and p2c dot products at the pair's relative-position row, read
// from a table computed at compile time — then the library's softmax over the row and the
// weighted sum of values. Threads split the heads; each has a score row of its own.

import { type OpNode, isOp } from "../../ir/ops.js";
import { disentangledOperands, relativeRow } from "../../ir/ops/disentangled-attention.js";
import type { Node } from "../../ir/types.js";
import { MIN_PARALLEL_MACS } from "./tuning.js";
import { type Expr, type WasmModule, createType, f32, i32, none, v128 } from "./wasm.js";

type DisentangledNode = OpNode<"disentangled_attention">;

/** What the lowering asks of codegen: a part of lower.ts's LowerCtx (named here, as lower.ts imports this file). */
interface Ctx {
  readonly wm: WasmModule;
  readonly context: number;
  address(id: number): number;
  ptr(id: number): Expr;
  rows(id: number): Expr;
  width(id: number): number;
  constant(key: string): number;
  scratch(area: "attention"): number;
}

/** Bytes of one thread's score row: a float per key, whole vectors. */
const rowBytes = (context: number) => Math.ceil(context / 4) * 16;

/** Each thread's score row, in the attention scratch area. */
export const disentangledScratch = (_n: DisentangledNode, q: { context: number; threads: number }) => ({ attention: q.threads * rowBytes(q.context) });

const tableKey = (n: DisentangledNode, context: number) => `relative_rows_${n.attrs.buckets ?? 0}_${n.attrs.max_distance}_${context}`;

/** The relative-position row of every query − key in [-context, context], indexed by it + context. */
export function disentangledConstants(n: Node, context: number): { key: string; data: () => Int32Array }[] {
  if (!isOp(n, "disentangled_attention") || (!n.attrs.c2p && !n.attrs.p2c)) return [];
  const a = n.attrs;
  return [{ key: tableKey(n, context), data: () => Int32Array.from({ length: 2 * context + 1 }, (_, i) => relativeRow(i - context, a)) }];
}

/** `disentangled_dot_<n>(a, b)`: the f32 dot product of n floats at a and b, 4 lanes at a time, then the tail. */
function dotKernel(wm: WasmModule, n: number): string {
  return wm.ensure(`disentangled_dot_${n}`, () => {
    const m = wm.m;
    const [A, B, D, ACC] = [0, 1, 2, 3];
    const get = (l: number) => m.local.get(l, i32);
    const at = (base: number, d: Expr) => m.i32.add(get(base), m.i32.shl(d, m.i32.const(2)));
    const n4 = n & ~3;
    const acc = () => m.local.get(ACC, v128);
    const lanes = [0, 1, 2, 3].map((l) => m.f32x4.extract_lane(acc(), l));
    let sum = m.f32.add(m.f32.add(lanes[0], lanes[1]), m.f32.add(lanes[2], lanes[3]));
    for (let d = n4; d < n; d++) sum = m.f32.add(sum, m.f32.mul(m.f32.load(4 * d, 4, get(A)), m.f32.load(4 * d, 4, get(B))));
    const body = m.block(null, [
      m.local.set(ACC, m.v128.const(new Array(16).fill(0))),
      ...(n4 ? [wm.loop(`disentangled_dot_${n}`, D, m.i32.const(0), n4, 4, [
        m.local.set(ACC, m.f32x4.add(acc(), m.f32x4.mul(m.v128.load(0, 4, at(A, get(D))), m.v128.load(0, 4, at(B, get(D)))))),
      ])] : []),
      sum,
    ], f32);
    m.addFunction(`disentangled_dot_${n}`, createType([i32, i32]), f32, [i32, v128], body);
  });
}

export function lowerDisentangledAttention(c: Ctx, n: DisentangledNode): Expr[] {
  const { wm } = c;
  const m = wm.m;
  const a = n.attrs;
  const ops = disentangledOperands(n.args, a);
  const H = a.heads, W = c.width(ops.q), dk = W / H, VW = c.width(ops.v), dv = VW / H;
  const posKey = ops.posKey !== undefined ? c.address(ops.posKey) : 0, posQuery = ops.posQuery !== undefined ? c.address(ops.posQuery) : 0;
  const mask = ops.mask !== undefined ? c.address(ops.mask) : 0;
  const table = posKey || posQuery ? c.constant(tableKey(n, c.context)) : 0;
  const scratch = c.scratch("attention"), stride = rowBytes(c.context);
  // everything but q, k, v, out and the rows is baked in: one kernel per distinct configuration
  const key = [H, dk, dv, a.scale, posKey, posQuery, mask, table, scratch, c.context].join("_").replace(/[^0-9a-z_]/gi, "_");
  const name = `disentangled_attention_${key}`;
  const dot = dotKernel(wm, dk);
  wm.ensure(name, () => {
    // (q, k, v, out, rows, -, h0, h1, thread), then locals
    const [Q, K, V, OUT, S, , H0, H1, T] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const [HH, I, J, D, PQ, PK, ROW, PS, PO, PV, SC, P] = [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
    const get = (l: number) => m.local.get(l, i32);
    const c32 = (x: number) => m.i32.const(x);
    const add = (...xs: Expr[]) => xs.reduce((x, y) => m.i32.add(x, y));
    const mul = (x: Expr, y: number) => m.i32.mul(x, c32(y));
    const byte = (x: Expr) => m.i32.shl(x, c32(2));
    const score = () => m.local.get(SC, f32);
    const pairs: Expr[] = [
      m.local.set(PK, add(get(K), byte(add(mul(get(J), W), mul(get(HH), dk))))),
      m.local.set(SC, m.call(dot, [get(PQ), get(PK)], f32)),
    ];
    if (table) {
      // the pair's row of the relative-position tables, at i − j + context in the table
      const row = m.i32.load(0, 4, add(c32(table), byte(add(m.i32.sub(get(I), get(J)), c32(c.context)))));
      pairs.push(m.local.set(ROW, add(mul(row, W * 4), mul(get(HH), dk * 4))));
      if (posKey) pairs.push(m.local.set(SC, m.f32.add(score(), m.call(dot, [get(PQ), add(c32(posKey), get(ROW))], f32))));
      if (posQuery) pairs.push(m.local.set(SC, m.f32.add(score(), m.call(dot, [get(PK), add(c32(posQuery), get(ROW))], f32))));
    }
    pairs.push(m.local.set(SC, m.f32.mul(score(), m.f32.const(a.scale))));
    if (mask) pairs.push(m.local.set(SC, m.select(m.f32.eq(m.f32.load(0, 4, add(c32(mask), byte(get(J)))), m.f32.const(0)), m.f32.const(-3.4028234663852886e38), score())));
    pairs.push(m.f32.store(0, 4, add(get(PS), byte(get(J))), score()));

    // out row += p · v row, 4 lanes at a time and the tail
    const dv4 = dv & ~3;
    const vec = (d: Expr) => add(get(PO), byte(d));
    const accumulate: Expr[] = [
      m.local.set(P, m.f32x4.splat(m.f32.load(0, 4, add(get(PS), byte(get(J)))))),
      m.local.set(PV, add(get(V), byte(add(mul(get(J), VW), mul(get(HH), dv))))),
      ...(dv4 ? [wm.loop("dis_values", D, c32(0), dv4, 4, [
        m.v128.store(0, 4, vec(get(D)), m.f32x4.add(m.v128.load(0, 4, vec(get(D))), m.f32x4.mul(m.local.get(P, v128), m.v128.load(0, 4, add(get(PV), byte(get(D))))))),
      ])] : []),
    ];
    for (let d = dv4; d < dv; d++)
      accumulate.push(m.f32.store(4 * d, 4, get(PO), m.f32.add(m.f32.load(4 * d, 4, get(PO)), m.f32.mul(m.f32x4.extract_lane(m.local.get(P, v128), 0), m.f32.load(4 * d, 4, get(PV))))));

    const body = m.block(null, [
      m.local.set(PS, add(c32(scratch), mul(get(T), stride))),
      wm.loop("dis_heads", HH, get(H0), () => get(H1), 1, [
        wm.loop("dis_queries", I, c32(0), () => get(S), 1, [
          m.local.set(PQ, add(get(Q), byte(add(mul(get(I), W), mul(get(HH), dk))))),
          wm.loop("dis_keys", J, c32(0), () => get(S), 1, pairs),
          wm.callLib("softmax", { x: get(PS), out: get(PS), rows: c32(1), D: get(S) }),
          m.local.set(PO, add(get(OUT), byte(add(mul(get(I), VW), mul(get(HH), dv))))),
          m.memory.fill(get(PO), c32(0), c32(dv * 4)),
          wm.loop("dis_weighted", J, c32(0), () => get(S), 1, accumulate),
        ]),
      ]),
    ]);
    m.addFunction(name, createType(Array<number>(9).fill(i32)), none, [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, f32, v128], body);
  });
  // rows from which the heads are worth splitting over threads: rows² pairs of dot products
  const perPair = H * (dk * (1 + (posKey ? 1 : 0) + (posQuery ? 1 : 0)) + dv);
  const minRows = Math.ceil(Math.sqrt(MIN_PARALLEL_MACS / perPair));
  const work = m.select(m.i32.ge_u(c.rows(ops.q), wm.c32(minRows)), wm.c32(MIN_PARALLEL_MACS), wm.c32(0));
  return [wm.parallel(name, [c.ptr(ops.q), c.ptr(ops.k), c.ptr(ops.v), c.ptr(n.id), c.rows(ops.q), wm.c32(0)], H, 0, work)];
}
