// Every lowered op against the IR interpreter on random shapes (tails: widths not multiples
// of 4, single rows, odd head dims), over two calls so that cached ops see past > 0. Each
// buffer's bytes past the rows a call wrote must keep their sentinel value.

import { describe, expect, it } from "vitest";
import { quantizeWeights } from "../../compiler/passes/quantize-weights.js";
import { rng } from "../helpers.js";
import { type Ctx, check } from "./check.js";

const widths = [1, 3, 4, 5, 7, 8, 13, 17, 36, 67];
const rowsOf = [[1], [2], [3], [4], [5], [7], [9, 1]];

function sweep(name: string, build: (c: Ctx, D: number) => number, count = 6) {
  describe(name, () => {
    for (let i = 0; i < count; i++) {
      const r = rng(1000 + i * 7919 + name.length);
      const D = r.pick(widths);
      const calls = r.pick(rowsOf);
      it(`D=${D} rows=${calls.join("+")}`, () => check(i * 31 + name.length, (c) => build(c, D), calls));
    }
  });
}

sweep("embedding", (c, D) => c.act(D));
sweep("add (same shape)", (c, D) => c.b.add("add", [c.act(D), c.act(D)]));
sweep("add (broadcast row)", (c, D) => c.b.add("add", [c.act(D), c.param([D])]));
sweep("mul (broadcast row)", (c, D) => c.b.add("mul", [c.act(D), c.param([D])]));
sweep("mul (same shape)", (c, D) => c.b.add("mul", [c.act(D), c.act(D)]));
sweep("scale", (c, D) => c.b.add("scale", [c.act(D)], { by: -0.37 }));
sweep("layernorm", (c, D) => c.b.add("layernorm", [c.act(D), c.param([D]), c.param([D])], { eps: 1e-5 }));
sweep("rmsnorm", (c, D) => c.b.add("rmsnorm", [c.act(D), c.param([D])], { eps: 1e-6 }));
sweep("gelu", (c, D) => c.b.add("gelu", [c.act(D, 4)]));
sweep("gelu_tanh", (c, D) => c.b.add("gelu_tanh", [c.act(D, 4)]));
sweep("silu", (c, D) => c.b.add("silu", [c.act(D, 4)]));
sweep("relu", (c, D) => c.b.add("relu", [c.act(D)]));
sweep("softmax", (c, D) => c.b.add("softmax", [c.act(D, 3)]));
sweep("slice", (c, D) => c.b.add("slice", [c.act(D + 5)], { start: 2, size: D }));
sweep("reshape + transpose (per row)", (c, D) => {
  const x = c.b.add("reshape", [c.act(D * 3)], { shape: [3, D] });
  return c.b.add("reshape", [c.b.add("transpose", [x])], { shape: [3 * D] });
});
sweep("last_row", (c, D) => c.b.add("linear", [c.b.add("last_row", [c.act(D)]), c.param([3, D])]));
sweep("positions", (c) => c.b.add("embedding", [c.param([64, 3]), c.b.add("positions", [c.ids])]));

describe("linear", () => {
  for (let i = 0; i < 10; i++) {
    const r = rng(77 + i);
    const K = r.pick([1, 3, 4, 5, 8, 13, 33, 64, 67]);
    const N = r.pick([1, 2, 3, 4, 5, 7, 9, 16, 31]);
    const bias = i % 2 === 0;
    const calls = r.pick(rowsOf);
    it(`K=${K} N=${N}${bias ? " bias" : ""} rows=${calls.join("+")}`, () =>
      check(i, (c) => c.b.add("linear", [c.act(K), c.param([N, K]), ...(bias ? [c.param([N])] : [])]), calls));
  }
});

describe("linear with fused epilogues", () => {
  const acts = ["gelu", "gelu_tanh", "silu", "relu"] as const;
  for (let i = 0; i < 8; i++) {
    const r = rng(300 + i);
    const [K, N] = [r.pick([3, 8, 13, 33]), r.pick([1, 4, 7, 10])];
    const act = acts[i % 4];
    const bias = i % 3 !== 0, residual = i % 2 === 0;
    const calls = r.pick(rowsOf);
    it(`K=${K} N=${N}${bias ? " bias" : ""} ${act}${residual ? " residual" : ""} rows=${calls.join("+")}`, () =>
      check(400 + i, (c) => c.b.add("linear", [c.act(K, 2), c.param([N, K]), ...(bias ? [c.param([N])] : []), ...(residual ? [c.act(N)] : [])], { act, residual }), calls));
  }
});

