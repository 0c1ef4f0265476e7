// Malformed inputs for the command line, made deterministically from (seed, case index).
// Every mutator makes input that is invalid by construction (a required token deleted, a
// name that is declared nowhere, a tensor whose bytes no longer tile the data section, a
// manifest number the module disagrees with, ...), so the only right answer to each case
// is a clean error: exit 1, one message with a code, nothing written.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type ConfigField, type Expr, type ModelDecl, type Stmt, type WeightItem, configExprs } from "../../compiler/frontend/ast.js";
import type { Span } from "../../compiler/diagnostics.js";
import { lexer } from "../../compiler/frontend/lexer.js";
import { parseModel } from "../../compiler/frontend/parser.js";
import { Rng } from "./rng.js";

export const CATEGORIES = ["dsl", "config", "safetensors", "gguf", "artifact", "options"] as const;
export type Category = (typeof CATEGORIES)[number];

export interface Case {
  category: Category;
  mutator: string;
  /** Files written into the case's own folder before the run (paths relative to it). */
  files: Record<string, Uint8Array | string>;
  /** Command-line arguments; a leading `@/` stands for the case's folder. */
  argv: string[];
}

/** What the cases are made from: the repository's examples and fixtures, and compiled artifacts. */
export interface Materials {
  root: string;
  /** Artifact folder of tests/fixtures/gpt2 (no tokenizer). */
  artifact: string;
  /** Artifact folder of examples/tiny-gpt2 (with tokenizer.json). */
  tokArtifact: string;
}

interface Base {
  wf: string;
  text: string;
  ast: ModelDecl;
  fixture: string;
}

const enc = new TextEncoder();
const json = (v: unknown) => JSON.stringify(v, null, 2);

export class CaseMaker {
  private readonly bases: Base[];
  private readonly artifactFiles: Record<string, Uint8Array>;
  private readonly tokArtifactFiles: Record<string, Uint8Array>;

  constructor(private readonly m: Materials) {
    const pairs: [string, string][] = [["gpt2", "gpt2"], ["llama", "llama"], ["bert", "bert"], ["t5", "t5"], ["t5", "t5-v1_1"]];
    this.bases = pairs.map(([wf, fixture]) => {
      const path = join(m.root, "examples", `${wf}.wf`);
      const text = readFileSync(path, "utf8");
      return { wf, text, ast: parseModel(path, text), fixture: join(m.root, "tests", "fixtures", fixture) };
    });
    const read = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
    this.artifactFiles = read(m.artifact);
    this.tokArtifactFiles = read(m.tokArtifact);
  }

  make(seed: number, index: number): Case {
    const rng = new Rng(seed, index);
    const category = CATEGORIES[index % CATEGORIES.length];
    switch (category) {
      case "dsl": return this.dsl(rng);
      case "config": return this.config(rng);
      case "safetensors": return this.safetensors(rng);
      case "gguf": return this.gguf(rng);
      case "artifact": return this.artifact(rng);
      case "options": return this.options(rng);
    }
  }

  /** Compiles the case's own model.wf (DSL cases) or the base's example file. */
  private compileArgv(base: Base, weights: string, model = join(this.m.root, "examples", `${base.wf}.wf`)) {
    return ["compile", model, "--weights", weights, "--out", "@/out"];
  }

  // ---- DSL ---------------------------------------------------------------------------------

