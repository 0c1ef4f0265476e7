// Generated attention over query rows (prefill, and encoders' attention), for the plain case:
// head sizes multiples of 4, no soft-cap, no relative-position bias (the library kernel in
// kernels/attention.ts takes the rest, and decode's one row). The head shape, the GQA group, the
// KV row widths, the scale and the mask are constants of the function: the value updates are
// unrolled over the head with immediate offsets, the dot products take 16 floats of it a loop step,
// and the relaxed variant multiply-adds fused.
//
// Online softmax per query row and head, over blocks of KEY_BLOCK keys packed contiguous (each
// row's running maximum and sum kept in scratch between blocks), 16 keys at a time: 4 groups of 4
// scores side by side, one maximum and one rescale for the 16, a vector exp per group, then
// o += Σ p_i·v_i over the head, 4 keys at a time, with o in the output row. Then 4 keys and 1.
// Packed sequences (pack-sequences): each query row's keys are further limited to its sequence's.

import { vexp } from "./vmath.js";
import { type Expr, type WasmModule, createType, f32, i32, none, v128 } from "./wasm.js";

export interface AttentionShape {
  H: number;
  Hkv: number;
  dk: number;
  dv: number;
  scale: number;
  causal: boolean;
  /** 0: none; else the query at position i sees keys i − window < j ≤ i. */
  window: number;
  /** Address of the f32 padding mask (0 = padding), or 0 for none. */
  mask: number;
  /** Address of each row's sequence [first, end) (i32 pairs, pack-sequences), or 0: the query sees only its sequence's keys. */
  sequences: number;
  /** The threads' scratch (attentionRowsScratch bytes each, thread t at scratch + t·that). */
  scratch: number;
  /** The longest call (the context): the rows whose running softmax state the scratch holds. */
  context: number;
  /** Bytes a key or value in k and v: 4 (f32), 2 (a bf16 KV cache in 8-blocks, dk and dv multiples of 8: widened as the block is packed). */
  kvBytes?: 2 | 4;
}

/**
 * Keys packed at a time: a head's keys and values of a block, copied contiguous (rows of dk and dv
 * floats) into the thread's scratch, serve every query row. At the cache's row stride (Hkv·dk
 * floats) a head's slices of 1024 keys fall in a quarter of L2's sets (3 KB rows: 48 lines apart,
 * 16 dividing 1024 sets) and miss; packed, a block of 256 (128 KB at 64 + 64) stays in L2.
 */
const KEY_BLOCK = 256;
/** The keys of a block: KEY_BLOCK, or every key of a shorter context. */
const keyBlock = (context: number) => Math.min(KEY_BLOCK, context);

/** Bytes of one thread's scratch: a block's packed keys and values, and each row's (m, l). */
export const attentionRowsScratch = (dk: number, dv: number, context: number) => Math.ceil((keyBlock(context) * (dk + dv) * 4 + context * 8) / 64) * 64;

/** Whether the generated kernel covers this attention (else the library kernel runs it). */
export const generatedAttentionFits = (s: { dk: number; dv: number; cap: number; table: number }) =>
  s.dk % 4 === 0 && s.dv % 4 === 0 && s.cap === 0 && s.table === 0;

/** The exp of a weight below this is exactly 0 (as the scalar exp gives): a masked key adds nothing. */
const EXP_LOW = -87.3365447505531;
const MASKED = -3.4028234663852886e38;

/**
 * The kernel `attention_rows_<key>(q, k, v, L, out, rows, h0, h1, thread)` (the parallel
 * signature: threads split the heads): q[rows, H·dk] are the last `rows` of L positions whose
 * keys and values k[L, Hkv·dk], v[L, Hkv·dv] hold; out[rows, H·dv].
 */
