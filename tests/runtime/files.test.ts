// An artifact folder on disk (runtime/node.ts): missing, unreadable or malformed files,
// edited manifests, a corrupt module, a bad tokenizer, and memory that cannot be allocated,
// each one line naming the file.

import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { loadArtifact, loadArtifactTokenizer, readManifest } from "../../runtime/node.js";
import { artifactCopier, editManifest, fixtureDir, root } from "../helpers.js";
import { refused } from "./refused.js";

/** Parsed JSON, edited freely by the cases. */
type Json = any;

const tmp = mkdtempSync(join(tmpdir(), "wf-runtime-files-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const compiled = join(tmp, "compiled");
compileModel(join(root, "examples", "gpt2.wf"), fixtureDir("gpt2"), compiled, { context: 16 });

const copyOf = artifactCopier(tmp);
/** A fresh copy of the compiled artifact, changed by `change(dir)`. */
const copy = (change?: (dir: string) => void) => copyOf(compiled, change);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("loadArtifact", () => {
  it("loads the compiled folder", async () => {
    const m = await loadArtifact(copy());
    expect(m.run("forward", { ids: [1, 2, 3] }).logits.length).toBe(3 * 101);
  });
  it("refuses what is not an artifact folder", async () => {
    const none = join(tmp, "nothing-here");
    await refused(() => loadArtifact(none), "WF501", new RegExp(`^${esc(none)} is not an artifact folder \\(it does not exist\\)$`));
    const file = join(tmp, "a-file");
    writeFileSync(file, "x");
    await refused(() => loadArtifact(file), "WF501", new RegExp(`^${esc(file)} is not an artifact folder \\(it is not a folder\\)$`));
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    await refused(() => loadArtifact(empty), "WF501", new RegExp(`^${esc(empty)} is not an artifact folder \\(no manifest\\.json\\)$`));
  });
  it("refuses a manifest.json that is not JSON, too large or unreadable", async () => {
    const dir = copy((d) => writeFileSync(join(d, "manifest.json"), '{"format": "wasmformer",'));
    await refused(() => loadArtifact(dir), "WF502", new RegExp(`^${esc(join(dir, "manifest.json"))}: not valid JSON \\(.+\\)$`));
    const big = copy((d) => truncateSync(join(d, "manifest.json"), 17 << 20));
    await refused(() => loadArtifact(big), "WF502", new RegExp(`^${esc(join(big, "manifest.json"))}: 17825792 bytes is too large for this file \\(at most 16777216\\)$`));
    const folder = copy((d) => {
      rmSync(join(d, "manifest.json"));
      mkdirSync(join(d, "manifest.json"));
    });
    await refused(() => loadArtifact(folder), "WF502", new RegExp(`^${esc(join(folder, "manifest.json"))}: cannot be read \\(.*EISDIR.*\\)$`));
  });
  it("refuses manifest edits, naming the file and the field", async () => {
    const nul = copy((d) => writeFileSync(join(d, "manifest.json"), "null"));
    await refused(() => loadArtifact(nul), "WF503", new RegExp(`^${esc(join(nul, "manifest.json"))}: should hold a JSON object, found null$`));
    const variants = copy((d) => editManifest(d, (m) => (m.variants = null)));
    await refused(() => loadArtifact(variants), "WF503", /manifest\.json: variants should be a non-empty array, found null$/);
    const width = copy((d) => editManifest(d, (m) => (m.entries[0].outputs[0].width = 0)));
    await refused(() => readManifest(width), "WF503", new RegExp(`^${esc(join(width, "manifest.json"))}: entries\\[0\\]\\.outputs\\[0\\]\\.width should be a positive integer, found 0$`));
    const huge = copy((d) => editManifest(d, (m) => (m.entries[0].outputs[0].width = 2 ** 40)));
    await refused(() => loadArtifact(huge), "WF503", /manifest\.json: entries\[0\]\.outputs\[0\]\.width should be at most 2147483647, found 1099511627776$/);
    const shifted = copy((d) => editManifest(d, (m) => (m.memory.weights_offset += 64)));
    await refused(() => loadArtifact(shifted), "WF505", new RegExp(`^${esc(join(shifted, "manifest.json"))}: memory\\.weights_offset is \\d+, but ${esc(join(shifted, "model.wasm"))} was compiled for \\d+$`));
    const edited = copy((d) => editManifest(d, (m) => (m.entries[0].outputs[0].width = 50)));
    await refused(() => loadArtifact(edited), "WF505", /manifest\.json: entries\[0\]\.outputs\[0\]\.width is 50, but .*model\.wasm was compiled for 101$/);
    const old = copy((d) => editManifest(d, (m) => (m.version = 1)));
    await refused(() => loadArtifact(old), "WF504", /manifest\.json: manifest version 1 is not supported \(this runtime reads version 3\): recompile the artifact with this wasmformer$/);
  });
  it("refuses a missing, corrupt or unreadable module, naming it", async () => {
    const missing = copy((d) => rmSync(join(d, "model.wasm")));
    await refused(() => loadArtifact(missing), "WF501", new RegExp(`^${esc(missing)}: missing model\\.wasm$`));
    const corrupt = copy((d) => writeFileSync(join(d, "model.wasm"), Buffer.alloc(64)));
    await refused(() => loadArtifact(corrupt), "WF506", new RegExp(`^${esc(join(corrupt, "model.wasm"))}: not a WebAssembly module this host can compile \\(expected magic word 00 61 73 6d, found 00 00 00 00 @\\+0\\)$`));
    const folder = copy((d) => {
      rmSync(join(d, "model.wasm"));
      mkdirSync(join(d, "model.wasm"));
    });
    await refused(() => loadArtifact(folder), "WF502", new RegExp(`^${esc(join(folder, "model.wasm"))}: cannot be read \\(.*EISDIR.*\\)$`));
    const threads = copy((d) => rmSync(join(d, "model.threads.wasm")));
    await refused(() => loadArtifact(threads, { threads: 2 }), "WF501", new RegExp(`^${esc(threads)}: missing model\\.threads\\.wasm$`));
  });
  it("refuses a weights.bin of the wrong size or missing", async () => {
    const short = copy((d) => truncateSync(join(d, "weights.bin"), 100));
    await refused(() => loadArtifact(short), "WF507", new RegExp(`^${esc(join(short, "weights.bin"))} has 100 bytes, the manifest expects \\d+$`));
    const missing = copy((d) => rmSync(join(d, "weights.bin")));
    await refused(() => loadArtifact(missing), "WF501", new RegExp(`^${esc(missing)}: missing weights\\.bin$`));
  });
  it("reports memory it cannot allocate, naming the manifest", () => {
    // a host allowing 4 pages: the artifact asks for more (V8's limit, set on a child process)
    const script = `const { loadArtifact } = await import(${JSON.stringify(join(root, "runtime", "node.ts"))});
      try { await loadArtifact(${JSON.stringify(compiled)}); console.log("loaded"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const r = spawnSync(process.execPath, ["--wasm-max-mem-pages=4", "--import", "tsx", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim());
    expect(got.code).toBe("WF508");
    expect(got.message).toMatch(new RegExp(`^${esc(join(compiled, "manifest.json"))}: cannot allocate the \\d+ pages \\(\\d+ MiB\\) of WebAssembly memory it asks for \\(.*could not allocate memory\\)$`));
  });
});

describe("loadArtifactTokenizer", () => {
  /** The compiled folder with the bundled tiny GPT-2's tokenizer files, changed by `change`. */
  const withTokenizer = (change: (dir: string) => void = () => {}) =>
    copy((d) => {
      editManifest(d, (m) => (m.tokenizer = "tokenizer.json"));
      for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(root, "examples", "tiny-gpt2", f), join(d, f));
      change(d);
    });
  const tokenizerOf = (dir: string) => loadArtifactTokenizer(dir, readManifest(dir));

  it("loads the artifact's tokenizer, or none", () => {
    const t = tokenizerOf(withTokenizer())!;
    expect(t.decode(t.encode("The quick"))).toBe("The quick");
    expect(tokenizerOf(copy())).toBeUndefined();
  });
  it("refuses a tokenizer.json that is not JSON or not a tokenizer, naming it", async () => {
    const text = withTokenizer((d) => writeFileSync(join(d, "tokenizer.json"), "{ not json"));
    await refused(() => tokenizerOf(text), "WF502", new RegExp(`^${esc(join(text, "tokenizer.json"))}: not valid JSON \\(.+\\)$`));
    const noModel = withTokenizer((d) => writeFileSync(join(d, "tokenizer.json"), JSON.stringify({ model: null })));
    await refused(() => tokenizerOf(noModel), "WF509", new RegExp(`^${esc(join(noModel, "tokenizer.json"))}: model should be an object, found null$`));
    const editTokenizer = (change: (t: Json) => void) =>
      withTokenizer((d) => {
        const t = JSON.parse(readFileSync(join(d, "tokenizer.json"), "utf8"));
        change(t);
        writeFileSync(join(d, "tokenizer.json"), JSON.stringify(t));
      });
    const kind = editTokenizer((t) => (t.model = { type: "Nope" }));
    await refused(() => tokenizerOf(kind), "WF509", new RegExp(`^${esc(join(kind, "tokenizer.json"))}: model.type should be one of BPE, WordPiece, Unigram, WordLevel, found "Nope"$`));
    // the library would guess a BPE model from the fields of one whose type is unknown
    const guessed = editTokenizer((t) => (t.model.type = "Nope"));
    await refused(() => tokenizerOf(guessed), "WF509", /tokenizer\.json: model.type should be one of .*, found "Nope"$/);
    const merges = editTokenizer((t) => (t.model.merges = 7));
    await refused(() => tokenizerOf(merges), "WF509", /tokenizer\.json: not a tokenizer this runtime can use \(.+\)$/);
    const decoder = editTokenizer((t) => delete t.decoder);
    await refused(() => tokenizerOf(decoder), "WF509", /tokenizer\.json: not a tokenizer this runtime can use \(Tokenizer must contain a "decoder" property\)$/);
    const gone = withTokenizer((d) => rmSync(join(d, "tokenizer.json")));
    await refused(() => tokenizerOf(gone), "WF501", new RegExp(`^${esc(gone)}: missing tokenizer\\.json \\(the manifest's tokenizer\\)$`));
  });
  it("refuses a malformed tokenizer_config.json, naming it", async () => {
    const text = withTokenizer((d) => writeFileSync(join(d, "tokenizer_config.json"), "[1,"));
    await refused(() => tokenizerOf(text), "WF502", new RegExp(`^${esc(join(text, "tokenizer_config.json"))}: not valid JSON \\(.+\\)$`));
    const number = withTokenizer((d) => writeFileSync(join(d, "tokenizer_config.json"), "5"));
    await refused(() => tokenizerOf(number), "WF509", new RegExp(`^${esc(join(number, "tokenizer_config.json"))}: should hold a JSON object, found 5$`));
    // without one the tokenizer loads with defaults
    expect(tokenizerOf(withTokenizer((d) => rmSync(join(d, "tokenizer_config.json"))))!.encode("The").length).toBeGreaterThan(0);
  });
});