  private dsl(rng: Rng): Case {
    const base = rng.pick(this.bases);
    const { text } = base;
    const tokens = lexer.tokenize(text).tokens;
    const uses = identUses(base.ast);
    const offsetOf = (line: number, col: number) => lineStarts(text)[line - 1] + col - 1;
    const splice = (at: number, del: number, ins: string) => text.slice(0, at) + ins + text.slice(at + del);
    const mutators: [string, () => string][] = [
      ["delete-required-token", () => {
        // the '=' of a range's '..=' is optional (`0..1` excludes 1), so it is not required
        const t = rng.pick(tokens.filter((t, i) => [";", "{", "}", "(", ")", "=", ":", "[", "]"].includes(t.image) && !(t.image === "=" && tokens[i - 1]?.image === "..")));
        return splice(t.startOffset, t.image.length, " ");
      }],
      ["stray-character", () => splice(rng.pick(tokens).startOffset, 0, rng.pick(["$", "#", "`", "~", "'", "\u0000", "\u0007", "\u001b", "\u00e9"]))],
      ["undefined-name", () => {
        const u = rng.pick(uses);
        return splice(offsetOf(u.line, u.col), u.name.length, "zz_undeclared");
      }],
      ["unknown-function", () => {
        const calls = uses.filter((u) => u.call);
        const u = rng.pick(calls);
        return splice(offsetOf(u.line, u.col), u.name.length, "zz_no_such_function");
      }],
      ["bad-string", () => {
        const s = rng.pick(tokens.filter((t) => t.tokenType.name === "StringLit"));
        return splice(s.startOffset + 1, 0, rng.pick(["\\q", "\t", "\u0000", "\\x41", "\\u{110000}"]));
      }],
      ["deep-nesting", () => {
        const u = rng.pick(uses.filter((x) => !x.call));
        const n = rng.pick([1000, 5000, 100_000]);
        const at = offsetOf(u.line, u.col);
        return text.slice(0, at) + "(".repeat(n) + u.name + ")".repeat(n) + text.slice(at + u.name.length);
      }],
      ["huge-loop", () => {
        const to = rng.pick(loopBounds(base.ast));
        const at = offsetOf(to.line, to.col);
        const end = tokens.find((t) => t.startOffset >= at && (t.image === "{"))!.startOffset;
        return text.slice(0, at) + rng.pick(["100000000", "2147483648", "4294967296", "1e15"]) + " " + text.slice(end);
      }],
      ["self-recursion", () => {
        const b = rng.pick(base.ast.blocks);
        const open = tokens.find((t) => t.image === "{" && t.startOffset > offsetOf(b.span.line, b.span.col))!;
        return splice(open.startOffset + 1, 0, ` let zz_rec = ${b.name}(${b.params.join(", ")}); `);
      }],
      ["truncate", () => {
        const last = tokens.filter((t) => t.image === "}").pop()!;
        const cut = rng.pick(tokens.filter((t) => t.startOffset < last.startOffset));
        return text.slice(0, cut.startOffset);
      }],
      ["duplicate-parameter", () => {
        const params = paramLines(base.ast.weights.flatMap((w) => w.items));
        const line = rng.pick(params);
        const lines = text.split("\n");
        lines.splice(line, 0, lines[line - 1]);
        return lines.join("\n");
      }],
    ];
    const [mutator, mutate] = rng.pick(mutators);
    return { category: "dsl", mutator: `${mutator} (${base.wf}.wf on ${base.fixture.split("/").pop()})`, files: { "model.wf": mutate() }, argv: this.compileArgv(base, base.fixture, "@/model.wf") };
  }

  // ---- config.json ---------------------------------------------------------------------------

