// The relaxed-SIMD module's matrix kernels against the IR interpreter: fused multiply-adds
// (f32) and, on 4-bit weights, the 8-bit dot products (i16x8.relaxed_dot_i8x16_i7x16_s). This
// file's process allows relaxed SIMD (Node 20 keeps it behind a flag; vitest runs each test
// file in its own process), so the other files keep testing the plain module.

import v8 from "node:v8";
import { describe, expect, it } from "vitest";
import { peakRelaxedDotGops } from "../../compiler/measure/roofline.js";
import { quantizeWeights } from "../../compiler/passes/quantize-weights.js";
import { rng } from "../helpers.js";
import { check } from "./check.js";

v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
const relaxed = { relaxed: true };

describe("relaxed SIMD: f32 linear and gated linear", () => {
  for (let i = 0; i < 4; i++) {
    const r = rng(2100 + i);
    const [K, N] = [r.pick([4, 13, 33, 64]), r.pick([1, 4, 7, 10])];
    const calls = r.pick([[1], [3], [9, 1], [70, 1]]);
    it(`linear K=${K} N=${N} rows=${calls.join("+")}`, () =>
      check(2200 + i, (c) => c.b.add("linear", [c.act(K), c.param([N, K]), c.param([N])], { act: "gelu_tanh" }), calls, 96, undefined, relaxed));
  }
  it("gated_linear K=64 N=10 rows=5+1", () =>
    check(2300, (c) => c.b.add("gated_linear", [c.act(64), c.param([10, 64]), c.param([10, 64])], { act: "silu" }), [5, 1], 32, undefined, relaxed));
});

describe("relaxed SIMD: the generated attention (fused multiply-adds in its dot products)", () => {
  it("H=4 Hkv=2 dk=dv=8 causal cached rows=23+1+6", () =>
    check(2350, (c) => {
      const kv = () => c.act(16);
      return c.b.add("attention", [c.act(32), kv(), kv()], { heads: 4, kv_heads: 2, scale: 0.4, causal: true, cache: true });
    }, [23, 1, 6], 32, undefined, relaxed));
});

for (const [scheme, choice, seed] of [["q8_0", "int8", 2400], ["q4_0", "int4", 2500], ["q4_1", "int4-min", 2600]] as const)
  describe(`relaxed SIMD: linear and gated linear on ${choice} (${scheme}) weights`, () => {
    const quantize = (p: Parameters<typeof quantizeWeights>[0]) => quantizeWeights(p, { scheme: choice });
    for (let i = 0; i < 5; i++) {
      const r = rng(seed + i);
      const [K, N] = [r.pick([32, 64, 96]), r.pick([1, 4, 5, 13])];
      // the integer path (calls of ≤ 16 rows, 3 for q4_1; q8_0 at these K: every call) and the dequantized one
      const calls = r.pick([[1], [2], [3], [1, 1], [40, 1]]);
      const bias = i % 2 === 0;
      it(`linear K=${K} N=${N}${bias ? " bias" : ""} rows=${calls.join("+")}`, () =>
        check(seed + 50 + i, (c) => c.b.add("linear", [c.act(K), c.param([N, K]), ...(bias ? [c.param([N])] : [])]), calls, 64, quantize, relaxed));
    }
    it("gated_linear K=64 N=9 rows=1+2+6", () =>
      check(seed + 90, (c) => c.b.add("gated_linear", [c.act(64), c.param([9, 64]), c.param([9, 64])], { act: "silu" }), [1, 2, 6], 32, quantize, relaxed));
  });

describe("the relaxed module's own integer-path bound (attr int_rows_relaxed)", () => {
  // int_rows 2, int_rows_relaxed 48: a call of 40 rows takes the integer path in the relaxed module
  // and the dequantized one in the plain module; each matches the interpreter as its reference
  // (Session.relaxed), the two paths differing by x's q8_0 rounding (far above check's 2e-5)
  for (const [scheme, choice] of [["q4_0", "int4"], ["q8_0", "int8"], ["q4_1", "int4-min"]] as const) {
    const bounds = (p: Parameters<typeof quantizeWeights>[0]) => {
      const q = quantizeWeights(p, { scheme: choice });
      for (const n of q.graphs[0].nodes) if (n.op === "linear" || n.op === "gated_linear") Object.assign(n.attrs, { int_rows: 2, int_rows_relaxed: 48 });
      return q;
    };
    for (const module of [relaxed, {}])
      it(`${scheme} linear K=1056 N=13 and gated K=64 N=9, rows 40+1+50, ${module === relaxed ? "relaxed" : "plain"} module`, async () => {
        await check(2700, (c) => c.b.add("linear", [c.act(1056, 0.5), c.param([13, 1056], 0.1)]), [40, 1, 50], 96, bounds, module);
        await check(2701, (c) => c.b.add("gated_linear", [c.act(64), c.param([9, 64]), c.param([9, 64])], { act: "silu" }), [40, 1, 50], 96, bounds, module);
      });
  }
});

describe("the relaxed 8-bit dot roofline probe", () => {
  it("assembles with relaxed SIMD, validates and runs (a rate, not timed against anything here)", async () => {
    const rate = await peakRelaxedDotGops();
    expect(Number.isFinite(rate) && rate > 0).toBe(true);
  });
});

describe("relaxed SIMD: linears of different integer-path bounds reading one x", () => {
  // q8_0 at K > 1024 first (integer path up to 16 rows), then q4_0 (up to 512 in this module): in a
  // call of 40 rows the first leaves x unquantized, so the second must quantize it itself
  it("q8_0 then q4_0 on the same x, K=1056, rows 40+1", () =>
    check(2800, (c) => {
      const x = c.act(1056, 0.5);
      return c.b.add("add", [c.b.add("linear", [x, c.param([5, 1056], 0.1)]), c.b.add("linear", [x, c.param([5, 1056], 0.1)])]);
    }, [40, 1], 64, (p) => quantizeWeights(p, { scheme: "int4", overrides: [{ pattern: "p1", scheme: "int8" }] }), relaxed));
});
