// The parser on generated inputs: precedence, string escapes, error recovery, size and depth
// limits, line breaks, and a fixed-seed run of mutants of examples/*.wf, each of which must end
// in a syntax tree or in coded, located diagnostics, never in another exception.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Diagnostic, DiagnosticList, formatDiagnostic, registerSource } from "../../compiler/diagnostics.js";
import type { Expr, ModelDecl, Stmt } from "../../compiler/frontend/ast.js";
import { lexer } from "../../compiler/frontend/lexer.js";
import { MAX_ERRORS, MAX_NESTING, MAX_SOURCE_BYTES, MAX_TOKENS } from "../../compiler/frontend/limits.js";
import { parseModel } from "../../compiler/frontend/parser.js";
import { loadProgram } from "../../compiler/load.js";
import { root } from "../helpers.js";

const file = "m.wf";

/** The diagnostics parsing `text` throws; [] when it parses. Any other exception fails the test. */
function diagnostics(text: string): Diagnostic[] {
  try {
    parseModel(file, text);
    return [];
  } catch (e) {
    if (e instanceof DiagnosticList) return [...e.diagnostics];
    throw e;
  }
}
/** `code line:col message` of each diagnostic. */
const brief = (text: string) => diagnostics(text).map((d) => `${d.code} ${d.span?.line}:${d.span?.col} ${d.message}`);

const prefix = "model m { entry f(x: tokens) { output y = ";
const entry = (expr: string) => `${prefix}${expr}; } }`;
/** The 1-based column of the `n`th (0-based) occurrence of `what` in a one-line `text`. */
function colOf(text: string, what: string, n = 0): number {
  let at = -1;
  for (let i = 0; i <= n; i++) at = text.indexOf(what, at + 1);
  return at + 1;
}
const outputOf = (m: ModelDecl) => (m.entries[0].body[0] as Extract<Stmt, { kind: "output" }>).value;

/** An expression with every operation bracketed. */
function show(e: Expr): string {
  switch (e.kind) {
    case "num": case "bool": return String(e.value);
    case "str": return JSON.stringify(e.value);
    case "ident": return e.name;
    case "list": return `[${e.items.map(show).join(", ")}]`;
    case "call": return `${e.callee}(${[...e.args.map(show), ...e.named.map((n) => `${n.name}: ${show(n.value)}`)].join(", ")})`;
    case "index": return `${show(e.target)}[${show(e.index)}]`;
    case "unary": return `(${e.op}${show(e.operand)})`;
    case "binary": return `(${show(e.left)} ${e.op} ${show(e.right)})`;
  }
}

describe("expressions", () => {
  it.each([
    ["a - b - c", "((a - b) - c)"],
    ["a + b * c @ d - e / f % g", "((a + ((b * c) @ d)) - ((e / f) % g))"],
    ["-x[i][j] + !b", "((-x[i][j]) + (!b))"],
    ["a || b && c == d + e * f", "(a || (b && (c == (d + (e * f)))))"],
    ["!a && b || c != d <= e", "(((!a) && b) || ((c != d) <= e))"],
    ["- - a * b", "((-(-a)) * b)"],
    ["(a + b) * c", "((a + b) * c)"],
    ["f(x, k: -a[1] * 2)[0] @ [1, 2][k]", "(f(x, k: ((-a[1]) * 2))[0] @ [1, 2][k])"],
  ])("%s", (src, tree) => {
    expect(show(outputOf(parseModel(file, entry(src))))).toBe(tree);
  });

  it("places an operator's node at the operator and a sign's at the sign", () => {
    const text = entry("a * -b");
    const e = outputOf(parseModel(file, text));
    expect(e.kind === "binary" && [e.span.col, e.right.span.col]).toEqual([colOf(text, "*"), colOf(text, "-")]);
  });

  it("nests an else-if chain as ifs in else branches", () => {
    const text = "model m { entry f(x: tokens) { if a { y = 1; } else if b { y = 2; } else if c { } else { y = 3; } } }";
    const m = parseModel(file, text);
    const arms: string[] = [];
    let s: Stmt | undefined = m.entries[0].body[0];
    while (s?.kind === "if") {
      arms.push(`${show(s.cond)}:${s.then.length}:${s.span.col}`);
      s = s.else.length === 1 && s.else[0].kind === "if" ? s.else[0] : (arms.push(`else:${s.else.length}`), undefined);
    }
    expect(arms).toEqual([`a:1:${colOf(text, "if")}`, `b:1:${colOf(text, "if", 1)}`, `c:0:${colOf(text, "if", 2)}`, "else:1"]);
  });
});

