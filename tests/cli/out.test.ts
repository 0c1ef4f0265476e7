// --out never loses a user's files: the built CLI against files, folders and artifacts that are
// already there. Refusals come before any work; replacements swap a whole new output in.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { NPY_FILE, ONNX_FILE, checkFileOut, checkFolderOut, isArtifactFolder } from "../../compiler/output.js";
import { fixtureDir, root } from "../helpers.js";

const bin = join(root, "bin", "wasmformer.js");
const model = join(root, "examples", "gpt2.wf");
const weights = fixtureDir("gpt2");

function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const compile = (out: string, ...extra: string[]) => cli(["compile", model, "--weights", weights, "--out", out, ...extra]);
const tmp = () => mkdtempSync(join(tmpdir(), "wf-out-"));

// one artifact compiled up front (with model.wat), copied where a test replaces or runs one
const compiled = join(tmp(), "art");
beforeAll(() => {
  const r = compile(compiled, "--emit-wat");
  expect(r.code, r.err).toBe(0);
});

/** Every file under `dir` with a hash of its bytes (folders as entries of their own). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out[relative(dir, p) + "/"] = "dir";
        walk(p);
      } else out[relative(dir, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

function expectRefused(r: ReturnType<typeof cli>, pattern: RegExp) {
  expect(r.code, r.err).toBe(1);
  expect(r.err).toMatch(pattern);
  expect(r.err.trimEnd().split("\n")).toHaveLength(1);
  expect(r.out).toBe("");
}

describe("compile --out refuses what is not an artifact, before any work", () => {
  it("an existing file survives, even when the model file is missing (the check comes first)", () => {
    const dir = tmp();
    writeFileSync(join(dir, "notes.txt"), "my notes\n");
    const before = snapshot(dir);
    expectRefused(compile(join(dir, "notes.txt")), /^error\[WF602\]: --out .*notes\.txt exists and is not a wasmformer artifact \(refusing to replace it; use --force\)$/m);
    expectRefused(cli(["compile", join(dir, "nope.wf"), "--weights", weights, "--out", join(dir, "notes.txt")]), /^error\[WF602\]: /);
    expect(snapshot(dir)).toEqual(before);
  });

  it("a folder with a file of the user's survives", () => {
    const dir = tmp();
    mkdirSync(join(dir, "mine"));
    writeFileSync(join(dir, "mine", "keep.txt"), "keep me\n");
    const before = snapshot(dir);
    expectRefused(compile(join(dir, "mine")), /^error\[WF602\]: --out .*mine exists and is not a wasmformer artifact/);
    expect(snapshot(dir)).toEqual(before);
  });

  it("an artifact folder holding another file is not an artifact", () => {
    const dir = tmp();
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ format: "wasmformer" }));
    writeFileSync(join(dir, "keep.txt"), "keep me\n");
    expect(isArtifactFolder(dir)).toBe(false);
    expect(() => checkFolderOut(dir)).toThrow(/exists and is not a wasmformer artifact/);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ format: "other" }));
    expect(() => checkFolderOut(dir)).toThrow(/not a wasmformer artifact/);
  });

  it("'.', a folder above it and the home folder are never replaced, even with --force", () => {
    const dir = tmp();
    const work = join(dir, "work");
    mkdirSync(work);
    writeFileSync(join(work, "keep.txt"), "keep me\n");
    const home = join(dir, "home");
    mkdirSync(home);
    writeFileSync(join(home, ".profile"), "mine\n");
    const before = snapshot(dir);
    for (const force of [[], ["--force"]]) {
      expectRefused(cli(["compile", model, "--weights", weights, "--out", ".", ...force], { cwd: work }), /^error\[WF603\]: --out \. is the current folder; it is never replaced, even with --force$/m);
      expectRefused(cli(["compile", model, "--weights", weights, "--out", "..", ...force], { cwd: work }), /^error\[WF603\]: --out \.\. is a folder above the current one/);
      expectRefused(cli(["compile", model, "--weights", weights, "--out", home, ...force], { cwd: work, env: { HOME: home } }), /^error\[WF603\]: --out .* is your home folder/);
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it("a folder holding an input is never replaced, even with --force", () => {
    const dir = tmp();
    const w = join(dir, "weights");
    cpSync(weights, w, { recursive: true });
    const before = snapshot(dir);
    expectRefused(cli(["compile", model, "--weights", w, "--out", dir, "--force"]), /^error\[WF603\]: --out .* holds .*weights, an input of this command; it is never replaced$/m);
    expectRefused(cli(["compile", model, "--weights", w, "--out", w, "--force"]), /^error\[WF603\]: /);
    expect(snapshot(dir)).toEqual(before);
  });
});

describe("compile --out replaces an artifact, an empty folder, and (--force) anything else", () => {
  const dir = tmp();
  const art = join(dir, "art");
  beforeAll(() => cpSync(compiled, art, { recursive: true }));

  it("recompiling over an artifact replaces it whole and leaves nothing beside it", () => {
    expect(readdirSync(art)).toContain("model.wat");
    const r = compile(art);
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(art).sort()).toEqual(["manifest.json", "model.relaxed.wasm", "model.threads.wasm", "model.wasm", "weights.bin"]);
    expect(readdirSync(dir)).toEqual(["art"]);
  });

  it("a failed compile leaves the old artifact intact and no temporary folder", () => {
    const before = snapshot(dir);
    const syntax = cli(["compile", join(root, "tests", "frontend", "errors", "syntax.wf"), "--weights", weights, "--out", art]);
    expect(syntax.code).toBe(1);
    expect(syntax.err).toMatch(/syntax\.wf:4:5: error/);
    expectRefused(cli(["compile", model, "--weights", join(dir, "no-weights"), "--out", art]), /no-weights/);
    expect(snapshot(dir)).toEqual(before);
  });

  it("a failure while writing removes the temporary folder and keeps the old artifact (compileModel)", () => {
    const before = snapshot(dir);
    const progress = { update: (what: string) => { if (what === "writing") throw new Error("disk trouble"); }, done() {} };
    expect(() => compileModel(model, weights, art, { progress })).toThrow("disk trouble");
    expect(snapshot(dir)).toEqual(before);
  });

  it("an empty folder may be replaced", () => {
    const empty = join(tmp(), "empty");
    mkdirSync(empty);
    expect(() => checkFolderOut(empty)).not.toThrow();
  });

  it("missing parent folders are created", () => {
    const d = tmp();
    expect(compile(join(d, "a", "b", "art")).code).toBe(0);
    expect(isArtifactFolder(join(d, "a", "b", "art"))).toBe(true);
  });

  it("--force replaces a folder of other files, and a file", () => {
    const d = tmp();
    mkdirSync(join(d, "mine"));
    writeFileSync(join(d, "mine", "keep.txt"), "not kept\n");
    writeFileSync(join(d, "notes.txt"), "not kept\n");
    for (const target of ["mine", "notes.txt"]) {
      const r = compile(join(d, target), "--force");
      expect(r.code, r.err).toBe(0);
      expect(isArtifactFolder(join(d, target))).toBe(true);
    }
    expect(readdirSync(d).sort()).toEqual(["mine", "notes.txt"]);
  });

  it("Ctrl-C while the artifact is written takes effect after the swap: no temporary folder is left", () => {
    const d = tmp();
    const out = join(d, "art");
    cpSync(compiled, out, { recursive: true });
    // the process signals itself as the first file is written (a Ctrl-C at the worst moment)
    const script = `
      import { compileModel } from ${JSON.stringify(join(root, "dist", "compiler", "compile.js"))};
      let sent = false;
      const progress = { update(what) { if (what === "writing" && !sent) { sent = true; process.kill(process.pid, "SIGINT"); } }, done() {} };
      compileModel(${JSON.stringify(model)}, ${JSON.stringify(weights)}, ${JSON.stringify(out)}, { progress, emitWat: true });`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.signal, r.stderr).toBe("SIGINT");
    expect(readdirSync(d)).toEqual(["art"]);
    expect(readdirSync(out)).toContain("model.wat");
    expect(isArtifactFolder(out)).toBe(true);
  });
});

describe("file outputs: run --out FILE.npy, export-onnx --out FILE", () => {
  it("run refuses a folder (even with --force) and a file of another kind (unless --force), before loading the artifact", () => {
    const d = tmp();
    mkdirSync(join(d, "mine"));
    writeFileSync(join(d, "mine", "keep.txt"), "keep me\n");
    writeFileSync(join(d, "notes.txt"), "my notes\n");
    const before = snapshot(d);
    const run = (out: string, ...extra: string[]) => cli(["run", join(d, "no-artifact"), "--input-ids", "1,2", "--out", join(d, out), ...extra]);
    expectRefused(run("mine"), /^error\[WF603\]: --out .*mine is a folder; give the name of a file to write \(a \.npy file\)$/m);
    expectRefused(run("mine", "--force"), /^error\[WF603\]: /);
    expectRefused(run("notes.txt"), /^error\[WF602\]: --out .*notes\.txt exists and is not a \.npy file \(refusing to replace it; use --force\)$/m);
    expect(snapshot(d)).toEqual(before);
    // with --force the check passes and the missing artifact is the error
    expectRefused(run("notes.txt", "--force"), /^error\[WF5\d\d\]: .*no-artifact is not an artifact folder/);
  });

  it("run replaces an earlier .npy file; --force a file of another kind; nothing is left beside them", () => {
    const d = tmp();
    const run = (out: string, ...extra: string[]) => cli(["run", compiled, "--input-ids", "1,2", "--out", join(d, out), ...extra]);
    expect(run("x.npy").code).toBe(0);
    const first = statSync(join(d, "x.npy")).mtimeMs;
    writeFileSync(join(d, "x.npy"), readFileSync(join(d, "x.npy")).subarray(0, 200)); // a truncated .npy is still a .npy
    expect(run("x.npy").code).toBe(0);
    expect(readFileSync(join(d, "x.npy")).length).toBeGreaterThan(200);
    expect(statSync(join(d, "x.npy")).mtimeMs).toBeGreaterThanOrEqual(first);
    writeFileSync(join(d, "notes.txt"), "replaced\n");
    expect(run("notes.txt", "--force").code).toBe(0);
    expect(NPY_FILE.matches(readFileSync(join(d, "notes.txt")))).toBe(true);
    expect(readdirSync(d).sort()).toEqual(["notes.txt", "x.npy"]);
  });

  it("export-onnx refuses a file that is not an ONNX model, and never writes over its inputs", () => {
    const d = tmp();
    writeFileSync(join(d, "notes.txt"), "my notes\n");
    const w = join(d, "weights");
    cpSync(weights, w, { recursive: true });
    const before = snapshot(d);
    expectRefused(cli(["export-onnx", model, "--weights", w, "--out", join(d, "notes.txt")]), /^error\[WF602\]: --out .*notes\.txt exists and is not an ONNX model/);
    expectRefused(cli(["export-onnx", model, "--weights", w, "--out", join(w, "model.safetensors"), "--force"]), /^error\[WF603\]: --out .*model\.safetensors is in .*weights, an input of this command/);
    expect(snapshot(d)).toEqual(before);
    expect(() => checkFileOut(model, ONNX_FILE, { force: true, inputs: [model] })).toThrow(/is .*gpt2\.wf, an input of this command/);
  });
});
