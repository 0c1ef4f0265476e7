// Binary operators of the DSL: their precedence, and the folding of a flat operand/operator list
// into a tree (the parser reads `a + b * c` flat so that only brackets make it recurse).

import type { Span } from "../diagnostics.js";
import type { Expr } from "./ast.js";
import * as T from "./lexer.js";

/** Binding strength of the binary operators; all associate to the left. */
const precedence: Record<string, number> = {
  "||": 1, "&&": 2,
  "==": 3, "!=": 3, "<=": 3, ">=": 3, "<": 3, ">": 3,
  "+": 4, "-": 4,
  "*": 5, "/": 5, "@": 5, "%": 5,
};
export const binaryOps = [T.OrOr, T.AndAnd, T.EqEq, T.NotEq, T.LtEq, T.GtEq, T.Lt, T.Gt, T.Plus, T.Minus, T.Star, T.Slash, T.At, T.Percent];

/** Folds `a op b op c ...` by precedence with two stacks (no recursion, however long the chain). */
export function foldBinary(operands: Expr[], ops: { op: string; span: Span }[]): Expr {
  const values: Expr[] = [operands[0]];
  const pending: { op: string; span: Span }[] = [];
  const reduce = () => {
    const { op, span } = pending.pop()!;
    const right = values.pop()!;
    const left = values.pop()!;
    values.push({ kind: "binary", op, left, right, span });
  };
  ops.forEach((o, i) => {
    while (pending.length && precedence[pending[pending.length - 1].op] >= precedence[o.op]) reduce();
    pending.push(o);
    values.push(operands[i + 1]);
  });
  while (pending.length) reduce();
  return values[0];
}