describe("string literals", () => {
  const value = (lit: string) => {
    const e = outputOf(parseModel(file, entry(lit)));
    return e.kind === "str" ? e.value : undefined;
  };

  it("decodes the DSL's escapes", () => {
    expect(value(String.raw`"q\"b\\s\n\r\t\u{1F600}\u00e9."`)).toBe('q"b\\s\n\r\t\u{1F600}\u00e9.');
    expect(value(`"h.{i}.weight"`)).toBe("h.{i}.weight");
  });

  it.each([
    [String.raw`"a\qb"`, String.raw`WF103 1:45 unknown escape '\q' in a string (the escapes are \" \\ \n \r \t \u{HEX} \uHHHH)`],
    [String.raw`"a\/b"`, String.raw`WF103 1:45 unknown escape '\/' in a string (the escapes are \" \\ \n \r \t \u{HEX} \uHHHH)`],
    ['"a\\\u00e9"', String.raw`WF103 1:45 unknown escape '\' followed by U+00E9 in a string (the escapes are \" \\ \n \r \t \u{HEX} \uHHHH)`],
    [String.raw`"\u{110000}"`, String.raw`WF103 1:44 escape '\u{110000}' is not a Unicode scalar value (U+0000-U+D7FF or U+E000-U+10FFFF)`],
    [String.raw`"\uD800"`, String.raw`WF103 1:44 escape '\uD800' is not a Unicode scalar value (U+0000-U+D7FF or U+E000-U+10FFFF)`],
    [String.raw`"\u12"`, String.raw`WF103 1:44 invalid escape '\u' in a string: write \u{HEX} (1 to 6 hex digits) or \uHHHH`],
    [String.raw`"\u{}"`, String.raw`WF103 1:44 invalid escape '\u' in a string: write \u{HEX} (1 to 6 hex digits) or \uHHHH`],
    ['"a\tb"', String.raw`WF104 1:45 control character U+0009 in a string (write it as \t)`],
    ['"a\0b"', String.raw`WF104 1:45 control character U+0000 in a string (write it as \u{0})`],
    ['"a\x85b"', String.raw`WF104 1:45 control character U+0085 in a string (write it as \u{85})`],
  ])("%j is reported where it is", (lit, expected) => {
    expect(brief(entry(lit))).toEqual([expected]);
  });

  it("reports every problem of a string, and of every string, in one parse", () => {
    const text = `model m { weights prefix "\\q\t" { w: [1] = "\\u{d800}\\z"; } }`;
    const got = brief(text).map((d) => d.split(" ").slice(0, 2).join(" "));
    const cols = [colOf(text, "\\q"), colOf(text, "\t"), colOf(text, "\\u"), colOf(text, "\\z")];
    expect(got).toEqual([`WF103 1:${cols[0]}`, `WF104 1:${cols[1]}`, `WF103 1:${cols[2]}`, `WF103 1:${cols[3]}`]);
  });

  it("reports an unterminated string at its quote and goes on parsing the next lines", () => {
    const text = 'model m {\n  weights { w: [1] = "abc;\n  }\n  entry f(x: tokens) { output y = ; }\n}\n';
    expect(brief(text)).toEqual([
      "WF105 2:22 unterminated string: a string ends with '\"' on the line it starts",
      "WF102 3:3 expected ';' but found '}'",
      "WF102 4:35 expected an expression but found ';'",
    ]);
    // a backslash at the end of the line escapes nothing
    expect(brief('model m { weights { w: [1] = "abc\\\n; } }').map((d) => d.slice(0, 11))).toEqual(["WF105 1:30 "]);
  });
});

