// The runtime API checks its callers' inputs itself (not only the CLI): ids within the
// vocabulary, lengths, the context, state before use, generate's options and the artifact's
// kind. Each is an ArtifactError (WF510: the argument, WF511: what the artifact cannot do),
// thrown before anything is written or run.

import { describe, expect, it } from "vitest";
import { meanNll } from "../../runtime/eval.js";
import { generate } from "../../runtime/generate.js";
import { compileInMemory, fixtureProgram } from "../helpers.js";
import { refused } from "./refused.js";

const [gpt2, bert, t5] = await Promise.all(["gpt2", "bert", "t5"].map(async (name) => (await compileInMemory(fixtureProgram(name, { context: 16 }))).model));

describe("Model.run", () => {
  it("refuses ids outside the vocabulary, and leaves the model as it was", async () => {
    gpt2.reset();
    const before = gpt2.run("forward", { ids: [5, 6] }).logits;
    await refused(() => gpt2.run("forward", { ids: [7, 101] }), "WF510", /^forward: ids\[1\] = 101 is outside \[0, 101\)$/);
    for (const bad of [-1, 1.5, NaN, Infinity, "3", null])
      await refused(() => gpt2.run("forward", { ids: [7, bad as number] }), "WF510", /^forward: ids\[1\] = .+ is outside \[0, 101\)$/);
    // nothing ran: the cache still holds the 2 rows, and the next call continues it
    expect(gpt2.past).toBe(2);
    gpt2.reset();
    expect(gpt2.run("forward", { ids: [5, 6] }).logits).toEqual(before);
  });
  it("refuses ids that are no array, none, or more than the context holds", async () => {
    gpt2.reset();
    await refused(() => gpt2.run("forward", { ids: 5 as never }), "WF510", /^forward: ids should be an array of numbers, got 5$/);
    await refused(() => gpt2.run("forward", null as never), "WF510", /^forward: inputs should be an object \{ ids, segments\?, padding\? \}, got null$/);
    await refused(() => gpt2.run("forward", { ids: [] }), "WF510", /^forward: needs at least one token$/);
    await refused(() => gpt2.run("forward", { ids: Array(17).fill(1) }), "WF510", /^forward: 17 tokens exceed the compiled context of 16/);
    gpt2.run("forward", { ids: Array(10).fill(1) });
    await refused(() => gpt2.run("forward", { ids: Array(7).fill(1) }), "WF510", /^forward: 17 tokens exceed the compiled context of 16/);
    expect(gpt2.past).toBe(10);
    gpt2.reset();
  });
  it("refuses segments and padding of another length or out of range", async () => {
    const ids = [3, 4, 5];
    const ok = bert.run("forward", { ids, segments: [0, 1, 1], padding: [1, 1, 0] });
    expect(ok.hidden.length).toBe(3 * 52);
    await refused(() => bert.run("forward", { ids, segments: [0, 1] }), "WF510", /^forward: types has 2 values for 3 tokens$/);
    await refused(() => bert.run("forward", { ids, padding: [1, 1, 1, 1] }), "WF510", /^forward: mask has 4 values for 3 tokens$/);
    await refused(() => bert.run("forward", { ids, segments: [0, 2, 0] }), "WF510", /^forward: types\[1\] = 2 is outside \[0, 2\)$/);
    await refused(() => bert.run("forward", { ids, padding: [1, 0.5, 1] }), "WF510", /^forward: mask\[1\] = 0\.5 is outside \{0, 1\}$/);
    await refused(() => bert.run("forward", { ids, segments: "011" as never }), "WF510", /^forward: segments should be an array of numbers, got "011"$/);
    await refused(() => bert.run("forwards", { ids }), "WF511", /^artifact has no entry "forwards" \(it has forward/);
  });
  it("needs the state before an entry that reads it", async () => {
    t5.reset();
    await refused(() => t5.run("decode", { ids: [0] }), "WF510", /^decode: set its state input first \(setState\("hidden", …\)\)$/);
    const hidden = t5.run("encode", { ids: [4, 5, 6] }).hidden;
    await refused(() => t5.setState("hidden", hidden.subarray(1)), "WF510", /^state hidden: 143 values is not 1 to 16 \(the context\) whole rows of 48$/);
    await refused(() => t5.setState("hidden", new Float32Array(0)), "WF510", /^state hidden: 0 values is not 1 to 16/);
    await refused(() => t5.setState("hidden", Array.from(hidden) as never), "WF510", /^state hidden: should be a Float32Array, got an array of 144$/);
    await refused(() => t5.setState("encoded", hidden), "WF511", /^no entry takes a state input "encoded"$/);
    t5.setState("hidden", hidden);
    expect(t5.run("decode", { ids: [0] }).logits.length).toBe(97);
  });
});

describe("generate", () => {
  it("refuses an encoder with a clear error (not 'a encoder model')", async () => {
    await refused(() => generate(bert, [1, 2], { maxNewTokens: 2 }), "WF511", /^generate: this artifact is an encoder model \(bert\), which computes hidden states, not tokens; use run$/);
  });
  it("refuses options out of range", async () => {
    for (const maxNewTokens of [-1, 1.5, NaN]) await refused(() => generate(gpt2, [1, 2], { maxNewTokens }), "WF510", /^generate: maxNewTokens should be a non-negative integer, got /);
    for (const temperature of [-0.5, NaN, Infinity]) await refused(() => generate(gpt2, [1, 2], { maxNewTokens: 1, temperature }), "WF510", /^generate: temperature should be a finite number ≥ 0, got /);
    await refused(() => generate(gpt2, [1, 2], { maxNewTokens: 1, seed: 1.5 }), "WF510", /^generate: seed should be an integer, got 1\.5$/);
    await refused(() => generate(gpt2, null as never, { maxNewTokens: 1 }), "WF510", /^generate: prompt should be a non-empty array of token ids, got null$/);
  });
  it("checks the prompt's ids through Model.run", async () => {
    await refused(() => generate(gpt2, [1, 500], { maxNewTokens: 1 }), "WF510", /^forward_last: ids\[1\] = 500 is outside \[0, 101\)$/);
    await refused(() => generate(t5, [1, 500], { maxNewTokens: 1 }), "WF510", /^encode: ids\[1\] = 500 is outside \[0, 97\)$/);
    expect((await generate(gpt2, [1, 2], { maxNewTokens: 3, stopAtEos: false })).ids).toHaveLength(3);
  });
});

describe("meanNll", () => {
  it("refuses an encoder and ids outside the vocabulary", async () => {
    await refused(() => meanNll(bert, [1, 2, 3]), "WF511", /^perplexity needs a causal LM; this artifact is an encoder model$/);
    await refused(() => meanNll(gpt2, [1, 2, 101]), "WF510", /^id 101 at position 2 is outside the vocabulary \[0, 101\)$/);
  });
});
