// compile --config KEY=VALUE: config.json values replaced before the model reads them — a
// masked-LM checkpoint compiled as its bare encoder, an override visible to the DSL's
// requirements, and malformed overrides as one error line.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.js";
import { withConfig } from "../../compiler/load.js";
import { root } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "wf-config-"));

async function cli(...args: string[]) {
  let out = "", err = "";
  const code = await main(args, { stdout: { write: (s) => (out += s) }, stderr: { write: (s) => (err += s) } });
  return { code, out, err };
}

const outputs = (artifact: string) => (JSON.parse(readFileSync(join(artifact, "manifest.json"), "utf8")).entries[0].outputs as { name: string }[]).map((o) => o.name);

describe("compile --config", () => {
  it("architectures.0=BertModel compiles a BertForMaskedLM checkpoint as the bare encoder (no vocabulary logits)", async () => {
    const bert = join(root, "examples/bert.wf"), weights = join(root, "tests/fixtures/bert-mlm");
    const a = await cli("compile", bert, "--weights", weights, "--out", join(dir, "mlm"));
    const b = await cli("compile", bert, "--weights", weights, "--out", join(dir, "bare"), "--config", "architectures.0=BertModel");
    expect([a.code, b.code], a.err + b.err).toEqual([0, 0]);
    expect(outputs(join(dir, "mlm"))).toEqual(["hidden", "logits"]);
    expect(outputs(join(dir, "bare"))).toEqual(["hidden"]);
  });

  it("a value breaking the model's own rules is reported as the config's", async () => {
    const r = await cli("compile", join(root, "examples/gpt2.wf"), "--weights", join(root, "tests/fixtures/gpt2"), "--out", join(dir, "bad"), "--config", "n_head=-3");
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/n_head/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("malformed overrides are one error line", async () => {
    const base = ["compile", join(root, "examples/bert.wf"), "--weights", join(root, "tests/fixtures/bert-mlm"), "--out", join(dir, "x")];
    expect((await cli(...base, "--config", "=3")).err.trim()).toMatch(/^error\[WF601\]: --config should be KEY=VALUE with a dotted config key .*found '=3'$/);
    expect((await cli(...base, "--config", "architectures.5=X")).err.trim()).toBe("error[WF601]: --config architectures.5: 'architectures' is a list of 1, so '5' should be an index up to 1");
  });

  it("withConfig sets dotted keys, JSON values and new nested objects without touching the input", () => {
    const hf = { a: 1, l: [1, 2], o: { x: 1 } };
    expect(withConfig(hf, [{ key: "a", value: 2 }, { key: "l.1", value: 5 }, { key: "o.y.z", value: "t" }, { key: "n.0", value: true }])).toEqual({ a: 2, l: [1, 5], o: { x: 1, y: { z: "t" } }, n: [true] });
    expect(hf).toEqual({ a: 1, l: [1, 2], o: { x: 1 } });
  });
});
