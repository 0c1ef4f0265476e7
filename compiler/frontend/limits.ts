// Bounds on a .wf file, checked before anything recurses on or loops over what it claims: the
// parser recurses once per bracket and the elaborator once per level of the tree, so both
// depths are capped far below the JS stack, and the size caps keep lexing and parsing short.

import type { IToken } from "chevrotain";
import type { Code, Span } from "../diagnostics.js";
import { type Expr, type ModelDecl, type Stmt, type WeightItem, configExprs } from "./ast.js";
import { LBrace, LBracket, LParen, RBrace, RBracket, RParen } from "./lexer.js";

/** The largest .wf source, in UTF-8 bytes. */
export const MAX_SOURCE_BYTES = 1 << 20;
/** The most tokens in one .wf file. */
export const MAX_TOKENS = 200_000;
/** The deepest nesting of brackets and braces, and of the syntax tree. */
export const MAX_NESTING = 256;
/** The most diagnostics one parse reports. */
export const MAX_ERRORS = 100;
/** Most values a config list (a `float[]` field) may hold. */
export const MAX_CONFIG_LIST = 65536;

/** Length of a string in UTF-8 bytes, without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

/** An error found while parsing, made a Diagnostic only if it is among the first MAX_ERRORS reported. */
export interface Problem {
  message: string;
  span: Span;
  code: Code;
}

/** The first bracket or brace opened deeper than MAX_NESTING; undefined if none. */
export function checkTokenDepth(tokens: readonly IToken[], file: string): Problem | undefined {
  let depth = 0;
  for (const t of tokens) {
    const type = t.tokenType;
    if (type === LParen || type === LBracket || type === LBrace) {
      if (++depth > MAX_NESTING) {
        const span = { file, line: t.startLine ?? 1, col: t.startColumn ?? 1, length: 1 };
        return { message: `brackets and braces nested deeper than ${MAX_NESTING} levels`, span, code: "WF106" };
      }
    } else if (type === RParen || type === RBracket || type === RBrace) {
      depth = Math.max(0, depth - 1);
    }
  }
  return undefined;
}

type Node = Expr | Stmt | WeightItem;

function children(n: Node): Node[] {
  switch (n.kind) {
    case "num": case "str": case "bool": case "ident": return [];
    case "list": return n.items;
    case "call": return [...n.args, ...n.named.map((a) => a.value)];
    case "index": return [n.target, n.index];
    case "unary": return [n.operand];
    case "binary": return [n.left, n.right];
    case "let": case "assign": case "return": case "output": return [n.value];
    case "if": return [n.cond, ...n.then, ...n.else];
    case "for": return "body" in n ? [n.from, n.to, ...n.body] : [n.from, n.to, ...n.items];
    case "param": return n.cond ? [...n.shape, n.cond] : n.shape;
  }
}

/**
 * The first node of the tree deeper than MAX_NESTING; undefined if none.
 * Operators, calls, indexes, statements and else-if arms each add a level. Walked with an
 * explicit stack, so a deep tree is measured without recursing on it.
 */
export function checkTreeDepth(m: ModelDecl): Problem | undefined {
  const roots: Node[] = [
    ...m.config.flatMap(configExprs),
    ...m.weights.flatMap((w) => w.items),
    ...m.blocks.flatMap((b) => b.body),
    ...m.entries.flatMap((e) => [...e.inputs.flatMap((i) => i.shape), ...e.body]),
  ];
  const stack: [Node, number][] = roots.reverse().map((n) => [n, 1]);
  while (stack.length) {
    const [n, depth] = stack.pop()!;
    if (depth > MAX_NESTING) {
      return { message: `nested deeper than ${MAX_NESTING} levels (each operator, call, index, statement and else-if adds one)`, span: n.span, code: "WF106" };
    }
    const cs = children(n);
    for (let i = cs.length - 1; i >= 0; i--) stack.push([cs[i], depth + 1]);
  }
  return undefined;
}

// Budgets of elaboration (elaborate.ts), each a located diagnostic when exceeded.

/** The most iterations of one loop. */
export const MAX_TRIPS = 65_536;
/** The most loop iterations and block calls of a whole elaboration, weights and entries together. */
export const MAX_STEPS = 1 << 20;
/** The deepest nesting of block calls. */
export const MAX_CALL_DEPTH = 64;
/**
 * The deepest nesting of statements and expressions, counted through block calls: the
 * elaborator recurses once per level, so this keeps it well inside the JS stack.
 */
export const MAX_DEPTH = 1024;
/** The most IR nodes of one entry's graph. */
export const MAX_NODES = 1 << 17;
/** The most elements of one tensor: 2^30 f32 values fill a 4 GiB WebAssembly memory. */
export const MAX_ELEMENTS = 2 ** 30;
/** The longest context compiled, whatever the model's max_context. */
export const MAX_CONTEXT = 1 << 20;
