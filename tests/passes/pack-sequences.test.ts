// pack-sequences: an encoder call of several sequences side by side (the entries' `_packed`
// forms). The reference semantics (a packed call is the sequences' calls concatenated) in the
// interpreter, the compiled kernels against them, Model.runSequences, embed() and classify()
// against one-by-one calls, and which entries the pass leaves alone.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { printProgram } from "../../ir/graph.js";
import { interpret, newSession } from "../../ir/interp.js";
import { type Program, rowWidth } from "../../ir/types.js";
import { compileModel } from "../../compiler/compile.js";
import { exportOnnx } from "../../compiler/export/onnx.js";
import { loadProgram } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { unpackable } from "../../compiler/passes/pack-sequences.js";
import { classify, embed } from "../../runtime/embed.js";
import { ArtifactError } from "../../runtime/errors.js";
import type { RunInputs } from "../../runtime/model.js";
import { loadArtifact } from "../../runtime/node.js";
import { compileInMemory, families, fixtureDir, fixtureProgram, relError, root } from "../helpers.js";

/** A fixture's program, with its head count changed where its own gives head sizes the generated attention kernel does not run. */
const program = (name: string, heads?: number): Program => {
  const keys = name === "bart" ? ["encoder_attention_heads", "decoder_attention_heads"] : ["num_attention_heads"];
  return runPipeline(loadProgram(join(root, "examples", `${families[name] ?? name.split("-")[0]}.wf`), fixtureDir(name), heads ? { config: keys.map((key) => ({ key, value: heads })) } : {}));
};

// BERT: segments and learned positions; RoBERTa: positions from the padding id; DistilBERT: the
// sinusoidal table; ALBERT: the shared layer
// (head sizes 4, 4, 12, 4); and their sequence classifiers, whose heads read the first token
const packable: [string, number | undefined][] = [
  ["bert", 13], ["roberta", 11], ["distilbert", undefined], ["albert", 11],
  ["bert-cls", 13], ["roberta-cls", 11], ["distilbert-cls", undefined], ["albert-cls", 11],
];

/** Sequences of 5, 1, 9, 3 and 12 tokens, with segments (below `types`), one with padding and one starting with RoBERTa's padding id 1. */
function sequences(limit: number, types = 2): RunInputs[] {
  return [5, 1, 9, 3, 12].map((n, s) => ({
    ids: Array.from({ length: n }, (_, i) => (s === 4 && i === 0 ? 1 : (i * 7 + s * 5 + 2) % limit)),
    segments: Array.from({ length: n }, (_, i) => (i >= n / 2 ? 1 : 0) % types),
    padding: Array.from({ length: n }, (_, i) => (s === 2 && i >= 6 ? 0 : 1)),
  }));
}

/** Inputs by name for the interpreter: each sequence's run of the entry, or all of them packed into one call of its packed form. */
function interpInputs(p: Program, list: RunInputs[], packed: boolean) {
  const g = p.graphs.find((x) => x.name === (packed ? "forward_packed" : "forward"))!;
  const byKind = (kind: string) => g.nodes.find((n) => n.op === "input" && n.attrs.kind === kind)?.attrs.name as string | undefined;
  const feed = (l: RunInputs[]) => {
    const out: Record<string, Int32Array | Float32Array> = {};
    const cat = (f: (x: RunInputs) => ArrayLike<number>) => l.flatMap((x) => Array.from(f(x)));
    out[byKind("tokens")!] = Int32Array.from(cat((x) => x.ids));
    if (byKind("segments")) out[byKind("segments")!] = Int32Array.from(cat((x) => x.segments!));
    if (byKind("padding")) out[byKind("padding")!] = Float32Array.from(cat((x) => x.padding!));
    if (packed) {
      const bounds: number[] = [];
      let at = 0;
      for (const x of l) {
        for (let r = 0; r < x.ids.length; r++) bounds.push(at, at + x.ids.length);
        at += x.ids.length;
      }
      out[byKind("sequences")!] = Int32Array.from(bounds);
    }
    return out;
  };
  return packed ? [feed(list)] : list.map((x) => feed([x]));
}

