// f32x4 versions of the activations for the matrix kernels' epilogues: four outputs at once
// instead of four calls of the scalar library functions. exp is Cephes' expf (range reduction by
// ln 2 in two parts, a degree-5 polynomial, 2^n from the exponent bits): ~1 ulp on [-87, 88].

import { type Expr, WasmModule, createType, v128 } from "./wasm.js";

const splat = (wm: WasmModule, c: number) => wm.m.f32x4.splat(wm.m.f32.const(c));

/** exp(x) on f32x4, as a generated function `vexp(x)`. */
export function vexp(wm: WasmModule): string {
  return wm.ensure("vexp", () => {
    const m = wm.m;
    const X = 0, N = 1, P = 2, T = 3;
    const get = (l: number) => m.local.get(l, v128);
    // magic = 1.5·2^23: x·log2(e) + magic rounds to the nearest integer n (ties to even, as
    // f32x4.nearest) and leaves n in the low mantissa bits, bits(t) = 0x4B400000 + n
    const magic = 12582912;
    const body: Expr[] = [
      // beyond these exp over/underflows: clamp so 2^n stays an f32 exponent (exp(-87.3) ≈ 1e-38);
      // pmin/pmax are single instructions (min/max order NaNs and zeros: several)
      m.local.set(X, m.f32x4.pmax(m.f32x4.pmin(get(X), splat(wm, 88.3762626647949)), splat(wm, -87.3365447505531))),
      m.local.set(T, m.f32x4.add(m.f32x4.mul(get(X), splat(wm, 1.44269504088896341)), splat(wm, magic))),
      m.local.set(N, m.f32x4.sub(get(T), splat(wm, magic))),
      m.local.set(X, m.f32x4.sub(get(X), m.f32x4.mul(get(N), splat(wm, 0.693359375)))),
      m.local.set(X, m.f32x4.sub(get(X), m.f32x4.mul(get(N), splat(wm, -2.12194440e-4)))),
      m.local.set(P, splat(wm, 1.9875691500e-4)),
    ];
    for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1])
      body.push(m.local.set(P, m.f32x4.add(m.f32x4.mul(get(P), get(X)), splat(wm, c))));
    // p·x² + x + 1, times 2^n (n + 127 shifted into the exponent field)
    body.push(m.local.set(P, m.f32x4.add(m.f32x4.add(m.f32x4.mul(get(P), m.f32x4.mul(get(X), get(X))), get(X)), splat(wm, 1))));
    const pow2n = m.i32x4.shl(m.i32x4.add(get(T), m.i32x4.splat(m.i32.const(127 - 0x4b400000))), m.i32.const(23));
    body.push(m.f32x4.mul(get(P), pow2n));
    m.addFunction("vexp", createType([v128]), v128, [v128, v128, v128], m.block(null, body, v128));
  });
}

/**
 * The generated f32x4 → f32x4 function for an activation, or undefined where there is none
 * (gelu with erf: the epilogue calls the scalar library function per lane).
 */
export function vectorActivation(wm: WasmModule, act: string): string | undefined {
  const m = wm.m;
  const x = () => m.local.get(0, v128);
  const one = () => splat(wm, 1);
  const define = (name: string, body: () => Expr) => wm.ensure(name, () => m.addFunction(name, createType([v128]), v128, [], body()));
  switch (act) {
    case "relu":
      return define("vact_relu", () => m.f32x4.pmax(x(), m.v128.const(new Array(16).fill(0))));
    case "silu": {
      const exp = vexp(wm);
      // x / (1 + e^-x)
      return define("vact_silu", () => m.f32x4.div(x(), m.f32x4.add(one(), m.call(exp, [m.f32x4.neg(x())], v128))));
    }
    case "gelu_tanh": {
      const exp = vexp(wm);
      // 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), tanh(u) = 1 − 2/(e^{2u} + 1)
      return define("vact_gelu_tanh", () => {
        const x3 = m.f32x4.mul(x(), m.f32x4.mul(x(), x()));
        const u2 = m.f32x4.mul(splat(wm, 2 * 0.7978845608028654), m.f32x4.add(x(), m.f32x4.mul(splat(wm, 0.044715), x3)));
        const tanh = m.f32x4.sub(one(), m.f32x4.div(splat(wm, 2), m.f32x4.add(m.call(exp, [u2], v128), one())));
        return m.f32x4.mul(m.f32x4.mul(splat(wm, 0.5), x()), m.f32x4.add(one(), tanh));
      });
    }
    default:
      return undefined;
  }
}
