// Malformed models: each tests/frontend/errors/NAME.wf has NAME.errors.json beside it listing
// the diagnostics expected, in order, as `file:line:col: message` lines.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Diagnostic, DiagnosticList, formatDiagnostic } from "../../compiler/diagnostics.js";
import { loadProgram } from "../../compiler/load.js";
import { root } from "../helpers.js";

const dir = join("tests", "frontend", "errors");

function diagnostics(file: string): string[] {
  try {
    loadProgram(file, join("tests", "fixtures", "gpt2"));
  } catch (e) {
    if (e instanceof DiagnosticList) return e.diagnostics.map((d) => formatDiagnostic(d));
    if (e instanceof Diagnostic) return [formatDiagnostic(e)];
    throw e;
  }
  return [];
}

describe("DSL errors", () => {
  for (const f of readdirSync(join(root, dir)).filter((x) => x.endsWith(".wf"))) {
    it(f, () => {
      process.chdir(root);
      const expected: string[] = JSON.parse(readFileSync(join(root, dir, f.replace(/\.wf$/, ".errors.json")), "utf8"));
      const got = diagnostics(join(dir, f));
      expect(got.map((d) => d.split("\n")[0])).toEqual(expected);
      // every diagnostic carries the source line and a caret under the column
      for (const d of got) {
        const [head, src, caret] = d.split("\n");
        const col = Number(head.split(":")[2]);
        expect(caret.indexOf("^") - src.indexOf("|") - 2).toBe(col - 1);
      }
    });
  }
});
