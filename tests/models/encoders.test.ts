// RoBERTa, DistilBERT and ALBERT beyond the per-case checks of families.test.ts: RoBERTa's
// padding-counting positions under left padding, classify() on each sequence-classification head
// compiled from its checkpoint folder, ALBERT's shared layer stored once, malformed configs.

import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { exportOnnx } from "../../compiler/export/onnx.js";
import { Diagnostic } from "../../compiler/diagnostics.js";
import { openWeights, programFromSource, readHfConfig } from "../../compiler/load.js";
import { interpret, newSession } from "../../ir/interp.js";
import { classify } from "../../runtime/embed.js";
import { loadArtifact } from "../../runtime/node.js";
import { compileInMemory, families, fixtureDir, fixtureProgram, readExpected, readFixture, relError, root } from "../helpers.js";

const example = (name: string) => join(root, "examples", `${families[name]}.wf`);

/** The diagnostic loading fixture `name`'s example with config.json changed by `edit`, or undefined. */
function failure(name: string, edit: (c: Record<string, unknown>) => void): Diagnostic | undefined {
  const config = readHfConfig(fixtureDir(name));
  edit(config);
  try {
    programFromSource(example(name), readFileSync(example(name), "utf8"), config, openWeights(fixtureDir(name)));
  } catch (e) {
    if (e instanceof Diagnostic) return e;
    throw e;
  }
  return undefined;
}

describe("RoBERTa positions from the padding id", () => {
  it("the context is the position table less its pad + 1 unread rows, so the last position fits the table", () => {
    const cfg = readHfConfig(fixtureDir("roberta"));
    const p = fixtureProgram("roberta");
    expect(p.context).toBe((cfg.max_position_embeddings as number) - (cfg.pad_token_id as number) - 1);
    const ids = Int32Array.from({ length: p.context }, (_, i) => 3 + (i % 50));
    expect(() => interpret(p, "forward", { ids, types: new Int32Array(ids.length), mask: new Float32Array(ids.length).fill(1) }, newSession())).not.toThrow();
  });

  it("left padding: the real tokens keep positions pad+1.. (HF create_position_ids_from_input_ids), so their rows equal the unpadded run's", async () => {
    const p = fixtureProgram("roberta");
    const { model } = await compileInMemory(p);
    const pad = readHfConfig(fixtureDir("roberta")).pad_token_id as number;
    const c = readFixture("roberta").cases.find((x) => x.name === "len7")!;
    const want = readExpected("roberta", c);
    const ids = [pad, pad, pad, ...c.input_ids], mask = [0, 0, 0, ...c.input_ids.map(() => 1)];
    const got = model.run("forward", { ids, padding: mask }).hidden;
    const w = want.length / c.input_ids.length;
    expect(relError(got.subarray(3 * w), want)).toBeLessThan(1e-4);
    const interp = interpret(p, "forward", { ids: Int32Array.from(ids), types: new Int32Array(ids.length), mask: Float32Array.from(mask) }, newSession()).hidden;
    expect(relError(interp.subarray(3 * w), want)).toBeLessThan(1e-4);
    // with plain positions 0.. the same ids would shift every real token by 3 rows of the table
    expect(relError(model.run("forward", { ids: [5, 5, 5, ...c.input_ids], padding: mask }).hidden.subarray(3 * w), want)).toBeGreaterThan(1e-3);
  });
});

describe("RoBERTa's positions in the ONNX export", () => {
  it("ONNX Runtime gives PyTorch's hidden states for the padded case (CumSum of the non-padding ids)", async () => {
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    const c = readFixture("roberta").cases.find((x) => x.name === "padded")!;
    const sess = await ort.InferenceSession.create(exportOnnx(fixtureProgram("roberta")), { executionProviders: ["wasm"] });
    const i64 = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs, BigInt), [1, xs.length]);
    const out = await sess.run({ input_ids: i64(c.input_ids), token_type_ids: i64(c.input_ids.map(() => 0)), attention_mask: i64(c.attention_mask!) });
    expect(relError(out[sess.outputNames[0]].data as Float32Array, readExpected("roberta", c))).toBeLessThan(1e-4);
    await sess.release();
  });
});

describe.each(["roberta-cls", "distilbert-cls", "albert-cls"])("%s: classify()", (name) => {
  it("compiled from the checkpoint folder: id2label's names, softmax of PyTorch's logits, every case", async () => {
    const out = mkdtempSync(join(tmpdir(), `wf-${name}-`));
    compileModel(example(name), fixtureDir(name), out, { force: true });
    const model = await loadArtifact(out);
    const labels = Object.values(readHfConfig(fixtureDir(name)).id2label as Record<string, string>);
    expect(model.manifest.classifier?.labels).toEqual(labels);
    // ids alone, and (ALBERT's segments, the padded case) ids with segments and padding
    const cases = readFixture(name).cases;
    const got = await classify(model, cases.map((c) => (c.token_type_ids || c.attention_mask ? { ids: c.input_ids, segments: c.token_type_ids, padding: c.attention_mask } : c.input_ids)));
    cases.forEach((c, i) => {
      const logits = Array.from(readExpected(name, c));
      const m = Math.max(...logits), e = logits.map((x) => Math.exp(x - m)), s = e.reduce((a, b) => a + b, 0);
      const want = e.map((x, j) => ({ label: labels[j], score: x / s })).sort((a, b) => b.score - a.score);
      expect(got[i].map((x) => x.label)).toEqual(want.map((x) => x.label));
      got[i].forEach((x, j) => expect(Math.abs(x.score - want[j].score)).toBeLessThan(1e-5));
    });
  });
});

describe("ALBERT's shared layer", () => {
  it("is stored once: the artifact's weights are smaller than the checkpoint's one copy", async () => {
    const { art } = await compileInMemory(fixtureProgram("albert"));
    const cfg = readHfConfig(fixtureDir("albert"));
    const [d, ffn, layers] = [cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers] as number[];
    const layerBytes = (4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 4 * d) * 4;
    const checkpoint = statSync(join(fixtureDir("albert"), "model.safetensors")).size;
    expect(layers).toBeGreaterThan(1);
    // one copy of everything the bare model reads fits in the checkpoint's bytes; a copy per layer would add (layers - 1) × layerBytes
    expect(art.weights.byteLength).toBeGreaterThan(layerBytes);
    expect(art.weights.byteLength).toBeLessThan(checkpoint);
  });
});

describe("malformed encoder configs: one WF3xx line", () => {
  it("ALBERT with several hidden groups or inner layers", () => {
    const d = failure("albert", (c) => (c.num_hidden_groups = 2));
    expect([d?.code, d?.message]).toEqual(["WF304", "requirement 'groups == 1 && inner == 1' is not met: config.json 'num_hidden_groups' = 2, config.json 'inner_group_num' = 1"]);
    expect(failure("albert", (c) => (c.inner_group_num = 3))?.code).toBe("WF304");
  });
  it("a shared-layer tensor whose shape is not the config's", () => {
    const d = failure("albert", (c) => (c.intermediate_size = 61));
    expect(d?.code).toBe("WF305");
    expect(d?.message).toMatch(/albert_layers\.0\.ffn\.weight.*expected shape \[61, 44\], found \[60, 44\]/);
  });
  it("RoBERTa's position table too short for its padding id, DistilBERT's unknown activation", () => {
    expect(failure("roberta", (c) => (c.max_position_embeddings = 2))?.code).toBe("WF304");
    expect(failure("distilbert", (c) => (c.activation = "swish"))?.message).toMatch(/^requirement 'act == "gelu" \|\| act == "relu"' is not met: config.json 'activation' = "swish"/);
  });
});
