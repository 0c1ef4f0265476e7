// `wasmformer classify --tokens`, `answer` and `fill-mask` on artifacts compiled from the head
// fixtures (tests/fixtures/make_heads.py): the JSON equals what transformers' pipelines make of
// PyTorch's logits (reference.json), plain output is one line per input or answer, and an artifact
// without the head, or a call it cannot serve, is one coded line.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureDir } from "../helpers.js";
import { cli, expectOneLine } from "./run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "wf-heads-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const art = (name: string) => join(dir, name);
const pipeline = (name: string) => JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8")).pipeline;
const close = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThan(1e-5);

beforeAll(async () => {
  for (const name of ["bert-tok", "roberta-qa", "bert-mlm", "roberta-mlm", "bert"]) {
    const family = name.split("-")[0];
    const r = await cli("compile", `examples/${family}.wf`, "--weights", fixtureDir(name), "--out", art(name));
    expect(r.code, r.err).toBe(0);
  }
});

describe("classify --tokens", () => {
  it("--json: every token's label and the entities, as the pipeline's; plain: the entities of each input on a line", async () => {
    const ref = pipeline("bert-tok");
    const r = await cli("classify", art("bert-tok"), "--tokens", "--json", ...ref.texts.flatMap((t: { text: string }) => ["--text", t.text]), "--threads", "1");
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(ref.texts.length);
    lines.forEach((got, n) => {
      const want = ref.texts[n];
      expect(got.tokens.map((t: { entity: string }) => t.entity)).toEqual(want.labels);
      expect(got.tokens[0]).toMatchObject({ index: 0, word: "[CLS]", special: true });
      expect(got.entities.map((e: { word: string; tokens: number[] }) => [e.word, e.tokens])).toEqual(want.entities.map((e: { word: string; tokens: number[] }) => [e.word, e.tokens]));
      got.entities.forEach((e: { score: number }, i: number) => close(e.score, want.entities[i].score));
    });
    const plain = await cli("classify", art("bert-tok"), "--tokens", "--text", ref.texts[0].text);
    const e = ref.texts[0].entities.map((x: { entity_group: string; word: string; score: number }) => `${x.entity_group} ${JSON.stringify(x.word)} ${x.score.toFixed(4)}`).join(", ");
    expect(plain.out).toBe(`${e}\n`);
    // ids need no tokenizer: no token is known to be special, so [CLS] and [SEP] are labelled too
    const ids = await cli("classify", art("bert-tok"), "--tokens", "--json", "--input-ids", "2,14,15,3");
    expect(JSON.parse(ids.out).tokens.map((t: { special: boolean }) => t.special)).toEqual([false, false, false, false]);
  });

  it("an artifact without a token classifier, and --top-k with --tokens, are one line", async () => {
    await expectOneLine(["classify", art("bert"), "--tokens", "--input-ids", "1,2"], /^error\[WF604\]: classify --tokens needs a token classifier, and .* has no token-classification head/);
    await expectOneLine(["classify", art("bert-tok"), "--tokens", "--input-ids", "1,2", "--top-k", "2"], /^error\[WF604\]: --top-k and --tokens cannot be given together$/m);
  });
});

describe("answer", () => {
  it("--json: the pipeline's best spans; plain: one answer and its score a line", async () => {
    const ref = pipeline("roberta-qa");
    const [short, long] = ref.answers;
    const r = await cli("answer", art("roberta-qa"), "--question", ref.question, "--context", short.context, "--json", "--top-k", "3");
    expect(r.code, r.err).toBe(0);
    const got = JSON.parse(r.out);
    expect(got.map((a: { answer: string; first: number; last: number }) => [a.answer, a.first, a.last])).toEqual(short.answers.map((a: { answer: string; first: number; last: number }) => [a.answer, a.first, a.last]));
    got.forEach((a: { score: number }, i: number) => close(a.score, short.answers[i].score));
    const windows = ["--max-seq-len", String(long.max_seq_len), "--doc-stride", String(long.doc_stride), "--max-answer-len", String(long.max_answer_len)];
    const plain = await cli("answer", art("roberta-qa"), "--question", ref.question, "--context", long.context, ...windows);
    expect(plain.out).toBe(`${JSON.stringify(long.answers[0].answer)} ${long.answers[0].score.toFixed(4)}\n`);
  });

  it("an artifact without start and end logits, and a window too small for the question, are one line", async () => {
    await expectOneLine(["answer", art("bert-mlm"), "--question", "q", "--context", "c"], /^error\[WF604\]: answer needs a question-answering model, and .* has no start and end logits/);
    await expectOneLine(["answer", art("roberta-qa"), "--question", "Where does John live?", "--context", "Paris.", "--max-seq-len", "5"], /^error\[WF510\]: answer: maxSeqLen should be more than the question's \d+ tokens with the special ones, got 5$/m);
  });
});

describe("fill-mask", () => {
  it.each(["bert-mlm", "roberta-mlm"])("%s --json: one array per mask, the pipeline's top 5", async (name) => {
    for (const t of pipeline(name).texts) {
      const r = await cli("fill-mask", art(name), "--text", t.text, "--json");
      expect(r.code, r.err).toBe(0);
      const got = r.out.trimEnd().split("\n").map((l) => JSON.parse(l));
      expect(got.map((fills: { token: number; token_str: string; sequence: string }[]) => fills.map(({ token, token_str, sequence }) => ({ token, token_str, sequence }))))
        .toEqual(t.fills.map((fills: { token: number; token_str: string; sequence: string }[]) => fills.map(({ token, token_str, sequence }) => ({ token, token_str, sequence }))));
      got.forEach((fills: { score: number }[], m: number) => fills.forEach((f, j) => close(f.score, t.fills[m][j].score)));
    }
  });

  it("plain: the tokens and scores of each mask on a line; no mask, or no masked-LM head, is one line", async () => {
    const t = pipeline("bert-mlm").texts[0];
    const r = await cli("fill-mask", art("bert-mlm"), "--text", t.text, "--top-k", "2");
    expect(r.out).toBe(t.fills[0].slice(0, 2).map((f: { token_str: string; score: number }) => `${JSON.stringify(f.token_str)} ${f.score.toFixed(4)}`).join(", ") + "\n");
    await expectOneLine(["fill-mask", art("bert-mlm"), "--text", "paris is the capital."], /^error\[WF510\]: fillMask: the text has no mask token \(\[MASK\]\), got "paris is the capital\."$/m);
    await expectOneLine(["fill-mask", art("bert-tok"), "--text", "[MASK]"], /^error\[WF604\]: fill-mask needs a masked LM, and .* has no masked-LM head/);
  });
});
