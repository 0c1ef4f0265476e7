// quantize-weights (compile --quantize int8|int4|int4-min): matrices read only by linear become
// block-quantized along the input dimension, 32 weights a block, one f16 scale each, exactly as
// GGUF's Q8_0 (d = max|w| / 127, q = round(w / d)), Q4_0 (d = max / −8 by signed max, q = w / d
// + 8.5 truncated to 0..15) or Q4_1 (an f16 minimum too: d = (max − min) / 15, q = (w − min) / d
// + 0.5 truncated). The parameter's data becomes the dequantized values, so the interpreter
// computes exactly what the kernels do. Matrices whose input width is not a multiple of 32, or
// that other ops also read, stay f32, but for a tied embedding table: it is quantized for the head
// and the lookup alike. Per-tensor overrides pick another scheme (or f32) for parameters whose
// name matches a glob.

import { integerRowBound } from "../codegen/tuning.js";
import { isOp, operandsOf, roles } from "../../ir/ops.js";
import { lazyParam } from "../../ir/params.js";
import { Q8_BLOCK, dequantizeCodes, quantizeQ4_0, quantizeQ4_1, quantizeQ8 } from "../../ir/quant.js";
import type { Node, Param, Program, QuantScheme } from "../../ir/types.js";
import type { RewriteCtx, Rule } from "./rewrite.js";
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

/**
 * Parameters every user of which reads them as a matrix kernel's weight (role weight), in every
 * entry; and tied tables: read as weights and as embedding tables only (a tied output head).
 */
function weightUses(p: Program): { weightsOnly: Set<string>; tied: Set<string> } {
  const uses = new Map<string, Set<string>>();
  for (const g of p.graphs)
    for (const n of g.nodes) {
      const r = roles(n);
      n.args.forEach((a, i) => {
        const src = g.nodes[a];
        if (isOp(src, "param")) uses.set(src.attrs.name, (uses.get(src.attrs.name) ?? new Set()).add(r[i]));
      });
    }
  const names = (ok: (roles: Set<string>) => boolean) => new Set([...uses].filter(([, r]) => ok(r)).map(([k]) => k));
  return {
    weightsOnly: names((r) => r.size === 1 && r.has("weight")),
    tied: names((r) => r.size === 2 && r.has("weight") && r.has("table")),
  };
}

const globRegex = (glob: string) => new RegExp(`^${glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);

function quantize(scheme: QuantScheme, w: Param): NonNullable<Param["quant"]> {
  const [N, K] = w.shape;
  const nodequant = { dequant: false };
  if (scheme === "q8_0") {
    const { codes, scales } = quantizeQ8(w.data, N, K, nodequant);
    return { scheme, codes, scales };
  }
  if (scheme === "q4_1") {
    const { codes, scales, mins } = quantizeQ4_1(w.data, N, K, nodequant);
    return { scheme, codes, scales, mins };
  }
  const q = quantizeQ4_0(w.data, N, K, nodequant);
  // the kernels take the nibble's value q − 8, in place (a view of the same bytes as Int8Array)
  const codes = new Int8Array(q.codes.buffer, q.codes.byteOffset, q.codes.length);
  for (let i = 0; i < codes.length; i++) codes[i] -= 8;
  return { scheme, codes, scales: q.scales };
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
  const { weightsOnly: eligible, tied } = weightUses(p);
  /** The quantized parameter of param node n, or null where it stays f32. */
  const quantized = (n: Node, c: RewriteCtx): number | null => {
    // (a swappable matrix is written by the runtime in f32: QLoRA's side path beside quantized kernels)
    if (!isOp(n, "param") || n.attrs.quant !== undefined || n.attrs.swappable) return null;
    const [N, K] = n.type.shape as number[];
    const want = choice(n.attrs.name);
    if (K % Q8_BLOCK || want === "f32") return null;
    const scheme = SCHEMES[want];
    const name = `${n.attrs.name}@${scheme}`;
    if (!c.params.has(name)) {
      const src = c.params.get(n.attrs.name)!;
      const quant = () => quantize(scheme, src);
      c.params.set(name, lazyParam(name, [N, K], () => dequantizeCodes(quant(), N, K), quant));
    }
    return c.b.add("param", [], { name, shape: [N, K], quant: scheme }, n.loc);
  };
  const rules: Rule[] = [
    {
      // a tied table (an embedding table the output head reads as its weight) too: the lookup
      // dequantizes its rows, as llama.cpp's token_embd serves both
      name: "quantize-linear-weight",
      apply: (n, c) => (isOp(n, "param") && (eligible.has(n.attrs.name) || tied.has(n.attrs.name)) ? quantized(n, c) : null),
    },
    {
      // a linear over quantized weights quantizes its input rows to q8_0: integer dot products,
      // in calls of at most int_rows rows (int_rows_relaxed in the relaxed module) where the tuning bounds them
      name: "quantize-linear-input",
      apply: (n, c) => {
        if (!(isOp(n, "linear") || isOp(n, "gated_linear")) || n.attrs.quant !== undefined) return null;
        const weights = operandsOf(n, "weight").map((w) => c.node(w));
        const schemes = weights.map((w) => (isOp(w, "param") ? w.attrs.quant : undefined));
        const scheme = schemes[0];
        // a gated kernel reads both weights in one scheme: the gate's choice holds for the up projection
        if (scheme === undefined || schemes.some((s) => s !== scheme)) return null;
        const K = weights[0].type.shape[1] as number;
        const bound = integerRowBound(scheme, K), relaxed = integerRowBound(scheme, K, true);
        // the relaxed module's bound only where it differs (the context's rows: every call)
        const relaxedAttr = relaxed === bound ? {} : { int_rows_relaxed: relaxed ?? p.context };
        return c.b.add(n.op, n.args, { ...n.attrs, quant: scheme, ...(bound === undefined ? {} : { int_rows: bound }), ...relaxedAttr }, n.loc);
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
