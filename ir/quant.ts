// Quantization schemes: how weights become codes and scales, and what they dequantize to.
// The interpreter computes with the dequantized values, the kernels with the codes.

import type { Param } from "./types.js";

export const Q8_BLOCK = 32;

/** Rounds half away from zero, as C's roundf (Math.round rounds half up). */
const roundAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

export function quantizeQ8(w: Float32Array, N: number, K: number): NonNullable<Param["quant"]> & { dequant: Float32Array } {
  const blocks = K / Q8_BLOCK;
  const codes = new Int8Array(N * K), scales = new Float32Array(N * blocks), dequant = new Float32Array(N * K);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < blocks; b++) {
      const at = n * K + b * Q8_BLOCK;
      let amax = 0;
      for (let t = 0; t < Q8_BLOCK; t++) amax = Math.max(amax, Math.abs(w[at + t]));
      const d = Math.fround(amax / 127), inv = d ? 1 / d : 0;
      scales[n * blocks + b] = d;
      for (let t = 0; t < Q8_BLOCK; t++) {
        const q = Math.max(-127, Math.min(127, roundAway(w[at + t] * inv)));
        codes[at + t] = q;
        dequant[at + t] = Math.fround(q * d);
      }
    }
  return { scheme: "q8_0", codes, scales, dequant };
}

