// Sentence embeddings (runtime/embed.ts) with sentence-transformers semantics, pooled from BERT
// hidden states that match PyTorch's (tests/fixtures/bert): mean, first and last token, L2
// normalization, and a batch of different lengths equal to one-by-one calls; and a
// BertForSequenceClassification head against PyTorch (tests/fixtures/make_bert_cls.py).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { classify, embed } from "../../runtime/embed.js";
import { ArtifactError } from "../../runtime/errors.js";
import { loadProgram } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { compileInMemory, fixtureDir, fixtureProgram, readExpected, readFixture, relError, root } from "../helpers.js";

const fx = readFixture("bert");
const { model } = await compileInMemory(fixtureProgram("bert"));
const [gpt2] = [(await compileInMemory(fixtureProgram("gpt2", { context: 16 }))).model];

/** The pooling of PyTorch's hidden states, in float64. */
function pooled(c: (typeof fx.cases)[number], pooling: "mean" | "cls" | "last", normalize: boolean): Float64Array {
  const h = readExpected("bert", c);
  const [rows, width] = c.shape;
  const v = new Float64Array(width);
  if (pooling === "mean") for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) v[j] += h[r * width + j] / rows;
  else v.set(h.subarray((pooling === "cls" ? 0 : rows - 1) * width, (pooling === "cls" ? 1 : rows) * width));
  if (normalize) {
    const n = Math.hypot(...v);
    for (let j = 0; j < width; j++) v[j] /= n;
  }
  return v;
}

describe("embed", () => {
  const inputs = fx.cases.map((c) => ({ ids: c.input_ids, segments: c.token_type_ids }));
  for (const pooling of ["mean", "cls", "last"] as const)
    for (const normalize of [false, true])
      it(`${pooling} pooling${normalize ? ", normalized" : ""}: PyTorch's hidden states pooled, within 1e-4`, async () => {
        const got = await embed(model, inputs, { pooling, normalize });
        fx.cases.forEach((c, i) => expect(relError(got[i], pooled(c, pooling, normalize))).toBeLessThan(1e-4));
        if (normalize) for (const v of got) expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-5);
      });

  it("a batch of different lengths equals one-by-one calls within 1e-5", async () => {
    const batch = await embed(model, inputs, { normalize: true });
    for (let i = 0; i < inputs.length; i++) expect(relError(batch[i], (await embed(model, [inputs[i]], { normalize: true }))[0])).toBeLessThan(1e-5);
  });

  it("refuses a causal LM, an unknown pooling, and texts without a tokenizer", async () => {
    const code = async (p: Promise<unknown>) => (await p.then(() => undefined, (e: unknown) => e)) as ArtifactError;
    expect((await code(embed(gpt2, [[1, 2]]))).code).toBe("WF511");
    expect((await code(embed(model, [[1, 2]], { pooling: "max" as never }))).message).toBe('embed: pooling should be "mean", "cls", "last", got "max"');
    expect((await code(embed(model, ["a text"]))).message).toBe('embed: inputs[0] should be token ids (texts need a tokenizer), got "a text"');
  });
});

describe("classify (BertForSequenceClassification, tests/fixtures/bert-cls)", () => {
  const ref: { labels: string[]; cases: { input_ids: number[]; logits: number[] }[] } = JSON.parse(readFileSync(join(fixtureDir("bert-cls"), "reference.json"), "utf8"));
  const softmax = (x: number[]) => {
    const m = Math.max(...x), e = x.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };

  it("the pooler and classifier give PyTorch's logits (1e-4), scored by softmax with id2label's names", async () => {
    const p = runPipeline(loadProgram(join(root, "examples/bert.wf"), fixtureDir("bert-cls")));
    const { art, model: cls } = await compileInMemory(p);
    expect(art.manifest.kind).toBe("encoder");
    for (const c of ref.cases) {
      const logits = cls.run("forward", { ids: c.input_ids }).logits;
      expect(relError(logits, c.logits)).toBeLessThan(1e-4);
    }
    // compileModel puts config.json's id2label in the manifest (tests/cli/embed.test.ts); in memory, set here
    cls.manifest.classifier = { labels: ref.labels };
    const got = await classify(cls, ref.cases.map((c) => c.input_ids), { topK: 2 });
    ref.cases.forEach((c, i) => {
      const want = softmax(c.logits).map((score, j) => ({ label: ref.labels[j], score })).sort((a, b) => b.score - a.score).slice(0, 2);
      expect(got[i].map((x) => x.label)).toEqual(want.map((x) => x.label));
      got[i].forEach((x, j) => expect(Math.abs(x.score - want[j].score)).toBeLessThan(1e-5));
    });
  });

  it("a bare encoder has no head: the bert fixture compiles to its one output, and classify refuses it", async () => {
    expect(model.manifest.entries[0].outputs.map((o) => o.name)).toEqual(["hidden"]);
    const e = (await classify(model, [[1, 2]]).catch((x: unknown) => x)) as ArtifactError;
    expect(e.code).toBe("WF511");
  });
});
