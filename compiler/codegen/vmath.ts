// f32x4 versions of the activations for the matrix kernels' epilogues: four outputs at once
// instead of four calls of the scalar library functions. exp is Cephes' expf (range reduction by
// ln 2 in two parts, a degree-5 polynomial, 2^n from the exponent bits): ~1 ulp on [-87, 88].

import { type Expr, WasmModule, createType, f32, i32, none, v128 } from "./wasm.js";

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
 * erf(x) on f32x4, as a generated function `verf(x)`: the odd/even rational approximation Eigen and
 * XLA use for float erf (x clamped to [-4, 4], where erf is ±1 in f32), within 4.3e-7 of erf;
 * the result clamped to [-1, 1], so that 1 + erf(x) is never negative. NaN stays NaN.
 */
export function verf(wm: WasmModule): string {
  return wm.ensure("verf", () => {
    const m = wm.m;
    const X = 0, X2 = 1;
    const get = (l: number) => m.local.get(l, v128);
    const horner = (cs: number[]) => {
      let p = splat(wm, cs[0]);
      for (const c of cs.slice(1)) p = m.f32x4.add(m.f32x4.mul(p, get(X2)), splat(wm, c));
      return p;
    };
    // numerator x·P(x²) and denominator Q(x²), highest power first
    const P = [-2.72614225801306e-10, 2.77068142495902e-8, -2.10102402082508e-6, -5.69250639462346e-5, -7.34990630326855e-4, -2.95459980854025e-3, -1.60960333262415e-2];
    const Q = [-1.45660718464996e-5, -2.13374055278905e-4, -1.68282697438203e-3, -7.37332916720468e-3, -1.42647390514189e-2];
    const body = m.block(null, [
      m.local.set(X, m.f32x4.pmax(m.f32x4.pmin(get(X), splat(wm, 4)), splat(wm, -4))),
      m.local.set(X2, m.f32x4.mul(get(X), get(X))),
      m.f32x4.pmax(m.f32x4.pmin(m.f32x4.div(m.f32x4.mul(get(X), horner(P)), horner(Q)), splat(wm, 1)), splat(wm, -1)),
    ], v128);
    m.addFunction("verf", createType([v128]), v128, [v128], body);
  });
}

/** The generated f32x4 → f32x4 function for an activation, or undefined where there is none. */
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
    case "gelu": {
      const erf = verf(wm);
      // 0.5·x·(1 + erf(x/√2))
      return define("vact_gelu", () => m.f32x4.mul(m.f32x4.mul(splat(wm, 0.5), x()), m.f32x4.add(one(), m.call(erf, [m.f32x4.mul(x(), splat(wm, Math.SQRT1_2))], v128))));
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

/**
 * tanh(x) on f32x4, as a generated function `vtanh(x)`, after Cephes' tanhf on a = |x|: an odd
 * polynomial where a < 0.625, else 1 − 2/(e^{2a} + 1) (saturating at 1); x's sign set last.
 */
export function vtanh(wm: WasmModule): string {
  const exp = vexp(wm);
  return wm.ensure("vtanh", () => {
    const m = wm.m;
    const X = 0, A = 1, S = 2;
    const get = (l: number) => m.local.get(l, v128);
    let p = splat(wm, -5.70498872745e-3);
    for (const c of [2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1]) p = m.f32x4.add(m.f32x4.mul(p, get(S)), splat(wm, c));
    const small = m.f32x4.add(m.f32x4.mul(m.f32x4.mul(p, get(S)), get(A)), get(A));
    const large = m.f32x4.sub(splat(wm, 1), m.f32x4.div(splat(wm, 2), m.f32x4.add(m.call(exp, [m.f32x4.add(get(A), get(A))], v128), splat(wm, 1))));
    const sign = m.v128.and(get(X), m.i32x4.splat(m.i32.const(0x80000000 | 0)));
    const body = m.block(null, [
      m.local.set(A, m.f32x4.abs(get(X))),
      m.local.set(S, m.f32x4.mul(get(A), get(A))),
      m.v128.or(m.v128.bitselect(small, large, m.f32x4.lt(get(A), splat(wm, 0.625))), sign),
    ], v128);
    m.addFunction("vtanh", createType([v128]), v128, [v128, v128], body);
  });
}

/**
 * A generated kernel `name(x, out, n, c)`: out[i] = f(x[i], c) for n floats, four at a time and
 * the tail one lane at a time (so every value takes the same f32x4 code). `f` builds the f32x4
 * result from getters of x's lanes and of c splatted.
 */
export function mapKernel(wm: WasmModule, name: string, f: (x: () => Expr, c: () => Expr) => Expr): string {
  return wm.ensure(name, () => {
    const m = wm.m;
    const [X, OUT, N, C, I, END] = [0, 1, 2, 3, 4, 5];
    const get = (l: number) => m.local.get(l, i32);
    const at = (base: number) => m.i32.add(get(base), m.i32.shl(get(I), m.i32.const(2)));
    const c = () => m.f32x4.splat(m.local.get(C, f32));
    const body = m.block(null, [
      m.local.set(END, m.i32.and(get(N), m.i32.const(-4))),
      wm.loop(`${name}_vec`, I, m.i32.const(0), () => get(END), 4, [m.v128.store(0, 4, at(OUT), f(() => m.v128.load(0, 4, at(X)), c))]),
      wm.loop(`${name}_tail`, I, get(END), () => get(N), 1, [m.v128.store32_lane(0, 4, 0, at(OUT), f(() => m.v128.load32_splat(0, 4, at(X)), c))]),
    ]);
    m.addFunction(name, createType([i32, i32, i32, f32]), none, [i32, i32], body);
  });
}
