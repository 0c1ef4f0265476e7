// The elaborator's bounds: loop trip counts, recursion depth, block call depth, tensor sizes and
// argument values, each a located diagnostic instead of a hang, a huge allocation or a JS stack
// overflow. (Loop and graph budgets on the gpt2 fixture: tests/frontend/errors/loop-*.wf, graph-size.wf.)

import { describe, expect, it } from "vitest";
import { Diagnostic, DiagnosticList, formatDiagnostic } from "../../compiler/diagnostics.js";
import { MAX_CALL_DEPTH, MAX_DEPTH, MAX_ELEMENTS, MAX_TRIPS } from "../../compiler/frontend/limits.js";
import { programFromSource } from "../../compiler/load.js";
import type { WeightSource } from "../../compiler/weights/source.js";

/** Tensors of the given shapes, read as zeros; reading one of `unreadable` fails the test. */
function memoryWeights(shapes: Record<string, number[]>, unreadable: string[] = []): WeightSource {
  return {
    description: "memory",
    names: () => Object.keys(shapes),
    info: (n) => (shapes[n] ? { dtype: "F32", shape: shapes[n], file: "memory" } : undefined),
    read: (n) => {
      if (unreadable.includes(n)) throw new Error(`read ${n}`);
      return new Float32Array(shapes[n].reduce((a, b) => a * b, 1));
    },
  };
}

const small = memoryWeights({ table: [16, 8], w: [8, 8] });
const head = `model m {\n  config { vocab: int from vocab; d: int from d; }\n  weights { table: [vocab, d] = "table"; w: [d, d] = "w"; }\n`;

/** `code [text at its span] message` of the first diagnostic compiling `text`, or "ok". */
function outcome(text: string, weights = small, config: Record<string, unknown> = { vocab: 16, d: 8 }, context?: number): string {
  try {
    programFromSource("m.wf", text, config, weights, { context });
    return "ok";
  } catch (e) {
    const d = e instanceof DiagnosticList ? e.diagnostics[0] : e;
    if (!(d instanceof Diagnostic)) throw e;
    const s = d.span!;
    return `${d.code} [${text.split("\n")[s.line - 1].slice(s.col - 1, s.col - 1 + (s.length ?? 1))}] ${d.message}`;
  }
}
const entry = (body: string, blocks = "") => `${head}${blocks}\n  entry f(ids: tokens) { let x = table[ids]; ${body} output y = x; }\n}`;

describe("loops", () => {
  it(`a loop of ${MAX_TRIPS} iterations runs; one more is refused before it starts`, () => {
    expect(outcome(entry(`for j in 0..${MAX_TRIPS} { }`))).toBe("ok");
    expect(outcome(entry(`for j in 1..${MAX_TRIPS} + 2 { x = x + x; }`))).toBe(
      `WF211 [for] loop 'for j in 1..${MAX_TRIPS} + 2' would run ${MAX_TRIPS + 1} times, more than ${MAX_TRIPS}`);
  });

  it("the bound's config value is named", () => {
    expect(outcome(`${head}  entry f(ids: tokens) { for j in d..vocab { } output y = table[ids]; }\n}`, memoryWeights({ table: [100000, 8], w: [8, 8] }), { vocab: 100000, d: 8 })).toBe(
      `WF211 [for] loop 'for j in d..vocab' would run 99992 times, more than ${MAX_TRIPS} (config.json 'd' = 8, config.json 'vocab' = 100000)`);
  });
});

