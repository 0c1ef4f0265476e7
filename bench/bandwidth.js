// Read bandwidth of several cores together over one shared wasm memory: the decode roofline of a
// model run on N threads. Each of N workers reads its own slice of [at, at + bytes) with the
// roofline's v128 sum (compiler/measure/roofline.ts bandwidthModule), all released at once; a
// round's figure is the bytes over the time from the first worker's start to the last one's end
// (one clock for all: performance.timeOrigin + now()).

import { Worker } from "node:worker_threads";
import { bandwidthModule } from "../dist/compiler/measure/roofline.js";

const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { memory, wasm, at, len, control } = workerData;
const flag = new Int32Array(control);
WebAssembly.instantiate(wasm, { env: { memory } }).then(({ instance }) => {
  const sum = instance.exports.sum;
  sum(at, at + Math.min(len, 1 << 16), len); // warm up the function
  parentPort.postMessage({ ready: true });
  for (let round = 1; ; round++) {
    Atomics.wait(flag, 0, round - 1);
    if (Atomics.load(flag, 0) < 0) return;
    const t0 = performance.timeOrigin + performance.now();
    const x = sum(at, at + len, len);
    const t1 = performance.timeOrigin + performance.now();
    parentPort.postMessage({ round, t0, t1, ok: Number.isInteger(x) });
  }
});
`;

/**
 * GB/s of `threads` cores reading [at, at + bytes) of `memory` (a shared WebAssembly.Memory)
 * side by side, one slice each: the median of `repeats` rounds, and every round's figure.
 */
export async function parallelReadBandwidth(memory, at, bytes, threads, repeats = 5) {
  if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error("parallelReadBandwidth: the memory is not shared");
  const wasm = bandwidthModule(memory.buffer.byteLength / 65536, true, 1);
  const control = new SharedArrayBuffer(4);
  const flag = new Int32Array(control);
  const len = Math.floor(bytes / threads / 128) * 128;
  const workers = [];
  const inbox = [];
  let wake = () => {};
  const next = () => new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : (wake = () => resolve(inbox.shift()))));
  for (let t = 0; t < threads; t++) {
    const w = new Worker(WORKER, { eval: true, workerData: { memory, wasm, at: at + t * len, len, control } });
    w.on("message", (m) => (inbox.push(m), wake()));
    w.on("error", (e) => (inbox.push({ error: e }), wake()));
    workers.push(w);
  }
  try {
    for (let t = 0; t < threads; t++) {
      const m = await next();
      if (m.error) throw m.error;
    }
    const rounds = [];
    for (let r = 1; r <= repeats; r++) {
      Atomics.store(flag, 0, r);
      Atomics.notify(flag, 0);
      const done = [];
      for (let t = 0; t < threads; t++) {
        const m = await next();
        if (m.error) throw m.error;
        if (!m.ok) throw new Error("bandwidth sum is not an integer");
        done.push(m);
      }
      const seconds = (Math.max(...done.map((d) => d.t1)) - Math.min(...done.map((d) => d.t0))) / 1000;
      rounds.push((threads * len) / seconds / 1e9);
    }
    const sorted = [...rounds].sort((a, b) => a - b);
    return { gbps: sorted[sorted.length >> 1], rounds };
  } finally {
    Atomics.store(flag, 0, -1);
    Atomics.notify(flag, 0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
