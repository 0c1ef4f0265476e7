// The timing loop (runtime/bench.ts) as `npm run bench` uses it, on the bundled tiny GPT-2: what
// each repetition feeds and from which cache depth (fixed-depth decode steps, depths fed in
// batches), subjects timed in turn for paired ratios, the prefill entry a subject runs, and the
// ONNX Runtime Web subject's rewind against fresh runs of the same ids.

import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { describe, expect, it, vi } from "vitest";
import { type OrtModule, type OrtSession, ortFeeds, ortSubject } from "../../compiler/cli/peer-subjects.js";
import { exportOnnx, onnxCacheLayout } from "../../compiler/export/onnx.js";
import { loadProgram } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { type BenchSubject, benchSubject, benchSubjects, modelSubject, speedups } from "../../runtime/bench.js";
import type { Model } from "../../runtime/model.js";
import { compileInMemory, relError, root } from "../helpers.js";

const program = runPipeline(loadProgram(join(root, "examples/gpt2.wf"), join(root, "examples/tiny-gpt2"), { context: 64 }));
const { model } = await compileInMemory(program);
const { model: other } = await compileInMemory(program);

/** The model as a subject that also logs each feed: [tag, ids fed, rows cached before]. */
function logged(m: Model, log: [string, number, number][], tag = "") {
  const s = modelSubject(m);
  return { ...s, feed: (ids: number[]) => (log.push([tag, ids.length, m.past]), s.feed(ids)) } satisfies BenchSubject;
}

describe("benchSubject", () => {
  it("fixedDepth: the depth is fed once a test (depthBatch ids a call) and every timed step starts from it", async () => {
    const log: [string, number, number][] = [];
    const rows = await benchSubject(logged(model, log), { prompt: [4], gen: [3], depths: [5], repetitions: 2, fixedDepth: true, depthBatch: 2 });
    const depth = [["", 2, 0], ["", 2, 2], ["", 1, 4]];
    expect(log).toEqual([...depth, ...Array(3).fill(["", 4, 5]), ...depth, ...Array(9).fill(["", 1, 5])]);
    expect(rows.map((r) => [r.test, r.seconds.length])).toEqual([["pp4 @ d5", 2], ["tg3 @ d5 fixed", 2]]);
    for (const r of rows) {
      expect(r.min).toBeLessThanOrEqual(r.median);
      expect(r.median).toBeLessThanOrEqual(r.max);
      expect(r.median).toBeCloseTo((r.tokens / r.seconds[0] + r.tokens / r.seconds[1]) / 2, 6);
    }
    expect(model.past).toBe(0);
  });

  it("without fixedDepth each repetition resets, feeds the depth and runs its steps one after another", async () => {
    const log: [string, number, number][] = [];
    await benchSubject(logged(model, log), { prompt: [], gen: [2], depths: [3], repetitions: 2, warmups: 0 });
    expect(log).toEqual([["", 3, 0], ["", 1, 3], ["", 1, 4], ["", 3, 0], ["", 1, 3], ["", 1, 4]]);
  });

  it("refuses fixedDepth on a subject that cannot rewind, and bad counts, as WF510", async () => {
    const { rewind: _, ...noRewind } = modelSubject(model);
    await expect(benchSubject(noRewind, { fixedDepth: true })).rejects.toMatchObject({ code: "WF510", message: "fixedDepth needs subjects that rewind their cache" });
    await expect(benchSubject(modelSubject(model), { warmups: -1 })).rejects.toMatchObject({ code: "WF510" });
    await expect(benchSubject(modelSubject(model), { depthBatch: 0 })).rejects.toMatchObject({ code: "WF510" });
    // a fixed-depth step needs one position past the depth, not one per step
    const [r] = await benchSubject(modelSubject(model), { prompt: [], gen: [8], depths: [63], repetitions: 1, fixedDepth: true });
    expect(r.test).toBe("tg8 @ d63 fixed");
  });
});

describe("benchSubjects", () => {
  it("runs each repetition on every subject in turn, the first alternating; speedups pairs the repetitions", async () => {
    const log: [string, number, number][] = [];
    const [[a], [b]] = await benchSubjects([logged(model, log, "a"), logged(other, log, "b")], { prompt: [4], gen: [], repetitions: 3 });
    expect(log.map(([tag]) => tag).join("")).toBe("abbaabba"); // a warm-up, then three timed repetitions
    const ratios = speedups(a, b);
    expect(ratios).toHaveLength(3);
    ratios.forEach((x, i) => expect(x).toBeCloseTo(a.seconds[i] / b.seconds[i], 12));
    const [[longer]] = await benchSubjects([modelSubject(model)], { prompt: [4], gen: [], repetitions: 4 });
    expect(() => speedups(a, longer)).toThrow(/time both in one benchSubjects call/);
  });
});

describe("modelSubject", () => {
  it("prompts take forward_last, or forward with logits 'all'; one token forward_last; reuseOutputs writes into the last call's arrays", async () => {
    const run = vi.spyOn(model, "run");
    try {
      const all = modelSubject(model, { logits: "all", reuseOutputs: true });
      all.reset();
      all.feed([1, 2, 3]);
      all.feed([4]);
      all.rewind!(3);
      all.feed([5]);
      modelSubject(model).feed([6, 7]);
      expect(run.mock.calls.map(([entry, inputs]) => [entry, inputs.ids.length])).toEqual([["forward", 3], ["forward_last", 1], ["forward_last", 1], ["forward_last", 2]]);
      expect(run.mock.results[2].value.logits.buffer).toBe(run.mock.results[1].value.logits.buffer);
      expect(model.past).toBe(6);
    } finally {
      run.mockRestore();
      model.reset();
    }
  });
});

describe("ortSubject", () => {
  it("a step after rewinding gives the logits of a fresh run on the ids kept", async () => {
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    const session = await ort.InferenceSession.create(exportOnnx(program));
    const caches = onnxCacheLayout(program);
    const ortModule = ort as unknown as OrtModule;
    const fed: Record<string, { dims: readonly number[] }>[] = [];
    const outs: Float32Array[] = [];
    const logging: OrtSession = {
      async run(feeds) {
        fed.push(feeds);
        const out = await session.run(feeds as never);
        outs.push(out.logits.data as Float32Array);
        return out;
      },
      release: () => session.release(),
    };
    const forward = program.graphs.find((g) => g.name === "forward")!;
    const vocab = forward.nodes[forward.outputs.find((o) => o.name === "logits")!.id].type.shape.at(-1) as number;
    const s = ortSubject(ortModule, logging, { context: 64, vocab, caches });
    const lastRow = (x: Float32Array) => x.subarray(x.length - vocab);
    const fresh = async (ids: number[]) => lastRow((await session.run(ortFeeds(ortModule, caches, ids) as never)).logits.data as Float32Array);
    await s.feed([11, 12, 13, 14, 15, 16]);
    await s.rewind!(4); // the first 4 of 6 rows, copied
    await s.feed([17]);
    expect(fed[1].past_key_0.dims[2]).toBe(4);
    expect(relError(outs[1], await fresh([11, 12, 13, 14, 17]))).toBeLessThan(1e-5);
    await s.feed([18]);
    await s.rewind!(5); // the pasts before the last feed
    await s.feed([19]);
    expect(fed[3].past_key_0).toBe(fed[2].past_key_0);
    expect(relError(outs[3], await fresh([11, 12, 13, 14, 17, 19]))).toBeLessThan(1e-5);
    await session.release();
  });
});
