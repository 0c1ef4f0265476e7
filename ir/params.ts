// Parameters are computed when read, not when they are made: elaborate binds a tensor of the
// checkpoint, a pass composes a new parameter from others (stacked, transposed, scaled,
// quantized), and only codegen, the exporters and the interpreter read values — one tensor at a
// time, so a compile never holds the whole model in f32.

import type { Param } from "./types.js";

type Quantized = NonNullable<Param["quant"]>;

/**
 * A parameter whose `data` (and `quant`, when given) are computed on every read: a reader that
 * needs the values twice keeps them itself.
 */
export function lazyParam(name: string, shape: readonly number[], values: () => Float32Array, quant?: () => Quantized): Param {
  const p = { name, shape } as Param;
  Object.defineProperty(p, "data", { get: values, enumerable: true });
  if (quant) Object.defineProperty(p, "quant", { get: quant, enumerable: true });
  return p;
}