  private config(rng: Rng): Case {
    const base = rng.pick(this.bases);
    const cfg = JSON.parse(readFileSync(join(base.fixture, "config.json"), "utf8")) as Record<string, unknown>;
    const fields = base.ast.config.filter((f): f is ConfigField => f.kind === "field");
    const present = fields.filter((f) => f.keys.some((k) => cfg[k] !== undefined && cfg[k] !== null));
    const files: Case["files"] = { "weights/model.safetensors": new Uint8Array(readFileSync(join(base.fixture, "model.safetensors"))) };
    const wrongType: Record<string, unknown[]> = {
      int: [0, -1, -7, 2 ** 31, 2 ** 53 + 2, 1.5, "7", true, [], {}],
      float: ["abc", true, [], {}, "1e-5"],
      bool: ["yes", 1, 0, [], "true"],
      string: [1, true, [], {}],
    };
    const mutators: [string, () => string][] = [
      ["bad-value", () => {
        const f = rng.pick(present);
        const key = f.keys.find((k) => cfg[k] !== undefined && cfg[k] !== null)!;
        const v = rng.pick(wrongType[f.type]);
        cfg[key] = v;
        return `${key}=${JSON.stringify(v)}`;
      }],
      ["missing-key", () => {
        const required = present.filter((f) => !f.value);
        const f = rng.pick(required);
        for (const k of f.keys) delete cfg[k];
        return f.keys.join("/");
      }],
      ["token-id", () => {
        // ids generation relies on (bos and pad ids of -1 appear in real checkpoints and are not used)
        const key = rng.pick(["eos_token_id", "decoder_start_token_id"].filter((k) => typeof cfg[k] === "number").concat(["eos_token_id"]));
        const v = rng.pick([-1, 1_000_000, 1.5, "2", [1_000_000], [-3]]);
        cfg[key] = v;
        return `${key}=${JSON.stringify(v)}`;
      }],
    ];
    const syntax: [string, () => string][] = [
      ["truncated-json", () => json(cfg).slice(0, 1 + rng.int(json(cfg).length - 2))],
      ["not-an-object", () => rng.pick(["[]", "null", "42", '"config"', "[{}]"])],
      ["deep-json", () => "[".repeat(200_000) + "]".repeat(200_000)],
      ["empty", () => ""],
    ];
    if (rng.next() < 0.8) {
      const [mutator, mutate] = rng.pick(mutators);
      const what = mutate();
      files["weights/config.json"] = json(cfg);
      return { category: "config", mutator: `${mutator} ${what} (${base.wf})`, files, argv: this.compileArgv(base, "@/weights") };
    }
    const [mutator, mutate] = rng.pick(syntax);
    files["weights/config.json"] = mutate();
    return { category: "config", mutator: `${mutator} (${base.wf})`, files, argv: this.compileArgv(base, "@/weights") };
  }

  // ---- safetensors ---------------------------------------------------------------------------

