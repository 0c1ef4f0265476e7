// The linear kernel's driver: row blocks, the loops over the thread's groups of outputs, and
// the run-time choice of path by the call's row count (plan.ts), assembled into one function
// kernel(x, w, b, residual, out, rows, from, to, thread) per plan.

import { ROW_BLOCK, STREAM_ROWS, TILE_ROWS } from "../tuning.js";
import { type Expr, type WasmModule, createType, none } from "../wasm.js";
import { dequantize } from "./dequantize.js";
import { type Epilogue, epilogueGen } from "./epilogue.js";
import { floatSums, tailTile } from "./f32-tile.js";
import { type KernelGen, kernelGen } from "./gen.js";
import { integerSums } from "./integer.js";
import { GROUP, type Panel, dequantBytes } from "./layout.js";
import { pairTile } from "./pair-tile.js";
import type { LinearPlan } from "./plan.js";

/** The kernel of `plan` (generated once per module); returns its function name. */
export function linearKernel(wm: WasmModule, plan: LinearPlan): string {
  return wm.ensure(plan.name, () => {
    const { g, locals } = kernelGen(wm, plan);
    const e = epilogueGen(g);
    const { m, r } = g;
    const get = g.get;
    const { quant, panels, full, part } = plan;

    // full groups in [from, min(to, full)), then the partial group if it is in range
    const groups = (panel: Panel | "all"): Expr[] => {
      const tag = panel === "all" ? "a" : panel.index;
      return [
        ...(full > 0 ? [wm.loop(`g${tag}`, r.G, get(r.G0), () => m.select(m.i32.lt_s(get(r.G1), g.c32(full)), get(r.G1), g.c32(full)), 1, rowsOfGroup(g, e, 4, panel))] : []),
        ...(part > 0 ? [partialGroup(g, e, panel)] : []),
      ];
    };
    // a single row of a plain f32 linear: full groups in pairs, then the odd one and the
    // partial group as above
    const pairs = (panel: Panel): Expr[] => {
      const end = () => m.select(m.i32.lt_s(get(r.G1), g.c32(full)), get(r.G1), g.c32(full));
      return [
        m.local.set(r.NG, m.i32.sub(end(), get(r.G0))),
        m.local.set(r.HALF, m.i32.shr_s(get(r.NG), g.c32(1))),
        wm.loop(`pp${panel.index}`, r.T, g.c32(0), () => get(r.HALF), 1, [pairTile(g, e, panel)]),
        m.if(m.i32.and(get(r.NG), g.c32(1)), m.block(null, [m.local.set(r.G, m.i32.sub(end(), g.c32(1))), ...rowsOfGroup(g, e, 4, panel)])),
        ...(part > 0 ? [partialGroup(g, e, panel)] : []),
      ];
    };
    const streamed = (panel: Panel): Expr[] =>
      plan.paired ? [m.if(m.i32.eq(get(r.ROWS), g.c32(1)), m.block(null, pairs(panel)), m.block(null, groups(panel)))] : groups(panel);

    const perBlock: Expr[] = [
      m.local.set(r.REND, m.select(m.i32.lt_s(m.i32.add(get(r.RB), g.c32(ROW_BLOCK)), get(r.ROWS)), m.i32.add(get(r.RB), g.c32(ROW_BLOCK)), get(r.ROWS))),
    ];
    // calls of few rows (decode) go panel by panel over all groups, so that x's panel stays in
    // L1 while the weights stream; more rows group by group, the group's panels one after the
    // other into the same accumulators (its weights stay in cache for all rows of the block)
    if (!plan.streamed) perBlock.push(...groups("all"));
    else perBlock.push(m.if(m.i32.le_s(get(r.ROWS), g.c32(STREAM_ROWS)), m.block(null, panels.flatMap(streamed)), m.block(null, groups("all"))));
    const body = m.block(null, [
      // this thread's dequantization buffer
      ...(quant ? [m.local.set(r.DQ, m.i32.add(g.c32(plan.scratch!.dq), m.i32.mul(get(r.TID), g.c32(dequantBytes(plan.K)))))] : []),
      wm.loop("rb", r.RB, g.c32(0), () => get(r.ROWS), ROW_BLOCK, perBlock),
    ]);
    m.addFunction(plan.name, createType(locals.params), none, locals.vars, body);
  });
}

