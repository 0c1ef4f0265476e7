// The static checker: every name and kind in every branch and block, whatever the checkpoint;
// calls against block arities and the builtins' signatures; recursion from the call graph.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Diagnostic, DiagnosticList } from "../../compiler/diagnostics.js";
import { bindArgs, builtins, positionalParams } from "../../compiler/frontend/builtins.js";
import { Checker } from "../../compiler/frontend/check.js";
import { parseModel } from "../../compiler/frontend/parser.js";
import type { BuiltinHost } from "../../compiler/frontend/values.js";
import { openWeights, programFromSource, readHfConfig } from "../../compiler/load.js";
import { fixtureDir, root } from "../helpers.js";

/** `code line:col message` of each static error of a model. */
function check(text: string): string[] {
  return new Checker(parseModel("m.wf", text)).run().map((d) => `${d.code} ${d.span!.line}:${d.span!.col} ${d.message}`);
}

const config = "config { vocab: int from vocab_size; d: int from n_embd; eps: float from layer_norm_epsilon; tied: bool from tie_word_embeddings; }";
const weights = `weights { wte: [vocab, d] = "wte.weight"; for i in 0..2 { w[i]: [d, d] = "h.{i}.w"; } }`;
/** A model whose entry `f(ids: tokens)` runs `body` with `x` a tensor; reported as its messages only. */
function messages(body: string, blocks = ""): string[] {
  return check(`model m {\n${config}\n${weights}\n${blocks}\nentry f(ids: tokens) { let x = wte[ids]; ${body} output y = x; }\n}`).map((s) => s.replace(/^(\w+) \d+:\d+ /, "$1 "));
}

