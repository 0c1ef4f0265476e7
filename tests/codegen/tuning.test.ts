// The integer-path row bound is an IR attribute: quantize-weights writes codegen's tuning into
// int_rows, and the interpreter and the kernels both read the attribute, never the tuning.

import { describe, expect, it } from "vitest";
import { integerRowBound } from "../../compiler/codegen/tuning.js";
import { quantizeWeights } from "../../compiler/passes/quantize-weights.js";
import { GraphBuilder } from "../../ir/graph.js";
import { integerPath } from "../../ir/quant.js";
import type { Param, Program } from "../../ir/types.js";
import { rng } from "../helpers.js";

function linearProgram(K: number, gated = false): Program {
  const r = rng(K);
  const params = new Map<string, Param>();
  const b = new GraphBuilder("forward");
  const param = (name: string, shape: number[]) => {
    params.set(name, { name, shape, data: r.floats(shape[0] * shape[1]) });
    return b.add("param", [], { name, shape });
  };
  const ids = b.add("input", [], { name: "ids", kind: "tokens", dtype: "i32", shape: ["S"] });
  const x = b.add("embedding", [param("table", [10, K]), ids]);
  const y = gated ? b.add("gated_linear", [x, param("wg", [8, K]), param("wu", [8, K])], { act: "silu" }) : b.add("linear", [x, param("w", [8, K])]);
  b.output("y", y);
  return { model: "t", config: {}, context: 64, graphs: [b.build()], params };
}

const quantizedNode = (K: number, scheme: "int8" | "int4" | "int4-min", gated = false) => {
  const n = quantizeWeights(linearProgram(K, gated), { scheme }).graphs[0].nodes.find((n) => n.op === "linear" || n.op === "gated_linear")!;
  expect(n.attrs.quant).toBeDefined();
  return n;
};
const intRowsAfter = (K: number, scheme: "int8" | "int4" | "int4-min", gated = false) => quantizedNode(K, scheme, gated).attrs.int_rows;

describe("quantize-weights sets the integer-path row bound (attr int_rows) from codegen's tuning", () => {
  it("q8_0 at K ≤ 1024: no bound, every call takes integer dot products", () => {
    expect(integerRowBound("q8_0", 1024)).toBeUndefined();
    expect(intRowsAfter(64, "int8")).toBeUndefined();
    expect(intRowsAfter(1024, "int8", true)).toBeUndefined();
  });
  it("q8_0 at K > 1024, q4_0 and q4_1 at any K: the tuned bound", () => {
    expect(intRowsAfter(1056, "int8")).toBe(16);
    expect(intRowsAfter(1056, "int8", true)).toBe(16);
    expect(intRowsAfter(64, "int4")).toBe(16);
    expect(intRowsAfter(64, "int4-min")).toBe(3);
    expect(intRowsAfter(64, "int4-min", true)).toBe(3);
  });
  it("the relaxed module's bound, int_rows_relaxed, only where it differs: 512 rows for 4-bit weights", () => {
    expect(quantizedNode(64, "int4").attrs.int_rows_relaxed).toBe(512);
    expect(quantizedNode(2048, "int4-min", true).attrs.int_rows_relaxed).toBe(512);
    expect(quantizedNode(1056, "int8").attrs.int_rows_relaxed).toBeUndefined();
    expect(quantizedNode(64, "int8").attrs.int_rows_relaxed).toBeUndefined();
  });
});

describe("the IR's integer path depends on attrs only", () => {
  it("quantized: rows ≤ int_rows, or every call without int_rows; never without quant", () => {
    expect(integerPath({ quant: "q4_0", int_rows: 16 }, 16)).toBe(true);
    expect(integerPath({ quant: "q4_0", int_rows: 16 }, 17)).toBe(false);
    expect(integerPath({ quant: "q4_0", int_rows: 0 }, 1)).toBe(false);
    expect(integerPath({ quant: "q8_0" }, 100000)).toBe(true);
    expect(integerPath({ int_rows: 16 }, 1)).toBe(false);
    expect(integerPath({}, 1)).toBe(false);
  });
  it("the relaxed module reads int_rows_relaxed where it is set, else int_rows", () => {
    const attrs = { quant: "q4_0", int_rows: 2, int_rows_relaxed: 48 };
    expect(integerPath(attrs, 40)).toBe(false);
    expect(integerPath(attrs, 40, true)).toBe(true);
    expect(integerPath(attrs, 49, true)).toBe(false);
    expect(integerPath({ quant: "q4_0", int_rows: 2 }, 3, true)).toBe(false);
    expect(integerPath({ quant: "q8_0" }, 100000, true)).toBe(true);
  });
});
