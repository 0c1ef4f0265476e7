// The machine's ceilings, measured in wasm on this host: the f32x4 multiply-add issue rate, the
// 8-bit dot-product rate (i32x4.dot_i16x8_s on widened bytes, as the integer kernels run it),
// and the SIMD read bandwidth over a memory range. `wasmformer profile` and `npm run bench` place
// kernels against these.

import { assembleText } from "../codegen/wasm.js";

const now = () => performance.now() / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function timeLoop(wat: string, opsPerIteration: number, iterations = 5_000_000, relaxed = false): Promise<number> {
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(assembleText(wat, { relaxed })));
  const run = instance.exports.run as (n: number) => number;
  run(1000);
  const s: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = now();
    run(iterations);
    s.push(now() - t0);
  }
  return (iterations * opsPerIteration) / median(s) / 1e9;
}

/**
 * f32x4 multiply-add throughput (GFLOP/s, median of 5) in the matrix kernels' pattern: 10
 * independent accumulators, each a += x·w with x and w in registers (the f32 tile's inner step),
 * so the measure is issue rate, not latency (14 of the 16 xmm registers).
 */
export function peakMaddGflops(): Promise<number> {
  const A = 10;
  const locals = Array.from({ length: A }, (_, i) => `(local $a${i} v128)`).join(" ");
  const body = Array.from({ length: A }, (_, i) => `(local.set $a${i} (f32x4.add (local.get $a${i}) (f32x4.mul (local.get $x${i % 2}) (local.get $w${(i >> 1) % 2}))))`).join("\n");
  const sum = Array.from({ length: A }, (_, i) => `(local.get $a${i})`).reduce((a, b) => `(f32x4.add ${a} ${b})`);
  const wat = `(module (func (export "run") (param $n i32) (result f32) (local $x0 v128) (local $x1 v128) (local $w0 v128) (local $w1 v128) ${locals}
    (local.set $x0 (f32x4.splat (f32.const 1.0001))) (local.set $x1 (f32x4.splat (f32.const 0.9999)))
    (local.set $w0 (f32x4.splat (f32.const 0.001))) (local.set $w1 (f32x4.splat (f32.const -0.001)))
    (loop $l ${body} (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (f32x4.extract_lane 0 ${sum})))`;
  return timeLoop(wat, A * 2 * 4); // a multiply and an add per accumulator, 4 lanes each
}

const DOT_CHAINS = 6;

/**
 * A loop of DOT_CHAINS independent chains of 8-bit dot products: `step(i)` adds one step's products
 * to chain i's i32 sums $s{i} from its bytes $a{i} and the shared $b and $c, then moves $a{i} on.
 */
function dotChains(step: (i: number) => string): string {
  const C = DOT_CHAINS;
  const locals = Array.from({ length: C }, (_, i) => `(local $a${i} v128) (local $s${i} v128)`).join(" ");
  const init = Array.from({ length: C }, (_, i) => `(local.set $a${i} (i8x16.splat (i32.const ${i + 1})))`).join(" ");
  const sum = Array.from({ length: C }, (_, i) => `(local.get $s${i})`).reduce((a, b) => `(i32x4.add ${a} ${b})`);
  const next = (i: number) => `(local.set $a${i} (i8x16.add (local.get $a${i}) (local.get $b)))`;
  return `(module (func (export "run") (param $n i32) (result i32)
    (local $b v128) (local $c v128) ${locals}
    (local.set $b (i8x16.splat (i32.const 3))) (local.set $c (i8x16.splat (i32.const 5))) ${init}
    (loop $l ${Array.from({ length: C }, (_, i) => `${step(i)} ${next(i)}`).join("\n")} (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (i32x4.extract_lane 0 ${sum})))`;
}

/**
 * 8-bit multiply-add throughput (GOP/s, counting a multiply and an add per byte pair): 6
 * independent chains of i32x4.dot_i16x8_s over bytes widened to i16, 16 byte pairs a chain step.
 */
export function peakDotGops(): Promise<number> {
  const wat = dotChains(
    (i) =>
      `(local.set $s${i} (i32x4.add (local.get $s${i}) (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $a${i})) (i16x8.extend_low_i8x16_s (local.get $b))) ` +
      `(i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $a${i})) (i16x8.extend_high_i8x16_s (local.get $b))))))`,
  );
  return timeLoop(wat, DOT_CHAINS * 16 * 2, 2_000_000);
}