describe("static checks", () => {
  it("the examples have no static errors", () => {
    for (const n of ["gpt2", "llama", "bert", "t5"]) {
      const path = join(root, "examples", `${n}.wf`);
      expect(check(readFileSync(path, "utf8")), n).toEqual([]);
    }
  });

  it("an undefined name in T5's tied head fails on the untied t5-v1_1 checkpoint too", () => {
    const path = join(root, "examples", "t5.wf");
    const text = readFileSync(path, "utf8");
    const tiedHead = "output logits = linear(x * (1 / sqrt(d)), shared);";
    expect(text).toContain(tiedHead);
    const broken = text.replace(tiedHead, tiedHead.replace("sqrt(d)", "sqrt(d_model)"));
    const dir = fixtureDir("t5-v1_1");
    expect(readHfConfig(dir).tie_word_embeddings).toBe(false);
    // the checkpoint compiles with the branch it takes
    programFromSource(path, text, readHfConfig(dir), openWeights(dir));
    let thrown: unknown;
    try {
      programFromSource(path, broken, readHfConfig(dir), openWeights(dir));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(DiagnosticList);
    const [d] = (thrown as DiagnosticList).diagnostics;
    const line = broken.split("\n").findIndex((l) => l.includes("sqrt(d_model)")) + 1;
    expect([d.code, d.span?.line, d.message]).toEqual(["WF201", line, "'d_model' is not defined"]);
  });

  it("both branches of every if, blocks never called, weight templates and conditions", () => {
    expect(check(`model m {
  config { d: int from n_embd; on: bool from flag = true; }
  weights {
    for i in 0..2 { a[i]: [d] = "h.{j}.a" if on && missing; }
  }
  block unused(x) { return x * nowhere; }
  entry f(ids: tokens) {
    if on { output y = a[0]; } else if !on { output y = b; } else { output y = c; }
  }
}`)).toEqual([
      "WF201 4:21 '{j}' in a tensor name is not defined (use a loop variable or config value)",
      "WF201 4:52 'missing' is not defined",
      "WF201 6:32 'nowhere' is not defined",
      "WF201 8:57 'b' is not defined",
      "WF201 8:80 'c' is not defined",
    ]);
  });

  it.each([
    ["if d { }", "WF204 condition should be a bool, found an int"],
    ["if x { }", "WF204 condition should be a bool, found a tensor"],
    ["for i in 0..tied { }", "WF204 a loop bound should be an integer, found a bool"],
    ["let b = !eps;", "WF204 '!' needs a bool, found a number"],
    ["let b = -tied;", "WF204 '-' needs a number or a tensor, found a bool"],
    ["let b = tied + 1;", "WF204 '+' cannot combine a bool and an int"],
    ["let b = x @ 2;", "WF204 '@' cannot combine a tensor and an int"],
    ["let b = 2 - x;", "WF204 '-' cannot combine an int and a tensor"],
    ["let b = x % x;", "WF204 '%' cannot combine a tensor and a tensor"],
    ["let b = d < x;", "WF204 '<' cannot combine an int and a tensor"],
    ["let b = tied && d;", "WF204 '&&' cannot combine a bool and an int"],
    ["let b = x[1];", "WF204 index should be a tensor of ids, found an int"],
    ["let b = d[ids];", "WF204 indexed value should be a tensor, found an int"],
    ["let b = w[x];", "WF204 a layer index should be an integer, found a tensor"],
    ["let b = [x, x][2];", "WF210 index 2 is out of range (a tuple of 2)"],
    ["let b = [x, x][tied];", "WF204 index of a tuple should be an integer, found a bool"],
    ["let b = d(x);", "WF204 'd' is an int, not a function"],
    ["let b = swish(x);", "WF202 unknown function 'swish'"],
    ["let b = linear(x);", "WF203 linear() needs 'w'"],
    ["let b = linear(x, wte, wte, wte);", "WF203 linear() takes at most 3 positional arguments, got 4"],
    ["let b = rope(x, 8);", ["WF203 rope() needs 'head_dim'", "WF203 rope() takes at most 1 positional arguments, got 2"]],
    ["let b = rope(x, head_dim: 8, thetta: 1.0);", "WF203 rope() has no argument 'thetta' (it takes x, head_dim, theta, scaling, factor, low_freq, high_freq, original, short_factor, long_factor, attn_factor)"],
    ["let b = linear(x, wte, x: x);", "WF203 linear(): 'x' is given twice"],
    ["let b = attention(x, x, x, heads: tied);", "WF204 attention(): 'heads' should be an integer, found a bool"],
    ["let b = attention(x, x, x, heads: -2);", "WF210 attention(): 'heads' should be positive, found -2"],
    ["let b = attention(x, x, x, heads: 2, bias: x);", "WF204 attention(): 'bias' should be relative_bias(...), found a tensor"],
    ["let b = layernorm(x, wte, wte, eps: x);", "WF204 layernorm(): 'eps' should be a number, found a tensor"],
    ["let b = reshape(x, 3);", "WF204 reshape(): 'shape' should be a list of integers, found an int"],
    ["let b = sqrt(x);", "WF204 sqrt(): 'x' should be a number, found a tensor"],
    ["let b = gelu(d);", "WF204 gelu(): 'x' should be a tensor, found an int"],
    ["let [a, b, c] = split(x, 2);", "WF204 cannot unpack a tuple of 2 into 3 names"],
    ["let [a, b] = x;", "WF204 cannot unpack a tensor into 2 names"],
    ["let [a, b] = split(x, [20, 40]); let c = a + b + x;", undefined],
    ["z = x;", "WF206 'z' is not declared (use 'let')"],
    ["d = 3;", "WF206 'd' belongs to the model (config, weights or block) and cannot be reassigned; declare a local with 'let'"],
    ["wte = x;", "WF206 'wte' belongs to the model (config, weights or block) and cannot be reassigned; declare a local with 'let'"],
    ["return x;", "WF208 'return' outside a block (an entry ends with its outputs)"],
    ["output z = d;", "WF204 output 'z' should be a tensor, found an int"],
    ["x = g(x, x);", "WF203 block 'g' takes 1 arguments, got 2"],
    ["x = g(x: x);", ["WF203 block 'g' takes 1 arguments, got 0", "WF203 blocks take positional arguments only"]],
    ["let h = g; x = h(x) + linear(x, wte);", undefined],
    ["x = g(x) && tied;", "WF204 '&&' cannot combine a tensor and a bool"],
  ])("%s", (body, expected) => {
    expect(messages(body, "block g(a) { return relu(a); }")).toEqual(expected === undefined ? [] : [expected].flat());
  });

  it("reports every static error of a file, in source order", () => {
    expect(messages("if d { } let b = !eps; z = x;")).toEqual([
      "WF204 condition should be a bool, found an int",
      "WF204 '!' needs a bool, found a number",
      "WF206 'z' is not declared (use 'let')",
    ]);
  });

  it("structure: returns, outputs, entries, declarations", () => {
    expect(check(`model m {
  config { d: int from n_embd; d: int from n_head; context: int from n_ctx; n: wide from x; r: bool from y in 1..=2; }
  weights { a: [d] = "a"; a: [d] = "b"; c: [d] = "c" if true; c: [d] = "d" if false; e[i]: [d] = "e"; f: [d] = "f" else g; }
  block b(x, x) { if true { return x; } }
  block b(y) { for i in 0..2 { return y; } }
  block a(y) { return y; }
  entry f(ids: tokens, ids: tokens, s: state[d], t: tokens[d], u: words) { }
  entry f(ids: tokens) { output y = ids; }
}`)).toEqual([
      "WF207 2:32 config field 'd' is already declared",
      "WF207 2:52 'context' is the compiled context length; a config field cannot take its name",
      "WF208 2:77 unknown config type 'wide' (use int, float, bool, string or float[])",
      "WF204 2:108 a range needs an int, float or float[] field, not bool",
      "WF207 3:27 'a' is already declared",
      "WF208 3:86 'e[…]' is declared outside a for loop",
      "WF208 3:103 fallback 'g' must be a parameter declared before it",
      "WF207 4:9 block 'b' has two parameters named 'x'",
      "WF208 4:9 block 'b' can end without returning a value",
      "WF207 5:9 block 'b' is already declared",
      "WF208 5:9 block 'b' can end without returning a value",
      "WF207 6:9 'a' is already declared (a block cannot take the name of a config field or weight)",
      "WF208 7:9 entry 'f' has no output",
      "WF207 7:24 entry 'f' has two inputs named 'ids'",
      "WF208 7:50 a tokens input takes no shape (only state[...] and image[...] do)",
      "WF208 7:64 unknown input kind 'words' (use tokens, segments, padding, state[...] or image[channels, height, width])",
      "WF207 8:9 entry 'f' is already declared",
    ]);
    expect(check("model m { }")).toEqual(["WF208 1:1 model 'm' has no entry"]);
  });

  it("config defaults, ranges and requirements are typed", () => {
    expect(check(`model m {
  config { d: int from n_embd in 1..=true; on: bool = d; e: float = "x"; s: string = d > 1; require d; require d > 1 || late; late: int = 1; }
  entry f(ids: tokens) { output y = ids; }
}`)).toEqual([
      "WF204 2:38 a bound of 'd' should be a number, found a bool",
      "WF204 2:55 the default of 'on' should be a bool, found an int",
      "WF204 2:69 the default of 'e' should be a number, found a string",
      "WF204 2:88 the default of 's' should be a string, found a bool",
      "WF204 2:101 a requirement should be a bool, found an int",
      "WF201 2:121 'late' is not defined",
    ]);
  });
});

describe("recursion", () => {
  const head = "model m {\n  entry f(ids: tokens) { output y = a(ids); }\n";
  it("a block calling itself, directly or through others, is found from the call graph", () => {
    expect(check(`${head}  block a(x) { return b(x); }\n  block b(x) { if true { return c(x); } return a(x); }\n  block c(x) { return c(relu(x)); }\n}`)).toEqual([
      "WF205 4:48 block 'b' calls 'a', which calls it back: a → b → a (blocks are inlined, so none may call itself)",
      "WF205 5:23 block 'c' calls itself (blocks are inlined, so none may call itself)",
    ]);
  });

  it("a name a block binds itself is not a call of the block of that name", () => {
    expect(check(`${head}  block a(x) { let b = relu; return x; }\n  block b(a) { return a(1); }\n}`)).toEqual([
      "WF201 3:24 'relu' is not defined",
    ]);
  });

  it("a cycle through 15,000 blocks is found without deep recursion, and named briefly", () => {
    const n = 15_000;
    const blocks = Array.from({ length: n }, (_, i) => `block b${i}(x) { return b${(i + 1) % n}(x); }`).join("\n");
    const errors = check(`model m {\n${blocks}\nentry f(ids: tokens) { output y = b0(ids); }\n}`);
    expect(errors).toEqual([`WF205 ${n + 1}:26 block 'b${n - 1}' calls 'b0', which calls it back: b0 → b1 → b2 → … ${n - 5} more … → b${n - 2} → b${n - 1} → b0 (blocks are inlined, so none may call itself)`]);
  });
});

describe("builtin signatures", () => {
  const host: BuiltinHost = { node: () => 0, tensor: () => 0, typeOf: () => ({ dtype: "f32", shape: ["S", 4] }), cacheSlot: () => "c" };
  const span = { file: "m.wf", line: 1, col: 1 };
  const tensor = { kind: "tensor", id: 0 } as const;

  it.each(Object.keys(builtins))("%s: the checker and the elaborator take the same positional arguments", (name) => {
    const def = builtins[name];
    const n = positionalParams(def).length;
    const args = Array(n + 1).fill(tensor);
    let dynamic: unknown;
    try {
      bindArgs(name, def, host, { args, argSpans: args.map(() => span), named: [], span });
    } catch (e) {
      dynamic = e;
    }
    expect(dynamic instanceof Diagnostic && [dynamic.code, dynamic.message]).toEqual(["WF203", `${name}() takes at most ${n} positional arguments, got ${n + 1}`]);
    const call = `${name}(${Array(n + 1).fill("ids").join(", ")})`;
    expect(check(`model m { entry f(ids: tokens) { let z = ${call}; output y = ids; } }`)).toContainEqual(expect.stringMatching(`^WF203 .* ${name}\\(\\) takes at most ${n} positional arguments, got ${n + 1}$`));
  });
});
