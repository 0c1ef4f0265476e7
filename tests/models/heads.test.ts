// BERT and RoBERTa task heads (tests/fixtures/make_heads.py): the head bert.wf / roberta.wf pick
// from config.json's architectures[0], each head's logits against PyTorch's (wasm and the
// interpreter), and the runtime's classifyTokens/groupEntities, answer(s) and fillMask against
// what transformers' pipelines make of the float64 logits, through the fixtures' tokenizers.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { Diagnostic } from "../../compiler/diagnostics.js";
import { configAt } from "../../compiler/frontend/values.js";
import { loadProgram, openWeights, programFromSource, readHfConfig } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import type { WeightSource } from "../../compiler/weights/source.js";
import { interpret, newSession } from "../../ir/interp.js";
import type { Program } from "../../ir/types.js";
import { ArtifactError } from "../../runtime/errors.js";
import { type Answer, type MaskFill, answer, answers, classifyTokens, fillMask, groupEntities } from "../../runtime/heads.js";
import type { Model } from "../../runtime/model.js";
import { loadArtifact, loadArtifactTokenizer } from "../../runtime/node.js";
import type { TextTokenizer } from "../../runtime/tokenizer.js";
import { type FixtureCase, compileInMemory, fixtureDir, readExpected, readFixture, relError, root } from "../helpers.js";

const TOL = 1e-4;
const FIXTURES = ["bert-tok", "bert-qa", "bert-mlm", "roberta-tok", "roberta-qa", "roberta-mlm"];
const family = (name: string) => name.split("-")[0];
const example = (name: string) => join(root, "examples", `${family(name)}.wf`);
const program = (name: string) => runPipeline(loadProgram(example(name), fixtureDir(name)));

interface TokEntity { entity_group: string; score: number; word: string; tokens: number[] }
interface Pipeline {
  labels?: string[];
  texts?: { case: string; text: string; labels?: string[]; entities?: TokEntity[]; fills?: MaskFill[][] }[];
  question?: string;
  answers?: { context: string; top_k: number; max_answer_len: number; max_seq_len?: number; doc_stride?: number; windows?: number; answers: Answer[] }[];
}
const pipelineOf = (name: string): Pipeline => JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8")).pipeline;

/** A case's head output as the fixture stores it: QA's start and end logits side by side. */
function headOutput(out: Record<string, ArrayLike<number>>): Float32Array {
  if (out.token_logits) return Float32Array.from(out.token_logits);
  if (out.start_logits) return Float32Array.from({ length: 2 * out.start_logits.length }, (_, i) => (i % 2 ? out.end_logits : out.start_logits)[i >> 1]);
  return Float32Array.from(out.logits);
}

describe.each(FIXTURES)("%s: the head's logits", (name) => {
  let p: Program;
  let model: Model;
  beforeAll(async () => {
    p = program(name);
    model = (await compileInMemory(p)).model;
  });

  it("the entry outputs the hidden states and the head's logits, named for the runtime", () => {
    const outputs = model.manifest.entries[0].outputs.map((o) => [o.name, o.rows, o.width]);
    const cfg = readHfConfig(fixtureDir(name));
    const head = { tok: [["token_logits", "S", (cfg.num_labels as number)]], qa: [["start_logits", "S", 1], ["end_logits", "S", 1]], mlm: [["logits", "S", cfg.vocab_size]] }[name.split("-")[1]]!;
    expect(outputs).toEqual([["hidden", "S", cfg.hidden_size], ...head]);
  });

  for (const c of readFixture(name).cases as FixtureCase[]) {
    it(`wasm and the interpreter match PyTorch: ${c.name}`, () => {
      model.reset();
      const got = headOutput(model.run("forward", { ids: c.input_ids, segments: c.token_type_ids, padding: c.attention_mask }));
      const want = readExpected(name, c);
      expect(got.length).toBe(c.shape[0] * c.shape[1]);
      expect(relError(got, want)).toBeLessThan(TOL);
      const ids = Int32Array.from(c.input_ids);
      const out = interpret(p, "forward", { ids, types: Int32Array.from(c.token_type_ids ?? c.input_ids.map(() => 0)), mask: Float32Array.from(c.attention_mask ?? c.input_ids.map(() => 1)) }, newSession());
      expect(relError(headOutput(out as Record<string, Float32Array>), want)).toBeLessThan(TOL);
    });
  }
});

