// Artifacts are untrusted input: a manifest that breaks the schema, a manifest that disagrees
// with the module it names, and a module that is not one, are each refused by Model.load with
// one line naming the file and the field.

import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../ir/graph.js";
import { ArtifactError } from "../../runtime/errors.js";
import { hasRelaxedSimd } from "../../runtime/features.js";
import { LAYOUT_SECTION, type Manifest, layoutOf } from "../../runtime/manifest.js";
import { Model } from "../../runtime/model.js";
import { validateManifest } from "../../runtime/validate.js";
import { compileInMemory, fixtureProgram } from "../helpers.js";
import { refused, tinyModule } from "./refused.js";

/** Parsed JSON, edited freely by the cases. */
type Json = any;

const { art } = await compileInMemory(fixtureProgram("gpt2", { context: 16 }));
/** A copy of the compiled manifest with `change` applied (special tokens as compile writes them). */
const edited = (change: (m: Json) => void = () => {}): Json => {
  const m: Json = structuredClone({ ...art.manifest, tokens: { eos: [100], bos: 100 } });
  change(m);
  return m;
};
const load = (manifest: Json, wasm: Uint8Array = art.wasm, more: { location?: string; wasmFile?: string } = {}) =>
  Model.load({ manifest, wasm, weights: art.weights, ...more });