/** The last group, of `part` outputs, where the thread's range reaches it. */
function partialGroup(g: KernelGen, e: Epilogue, panel: Panel | "all"): Expr {
  const { m, r } = g;
  const full = g.plan.full;
  return m.if(m.i32.gt_s(g.get(r.G1), g.c32(full)), m.block(null, [m.local.set(r.G, g.c32(full)), ...rowsOfGroup(g, e, g.plan.part, panel)]));
}

/** All rows of the current row block against output group G (cols valid outputs), by the call's path. */
function rowsOfGroup(g: KernelGen, e: Epilogue, cols: number, panel: Panel | "all" = "all"): Expr[] {
  const { m, r, wm, plan } = g;
  const { quant } = plan;
  const tag = `${cols}p${panel === "all" ? "a" : panel.index}`;
  const rowsLoops = (dq: boolean) => [
    wm.loop(`r${TILE_ROWS}x${tag}${dq ? "d" : ""}`, r.R, g.get(r.RB), () => m.i32.sub(g.get(r.REND), g.c32(TILE_ROWS - 1)), TILE_ROWS, [tile(g, e, TILE_ROWS, cols, dq, panel)]),
    wm.loop(`r1x${tag}${dq ? "d" : ""}`, r.R, g.get(r.R), () => g.get(r.REND), 1, [tile(g, e, 1, cols, dq, panel)]),
  ];
  if (!quant) return rowsLoops(false);
  // few rows: integer dot products; more: dequantize the group once for the row block, f32 tiles
  const dequantized = [dequantize(g, quant, r.W, 0, tag), ...(plan.epilogue.gated ? [dequantize(g, quant, r.B, GROUP * plan.K * 4, tag)] : []), ...rowsLoops(true)];
  return [m.if(m.i32.le_s(g.get(r.ROWS), g.c32(plan.intRows)), m.block(null, rowsLoops(false)), m.block(null, dequantized))];
}

/** rowsT rows of x (from R) × cols outputs of group G: integer sums, or f32 sums (dq: on the dequantized group), then the epilogue. */
function tile(g: KernelGen, e: Epilogue, rowsT: number, cols: number, dq: boolean, panel: Panel | "all"): Expr {
  const { m, r, plan } = g;
  const { quant, K, Kt } = plan;
  const intPath = quant !== undefined && !dq;
  // the integer path reads the rows quantize_rows_q8 wrote to the scratch area
  const xBase = intPath ? g.c32(plan.scratch!.xq) : g.get(r.X);
  const body: Expr[] = [m.local.set(r.PX, m.i32.add(xBase, m.i32.mul(g.get(r.R), g.c32(intPath ? plan.rowBytesQ : K * 4))))];
  const sums = (weights: number, into: (i: number) => number) => (intPath ? integerSums(g, rowsT, cols, weights, into) : floatSums(g, rowsT, cols, [{ weights, into }], dq, panel));
  const gate = { weights: r.W, into: (i: number) => r.GATE + i }, up = { weights: r.B, into: (i: number) => r.ROWV + i };
  // a single row of f32 sums reads the gate's and the up projection's rows side by side
  if (plan.epilogue.gated && rowsT === 1 && !intPath) body.push(...floatSums(g, 1, cols, [gate, up], dq, panel));
  else if (plan.epilogue.gated) body.push(...sums(gate.weights, gate.into), ...sums(up.weights, up.into));
  else if (quant || Kt === 0) body.push(...sums(r.W, (i) => r.ROWV + i));
  else return m.block(null, [...body, ...tailTile(g, e, rowsT, cols)]);
  for (let i = 0; i < rowsT; i++) body.push(...e.finish(i, r.ROWV + i, cols, panel));
  return m.block(null, body);
}