describe("error recovery", () => {
  it("reports a broken config block and a broken weights block after it", () => {
    const text = "model m {\n  config {\n    d: int from ;\n  }\n  weights {\n    w: [d] = ;\n  }\n}\n";
    expect(brief(text)).toEqual(["WF102 3:17 expected a name but found ';'", "WF102 6:14 expected a string but found ';'"]);
  });

  it.each([
    "model m { config { a } }",
    "model m { config { a: int from x = ; } weights { w: [1] = ; } }",
    "model m { weights prefix { for i in { w[i]: [ = \"x\"; } } }",
    "model m { block b( { return ; } entry e(x: tokens[) { let [ = x; } }",
    "model m { entry e(x: tokens) { if { } else if { } else y = 1; for i in .. { } } }",
    "model m { entry e(x: tokens) { output y = f(a: , b:)[; } }",
    "model { } }",
    "model m { config",
  ])("%j: syntax errors only", (text) => {
    const ds = diagnostics(text);
    expect(ds.length).toBeGreaterThan(0);
    for (const d of ds) expect([d.code, d.span!.line >= 1, d.span!.col >= 1]).toEqual(["WF102", true, true]);
  });

  it(`stops after ${MAX_ERRORS} errors, quickly, and says so`, () => {
    const text = entry("x" + " x".repeat(100_000));
    const start = performance.now();
    const ds = diagnostics(text);
    // recovering from each of 100k errors takes many seconds
    expect(performance.now() - start).toBeLessThan(4000);
    expect(ds).toHaveLength(MAX_ERRORS);
    expect(ds[MAX_ERRORS - 1].notes).toEqual([`stopped after ${MAX_ERRORS} errors`]);
  });
});