describe("the manifest schema", () => {
  it("accepts the compiler's manifests", async () => {
    expect(validateManifest(edited())).toEqual(edited());
    const m = await load(edited());
    expect(m.run("forward", { ids: [5, 6] }).logits.length).toBe(2 * 101);
  });

  // [what, change, code, message]
  const cases: [string, (m: Json) => Json | void, string, RegExp][] = [
    ["a manifest of null (the 'reading variants' reproducer)", () => null, "WF503", /^manifest\.json: should hold a JSON object, found null$/],
    ["an array", () => [], "WF503", /^manifest\.json: should hold a JSON object, found an array of 0$/],
    ["null variants", (m) => void (m.variants = null), "WF503", /^manifest\.json: variants should be a non-empty array, found null$/],
    ["no variants", (m) => void (m.variants = []), "WF503", /^manifest\.json: variants should be a non-empty array, found an array of 0$/],
    ["a variant outside the folder", (m) => void (m.variants[0].file = "../../x.wasm"), "WF503", /^manifest\.json: variants\[0\]\.file should be a file name ending in \.wasm \(no folder\), found "\.\.\/\.\.\/x\.wasm"$/],
    ["null memory", (m) => void (m.memory = null), "WF503", /^manifest\.json: memory should be an object, found null$/],
    ["no entries", (m) => void (m.entries = []), "WF503", /^manifest\.json: entries should be a non-empty array, found an array of 0$/],
    ["an unknown kind", (m) => void (m.kind = "decoder"), "WF503", /^manifest\.json: kind should be one of "causal-lm", "encoder", "seq2seq", found "decoder"$/],
    ["an output width 0", (m) => void (m.entries[0].outputs[0].width = 0), "WF503", /^manifest\.json: entries\[0\]\.outputs\[0\]\.width should be a positive integer, found 0$/],
    ["a huge width", (m) => void (m.entries[0].outputs[0].width = 2 ** 40), "WF503", /^manifest\.json: entries\[0\]\.outputs\[0\]\.width should be at most 2147483647, found 1099511627776$/],
    ["a width past the memory", (m) => void (m.entries[1].outputs[0].width = 10 ** 6), "WF503", /^manifest\.json: entries\[1\]\.outputs\[0\] \(1 rows of 1000000 f32 at byte \d+\) ends at byte \d+, past the 393216 bytes of memory\.pages 6$/],
    ["an input past the memory", (m) => void (m.entries[0].inputs[0].offset = 393216 - 32), "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\] \(16 rows of 1 i32 at byte 393184\) ends at byte 393248, past the 393216 bytes/],
    ["huge weights", (m) => void (m.memory.weights_bytes = 2 ** 40), "WF503", /^manifest\.json: memory\.weights_offset \(1099511627776 bytes of weights at byte \d+\) ends at byte \d+, past the 393216 bytes of memory\.pages 6$/],
    ["a fractional width", (m) => void (m.entries[0].inputs[0].width = 1.5), "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\]\.width should be a positive integer, found 1\.5$/],
    ["a width given as text", (m) => void (m.entries[0].inputs[0].width = "1"), "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\]\.width should be a positive integer, found "1"$/],
    ["too many pages", (m) => void (m.memory.pages = 65537), "WF503", /^manifest\.json: memory\.pages should be at most 65536, found 65537$/],
    ["no pages", (m) => void (m.memory.pages = 0), "WF503", /^manifest\.json: memory\.pages should be a positive integer, found 0$/],
    ["context 0", (m) => void (m.context = 0), "WF503", /^manifest\.json: context should be a positive integer, found 0$/],
    ["a negative offset", (m) => void (m.entries[0].outputs[0].offset = -4), "WF503", /^manifest\.json: entries\[0\]\.outputs\[0\]\.offset should be a non-negative integer, found -4$/],
    ["a misaligned offset", (m) => void (m.entries[0].inputs[0].offset += 2), "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\]\.offset should be a multiple of 4, found \d+$/],
    ["a misaligned control block", (m) => void (m.memory.control += 1), "WF503", /^manifest\.json: memory\.control should be a multiple of 4/],
    ["a token input without a limit", (m) => void delete m.entries[0].inputs[0].limit, "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\]\.limit should be a positive integer, is missing$/],
    ["a limit 0", (m) => void (m.entries[0].inputs[0].limit = 0), "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\]\.limit should be a positive integer, found 0$/],
    ["float token ids", (m) => void (m.entries[0].inputs[0].dtype = "f32"), "WF503", /^manifest\.json: entries\[0\]\.inputs\[0\]\.dtype should be one of "i32", found "f32"$/],
    ["an unknown row count", (m) => void (m.entries[0].outputs[0].rows = "T"), "WF503", /^manifest\.json: entries\[0\]\.outputs\[0\]\.rows should be "S", "E" or a row count, found "T"$/],
    ["more fixed rows than the context", (m) => void (m.entries[1].outputs[0].rows = "17"), "WF503", /^manifest\.json: entries\[1\]\.outputs\[0\]\.rows should be at most the context \(16\), found "17"$/],
    ["two entries of one name", (m) => void (m.entries[1].name = "forward"), "WF503", /^manifest\.json: entries\[1\]\.name should be a name not used before in the list, found "forward"$/],
    ["an entry name that is no export name", (m) => void (m.entries[0].name = "for ward"), "WF503", /^manifest\.json: entries\[0\]\.name should be a function name, found "for ward"$/],
    ["a non-boolean cached", (m) => void (m.entries[0].cached = "yes"), "WF503", /^manifest\.json: entries\[0\]\.cached should be true or false, found "yes"$/],
    ["no outputs", (m) => void (m.entries[0].outputs = []), "WF503", /^manifest\.json: entries\[0\]\.outputs should be a non-empty array, found an array of 0$/],
    ["an EOS id outside the vocabulary", (m) => void (m.tokens.eos = [100, 101]), "WF503", /^manifest\.json: tokens\.eos\[1\] should be an id in the vocabulary \[0, 101\), found 101$/],
    ["a negative decoder start", (m) => void (m.tokens.decoder_start = -1), "WF503", /^manifest\.json: tokens\.decoder_start should be an id in the vocabulary \[0, 101\), found -1$/],
    ["a tokenizer outside the folder", (m) => void (m.tokenizer = "/etc/passwd"), "WF503", /^manifest\.json: tokenizer should be a file name \(no folder\), found "\/etc\/passwd"$/],
    ["a nested config value", (m) => void (m.config.d = { x: 1 }), "WF503", /^manifest\.json: config\.d should be a number, string, boolean or null, found an object$/],
    ["another format", (m) => void (m.format = "onnx"), "WF504", /^manifest\.json: not a wasmformer manifest \(format should be "wasmformer", found "onnx"\)$/],
    ["version 1", (m) => void (m.version = 1), "WF504", /^manifest\.json: manifest version 1 is not supported \(this runtime reads version 3\): recompile the artifact with this wasmformer$/],
    ["no version", (m) => void delete m.version, "WF504", /^manifest\.json: manifest version \(none\) is not supported/],
  ];
  for (const [what, change, code, message] of cases)
    it(`refuses ${what}`, async () => {
      let m = edited();
      const replaced = change(m);
      if (replaced !== undefined) m = replaced;
      await refused(() => load(m), code, message);
      // validateManifest alone says the same
      await refused(() => validateManifest(m), code, message);
    });

  it("gives a token input that indexes no table the i32 limit (every token input has one)", async () => {
    const b = new GraphBuilder("forward");
    const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
    const table = b.add("param", [], { name: "t", shape: [8, 4] });
    b.output("y", b.add("embedding", [table, b.add("positions", [ids])]));
    const params = new Map([["t", { name: "t", shape: [8, 4], data: new Float32Array(32).fill(1) }]]);
    const { art: own, model } = await compileInMemory({ model: "positions", config: {}, context: 8, graphs: [b.build()], params });
    expect(own.manifest.entries[0].inputs[0].limit).toBe(2 ** 31 - 1);
    expect(model.run("forward", { ids: [2 ** 31 - 2, 0] }).y).toEqual(new Float32Array(8).fill(1));
  });
  it("names the file where it came from", async () => {
    await refused(() => load(edited((m) => (m.entries[0].outputs[0].width = 0)), art.wasm, { location: "out/gpt2/" }), "WF503", /^out\/gpt2\/manifest\.json: entries\[0\]\.outputs\[0\]\.width/);
  });
});

describe("the manifest must match the module", () => {
  it("refuses a shifted weights_offset, naming both values", async () => {
    const at = art.manifest.memory.weights_offset;
    await refused(() => load(edited((m) => (m.memory.weights_offset += 64))), "WF505", new RegExp(`^manifest\\.json: memory\\.weights_offset is ${at + 64}, but model\\.wasm was compiled for ${at}$`));
  });
  it("refuses an edited output width, limit or context", async () => {
    await refused(() => load(edited((m) => (m.entries[0].outputs[0].width = 100))), "WF505", /^manifest\.json: entries\[0\]\.outputs\[0\]\.width is 100, but model\.wasm was compiled for 101$/);
    await refused(() => load(edited((m) => (m.entries[0].inputs[0].limit = 200))), "WF505", /^manifest\.json: entries\[0\]\.inputs\[0\]\.limit is 200, but model\.wasm was compiled for 101$/);
    await refused(() => load(edited((m) => (m.context = 15))), "WF505", /^manifest\.json: context is 15, but model\.wasm was compiled for 16$/);
  });
  it("refuses entries reordered, dropped or added to", async () => {
    await refused(() => load(edited((m) => m.entries.reverse())), "WF505", /^manifest\.json: entries\[0\]\.name is "forward_last", but model\.wasm was compiled for "forward"$/);
    await refused(() => load(edited((m) => m.entries.pop())), "WF505", /^manifest\.json: entries is an array of 1, but model\.wasm was compiled for an array of 2$/);
    await refused(() => load(edited((m) => (m.entries[0].outputs[0].bias = 1))), "WF505", /^manifest\.json: entries\[0\]\.outputs\[0\]\.bias is 1, but model\.wasm was compiled for nothing$/);
  });
  it("refuses the module of another compile, naming the variant", async () => {
    const other = (await compileInMemory(fixtureProgram("gpt2", { context: 24 }))).art;
    const threaded = other.variants!.find((v) => v.file === "model.threads.wasm")!.wasm;
    await refused(() => load(edited(), threaded, { wasmFile: "model.threads.wasm", location: "a" }), "WF505", /^a\/manifest\.json: context is 16, but a\/model\.threads\.wasm was compiled for 24$/);
    // a host without relaxed SIMD cannot compile the relaxed module: named, with the engine's reason
    const relaxed = art.variants!.find((v) => v.file === "model.relaxed.wasm")!.wasm;
    if (!hasRelaxedSimd()) await refused(() => load(edited(), relaxed, { wasmFile: "model.relaxed.wasm" }), "WF506", /^model\.relaxed\.wasm: not a WebAssembly module this host can compile \(.*relaxed.*\)$/);
  });

  // every field the module's code depends on, changed to another plausible value, is refused
  // naming it (or, where the change breaks the schema, naming the field or its buffer)
  const leaves: { path: (string | number)[]; value: unknown }[] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    else leaves.push({ path, value: v });
  };
  walk(layoutOf(art.manifest), []);
  const text = (path: (string | number)[]) => path.map((p, i) => (typeof p === "number" ? `[${p}]` : i ? `.${p}` : p)).join("");
  it(`refuses a change to any of the ${leaves.length} layout fields`, async () => {
    expect(leaves.length).toBeGreaterThan(30);
    for (const { path, value } of leaves) {
      const changed = typeof value === "number" ? value + 4 : typeof value === "boolean" ? !value : typeof value === "string" ? `${value}x` : "forward";
      const m = edited();
      let at = m;
      for (const p of path.slice(0, -1)) at = at[p];
      at[path[path.length - 1]] = changed;
      const err = await load(m).then(() => undefined, (e) => e);
      expect(err, text(path)).toBeInstanceOf(ArtifactError);
      expect(["WF503", "WF504", "WF505"], text(path)).toContain(err.code);
      const named = err.message.includes(`: ${text(path)} `) || err.message.includes(`: ${text(path.slice(0, -1))} (`) || (path[0] === "version" && /manifest version/.test(err.message));
      expect(named, `${text(path)}: ${err.message}`).toBe(true);
    }
  });
});

describe("the module", () => {
  it("refuses a corrupt model.wasm, naming it", async () => {
    const corrupt = art.wasm.slice();
    corrupt.fill(0, 0, 4);
    await refused(() => load(edited(), corrupt), "WF506", /^model\.wasm: not a WebAssembly module this host can compile \(expected magic word 00 61 73 6d, found 00 00 00 00 @\+0\)$/);
    await refused(() => load(edited(), art.wasm.subarray(0, art.wasm.length >> 1), { location: "dir" }), "WF506", /^dir\/model\.wasm: not a WebAssembly module this host can compile \(.+\)$/);
  });
  it("refuses a module without its layout, or with a broken one", async () => {
    await refused(() => load(edited(), tinyModule({ exports: ["forward", "forward_last"] })), "WF506", /^model\.wasm: no 'wasmformer\.layout' section \(not a module wasmformer compiled for manifest version 3\): recompile the artifact$/);
    await refused(() => load(edited(), tinyModule({ custom: { [LAYOUT_SECTION]: "{" } })), "WF506", /^model\.wasm: its 'wasmformer\.layout' section is not valid JSON \(.+\)$/);
  });
  it("refuses a module that lacks an entry's function", async () => {
    const layout = JSON.stringify(layoutOf(art.manifest));
    await refused(() => load(edited(), tinyModule({ exports: ["forward"], custom: { [LAYOUT_SECTION]: layout } })), "WF506", /^model\.wasm: exports no function 'forward_last' \(entry forward_last\)$/);
  });
  it("refuses a module that cannot be instantiated, naming it", async () => {
    const layout = JSON.stringify(layoutOf(art.manifest));
    const wasm = tinyModule({ exports: ["forward", "forward_last"], custom: { [LAYOUT_SECTION]: layout }, importFunction: "other" });
    await refused(() => load(edited(), wasm), "WF506", /^model\.wasm: cannot be instantiated \(.*other.*\)$/);
  });
  it("refuses weights of the wrong size, naming the file", async () => {
    await refused(() => Model.load({ manifest: edited(), wasm: art.wasm, weights: art.weights.subarray(4), location: "d" }), "WF507", new RegExp(`^d/weights\\.bin has ${art.weights.length - 4} bytes, the manifest expects ${art.weights.length}$`));
    await refused(() => Model.load({ manifest: edited(), wasm: art.wasm, weights: () => { throw new Error("disk on fire"); } }), "WF507", /^weights\.bin: cannot be read \(disk on fire\)$/);
  });
  it("refuses thread counts the artifact cannot serve", async () => {
    await refused(() => Model.load({ manifest: edited(), wasm: art.wasm, weights: art.weights }, { threads: 0 }), "WF510", /^threads must be a positive integer, got 0$/);
    await refused(() => Model.load({ manifest: edited(), wasm: art.wasm, weights: art.weights }, { threads: 17 }), "WF511", /^17 threads: the artifact's kernels have scratch for at most 16$/);
    await refused(() => Model.load({ manifest: edited(), wasm: art.wasm, weights: art.weights }, { threads: 2 }), "WF511", /need the threaded module/);
    const threaded = art.variants!.find((v) => v.file === "model.threads.wasm")!.wasm;
    await refused(() => Model.load({ manifest: edited(), wasm: threaded, weights: art.weights }, { threads: 2 }), "WF510", /^threads > 1 need a thread host/);
    const host = { start: () => Promise.reject(new Error("no workers\nhere")) };
    await refused(() => Model.load({ manifest: edited(), wasm: threaded, weights: art.weights }, { threads: 3, host }), "WF512", /^could not start 2 worker threads: no workers here$/);
  });
});