describe("the runtime's heads on artifacts compiled from the fixture folders", () => {
  const dir = mkdtempSync(join(tmpdir(), "wf-heads-"));
  const loaded = new Map<string, { model: Model; tokenizer: TextTokenizer }>();
  afterAll(() => {
    for (const { model } of loaded.values()) model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  async function artifact(name: string) {
    if (!loaded.has(name)) {
      const out = join(dir, name);
      compileModel(example(name), fixtureDir(name), out);
      const model = await loadArtifact(out);
      loaded.set(name, { model, tokenizer: loadArtifactTokenizer(out, model.manifest)! });
    }
    return loaded.get(name)!;
  }

  describe.each(["bert-tok", "roberta-tok"])("%s: classifyTokens and groupEntities", (name) => {
    it("the tokenizer gives the script's ids; labels, scores and entities are the pipeline's (aggregation 'simple')", async () => {
      const { model, tokenizer } = await artifact(name);
      const ref = pipelineOf(name);
      expect(model.manifest.classifier?.labels).toEqual(ref.labels);
      const cases = readFixture(name).cases;
      for (const t of ref.texts!) {
        const c = cases.find((x) => x.name === t.case)!;
        expect(tokenizer.encode(t.text)).toEqual(c.input_ids);
        const tags = classifyTokens(model, t.text, { tokenizer });
        expect(tags.map((x) => x.entity)).toEqual(t.labels);
        expect(tags.map((x) => x.special)).toEqual(c.input_ids.map((_, i) => i === 0 || i === c.input_ids.length - 1));
        expect(tags.map((x) => x.word)).toEqual(c.input_ids.map((id) => tokenizer.idToToken!(id)));
        // each token's probabilities are the softmax of PyTorch's logits
        const logits = readExpected(name, c), L = ref.labels!.length;
        tags.forEach((x, i) => {
          const row = Array.from(logits.subarray(i * L, (i + 1) * L)), m = Math.max(...row), e = row.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
          x.scores.forEach((p, j) => expect(Math.abs(p - e[j] / s)).toBeLessThan(1e-5));
        });
        const entities = groupEntities(tags, { tokenizer });
        expect(entities.map(({ score: _, ...e }) => e)).toEqual(t.entities!.map(({ score: _, ...e }) => e));
        entities.forEach((e, i) => expect(Math.abs(e.score - t.entities![i].score)).toBeLessThan(1e-5));
      }
    });
  });

  describe.each(["bert-tok", "roberta-tok"])("%s: a batch", (name) => {
    it("classifyTokens over a list equals it over each input (packed where the artifact packs: BERT's head size 12, not RoBERTa's 11)", async () => {
      const { model, tokenizer } = await artifact(name);
      expect(model.manifest.entries.some((e) => e.name === "forward_packed")).toBe(name === "bert-tok");
      const texts = pipelineOf(name).texts!.map((t) => t.text);
      const inputs = [...texts, readFixture(name).cases[0].input_ids, ...texts.slice(0, 2)];
      const one = inputs.map((x) => classifyTokens(model, x, { tokenizer }));
      const all = classifyTokens(model, inputs, { tokenizer });
      expect(all.map((tags) => tags.map(({ scores: _, score: __, ...t }) => t))).toEqual(one.map((tags) => tags.map(({ scores: _, score: __, ...t }) => t)));
      all.forEach((tags, n) => tags.forEach((t, i) => t.scores.forEach((p, j) => expect(Math.abs(p - one[n][i].scores[j])).toBeLessThan(1e-6))));
    });
  });

  it("groupEntities: B- opens an entity, I- and bare tags continue one of their type, special tokens and 'O' groups are left out", () => {
    const tag = (index: number, entity: string, score = 0.5, special = false) => ({ index, id: index, word: `w${index}`, entity, score, scores: [], special });
    const tags = [tag(0, "O", 0.9, true), tag(1, "B-PER", 0.8), tag(2, "I-PER", 0.6), tag(3, "B-PER"), tag(4, "I-LOC"), tag(5, "LOC", 0.7), tag(6, "O"), tag(7, "O"), tag(8, "I-ORG", 0.4, true)];
    expect(groupEntities(tags)).toEqual([
      { entity_group: "PER", score: 0.7, word: "w1 w2", tokens: [1, 2] },
      { entity_group: "PER", score: 0.5, word: "w3", tokens: [3] },
      { entity_group: "LOC", score: 0.6, word: "w4 w5", tokens: [4, 5] },
    ]);
    expect(groupEntities(tags, { ignoreLabels: [] }).map((e) => e.entity_group)).toEqual(["PER", "PER", "LOC", "O"]);
  });

  describe.each(["bert-qa", "roberta-qa"])("%s: answer and answers", (name) => {
    it("the pair's ids are the script's; spans, scores and texts are the pipeline's, a long context in its windows", async () => {
      const { model, tokenizer } = await artifact(name);
      // (BERT's windows run side by side in packed calls, RoBERTa's one by one)
      expect(model.manifest.entries.some((e) => e.name === "forward_packed")).toBe(name === "bert-qa");
      const ref = pipelineOf(name);
      const pair = readFixture(name).cases.find((c) => c.name === "pair")!;
      const enc = tokenizer.encodePair!(ref.question!, ref.answers![0].context);
      expect(enc.ids).toEqual(pair.input_ids);
      if (pair.token_type_ids) expect(enc.segments).toEqual(pair.token_type_ids);
      for (const a of ref.answers!) {
        const got = answers(model, tokenizer, ref.question!, a.context, { topK: a.top_k, maxAnswerLen: a.max_answer_len, maxSeqLen: a.max_seq_len, docStride: a.doc_stride });
        expect(got.map(({ score: _, ...x }) => x)).toEqual(a.answers.map(({ score: _, ...x }) => x));
        got.forEach((x, i) => expect(Math.abs(x.score - a.answers[i].score) / a.answers[i].score).toBeLessThan(1e-4));
        expect(answer(model, tokenizer, ref.question!, a.context, { maxAnswerLen: a.max_answer_len, maxSeqLen: a.max_seq_len, docStride: a.doc_stride })).toEqual(got[0]);
      }
    });
  });

  describe.each(["bert-mlm", "roberta-mlm"])("%s: fillMask", (name) => {
    it("the top 5 tokens of each mask, their texts and filled sequences are the pipeline's", async () => {
      const { model, tokenizer } = await artifact(name);
      for (const t of pipelineOf(name).texts!) {
        expect(tokenizer.encode(t.text)).toEqual(readFixture(name).cases.find((c) => c.name === t.case)!.input_ids);
        const got = fillMask(model, tokenizer, t.text);
        expect(got.map((fills) => fills.map(({ score: _, ...f }) => f))).toEqual(t.fills!.map((fills) => fills.map(({ score: _, ...f }) => f)));
        got.forEach((fills, m) => fills.forEach((f, j) => expect(Math.abs(f.score - t.fills![m][j].score)).toBeLessThan(1e-5)));
      }
      expect(fillMask(model, tokenizer, pipelineOf(name).texts![0].text, { topK: 2 })[0]).toHaveLength(2);
      // a list of texts: each text's fills, the texts side by side in a call where the artifact packs
      const texts = [...pipelineOf(name).texts!.map((t) => t.text), pipelineOf(name).texts![0].text];
      const all = fillMask(model, tokenizer, texts);
      all.forEach((fills, n) => {
        const one = fillMask(model, tokenizer, texts[n]);
        expect(fills.map((f) => f.map(({ score: _, ...x }) => x))).toEqual(one.map((f) => f.map(({ score: _, ...x }) => x)));
        fills.forEach((f, m) => f.forEach((x, j) => expect(Math.abs(x.score - one[m][j].score)).toBeLessThan(1e-6)));
      });
    });
  });

  it("each call refuses an artifact without its head (WF511) and bad arguments (WF510), one line each", async () => {
    const tok = await artifact("bert-tok"), qa = await artifact("bert-qa"), mlm = await artifact("bert-mlm");
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ArtifactError);
        expect((e as Error).message).not.toMatch(/\n/);
        return [(e as ArtifactError).code, (e as Error).message];
      }
      return undefined;
    };
    expect(code(() => classifyTokens(mlm.model, [2, 3]))?.[0]).toBe("WF511");
    expect(code(() => classifyTokens(tok.model, "a text"))?.[1]).toBe('classifyTokens: input should be token ids (a text needs a tokenizer), got "a text"');
    expect(code(() => answer(tok.model, tok.tokenizer, "who?", "john."))?.[0]).toBe("WF511");
    expect(code(() => fillMask(qa.model, qa.tokenizer, "the [MASK]."))?.[0]).toBe("WF511");
    expect(code(() => fillMask(mlm.model, mlm.tokenizer, "no mask here."))).toEqual(["WF510", 'fillMask: the text has no mask token ([MASK]), got "no mask here."']);
    expect(code(() => fillMask(mlm.model, mlm.tokenizer, "the [MASK].", { maskToken: "<mask>" }))).toEqual(["WF510", 'fillMask: the mask token "<mask>" is not in the vocabulary']);
    expect(code(() => answer(qa.model, qa.tokenizer, "where does john live?", "john lives in paris.", { maxSeqLen: 12, docStride: 6 }))?.[1]).toMatch(/^answer: docStride should be less than the \d context tokens a window of maxSeqLen 12 holds, got 6$/);
    expect(code(() => answer(qa.model, qa.tokenizer, "where?", "paris.", { maxSeqLen: 65 }))?.[1]).toBe("answer: maxSeqLen should be at most the artifact's context, 64, got 65");
    expect(code(() => answer(qa.model, qa.tokenizer, " ", "paris."))?.[1]).toBe('answer: question should be a non-empty text, got " "');
    expect(code(() => classifyTokens(tok.model, [[2, 3], "a text"]))?.[1]).toBe('classifyTokens: inputs[1] should be token ids (a text needs a tokenizer), got "a text"');
    expect(code(() => classifyTokens(tok.model, []))?.[1]).toBe("classifyTokens: inputs should be a non-empty list of texts or id sequences, got []");
    expect(code(() => fillMask(mlm.model, mlm.tokenizer, ["the [MASK].", 7 as unknown as string]))?.[1]).toBe("fillMask: texts[1] should be a string, got 7");
  });
});

