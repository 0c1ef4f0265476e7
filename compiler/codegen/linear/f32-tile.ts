// f32 tiles: rows of f32 x times a group of 4 f32 weight rows (packed, or dequantized into the
// thread's buffer), 4-wide chunks of K multiply-added into one accumulator per row and output,
// then reduced to one vector of 4 sums per row.

import { type Expr, v128 } from "../wasm.js";
import type { Epilogue } from "./epilogue.js";
import type { KernelGen } from "./gen.js";
import { TILE_ROWS } from "../tuning.js";
import { GROUP, type Panel } from "./layout.js";

/** One weight stream of a tile: the local holding its weights' address, and where each row's 4 sums go. */
export interface SumStream {
  weights: number;
  into: (i: number) => number;
}

/**
 * rowsT rows of x (at PX) × group G of each stream's f32 weights (`dq`: its group dequantized in
 * the thread's buffer), over `panel` or all panels: each row's 4 sums as one vector in the
 * stream's into(i). Two streams (a gated kernel's gate and up projection, one row) are read side
 * by side, each x chunk loaded once for both: two streams read faster than one
 * (docs/performance.md), as the pair tile's do. Needs K % 4 = 0 or quantized weights.
 */
export function floatSums(g: KernelGen, rowsT: number, cols: number, streams: SumStream[], dq: boolean, panel: Panel | "all"): Expr[] {
  const { m, r, plan } = g;
  if (streams.length > 2 || rowsT * cols * streams.length > Math.max(TILE_ROWS, 2) * GROUP) throw new Error("internal: more accumulators than the tile's registers");
  const pws = [r.PW, r.PW2].slice(0, streams.length);
  const body: Expr[] = [];
  for (let a = 0; a < rowsT * cols * streams.length; a++) body.push(m.local.set(r.ACC + a, g.zero()));
  // "all": the panels one after the other into the same accumulators
  for (const p of panel === "all" ? plan.panels : [panel]) {
    // (group G's piece of panel p; the gated kernel's second weights, in the bias slot,
    // dequantize after the first's group)
    streams.forEach(({ weights }, s) => {
      const at = dq ? m.i32.add(g.get(r.DQ), g.c32(weights === r.W ? 0 : GROUP * plan.K * 4)) : m.i32.add(g.get(weights), m.i32.add(g.c32(p.at * 4), m.i32.mul(g.get(r.G), g.c32(GROUP * p.size * 4))));
      body.push(m.local.set(pws[s], at));
    });
    body.push(...floatTile(g, rowsT, cols, `${streams.map((s) => s.weights).join("_")}${dq ? "d" : ""}p${p.index}${panel === "all" ? "a" : ""}`, p, pws));
  }
  // the lane sums of each row's accumulators (a partial group's missing outputs read as zero)
  streams.forEach(({ into }, s) => {
    for (let i = 0; i < rowsT; i++) {
      const accs = [0, 1, 2, 3].map((j) => (j < cols ? r.ACC + (s * rowsT + i) * cols + j : r.DOT + j));
      for (let j = cols; j < GROUP; j++) body.push(m.local.set(r.DOT + j, g.zero()));
      body.push(...g.reduce4(accs, into(i), g.addF));
    }
  });
  return body;
}

/**
 * Adds rowsT rows (f32 x at PX) × cols outputs of each stream's f32 group panel (at the locals
 * `pws`) to the accumulators ACC + (s·rowsT + i)·cols + j. Each stream's sums are accumulated in
 * the same order whatever the streams beside it.
 */
function floatTile(g: KernelGen, rowsT: number, cols: number, tag: string, { k0, size }: Panel, pws: number[] = [g.r.PW]): Expr[] {
  const { m, r, wm } = g;
  const { K, Kt } = g.plan;
  const K4 = Math.min(k0 + size, K - Kt) - k0;
  const acc = (s: number, i: number, j: number) => r.ACC + (s * rowsT + i) * cols + j;
  const body: Expr[] = [];
  // one k-chunk (16 bytes of x per row) at byte offset kb + 16·c of x
  const chunk = (c: number): Expr[] => {
    const kb = () => g.get(r.KB);
    const out: Expr[] = [];
    for (let i = 0; i < rowsT; i++) out.push(m.local.set(r.XV + i, m.v128.load(i * K * 4 + k0 * 4 + 16 * c, 4, m.i32.add(g.get(r.PX), kb()))));
    pws.forEach((pw, s) => {
      for (let j = 0; j < cols; j++) {
        // the chunk at x byte offset kb sits at 4·kb in the group, row j 16 bytes further
        out.push(m.local.set(r.WV, m.v128.load(j * 16 + 64 * c, 4, m.i32.add(g.get(pw), m.i32.shl(kb(), g.c32(2))))));
        for (let i = 0; i < rowsT; i++) {
          const a = acc(s, i, j);
          out.push(m.local.set(a, wm.madd(g.get(r.XV + i, v128), g.get(r.WV, v128), g.get(a, v128))));
        }
      }
    });
    return out;
  };
  // a single row (decode): 2 chunks an iteration, half the loop overhead on the weight stream
  const unroll = rowsT === 1 && K4 % 8 === 0 ? 2 : 1;
  if (K4 > 0) body.push(wm.loop(`k${rowsT}x${cols}_${tag}`, r.KB, g.c32(0), K4 * 4, 16 * unroll, unroll === 2 ? [...chunk(0), ...chunk(1)] : chunk(0)));
  return body;
}

/**
 * A plain f32 kernel of K % 4 ≠ 0 (one panel): the tile over K's multiple of 4, then each
 * output's scalar sum with its K % 4 tail products, through the epilogue lane by lane.
 */
export function tailTile(g: KernelGen, e: Epilogue, rowsT: number, cols: number): Expr[] {
  const { m, r, plan } = g;
  const { K, K4, Kt } = plan;
  const body: Expr[] = [];
  for (let a = 0; a < rowsT * cols; a++) body.push(m.local.set(r.ACC + a, g.zero()));
  body.push(m.local.set(r.PW, m.i32.add(g.get(r.W), m.i32.mul(g.get(r.G), g.c32(plan.groupBytes)))), ...floatTile(g, rowsT, cols, "t", plan.panels[0]));
  const acc = (i: number, j: number) => r.ACC + i * cols + j;
  for (let i = 0; i < rowsT; i++)
    for (let j = 0; j < cols; j++) {
      const lane = (l: number) => m.f32x4.extract_lane(g.get(acc(i, j), v128), l);
      let s = m.f32.add(m.f32.add(lane(0), lane(1)), m.f32.add(lane(2), lane(3)));
      for (let t = 0; t < Kt; t++)
        s = m.f32.add(s, m.f32.mul(m.f32.load(i * K * 4 + (K4 + t) * 4, 4, g.get(r.PX)), m.f32.load((4 * K4 + j * Kt + t) * 4, 4, g.get(r.PW))));
      body.push(e.outputLane(i, j, e.normScalar(i, j, s)));
    }
  return body;
}