describe("recursion depth", () => {
  /** n blocks, each returning `depth` additions onto the next block's result. */
  const chain = (n: number, depth: number) =>
    Array.from({ length: n }, (_, i) => `block b${i}(x) { return ${i + 1 < n ? `b${i + 1}(x)` : "x"}${" + x".repeat(depth)}; }`).join("\n");

  it("deep expressions through block calls are a diagnostic, not a JS stack overflow", () => {
    expect(outcome(entry("x = b0(x);", chain(3, 200)))).toBe("ok");
    for (const n of [8, 60]) {
      const got = outcome(entry("x = b0(x);", chain(n, 250)));
      expect(got).toMatch(new RegExp(`^WF212 \\[\\+\\] statements and expressions nested deeper than ${MAX_DEPTH} levels, counted through block calls \\(in b0 → b1 → `));
    }
  });

  it(`block calls nest at most ${MAX_CALL_DEPTH} deep`, () => {
    expect(outcome(entry("x = b0(x);", chain(MAX_CALL_DEPTH, 0)))).toBe("ok");
    expect(outcome(entry("x = b0(x);", chain(MAX_CALL_DEPTH + 1, 0)))).toBe(
      `WF212 [b${MAX_CALL_DEPTH}] block calls nested deeper than ${MAX_CALL_DEPTH}: b0 → b1 → b2 → … → b${MAX_CALL_DEPTH - 2} → b${MAX_CALL_DEPTH - 1} → b${MAX_CALL_DEPTH}`);
  });
});

describe("tensor sizes", () => {
  it("a declared weight over the element cap is refused before it is read", () => {
    const big = memoryWeights({ table: [65536, 32768], w: [32768, 32768] }, ["table", "w"]);
    expect(outcome(entry(""), big, { vocab: 65536, d: 32768 })).toBe(
      `WF213 [table] tensor 'table' of shape [65536, 32768] has ${2 ** 31} elements, more than ${MAX_ELEMENTS} (config.json 'vocab' = 65536, config.json 'd' = 32768)`);
  });

  it("an activation over the element cap at the compiled context is refused where it is made", () => {
    const wide = memoryWeights({ table: [16, 8], w: [4096, 8] });
    const text = `${head.replace('w: [d, d]', "w: [4096, d]")}  entry f(ids: tokens) { output y = linear(table[ids], w); }\n}`;
    expect(outcome(text, wide, { vocab: 16, d: 8 }, 64)).toBe("ok");
    expect(outcome(text, wide, { vocab: 16, d: 8 }, 2 ** 20)).toBe(
      `WF213 [linear] linear gives a tensor [S, 4096] of ${2 ** 32} elements at context ${2 ** 20}, more than ${MAX_ELEMENTS}`);
  });
});

describe("argument values", () => {
  it.each([
    ["x = x / 0;", "WF210 [/] '/' would scale a tensor by Infinity"],
    ["x = x * (1 / sqrt(d - d));", "WF210 [*] '*' would scale a tensor by Infinity"],
    ["x = x * sqrt(0 - d);", "WF210 [-] sqrt(): 'x' should be a non-negative number, found -8"],
    ["x = attention(x, x, x, heads: d - 9);", "WF210 [heads] attention(): 'heads' should be at least 1, found -1"],
    ["x = rope(x, head_dim: d / 3);", "WF204 [head_dim] rope(): 'head_dim' should be an integer, found a number"],
    ["x = reshape(x, [d / 2, 0]);", "WF210 [[] reshape(): 'shape' should be at least 1, found 0"],
    ["let b = relative_bias(w, buckets: 3); x = attention(x, x, x, heads: 2, bias: b);", "WF210 [buckets] relative_bias(): 3 buckets are too few (at least 4)"],
    ["let b = relative_bias(w, buckets: 8, max_distance: 2); x = attention(x, x, x, heads: 2, bias: b);", "WF210 [max_distance] relative_bias(): max_distance 2 should exceed the 2 exact buckets"],
  ])("%s", (body, expected) => {
    expect(outcome(entry(body))).toBe(expected);
  });

  it("every diagnostic here prints as one line and a code frame", () => {
    const d = (() => {
      try {
        programFromSource("m.wf", entry("x = x / 0;"), { vocab: 16, d: 8 }, small);
      } catch (e) {
        return e as Diagnostic;
      }
    })();
    expect(formatDiagnostic(d!).split("\n")).toHaveLength(3);
  });
});
