// Options: every value checked against its command's table before any work, every problem one
// coded line. Most cases run main() in process through its io writers; a few spawn the built CLI.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.js";
import { commands } from "../../compiler/cli/commands.js";
import { errorLines } from "../../compiler/cli/errors.js";
import { parseCommand } from "../../compiler/cli/options.js";
import { InputError } from "../../compiler/diagnostics.js";
import { IRError } from "../../ir/graph.js";
import { ArtifactError } from "../../runtime/model.js";
import { fixtureDir, root } from "../helpers.js";
import { cli, expectOneLine } from "./run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "wf-options-"));
const compile = ["compile", join(root, "examples", "gpt2.wf"), "--weights", fixtureDir("gpt2"), "--out", join(dir, "out")];
// options are checked before the artifact is read: a missing one proves it
const generate = ["generate", join(dir, "no-artifact")];

describe("values of the wrong type or out of range: WF601, before any work", () => {
  it.each([
    ["abc", "0", "-1", "1.5", "", "1e3", "0x10", "NaN", "99999999999999999999"],
  ][0])("compile --context %j", async (v) => {
    await expectOneLine([...compile, "--context", v], new RegExp(`^error\\[WF601\\]: --context should be a positive integer( of magnitude below 2\\^53)?, found '${v.replace(/\./g, "\\.")}'$`, "m"));
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it.each([
    ["--max-new-tokens", "-1", "a non-negative integer"],
    ["--max-new-tokens", "abc", "a non-negative integer"],
    ["--max-new-tokens", "1.5", "a non-negative integer"],
    ["--temperature", "abc", "a finite number ≥ 0"],
    ["--temperature", "NaN", "a finite number ≥ 0"],
    ["--temperature", "-1", "a finite number ≥ 0"],
    ["--temperature", "Infinity", "a finite number ≥ 0"],
    ["--temperature", "", "a finite number ≥ 0"],
    ["--temperature", "0x1", "a finite number ≥ 0"],
    ["--seed", "1.5", "an integer"],
    ["--seed", "1e400", "an integer"],
    ["--threads", "0", "an integer from 1 to 256"],
    ["--threads", "257", "an integer from 1 to 256"],
    ["--input-ids", "1,x", "comma-separated non-negative integer ids"],
  ])("generate %s %s", async (flag, v, what) => {
    await expectOneLine([...generate, flag, v], new RegExp(`^error\\[WF601\\]: ${flag} should be ${what}, found '${v.replace(/[.]/g, "\\.").replace(/^1,/, "")}'$`, "m"));
  });

  it("other commands' values", async () => {
    await expectOneLine([...compile, "--quantize", "int3"], /^error\[WF601\]: --quantize should be one of int8, int4, int4-min, found 'int3'$/m);
    await expectOneLine([...compile, "--quantize-tensor", "x=int9"], /^error\[WF601\]: --quantize-tensor should be NAME=int8\|int4\|int4-min\|f32, found 'x=int9'$/m);
    await expectOneLine([...compile.slice(0, -2), "--out", ""], /^error\[WF601\]: --out should be a path, found ''$/m);
    await expectOneLine(["eval", join(dir, "a"), "--ids", "x", "--window", "1"], /^error\[WF601\]: --window should be an integer of at least 2, found '1'$/m);
    await expectOneLine(["eval", join(dir, "a"), "--ids", "x", "--stride", "0"], /^error\[WF601\]: --stride should be a positive integer, found '0'$/m);
    await expectOneLine(["run", join(dir, "a"), "--input-ids", "1", "--token-type-ids", "0,-1", "--out", "x.npy"], /^error\[WF601\]: --token-type-ids should be comma-separated non-negative integer ids, found '-1'$/m);
  });

  it("a value with control characters or of any length stays one short line", async () => {
    const r = await cli(...generate, "--seed", `1\n2${"9".repeat(500)}`);
    expect(r.err).toMatch(/^error\[WF601\]: --seed should be an integer, found '1\\x0a29+\.\.\.'\n$/);
    expect(r.err.length).toBeLessThan(200);
  });
});

describe("malformed command lines: WF604", () => {
  it.each([
    [["generate", "a", "--nope"], /^error\[WF604\]: unknown option --nope for generate; wasmformer generate --help lists its options$/m],
    [["generate", "a", "--temprature", "1"], /^error\[WF604\]: unknown option --temprature for generate \(did you mean --temperature\?\)/m],
    [["generate", "a", "-x"], /^error\[WF604\]: unknown option -x for generate/m],
    [["generate", "a", "--threads"], /^error\[WF604\]: --threads needs a value$/m],
    [["generate", "a", "--seed", "--json"], /^error\[WF604\]: --seed needs a value \(for one starting with '-', write --seed=VALUE\)$/m],
    [["generate", "a", "--json=1"], /^error\[WF604\]: --json takes no value, found '1'$/m],
    [["generate", "a", "--seed", "1", "--seed", "2"], /^error\[WF604\]: --seed is given more than once$/m],
    [["generate", "a", "b"], /^error\[WF604\]: unexpected argument 'b' after 'a' \(generate takes one ARTIFACT\)$/m],
    [["generate", "a", "--prompt", "hi", "--input-ids", "1"], /^error\[WF604\]: --prompt and --input-ids cannot be given together$/m],
    [["run", "a"], /^error\[WF604\]: run needs --out FILE\.npy$/m],
    [["compile"], /^error\[WF604\]: compile needs MODEL\.wf; usage: wasmformer compile MODEL\.wf --weights PATH --out DIR \[options\]$/m],
    [[], /^error\[WF604\]: give a command: compile, export-onnx, run, generate, chat, embed, classify, eval/m],
    [["compil"], /^error\[WF604\]: no command named 'compil' \(did you mean compile\?\)/m],
    [["--nope"], /^error\[WF604\]: give a command before options/m],
    [["help", "nope"], /^error\[WF604\]: no command named 'nope'/m],
  ] as const)("%j", async (argv, pattern) => {
    await expectOneLine([...argv], pattern);
  });

  it("--quantize-tensor needs --quantize, before any work", async () => {
    await expectOneLine([...compile, "--quantize-tensor", "x=int8"], /^error\[WF604\]: --quantize-tensor needs --quantize/m);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("values that are accepted", () => {
  const parse = (name: string, ...argv: string[]) => {
    const r = parseCommand(name, commands[name], argv);
    if (r === "help") throw new Error("help");
    return r;
  };
  it("negative seeds, inline values, defaults, repeated options", () => {
    expect(parse("generate", "a", "--seed", "-5").values).toMatchObject({ seed: -5, json: false, stop: [] });
    // unset sampling flags and length take the checkpoint's generation_config.json, then the defaults
    expect(parse("generate", "a").values.temperature).toBeUndefined();
    expect(parse("generate", "a").values["max-new-tokens"]).toBeUndefined();
    expect(parse("generate", "a").values.threads).toBeUndefined(); // the machine's cores, decided once the artifact is read
    expect(parse("generate", "a", "--temperature=0.7", "--max-new-tokens=0", "--prompt", "").values).toMatchObject({ temperature: 0.7, "max-new-tokens": 0, prompt: "" });
    expect(parse("generate", "a", "--input-ids", " 1, 2 ,3").values["input-ids"]).toEqual([1, 2, 3]);
    const c = parse("compile", "m.wf", "--weights", "w", "--out", "o", "--disable-pass", "fuse-ffn", "--disable-pass", "fuse-qkv", "--context", "40");
    expect(c).toEqual({ positional: "m.wf", values: expect.objectContaining({ "disable-pass": ["fuse-ffn", "fuse-qkv"], context: 40, force: false, "quantize-tensor": [] }) });
    expect(parse("run", "a", "--out", "x", "--input-ids", "1", "--", ).positional).toBe("a");
  });

  it("--help and --version print to stdout and exit 0", async () => {
    const all = await cli("--help");
    expect([all.code, all.err]).toEqual([0, ""]);
    for (const name of Object.keys(commands)) expect(all.out).toContain(`${name} `);
    for (const name of Object.keys(commands)) {
      const h = await cli(name, "--help");
      expect([h.code, h.err]).toEqual([0, ""]);
      expect(h.out).toMatch(new RegExp(`^usage: wasmformer ${name} `));
      for (const o of Object.keys(commands[name].options)) expect(h.out).toContain(`--${o}`);
      expect((await cli("help", name)).out).toBe(h.out);
      expect((await cli(name, "x", "--bad-option", "-h")).out).toBe(h.out);
    }
    expect((await cli("generate", "--help")).out).toMatch(/--max-new-tokens N +tokens to generate \(default: generation_config.json's max_new_tokens, else 32\)/);
    expect((await cli("--version")).out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe("errors: one coded line for input, internal error only for bugs", () => {
  it("maps known errors to coded lines", () => {
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'x/y.json'"), { code: "ENOENT", syscall: "open", path: "x/y.json", errno: -2 });
    expect(errorLines(enoent)).toBe("error[WF605]: x/y.json: no such file or folder (open)");
    const nospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write", errno: -28 });
    expect(errorLines(nospc)).toBe("error[WF605]: no space left on the device (write)");
    expect(errorLines(new ArtifactError("WF507", "bad\nmanifest"))).toBe("error[WF507]: bad manifest");
    expect(errorLines(new ArtifactError("WF501", "no manifest.json"))).toBe("error[WF501]: no manifest.json");
    expect(errorLines(new InputError("x", undefined, { code: "WF401" }))).toBe("error[WF401]: x");
    expect(errorLines(new IRError("shapes differ", { file: "m.wf", line: 3, col: 7 }))).toBe("m.wf:3:7: error: shapes differ");
    expect(errorLines(new TypeError("c is not iterable"))).toBeUndefined();
    expect(errorLines(Object.assign(new Error("odd"), { code: "ERR_SOMETHING" }))).toBeUndefined();
  });
});

describe("the built CLI", () => {
  const bin = (...args: string[]) => spawnSync(process.execPath, [join(root, "bin", "wasmformer.js"), ...args], { cwd: root, encoding: "utf8" });
  it("reports a bad option in one line with exit status 1, and --help with 0", () => {
    const r = bin("generate", "x", "--context", "abc");
    expect([r.status, r.stdout, r.stderr]).toEqual([1, "", "error[WF604]: unknown option --context for generate; wasmformer generate --help lists its options\n"]);
    const t = bin("generate", "x", "--temperature", "abc");
    expect([t.status, t.stdout, t.stderr]).toEqual([1, "", "error[WF601]: --temperature should be a finite number ≥ 0, found 'abc'\n"]);
    const h = bin("compile", "--help");
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^usage: wasmformer compile MODEL\.wf --weights PATH --out DIR \[options\]\n/);
  });
});
