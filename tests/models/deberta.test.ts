// DeBERTa-v2/v3 (examples/deberta.wf) against the PyTorch fixtures of make_deberta.py: the bare
// encoder with deberta-v3's config and a sequence classifier over the other config paths, compiled
// and interpreted; padding; HF's log buckets; pos_att_type's string form; classify(); malformed
// configs as one diagnostic line.

import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../../compiler/codegen/emit.js";
import { compileModel } from "../../compiler/compile.js";
import { Diagnostic } from "../../compiler/diagnostics.js";
import { loadProgram } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { printProgram } from "../../ir/graph.js";
import { interpret, newSession } from "../../ir/interp.js";
import { attrsOf } from "../../ir/ops.js";
import { logBucket, relativeRow } from "../../ir/ops/disentangled-attention.js";
import type { Program } from "../../ir/types.js";
import { classify } from "../../runtime/embed.js";
import { Model } from "../../runtime/model.js";
import { loadArtifact, nodeThreads } from "../../runtime/node.js";
import { type FixtureCase, compileInMemory, fixtureDir, readExpected, readFixture, relError, root } from "../helpers.js";

const EXAMPLE = join(root, "examples", "deberta.wf");
const TOL = 1e-4;

const fixtureConfig = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(fixtureDir(name), "config.json"), "utf8"));

/** A checkpoint folder of fixture `name`'s weights and its config.json as `edit` leaves it. */
function withConfig(name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), `wf-${name}-`));
  const config = fixtureConfig(name);
  edit(config);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  copyFileSync(join(fixtureDir(name), "model.safetensors"), join(dir, "model.safetensors"));
  return dir;
}

const program = (weights: string): Program => runPipeline(loadProgram(EXAMPLE, weights));

/** The diagnostic loading fixture `name` with config.json changed by `edit`, or undefined. */
function failure(name: string, edit: (c: Record<string, unknown>) => void): Diagnostic | undefined {
  try {
    loadProgram(EXAMPLE, withConfig(name, edit));
  } catch (e) {
    if (e instanceof Diagnostic) return e;
    throw e;
  }
  return undefined;
}

/** A case's rows that hold tokens (the padded case's real ones): the rows a padded run must get right. */
function realRows(out: Float32Array, c: FixtureCase, head: boolean): Float32Array {
  if (head) return out;
  const n = c.attention_mask ? c.attention_mask.filter((m) => m === 1).length : c.input_ids.length;
  return out.subarray(0, n * (out.length / c.input_ids.length));
}

const runModel = (model: Model, c: { input_ids: number[]; token_type_ids?: number[]; attention_mask?: number[] }) => {
  const out = model.run("forward", { ids: c.input_ids, segments: c.token_type_ids, padding: c.attention_mask });
  return out.logits ?? out.hidden;
};

for (const name of ["deberta", "deberta-cls"]) {
  describe(`${name} against PyTorch`, () => {
    const head = name === "deberta-cls";
    let p: Program;
    let model: Model;
    beforeAll(async () => {
      p = program(fixtureDir(name));
      model = (await compileInMemory(p)).model;
    });
    for (const c of readFixture(name).cases) {
      it(`wasm: ${c.name}`, () => {
        const got = runModel(model, c);
        expect(got.length).toBe(c.shape[0] * c.shape[1]);
        expect(relError(realRows(got, c, head), realRows(readExpected(name, c), c, head))).toBeLessThan(TOL);
      });
      it(`interpreter: ${c.name}`, () => {
        const ids = Int32Array.from(c.input_ids);
        const inputs = { ids, types: Int32Array.from(c.token_type_ids ?? c.input_ids.map(() => 0)), mask: Float32Array.from(c.attention_mask ?? c.input_ids.map(() => 1)) };
        const out = interpret(p, "forward", inputs, newSession());
        expect(relError(realRows((out.logits ?? out.hidden) as Float32Array, c, head), realRows(readExpected(name, c), c, head))).toBeLessThan(TOL);
      });
    }
    it("trailing padding: the real rows are the unpadded run's (len7 and its padded copy)", () => {
      const cases = readFixture(name).cases;
      const [len7, padded] = ["len7", "padded"].map((n) => cases.find((c) => c.name === n)!);
      expect(padded.input_ids.slice(0, 7)).toEqual(len7.input_ids);
      expect(relError(realRows(runModel(model, padded), padded, head), readExpected(name, len7))).toBeLessThan(TOL);
    });
    if (!head)
      it("left padding (v3: relative positions only): the real rows are still the unpadded run's", () => {
        const c = readFixture(name).cases.find((x) => x.name === "len7")!;
        const got = runModel(model, { input_ids: [0, 0, 0, ...c.input_ids], attention_mask: [0, 0, 0, ...c.input_ids.map(() => 1)] });
        const w = got.length / (c.input_ids.length + 3);
        expect(relError(got.subarray(3 * w), readExpected(name, c))).toBeLessThan(TOL);
        // the padding keys are masked: without the mask the real rows change
        expect(relError(runModel(model, { input_ids: [0, 0, 0, ...c.input_ids] }).subarray(3 * w), readExpected(name, c))).toBeGreaterThan(1e-3);
      });
  });
}

