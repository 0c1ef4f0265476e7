// The runtime's error codes (runtime/errors.ts) are the WF5xx block of the compiler's list
// (compiler/diagnostic-codes.ts), each explained in docs/diagnostics.md and thrown somewhere.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { codes } from "../../compiler/diagnostic-codes.js";
import { ARTIFACT_CODES } from "../../runtime/errors.js";
import { root } from "../helpers.js";

describe("WF5xx codes", () => {
  it("the runtime's list is the compiler's WF5xx block", () => {
    const wf5 = Object.fromEntries(Object.entries(codes).filter(([c]) => c.startsWith("WF5")));
    expect(wf5).toEqual(ARTIFACT_CODES);
  });
  it("each has a row in docs/diagnostics.md and is thrown by the runtime", () => {
    const docs = readFileSync(join(root, "docs", "diagnostics.md"), "utf8");
    const sources = readdirSync(join(root, "runtime")).filter((f) => f.endsWith(".ts")).map((f) => readFileSync(join(root, "runtime", f), "utf8")).join("\n");
    for (const code of Object.keys(ARTIFACT_CODES)) {
      expect(docs, code).toMatch(new RegExp(`^\\| ${code} \\| .+ \\|$`, "m"));
      expect(sources, code).toContain(`new ArtifactError("${code}"`);
    }
  });
});