describe("limits", () => {
  const nested: [string, (n: number) => string][] = [
    ["parentheses", (n) => entry("(".repeat(n) + "x" + ")".repeat(n))],
    ["brackets", (n) => entry("[".repeat(n) + "x" + "]".repeat(n))],
    ["calls", (n) => entry("f(".repeat(n) + "x" + ")".repeat(n))],
    ["indexes", (n) => entry("x[".repeat(n) + "0" + "]".repeat(n))],
    ["braces", (n) => "model m { entry f(x: tokens) { " + "if x { ".repeat(n) + "}".repeat(n) + " } }"],
    ["weight loops", (n) => "model m { weights { " + "for i in 0..1{".repeat(n) + "}".repeat(n) + " } }"],
  ];

  it.each(nested)("100k nested %s are reported at the first bracket too deep", (_, make) => {
    let text = make(100_000);
    // (a loop takes 14 bytes: 100k of them are over the size limit)
    if (text.length > MAX_SOURCE_BYTES) text = make(50_000);
    const ds = diagnostics(text);
    expect(ds.map((d) => `${d.code} ${d.message}`)).toEqual([`WF106 brackets and braces nested deeper than ${MAX_NESTING} levels`]);
    const before = text.slice(0, ds[0].span!.col);
    expect(before.match(/[([{]/g)!.length - (before.match(/[)\]}]/g)?.length ?? 0)).toBe(MAX_NESTING + 1);
    expect(before.at(-1)).toMatch(/[([{]/);
  });

  // the parser itself must not overflow at the limit: the deepest nesting it accepts parses,
  // or fails only on the tree's depth, whatever the kind of bracket
  it.each(nested)("%s nested to the limit are parsed", (_, make) => {
    const opened = (text: string) => text.match(/[([{]/g)!.length;
    let n = MAX_NESTING;
    while (opened(make(n)) > MAX_NESTING) n--;
    for (const d of diagnostics(make(n))) expect(`${d.code} ${d.message}`).toMatch(/^WF106 nested deeper than/);
  });

  it.each([
    ["100k unary minus", entry("-".repeat(100_000) + "x"), "-"],
    ["100k unary not", entry("!".repeat(100_000) + "x"), "!"],
    ["a sum of 300 terms", entry("x" + " + x".repeat(300)), "+"],
    ["300 else-ifs", "model m { entry f(x: tokens) { if x { }" + " else if x { }".repeat(300) + " } }", "x"],
    ["30k else-ifs", "model m { entry f(x: tokens) { if x { }" + " else if x { }".repeat(30_000) + " } }", "x"],
  ])("%s: the tree is too deep", (_, text, at) => {
    const ds = diagnostics(text);
    expect(ds.map((d) => d.code)).toEqual(["WF106"]);
    expect(ds[0].message).toMatch(`nested deeper than ${MAX_NESTING} levels`);
    expect(text[ds[0].span!.col - 1]).toBe(at);
  });

  it(`a tree ${MAX_NESTING} deep is fine`, () => {
    // the output statement, MAX_NESTING - 2 additions, the names they add
    expect(diagnostics(entry("x" + " + x".repeat(MAX_NESTING - 2)))).toEqual([]);
    expect(brief(entry("x" + " + x".repeat(MAX_NESTING - 1)))[0]).toMatch(/^WF106 /);
  });

  it(`a source over ${MAX_SOURCE_BYTES} bytes is refused before it is lexed`, () => {
    const text = entry(`"${"é".repeat(MAX_SOURCE_BYTES / 2)}"`);
    expect(text.length).toBeLessThan(MAX_SOURCE_BYTES);
    expect(brief(text)).toEqual([`WF107 1:1 the model is ${Buffer.byteLength(text)} bytes; a .wf file may have at most ${MAX_SOURCE_BYTES}`]);
  });

  it("a 1 GiB model file is refused before it is read", () => {
    const dir = mkdtempSync(join(tmpdir(), "wf-"));
    try {
      // sparse: no disk used; reading it would fail on a string longer than V8 allows
      const path = join(dir, "huge.wf");
      closeSync(openSync(path, "w"));
      truncateSync(path, 2 ** 30);
      let thrown: unknown;
      try {
        loadProgram(path, join(root, "tests", "fixtures", "gpt2"));
      } catch (e) {
        thrown = e;
      }
      expect(thrown instanceof DiagnosticList && formatDiagnostic(thrown)).toBe(`${path}:1:1: error[WF107]: the model is ${2 ** 30} bytes; a .wf file may have at most ${MAX_SOURCE_BYTES}`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it(`more than ${MAX_TOKENS} tokens are refused before they are parsed`, () => {
    const text = entry("x" + ",x".repeat(MAX_TOKENS / 2));
    const tokens = lexer.tokenize(text).tokens;
    const first = tokens[MAX_TOKENS].startColumn;
    expect(brief(text)).toEqual([`WF107 1:${first} the model has ${tokens.length} tokens; a .wf file may have at most ${MAX_TOKENS}`]);
  });
});

describe("line breaks and control characters", () => {
  const model = ["model m {", "  config {", "    d: int from n_embd", "  }", "  entry f(x: tokens) {", "    output y = x $ 2;", "  }", "}", ""];
  const expected = ["WF102 4:3 expected ';' but found '}'", "WF101 6:18 unexpected character '$'", "WF102 6:20 expected ';' but found '2'"];

  it.each([["\n"], ["\r\n"], ["\r"]])("lines end with %j: the lexer and the code frame agree", (eol) => {
    const text = model.join(eol);
    registerSource(file, text);
    const ds = diagnostics(text);
    expect(ds.map((d) => `${d.code} ${d.span!.line}:${d.span!.col} ${d.message}`)).toEqual(expected);
    const frames = ds.map((d) => formatDiagnostic(d).split("\n"));
    expect(frames.map((f) => f[1])).toEqual(["4 |   }", "6 |     output y = x $ 2;", "6 |     output y = x $ 2;"]);
    expect(frames.map((f) => f[2].indexOf("^"))).toEqual([6, 21, 23]);
  });

  it("a line comment ends at a lone CR", () => {
    expect(brief("model m { // note\r config { d: int from n_embd } }")).toEqual(["WF102 2:30 expected ';' but found '}'"]);
  });

  it("a leading byte order mark is skipped and not counted as a column", () => {
    const text = "\ufeffmodel m { $ }";
    registerSource(file, text);
    const ds = diagnostics(text);
    expect(ds.map((d) => `${d.span!.line}:${d.span!.col}`)).toEqual(["1:11"]);
    expect(formatDiagnostic(ds[0]).split("\n").slice(1)).toEqual(["1 | model m { $ }", "              ^"]);
    expect(brief("model m { \ufeff }")).toEqual(["WF101 1:11 unexpected character U+FEFF"]);
  });

  it.each([
    ["\0", "U+0000"], ["\x1b", "U+001B"], ["\x7f", "U+007F"], ["\v", "U+000B"], ["\f", "U+000C"],
    ["\u00a0", "U+00A0"], ["\u2028", "U+2028"], ["\u202e", "U+202E"], ["é", "U+00E9"],
  ])("%j outside a string is named as %s, never printed raw", (c, name) => {
    const text = `model m {\n  config { ${c} }\n}\n`;
    registerSource(file, text);
    const ds = diagnostics(text);
    expect(ds.map((d) => `${d.code} ${d.span!.line}:${d.span!.col} ${d.message}`)).toEqual([`WF101 2:12 unexpected character ${name}`]);
    expect(formatDiagnostic(ds[0])).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u202e]/);
  });

  it("control characters in a comment are ignored", () => {
    expect(diagnostics("model m { // \0 \x1b \u202e\n }")).toEqual([]);
  });

  it("a syntax error names an unprintable token by escapes", () => {
    const ds = diagnostics('model m { config { d: int = 1 "a\u202eb" } }');
    expect(ds.map((d) => d.message)).toContain(`expected ';' but found '"a\\u{202e}b"'`);
  });
});

/** A fixed-seed generator (mulberry32). */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("mutants of the examples", () => {
  const examples = ["gpt2", "llama", "bert", "t5"].map((n) => readFileSync(join(root, "examples", `${n}.wf`), "utf8"));
  const pieces = ["(", ")", "[", "]", "{", "}", ";", ",", ":", "=", "-", "!", "..", '"', "\\", "\t", "\0", "\r", "\n", "\r\n", "\x1b", "\u202e", "//",
    "config", "weights", "block", "entry", "if", "else", "for", "in", "let", "output", "return", "prefix", "x", "1", "1e5", '"a\\qb"', '"\\u{d800}"'];

  /** Deletes, inserts or duplicates a few characters or tokens. */
  function mutate(text: string, rnd: () => number): string {
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
      const tokens = lexer.tokenize(text).tokens;
      const t = tokens.length ? pick(tokens) : undefined;
      const at = Math.floor(rnd() * (text.length + 1));
      switch (Math.floor(rnd() * 6)) {
        case 0: text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rnd() * 4)); break;
        case 1: text = text.slice(0, at) + pick(pieces) + text.slice(at); break;
        case 2: { const n = Math.floor(rnd() * 40); text = text.slice(0, at) + text.slice(at, at + n) + text.slice(at); break; }
        case 3: if (t) text = text.slice(0, t.startOffset) + text.slice(t.endOffset! + 1); break;
        case 4: if (t) text = text.slice(0, t.startOffset) + t.image + " " + text.slice(t.startOffset); break;
        case 5: if (t) text = text.slice(0, at) + ` ${t.image} ` + text.slice(at); break;
      }
    }
    return text;
  }

  it("every mutant parses or fails with coded, located diagnostics", () => {
    const rnd = random(16);
    const outcomes = { parsed: 0, rejected: 0 };
    for (let i = 0; i < 400; i++) {
      const text = mutate(examples[i % examples.length], rnd);
      registerSource(file, text);
      let ds: Diagnostic[];
      try {
        ds = diagnostics(text);
      } catch (e) {
        throw new Error(`mutant ${i} threw ${String(e)}:\n${text}`);
      }
      outcomes[ds.length ? "rejected" : "parsed"]++;
      for (const d of ds) {
        const s = d.span!;
        expect([d.code, s.file, s.line >= 1, s.col >= 1], `mutant ${i}: ${d.message}`).toEqual([expect.stringMatching(/^WF1\d\d$/), file, true, true]);
        expect(formatDiagnostic(d), `mutant ${i}`).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      }
    }
    expect(outcomes.parsed).toBeGreaterThan(20);
    expect(outcomes.rejected).toBeGreaterThan(200);
  });
});
