// generate --draft / --lookup / --draft-tokens: the target's greedy ids with an int4 draft or
// prompt lookup, the speculative counts in --json and the summary line, and every bad option one
// coded line with a non-zero exit.

import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { fixtureDir, root } from "../helpers.js";
import { cli, expectOneLine } from "./run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "wf-speculative-"));
const art = (name: string) => join(dir, name);
const ids = "5,17,29,41,53,5,17";

beforeAll(async () => {
  // gemma's FFN input width (64) takes int4 blocks; mistral has another vocabulary (83, not 103)
  for (const [name, family, fixture, extra] of [
    ["fp", "gemma", "gemma", []],
    ["q4", "gemma", "gemma", ["--quantize", "int4"]],
    ["other", "mistral", "mistral", []],
  ] as const) {
    const r = await cli("compile", join(root, "examples", `${family}.wf`), "--weights", fixtureDir(fixture), "--out", art(name), ...extra);
    expect(r.code, r.err).toBe(0);
  }
}, 120_000);

describe("generate --draft and --lookup", () => {
  it("give the target's greedy ids, and --json reports the drafted and accepted tokens", async () => {
    const base = ["generate", art("fp"), "--input-ids", ids, "--max-new-tokens", "30", "--ignore-eos", "--threads", "1", "--json"];
    const plain = await cli(...base);
    expect(plain.code, plain.err).toBe(0);
    const want = JSON.parse(plain.out);
    expect(want.draft_tokens).toBeUndefined();
    for (const extra of [["--draft", art("q4"), "--draft-tokens", "3"], ["--draft", art("q4")], ["--lookup", "2"], ["--lookup", "1", "--draft-tokens", "32"]]) {
      const r = await cli(...base, ...extra);
      expect(r.code, r.err).toBe(0);
      const got = JSON.parse(r.out);
      expect(got.ids, extra.join(" ")).toEqual(want.ids);
      expect(got.draft_tokens).toBeGreaterThan(0);
      expect(got.accepted_tokens).toBeLessThanOrEqual(got.draft_tokens);
      expect(got.acceptance_rate).toBeCloseTo(got.accepted_tokens / got.draft_tokens, 12);
      expect(got.decode_tokens_per_s).toBeGreaterThan(0);
    }
  });

  it("print the ids as they come and the counts on the summary line", async () => {
    const plain = await cli("generate", art("fp"), "--input-ids", ids, "--max-new-tokens", "12", "--ignore-eos", "--threads", "1");
    const r = await cli("generate", art("fp"), "--input-ids", ids, "--max-new-tokens", "12", "--ignore-eos", "--threads", "1", "--draft", art("q4"));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(plain.out);
    expect(r.err).toMatch(/^prefill [\d.]+ tokens\/s, decode [\d.]+ tokens\/s, stopped: length; drafted \d+, accepted \d+ \(\d+%\)\n$/);
  });

  it("sample with a seed: the same ids twice", async () => {
    const args = ["generate", art("fp"), "--input-ids", ids, "--max-new-tokens", "20", "--ignore-eos", "--threads", "1", "--temperature", "0.9", "--top-k", "20", "--seed", "5", "--json", "--draft", art("q4")];
    const a = await cli(...args), b = await cli(...args);
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out).ids).toEqual(JSON.parse(b.out).ids);
    expect(JSON.parse(a.out).ids).toHaveLength(20);
  });
});

describe("bad speculative options: one coded line, exit 1", () => {
  const gen = () => ["generate", art("fp"), "--input-ids", ids];
  it.each([["0"], ["33"], ["-1"], ["4.5"]])("--draft-tokens %s", async (v) => {
    await expectOneLine([...gen(), "--lookup", "2", "--draft-tokens", v], new RegExp(`^error\\[WF601\\]: --draft-tokens should be an integer from 1 to 32, found '${v.replace(".", "\\.")}'$`, "m"));
  });
  it("--lookup out of range, --lookup with --draft, --draft-tokens alone", async () => {
    await expectOneLine([...gen(), "--lookup", "0"], /^error\[WF601\]: --lookup should be an integer from 1 to 16, found '0'$/m);
    await expectOneLine([...gen(), "--lookup", "2", "--draft", art("q4")], /^error\[WF604\]: --draft and --lookup cannot be given together$/m);
    await expectOneLine([...gen(), "--draft-tokens", "4"], /^error\[WF604\]: --draft-tokens needs --draft DRAFT_ARTIFACT or --lookup N$/m);
  });
  it("a draft of another vocabulary, a draft that is no artifact", async () => {
    await expectOneLine([...gen(), "--draft", art("other")], new RegExp(`^error\\[WF601\\]: --draft ${art("other").replace(/[.\\/]/g, "\\$&")}: its vocabulary has 83 tokens, .*'s 103; a draft needs the target's vocabulary$`, "m"));
    await expectOneLine([...gen(), "--draft", join(dir, "nothing")], /^error\[WF501\]: .*nothing is not an artifact folder \(it does not exist\)$/m);
  });
  it("a draft whose tokenizer gives the same ids other tokens", async () => {
    const tiny = join(root, "examples", "tiny-gpt2");
    const r = await cli("compile", join(root, "examples", "gpt2.wf"), "--weights", tiny, "--out", art("tiny"), "--context", "32");
    expect(r.code, r.err).toBe(0);
    // the same artifact with two tokens' ids swapped in its tokenizer.json
    cpSync(art("tiny"), art("tiny-swapped"), { recursive: true });
    const file = join(art("tiny-swapped"), "tokenizer.json");
    const t = JSON.parse(readFileSync(file, "utf8"));
    const [a, b] = Object.keys(t.model.vocab).slice(300, 302);
    [t.model.vocab[a], t.model.vocab[b]] = [t.model.vocab[b], t.model.vocab[a]];
    writeFileSync(file, JSON.stringify(t));
    await expectOneLine(["generate", art("tiny"), "--input-ids", "1,2,3", "--draft", art("tiny-swapped")], /^error\[WF601\]: --draft .*tiny-swapped: its tokenizer maps tokens to other ids than .*tiny's; a draft needs the target's tokenizer$/m);
    // the unchanged copy is a valid draft
    const ok = await cli("generate", art("tiny"), "--input-ids", "1,2,3", "--max-new-tokens", "4", "--threads", "1", "--draft", art("tiny"), "--json");
    expect(ok.code, ok.err).toBe(0);
  });
});
