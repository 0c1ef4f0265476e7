// `wasmformer embed` on the BERT fixture: the vectors equal the runtime's embed(), and what is not
// an encoder, or no input, is one line.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { main } from "../../compiler/cli.js";
import { embed } from "../../runtime/embed.js";
import { loadArtifact } from "../../runtime/node.js";
import { fixtureDir, relError } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "wf-embed-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...args: string[]) {
  let out = "", err = "";
  const code = await main(args, { stdout: { write: (s) => (out += s) }, stderr: { write: (s) => (err += s) } });
  return { code, out, err };
}

it("embed --input-ids ... --json gives the runtime's normalized mean-pooled vectors; errors are one line", async () => {
  const bert = join(dir, "bert"), gpt2 = join(dir, "gpt2");
  expect((await cli("compile", "examples/bert.wf", "--weights", fixtureDir("bert"), "--out", bert)).code).toBe(0);
  const r = await cli("embed", bert, "--input-ids", "5,6,7", "--input-ids", "9,10,11,12,13", "--normalize", "--json", "--threads", "1");
  expect(r.code, r.err).toBe(0);
  const got = JSON.parse(r.out);
  expect(got.dims).toBe(52);
  const model = await loadArtifact(bert);
  const want = await embed(model, [[5, 6, 7], [9, 10, 11, 12, 13]], { normalize: true });
  got.embeddings.forEach((v: number[], i: number) => expect(relError(v, want[i])).toBeLessThan(1e-6));
  expect((await cli("embed", bert)).err).toBe("error[WF604]: give --text TEXT or --input-ids IDS (each repeatable)\n");
  expect((await cli("embed", bert, "--text", "hi")).err).toMatch(/^error\[WF604\]: --text needs a tokenizer, and .* has none/);
  expect((await cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", gpt2)).code).toBe(0);
  expect((await cli("embed", gpt2, "--input-ids", "1,2")).err).toMatch(/^error\[WF604\]: embed needs an encoder, and .* is a causal LM\n$/);
  expect((await cli("embed", bert, "--input-ids", "1", "--pooling", "max")).code).toBe(1);
});

it("classify names the labels of config.json's id2label, most likely first", async () => {
  const out = join(dir, "cls");
  expect((await cli("compile", "examples/bert.wf", "--weights", fixtureDir("bert-cls"), "--out", out)).code).toBe(0);
  const man = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  expect(man.kind).toBe("encoder");
  expect(man.classifier).toEqual({ labels: ["negative", "neutral", "positive"] });
  const r = await cli("classify", out, "--input-ids", "2,45,17,3", "--json", "--threads", "1");
  expect(r.code, r.err).toBe(0);
  const got = JSON.parse(r.out);
  // tests/fixtures/bert-cls/reference.json: logits [-0.52, 2.81, -2.28]
  expect(got.map((x: { label: string }) => x.label)).toEqual(["neutral", "negative", "positive"]);
  expect(got.reduce((a: number, x: { score: number }) => a + x.score, 0)).toBeCloseTo(1, 6);
  const plain = join(dir, "plain-bert");
  expect((await cli("compile", "examples/bert.wf", "--weights", fixtureDir("bert"), "--out", plain)).code).toBe(0);
  expect((await cli("classify", plain, "--input-ids", "1,2")).err).toMatch(/^error\[WF604\]: classify needs a sequence classifier, and .* has no classification head/);
});
