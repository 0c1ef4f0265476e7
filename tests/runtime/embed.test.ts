// Sentence embeddings (runtime/embed.ts) with sentence-transformers semantics, pooled from BERT
// hidden states that match PyTorch's (tests/fixtures/bert): mean, first and last token, L2
// normalization, and a batch of different lengths equal to one-by-one calls.

import { describe, expect, it } from "vitest";
import { embed } from "../../runtime/embed.js";
import { ArtifactError } from "../../runtime/errors.js";
import { compileInMemory, fixtureProgram, readExpected, readFixture, relError } from "../helpers.js";

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
