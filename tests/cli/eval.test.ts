// `wasmformer eval`: held-out NLL of the bundled trained GPT-2 against PyTorch
// (examples/tiny-gpt2/nll_reference.json, from examples/train/reference_nll.py), fp32, int8, int4 and int4-min.
// The CLI runs in-process (main() from source), so no build of dist/ is needed.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.js";
import { nllWindows, tokenNll } from "../../runtime/eval.js";
import { decodeNpy } from "../../runtime/npy.js";
import { loadTokenizer } from "../../runtime/tokenizer.js";
import { root } from "../helpers.js";

const tiny = join(root, "examples", "tiny-gpt2");
const heldout = join(tiny, "heldout_ids.json");
const dir = mkdtempSync(join(tmpdir(), "wf-eval-"));

interface RefRow { scheme: string; window: number; stride: number; tokens: number; mean_nll: number }
const refRows: RefRow[] = JSON.parse(readFileSync(join(tiny, "nll_reference.json"), "utf8")).results;
const ref = (scheme: string, window = 256, stride = window) => {
  const r = refRows.find((x) => x.scheme === scheme && x.window === window && x.stride === stride);
  if (!r) throw new Error(`nll_reference.json has no ${scheme} ${window}/${stride} (re-run examples/train/reference_nll.py)`);
  return r;
};
const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

async function cli(...args: string[]) {
  let out = "", err = "";
  const code = await main(args, { stdout: { write: (s) => (out += s) }, stderr: { write: (s) => (err += s) } });
  return { code, out, err };
}

async function evalJson(artifact: string, ...args: string[]) {
  const r = await cli("eval", artifact, "--ids", heldout, "--json", ...args);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as { tokens: number; mean_nll: number; perplexity: number; window: number; stride: number; windows: number; ids: number };
}

const fp32 = join(dir, "fp32"), int8 = join(dir, "int8"), int4 = join(dir, "int4"), int4min = join(dir, "int4-min"), mixed = join(dir, "mixed");

beforeAll(async () => {
  for (const [out, q] of [
    [fp32, []],
    [int8, ["--quantize", "int8"]],
    [int4, ["--quantize", "int4"]],
    [int4min, ["--quantize", "int4-min"]],
    [mixed, ["--quantize", "int4", "--quantize-tensor", "*.mlp.c_proj.weight=int8", "--quantize-tensor", "*.h.0.*=f32"]],
  ] as const) {
    const r = await cli("compile", "examples/gpt2.wf", "--weights", tiny, "--out", out, ...q);
    expect(r.code, r.err).toBe(0);
  }
});

describe("eval --text", () => {
  it("tokenizes the file with the artifact's tokenizer and scores those ids", async () => {
    const tokenizer = loadTokenizer(JSON.parse(readFileSync(join(tiny, "tokenizer.json"), "utf8")), JSON.parse(readFileSync(join(tiny, "tokenizer_config.json"), "utf8")));
    const ids: number[] = JSON.parse(readFileSync(heldout, "utf8"));
    const textFile = join(dir, "heldout.txt");
    writeFileSync(textFile, tokenizer.decode(ids.slice(0, 300)));
    const idsFile = join(dir, "heldout-text-ids.json");
    writeFileSync(idsFile, JSON.stringify(tokenizer.encode(readFileSync(textFile, "utf8"))));
    const [t, i] = [await cli("eval", fp32, "--text", textFile, "--json"), await cli("eval", fp32, "--ids", idsFile, "--json")];
    expect(t.code, t.err).toBe(0);
    expect(JSON.parse(t.out).mean_nll).toBe(JSON.parse(i.out).mean_nll);
    expect(JSON.parse(t.out).ids).toBeGreaterThan(250);
    const none = await cli("eval", fp32);
    expect(none.err).toBe("error[WF604]: give --ids FILE or --text FILE\n");
    const both = await cli("eval", fp32, "--ids", idsFile, "--text", textFile);
    expect(both.code).toBe(1);
  });
});

