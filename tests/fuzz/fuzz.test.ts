// The fuzz target (tools/fuzz) with a fixed seed and a small budget: every generated malformed
// DSL file, config, safetensors or GGUF checkpoint, artifact and option must end in a clean
// error. `npm run fuzz -- --cases 2000` runs a longer campaign with the same judge.

import { describe, expect, it } from "vitest";
import { judge } from "../../tools/fuzz/judge.js";

const clean = { code: 1, stdout: "", ms: 10, changes: [] };

describe("fuzz judge", () => {
  it("accepts one coded message, or located diagnostics with code frames", () => {
    expect(judge({ ...clean, stderr: "error[WF401]: model.safetensors: tensor 'x' expected [2], found [3]\n" }).verdict).toBe("ok");
    const framed = "m.wf:3:5: error[WF102]: expected ';' but found '}'\n3 |     let x = 1\n        ^\nm.wf:9:1: error[WF201]: 'y' is not defined\n9 | y\n    ^\n";
    expect(judge({ ...clean, stderr: framed }).verdict).toBe("ok");
  });

  it("rejects exit 0, internal errors, stack traces, uncoded or several unlocated messages, writes and hangs", () => {
    expect(judge({ ...clean, code: 0, stderr: "" }).verdict).toBe("accepted");
    expect(judge({ ...clean, code: 2, stderr: "internal error: x is not iterable\n" }).verdict).toBe("internal");
    expect(judge({ ...clean, stderr: "error[WF401]: bad\n    at foo (x.js:1:1)\n" }).verdict).toBe("unclean");
    expect(judge({ ...clean, stderr: "error: no code here\n" }).verdict).toBe("unclean");
    expect(judge({ ...clean, stderr: "error[WF401]: one\nerror[WF402]: two\n" }).verdict).toBe("unclean");
    expect(judge({ ...clean, stdout: "partial", stderr: "error[WF401]: x\n" }).verdict).toBe("unclean");
    expect(judge({ ...clean, stderr: "error[WF602]: x\n", changes: ["+out/"] }).verdict).toBe("wrote");
    expect(judge({ ...clean, stderr: "error[WF602]: x\n", ms: 16_000 }).verdict).toBe("hang");
  });
});

describe("fuzz campaign", () => {
  it("300 generated malformed inputs (seed 20261204) all end in clean errors", async () => {
    // the campaign runs the built CLI (dist/, made by `npm test`'s pretest build) in worker threads
    const { runCampaign, formatCampaign } = await import("../../dist/tools/fuzz/run.js");
    const c = await runCampaign({ cases: 300, seed: 20261204, workers: 2 });
    expect(c.results.length).toBe(300);
    expect(c.failures, formatCampaign(c)).toEqual([]);
  }, 600_000);
});
