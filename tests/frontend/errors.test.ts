// Malformed models: each tests/frontend/errors/NAME.wf has NAME.errors.json beside it listing
// the diagnostics expected, in order, as the first line the formatter prints for each:
// `file:line:col: error[WF102]: message` (or `error: message` for an error without a code).
// A model is loaded against tests/fixtures/gpt2, or the fixture its first line names as
// `// fixture: NAME`.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Diagnostic, DiagnosticList, formatDiagnostic } from "../../compiler/diagnostics.js";
import { loadProgram } from "../../compiler/load.js";
import { root } from "../helpers.js";

const dir = join("tests", "frontend", "errors");

function diagnostics(file: string): string[] {
  const fixture = /^\/\/ fixture: ([\w-]+)/.exec(readFileSync(file, "utf8"))?.[1] ?? "gpt2";
  try {
    loadProgram(file, join("tests", "fixtures", fixture));
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
      // every diagnostic carries the source line it names, as this test splits the file into
      // lines (control characters shown as '?' or ' '), and a caret under the column
      const lines = readFileSync(join(root, dir, f), "utf8").split(/\r\n|\r|\n/);
      for (const d of got) {
        const [head, src, caret] = d.split("\n");
        const [line, col] = head.split(":").slice(1, 3).map(Number);
        const shown = src.slice(src.indexOf("|") + 2);
        const masked = (c: string) => (c === "\t" ? " " : c < " " || c === "\u202e" ? "?" : c);
        expect(shown).toBe(Array.from(lines[line - 1], masked).join(""));
        expect(caret.indexOf("^") - src.indexOf("|") - 2).toBe(col - 1);
      }
    });
  }
});