describe("eval on examples/tiny-gpt2 heldout_ids.json", () => {
  it("fp32: prints tokens, mean NLL and perplexity equal to PyTorch's (1e-4 relative)", async () => {
    const r = await cli("eval", fp32, "--ids", heldout);
    expect(r.code, r.err).toBe(0);
    const m = /^tokens (\d+), mean NLL ([\d.]+), perplexity ([\d.]+)\n$/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const want = ref("fp32");
    expect(Number(m![1])).toBe(want.tokens);
    expect(rel(Number(m![2]), want.mean_nll)).toBeLessThan(1e-4);
    expect(rel(Number(m![3]), Math.exp(want.mean_nll))).toBeLessThan(1e-4);
  });

  it.each([
    [128, 128],
    [256, 128],
  ])("fp32 --window %i --stride %i: the same windows and NLL as PyTorch", async (window, stride) => {
    const j = await evalJson(fp32, "--window", String(window), "--stride", String(stride));
    const want = ref("fp32", window, stride);
    expect([j.tokens, j.window, j.stride, j.ids]).toEqual([want.tokens, window, stride, 2000]);
    expect(rel(j.mean_nll, want.mean_nll)).toBeLessThan(1e-4);
    expect(j.perplexity).toBeCloseTo(Math.exp(j.mean_nll), 10);
  });

  it("int8: within +0.5% of fp32 and close to PyTorch's fake-quantized Q8_0", async () => {
    const [a, b] = [await evalJson(fp32), await evalJson(int8)];
    expect(b.tokens).toBe(a.tokens);
    expect(b.mean_nll).toBeLessThanOrEqual(a.mean_nll * 1.005); // the bound
    // q8_0 linears this narrow (K ≤ 1024) take integer dot products at every row count, x rows
    // quantized to q8_0 on the fly: PyTorch with Q8_0 weights and those activations
    // (q8_0+a8) is the same computation up to summation order, which may round an activation one
    // code apart; the head's input is quantized too (its tied table's q8_0 copy), so such codes
    // reach the logits directly: 1e-4
    expect(rel(b.mean_nll, ref("q8_0+a8").mean_nll)).toBeLessThan(1e-4);
  });

  it("int4: within PyTorch's Q4_0 fake-quantization increase plus a small margin", async () => {
    const [a, b] = [await evalJson(fp32), await evalJson(int4)];
    const torchIncrease = ref("q4_0").mean_nll / ref("fp32").mean_nll - 1;
    expect(b.mean_nll).toBeGreaterThan(a.mean_nll); // 4-bit weights do cost something
    // the margin: summation order (the fp32 NLLs agree to 1e-8)
    expect(b.mean_nll / a.mean_nll - 1).toBeLessThanOrEqual(torchIncrease + 5e-4);
    expect(rel(b.mean_nll, ref("q4_0").mean_nll)).toBeLessThan(5e-5);
  });

  it("int4-min (Q4_1): 5 bits a weight, within PyTorch's Q4_1 increase plus a small margin, and below int4's", async () => {
    const bytes = (d: string) => JSON.parse(readFileSync(join(d, "manifest.json"), "utf8")).memory.weights_bytes as number;
    // 16 matrices of 60×180/60×60/60×240/240×60 per layer pair: each weight 5 bits instead of 4.5
    const quantizedWeights = (bytes(int4) - bytes(int8)) / (4.5 / 8 - 8.5 / 8);
    expect((bytes(int4min) - bytes(int4)) / quantizedWeights).toBeCloseTo((5 - 4.5) / 8, 6);
    const [a, b, c] = [await evalJson(fp32), await evalJson(int4min), await evalJson(int4)];
    const torchIncrease = ref("q4_1").mean_nll / ref("fp32").mean_nll - 1;
    expect(b.mean_nll / a.mean_nll - 1).toBeLessThanOrEqual(torchIncrease + 5e-4);
    expect(rel(b.mean_nll, ref("q4_1").mean_nll)).toBeLessThan(5e-5);
    // the per-block minimum keeps one-signed blocks' range: a third of Q4_0's loss here
    expect(b.mean_nll).toBeLessThan(c.mean_nll);
  });

  it("--quantize-tensor keeps chosen tensors at int8 or f32: a mixed artifact is larger than int4 and no worse", async () => {
    const bytes = (d: string) => JSON.parse(readFileSync(join(d, "manifest.json"), "utf8")).memory.weights_bytes as number;
    expect(bytes(mixed)).toBeGreaterThan(bytes(int4));
    expect(bytes(mixed)).toBeLessThan(bytes(fp32));
    const [a, m] = [await evalJson(int4), await evalJson(mixed)];
    expect(m.mean_nll).toBeLessThan(a.mean_nll);
    const bad = await cli("compile", "examples/gpt2.wf", "--weights", tiny, "--out", join(dir, "bad"), "--quantize", "int4", "--quantize-tensor", "lm_head=int3");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^error\[WF601\]: --quantize-tensor should be NAME=int8\|int4\|int4-min\|f32, found 'lm_head=int3'$/m);
  });

  it("--threads 2 gives the same NLL as one thread", async () => {
    const [a, b] = [await evalJson(int8), await evalJson(int8, "--threads", "2")];
    expect(b.mean_nll).toBe(a.mean_nll);
  });

  it("reads whitespace- and comma-separated ids as well as JSON arrays", async () => {
    const ids: number[] = JSON.parse(readFileSync(heldout, "utf8")).slice(0, 300);
    const text = join(dir, "ids.txt"), json = join(dir, "ids.json");
    writeFileSync(text, ids.map((v, i) => (i % 7 === 6 ? `${v},\n` : `${v}, `)).join("") + "\n");
    writeFileSync(json, JSON.stringify(ids));
    const [a, b] = [await cli("eval", fp32, "--ids", text, "--json"), await cli("eval", fp32, "--ids", json, "--json")];
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out)).toMatchObject({ ids: 300, tokens: 298, mean_nll: JSON.parse(b.out).mean_nll });
  });
});