for (const [scheme, choice, seed] of [["q8_0", "int8", 500], ["q4_0", "int4", 700], ["q4_1", "int4-min", 900]] as const)
describe(`linear on ${choice} (${scheme}) weights`, () => {
  for (let i = 0; i < 8; i++) {
    const r = rng(seed + i);
    const [K, N] = [r.pick([32, 64, 96]), r.pick([1, 4, 5, 8, 13])];
    const act = i % 3 === 0 ? "gelu_tanh" : undefined;
    const bias = i % 2 === 1, residual = i % 4 === 2;
    const calls = r.pick([...rowsOf, [40, 1]]);
    it(`K=${K} N=${N}${bias ? " bias" : ""}${act ? ` ${act}` : ""}${residual ? " residual" : ""} rows=${calls.join("+")}`, () =>
      check(seed + 100 + i, (c) => c.b.add("linear", [c.act(K), c.param([N, K]), ...(bias ? [c.param([N])] : []), ...(residual ? [c.act(N)] : [])], { ...(act ? { act } : {}), residual }), calls, 64, (p) => {
        // one case with tiny weights: block scales below 2^-14, f16 subnormals
        if (i === 7) for (const prm of p.params.values()) prm.data.forEach((v, k, a) => (a[k] = v * 1e-4));
        const q = quantizeWeights(p, { scheme: choice });
        if (i === 7) expect(q.graphs[0].nodes.some((n) => n.op === "param" && n.attrs.quant === scheme)).toBe(true);
        // the transformation must have happened: the weight is now a quantized parameter
        expect(q.graphs[0].nodes.some((n) => n.op === "param" && n.attrs.quant === scheme)).toBe(true);
        return q;
      }));
  }
});

describe("linear across row blocks", () => {
  for (const [K, N, calls] of [[13, 9, [66, 2]], [8, 6, [70]], [67, 5, [64, 1]], [33, 7, [129]]] as const)
    it(`K=${K} N=${N} rows=${calls.join("+")}`, () => check(K * N, (c) => c.b.add("linear", [c.act(K), c.param([N, K]), c.param([N])]), [...calls], 160));
  // the default paths (int_rows from quantize-weights): q4_0 dequantizes for calls of more than 16 rows; q8_0 too
  // when K > 1024, and takes integer products at any row count when K ≤ 1024
  for (const [choice, K, path] of [["int4", 64, "dequantized groups per row block, then the integer path"], ["int8", 1056, "dequantized groups per row block, then the integer path"], ["int8", 64, "the integer path for both calls"]] as const)
    it(`${choice} K=${K} N=6 rows=70+1 (${path})`, () =>
      check(4242 + K, (c) => c.b.add("linear", [c.act(K), c.param([6, K]), c.param([6])]), [70, 1], 160, (p) => quantizeWeights(p, { scheme: choice })));
  // attr int_rows moves the switch between the paths (the bench times both on one shape)
  for (const [intRows, calls] of [[0, [1, 2]], [100, [70, 1]]] as const)
    it(`int8 int_rows=${intRows} rows=${calls.join("+")} (${intRows ? "integer" : "dequantized"} path throughout)`, () =>
      check(4343 + intRows, (c) => c.b.add("linear", [c.act(64), c.param([6, 64]), c.param([6])]), [...calls], 160, (p) => {
        const q = quantizeWeights(p, { scheme: "int8" });
        for (const n of q.graphs[0].nodes) if (n.op === "linear") n.attrs.int_rows = intRows;
        return q;
      }));
});