  private safetensors(rng: Rng): Case {
    const base = rng.pick(this.bases);
    const file = new Uint8Array(readFileSync(join(base.fixture, "model.safetensors")));
    const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const data = file.subarray(8 + n);
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    const assemble = (h: unknown, body: Uint8Array = data, lengthField?: bigint) => {
      const hb = enc.encode(typeof h === "string" ? h : JSON.stringify(h));
      const out = new Uint8Array(8 + hb.length + body.length);
      new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(hb.length), true);
      out.set(hb, 8);
      out.set(body, 8 + hb.length);
      return out;
    };
    const t = header[rng.pick(names)];
    const mutators: [string, () => Uint8Array][] = [
      ["header-length", () => {
        const d = rng.pick([-16, -8, -3, -1, 1, 2, 8, 64]);
        const out = file.slice();
        new DataView(out.buffer).setBigUint64(0, BigInt(n + d), true);
        return out;
      }],
      ["header-length-huge", () => {
        const out = file.slice();
        new DataView(out.buffer).setBigUint64(0, rng.pick([2n ** 40n, 2n ** 63n, 2n ** 64n - 1n, BigInt(file.length)]), true);
        return out;
      }],
      ["truncated", () => file.slice(0, rng.pick([4, 8 + n - 1, 8 + n + 1, file.length - 1, file.length - 1 - rng.int(data.length - 1)]))],
      ["trailing-bytes", () => assemble(header, concat(data, new Uint8Array(rng.pick([1, 4, 8, 100]))))],
      ["dtype", () => ((t.dtype = rng.pick(t.dtype === "F32" ? ["F16", "BF16", "F64", "I8", "Q4", "f32", ""] : ["F32", "F64", "I8", "X"])), assemble(header))],
      ["shape", () => {
        const s = t.shape;
        const choice = rng.pick(["grow", "zero", "negative", "fraction", "huge", "extra-dim", "drop-dim", "string"]);
        if (choice === "grow") s[rng.int(s.length)] += 1;
        else if (choice === "zero") s[rng.int(s.length)] = 0;
        else if (choice === "negative") s[rng.int(s.length)] = -s[0];
        else if (choice === "fraction") s[rng.int(s.length)] += 0.5;
        else if (choice === "huge") s[rng.int(s.length)] = 2 ** 53;
        else if (choice === "extra-dim") s.push(2);
        else if (choice === "drop-dim") (s.length > 1 ? s.pop() : s.push(3));
        else (s as unknown[])[0] = "4";
        return assemble(header);
      }],
      ["offsets", () => {
        const o = t.data_offsets;
        const i = rng.int(2);
        o[i] = rng.pick([o[i] + 1, o[i] - 4, o[i] + 4, -1, 2 ** 53, o[i] + 0.5, data.length + 4]);
        return assemble(header);
      }],
      ["overlap", () => {
        const [a, b] = [header[rng.pick(names)], header[rng.pick(names)]];
        if (a === b) a.data_offsets = [a.data_offsets[0], a.data_offsets[1] + 4];
        else b.data_offsets = [...a.data_offsets];
        return assemble(header);
      }],
      ["entry-removed", () => (delete header[rng.pick(names)], assemble(header))],
      ["header-not-json", () => assemble(JSON.stringify(header).replace(/"/, rng.pick(["'", "", "\u0000"])))],
      ["header-not-object", () => assemble(rng.pick(["[]", "null", "1", '"x"', JSON.stringify([header])]))],
      ["empty-file", () => new Uint8Array(rng.int(8))],
    ];
    const [mutator, mutate] = rng.pick(mutators);
    const files = { "weights/model.safetensors": mutate(), "weights/config.json": readFileSync(join(base.fixture, "config.json"), "utf8") };
    return { category: "safetensors", mutator: `${mutator} (${base.fixture.split("/").pop()})`, files, argv: this.compileArgv(base, "@/weights") };
  }

  // ---- GGUF ----------------------------------------------------------------------------------

  private gguf(rng: Rng): Case {
    const file = new Uint8Array(readFileSync(join(this.m.root, "tests", "fixtures", "llama-q8_0", "model-q8_0.gguf")));
    const g = walkGguf(file);
    const out = file.slice();
    const view = new DataView(out.buffer);
    const u64 = (at: number, v: bigint) => view.setBigUint64(at, v, true);
    const u32 = (at: number, v: number) => view.setUint32(at, v, true);
    const configKeys = g.kvs.filter((k) => /\.(block_count|embedding_length|feed_forward_length|attention\.head_count|attention\.head_count_kv|context_length)$/.test(k.key) && k.type === 4);
    const t = rng.pick(g.tensors);
    const mutators: [string, () => Uint8Array][] = [
      ["magic", () => (out.set(enc.encode(rng.pick(["GGUG", "ggml", "\0\0\0\0"])), 0), out)],
      ["version", () => (u32(4, rng.pick([0, 1, 4, 99, 0xffffffff])), out)],
      ["tensor-count", () => (u64(8, rng.pick([2n ** 60n, 2n ** 64n - 1n, BigInt(g.tensors.length + 1), 100_000n])), out)],
      ["metadata-count", () => (u64(16, rng.pick([2n ** 60n, BigInt(g.kvs.length + 1), 1_000_000n])), out)],
      ["key-length", () => (u64(rng.pick(g.kvs).at, rng.pick([2n ** 62n, BigInt(file.length), 0n])), out)],
      ["value-type", () => (u32(rng.pick(g.kvs).typeAt, rng.pick([13, 99, 0xffffffff])), out)],
      ["config-value", () => {
        const k = rng.pick(configKeys);
        u32(k.valueAt, rng.pick([0, 2 ** 31, 0xffffffff]));
        return out;
      }],
      ["config-type", () => {
        const k = rng.pick(configKeys);
        u32(k.typeAt, rng.pick([6, 5])); // f32 or i32 bits reinterpreted: a float or a signed count
        if (view.getUint32(k.typeAt, true) === 5) view.setInt32(k.valueAt, -5, true);
        return out;
      }],
      ["n-dims", () => (u32(t.nDimsAt, rng.pick([0, 5, 99, 0xffffffff])), out)],
      ["dim", () => (u64(t.dimsAt + 8 * rng.int(t.nDims), rng.pick([0n, 2n ** 40n, 2n ** 63n, BigInt(Number(view.getBigUint64(t.dimsAt, true)) + 1)])), out)],
      ["tensor-type", () => (u32(t.typeAt, rng.pick([99, 4, 5, 0xffffffff, t.type === 0 ? 8 : 0])), out)],
      ["tensor-offset", () => {
        const o = view.getBigUint64(t.offsetAt, true);
        u64(t.offsetAt, rng.pick([o + 1n, o + 32n, o + 2n ** 40n, 2n ** 64n - 32n, o === 0n ? 32n : o - 32n]));
        return out;
      }],
      ["truncated", () => file.slice(0, rng.pick([3, 20, g.dataStart - 1, g.dataStart + 1, file.length - 1, file.length - 33]))],
      ["trailing-bytes", () => concat(file, new Uint8Array(rng.pick([64, 100, 4096])))],
    ];
    const [mutator, mutate] = rng.pick(mutators);
    return {
      category: "gguf",
      mutator,
      files: { "model.gguf": mutate() },
      argv: ["compile", join(this.m.root, "examples", "llama.wf"), "--weights", "@/model.gguf", "--out", "@/out"],
    };
  }

  // ---- artifacts -----------------------------------------------------------------------------

  private artifact(rng: Rng): Case {
    const files: Case["files"] = {};
    for (const [f, b] of Object.entries(this.artifactFiles)) files[`a/${f}`] = b;
    const manifest = JSON.parse(new TextDecoder().decode(this.artifactFiles["manifest.json"]));
    const run = ["run", "@/a", "--input-ids", "1,2,3", "--out", "@/o.npy"];
    // one thread: the module the wasm mutators edit (generate would take model.threads.wasm on several cores)
    const gen = ["generate", "@/a", "--input-ids", "1,2,3", "--max-new-tokens", "3", "--threads", "1"];
    const entry = manifest.entries[rng.int(manifest.entries.length)];
    const edits: [string, () => void][] = [
      ["version", () => (manifest.version = rng.pick([0, 2.5, 99, "1", null]))],
      ["format", () => (manifest.format = rng.pick(["onnx", "", 1]))],
      ["kind", () => (manifest.kind = rng.pick(["decoder", "", null, 3]))],
      ["context", () => (manifest.context = rng.pick([0, -1, 1.5, manifest.context + 1, 2 ** 31, "40"]))],
      ["pages", () => (manifest.memory.pages = rng.pick([0, 1, manifest.memory.pages - 1, 65537, 2 ** 40, -1]))],
      ["weights-offset", () => (manifest.memory.weights_offset += rng.pick([-4, 4, 64, 2 ** 32]))],
      ["weights-bytes", () => (manifest.memory.weights_bytes += rng.pick([-4, 4, 2 ** 40]))],
      ["variants", () => (manifest.variants = rng.pick([null, [], [{ file: "nope.wasm", features: ["simd128"] }], [{ file: "../weights.bin", features: [] }], "model.wasm"]))],
      ["entries", () => (manifest.entries = rng.pick([null, [], {}, [{}]]))],
      ["entry-name", () => (entry.name = rng.pick(["nope", "", 5]))],
      ["output-width", () => (entry.outputs[0].width = rng.pick([0, -1, entry.outputs[0].width - 1, entry.outputs[0].width + 1, 1.5, 2 ** 40]))],
      ["output-offset", () => (entry.outputs[0].offset += rng.pick([-4, 4, 2 ** 32]))],
      ["input-offset", () => (entry.inputs[0].offset += rng.pick([-4, 4, 2 ** 32]))],
      ["input-limit", () => (entry.inputs[0].limit = rng.pick([0, -1, entry.inputs[0].limit + 1, 1.5, null]))],
      ["eos", () => (manifest.tokens = { ...manifest.tokens, eos: rng.pick([[1_000_000], [-1], [1.5], "2"]) })],
      ["null-field", () => (manifest[rng.pick(["memory", "entries", "variants", "context"])] = null)],
    ];
    const fileEdits: [string, () => void][] = [
      ["manifest-json", () => (files["a/manifest.json"] = rng.pick(["", "{", "[]", "null", "[".repeat(100_000)]))],
      ["manifest-missing", () => delete files["a/manifest.json"]],
      ["wasm-truncated", () => (files["a/model.wasm"] = this.artifactFiles["model.wasm"].slice(0, rng.pick([0, 4, 9, 100, this.artifactFiles["model.wasm"].length - 1])))],
      ["wasm-magic", () => { const w = this.artifactFiles["model.wasm"].slice(); w[rng.int(4)] ^= 0xff; files["a/model.wasm"] = w; }],
      ["wasm-trailing", () => (files["a/model.wasm"] = concat(this.artifactFiles["model.wasm"], new Uint8Array([0xff, 0xff, 0xff])))],
      ["wasm-missing", () => delete files["a/model.wasm"]],
      ["weights-size", () => (files["a/weights.bin"] = rng.next() < 0.5 ? this.artifactFiles["weights.bin"].slice(0, -4) : concat(this.artifactFiles["weights.bin"], new Uint8Array(4)))],
      ["weights-missing", () => delete files["a/weights.bin"]],
    ];
    if (rng.next() < 0.15) return this.tokenizerCase(rng);
    if (rng.next() < 0.6) {
      const [mutator, edit] = rng.pick(edits);
      edit();
      files["a/manifest.json"] = json(manifest);
      return { category: "artifact", mutator: `manifest ${mutator}`, files, argv: rng.next() < 0.5 ? run : gen };
    }
    const [mutator, edit] = rng.pick(fileEdits);
    edit();
    return { category: "artifact", mutator, files, argv: rng.next() < 0.5 ? run : gen };
  }

  private tokenizerCase(rng: Rng): Case {
    const files: Case["files"] = {};
    for (const [f, b] of Object.entries(this.tokArtifactFiles)) files[`a/${f}`] = b;
    const tok = JSON.parse(new TextDecoder().decode(this.tokArtifactFiles["tokenizer.json"]));
    const edits: [string, () => string][] = [
      ["not-json", () => "{\"model\": "],
      ["empty-object", () => "{}"],
      ["no-model", () => json({ ...tok, model: null })],
      ["unknown-model-type", () => json({ ...tok, model: { ...tok.model, type: "Nope" } })],
      ["vocab-not-object", () => json({ ...tok, model: { ...tok.model, vocab: 5 } })],
      ["array", () => "[]"],
    ];
    const [mutator, edit] = rng.pick(edits);
    files["a/tokenizer.json"] = edit();
    return { category: "artifact", mutator: `tokenizer.json ${mutator}`, files, argv: ["generate", "@/a", "--prompt", "The quick", "--max-new-tokens", "2"] };
  }

  // ---- options -------------------------------------------------------------------------------

  private options(rng: Rng): Case {
    const files: Case["files"] = {};
    for (const [f, b] of Object.entries(this.artifactFiles)) files[`a/${f}`] = b;
    const gpt2 = this.bases[0];
    const compile = ["compile", join(this.m.root, "examples", "gpt2.wf"), "--weights", gpt2.fixture, "--out", "@/out"];
    const run = ["run", "@/a", "--input-ids", "1,2,3", "--out", "@/o.npy"];
    const gen = ["generate", "@/a", "--input-ids", "1,2,3", "--max-new-tokens", "2"];
    const evalIds = ["eval", "@/a", "--ids", "@/ids.txt"];
    files["ids.txt"] = "1 2 3 4 5 6 7 8";
    const set = (argv: string[], flag: string, value?: string) => {
      const a = [...argv];
      const i = a.indexOf(flag);
      if (i >= 0) value === undefined ? a.splice(i, 2) : (a[i + 1] = value);
      else if (value !== undefined) a.push(flag, value);
      return a;
    };
    const ids = (n: number) => Array.from({ length: n }, (_, i) => i % 90).join(",");
    const cases: [string, () => string[]][] = [
      ["context", () => set(compile, "--context", rng.pick(["abc", "0", "-1", "1.5", "", "1e9", "41", "NaN", "0x10"]))],
      ["quantize", () => set(compile, "--quantize", rng.pick(["int3", "", "INT8", "q8_0"]))],
      ["quantize-tensor", () => set(set(compile, "--quantize", "int8"), "--quantize-tensor", rng.pick(["x=int9", "=int8", "x", "lm_head.weight=", "a=b=c"]))],
      ["quantize-tensor-alone", () => set(compile, "--quantize-tensor", "wte.weight=int8")],
      ["disable-pass", () => set(compile, "--disable-pass", rng.pick(["nope", "", "fuse"]))],
      ["unknown-flag", () => [...rng.pick([compile, run, gen, evalIds]), rng.pick(["--nope", "--contxt", "-x", "--threads-count"]), "1"]],
      ["missing-value", () => [...rng.pick([run, gen]), rng.pick(["--threads", "--seed", "--temperature"])]],
      ["missing-required", () => rng.pick([set(compile, "--weights"), set(compile, "--out"), set(run, "--out"), set(run, "--input-ids"), ["compile"], ["run"]])],
      ["no-command", () => rng.pick([[], ["frobnicate"], ["--nope"]])],
      ["out-is-file", () => ((files["notes.txt"] = "my notes\n"), set(compile, "--out", "@/notes.txt"))],
      ["out-is-folder", () => ((files["mine/keep.txt"] = "keep me\n"), set(compile, "--out", "@/mine"))],
      ["run-out-is-folder", () => ((files["mine/keep.txt"] = "keep me\n"), set(run, "--out", "@/mine"))],
      ["model-missing", () => compile.map((x) => (x.endsWith("gpt2.wf") ? rng.pick(["@/nope.wf", "@/", "@/ids.txt"]) : x))],
      ["input-ids", () => set(run, "--input-ids", rng.pick(["", "1,,2", "-1", "1.5", "abc", "999999", "101", ids(41), "1e3", " ", "0x1"]))],
      ["threads", () => set(rng.pick([run, gen]), "--threads", rng.pick(["0", "-1", "abc", "1.5", "100000", ""]))],
      ["max-new-tokens", () => set(gen, "--max-new-tokens", rng.pick(["-1", "abc", "1.5", "", "NaN"]))],
      ["temperature", () => set(gen, "--temperature", rng.pick(["abc", "NaN", "-1", "Infinity", ""]))],
      ["seed", () => set(gen, "--seed", rng.pick(["1.5", "abc", "", "1e400"]))],
      ["top-k", () => set(gen, "--top-k", rng.pick(["-1", "1.5", "abc", ""]))],
      ["top-p", () => set(gen, "--top-p", rng.pick(["0", "1.5", "-0.1", "abc", "", "NaN"]))],
      ["min-p", () => set(gen, "--min-p", rng.pick(["2", "-0.1", "abc", ""]))],
      ["penalties", () => set(gen, rng.pick(["--repetition-penalty", "--presence-penalty", "--frequency-penalty"]), rng.pick(["-1", "abc", "", "Infinity"]))],
      ["stop-without-tokenizer", () => [...gen, "--stop", rng.pick(["x", ""])]],
      ["chat-unservable", () => ["chat", "@/a", ...rng.pick([[], ["--system", "x"], ["--top-p", "2"]])]],
      ["embed-unservable", () => ["embed", "@/a", ...rng.pick([["--input-ids", "1,2"], [], ["--pooling", "max"]])]],
      ["prompt-and-ids", () => [...gen, "--prompt", "hello"]],
      ["prompt-without-tokenizer", () => set(set(gen, "--input-ids"), "--prompt", "hello")],
      ["eval-window", () => [...evalIds, "--window", rng.pick(["0", "1", "abc", "100000", "-3", "2.5"])]],
      ["eval-stride", () => [...evalIds, "--stride", rng.pick(["0", "abc", "100000", "-3", "2.5"])]],
      ["eval-ids", () => ((files["ids.txt"] = rng.pick(["", "1", "1 x 2", "[1, 2", "1 -2", "1,2,5000"])), evalIds)],
    ];
    const [mutator, make] = rng.pick(cases);
    return { category: "options", mutator, files, argv: make() };
  }
}

// ---- helpers -------------------------------------------------------------------------------

function concat(a: Uint8Array, b: Uint8Array) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

/** Identifiers used as values or callees anywhere in the model (not declarations). */
function identUses(m: ModelDecl): { name: string; line: number; col: number; call: boolean }[] {
  const out: { name: string; line: number; col: number; call: boolean }[] = [];
  const expr = (e: Expr | undefined): void => {
    if (!e) return;
    switch (e.kind) {
      case "ident": out.push({ name: e.name, line: e.span.line, col: e.span.col, call: false }); return;
      case "call": out.push({ name: e.callee, line: e.span.line, col: e.span.col, call: true }); e.args.forEach(expr); e.named.forEach((n) => expr(n.value)); return;
      case "list": e.items.forEach(expr); return;
      case "index": expr(e.target); expr(e.index); return;
      case "unary": expr(e.operand); return;
      case "binary": expr(e.left); expr(e.right); return;
      default: return;
    }
  };
  const stmt = (s: Stmt): void => {
    switch (s.kind) {
      case "for": expr(s.from); expr(s.to); s.body.forEach(stmt); return;
      case "if": expr(s.cond); s.then.forEach(stmt); s.else.forEach(stmt); return;
      default: expr(s.value);
    }
  };
  const items = (ws: WeightItem[]): void => ws.forEach((w) => (w.kind === "for" ? (expr(w.from), expr(w.to), items(w.items)) : (w.shape.forEach(expr), expr(w.cond))));
  m.config.forEach((c) => configExprs(c).forEach(expr));
  m.weights.forEach((w) => items(w.items));
  m.blocks.forEach((b) => b.body.forEach(stmt));
  m.entries.forEach((e) => (e.inputs.forEach((i) => i.shape.forEach(expr)), e.body.forEach(stmt)));
  return out;
}

/** Where the upper bound of every `for` loop starts (weights and statements). */
function loopBounds(m: ModelDecl): Span[] {
  const out: Span[] = [];
  const stmts = (ss: Stmt[]): void => ss.forEach((s) => (s.kind === "for" ? (out.push(s.to.span), stmts(s.body)) : s.kind === "if" ? (stmts(s.then), stmts(s.else)) : undefined));
  const items = (ws: WeightItem[]): void => ws.forEach((w) => (w.kind === "for" ? (out.push(w.to.span), items(w.items)) : undefined));
  m.weights.forEach((w) => items(w.items));
  m.blocks.forEach((b) => stmts(b.body));
  m.entries.forEach((e) => stmts(e.body));
  return out;
}

function paramLines(items: WeightItem[]): number[] {
  return items.flatMap((w) => (w.kind === "for" ? paramLines(w.items) : [w.span.line]));
}

interface GgufLayout {
  kvs: { key: string; at: number; typeAt: number; type: number; valueAt: number }[];
  tensors: { nDimsAt: number; nDims: number; dimsAt: number; typeAt: number; type: number; offsetAt: number }[];
  dataStart: number;
}

/** Byte positions of a well-formed GGUF file's header fields (the fixture's), for mutation. */
function walkGguf(b: Uint8Array): GgufLayout {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 24;
  const str = () => {
    const n = Number(v.getBigUint64(p, true));
    const s = new TextDecoder().decode(b.subarray(p + 8, p + 8 + n));
    p += 8 + n;
    return s;
  };
  const size: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (type: number): void => {
    if (type === 8) return void str();
    if (type === 9) {
      const it = v.getUint32(p, true);
      const n = Number(v.getBigUint64(p + 4, true));
      p += 12;
      for (let i = 0; i < n; i++) skip(it);
      return;
    }
    p += size[type];
  };
  const kvs: GgufLayout["kvs"] = [];
  const nT = Number(v.getBigUint64(8, true));
  const nKv = Number(v.getBigUint64(16, true));
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const at = p;
    const key = str();
    const typeAt = p;
    const type = v.getUint32(p, true);
    p += 4;
    const valueAt = p;
    if (key === "general.alignment") alignment = v.getUint32(p, true);
    skip(type);
    kvs.push({ key, at, typeAt, type, valueAt });
  }
  const tensors: GgufLayout["tensors"] = [];
  for (let i = 0; i < nT; i++) {
    str();
    const nDimsAt = p;
    const nDims = v.getUint32(p, true);
    const dimsAt = p + 4;
    p += 4 + 8 * nDims;
    const typeAt = p;
    const type = v.getUint32(p, true);
    const offsetAt = p + 4;
    p += 12;
    tensors.push({ nDimsAt, nDims, dimsAt, typeAt, type, offsetAt });
  }
  return { kvs, tensors, dataStart: Math.ceil(p / alignment) * alignment };
}