describe.each(packable)("%s: packed sequences", (name, heads) => {
  const p = program(name, heads);
  const entry = p.graphs.find((g) => g.name === "forward")!;
  const packedEntry = p.graphs.find((g) => g.name === "forward_packed")!;
  // the rows of the tables the ids and the segments index
  const rowsOf = (kind: string) => {
    const inp = entry.nodes.find((n) => n.op === "input" && n.attrs.kind === kind);
    const tables = entry.nodes.filter((n) => n.op === "embedding" && n.args[1] === inp?.id).map((n) => entry.nodes[n.args[0]].type.shape[0] as number);
    return tables.length ? Math.min(...tables) : 2;
  };
  const list = sequences(rowsOf("tokens"), rowsOf("segments"));
  // each output's width, and whether it has a row per input row (else a head's one row)
  const outs = entry.outputs.map((o) => ({ name: o.name, width: rowWidth(entry.nodes[o.id].type.shape), perRow: entry.nodes[o.id].type.shape[0] === "S" }));
  const starts = list.map((_, s) => list.slice(0, s).reduce((a, x) => a + x.ids.length, 0));

  it("the pass added forward_packed, whose sequences input its attention, position and first-row ops take", () => {
    expect(unpackable(entry)).toBeNull();
    expect(entry.nodes.some((n) => n.attrs.sequences)).toBe(false);
    const text = printProgram(p);
    expect(text).toContain("graph forward_packed {");
    expect(text).toContain('= input() {name="sequences", kind="sequences", dtype="i32", shape=[S,2]} : i32[S,2]');
    const takers = packedEntry.nodes.filter((n) => n.attrs.sequences === true).map((n) => n.op);
    expect(takers).toContain("attention");
    expect(takers.some((op) => op === "positions" || op === "sinusoidal_positions")).toBe(true);
    if (outs.some((o) => !o.perRow)) expect(takers).toContain("first_row");
  });

  it("interpreter: a packed call equals the sequences' calls (a head's row: each sequence's first row)", () => {
    const [packedIn] = interpInputs(p, list, true);
    const packed = interpret(p, packedEntry.name, packedIn, newSession());
    const one = interpInputs(p, list, false).map((inp) => interpret(p, entry.name, inp, newSession()));
    for (const o of outs)
      list.forEach((x, s) => {
        const rows = o.perRow ? x.ids.length : 1;
        expect(relError(packed[o.name].subarray(starts[s] * o.width, (starts[s] + rows) * o.width), one[s][o.name])).toBeLessThan(1e-6);
      });
  });

  it("compiled: runSequences equals run one by one, and the interpreter's packed call", async () => {
    const { model } = await compileInMemory(p);
    const [packedIn] = interpInputs(p, list, true);
    const ref = interpret(p, packedEntry.name, packedIn, newSession());
    const got = model.runSequences("forward", list);
    list.forEach((x, s) => {
      const alone = model.run("forward", x);
      for (const o of outs) {
        const rows = o.perRow ? x.ids.length : 1;
        expect(got[s][o.name].length).toBe(rows * o.width);
        expect(relError(got[s][o.name], alone[o.name])).toBeLessThan(1e-6);
        expect(relError(got[s][o.name], ref[o.name].subarray(starts[s] * o.width, (starts[s] + rows) * o.width))).toBeLessThan(1e-5);
      }
    });
    // at most 10 rows a call: [5, 1], [9], [3], [12] (a longer sequence runs alone)
    const split = model.runSequences("forward", list, { maxRows: 10 });
    split.forEach((r, s) => outs.forEach((o) => expect(relError(r[o.name], got[s][o.name])).toBeLessThan(1e-6)));
  });
});

