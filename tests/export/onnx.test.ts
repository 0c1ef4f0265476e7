// ONNX export: the exported graph, run by ONNX Runtime Web (wasm, one thread) in Node, gives the
// same logits as wasmformer's compiled model, for a prefill and a cached decode step.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import { exportOnnx, onnxCacheLayout, OnnxExportError } from "../../compiler/export/onnx.js";
import { Message } from "../../compiler/export/protobuf.js";
import type { Program } from "../../ir/types.js";
import { loadProgram, readHfConfig } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { decodeNpy } from "../../runtime/npy.js";
import { compileInMemory, fixtureDir, fixtureProgram, readExpected, readFixture, relError, root } from "../helpers.js";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("protobuf writer", () => {
  it("encodes varints, negative int64s, floats and nested messages", () => {
    expect(hex(new Message().varint(300).finish())).toBe("ac02");
    expect(hex(new Message().int(1, -1).finish())).toBe("08ffffffffffffffffff01");
    expect(hex(new Message().int(20, 2).finish())).toBe("a00102");
    expect(hex(new Message().float(2, 1).finish())).toBe("150000803f");
    expect(hex(new Message().message(7, new Message().string(1, "ab")).finish())).toBe("3a040a026162");
    const big = new Uint8Array(10000).fill(7);
    const m = new Message().bytes(9, big).finish();
    expect(m.length).toBe(10003);
    expect(hex(m.subarray(0, 3))).toBe("4a904e");
  });
});

async function ortSession(p: Program) {
  return ort.InferenceSession.create(exportOnnx(p), { executionProviders: ["wasm"] });
}

/** Runs the ONNX model on `ids` with the given pasts (or empty ones); returns logits and presents. */
async function ortStep(sess: ort.InferenceSession, p: Program, ids: number[], pasts?: ort.Tensor[]) {
  const layout = onnxCacheLayout(p);
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]) };
  layout.forEach((c, i) => {
    feeds[`past_key_${i}`] = pasts?.[2 * i] ?? new ort.Tensor("float32", new Float32Array(0), [1, c.kvHeads, 0, c.keyDim]);
    feeds[`past_value_${i}`] = pasts?.[2 * i + 1] ?? new ort.Tensor("float32", new Float32Array(0), [1, c.kvHeads, 0, c.valueDim]);
  });
  const out = await sess.run(feeds);
  const presents = layout.flatMap((_, i) => [out[`present_key_${i}`], out[`present_value_${i}`]]);
  return { logits: out.logits, presents };
}

