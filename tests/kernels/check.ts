// The kernel check: a one-op (or few-op) graph compiled alone and run over several calls
// against the IR interpreter, with sentinels past every buffer's written rows.

import { expect } from "vitest";
import { GraphBuilder } from "../../ir/graph.js";
import { interpret, newSession } from "../../ir/interp.js";
import type { Param, Program } from "../../ir/types.js";
import { rowWidth } from "../../ir/types.js";
import { compileInMemory, relError, rng } from "../helpers.js";

type R = ReturnType<typeof rng>;
export interface Ctx {
  b: GraphBuilder;
  r: R;
  /** A random activation [S, D] (an embedding lookup of the token ids into a random table). */
  act(D: number, scale?: number): number;
  param(shape: number[], scale?: number): number;
  ids: number;
  /** A 0/1 padding mask input [S] (random per call, never all zero). */
  mask(): number;
}
export type Case = (c: Ctx) => number;

const SENTINEL = 0xa5;
const VOCAB = 50;

/** `relaxed`: run the artifact's relaxed-SIMD module (the process must allow relaxed SIMD). */
export async function check(seed: number, build: Case, calls: number[], context = 32, transform: (p: Program) => Program = (p) => p, { relaxed = false } = {}) {
  const r = rng(seed);
  const params = new Map<string, Param>();
  const b = new GraphBuilder("forward");
  const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
  let np = 0;
  const param = (shape: number[], scale = 1) => {
    const name = `p${np++}`;
    params.set(name, { name, shape, data: r.floats(shape.reduce((x, y) => x * y, 1), scale) });
    return b.add("param", [], { name, shape });
  };
  let maskId: number | undefined;
  const mask = () => (maskId ??= b.add("input", [], { name: "mask", kind: "padding", dtype: "f32", shape: ["S"] }));
  const ctx: Ctx = { b, r, ids, param, mask, act: (D, scale = 1) => b.add("embedding", [param([VOCAB, D], scale), ids]) };
  b.output("y", build(ctx));
  const p: Program = transform({ model: "kernel", config: {}, context, graphs: [b.build()], params });
  const { art, model } = await compileInMemory(p, { noReuse: true, relaxed });
  const g = p.graphs[0];
  const bufs = art.buffers.get("forward")!;
  const mem = new Uint8Array(model.memory.buffer);
  // the interpreter as the reference of the module run (which calls of a quantized linear take the integer path)
  const session = newSession({ relaxed });
  const tails = (rows: number) =>
    g.nodes
      .filter((n) => n.op !== "param" && typeof n.type.shape[0] === "string")
      .map((n) => ({ n, from: bufs.get(n.id)! + rows * rowWidth(n.type.shape) * 4, to: bufs.get(n.id)! + context * rowWidth(n.type.shape) * 4 }));
  for (const rows of calls) {
    // sentinel bytes in every activation buffer past the rows this call may write
    for (const t of tails(rows)) mem.fill(SENTINEL, t.from, t.to);
    const tokens = Array.from({ length: rows }, () => r.int(0, VOCAB - 1));
    const padding = Array.from({ length: rows }, (_, i) => (i === 0 || r.next() < 0.6 ? 1 : 0));
    const got = model.run("forward", { ids: tokens, padding }).y;
    const want = interpret(p, "forward", { ids: Int32Array.from(tokens), mask: Float32Array.from(padding) }, session).y;
    expect(relError(got, want), `rows ${rows}`).toBeLessThan(2e-5);
    for (const t of tails(rows)) {
      const tail = mem.subarray(t.from, t.to);
      expect(tail.every((x) => x === SENTINEL), `${t.n.op} %${t.n.id} wrote past its ${rows} rows`).toBe(true);
    }
  }
}
