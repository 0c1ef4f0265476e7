// `wasmformer bench` and `wasmformer compare` on the bundled tiny GPT-2: every output format well
// formed, rows for each test × depth × thread count, and compare's speed-ups and noise flags.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.js";
import { type BenchRow, compareRows } from "../../compiler/cli/bench.js";
import { benchModel } from "../../runtime/bench.js";
import { loadArtifact } from "../../runtime/node.js";
import { root } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "wf-bench-"));
const artifact = join(dir, "tiny");

async function cli(...args: string[]) {
  let out = "", err = "";
  const code = await main(args, { stdout: { write: (s) => (out += s) }, stderr: { write: (s) => (err += s) } });
  return { code, out, err };
}

beforeAll(async () => {
  const r = await cli("compile", join(root, "examples/gpt2.wf"), "--weights", join(root, "examples/tiny-gpt2"), "--out", artifact);
  expect(r.code, r.err).toBe(0);
});

const ROW_FIELDS: [keyof BenchRow, string][] = [
  ["artifact", "string"], ["artifact_sha256", "string"], ["model", "string"], ["test", "string"], ["kind", "string"], ["tokens", "number"], ["depth", "number"],
  ["threads", "number"], ["variant", "string"], ["repetitions", "number"], ["tokens_per_s", "number"], ["sd", "number"], ["cpu", "string"], ["host", "string"],
];

describe("wasmformer bench", () => {
  it("json: a row per test, depth and thread count, each well formed", async () => {
    const r = await cli("bench", artifact, "-p", "16,32", "-n", "4", "-d", "0,8", "-r", "2", "-t", "1,2", "-o", "json");
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out) as BenchRow[];
    expect(rows.map((x) => `${x.test}/${x.threads}`)).toEqual(
      [1, 2].flatMap((t) => ["pp16", "pp32", "tg4", "pp16 @ d8", "pp32 @ d8", "tg4 @ d8"].map((n) => `${n}/${t}`)),
    );
    for (const row of rows) {
      for (const [k, type] of ROW_FIELDS) expect(typeof row[k], `${k} of ${row.test}`).toBe(type);
      expect(row.artifact_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(row.tokens_per_s).toBeGreaterThan(0);
      expect(row.sd).toBeGreaterThanOrEqual(0);
      expect(row.repetitions).toBe(2);
      expect(row.variant).toBe(row.threads > 1 ? "simd128+threads" : "simd128");
    }
    // progress on stderr: a warm-up and each repetition of each test
    expect(r.err.split("\n").filter((l) => l.startsWith("bench: ")).length).toBe(rows.length * 3);
  });

  it("md, csv and jsonl carry the same rows", async () => {
    const args = ["bench", artifact, "-p", "8", "-n", "2", "-r", "1"];
    const md = (await cli(...args, "-o", "md")).out.trim().split("\n");
    expect(md[0]).toMatch(/Node \d+.*sha-256 [0-9a-f]{12}/);
    expect(md.slice(2)).toEqual([expect.stringMatching(/^\| model \| test \|/), expect.stringMatching(/^\| --- /), expect.stringMatching(/^\| gpt2 \| pp8 \| 1 \| simd128 \| [\d.]+ ± [\d.]+ \|$/), expect.stringMatching(/^\| gpt2 \| tg2 \| 1 \|/)]);
    const csv = (await cli(...args, "-o", "csv")).out.trim().split("\n");
    expect(csv[0]).toBe("model,test,threads,variant,repetitions,tokens_per_s,sd,wasmformer_speedup,artifact_sha256,cpu,host");
    expect(csv.length).toBe(3);
    for (const line of csv.slice(1)) expect(line.split(",").length).toBeGreaterThanOrEqual(11);
    const jsonl = (await cli(...args, "-o", "jsonl")).out.trim().split("\n").map((l) => JSON.parse(l) as BenchRow);
    expect(jsonl.map((x) => x.test)).toEqual(["pp8", "tg2"]);
  });

  it("refuses a test past the artifact's context, and bad option values, in one line", async () => {
    const r = await cli("bench", artifact, "-p", "200", "-d", "100", "-r", "1");
    expect(r.code).not.toBe(0);
    expect(r.err.trim()).toMatch(/^error\[WF510\]: pp200 at depth 100 needs 300 positions; the artifact's context is 256$/);
    const bad = await cli("bench", artifact, "-p", "12,x");
    expect(bad.err.trim()).toMatch(/^error\[WF601\]: -p should be comma-separated positive integers, found 'x'$/);
  });

  it("--peer ort times ONNX Runtime Web on the ONNX export of the same weights, through the same loop", async () => {
    const r = await cli("bench", artifact, "-p", "8", "-n", "2", "-r", "1", "-o", "json", "--peer", "ort", "--model", join(root, "examples/gpt2.wf"), "--weights", join(root, "examples/tiny-gpt2"));
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out) as BenchRow[];
    expect(rows.map((x) => [x.test, x.variant.replace(/ [\d.]+ /, " V ")])).toEqual([
      ["pp8", "simd128"], ["tg2", "simd128"], ["pp8", "onnxruntime-web V wasm (all logits)"], ["tg2", "onnxruntime-web V wasm (all logits)"],
    ]);
    for (const row of rows) expect(row.tokens_per_s).toBeGreaterThan(0);
    // the two timed in turn: the peer's rows carry wasmformer's paired speed-up over it
    expect(rows.map((x) => x.wasmformer_speedup === undefined)).toEqual([true, true, false, false]);
    for (const [i, row] of rows.slice(2).entries()) expect(row.wasmformer_speedup).toBeCloseTo(rows[i].tokens_per_s / row.tokens_per_s, 6);
    expect(r.err).toMatch(/bench \(with ort\): tg2, 1 thread, repetition 1\/1/);
    const bad = await cli("bench", artifact, "--peer", "ort");
    expect(bad.err.trim()).toBe("error[WF604]: --peer needs --model MODEL.wf and --weights PATH (the sources of the artifact)");
  });

  it("benchModel leaves the model reset and feeds the same ids for a seed", async () => {
    const model = await loadArtifact(artifact);
    const rows = await benchModel(model, { prompt: [8], gen: [3], depths: [5], repetitions: 2 });
    expect(model.past).toBe(0);
    expect(rows.map((x) => [x.test, x.seconds.length])).toEqual([["pp8 @ d5", 2], ["tg3 @ d5", 2]]);
    model.dispose();
  });
});

