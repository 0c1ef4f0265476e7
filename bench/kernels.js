// Per-kernel figures for the bench: the wasm f32x4 multiply-add peak on this core, and each
// matrix shape of a model timed alone as a GEMV (1 row, bandwidth-bound) and a GEMM (many rows).

import { generateArtifact } from "../dist/compiler/index.js";
import { GraphBuilder } from "../dist/ir/graph.js";
import { quantizeWeights } from "../dist/compiler/passes/quantize-weights.js";
import { Model, pickVariant } from "../runtime/dist/index.js";
import { benchSubject, median } from "../runtime/dist/bench.js";

// the roofline probes live with `wasmformer profile` (one implementation)
export { peakDotGops, peakMaddGflops, peakRelaxedDotGops } from "../dist/compiler/measure/roofline.js";

/**
 * One linear [rows, K] × [N, K]ᵀ compiled alone; median seconds per call over `repeats` (after a
 * warm-up call), timed by the runtime's timing loop.
 * `quant`: undefined (f32), "q8_0", "q4_0" or "q4_1"; `path` (quantized): "integer" or
 * "dequantized" forces that kernel path for this call (attr int_rows), else the default one.
 */
export async function timeLinear(K, N, rows, { quant = undefined, path = undefined, repeats = 5, seed = 1 } = {}) {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.04;
  const params = new Map();
  const b = new GraphBuilder("forward");
  const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
  const param = (name, shape) => {
    const data = new Float32Array(shape[0] * shape[1]);
    for (let i = 0; i < data.length; i++) data[i] = rand();
    params.set(name, { name, shape, data });
    return b.add("param", [], { name, shape });
  };
  const x = b.add("embedding", [param("x", [64, K]), ids]);
  const y = b.add("linear", [x, param("w", [N, K])]);
  // only the last row comes out: copying [rows, N] into a fresh JS array would be timed too
  // (16 MB of logits take ~55 ms here, mostly page faults)
  b.output("y", b.add("last_row", [y]));
  let p = { model: "kernel", config: {}, context: Math.max(rows, 1), graphs: [b.build()], params };
  if (quant) p = quantizeWeights(p, { scheme: ({ q8_0: "int8", q4_0: "int4", q4_1: "int4-min" })[quant] });
  if (path) {
    if (!quant || !["integer", "dequantized"].includes(path)) throw new Error(`timeLinear: path ${path} needs quantized weights and is integer or dequantized`);
    // in both modules (int_rows_relaxed is the relaxed module's bound)
    for (const n of p.graphs[0].nodes) if (n.op === "linear") Object.assign(n.attrs, { int_rows: path === "integer" ? rows : 0, int_rows_relaxed: path === "integer" ? rows : 0 });
  }
  return timeProgram(p, rows, repeats, seed);
}

/**
 * A one-op program compiled and timed as a bench subject: one call of `rows` ids (vocabulary 64),
 * nothing cached to reset; median seconds per call, in the module the runtime would pick here
 * (relaxed SIMD under --experimental-wasm-relaxed-simd). Includes the embedding gathers of the
 * op's inputs: small beside the op.
 */
async function timeProgram(p, rows, repeats, seed) {
  const art = generateArtifact(p);
  const file = pickVariant(art.manifest.variants).file;
  const model = await Model.load({ manifest: art.manifest, wasm: art.variants.find((v) => v.file === file).wasm, weights: art.weights });
  const subject = { context: rows, vocab: 64, reset() {}, feed: (ids) => void model.run("forward", { ids }) };
  try {
    const [r] = await benchSubject(subject, { prompt: [rows], gen: [], repetitions: repeats, seed });
    return median(r.seconds);
  } finally {
    model.dispose();
  }
}

/** Causal attention over `rows` query rows of H heads (Hkv KV heads) of size d, compiled alone; median seconds per call. */
export async function timeAttention(H, Hkv, d, rows, { repeats = 5, seed = 1 } = {}) {
  let s = seed >>> 0 || 1;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  const params = new Map();
  const b = new GraphBuilder("forward");
  const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
  const act = (name, width) => {
    const data = new Float32Array(64 * width).map(rand);
    params.set(name, { name, shape: [64, width], data });
    return b.add("embedding", [b.add("param", [], { name, shape: [64, width] }), ids]);
  };
  const y = b.add("attention", [act("q", H * d), act("k", Hkv * d), act("v", Hkv * d)], { heads: H, kv_heads: Hkv, scale: 1 / Math.sqrt(d), causal: true });
  b.output("y", b.add("last_row", [y]));
  return timeProgram({ model: "kernel", config: {}, context: rows, graphs: [b.build()], params }, rows, repeats, seed);
}
