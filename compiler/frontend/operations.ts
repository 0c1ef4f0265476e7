// The DSL's binary operators on values: numbers and bools fold at elaboration; tensors become IR
// nodes (`@` a matmul, `+`/`*` a broadcasting add/mul, a number times a tensor a scale).

import { Diagnostic, type Span } from "../diagnostics.js";
import type { Expr } from "./ast.js";
import { type BuiltinHost, type Value, describe } from "./values.js";

/** `l op r` for the binary expression `e`; operands that do not combine are a WF204 diagnostic. */
export function binary(host: BuiltinHost, e: Extract<Expr, { kind: "binary" }>, l: Value, r: Value): Value {
  const op = e.op;
  if (typeof l === "number" && typeof r === "number") {
    switch (op) {
      case "+": return l + r;
      case "-": return l - r;
      case "*": return l * r;
      case "/": return l / r;
      case "%": return l % r;
      case "<": return l < r;
      case ">": return l > r;
      case "<=": return l <= r;
      case ">=": return l >= r;
    }
  }
  if (op === "==") return l === r;
  if (op === "!=") return l !== r;
  if (typeof l === "boolean" && typeof r === "boolean") {
    if (op === "&&") return l && r;
    if (op === "||") return l || r;
  }
  const isT = (v: Value) => typeof v === "object" && (v.kind === "tensor" || v.kind === "param");
  const T = (id: number): Value => ({ kind: "tensor", id });
  const scale = (t: Value, by: number, span: Span) => {
    if (!Number.isFinite(by)) throw new Diagnostic(`'${op}' would scale a tensor by ${by}`, e.span, { code: "WF210" });
    return T(host.node("scale", [host.tensor(t, span)], { by }, e.span));
  };
  if (isT(l) && typeof r === "number" && (op === "*" || op === "/")) return scale(l, op === "*" ? r : 1 / r, e.left.span);
  if (typeof l === "number" && isT(r) && op === "*") return scale(r, l, e.right.span);
  if (isT(l) && isT(r)) {
    let a = host.tensor(l, e.left.span), b = host.tensor(r, e.right.span);
    switch (op) {
      case "@":
        return T(host.node("matmul", [a, b], {}, e.span));
      case "-":
        return T(host.node("add", [a, host.node("scale", [b], { by: -1 }, e.span)], {}, e.span));
      case "+":
      case "*":
        // broadcasting takes the larger operand first
        if (host.typeOf(a).shape.length < host.typeOf(b).shape.length) [a, b] = [b, a];
        return T(host.node(op === "*" ? "mul" : "add", [a, b], {}, e.span));
    }
  }
  throw new Diagnostic(`'${op}' cannot combine ${describe(l)} and ${describe(r)}`, e.span, { code: "WF204" });
}
