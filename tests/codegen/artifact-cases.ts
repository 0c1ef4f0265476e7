// The programs whose compiled bytes tests/codegen/artifacts.test.ts pins: every example model on
// its fixtures (and the bundled tiny GPT-2) in fp32 and each --quantize scheme that quantizes
// something, plus small graphs that reach the matrix kernels' paths the tiny models do not
// (K panels, K % 4 tails, partial groups, fused norms, every scheme on gated kernels).

import { join } from "node:path";
import { loadProgram } from "../../compiler/load.js";
import { passes, runPipeline, withQuantization } from "../../compiler/passes/manager.js";
import { quantizeWeights, type QuantizeOptions } from "../../compiler/passes/quantize-weights.js";
import { GraphBuilder } from "../../ir/graph.js";
import type { Attrs, Param, Program } from "../../ir/types.js";
import { families, fixtureDir, rng, root } from "../helpers.js";

export interface ArtifactCase {
  name: string;
  program: () => Program;
}

type Scheme = QuantizeOptions["scheme"];
const SCHEMES: readonly Scheme[] = ["int8", "int4", "int4-min"];

/** Models as `compile` builds them: the default pipeline, or the --quantize one. */
function modelCases(label: string, wf: string, weights: string): ArtifactCase[] {
  const load = (scheme?: Scheme) => runPipeline(loadProgram(join(root, "examples", wf), weights), {}, withQuantization(passes, scheme));
  const cases: ArtifactCase[] = [{ name: `${label} fp32`, program: () => load() }];
  // a scheme only where the model has a matrix it quantizes (input width a multiple of 32)
  const quantizable = load("int8").graphs.some((g) => g.nodes.some((n) => n.op === "param" && n.attrs.quant !== undefined));
  if (quantizable) for (const s of SCHEMES) cases.push({ name: `${label} ${s}`, program: () => load(s) });
  return cases;
}

/** A one-output graph over a token-id input, with seeded random parameters (as tests/kernels/check.ts). */
function kernelProgram(seed: number, build: (k: { b: GraphBuilder; act(D: number): number; param(shape: number[]): number; ids: number }) => number, quantize?: Scheme, context = 96): Program {
  const r = rng(seed);
  const params = new Map<string, Param>();
  const b = new GraphBuilder("forward");
  const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
  let np = 0;
  const param = (shape: number[]) => {
    const name = `p${np++}`;
    params.set(name, { name, shape, data: r.floats(shape.reduce((x, y) => x * y, 1), 0.3) });
    return b.add("param", [], { name, shape });
  };
  b.output("y", build({ b, ids, param, act: (D) => b.add("embedding", [param([50, D]), ids]) }));
  const p: Program = { model: "kernel", config: {}, context, graphs: [b.build()], params };
  return quantize ? quantizeWeights(p, { scheme: quantize }) : p;
}

const linear = (K: number, N: number, attrs: Attrs & { bias?: boolean } = {}, quantize?: Scheme) => {
  const { bias, ...rest } = attrs;
  return () => kernelProgram(K * 1000 + N, (k) => {
    const args = [k.act(K), k.param([N, K])];
    if (rest.ln_eps !== undefined) args.push(k.param([2, N]));
    else if (bias) args.push(k.param([N]));
    if (rest.residual) args.push(k.act(N));
    return k.b.add("linear", args, rest);
  }, quantize);
};
const gated = (K: number, N: number, act: string, attrs: Attrs = {}, quantize?: Scheme) => () =>
  kernelProgram(K * 1000 + N + 7, (k) => k.b.add("gated_linear", [k.act(K), k.param([N, K]), k.param([N, K])], { act, ...attrs }), quantize);

const kernelCases: ArtifactCase[] = [
  { name: "linear K=13 N=7 bias gelu residual (K % 4 tail, scalar activation)", program: linear(13, 7, { bias: true, act: "gelu", residual: true }) },
  { name: "linear K=64 N=36 bias (one panel, single rows in pairs of groups)", program: linear(64, 36, { bias: true }) },
  { name: "linear K=520 N=23 bias silu residual (two panels, pairs, a partial group)", program: linear(520, 23, { bias: true, act: "silu", residual: true }) },
  { name: "linear K=1032 N=9 bias relu (three panels)", program: linear(1032, 9, { bias: true, act: "relu" }) },
  { name: "linear K=520 N=10 rms_eps gelu_tanh", program: linear(520, 10, { rms_eps: 1e-5, act: "gelu_tanh" }) },
  { name: "linear K=64 N=6 ln_eps (partial group)", program: linear(64, 6, { ln_eps: 1e-5 }) },
  { name: "linear K=13 N=8 ln_eps residual (K % 4 tail)", program: linear(13, 8, { ln_eps: 1e-5, residual: true }) },
  {
    name: "embedding and linear on one table K=520 N=50 (packed only)",
    program: () => kernelProgram(5201, (k) => {
      const t = k.param([50, 520]);
      return k.b.add("linear", [k.b.add("embedding", [t, k.ids]), t]);
    }),
  },
  { name: "gated_linear K=528 N=6 silu (two panels: gate sums in scratch)", program: gated(528, 6, "silu") },
  { name: "gated_linear K=64 N=10 gelu rms_eps", program: gated(64, 10, "gelu", { rms_eps: 1e-6 }) },
  { name: "gated_linear K=12 N=5 gelu_tanh (a partial group)", program: gated(12, 5, "gelu_tanh") },
];
for (const s of SCHEMES) {
  kernelCases.push(
    { name: `${s} linear K=64 N=13 bias gelu_tanh residual`, program: linear(64, 13, { bias: true, act: "gelu_tanh", residual: true }, s) },
    { name: `${s} linear K=1056 N=6 bias`, program: linear(1056, 6, { bias: true }, s) },
    { name: `${s} linear K=96 N=8 rms_eps silu`, program: linear(96, 8, { rms_eps: 1e-5, act: "silu" }, s) },
    { name: `${s} gated_linear K=64 N=9 silu`, program: gated(64, 9, "silu", {}, s) },
    { name: `${s} gated_linear K=2048 N=4 gelu`, program: gated(2048, 4, "gelu", {}, s) },
  );
}
// attr int_rows moves the switch between the integer and the dequantized path
for (const intRows of [0, 5, 100])
  kernelCases.push({
    name: `int8 linear K=64 N=6 int_rows=${intRows}`,
    program: () => {
      const p = linear(64, 6, { bias: true }, "int8")();
      for (const n of p.graphs[0].nodes) if (n.op === "linear") Object.assign(n.attrs, { int_rows: intRows });
      return p;
    },
  });

export function artifactCases(): ArtifactCase[] {
  return [
    ...Object.entries(families).flatMap(([fixture, family]) => modelCases(fixture, `${family}.wf`, fixtureDir(fixture))),
    ...modelCases("tiny-gpt2", "gpt2.wf", join(root, "examples", "tiny-gpt2")),
    // the fixtures above are too narrow to quantize (input widths not multiples of 32): a
    // LLaMA of width 32 quantizes, from safetensors and from its GGUF Q8_0 file
    ...modelCases("llama-q8_0", "llama.wf", fixtureDir("llama-q8_0")),
    ...modelCases("llama-q8_0 gguf", "llama.wf", join(fixtureDir("llama-q8_0"), "model-q8_0.gguf")),
    ...kernelCases,
  ];
}
