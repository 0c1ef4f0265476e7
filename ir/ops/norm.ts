// Ops over each row as a whole: the norms and softmax.

import { float, int, optional } from "../attrs.js";
import { formatType } from "../types.js";
import { type OpDef, defineOp, expect, expectF32, lastDim } from "./def.js";

export const normOps = {
  /** (x − mean) / sqrt(var + eps) · g + b over each row. */
  layernorm: defineOp({
    attrs: { eps: float },
    arity: 3,
    roles: ["activation", "gain", "bias"],
    traits: ["pure", "rowwise"],
    infer: ([x, g, b]) => {
      expectF32(x, "input");
      const D = lastDim(x);
      expect(g.shape.length === 1 && g.shape[0] === D && b.shape.length === 1 && b.shape[0] === D, `layernorm: gain/bias must be [${D}], got ${formatType(g)} and ${formatType(b)}`);
      return x;
    },
    interp: ([x, g, b], a) => {
      const D = g.length, eps = a.eps;
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        let mean = 0, v = 0;
        for (let i = 0; i < D; i++) mean += x[r * D + i];
        mean /= D;
        for (let i = 0; i < D; i++) v += (x[r * D + i] - mean) ** 2;
        const inv = 1 / Math.sqrt(v / D + eps);
        for (let i = 0; i < D; i++) out[r * D + i] = (x[r * D + i] - mean) * inv * g[i] + b[i];
      }
      return out;
    },
  }),
  /**
   * x / sqrt(mean(x²) + eps) · (offset + g) over each row, or (group) over each run of `group`
   * columns with g[group] (Qwen3's per-head q/k norms); offset: Gemma's (1 + g), in f32.
   */
  rmsnorm: defineOp({
    attrs: { eps: float, group: optional(int), offset: optional(float) },
    arity: 2,
    roles: ["activation", "gain"],
    traits: ["pure", "rowwise"],
    infer: ([x, g], a) => {
      expectF32(x, "input");
      const W = lastDim(x), D = a.group ?? W;
      expect(D > 0 && W % D === 0, `rmsnorm: width ${W} is not a whole number of groups of ${D}`);
      expect(g.shape.length === 1 && g.shape[0] === D, `rmsnorm: gain must be [${D}], got ${formatType(g)}`);
      return x;
    },
    interp: ([x, g], a) => {
      const D = g.length, eps = a.eps, offset = a.offset ?? 0;
      const gain = offset ? g.map((v) => Math.fround(offset + v)) : g;
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        let ss = 0;
        for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
        const inv = 1 / Math.sqrt(ss / D + eps);
        for (let i = 0; i < D; i++) out[r * D + i] = x[r * D + i] * inv * gain[i];
      }
      return out;
    },
  }),
  /** softmax over the last dimension. */
  softmax: defineOp({
    attrs: {},
    arity: 1,
    roles: ["activation"],
    traits: ["pure", "rowwise"],
    infer: ([x]) => (expectF32(x, "operand"), lastDim(x), x),
    interp: ([x], _a, _n, [t]) => {
      const D = lastDim(t);
      const out = new Float32Array(x.length);
      for (let r = 0; r < x.length / D; r++) {
        let m = -Infinity, s = 0;
        for (let i = 0; i < D; i++) m = Math.max(m, x[r * D + i]);
        for (let i = 0; i < D; i++) s += out[r * D + i] = Math.exp(x[r * D + i] - m);
        for (let i = 0; i < D; i++) out[r * D + i] /= s;
      }
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