describe("wasmformer compare", () => {
  const row = (test: string, tps: number, sd: number): BenchRow => ({
    artifact: "a", artifact_sha256: "0".repeat(64), model: "m", test, kind: "pp", tokens: 1, depth: 0, threads: 1, variant: "simd128", repetitions: 5, tokens_per_s: tps, sd, cpu: "c", host: "h",
  });

  it("speed-ups per shared test, flagged as noise within two standard errors", () => {
    const got = compareRows([row("pp128", 100, 2), row("tg32", 50, 1), row("pp512", 80, 1)], [row("pp128", 101, 2), row("tg32", 60, 1)]);
    expect(got.map((c) => [c.test, +c.speedup.toFixed(3), c.noise])).toEqual([["pp128", 1.01, true], ["tg32", 1.2, false]]);
  });

  it("reads two bench files and prints a table; a file that is not bench output is one error line", async () => {
    const a = join(dir, "a.json"), b = join(dir, "b.jsonl"), junk = join(dir, "junk.json");
    writeFileSync(a, JSON.stringify([row("pp128", 100, 2), row("tg32", 50, 1)]));
    writeFileSync(b, [row("pp128", 150, 2), row("tg32", 50.2, 1)].map((x) => JSON.stringify(x)).join("\n"));
    writeFileSync(junk, JSON.stringify([{ hello: 1 }]));
    const r = await cli("compare", a, b);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("| pp128 | 1 | simd128 | 100.00 | 150.00 | 1.500× |");
    expect(r.out).toContain("| tg32 | 1 | simd128 | 50.00 | 50.20 | 1.004× (noise) |");
    const bad = await cli("compare", a, junk);
    expect(bad.code).not.toBe(0);
    expect(bad.err.trim()).toMatch(/^error\[WF601\]: NEW.json .*junk.json: rows should be bench rows/);
    const one = await cli("compare", a);
    expect(one.err.trim()).toMatch(/^error\[WF604\]: compare needs NEW.json after BASE.json/);
  });
});
