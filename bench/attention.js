// Prefill attention alone: causal attention over P query rows (LLaMA-110M's 12 heads of 64, and
// Qwen2.5-0.5B's 14 heads over 2 KV heads), GFLOP/s counting 2 flops per multiply-add of the
// scores and the values. One thread, the module the runtime picks (relaxed SIMD with
// --experimental-wasm-relaxed-simd).
//
//   node --no-liftoff bench/attention.js [--rows 128,512,1024] [--repeats N]

import { cliOptions } from "./common.js";
import { timeAttention } from "./kernels.js";

const { str, opt } = cliOptions();
const ROWS = str("--rows", "128,512,1024").split(",").map(Number);
const REPEATS = opt("--repeats", 5);

console.log("shape                   rows   ms/call   GFLOP/s");
for (const [name, H, Hkv, d] of [["12 heads x 64", 12, 12, 64], ["14 heads / 2 KV x 64", 14, 2, 64]])
  for (const rows of ROWS) {
    const seconds = await timeAttention(H, Hkv, d, rows, { repeats: REPEATS });
    const flops = H * ((rows * (rows + 1)) / 2) * 2 * d * 2;
    console.log(`${name.padEnd(22)} ${String(rows).padStart(5)} ${(seconds * 1e3).toFixed(2).padStart(9)} ${(flops / seconds / 1e9).toFixed(1).padStart(9)}`);
  }
