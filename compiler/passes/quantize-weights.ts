// quantize-weights (compile --quantize int8|int4|int4-min): matrices read only by linear become
// block-quantized along the input dimension, 32 weights a block, one f16 scale each, exactly as
// GGUF's Q8_0 (d = max|w| / 127, q = round(w / d)), Q4_0 (d = max / −8 by signed max, q = w / d
// + 8.5 truncated to 0..15) or Q4_1 (an f16 minimum too: d = (max − min) / 15, q = (w − min) / d
// + 0.5 truncated). The parameter's data becomes the dequantized values, so the interpreter
// computes exactly what the kernels do. Matrices whose input width is not a multiple of 32, or
// that other ops also read (a tied embedding), stay f32. Per-tensor overrides pick another
// scheme (or f32) for parameters whose name matches a glob.

import { integerRowBound } from "../codegen/tuning.js";
import { isOp, operandsOf, roles } from "../../ir/ops.js";
import { Q8_BLOCK, quantizeQ4_0, quantizeQ4_1, quantizeQ8 } from "../../ir/quant.js";
import type { Node, Param, Program, QuantScheme } from "../../ir/types.js";
import type { Rule } from "./rewrite.js";
import { rewriteProgram } from "./rewrite.js";

/** What a user asks for: int8 = q8_0, int4 = q4_0, int4-min = q4_1 (a per-block minimum), f32 = leave as is. */
export type QuantizeChoice = "int8" | "int4" | "int4-min" | "f32";
export const SCHEMES: Record<Exclude<QuantizeChoice, "f32">, QuantScheme> = { int8: "q8_0", int4: "q4_0", "int4-min": "q4_1" };
export const QUANTIZE_CHOICES = Object.keys(SCHEMES) as Exclude<QuantizeChoice, "f32">[];

export interface QuantizeOptions {
  scheme: Exclude<QuantizeChoice, "f32">;
  /** Checked in order; the first glob (`*` any characters) matching a parameter's name wins. */
  overrides?: readonly { pattern: string; scheme: QuantizeChoice }[];
}

/** Parameters every user of which reads them as a matrix kernel's weight (role weight), in every entry. */
function weightsOnly(p: Program): Set<string> {
  const ok = new Map<string, boolean>();
  for (const g of p.graphs)
    for (const n of g.nodes) {
      const r = roles(n);
      n.args.forEach((a, i) => {
        const src = g.nodes[a];
        if (!isOp(src, "param")) return;
        ok.set(src.attrs.name, (ok.get(src.attrs.name) ?? true) && r[i] === "weight");
      });
    }
  return new Set([...ok].filter(([, v]) => v).map(([k]) => k));
}

const globRegex = (glob: string) => new RegExp(`^${glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);

function quantize(scheme: QuantScheme, w: Param): Param["quant"] & { dequant: Float32Array } {
  const [N, K] = w.shape;
  if (scheme === "q8_0") return quantizeQ8(w.data, N, K);
  if (scheme === "q4_1") return quantizeQ4_1(w.data, N, K);
  const q = quantizeQ4_0(w.data, N, K);
  // the kernels take the nibble's value q − 8
  return { scheme, codes: Int8Array.from(q.codes, (c) => c - 8), scales: q.scales, dequant: q.dequant };
}

export function quantizeWeights(p: Program, opts: QuantizeOptions): Program {
  if (!(opts.scheme in SCHEMES)) throw new Error(`unknown quantization scheme '${String(opts.scheme)}'`);
  const overrides = (opts.overrides ?? []).map((o) => ({ re: globRegex(o.pattern), scheme: o.scheme }));
  // globs match the checkpoint's tensor name (fold-transpose's "^T" marks a transposed copy)
  const byName = (name: string): QuantizeChoice => overrides.find((o) => o.re.test(name.replace(/(\^T)+$/, "")))?.scheme ?? opts.scheme;
  // a gated kernel reads its two weights in one scheme: the up projection follows the gate
  const gateOf = new Map<string, string>();
  const nameOf = (n: Node) => (isOp(n, "param") ? n.attrs.name : undefined);
  for (const g of p.graphs)
    for (const n of g.nodes) {
      const [gate, up] = operandsOf(n, "weight").map((w) => nameOf(g.nodes[w]));
      if (gate !== undefined && up !== undefined) gateOf.set(up, gate);
    }
  const choice = (name: string) => byName(gateOf.get(name) ?? name);
  const eligible = weightsOnly(p);
  const rules: Rule[] = [
    {
      name: "quantize-linear-weight",
      apply: (n, c) => {
        if (!isOp(n, "param") || n.attrs.quant !== undefined || !eligible.has(n.attrs.name)) return null;
        const [N, K] = n.type.shape as number[];
        const want = choice(n.attrs.name);
        if (K % Q8_BLOCK || want === "f32") return null;
        const scheme = SCHEMES[want];
        const name = `${n.attrs.name}@${scheme}`;
        if (!c.params.has(name)) {
          const q = quantize(scheme, c.params.get(n.attrs.name)!);
          c.params.set(name, { name, shape: [N, K], data: q.dequant, quant: { scheme, codes: q.codes, scales: q.scales, ...("mins" in q ? { mins: q.mins } : {}) } });
        }
        return c.b.add("param", [], { name, shape: [N, K], quant: scheme }, n.loc);
      },
    },
    {
      // a linear over quantized weights quantizes its input rows to q8_0: integer dot products,
      // in calls of at most int_rows rows where the tuning bounds them
      name: "quantize-linear-input",
      apply: (n, c) => {
        if (!(isOp(n, "linear") || isOp(n, "gated_linear")) || n.attrs.quant !== undefined) return null;
        const weights = operandsOf(n, "weight").map((w) => c.node(w));
        const schemes = weights.map((w) => (isOp(w, "param") ? w.attrs.quant : undefined));
        const scheme = schemes[0];
        // a gated kernel reads both weights in one scheme: the gate's choice holds for the up projection
        if (scheme === undefined || schemes.some((s) => s !== scheme)) return null;
        const bound = integerRowBound(scheme, weights[0].type.shape[1] as number);
        return c.b.add(n.op, n.args, { ...n.attrs, quant: scheme, ...(bound === undefined ? {} : { int_rows: bound }) }, n.loc);
      },
    },
  ];
  return rewriteProgram(p, rules);
}

/** Parses `NAME=int8|int4|int4-min|f32` (NAME a glob over parameter names), as given on the command line. */
export function parseOverride(text: string): { pattern: string; scheme: QuantizeChoice } {
  const m = /^([^=]+)=(int8|int4-min|int4|f32)$/.exec(text);
  if (!m) throw new Error(`'${text}' is not NAME=int8|int4|int4-min|f32`);
  return { pattern: m[1], scheme: m[2] as QuantizeChoice };
}
