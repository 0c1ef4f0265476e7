// Single rows (decode) of a plain f32 linear in pairs of groups: each x vector is loaded once
// for two groups of weights, read as two streams side by side from the two halves of the
// thread's groups (two streams read faster than one: docs/performance.md).

import { type Expr, v128 } from "../wasm.js";
import type { Epilogue } from "./epilogue.js";
import type { KernelGen } from "./gen.js";
import { GROUP, type Panel } from "./layout.js";

/**
 * Row RB × groups G0 + T and G0 + HALF + T of `panel`. The sums are those of the 1-row tile
 * (same accumulation order), so a group's outputs do not depend on its pairing.
 */
export function pairTile(g: KernelGen, e: Epilogue, panel: Panel): Expr {
  const { m, r, wm, plan } = g;
  const get = g.get;
  const { k0, size } = panel;
  const group = (G: Expr) => m.i32.add(get(r.W), m.i32.add(g.c32(panel.at * 4), m.i32.mul(G, g.c32(GROUP * size * 4))));
  const body: Expr[] = [
    m.local.set(r.R, get(r.RB)),
    m.local.set(r.PX, m.i32.add(get(r.X), m.i32.mul(get(r.R), g.c32(plan.K * 4)))),
    m.local.set(r.PW, group(m.i32.add(get(r.G0), get(r.T)))),
    m.local.set(r.PW2, group(m.i32.add(m.i32.add(get(r.G0), get(r.HALF)), get(r.T)))),
  ];
  for (let a = 0; a < 2 * GROUP; a++) body.push(m.local.set(r.ACC + a, g.zero()));
  // chunk c (16 bytes of x) of the k-step: both groups' 4 rows
  const chunk = (c: number): Expr[] => {
    const out: Expr[] = [m.local.set(r.XV, m.v128.load(k0 * 4 + 16 * c, 4, m.i32.add(get(r.PX), get(r.KB))))];
    for (const [h, pw] of [[0, r.PW], [1, r.PW2]])
      for (let j = 0; j < GROUP; j++) {
        out.push(m.local.set(r.WV, m.v128.load(j * 16 + 64 * c, 4, m.i32.add(get(pw), m.i32.shl(get(r.KB), g.c32(2))))));
        out.push(m.local.set(r.ACC + 4 * h + j, wm.madd(get(r.XV, v128), get(r.WV, v128), get(r.ACC + 4 * h + j, v128))));
      }
    return out;
  };
  body.push(wm.loop(`pk${panel.index}`, r.KB, g.c32(0), size * 4, 32, [...chunk(0), ...chunk(1)]));
  const acc = (h: number) => [0, 1, 2, 3].map((j) => r.ACC + 4 * h + j);
  body.push(...g.reduce4(acc(0), r.ROWV, g.addF), ...g.reduce4(acc(1), r.ROWV + 1, g.addF));
  body.push(m.local.set(r.G, m.i32.add(get(r.G0), get(r.T))), ...e.finish(0, r.ROWV, GROUP, panel));
  body.push(m.local.set(r.G, m.i32.add(m.i32.add(get(r.G0), get(r.HALF)), get(r.T))), ...e.finish(0, r.ROWV + 1, GROUP, panel));
  return m.block(null, body);
}
