// Epilogues: a row's sums of a group of 4 outputs through the fused norm, bias, activation (or
// the gated product act(gate) ⊙ up) and residual into the output; and, for kernels reading K in
// panels, the partial sums each panel leaves for the next.

import type { ScalarActivation } from "../library.js";
import { type Expr, v128 } from "../wasm.js";
import { vectorActivation } from "../vmath.js";
import type { KernelGen } from "./gen.js";
import { GROUP, type Panel } from "./layout.js";

export interface Epilogue {
  /**
   * Row R + i's sums of group G (in local `sums`, `cols` valid lanes; gated: and GATE + i)
   * after `panel`: with panels before it their sums (left in out, the gate's in the gate sums'
   * scratch) are added; all but the last panel leave the sums there, the last one (or "all")
   * runs the epilogue.
   */
  finish(i: number, sums: number, cols: number, panel: Panel | "all"): Expr[];
  /** A scalar sum s of output j of row i through the fused norm. */
  normScalar(i: number, j: number, s: Expr): Expr;
  /** Output j of row i from its normed scalar sum s: bias, activation, residual, stored (plain kernels). */
  outputLane(i: number, j: number, s: Expr): Expr;
}

/** The epilogue of g's kernel; generates its activation's f32x4 function first, where there is one. */
export function epilogueGen(g: KernelGen): Epilogue {
  const { m, r, wm, plan } = g;
  const { N, panels } = plan;
  const { bias, act, residual, gated, normAt, ln, gateSumsAt } = plan.epilogue;
  const get = g.get;
  const vact = act ? vectorActivation(wm, act) : undefined;
  const scalarAct = (s: Expr) => (!act ? s : act === "relu" ? m.f32.max(s, m.f32.const(0)) : wm.callActivation(`act_${act}` as ScalarActivation, s));
  // group G's 4 biases (ln: its 4 weight row sums N floats further)
  const biasAt = () => m.i32.add(get(r.B), m.i32.shl(get(r.G), g.c32(4)));

  /** Row R + i's fused-norm factor (RMSNorm) or its LayerNorm mean (at 0) and factor (at 1). */
  const normRow = (i: number, at: number) => m.f32.load((ln ? 2 * i + at : i) * 4, 4, m.i32.add(g.c32(normAt!), m.i32.shl(get(r.R), g.c32(ln ? 3 : 2))));
  const normFactor = (i: number) => normRow(i, 1);
  const lnMean = (i: number) => normRow(i, 0);
  const normScalar = (i: number, j: number, s: Expr): Expr => {
    if (ln) s = m.f32.sub(s, m.f32.mul(lnMean(i), m.f32.load((N + j) * 4, 4, biasAt())));
    return normAt === undefined ? s : m.f32.mul(s, normFactor(i));
  };

  /** Output j of row i from its scalar sum; gated, `gate` is the gate's sum. */
  const lane = (i: number, j: number, s: Expr, gate?: Expr): Expr => {
    if (gate !== undefined) s = m.f32.mul(scalarAct(gate), s);
    else {
      if (bias) s = m.f32.add(s, m.f32.load(j * 4, 4, biasAt()));
      s = scalarAct(s);
    }
    if (residual) s = m.f32.add(s, m.f32.load((i * N + j) * 4, 4, g.at(r.RES)));
    return m.f32.store((i * N + j) * 4, 4, g.at(r.OUT), s);
  };

  /** Row i's normed sums (lane j) into out: bias, activation, residual; or, gated, act(gate sums) ⊙ sums. */
  const scaled = (i: number, sums: number, cols: number): Expr[] => {
    if (cols < GROUP) return Array.from({ length: cols }, (_, j) => lane(i, j, m.f32x4.extract_lane(get(sums, v128), j), gated ? m.f32x4.extract_lane(get(r.GATE + i, v128), j) : undefined));
    // an activation without an f32x4 form runs lane by lane through local `tmp`
    const activate = (v: Expr, tmp: number): Expr => {
      if (vact) return m.call(vact, [v], v128);
      if (!act) return v;
      const out: Expr[] = [m.local.set(tmp, v)];
      for (let j = 0; j < GROUP; j++) out.push(m.local.set(tmp, m.f32x4.replace_lane(get(tmp, v128), j, scalarAct(m.f32x4.extract_lane(get(tmp, v128), j)))));
      return m.block(null, [...out, get(tmp, v128)], v128);
    };
    let v = get(sums, v128);
    if (gated) v = m.f32x4.mul(activate(get(r.GATE + i, v128), r.GATE + i), v);
    else {
      if (bias) v = m.f32x4.add(v, m.v128.load(0, 4, biasAt()));
      v = activate(v, sums);
    }
    if (residual) v = m.f32x4.add(v, m.v128.load(i * N * 4, 4, g.at(r.RES)));
    return [m.v128.store(i * N * 4, 4, g.at(r.OUT), v)];
  };

  /** Row i's sums through the fused norm (fuse-norm), then `scaled`. */
  const epilogue = (i: number, sums: number, cols: number): Expr[] => {
    // row R + i's RMSNorm factor scales its sums (and the gate's) before anything else; a
    // LayerNorm's mean times the weights' row sums comes off first
    const pre: Expr[] = [];
    if (ln && cols < GROUP) {
      // a partial group: lane by lane (the row sums end at output N)
      for (let j = 0; j < cols; j++) pre.push(m.local.set(sums, m.f32x4.replace_lane(get(sums, v128), j, normScalar(i, j, m.f32x4.extract_lane(get(sums, v128), j)))));
    } else if (ln) {
      const rowsum = m.v128.load(N * 4, 4, biasAt());
      const centred = m.f32x4.sub(get(sums, v128), m.f32x4.mul(m.f32x4.splat(lnMean(i)), rowsum));
      pre.push(m.local.set(sums, m.f32x4.mul(centred, m.f32x4.splat(normFactor(i)))));
    } else if (normAt !== undefined)
      for (const l of gated ? [r.GATE + i, sums] : [sums]) pre.push(m.local.set(l, m.f32x4.mul(get(l, v128), m.f32x4.splat(normFactor(i)))));
    return [...pre, ...scaled(i, sums, cols)];
  };

  // a gated kernel's partial gate sums of rows R.. (from the row block's start RB), group G
  const gateAt = () => m.i32.add(g.c32(gateSumsAt ?? 0), m.i32.shl(m.i32.add(m.i32.mul(m.i32.sub(get(r.R), get(r.RB)), g.c32(N)), m.i32.shl(get(r.G), g.c32(2))), g.c32(2)));
  /** The first `cols` f32 at addr + offset as a vector (the others zero), and a vector's first `cols` lanes stored there. */
  const loadLanes = (offset: number, addr: () => Expr, cols: number): Expr => {
    if (cols === GROUP) return m.v128.load(offset, 4, addr());
    let v = g.zero();
    for (let j = 0; j < cols; j++) v = m.f32x4.replace_lane(v, j, m.f32.load(offset + 4 * j, 4, addr()));
    return v;
  };
  const storeLanes = (offset: number, addr: () => Expr, l: number, cols: number): Expr[] =>
    cols === GROUP ? [m.v128.store(offset, 4, addr(), get(l, v128))] : Array.from({ length: cols }, (_, j) => m.f32.store(offset + 4 * j, 4, addr(), m.f32x4.extract_lane(get(l, v128), j)));

  const finish = (i: number, sums: number, cols: number, panel: Panel | "all"): Expr[] => {
    if (panel === "all" || panels.length === 1) return epilogue(i, sums, cols);
    const body: Expr[] = [];
    const partials: [number, () => Expr][] = [[sums, () => g.at(r.OUT)], ...(gated ? [[r.GATE + i, gateAt] as [number, () => Expr]] : [])];
    for (const [l, addr] of partials) {
      if (panel.index > 0) body.push(m.local.set(l, m.f32x4.add(get(l, v128), loadLanes(i * N * 4, addr, cols))));
      if (!panel.last) body.push(...storeLanes(i * N * 4, addr, l, cols));
    }
    return panel.last ? [...body, ...epilogue(i, sums, cols)] : body;
  };

  return { finish, normScalar, outputLane: (i, j, s) => lane(i, j, s) };
}