describe("the head follows config.json's architectures[0]", () => {
  const compileWith = (name: string, edit: (c: Record<string, unknown>) => void, weights: WeightSource = openWeights(fixtureDir(name))) => {
    const config = readHfConfig(fixtureDir(name));
    edit(config);
    try {
      return runPipeline(programFromSource(example(name), readFileSync(example(name), "utf8"), config, weights));
    } catch (e) {
      if (e instanceof Diagnostic) return e;
      throw e;
    }
  };
  const outputs = (p: Program | Diagnostic) => (p as Program).graphs[0].outputs.map((o) => o.name);

  it("a dotted config key indexes lists: architectures.0 (absent or past the end: the default)", () => {
    expect(configAt({ architectures: ["BertForMaskedLM", "X"] }, "architectures.0")).toBe("BertForMaskedLM");
    expect(configAt({ architectures: ["A", "X"] }, "architectures.1")).toBe("X");
    expect(configAt({ architectures: [] }, "architectures.0")).toBeUndefined();
    expect(configAt({ architectures: { 0: "A" } }, "architectures.0")).toBe("A");
    expect(configAt({ a: [{ b: [1, 2] }] }, "a.0.b.1")).toBe(2);
  });

  it("no architectures, or one without a head here (BertForPreTraining), is the bare encoder; the heads' tensors are not read", () => {
    expect(outputs(compileWith("bert-mlm", (c) => delete c.architectures))).toEqual(["hidden"]);
    expect(outputs(compileWith("bert-tok", (c) => (c.architectures = ["BertForPreTraining"])))).toEqual(["hidden"]);
    expect(outputs(compileWith("roberta-qa", (c) => (c.architectures = null)))).toEqual(["hidden"]);
  });

  it("XLM-RoBERTa's class names pick RoBERTa's heads", () => {
    for (const [name, cls, want] of [
      ["roberta-cls", "XLMRobertaForSequenceClassification", ["hidden", "logits"]],
      ["roberta-tok", "XLMRobertaForTokenClassification", ["hidden", "token_logits"]],
      ["roberta-qa", "XLMRobertaForQuestionAnswering", ["hidden", "start_logits", "end_logits"]],
      ["roberta-mlm", "XLMRobertaForMaskedLM", ["hidden", "logits"]],
    ] as const) {
      const xlm = compileWith(name, (c) => (c.architectures = [cls]));
      expect(outputs(xlm)).toEqual(want);
      expect(outputs(xlm)).toEqual(outputs(compileWith(name, () => {})));
    }
  });

  it("a head named without its tensors is WF401 naming the first; a label count the classifier does not have is WF305; a class that is no string WF302", () => {
    const d = compileWith("bert-tok", (c) => (c.architectures = ["BertForQuestionAnswering"])) as Diagnostic;
    expect([d.code, d.message]).toEqual(["WF401", `missing tensor 'qa_outputs.weight' in ${openWeights(fixtureDir("bert-tok")).description}`]);
    const e = compileWith("roberta-tok", (c) => (c.num_labels = 5)) as Diagnostic;
    expect(e.code).toBe("WF305");
    expect(e.message).toMatch(/^tensor 'classifier.weight' in model.safetensors: expected shape \[5, 44\], found \[7, 44\]/);
    expect((compileWith("bert-mlm", (c) => (c.architectures = ["BertForSequenceClassification"])) as Diagnostic).message).toMatch(/^missing tensor 'bert.pooler.dense.weight'/);
    const f = compileWith("roberta-mlm", (c) => (c.architectures = [42])) as Diagnostic;
    expect([f.code, f.message]).toEqual(["WF302", "config.json 'architectures.0' should be a string, found 42"]);
  });

  it("a masked LM's decoder is the word embeddings unless the checkpoint stores cls.predictions.decoder.weight", async () => {
    const base = openWeights(fixtureDir("bert-mlm"));
    const emb = base.read("bert.embeddings.word_embeddings.weight");
    // a decoder of twice the embeddings: logits t·(2E)ᵀ + b = 2·(tied logits − b) + b
    const decoder = emb.map((v) => 2 * v);
    const withDecoder: WeightSource = {
      description: base.description,
      names: () => [...base.names(), "cls.predictions.decoder.weight"],
      info: (n) => (n === "cls.predictions.decoder.weight" ? base.info("bert.embeddings.word_embeddings.weight") : base.info(n)),
      read: (n) => (n === "cls.predictions.decoder.weight" ? decoder : base.read(n)),
    };
    const c = readFixture("bert-mlm").cases[0];
    const run = async (p: Program) => (await compileInMemory(p)).model.run("forward", { ids: c.input_ids }).logits;
    const tied = await run(compileWith("bert-mlm", () => {}) as Program);
    expect(relError(tied, readExpected("bert-mlm", c))).toBeLessThan(TOL);
    const untied = await run(compileWith("bert-mlm", () => {}, withDecoder) as Program);
    const bias = base.read("cls.predictions.bias"), V = bias.length;
    expect(relError(untied, tied.map((v, i) => 2 * v - bias[i % V]))).toBeLessThan(TOL);
  });
});
