// BART and Marian: malformed configs each refused with one WF3xx diagnostic, and forced BOS/EOS
// ids read into the manifest's tokens (generation_config.json's in place of config.json's).

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { forcedTokens, readGenerationConfig } from "../../compiler/checkpoint-files.js";
import { specialTokens } from "../../compiler/compile.js";
import { loadProgram } from "../../compiler/load.js";
import { fixtureDir, root } from "../helpers.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of fixture `name` with config.json changed by `edit`. */
function withConfig(name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), `wf-${name}-`));
  dirs.push(dir);
  const cfg = JSON.parse(readFileSync(join(fixtureDir(name), "config.json"), "utf8"));
  edit(cfg);
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
  copyFileSync(join(fixtureDir(name), "model.safetensors"), join(dir, "model.safetensors"));
  return dir;
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe.each(["bart", "marian"])("%s config", (name) => {
  const load = (dir: string) => () => loadProgram(join(root, "examples", `${name}.wf`), dir);
  it.each([
    ["an activation not written", (c: Record<string, unknown>) => (c.activation_function = "tanh"), "WF304"],
    ["heads that do not divide d_model", (c: Record<string, unknown>) => (c.decoder_attention_heads = 5), "WF304"],
    ["no encoder layers", (c: Record<string, unknown>) => (c.encoder_layers = 0), "WF303"],
    ["a missing d_model", (c: Record<string, unknown>) => delete c.d_model, "WF301"],
  ])("%s is refused", (_what, edit, code) => {
    expect(codeOf(load(fixtureDir(name)))).toBeUndefined();
    expect(codeOf(load(withConfig(name, edit)))).toBe(code);
  });
});

it("marian refuses separate decoder embeddings", () => {
  const dir = withConfig("marian", (c) => ((c.share_encoder_decoder_embeddings = false), (c.decoder_vocab_size = 50)));
  expect(codeOf(() => loadProgram(join(root, "examples", "marian.wf"), dir))).toBe("WF304");
});

describe("forced BOS/EOS ids", () => {
  const cfg = (name: string) => JSON.parse(readFileSync(join(fixtureDir(name), "config.json"), "utf8"));
  it("come from config.json", () => {
    expect(specialTokens(cfg("bart"), 91)).toMatchObject({ decoder_start: 2, forced_bos: 0, forced_eos: [2] });
    const marian = specialTokens(cfg("marian"), 89)!;
    expect(marian).toMatchObject({ decoder_start: 88, forced_eos: [0] });
    expect(marian.forced_bos).toBeUndefined();
    expect(forcedTokens({ forced_bos_token_id: null, forced_eos_token_id: [3, 4] }, 10, "config.json", "WF350")).toEqual({ forced_eos: [3, 4] });
  });
  it("outside the vocabulary are WF350 (config.json) and WF352 (generation_config.json)", () => {
    expect(codeOf(() => specialTokens({ ...cfg("bart"), forced_bos_token_id: 91 }, 91))).toBe("WF350");
    expect(codeOf(() => specialTokens({ ...cfg("bart"), forced_eos_token_id: "2" }, 91))).toBe("WF350");
    const dir = withConfig("bart", () => {});
    writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ forced_eos_token_id: [2, -1] }));
    expect(codeOf(() => readGenerationConfig(dir, 91))).toBe("WF352");
    writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ forced_bos_token_id: 5, forced_eos_token_id: 7 }));
    expect(readGenerationConfig(dir, 91).forced).toEqual({ forced_bos: 5, forced_eos: [7] });
  });
});