describe("eval errors: one line, exit 1, no stack trace", () => {
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  it.each([
    ["a missing file", () => join(dir, "nope.json"), [], /^error\[WF605\]: --ids .*nope\.json: no such file or folder$/m],
    ["a non-integer in text", () => file("word.txt", "1 2 x 4"), [], /^error\[WF601\]: --ids .*word\.txt: item 3 \("x"\) is not a non-negative integer token id/],
    ["a fraction in JSON", () => file("frac.json", "[1, 2.5]"), [], /^error\[WF601\]: --ids .*: item 2 \(2\.5\) is not a non-negative integer/],
    ["a negative id", () => file("neg.txt", "1 -2"), [], /^error\[WF601\]: --ids .*: item 2 \("-2"\) is not a non-negative integer/],
    ["broken JSON", () => file("broken.json", "[1, 2"), [], /^error\[WF601\]: --ids .*: not a valid JSON array/],
    ["an id beyond the vocabulary", () => file("big.txt", "1,2,1024"), [], /^error\[WF5\d\d\]: id 1024 at position 2 is outside the vocabulary \[0, 1024\)/],
    ["one token", () => file("one.txt", "5\n"), [], /^error\[WF601\]: --ids .*: 1 token id; scoring needs at least 2/],
    ["no tokens", () => file("empty.txt", ""), [], /^error\[WF601\]: --ids .*: 0 token ids; scoring needs at least 2/],
    ["a window beyond the context", () => heldout, ["--window", "257"], /^error\[WF601\]: --window should be at most the artifact's context, 256, found '257'$/m],
    ["a stride beyond the window", () => heldout, ["--window", "64", "--stride", "65"], /^error\[WF601\]: --stride should be at most the window, 64, found '65'$/m],
    ["zero threads", () => heldout, ["--threads", "0"], /^error\[WF601\]: --threads should be an integer from 1 to 256, found '0'$/m],
  ] as const)("%s", async (_, path, extra, pattern) => {
    const r = await cli("eval", fp32, "--ids", path(), ...extra);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(pattern);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.out).toBe("");
  });

  it("a folder that is not an artifact", async () => {
    const r = await cli("eval", dir, "--ids", heldout);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[WF5\d\d\]: .* is not an artifact folder \(no manifest\.json\)\n$/);
  });
});

describe("windows and log-softmax", () => {
  // each target (index ≥ 1) scored at most once, in order; returns the targets and their context starts
  const targets = (n: number, w: number, s: number) => nllWindows(n, w, s).flatMap(({ start, end, from }) => {
    expect(end - start).toBeLessThanOrEqual(w);
    return Array.from({ length: end - from }, (_, i) => [from + i, start]);
  });

  it("stride = window: non-overlapping windows, the first token of each unpredicted", () => {
    expect(nllWindows(10, 4, 4)).toEqual([{ start: 0, end: 4, from: 1 }, { start: 4, end: 8, from: 5 }, { start: 8, end: 10, from: 9 }]);
    expect(targets(2000, 256, 256)).toHaveLength(1992);
    // a last window of one token has nothing to predict and is left out
    expect(nllWindows(9, 4, 4)).toEqual([{ start: 0, end: 4, from: 1 }, { start: 4, end: 8, from: 5 }]);
    expect(nllWindows(3, 256, 256)).toEqual([{ start: 0, end: 3, from: 1 }]);
  });

  it("stride < window: every token after the first scored once, with ≥ window − stride tokens of context", () => {
    for (const [n, w, s] of [[7, 4, 2], [2000, 256, 128], [1000, 100, 1], [33, 8, 5]]) {
      const t = targets(n, w, s);
      expect(t.map(([target]) => target)).toEqual(Array.from({ length: n - 1 }, (_, i) => i + 1));
      for (const [target, start] of t) if (target >= w) expect(target - start).toBeGreaterThanOrEqual(w - s);
    }
  });

  it("−log softmax is exact for large logits (max subtracted, float64)", () => {
    expect(tokenNll(Float32Array.of(1000, 1000), 0)).toBeCloseTo(Math.LN2, 14);
    expect(tokenNll(Float32Array.of(-1e4, 0, 1e4), 2)).toBe(0);
    expect(tokenNll(Float32Array.of(-1e4, 0, 1e4), 0)).toBe(2e4);
    const row = [0.5, -1.25, 3, 2];
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    expect(tokenNll(row, 1)).toBeCloseTo(lse + 1.25, 14);
  });
});

