// The f32x4 exp behind the fused activations, against Math.exp on every kind of input.
import { describe, expect, it } from "vitest";
import { geluErf } from "../../ir/ops.js";
import { vectorActivation, verf, vexp, vtanh } from "../../compiler/codegen/vmath.js";
import { WasmModule, createType, i32, none, v128 } from "../../compiler/codegen/wasm.js";

/** Instantiates fn(v128) → v128 applied in place to n floats at address 0 (n a multiple of 4). */
async function vectorFn(define: (wm: WasmModule) => string, n: number) {
  const wm = new WasmModule();
  const m = wm.m;
  const fn = define(wm);
  const at = () => m.local.get(0, i32);
  const body = wm.loop("apply", 0, m.i32.const(0), n * 4, 16, [m.v128.store(0, 4, at(), m.call(fn, [m.v128.load(0, 4, at())], v128))]);
  m.addFunction("apply", createType([]), none, [i32], body);
  const pages = 1 + Math.ceil((n * 4) / 65536);
  const { binary } = wm.finish(pages, new Map([["apply", "apply"]]));
  wm.dispose();
  const memory = new WebAssembly.Memory({ initial: pages, maximum: 65536 });
  const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
  return (xs: number[]) => {
    new Float32Array(memory.buffer, 0, n).set(xs);
    (instance.exports.apply as () => void)();
    return Array.from(new Float32Array(memory.buffer, 0, n));
  };
}

describe("vexp", () => {
  it("is within 2 ulp of exp on [-87, 88], clamps beyond, and passes NaN through", async () => {
    const xs = Array.from({ length: 4000 }, (_, i) => Math.fround(-87.3 + (175.6 * i) / 3999));
    const specials = [0, -0, 1, -1, 0.5, Math.fround(Math.LN2), -100, -1e30, 100, 1e30, NaN, -Infinity];
    const all = [...xs, ...specials];
    const exp = await vectorFn((wm) => vexp(wm), all.length);
    const got = exp(all);
    for (let i = 0; i < xs.length; i++) {
      const want = Math.fround(Math.exp(xs[i]));
      expect(Math.abs(got[i] - want) / want, `exp(${xs[i]})`).toBeLessThanOrEqual(2 * 2 ** -23);
    }
    const s = (x: number) => got[xs.length + specials.findIndex((y) => Object.is(x, y))];
    expect(s(0)).toBe(1);
    expect(s(-0)).toBe(1);
    for (const x of [-100, -1e30, -Infinity]) expect(s(x)).toBeLessThan(1.2e-38);
    for (const x of [100, 1e30]) expect(s(x)).toBeGreaterThan(2e38);
    expect(s(NaN)).toBeNaN();
  });

  it("gives silu and gelu_tanh to float tolerance, saturating at large |x|", async () => {
    const xs = [...Array.from({ length: 400 }, (_, i) => -20 + (40 * i) / 399), -200, 200, -1e20, 1e20, NaN, 0, 0, 0];
    const silu = (await vectorFn((wm) => vectorActivation(wm, "silu")!, xs.length))(xs);
    const gelu = (await vectorFn((wm) => vectorActivation(wm, "gelu_tanh")!, xs.length))(xs);
    xs.forEach((x, i) => {
      if (Number.isNaN(x)) return void expect([silu[i], gelu[i]]).toEqual([NaN, NaN]);
      const s = x / (1 + Math.exp(-x));
      const g = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      expect(Math.abs(silu[i] - s), `silu(${x})`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(s)));
      expect(Math.abs(gelu[i] - g), `gelu_tanh(${x})`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(g)));
    });
  });
});

describe("verf and the erf gelu", () => {
  it("erf is within 5e-7 of erf on [-6, 6], ±1 beyond, never past ±1; gelu within 1.5e-6·max(1, |gelu|); NaN passes", async () => {
    const xs = Array.from({ length: 4800 }, (_, i) => Math.fround(-6 + (12 * i) / 4799));
    const specials = [0, 1e-30, -1e-30, 50, -50, 1e30, -1e30, NaN];
    const all = [...xs, ...specials];
    const erf = (await vectorFn((wm) => verf(wm), all.length))(all);
    const gelu = (await vectorFn((wm) => vectorActivation(wm, "gelu")!, all.length))(all);
    // erf(x) = 2·gelu(x√2) / (x√2) − 1, from the interpreter's gelu (in double precision)
    const erfOf = (x: number) => (x === 0 ? 0 : (2 * geluErf(x * Math.SQRT2)) / (x * Math.SQRT2) - 1);
    all.forEach((x, i) => {
      if (Number.isNaN(x)) return void expect([erf[i], gelu[i]]).toEqual([NaN, NaN]);
      const g = geluErf(x);
      expect(Math.abs(gelu[i] - g), `gelu(${x})`).toBeLessThanOrEqual(1.5e-6 * Math.max(1, Math.abs(g)));
      expect(Math.abs(erf[i]), `|erf(${x})|`).toBeLessThanOrEqual(1);
      if (Math.abs(x) >= 6) expect(erf[i], `erf(${x})`).toBe(Math.sign(x));
      else expect(Math.abs(erf[i] - erfOf(x)), `erf(${x})`).toBeLessThanOrEqual(5e-7);
    });
    const at = (x: number) => gelu[xs.length + specials.indexOf(x)];
    expect([at(-1e30), at(1e30), at(-50), at(50)]).toEqual([-0, Math.fround(1e30), -0, 50]);
  });
});

describe("vtanh", () => {
  it("is within 3 ulp of tanh on both branches, odd, saturating at ±1, and passes NaN through", async () => {
    const xs = Array.from({ length: 4000 }, (_, i) => Math.fround(-12 + (24 * i) / 3999));
    const specials = [0, -0, 0.625, -0.625, Math.fround(0.6249), 1e-30, -1e-30, 50, -50, 1e30, -1e30, NaN];
    const all = [...xs, ...specials];
    const got = (await vectorFn((wm) => vtanh(wm), all.length))(all);
    all.forEach((x, i) => {
      if (Number.isNaN(x)) return void expect(got[i]).toBeNaN();
      const want = Math.fround(Math.tanh(x));
      expect(Math.abs(got[i] - want), `tanh(${x})`).toBeLessThanOrEqual(3 * 2 ** -24 * Math.max(Math.abs(want), 2 ** -126));
    });
    expect(Object.is(got[xs.length + 1], -0)).toBe(true);
  });
});