describe("relative positions", () => {
  it("logBucket is HF's make_log_bucket_position: the fixture's 6 buckets / 12 positions, and deberta-v3's 256 / 512", () => {
    const buckets = (readFixture("deberta") as unknown as { buckets: Record<string, { buckets: number; max_distance: number; range: number; table: number[] }> }).buckets;
    expect(Object.keys(buckets).sort()).toEqual(["deberta-v3", "fixture"]);
    for (const t of Object.values(buckets)) {
      const ours = Array.from({ length: 2 * t.range + 1 }, (_, i) => logBucket(i - t.range, t.buckets, t.max_distance));
      expect(ours).toEqual(t.table);
    }
    // no buckets: the distance itself, clamped to the tables by relativeRow
    expect([-30, -12, 0, 11, 12, 30].map((r) => relativeRow(r, { max_distance: 12 }))).toEqual([0, 0, 12, 23, 23, 23]);
  });

  it("the IR: a disentangled_attention a layer with the config's terms and buckets, and HF's scale, sqrt(head_dim · scale_factor) in f32", () => {
    const nodes = (p: Program) => p.graphs[0].nodes.filter((n) => n.op === "disentangled_attention").map((n) => attrsOf(n, "disentangled_attention"));
    const v3 = nodes(program(fixtureDir("deberta")));
    expect(v3).toHaveLength(2);
    // head_dim 10, p2c and c2p: 1 / float32(sqrt(30)), not 1 / sqrt(30)
    expect(v3[0]).toEqual({ heads: 3, scale: 1 / Math.fround(Math.sqrt(30)), c2p: true, p2c: true, buckets: 6, max_distance: 12, mask: true });
    expect(v3[0].scale).not.toBe(1 / Math.sqrt(30));
    const cls = nodes(program(fixtureDir("deberta-cls")));
    expect(cls[0]).toEqual({ heads: 3, scale: 1 / Math.fround(Math.sqrt(20)), c2p: true, max_distance: 12, mask: true });
  });

  it("max_relative_positions below 1 is max_position_embeddings, as HF reads it (deberta-v3's -1)", () => {
    const p = program(withConfig("deberta", (c) => (c.max_relative_positions = -1)));
    const a = p.graphs[0].nodes.filter((n) => n.op === "disentangled_attention").map((n) => attrsOf(n, "disentangled_attention"));
    expect(a.map((x) => [x.buckets, x.max_distance])).toEqual([[6, 40], [6, 40]]);
  });

  it("pos_att_type's string form ('P2C | c2p', as older configs write it) reads as the list DebertaV2Config makes of it", () => {
    const list = printProgram(program(fixtureDir("deberta")));
    expect(printProgram(program(withConfig("deberta", (c) => (c.pos_att_type = "P2C | c2p"))))).toBe(list);
    expect(printProgram(program(withConfig("deberta", (c) => (c.pos_att_type = ["c2p"]))))).not.toBe(list);
  });
});

describe("threads", () => {
  const open: Model[] = [];
  afterAll(() => open.forEach((m) => m.dispose()));
  it("2 and 3 threads split the heads and give the single thread's outputs bit for bit (36 tokens: enough rows to split)", async () => {
    const p = program(fixtureDir("deberta"));
    const art = generate(p);
    const wasm = (file: string) => art.variants!.find((v) => v.file === file)!.wasm;
    const ids = Array.from({ length: 36 }, (_, i) => 1 + ((i * 29 + 5) % 96));
    const run = async (threads: number) => {
      const m = await Model.load({ manifest: art.manifest, wasm: wasm(threads > 1 ? "model.threads.wasm" : "model.wasm"), weights: art.weights }, { threads, host: nodeThreads });
      open.push(m);
      expect(m.threads).toBe(threads);
      return m.run("forward", { ids }).hidden;
    };
    const one = await run(1);
    const want = interpret(p, "forward", { ids: Int32Array.from(ids), types: new Int32Array(36), mask: new Float32Array(36).fill(1) }, newSession()).hidden;
    expect(relError(one, want)).toBeLessThan(TOL);
    for (const threads of [2, 3]) expect(await run(threads)).toEqual(one);
  });
});