describe("ONNX export run by onnxruntime-web", () => {
  for (const name of ["gpt2", "llama"]) {
    it(`${name}: prefill 7 tokens, then a cached decode step, match the compiled model`, async () => {
      const p = fixtureProgram(name);
      const vocab = Number(p.config.vocab);
      const ids = [3, 17, 42, 5, 88, 1, 60].map((t) => t % vocab);
      const next = 29;
      const { model } = await compileInMemory(p);
      const wantPre = model.run("forward", { ids }).logits;
      const wantStep = model.run("forward", { ids: [next] }).logits;

      const sess = await ortSession(p);
      const layout = onnxCacheLayout(p);
      expect(sess.inputNames).toEqual(["input_ids", ...layout.flatMap((_, i) => [`past_key_${i}`, `past_value_${i}`])]);
      const pre = await ortStep(sess, p, ids);
      expect(pre.logits.dims).toEqual([1, ids.length, vocab]);
      expect(pre.presents[0].dims).toEqual([1, layout[0].kvHeads, ids.length, layout[0].keyDim]);
      expect(relError(pre.logits.data as Float32Array, wantPre)).toBeLessThan(1e-4);

      const step = await ortStep(sess, p, [next], pre.presents);
      expect(step.logits.dims).toEqual([1, 1, vocab]);
      expect(step.presents[1].dims).toEqual([1, layout[0].kvHeads, ids.length + 1, layout[0].valueDim]);
      expect(relError(step.logits.data as Float32Array, wantStep)).toBeLessThan(1e-4);

      // a two-token call on a cache (several query rows against a past) is also causal per row
      const wantTwo = model.run("forward", { ids: [7, 8] }).logits;
      const two = await ortStep(sess, p, [7, 8], step.presents);
      expect(relError(two.logits.data as Float32Array, wantTwo)).toBeLessThan(1e-4);
      await sess.release();
    });
  }

  it("llama forward_last (last_row) exports too: logits of the last position", async () => {
    const p = fixtureProgram("llama");
    const ids = [9, 4, 77, 31, 2];
    const { model } = await compileInMemory(p);
    const want = model.run("forward", { ids }).logits;
    const vocab = Number(p.config.vocab);
    const sess = await ort.InferenceSession.create(exportOnnx(p, { entry: "forward_last" }));
    const out = await ortStep(sess, p, ids);
    expect(out.logits.dims).toEqual([1, 1, vocab]);
    expect(relError(out.logits.data as Float32Array, want.subarray(want.length - vocab))).toBeLessThan(1e-4);
    await sess.release();
  });

  it("gpt2 with Gemm linears matches the PyTorch reference", async () => {
    const p = fixtureProgram("gpt2");
    const c = readFixture("gpt2").cases[1];
    const sess = await ort.InferenceSession.create(exportOnnx(p, { linear: "gemm" }));
    const out = await ortStep(sess, p, c.input_ids);
    expect(relError(out.logits.data as Float32Array, readExpected("gpt2", c))).toBeLessThan(1e-4);
    await sess.release();
  });

  it("bert (no cache, padding mask, erf GELU) matches the PyTorch reference", async () => {
    const p = fixtureProgram("bert");
    const fx = readFixture("bert");
    const c = fx.cases[1];
    const sess = await ort.InferenceSession.create(exportOnnx(p));
    expect(sess.inputNames).toEqual(["input_ids", "token_type_ids", "attention_mask"]);
    const S = c.input_ids.length;
    const i64 = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), [1, S]);
    const out = await sess.run({
      input_ids: i64(c.input_ids),
      token_type_ids: i64(c.token_type_ids ?? c.input_ids.map(() => 0)),
      attention_mask: i64(c.input_ids.map(() => 1)),
    });
    expect(relError(out[sess.outputNames[0]].data as Float32Array, readExpected("bert", c))).toBeLessThan(1e-4);
    await sess.release();
  });

  // (vit: image 18, patch 4, pixels past the last whole patch unread; vit-cls: the class token's logits)
  for (const name of ["vit", "vit-cls"])
    it(`${name}: one image, pixel_values [1, C, H, W], matches the PyTorch reference`, async () => {
      const p = runPipeline(loadProgram(join(root, "examples", "vit.wf"), fixtureDir(name)));
      const fx = readFixture(name) as unknown as { cases: { pixels: string; output: string }[] };
      const sess = await ort.InferenceSession.create(exportOnnx(p));
      expect(sess.inputNames).toEqual(["pixel_values"]);
      const cfg = readHfConfig(fixtureDir(name));
      const [C, S] = [Number(cfg.num_channels ?? 3), Number(cfg.image_size)];
      for (const c of fx.cases) {
        const pixels = decodeNpy(readFileSync(join(fixtureDir(name), c.pixels))).data as Float32Array;
        const out = await sess.run({ pixel_values: new ort.Tensor("float32", pixels, [1, C, S, S]) });
        const got = out[sess.outputNames[sess.outputNames.length - 1]].data as Float32Array;
        expect(relError(got, decodeNpy(readFileSync(join(fixtureDir(name), c.output))).data as Float32Array), c.output).toBeLessThan(1e-4);
      }
      await sess.release();
    });

  // (RoBERTa: positions count non-padding tokens; DistilBERT-cls: the pre_classifier reads each sequence's first row)
  for (const name of ["bert", "roberta", "distilbert-cls", "albert"]) {
    it(`${name}: a batch [B, S] with padding gives each sequence's own outputs`, async () => {
      const p = fixtureProgram(name);
      const { art, model } = await compileInMemory(p);
      const cfg = readHfConfig(fixtureDir(name));
      const pad = Number(cfg.pad_token_id ?? 0), vocab = Number(cfg.vocab_size);
      const lengths = [7, 3, 5], S = Math.max(...lengths);
      const seqs = lengths.map((n, b) => Array.from({ length: n }, (_, i) => 2 + ((i * 13 + b * 29 + 5) % (vocab - 2))));
      const sess = await ort.InferenceSession.create(exportOnnx(p));
      const kinds = art.manifest.entries[0].inputs.map((x) => x.kind);
      const names: Record<string, string> = { tokens: "input_ids", segments: "token_type_ids", padding: "attention_mask" };
      expect(sess.inputNames).toEqual(kinds.map((k) => names[k]));
      // sequence b's inputs of each kind, padded to `width` (types: 1 on the second half, where the model has two)
      const types = (n: number) => Array.from({ length: n }, (_, i) => (name === "roberta" ? 0 : Number(i >= n / 2)));
      const row = (kind: string, b: number, width: number) => {
        const n = lengths[b], fill = (xs: number[], v: number) => [...xs, ...Array<number>(width - n).fill(v)];
        return kind === "tokens" ? fill(seqs[b], pad) : kind === "segments" ? fill(types(n), 0) : fill(Array<number>(n).fill(1), 0);
      };
      const feeds = (bs: number[], width: number) =>
        Object.fromEntries(kinds.map((k) => [names[k], new ort.Tensor("int64", BigInt64Array.from(bs.flatMap((b) => row(k, b, width)), BigInt), [bs.length, width])]));
      const batch = await sess.run(feeds([0, 1, 2], S));
      for (const out of art.manifest.entries[0].outputs) {
        const got = batch[out.name], perRow = out.rows === "1";
        expect(got.dims).toEqual([3, perRow ? 1 : S, out.width]);
        for (let b = 0; b < 3; b++) {
          const n = lengths[b], rows = perRow ? 1 : n;
          const mine = (got.data as Float32Array).subarray(b * got.dims[1] * out.width, (b * got.dims[1] + rows) * out.width);
          const inputs = Object.fromEntries(kinds.map((k) => [{ tokens: "ids", segments: "segments", padding: "padding" }[k], row(k, b, n)]));
          model.reset();
          expect(relError(mine, model.run("forward", inputs)[out.name]), `${out.name} of sequence ${b}`).toBeLessThan(1e-4);
          const alone = (await sess.run(feeds([b], n)))[out.name].data as Float32Array;
          expect(relError(mine, alone), `${out.name} of sequence ${b}, batched vs alone`).toBeLessThan(1e-5);
        }
      }
      await sess.release();
    });
  }

  it("refuses to batch an op that mixes a call's rows", () => {
    const p = fixtureProgram("bert");
    const g = p.graphs.find((x) => x.name === "forward")!;
    // hidden · hiddenᵀ: a matmul whose second operand is computed from the inputs
    const nodes = g.nodes.slice(), hidden = g.outputs.find((o) => o.name === "hidden")!.id;
    const S = nodes[hidden].type.shape[0];
    const t = { id: nodes.length, op: "transpose", args: [hidden], attrs: {}, type: { dtype: "f32", shape: [nodes[hidden].type.shape[1], S] } } as (typeof nodes)[number];
    const mm = { id: nodes.length + 1, op: "matmul", args: [hidden, t.id], attrs: {}, type: { dtype: "f32", shape: [S, S] } } as (typeof nodes)[number];
    const odd = { ...p, graphs: [{ ...g, nodes: [...nodes, t, mm], outputs: [{ name: "gram", id: mm.id }] }] };
    expect(() => exportOnnx(odd)).toThrow(/%\d+ = matmul.*mixes the rows of a call/);
  });

  for (const scheme of ["int8", "int4"] as const) {
    it(`tiny GPT-2 at ${scheme}: MatMulNBits (${scheme === "int8" ? 8 : 4} bits) gives the interpreter's logits`, async () => {
      const { loadProgram } = await import("../../compiler/load.js");
      const { passes, runPipeline, withQuantization } = await import("../../compiler/passes/manager.js");
      const { interpret, newSession } = await import("../../ir/interp.js");
      const { join } = await import("node:path");
      const { root } = await import("../helpers.js");
      const p = runPipeline(loadProgram(join(root, "examples", "gpt2.wf"), join(root, "examples", "tiny-gpt2")), {}, withQuantization(passes, scheme));
      const bytes = exportOnnx(p);
      const dequantized = exportOnnx(p, { quantized: "dequantized" });
      // the interpreter on the dequantized f32 path (int_rows 0: x stays f32, as at ORT's default
      // accuracy level) rather than on q8_0 activations, which q8_0 linears this narrow take at any row count
      for (const g of p.graphs) for (const n of g.nodes) if (n.attrs.quant !== undefined && (n.op === "linear" || n.op === "gated_linear")) n.attrs.int_rows = 0;
      // 8.5 / 4.5 bits a quantized weight instead of 32 (the tied embedding stays f32)
      expect(bytes.length).toBeLessThan(dequantized.length * (scheme === "int8" ? 0.5 : 0.4));
      const sess = await ort.InferenceSession.create(bytes);
      const ids = [3, 17, 42, 5, 88, 1, 60, 9, 14, 23, 7, 51, 2, 36, 99, 11, 70, 4, 28, 63];
      const want = interpret(p, "forward", { ids: Int32Array.from(ids) }, newSession()).logits;
      const out = await ortStep(sess, p, ids);
      expect(relError(out.logits.data as Float32Array, want)).toBeLessThan(1e-4);
      await sess.release();
    });
  }

  it("rejects what it cannot express, naming the op", () => {
    const t5 = fixtureProgram("t5");
    expect(() => exportOnnx(t5)).toThrow(/no entry 'forward'/);
    expect(() => exportOnnx(t5, { entry: "encode" })).toThrow(OnnxExportError);
    expect(() => exportOnnx(t5, { entry: "encode" })).toThrow(/relative position bias/);
    expect(() => exportOnnx(t5, { entry: "decode" })).toThrow(/state inputs|relative position bias/);
    // an attribute the exporter does not know (a newer IR feature) is refused, not ignored
    const p = fixtureProgram("gpt2");
    const g = p.graphs.find((x) => x.name === "forward")!;
    const i = g.nodes.findIndex((n) => n.op === "layernorm");
    const nodes = g.nodes.slice();
    nodes[i] = { ...nodes[i], attrs: { ...nodes[i].attrs, fancy: 1 } };
    const odd = { ...p, graphs: [{ ...g, nodes }] };
    expect(() => exportOnnx(odd)).toThrow(/%\d+ = layernorm.*attribute fancy not supported/);
    // an op without a writer is refused by name
    const capped = nodes.slice();
    capped[i] = { ...nodes[i], op: "softcap", args: [nodes[i].args[0]], attrs: { cap: 30 } };
    expect(() => exportOnnx({ ...p, graphs: [{ ...g, nodes: capped }] })).toThrow(/%\d+ = softcap.*: op 'softcap' is not supported/);
  });
});