describe("eval --kl-base", () => {
  const ids: number[] = JSON.parse(readFileSync(heldout, "utf8")).slice(0, 65);
  const idsFile = join(dir, "kl-ids.json");
  writeFileSync(idsFile, JSON.stringify(ids));
  const klJson = async (artifact: string, base: string) => {
    const r = await cli("eval", artifact, "--ids", idsFile, "--kl-base", base, "--json");
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out) as Record<string, number>;
  };

  it("is 0 for an artifact against itself, with every top-1 the same", async () => {
    const r = await klJson(int4, int4);
    expect(r.tokens).toBe(64);
    expect([r.mean_kld, r.median_kld, r.p99_kld, r.p999_kld, r.max_kld, r.delta_nll]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(r.same_top1).toBe(1);
  });

  it("int4 against fp32 equals NumPy's KL(p_fp32 ‖ p_int4) from `run`'s logits (tests/fixtures/make_kl_reference.py)", async () => {
    const ref = JSON.parse(readFileSync(join(root, "tests/fixtures/kl/reference.json"), "utf8"));
    expect(ref.ids).toEqual(ids);
    const r = await klJson(int4, fp32);
    for (const k of ["mean_kld", "median_kld", "p99_kld", "p999_kld", "max_kld", "delta_nll"]) expect(rel(r[k], ref[k]), `${k}: ${r[k]} vs NumPy ${ref[k]} (re-run tests/fixtures/make_kl_reference.py if the int4 kernels changed)`).toBeLessThan(1e-6);
    expect(r.same_top1).toBe(ref.same_top1);
  });

  it("int4 against fp32 equals KL(p_fp32 ‖ p_int4) computed from `run`'s logits on the same ids", async () => {
    const logits = async (artifact: string) => {
      const out = join(dir, `${artifact.split("/").pop()}-kl.npy`);
      const r = await cli("run", artifact, "--input-ids", ids.slice(0, 64).join(","), "--out", out);
      expect(r.code, r.err).toBe(0);
      return decodeNpy(readFileSync(out));
    };
    const [p, q] = [await logits(fp32), await logits(int4)];
    const vocab = p.shape[p.shape.length - 1];
    const logSoftmax = (x: ArrayLike<number>, at: number) => {
      const row = Array.from({ length: vocab }, (_, i) => x[at + i]);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      return row.map((v) => v - lse);
    };
    const klds: number[] = [];
    let same = 0, dnll = 0;
    for (let t = 0; t < 64; t++) {
      const lp = logSoftmax(p.data, t * vocab), lq = logSoftmax(q.data, t * vocab);
      klds.push(lp.reduce((s, v, i) => s + Math.exp(v) * (v - lq[i]), 0));
      if (lp.indexOf(Math.max(...lp)) === lq.indexOf(Math.max(...lq))) same++;
      dnll += lp[ids[t + 1]] - lq[ids[t + 1]];
    }
    const r = await klJson(int4, fp32);
    const mean = klds.reduce((s, v) => s + v, 0) / 64;
    expect(mean).toBeGreaterThan(0);
    expect(rel(r.mean_kld, mean)).toBeLessThan(1e-9);
    expect(rel(r.max_kld, Math.max(...klds))).toBeLessThan(1e-9);
    expect(r.same_top1).toBeCloseTo(same / 64, 12);
    expect(rel(r.delta_nll, dnll / 64)).toBeLessThan(1e-9);
  });
});
