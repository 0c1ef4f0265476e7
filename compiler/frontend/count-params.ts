// How many parameters a weights block declares, for the progress of loading, counted without
// walking every layer.

import type { Span } from "../diagnostics.js";
import { type Expr, type WeightItem, mentions } from "./ast.js";
import { Scope } from "./values.js";

/** What counting needs of the elaborator: loop bounds (budget-checked), steps, conditions. */
export interface Walker {
  loopBounds(s: Extract<WeightItem, { kind: "for" }>, scope: Scope): [number, number];
  step(span: Span): void;
  truthy(e: Expr, scope: Scope): boolean;
}

/**
 * How many parameters a weights block declares, for progress reports, without walking every
 * layer: a loop whose inner loop bounds ignore its variable counts its body once, and a
 * condition on a loop variable counts as met.
 */
export function countParams(items: WeightItem[], scope: Scope, loopVars: ReadonlySet<string>, ev: Walker): number {
  const boundsMention = (its: WeightItem[], v: ReadonlySet<string>): boolean =>
    its.some((it) => it.kind === "for" && (mentions(it.from, v) || mentions(it.to, v) || boundsMention(it.items, v)));
  let n = 0;
  for (const it of items) {
    if (it.kind === "param") {
      if (!it.cond || mentions(it.cond, loopVars) || ev.truthy(it.cond, scope)) n++;
      continue;
    }
    const [from, to] = ev.loopBounds(it, scope);
    const inner = new Set(loopVars).add(it.variable);
    const at = (i: number) => {
      const s = new Scope(scope);
      s.define(it.variable, i);
      return countParams(it.items, s, inner, ev);
    };
    if (to <= from) continue;
    if (!boundsMention(it.items, new Set([it.variable]))) {
      n += (to - from) * at(from);
      continue;
    }
    for (let i = from; i < to; i++) {
      ev.step(it.span);
      n += at(i);
    }
  }
  return n;
}