/**
 * The relaxed module's 8-bit multiply-add throughput on 4-bit weights (GOP/s, a multiply and an
 * add a byte pair), in its integer kernels' pattern: 6 independent chains, each step two
 * i16x8.relaxed_dot_i8x16_i7x16_s (32 byte pairs) added and widened pairwise into i32 sums. Needs
 * a host with relaxed SIMD.
 */
export function peakRelaxedDotGops(): Promise<number> {
  const wat = dotChains(
    (i) =>
      `(local.set $s${i} (i32x4.add (local.get $s${i}) (i32x4.extadd_pairwise_i16x8_s (i16x8.add (i16x8.relaxed_dot_i8x16_i7x16_s (local.get $a${i}) (local.get $b)) ` +
      `(i16x8.relaxed_dot_i8x16_i7x16_s (local.get $a${i}) (local.get $c))))))`,
  );
  return timeLoop(wat, DOT_CHAINS * 32 * 2, 2_000_000, true);
}

/**
 * A module that sums `streams` ranges of an imported memory side by side with v128 loads:
 * sum(p, end, len) reads [p, end), [p + len, end + len), … (8 accumulators, 128 bytes an
 * iteration split over the streams; integer adds, so any bytes will do).
 */
export function bandwidthModule(pages: number, shared: boolean, streams = 1): Uint8Array<ArrayBuffer> {
  const per = 8 / streams;
  const loads = Array.from({ length: 8 }, (_, a) => {
    const s = Math.floor(a / per), at = (a % per) * 16;
    return `(local.set $a${a} (i32x4.add (local.get $a${a}) (v128.load offset=${at} (i32.add (local.get $p) (local.get $o${s})))))`;
  }).join("\n        ");
  const wat = `(module
  (import "env" "memory" (memory 1 ${shared ? `${pages} shared` : ""}))
  (func (export "sum") (param $p i32) (param $end i32) (param $len i32) (result i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local.set $o1 (local.get $len))
    (local.set $o2 (i32.mul (local.get $len) (i32.const 2)))
    (local.set $o3 (i32.mul (local.get $len) (i32.const 3)))
    (block $done
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (loop $l
        ${loads}
        (local.set $p (i32.add (local.get $p) (i32.const ${per * 16})))
        (br_if $l (i32.lt_u (local.get $p) (local.get $end)))))
    (local.set $a0 (i32x4.add (i32x4.add (i32x4.add (local.get $a0) (local.get $a1)) (i32x4.add (local.get $a2) (local.get $a3)))
                              (i32x4.add (i32x4.add (local.get $a4) (local.get $a5)) (i32x4.add (local.get $a6) (local.get $a7)))))
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $a0)) (i32x4.extract_lane 1 (local.get $a0)))
             (i32.add (i32x4.extract_lane 2 (local.get $a0)) (i32x4.extract_lane 3 (local.get $a0))))))`;
  return assembleText(wat, { atomics: true });
}

/**
 * Read bandwidth (GB/s, median of `repeats`) over `bytes` of `memory` from `at`, with the stream
 * count (1, 2 or 4 ranges read side by side) that reads fastest here.
 */
export async function readBandwidth(memory: WebAssembly.Memory, at: number, bytes: number, repeats = 5): Promise<number> {
  const pages = memory.buffer.byteLength / 65536;
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  let best = 0;
  for (const streams of [1, 2, 4]) {
    const instance = await WebAssembly.instantiate(await WebAssembly.compile(bandwidthModule(pages, shared, streams)), { env: { memory } });
    const sum = instance.exports.sum as (p: number, end: number, len: number) => number;
    const len = Math.floor(bytes / streams / 128) * 128;
    if (len === 0) continue;
    sum(at, at + Math.min(len, 1 << 16), len);
    const gbps: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = now();
      sum(at, at + len, len);
      gbps.push((streams * len) / (now() - t0) / 1e9);
    }
    best = Math.max(best, median(gbps));
  }
  return best;
}