describe("deberta-cls: classify()", () => {
  it("compiled from the checkpoint folder: id2label's names, softmax of PyTorch's logits, every case", async () => {
    const out = mkdtempSync(join(tmpdir(), "wf-deberta-cls-"));
    compileModel(EXAMPLE, fixtureDir("deberta-cls"), out, { force: true });
    const model = await loadArtifact(out);
    const labels = Object.values(fixtureConfig("deberta-cls").id2label as Record<string, string>);
    expect(model.manifest.classifier?.labels).toEqual(labels);
    const cases = readFixture("deberta-cls").cases;
    const got = await classify(model, cases.map((c) => ({ ids: c.input_ids, segments: c.token_type_ids, padding: c.attention_mask })));
    cases.forEach((c, i) => {
      const logits = Array.from(readExpected("deberta-cls", c));
      const m = Math.max(...logits), e = logits.map((x) => Math.exp(x - m)), s = e.reduce((a, b) => a + b, 0);
      const want = e.map((x, j) => ({ label: labels[j], score: x / s })).sort((a, b) => b.score - a.score);
      expect(got[i].map((x) => x.label)).toEqual(want.map((x) => x.label));
      got[i].forEach((x, j) => expect(Math.abs(x.score - want[j].score)).toBeLessThan(1e-5));
    });
  });
});

describe("malformed DeBERTa configs: one diagnostic line", () => {
  it("an unknown pos_att_type entry, in the list or the string form, is named", () => {
    const d = failure("deberta", (c) => (c.pos_att_type = ["p2c", "p2p"]));
    expect([d?.code, d?.message]).toEqual(["WF304", `requirement 'att1 == "" || att1 == "c2p" || att1 == "p2c"' is not met: config.json 'pos_att_type.1' = "p2p"`]);
    expect(failure("deberta", (c) => (c.pos_att_type = "c2p|pos"))?.message).toMatch(/config\.json 'pos_att_type\.1' = "pos"$/);
    expect(failure("deberta", (c) => (c.pos_att_type = ["c2p", "p2c", "c2p"]))?.message).toBe(`requirement 'att2 == ""' is not met: config.json 'pos_att_type.2' = "c2p"`);
  });
  it("no position_buckets: HF's -1, so the relative embeddings are 2 × max_relative_positions rows, not the checkpoint's 2 × 6", () => {
    const d = failure("deberta", (c) => delete c.position_buckets);
    expect(d?.code).toBe("WF305");
    expect(d?.message).toMatch(/'encoder\.rel_embeddings\.weight' .*expected shape \[24, 30\], found \[12, 30\]/);
  });
  it("buckets that leave no logarithmic range: max_relative_positions not above buckets / 2 + 1", () => {
    const d = failure("deberta", (c) => (c.max_relative_positions = 4));
    expect([d?.code, d?.message]).toEqual(["WF210", "disentangled_attention(): 6 buckets need max_distance above buckets / 2 + 1, found 4"]);
  });
  it("no share_att_key: HF's false, so each layer needs its own pos_key_proj", () => {
    const d = failure("deberta", (c) => delete c.share_att_key);
    expect(d?.code).toBe("WF401");
    expect(d?.message).toMatch(/missing tensor 'encoder\.layer\.0\.attention\.self\.pos_key_proj\.weight'/);
  });
  it("without relative attention, with deberta-v2-xlarge's convolution, an unknown norm_rel_ebd or activation", () => {
    expect(failure("deberta", (c) => (c.relative_attention = false))?.message).toBe("requirement 'rel_attn' is not met: config.json 'relative_attention' = false");
    expect(failure("deberta", (c) => (c.conv_kernel_size = 3))?.message).toBe("requirement 'conv == 0' is not met: config.json 'conv_kernel_size' = 3");
    expect(failure("deberta", (c) => (c.norm_rel_ebd = "batch_norm"))?.code).toBe("WF304");
    expect(failure("deberta-cls", (c) => (c.pooler_hidden_act = "tanh"))?.message).toBe(`requirement 'pool_act == "gelu"' is not met: config.json 'pooler_hidden_act' = "tanh"`);
  });
});
