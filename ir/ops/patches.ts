// Ops that turn an image into a sequence: its patches, flattened (a vision transformer's patch
// embedding is a linear over them), and rows joined in order (a class token before the patches).

import { int } from "../attrs.js";
import { type TensorType, formatType, sameShape } from "../types.js";
import { type OpDef, defineOp, expect, expectF32, f32 } from "./def.js";

/** The grid of size × size patches of an image [1, C, H, W]: rows and columns of patches, whole patches only. */
export function patchGrid(shape: readonly (number | string)[], size: number) {
  const [, C, H, W] = shape as number[];
  return { C, H, W, rows: Math.floor(H / size), cols: Math.floor(W / size) };
}

export const patchOps = {
  /**
   * The non-overlapping size × size patches of an image x[1, C, H, W] → [rows · cols, C · size²]:
   * patch (i, j) is row i · cols + j, holding x[c, i·size + u, j·size + v] at column
   * (c · size + u) · size + v, the order of a flattened Conv2d weight [out, C, size, size]; so a
   * linear over the patches is the convolution of kernel = stride = size. Pixels past the last
   * whole patch are not read, as that convolution leaves them.
   */
  patches: defineOp({
    attrs: { size: int },
    arity: 1,
    roles: ["activation"],
    traits: ["pure"],
    infer: ([x], a) => {
      expectF32(x, "image");
      expect(x.shape.length === 4 && x.shape[0] === 1 && x.shape.every((d) => typeof d === "number"), `patches takes an image f32[1, C, H, W], got ${formatType(x)}`);
      const g = patchGrid(x.shape, a.size);
      expect(Number.isInteger(a.size) && a.size >= 1 && g.rows >= 1 && g.cols >= 1, `patches: size ${a.size} does not fit a ${g.H} × ${g.W} image`);
      return f32([g.rows * g.cols, g.C * a.size * a.size]);
    },
    interp: ([x], a, _n, [t]) => {
      const p = a.size, { C, H, W, rows, cols } = patchGrid(t.shape, p);
      const K = C * p * p, out = new Float32Array(rows * cols * K);
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < cols; j++)
          for (let c = 0; c < C; c++)
            for (let u = 0; u < p; u++)
              for (let v = 0; v < p; v++) out[(i * cols + j) * K + (c * p + u) * p + v] = x[(c * H + i * p + u) * W + j * p + v];
      return out;
    },
  }),
  /** The rows of a, then those of b: a[Ra, ...], b[Rb, ...] → [Ra + Rb, ...] (fixed row counts, the same trailing dims). */
  concat: defineOp({
    attrs: {},
    arity: 2,
    roles: ["activation", "activation"],
    traits: ["pure"],
    infer: ([a, b]) => {
      expectF32(a, "left operand");
      expectF32(b, "right operand");
      const fixed = (t: TensorType) => t.shape.length >= 2 && t.shape.every((d) => typeof d === "number");
      expect(fixed(a) && fixed(b) && sameShape(a.shape.slice(1), b.shape.slice(1)), `concat takes two tensors of fixed rows and the same trailing dims, got ${formatType(a)} and ${formatType(b)}`);
      return f32([(a.shape[0] as number) + (b.shape[0] as number), ...a.shape.slice(1)]);
    },
    interp: ([a, b]) => {
      const out = new Float32Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