export function attentionRows(wm: WasmModule, s: AttentionShape, key: string): string {
  const name = `attention_rows_${key}`;
  return wm.ensure(name, () => {
    const m = wm.m;
    const { H, Hkv, dk, dv, scale, causal, window, mask, sequences, scratch, context } = s;
    const kvBytes = s.kvBytes ?? 4;
    // the packed block's rows: the kernel's key and value strides
    const group = H / Hkv, kw = dk * 4, vw = dv * 4;
    const block = keyBlock(context);
    const packK = 0, packV = block * kw, state = packV + block * vw, perThread = attentionRowsScratch(dk, dv, context);
    const exp = vexp(wm);
    // parameters, then locals (each index with its type)
    const [Q, K, V, L, OUT, ROWS, H0, H1] = [0, 1, 2, 3, 4, 5, 6, 7];
    const vars: number[] = [];
    const local = (type: number, n = 1) => vars.push(...Array<number>(n).fill(type)) - n + 9;
    const [HD, R, J, LIM, QP, PQ, PO, PK, PV, D, B0, BN, SB] = Array.from({ length: 13 }, () => local(i32));
    const [M, LS, MB, CORR] = Array.from({ length: 4 }, () => local(f32));
    const S = local(v128, 4), P = local(v128);
    const QV = local(v128, 4), A = local(v128, 4), SP = local(v128, 4), T = local(v128, 2);
    const get = (l: number, t = i32) => m.local.get(l, t);
    const c32 = (n: number) => m.i32.const(n);
    const splat = (x: Expr) => m.f32x4.splat(x);
    const zero = () => m.v128.const(Array<number>(16).fill(0));
    const lane = (x: Expr, l: number) => m.f32x4.extract_lane(x, l);
    // exp that is exactly 0 below EXP_LOW (vexp clamps there)
    const expz = (x: number) => m.v128.andnot(m.call(exp, [get(x, v128)], v128), m.f32x4.lt(get(x, v128), splat(m.f32.const(EXP_LOW))));
    const ow = dv / 4;

    /** o[0..dv) *= c (the f32 in local c), o in the output row at PO. */
    const scaleO = (c: number): Expr[] =>
      Array.from({ length: ow }, (_, d) => m.v128.store(16 * d, 4, get(PO), m.f32x4.mul(m.v128.load(16 * d, 4, get(PO)), splat(get(c, f32)))));
    /** The running maximum M meets MB: if MB is larger, LS and o scale by exp(M − MB) (0 when M is −∞) and M = MB. */
    const softmaxStep = (): Expr =>
      m.if(m.f32.gt(get(MB, f32), get(M, f32)), m.block(null, [
        m.local.set(CORR, m.select(m.f32.eq(get(M, f32), m.f32.const(-Infinity)), m.f32.const(0),
          lane(m.call(exp, [splat(m.f32.sub(get(M, f32), get(MB, f32)))], v128), 0))),
        m.local.set(LS, m.f32.mul(get(LS, f32), get(CORR, f32))),
        ...scaleO(CORR),
        m.local.set(M, get(MB, f32)),
      ]));
    // pairwise lane sums of A0..A3 into one vector (lane i = A_i's sum), as the library's sum4
    const pairs = (a: number, b: number, lo: number[], hi: number[]) =>
      m.f32x4.add(m.i8x16.shuffle(get(a, v128), get(b, v128), bytes(lo)), m.i8x16.shuffle(get(a, v128), get(b, v128), bytes(hi)));
    const sum4 = (into: number): Expr[] => [
      m.local.set(T, pairs(A, A + 1, [0, 4, 2, 6], [1, 5, 3, 7])),
      m.local.set(T + 1, pairs(A + 2, A + 3, [0, 4, 2, 6], [1, 5, 3, 7])),
      m.local.set(into, pairs(T, T + 1, [0, 1, 4, 5], [2, 3, 6, 7])),
    ];
    const hsum = (x: Expr[]) => m.f32.add(m.f32.add(x[0], x[1]), m.f32.add(x[2], x[3]));
    const hmax = (x: number) => m.f32.max(m.f32.max(lane(get(x, v128), 0), lane(get(x, v128), 1)), m.f32.max(lane(get(x, v128), 2), lane(get(x, v128), 3)));
    const vmax = (a: Expr, b: Expr) => m.f32x4.max(a, b);

    // q·k of `keys` keys (rows PK + at, PK + at + kw, ...) into A0..: a loop over 16 floats of the
    // head at a time (4 vectors of q in registers, each used for every key), then the rest
    // unrolled. (Fully unrolled, binaryen's local sinking keeps all of q's vectors live: x64's 16
    // registers spill.)
    const dots = (keys: number, at: number, tag: string): Expr[] => {
      const out: Expr[] = [];
      for (let i = 0; i < keys; i++) out.push(m.local.set(A + i, zero()));
      const step = (qAt: () => Expr, kAt: () => Expr, off: number, n: number): Expr[] => {
        const e: Expr[] = [];
        for (let t = 0; t < n; t++) e.push(m.local.set(QV + t, m.v128.load(off + 16 * t, 4, qAt())));
        for (let i = 0; i < keys; i++)
          for (let t = 0; t < n; t++) e.push(m.local.set(A + i, wm.madd(get(QV + t, v128), m.v128.load(at + off + i * kw + 16 * t, 4, kAt()), get(A + i, v128))));
        return e;
      };
      const blocks = Math.floor(dk / 16), rest = (dk % 16) / 4;
      if (blocks)
        out.push(wm.loop(`${name}_${tag}`, D, c32(0), blocks * 64, 64,
          step(() => m.i32.add(get(PQ), get(D)), () => m.i32.add(get(PK), get(D)), 0, 4)));
      if (rest) out.push(...step(() => get(PQ), () => get(PK), blocks * 64, rest));
      return out;
    };
    /** Scores of the 4 keys at J + 4b (rows PK + 4b·kw ...) into S + b: scaled, masked. */
    const scores = (b: number): Expr[] => {
      const out = [...dots(4, 4 * b * kw, `k${b}`), ...sum4(S + b), m.local.set(S + b, m.f32x4.mul(get(S + b, v128), splat(m.f32.const(scale))))];
      if (mask)
        out.push(m.local.set(S + b, m.f32x4.add(get(S + b, v128), m.v128.and(
          m.f32x4.eq(m.v128.load(mask + 16 * b, 4, m.i32.shl(get(J), c32(2))), splat(m.f32.const(0))), splat(m.f32.const(MASKED))))));
      return out;
    };
    /** The weights P of the 4 keys at J + 4b (scores S + b, the running maximum M): l += Σ p; o += Σ p_i·v_i. */
    const values = (b: number): Expr[] => {
      const out = [
        m.local.set(P, m.f32x4.sub(get(S + b, v128), splat(get(M, f32)))),
        m.local.set(P, expz(P)),
        m.local.set(LS, m.f32.add(get(LS, f32), hsum([0, 1, 2, 3].map((l) => lane(get(P, v128), l))))),
        ...[0, 1, 2, 3].map((i) => m.local.set(SP + i, m.i8x16.shuffle(get(P, v128), get(P, v128), bytes([i, i, i, i])))),
      ];
      for (let d = 0; d < ow; d++) {
        const term = (i: number) => m.f32x4.mul(get(SP + i, v128), m.v128.load((4 * b + i) * vw + 16 * d, 4, get(PV)));
        out.push(m.v128.store(16 * d, 4, get(PO), m.f32x4.add(m.v128.load(16 * d, 4, get(PO)), m.f32x4.add(m.f32x4.add(term(0), term(1)), m.f32x4.add(term(2), term(3))))));
      }
      return out;
    };
    const advance = (keys: number): Expr[] => [
      m.local.set(PK, m.i32.add(get(PK), c32(keys * kw))),
      m.local.set(PV, m.i32.add(get(PV), c32(keys * vw))),
      m.local.set(J, m.i32.add(get(J), c32(keys))),
    ];

    // 16 keys: 4 independent groups of 4 scores (the out-of-order core overlaps their dot
    // products), one maximum and rescale for the 16, then the values 4 keys at a time
    const block16: Expr[] = [
      ...[0, 1, 2, 3].flatMap(scores),
      m.local.set(T, vmax(vmax(get(S, v128), get(S + 1, v128)), vmax(get(S + 2, v128), get(S + 3, v128)))),
      m.local.set(MB, hmax(T)),
      softmaxStep(),
      ...[0, 1, 2, 3].flatMap(values),
      ...advance(16),
    ];
    // 4 keys the same way
    const quad: Expr[] = [...scores(0), m.local.set(MB, hmax(S)), softmaxStep(), ...values(0), ...advance(4)];

    // one key: its score as a scalar in MB, then the same steps
    const one: Expr[] = dots(1, 0, "k1");
    let score = m.f32.mul(hsum([0, 1, 2, 3].map((l) => lane(get(A, v128), l))), m.f32.const(scale));
    if (mask)
      score = m.f32.add(score, m.select(m.f32.eq(m.f32.load(mask, 4, m.i32.shl(get(J), c32(2))), m.f32.const(0)), m.f32.const(MASKED), m.f32.const(0)));
    one.push(
      m.local.set(MB, score),
      softmaxStep(),
      m.local.set(P, splat(m.f32.sub(get(MB, f32), get(M, f32)))),
      m.local.set(P, expz(P)),
      m.local.set(LS, m.f32.add(get(LS, f32), lane(get(P, v128), 0))),
    );
    for (let d = 0; d < ow; d++)
      one.push(m.v128.store(16 * d, 4, get(PO), m.f32x4.add(m.v128.load(16 * d, 4, get(PO)), m.f32x4.mul(get(P, v128), m.v128.load(16 * d, 4, get(PV))))));
    one.push(...advance(1));

    // query row R's position (the rows are the last of the L positions) and output row
    const rowAt = (): Expr[] => [
      m.local.set(QP, m.i32.add(m.i32.sub(get(L), get(ROWS)), get(R))),
      m.local.set(PO, m.i32.add(get(OUT), m.i32.shl(m.i32.add(m.i32.mul(get(R), c32(H * dv)), m.i32.mul(get(HD), c32(dv))), c32(2)))),
    ];
    // row R's sequence (first, end) in the packed sequences' bounds
    const seqAt = () => m.i32.add(c32(sequences), m.i32.shl(get(QP), c32(3)));
    // row R's running (m, l) in the thread's scratch (SB)
    const stateAt = () => m.i32.add(get(SB), m.i32.shl(get(R), c32(3)));
    // query row R against the block's keys it sees, max(first, B0)..min(limit, B0 + BN)−1
    const row: Expr[] = [
      ...rowAt(),
      m.local.set(LIM, causal ? m.i32.add(get(QP), c32(1)) : get(L)),
      m.if(m.i32.gt_s(get(LIM), m.i32.add(get(B0), get(BN))), m.local.set(LIM, m.i32.add(get(B0), get(BN)))),
      m.local.set(J, window ? m.select(m.i32.gt_s(get(QP), c32(window - 1)), m.i32.sub(get(QP), c32(window - 1)), c32(0)) : c32(0)),
      // (packed sequences: the row's own sequence's keys)
      ...(sequences ? [
        m.if(m.i32.lt_s(get(J), m.i32.load(0, 4, seqAt())), m.local.set(J, m.i32.load(0, 4, seqAt()))),
        m.if(m.i32.gt_s(get(LIM), m.i32.load(4, 4, seqAt())), m.local.set(LIM, m.i32.load(4, 4, seqAt()))),
      ] : []),
      m.if(m.i32.lt_s(get(J), get(B0)), m.local.set(J, get(B0))),
      m.br(`${name}_row_skip`, m.i32.ge_s(get(J), get(LIM))),
      m.local.set(PQ, m.i32.add(get(Q), m.i32.shl(m.i32.add(m.i32.mul(get(R), c32(H * dk)), m.i32.mul(get(HD), c32(dk))), c32(2)))),
      // key and value J in the packed block
      m.local.set(PK, m.i32.add(m.i32.add(get(SB), c32(packK - state)), m.i32.mul(m.i32.sub(get(J), get(B0)), c32(kw)))),
      m.local.set(PV, m.i32.add(m.i32.add(get(SB), c32(packV - state)), m.i32.mul(m.i32.sub(get(J), get(B0)), c32(vw)))),
      m.local.set(M, m.f32.load(0, 4, stateAt())),
      m.local.set(LS, m.f32.load(4, 4, stateAt())),
      whileLoop(wm, `${name}_blocks`, m.i32.le_s(m.i32.add(get(J), c32(16)), get(LIM)), block16),
      whileLoop(wm, `${name}_quads`, m.i32.le_s(m.i32.add(get(J), c32(4)), get(LIM)), quad),
      whileLoop(wm, `${name}_ones`, m.i32.lt_s(get(J), get(LIM)), one),
      m.f32.store(0, 4, stateAt(), get(M, f32)),
      m.f32.store(4, 4, stateAt(), get(LS, f32)),
    ];
    // head HD's keys and values B0..B0+BN−1 (of its KV head) packed: rows of dk and dv floats
    // (a bf16 cache's 8-blocks widened: values 0..3 the lanes' low halves shifted up, 4..7 their
    // high halves, see kernels/attention.ts)
    const load4 = (d: number, at: Expr) =>
      kvBytes === 4 ? m.v128.load(16 * d, 4, at) : d % 2 ? m.v128.and(m.v128.load(16 * (d >> 1), 2, at), m.i32x4.splat(c32(0xffff0000 | 0))) : m.i32x4.shl(m.v128.load(16 * (d >> 1), 2, at), c32(16));
    const pack = (from: Expr, stride: number, width: number, to: number): Expr =>
      wm.loop(`${name}_pack`, J, c32(0), () => get(BN), 1, Array.from({ length: width / 4 }, (_, d) => m.v128.store(to + 16 * d, 4, m.i32.add(get(SB), m.i32.sub(m.i32.mul(get(J), c32(width * 4)), c32(state))),
        load4(d, m.i32.add(m.copyExpression(from), m.i32.mul(m.i32.add(get(B0), get(J)), c32(stride)))))));
    const kvHead = (base: number, width: number) => m.i32.add(get(base), m.i32.mul(m.i32.div_u(get(HD), c32(group)), c32(width * kvBytes)));
    const head: Expr[] = [
      // every row's o = 0, m = −∞, l = 0
      wm.loop(`${name}_init`, R, c32(0), () => get(ROWS), 1, [
        ...rowAt(),
        ...Array.from({ length: ow }, (_, d) => m.v128.store(16 * d, 4, get(PO), zero())),
        m.f32.store(0, 4, stateAt(), m.f32.const(-Infinity)),
        m.f32.store(4, 4, stateAt(), m.f32.const(0)),
      ]),
      wm.loop(`${name}_keys`, B0, c32(0), () => get(L), block, [
        m.local.set(BN, m.i32.sub(get(L), get(B0))),
        m.if(m.i32.gt_s(get(BN), c32(block)), m.local.set(BN, c32(block))),
        pack(kvHead(K, dk), Hkv * dk * kvBytes, dk, packK),
        pack(kvHead(V, dv), Hkv * dv * kvBytes, dv, packV),
        wm.loop(`${name}_rows`, R, c32(0), () => get(ROWS), 1, [m.block(`${name}_row_skip`, row)]),
      ]),
      // o /= l
      wm.loop(`${name}_final`, R, c32(0), () => get(ROWS), 1, [
        ...rowAt(),
        m.local.set(CORR, m.f32.div(m.f32.const(1), m.f32.load(4, 4, stateAt()))),
        ...scaleO(CORR),
      ]),
    ];
    const body = m.block(null, [
      // the thread's scratch, at its row states (the packed block below them)
      m.local.set(SB, m.i32.add(c32(scratch + state), m.i32.mul(m.local.get(8, i32), c32(perThread)))),
      wm.loop(`${name}_heads`, HD, get(H0), () => get(H1), 1, head),
    ]);
    m.addFunction(name, createType(Array<number>(9).fill(i32)), none, vars, body);
  });
}

/** Byte indices of a shuffle taking f32 lanes `ls` (0–3 of the first vector, 4–7 of the second). */
const bytes = (ls: number[]) => ls.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/** `while (cond) body` (cond rebuilt before each iteration: binaryen trees cannot share a node). */
function whileLoop(wm: WasmModule, label: string, cond: Expr, body: Expr[]): Expr {
  const m = wm.m;
  return m.block(`${label}_out`, [
    m.loop(`${label}_top`, m.block(null, [m.br(`${label}_out`, m.i32.eqz(cond)), ...body, m.br(`${label}_top`)])),
  ]);
}
