// Compile time and peak memory on real checkpoint files: GPT-2-small (f32, as the hub ships it)
// and a TinyLlama-1.1B shape (bf16), each to fp32 and int4, every compile a fresh process
// (`wasmformer compile` as a user runs it). The random checkpoints are written once by
// bench/make-checkpoint.js into --dir (default: a folder under the system temp dir, kept).
//
//   node bench/compile.js [--models gpt2,tinyllama] [--dir DIR]

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliOptions, mergeResults, procStatus } from "./common.js";

const here = (f) => fileURLToPath(new URL(f, import.meta.url));

// the child: one CLI compile in this process, then its peak RSS (VmHWM) on the last stderr line
if (process.argv[2] === "--child") {
  const { main } = await import("../dist/compiler/cli.js");
  const rc = await main(process.argv.slice(3));
  process.stderr.write(`\n${JSON.stringify({ rc, peakRss: procStatus("VmHWM") })}\n`);
  process.exit(rc);
}

const { str, list } = cliOptions();
const dir = str("--dir", join(tmpdir(), "wasmformer-bench-checkpoints"));
const SHAPES = {
  gpt2: { wf: "examples/gpt2.wf", dtype: "f32", name: "gpt2-small-random" },
  tinyllama: { wf: "examples/llama.wf", dtype: "bf16", name: "tinyllama-1.1b-random" },
};
const rows = [];
for (const model of list("--models", "gpt2,tinyllama")) {
  const shape = SHAPES[model];
  if (!shape) throw new Error(`--models: unknown ${model} (${Object.keys(SHAPES).join(", ")})`);
  const ckpt = join(dir, `${model}-${shape.dtype}`);
  if (!existsSync(join(ckpt, "model.safetensors"))) {
    const r = spawnSync(process.execPath, [here("./make-checkpoint.js"), model, ckpt, "--dtype", shape.dtype], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`make-checkpoint ${model} failed`);
  }
  for (const quant of ["fp32", "int4"]) {
    const out = mkdtempSync(join(tmpdir(), "wasmformer-compile-"));
    const args = ["compile", here(`../${shape.wf}`), "--weights", ckpt, "--out", join(out, "a"), ...(quant === "fp32" ? [] : ["--quantize", quant])];
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [here("./compile.js"), "--child", ...args], { encoding: "utf8" });
    const seconds = (performance.now() - t0) / 1000;
    rmSync(out, { recursive: true, force: true });
    const last = JSON.parse(r.stderr.trim().split("\n").pop());
    const message = r.stderr.split("\n").find((l) => /^(compiled|error)/.test(l)) ?? "";
    console.log(`${model} ${quant}: ${seconds.toFixed(1)} s, peak RSS ${(last.peakRss / 2 ** 30).toFixed(2)} GiB, exit ${last.rc}\n  ${message}`);
    const row = (metric, value, unit) => rows.push({ model: shape.name, system: "wasmformer", variant: `compile-${quant}`, threads: 1, metric, value, unit });
    row(last.rc === 0 ? "compile_time" : "compile_refused_time", seconds, "s");
    row("compile_peak_rss", last.peakRss, "bytes");
  }
}
mergeResults(rows);
