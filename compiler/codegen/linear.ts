// Shape-specialised SIMD128 matrix kernels: y[rows, N] = x[rows, K] · w[N, K]ᵀ (+ b).
// K and N are compile-time constants, so every loop bound except `rows` is constant, the
// K tail is unrolled, and row offsets are load immediates. Register tiles: 4 rows × 2
// outputs while 4 rows remain (prefill), 1 row × 4 outputs after (decode is a GEMV).

import { type Expr, WasmModule, createType, i32, none, v128 } from "./wasm.js";

// parameters and locals of every generated linear kernel
const X = 0, W = 1, B = 2, OUT = 3, ROWS = 4;
const R = 5, N_ = 6, KB = 7, PX = 8, PW = 9, ROWS4 = 10;
const XV = 11; // 4 v128 locals for x vectors
const WV = 15; // 4 v128 locals for w vectors
const ACC = 19; // 16 v128 accumulators
const LOCALS = [i32, i32, i32, i32, i32, i32, ...Array<number>(24).fill(v128)];

export function linearKernel(wm: WasmModule, K: number, N: number, bias: boolean): string {
  const name = `linear_k${K}_n${N}${bias ? "_bias" : ""}`;
  return wm.ensure(name, () => {
    const m = wm.m;
    const get = (l: number, t = i32) => m.local.get(l, t);
    const K4 = K - (K % 4);
    const rowBytes = K * 4;

    const tile = (rowsT: number, cols: number): Expr => {
      const body: Expr[] = [
        m.local.set(PX, m.i32.add(get(X), m.i32.mul(get(R), wm.c32(rowBytes)))),
        m.local.set(PW, m.i32.add(get(W), m.i32.mul(get(N_), wm.c32(rowBytes)))),
      ];
      for (let a = 0; a < rowsT * cols; a++) body.push(m.local.set(ACC + a, m.v128.const([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])));
      if (K4 > 0) {
        const step: Expr[] = [];
        for (let i = 0; i < rowsT; i++) step.push(m.local.set(XV + i, m.v128.load(i * rowBytes, 4, m.i32.add(get(PX), get(KB)))));
        for (let j = 0; j < cols; j++) step.push(m.local.set(WV + j, m.v128.load(j * rowBytes, 4, m.i32.add(get(PW), get(KB)))));
        for (let i = 0; i < rowsT; i++)
          for (let j = 0; j < cols; j++) {
            const a = ACC + i * cols + j;
            step.push(m.local.set(a, m.f32x4.add(get(a, v128), m.f32x4.mul(get(XV + i, v128), get(WV + j, v128)))));
          }
        body.push(wm.loop(`k${rowsT}x${cols}`, KB, wm.c32(0), K4 * 4, 16, step));
      }
      for (let i = 0; i < rowsT; i++)
        for (let j = 0; j < cols; j++) {
          const acc = get(ACC + i * cols + j, v128);
          let s = m.f32.add(m.f32.add(m.f32x4.extract_lane(acc, 0), m.f32x4.extract_lane(get(ACC + i * cols + j, v128), 1)),
            m.f32.add(m.f32x4.extract_lane(get(ACC + i * cols + j, v128), 2), m.f32x4.extract_lane(get(ACC + i * cols + j, v128), 3)));
          for (let t = K4; t < K; t++)
            s = m.f32.add(s, m.f32.mul(m.f32.load(i * rowBytes + t * 4, 4, get(PX)), m.f32.load(j * rowBytes + t * 4, 4, get(PW))));
          if (bias) s = m.f32.add(s, m.f32.load(j * 4, 4, m.i32.add(get(B), m.i32.shl(get(N_), wm.c32(2)))));
          // out[(r+i)*N + n + j]
          const addr = m.i32.add(get(OUT), m.i32.shl(m.i32.add(m.i32.mul(get(R), wm.c32(N)), get(N_)), wm.c32(2)));
          body.push(m.f32.store((i * N + j) * 4, 4, addr, s));
        }
      return m.block(null, body);
    };

    const cols = (rowsT: number, wide: number): Expr[] => {
      const main = N - (N % wide);
      const out: Expr[] = [];
      if (main > 0) out.push(wm.loop(`n${rowsT}x${wide}`, N_, wm.c32(0), main, wide, [tile(rowsT, wide)]));
      if (main < N) out.push(wm.loop(`n${rowsT}x1`, N_, wm.c32(main), N, 1, [tile(rowsT, 1)]));
      return out;
    };

    const body = m.block(null, [
      m.local.set(ROWS4, m.i32.and(get(ROWS), wm.c32(~3))),
      wm.loop("r4", R, wm.c32(0), () => get(ROWS4), 4, cols(4, 2)),
      wm.loop("r1", R, get(ROWS4), () => get(ROWS), 1, cols(1, 4)),
    ]);
    m.addFunction(name, createType([i32, i32, i32, i32, i32]), none, LOCALS, body);
  });
}
