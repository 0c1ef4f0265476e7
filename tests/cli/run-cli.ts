// Running the CLI in process, its output captured, for the CLI tests.

import { expect } from "vitest";
import { main } from "../../compiler/cli.js";

/** The CLI's exit status and what it wrote, run in this process. */
export async function cli(...argv: string[]) {
  let out = "", err = "";
  const code = await main(argv, { stdout: { write: (s) => (out += s) }, stderr: { write: (s) => (err += s) } });
  return { code, out, err };
}

/** argv fails with exit status 1 and one error line matching `pattern`, and writes nothing to stdout. */
export async function expectOneLine(argv: string[], pattern: RegExp) {
  const r = await cli(...argv);
  expect(r.code, r.err).toBe(1);
  expect(r.out).toBe("");
  expect(r.err).toMatch(pattern);
  expect(r.err.endsWith("\n") && r.err.split("\n").length === 2, r.err).toBe(true);
}