describe("linears of different integer-path bounds reading one x", () => {
  // q4_0 first (integer path up to 16 rows), then q8_0 at K ≤ 1024 (every call): in a call of 40
  // rows the first leaves x unquantized, so the second must quantize it itself
  it("q4_0 then q8_0 on the same x, rows 40+1+12", () =>
    check(4545, (c) => {
      const x = c.act(64);
      return c.b.add("add", [c.b.add("linear", [x, c.param([6, 64])]), c.b.add("linear", [x, c.param([6, 64])])]);
    }, [40, 1, 12], 64, (p) => quantizeWeights(p, { scheme: "int4", overrides: [{ pattern: "p2", scheme: "int8" }] })));
});

describe("linear in K panels (f32 weights of K > 512)", () => {
  // K 520: panels of 264 + 256; 1032: 3 × 344. Tails in N; row counts past a row block (64)
  it("K=520 N=7 bias gelu residual rows=3+1", () =>
    check(5200, (c) => c.b.add("linear", [c.act(520, 0.3), c.param([7, 520], 0.3), c.param([7]), c.act(7)], { act: "gelu", residual: true }), [3, 1]));
  it("K=1032 N=9 bias rows=70+1", () =>
    check(10320, (c) => c.b.add("linear", [c.act(1032, 0.3), c.param([9, 1032], 0.3), c.param([9])]), [70, 1], 160));
  // single rows: full groups in pairs (two weight streams), then the odd group and a partial one
  it("K=520 N=23 bias silu residual rows=1+1+1 (2 pairs, an odd group, 3 outputs)", () =>
    check(5202, (c) => c.b.add("linear", [c.act(520, 0.3), c.param([23, 520], 0.3), c.param([23]), c.act(23)], { act: "silu", residual: true }), [1, 1, 1]));
  it("K=64 N=36 rows=1+2+1 (one panel: 4 pairs and an odd group)", () =>
    check(6436, (c) => c.b.add("linear", [c.act(64), c.param([36, 64]), c.param([36])]), [1, 2, 1]));
  it("a table read by embedding and linear (tied, stored packed only) K=520 N=50 rows=3+1", () =>
    check(5201, (c) => {
      const t = c.param([50, 520], 0.3); // (the check draws ids below 50)
      return c.b.add("linear", [c.b.add("embedding", [t, c.ids]), t]);
    }, [3, 1]));
  it("gated_linear K=528 N=6 rows=66+2+1", () =>
    check(5280, (c) => c.b.add("gated_linear", [c.act(528, 0.3), c.param([6, 528], 0.3), c.param([6, 528], 0.3)], { act: "silu" }), [66, 2, 1], 160));
  // single rows read the gate's and the up projection's groups side by side: one panel with
  // K % 8 = 4 (one chunk a step), and 3 panels; full groups and a partial one of 1 or 3 outputs
  it("gated_linear K=900 N=13 gelu_tanh rows=1+1+2 (one panel, odd chunks, a 1-output group)", () =>
    check(9001, (c) => c.b.add("gated_linear", [c.act(900, 0.3), c.param([13, 900], 0.3), c.param([13, 900], 0.3)], { act: "gelu_tanh" }), [1, 1, 2]));
  it("gated_linear K=1040 N=11 rows=1+1 (3 panels, a 3-output group)", () =>
    check(10401, (c) => c.b.add("gated_linear", [c.act(1040, 0.3), c.param([11, 1040], 0.3), c.param([11, 1040], 0.3)], { act: "silu" }), [1, 1]));
});

describe("rope", () => {
  for (const [hd, heads, calls] of [[2, 1, [1]], [10, 3, [4, 1]], [6, 2, [7, 2]], [16, 2, [3]]] as const)
    it(`head_dim=${hd} heads=${heads} rows=${calls.join("+")}`, () =>
      check(hd, (c) => {
        // a cached attention makes the graph advance `past`, so rope sees positions > 0
        const x = c.b.add("rope", [c.act(hd * heads)], { head_dim: hd, theta: 10000 });
        const kv = c.act(hd * heads);
        const a = c.b.add("attention", [c.act(hd * heads), kv, kv], { heads, kv_heads: heads, scale: 0.3, causal: true, cache: true });
        return c.b.add("add", [x, a]);
      }, [...calls]));
});

