// Runtime loading paths: bytes, streams and fill functions; wrong sizes are clear errors.

import { describe, expect, it } from "vitest";
import { ArtifactError, Model } from "../runtime/model.js";
import { compileInMemory, fixtureProgram } from "./helpers.js";

describe("Model.load", async () => {
  const { art } = await compileInMemory(fixtureProgram("gpt2"));
  const ids = [5, 6, 7];
  const expected = (await Model.load({ manifest: art.manifest, wasm: art.wasm, weights: art.weights })).run("forward", { ids }).logits;
  const stream = (bytes: Uint8Array, chunk = 1000) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += chunk) c.enqueue(bytes.slice(i, i + chunk));
        c.close();
      },
    });

  it("from a stream of chunks", async () => {
    const m = await Model.load({ manifest: art.manifest, wasm: art.wasm, weights: stream(art.weights) });
    expect(m.run("forward", { ids }).logits).toEqual(expected);
  });
  it("from a function filling linear memory", async () => {
    const m = await Model.load({ manifest: art.manifest, wasm: art.wasm, weights: (into) => into.set(art.weights) });
    expect(m.run("forward", { ids }).logits).toEqual(expected);
  });
  it("a short or long weights file is an error, not a partial model", async () => {
    await expect(Model.load({ manifest: art.manifest, wasm: art.wasm, weights: art.weights.subarray(1) })).rejects.toThrow(ArtifactError);
    await expect(Model.load({ manifest: art.manifest, wasm: art.wasm, weights: stream(art.weights.subarray(0, art.weights.length - 3)) })).rejects.toThrow(/weights.bin has \d+ bytes, the manifest expects/);
    const longer = new Uint8Array(art.weights.length + 5);
    await expect(Model.load({ manifest: art.manifest, wasm: art.wasm, weights: stream(longer) })).rejects.toThrow(ArtifactError);
  });
  it("rejects a manifest of another format", async () => {
    await expect(Model.load({ manifest: { ...art.manifest, version: 2 as never }, wasm: art.wasm, weights: art.weights })).rejects.toThrow(/not a wasmformer v1 artifact/);
  });
});