describe("runSequences and embed", () => {
  it("embed() packs a batch and gives one-by-one calls' embeddings (DistilBERT)", async () => {
    const { model } = await compileInMemory(program("distilbert"));
    const list = sequences(50).map((x) => ({ ids: x.ids }));
    const batch = await embed(model, list, { normalize: true });
    for (let i = 0; i < list.length; i++) expect(relError(batch[i], (await embed(model, [list[i]], { normalize: true }))[0])).toBeLessThan(1e-6);
  });

  it("classify() packs a batch and gives one-by-one calls' labels and scores (DistilBERT classifier)", async () => {
    const out = mkdtempSync(join(tmpdir(), "wf-packed-cls-"));
    compileModel(join(root, "examples", "distilbert.wf"), fixtureDir("distilbert-cls"), out, { force: true });
    const model = await loadArtifact(out);
    expect(model.manifest.entries.map((e) => e.name)).toEqual(["forward", "forward_packed"]);
    const list = sequences(50).map((x) => ({ ids: x.ids }));
    const batch = await classify(model, list);
    for (let i = 0; i < list.length; i++) {
      const [alone] = await classify(model, [list[i]]);
      expect(batch[i].map((c) => c.label)).toEqual(alone.map((c) => c.label));
      expect(relError(batch[i].map((c) => c.score), alone.map((c) => c.score))).toBeLessThan(1e-6);
    }
  });

  it("an entry without a packed form (head size 13) runs the sequences one by one", async () => {
    const p = fixtureProgram("bert");
    expect(unpackable(p.graphs[0])).toMatch(/attention %\d+ is not one the generated kernel runs/);
    const { model, art } = await compileInMemory(p);
    expect(art.manifest.entries.map((e) => e.name)).toEqual(["forward"]);
    const list = sequences(50);
    model.runSequences("forward", list).forEach((r, s) => expect(relError(r.hidden, model.run("forward", list[s]).hidden)).toBeLessThan(1e-7));
  });

  it("the ONNX export writes the entry (a batch dimension), and refuses its packed form in one line", () => {
    const p = program("distilbert");
    expect(exportOnnx(p).byteLength).toBeGreaterThan(0);
    expect(() => exportOnnx(p, { entry: "forward_packed" })).toThrow(/packed sequences are not exported: export the entry without the _packed suffix/);
  });

  it("leaves causal LMs and entries fed another entry's state unpacked", () => {
    for (const g of fixtureProgram("gpt2").graphs) expect(unpackable(g)).toBe("it has a KV cache");
    expect(unpackable(program("bart", 3).graphs.find((g) => g.name === "decode")!)).toBe("its input hidden is of kind state");
    // BART's encoder packs (its decoder runs on the encoder output as state)
    expect(unpackable(program("bart", 3).graphs.find((g) => g.name === "encode")!)).toBeNull();
  });

  it("refuses a cached entry, a bad maxRows and a bad sequence with one WF5xx line", async () => {
    const { model } = await compileInMemory(program("distilbert"));
    const gpt2 = (await compileInMemory(fixtureProgram("gpt2", { context: 16 }))).model;
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as ArtifactError;
      }
      throw new Error("no error");
    };
    expect(err(() => gpt2.runSequences("forward", [{ ids: [1] }])).code).toBe("WF511");
    expect(err(() => model.runSequences("forward", [{ ids: [1] }], { maxRows: 0 })).message).toBe("forward: maxRows should be a positive integer, got 0");
    expect(err(() => model.runSequences("forward", [{ ids: [1, 2] }, { ids: [1, 1e9] }])).message).toMatch(/^forward: sequences\[1\]: ids\[1\] = 1000000000 is outside \[0, \d+\)$/);
    // embed() checks through it: a malformed input is named, nothing else thrown
    const e = (await embed(model, [[1, 2], null as never]).catch((x: unknown) => x)) as ArtifactError;
    expect([e.code, e.message]).toEqual(["WF510", "forward: sequences[1]: ids should be an array of numbers, got null"]);
  });
});