describe("attention", () => {
  const cases = [
    { H: 1, Hkv: 1, dk: 1, causal: false, cache: false, calls: [3] },
    { H: 4, Hkv: 4, dk: 13, causal: false, cache: false, calls: [5] },
    { H: 6, Hkv: 2, dk: 10, causal: true, cache: true, calls: [5, 1] },
    { H: 3, Hkv: 1, dk: 7, causal: true, cache: true, calls: [1, 1, 1] },
    { H: 2, Hkv: 2, dk: 8, causal: true, cache: false, calls: [6] },
    { H: 4, Hkv: 4, dk: 5, causal: false, cache: false, bias: true, calls: [7] },
    { H: 4, Hkv: 4, dk: 5, causal: true, cache: true, bias: true, calls: [4, 1, 2] },
    { H: 2, Hkv: 2, dk: 6, causal: false, cache: false, mask: true, calls: [5] },
    // dk % 4 = 0: keys 16 and 4 at a time (vector scores, the mask added to them), then one by one
    { H: 3, Hkv: 3, dk: 8, causal: false, cache: false, mask: true, calls: [37] },
    { H: 4, Hkv: 2, dk: 12, causal: true, cache: true, calls: [21, 1, 18] },
    // decode past 64 keys: chunks of 35/36 and 33/34/34 keys, each 16 keys a block for all heads,
    // then 4 and 1 at a time (v is dk + 1 wide: odd)
    { H: 4, Hkv: 2, dk: 12, causal: true, cache: true, calls: [70, 1, 1] },
    { H: 3, Hkv: 3, dk: 16, causal: true, cache: true, calls: [100, 1] },
    // head sizes multiples of 4 (dv = dk): the generated kernel (compiler/codegen/attention.ts)
    { H: 4, Hkv: 2, dk: 8, dv: 8, causal: true, cache: true, calls: [23, 1, 6] },
    { H: 2, Hkv: 2, dk: 12, dv: 12, causal: false, cache: false, mask: true, calls: [19] },
    { H: 6, Hkv: 2, dk: 4, dv: 4, causal: false, cache: false, calls: [9, 3] },
    { H: 3, Hkv: 1, dk: 20, dv: 20, causal: true, cache: true, calls: [37, 1, 2] },
    { H: 2, Hkv: 1, dk: 32, dv: 16, causal: false, cache: false, mask: true, calls: [35] },
    // past one packed block of keys (256): the rows' softmax state carried between blocks
    { H: 2, Hkv: 1, dk: 8, dv: 8, causal: true, cache: true, calls: [280, 1, 3] },
    { H: 2, Hkv: 2, dk: 4, dv: 4, causal: false, cache: false, mask: true, calls: [300] },
    { H: 3, Hkv: 1, dk: 12, dv: 8, causal: true, cache: false, window: 37, calls: [300] },
  ];
  for (const k of cases)
    it(`H=${k.H} Hkv=${k.Hkv} dk=${k.dk}${"dv" in k ? ` dv=${k.dv}` : ""}${k.causal ? " causal" : ""}${"window" in k ? ` window=${k.window}` : ""}${k.cache ? " cached" : ""}${k.bias ? " bias" : ""}${k.mask ? " mask" : ""} rows=${k.calls.join("+")}`, () =>
      check(k.dk * 10 + k.H, (c) => {
        const args = [c.act(k.H * k.dk), c.act(k.Hkv * k.dk), c.act(k.Hkv * ("dv" in k ? k.dv : k.dk + 1))];
        const attrs: Record<string, unknown> = { heads: k.H, kv_heads: k.Hkv, scale: 0.4, causal: k.causal, cache: k.cache, ...("window" in k ? { window: k.window } : {}) };
        if (k.bias) {
          args.push(c.param([8, k.H]));
          Object.assign(attrs, { bias: true, bias_bidirectional: !k.causal, bias_buckets: 8, bias_max_distance: 20 });
        }
        if (k.mask) {
          args.push(c.mask());
          attrs.mask = true;
        }
        return c.b.add("attention", args, attrs as never);
      }, k.calls, Math.max(32, k.calls.reduce((a, b) => a + b, 0))));
});
