// The rotary position embedding and the frequency schemes of Hugging Face's rope_scaling
// (modeling_rope_utils): default, linear, llama3 and longrope. Every scheme is a per-pair inverse
// frequency (and, for longrope, a cos/sin magnitude), so the kernel reads one cos/sin table.

import { float, floats, int, oneOf, optional } from "../attrs.js";
import type { AttrsOf } from "../attrs.js";
import { type OpDef, defineOp, expect, expectF32, lastDim } from "./def.js";

const f = Math.fround;

const ropeAttrs = {
  head_dim: int,
  theta: float,
  /** rope_scaling's type; absent: the unscaled frequencies. */
  scaling: optional(oneOf(["linear", "llama3", "longrope"] as const)),
  factor: optional(float),
  /** llama3: the band edges, as multiples of the original context's wavelength. */
  low_freq: optional(float),
  high_freq: optional(float),
  /** The context the model was trained on (llama3's band edges; where longrope switches to long_factor). */
  original: optional(int),
  /** longrope: per-pair divisors of the frequency, for sequences up to `original` and past it. */
  short_factor: optional(floats),
  long_factor: optional(floats),
  /** longrope: the magnitude cos and sin are multiplied by. */
  attn_factor: optional(float),
} as const;
export type RopeAttrs = AttrsOf<typeof ropeAttrs>;

/** What is wrong with a scaling's attributes, or undefined. */
function scalingProblem(a: RopeAttrs): string | undefined {
  const need = (keys: (keyof RopeAttrs)[]) => keys.find((k) => a[k] === undefined);
  const half = a.head_dim / 2;
  switch (a.scaling) {
    case undefined: return undefined;
    case "linear": return need(["factor"]) && "linear scaling needs factor";
    case "llama3": {
      const missing = need(["factor", "low_freq", "high_freq", "original"]);
      if (missing) return `llama3 scaling needs ${missing}`;
      return a.high_freq! > a.low_freq! ? undefined : `llama3 scaling needs high_freq (${a.high_freq}) above low_freq (${a.low_freq})`;
    }
    case "longrope": {
      const missing = need(["short_factor", "long_factor", "original", "attn_factor"]);
      if (missing) return `longrope scaling needs ${missing}`;
      for (const k of ["short_factor", "long_factor"] as const)
        if (a[k]!.length !== half) return `longrope ${k} has ${a[k]!.length} values, expected head_dim/2 = ${half}`;
      return undefined;
    }
  }
}

/** The unscaled inverse frequency of pair j, as the reference computes it in f32: 1 / theta^(2j/hd). */
const baseFreq = (j: number, hd: number, theta: number) => f(1 / f(Math.pow(theta, f((2 * j) / hd))));

/**
 * Inverse frequency of every pair (f32), for a sequence whose positions reach `length`: longrope
 * takes long_factor once the sequence is longer than `original`, as transformers switches its
 * frequencies per forward call.
 */
export function ropeFrequencies(a: RopeAttrs, long = false): Float32Array {
  const hd = a.head_dim, half = hd / 2, out = new Float32Array(half);
  for (let j = 0; j < half; j++) {
    const inv = baseFreq(j, hd, a.theta);
    switch (a.scaling) {
      case undefined: out[j] = inv; break;
      case "linear": out[j] = f(inv / a.factor!); break;
      case "llama3": {
        const factor = a.factor!, lo = a.low_freq!, hi = a.high_freq!, old = a.original!;
        const wavelen = f((2 * Math.PI) / inv);
        if (wavelen < old / hi) out[j] = inv;
        else if (wavelen > old / lo) out[j] = f(inv / factor);
        else {
          const smooth = f(f(f(old / wavelen) - lo) / (hi - lo));
          out[j] = f(f(f(1 - smooth) * f(inv / factor)) + f(smooth * inv));
        }
        break;
      }
      case "longrope": {
        const ext = (long ? a.long_factor! : a.short_factor!)[j];
        out[j] = f(1 / f(ext * f(Math.pow(a.theta, f((2 * j) / hd)))));
        break;
      }
    }
  }
  return out;
}

/** Whether a sequence whose positions reach `length` uses longrope's long factors. */
export const ropeLong = (a: RopeAttrs, length: number) => a.scaling === "longrope" && length > a.original!;

/** cos and sin of every rotary angle, f32 [position][pair][cos, sin], for positions 0..context-1 (the kernel's table). */
export function ropeTable(context: number, a: RopeAttrs, long = false): Float32Array {
  const half = a.head_dim / 2, inv = ropeFrequencies(a, long), out = new Float32Array(context * half * 2);
  const mag = a.scaling === "longrope" ? f(a.attn_factor!) : 1;
  for (let pos = 0; pos < context; pos++)
    for (let j = 0; j < half; j++) {
      const ang = f(pos * inv[j]);
      out[(pos * half + j) * 2] = f(Math.cos(ang)) * mag;
      out[(pos * half + j) * 2 + 1] = f(Math.sin(ang)) * mag;
    }
  return out;
}

export const ropeOps = {
  /** Rotary position embedding, rotate_half convention, on every head of x[R, heads*head_dim]. */
  rope: defineOp({
    attrs: ropeAttrs,
    arity: 1,
    roles: ["activation"],
    traits: [],
    infer: ([x], a) => {
      expectF32(x, "operand");
      const D = lastDim(x), hd = a.head_dim;
      expect(hd % 2 === 0 && D % hd === 0, `rope: width ${D} is not a whole number of heads of even size ${hd}`);
      const problem = scalingProblem(a);
      expect(!problem, `rope: ${problem}`);
      return x;
    },
    interp: ([x], a, _n, [t], st) => {
      const D = lastDim(t), hd = a.head_dim, half = hd / 2;
      const rows = x.length / D;
      const table = ropeTable(st.past + rows, a, ropeLong(a, st.past + rows));
      const out = new Float32Array(x.length);
      for (let r = 0; r < rows; r++) {
        const pos = st.past + r;
        for (let j = 0; j < half; j++) {
          const c = table[(pos * half + j) * 2], s = table[(pos * half + j) * 2 + 1];
          for (let h = 0; h < D / hd; h++) {
            const o = r * D + h * hd + j;
            const x1 = x[o], x2 = x[o + half];
            out[o] = x1 * c - x2 * s;
            out[o + half] = x2 * c + x1 * s;
          }
        }
      }
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
