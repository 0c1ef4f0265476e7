// Runtime loading paths: bytes, streams and fill functions; wrong sizes are clear errors.
// Model.run's outputs: fresh arrays, or the caller's arrays reused.

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
  it("rejects a manifest of another version, asking to recompile", async () => {
    await expect(Model.load({ manifest: { ...art.manifest, version: 1 as never }, wasm: art.wasm, weights: art.weights })).rejects.toThrow(/^manifest\.json: manifest version 1 is not supported \(this runtime reads version 3\): recompile/);
  });
});

describe("Model.run into the caller's arrays", async () => {
  const { art } = await compileInMemory(fixtureProgram("gpt2"));
  const m = await Model.load({ manifest: art.manifest, wasm: art.wasm, weights: art.weights });
  const vocab = m.entry("forward").outputs[0].width;

  it("fills the start of a longer array and returns a view of this call's rows", () => {
    // (forward continues the KV cache: each call starts a fresh sequence)
    m.reset();
    const fresh = m.run("forward", { ids: [5, 6, 7] }).logits;
    m.reset();
    const buf = new Float32Array(5 * vocab).fill(-7);
    const got = m.run("forward", { ids: [5, 6, 7] }, { logits: buf }).logits;
    expect(got.buffer).toBe(buf.buffer);
    expect(got.length).toBe(3 * vocab);
    expect(got).toEqual(fresh);
    expect(buf[3 * vocab]).toBe(-7); // nothing written past this call's rows
    // a later call overwrites it: the caller chose to reuse it
    m.reset();
    const again = m.run("forward", { ids: [9, 4] }, { logits: buf }).logits;
    m.reset();
    expect(again).toEqual(m.run("forward", { ids: [9, 4] }).logits);
    expect(got.subarray(0, 2 * vocab)).toEqual(again);
  });
  it("a short or wrong array, or an unknown output name, is an error before anything runs", () => {
    m.reset();
    expect(() => m.run("forward", { ids: [5, 6, 7] }, { logits: new Float32Array(3 * vocab - 1) })).toThrow(/into.logits must be a Float32Array of at least \d+ values, got \d+/);
    expect(() => m.run("forward", { ids: [5] }, { logits: new Float64Array(vocab) as never })).toThrow(ArtifactError);
    expect(() => m.run("forward", { ids: [5] }, { logit: new Float32Array(vocab) })).toThrow(/into.logit names no output \(outputs: logits\)/);
    expect(m.past).toBe(0);
  });
});
