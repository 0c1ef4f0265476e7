// manifest.json is untrusted input: a versioned schema written as code, then the check that
// ties it to the module it names (the module's layout section). Each failure is one line
// naming the file and the field path; nothing reads a number from a manifest unchecked.
// No Node-only imports.

import { CONTROL } from "./control.js";
import { ArtifactError, reason, show } from "./errors.js";
import { LAYOUT_SECTION, MANIFEST_VERSION, MAX_SHARDS, MAX_SHARD_BYTES, type Manifest, type WeightShard, layoutOf } from "./manifest.js";

const PAGE = 65536;
/** wasm32's largest memory, in pages. */
const MAX_PAGES = 65536;
/** Rows, widths and ids reach the module as i32. */
const I32_MAX = 2 ** 31 - 1;
const SAFE = Number.MAX_SAFE_INTEGER;
/** Files the manifest names lie in the artifact folder itself: a plain name, no path. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** Entries and prepare functions are exports of the module. */
const EXPORT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A sha-256 as the compiler writes it. */
const SHA256_HEX = /^[0-9a-f]{64}$/;
const KINDS = ["causal-lm", "encoder", "seq2seq"] as const;
const INPUT_KINDS = ["tokens", "segments", "padding", "state", "image", "sequences"] as const;
/** The element type the runtime writes into each kind of input. */
const INPUT_DTYPE = { tokens: "i32", segments: "i32", padding: "f32", state: "f32", image: "f32", sequences: "i32" } as const;

type Obj = Record<string, unknown>;

/** Reads the fields of one manifest, throwing at the first that breaks the schema. */
class Fields {
  constructor(readonly file: string) {}

  fail(path: string, want: string, v: unknown): never {
    const found = v === undefined ? "is missing" : `found ${show(v)}`;
    throw new ArtifactError("WF503", `${this.file}: ${path} should be ${want}, ${found}`);
  }
  object(v: unknown, path: string): Obj {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(path, "an object", v);
    return v as Obj;
  }
  array(v: unknown, path: string, nonEmpty = false): unknown[] {
    if (!Array.isArray(v) || (nonEmpty && v.length === 0)) this.fail(path, nonEmpty ? "a non-empty array" : "an array", v);
    return v;
  }
  /** An integer in [min, max]; `want` words the range where a bare one would not say why. */
  int(v: unknown, path: string, min: number, max = SAFE, want?: string): number {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max) return v;
    if (want) return this.fail(path, want, v);
    if (typeof v === "number" && Number.isInteger(v) && v > max) return this.fail(path, `at most ${max}`, v);
    return this.fail(path, min === 0 ? "a non-negative integer" : min === 1 ? "a positive integer" : `an integer ≥ ${min}`, v);
  }
  /** A byte address the runtime views as i32 or f32 elements. */
  address(v: unknown, path: string): number {
    const at = this.int(v, path, 0);
    if (at % 4) this.fail(path, "a multiple of 4", v);
    return at;
  }
  string(v: unknown, path: string, pattern?: RegExp, want = "a string"): string {
    if (typeof v !== "string" || (pattern && !pattern.test(v))) this.fail(path, want, v);
    return v;
  }
  bool(v: unknown, path: string): boolean {
    if (typeof v !== "boolean") this.fail(path, "true or false", v);
    return v;
  }
  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
    if (!values.includes(v as T)) this.fail(path, `one of ${values.map((x) => JSON.stringify(x)).join(", ")}`, v);
    return v as T;
  }
  /** Names unique within one list. */
  unique(names: string[], path: (i: number) => string) {
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) this.fail(path(i), `a name not used before in the list`, n);
    });
  }
}

/**
 * Checks a parsed manifest.json against the schema of MANIFEST_VERSION and returns it typed.
 * `file` names it in messages (a path or URL). Besides types: integer ranges, every buffer
 * (weights, each input and output for `context` rows) within the memory, token inputs bounded
 * by a `limit`, special token ids within the vocabulary, weights shards that cover the weights
 * in order with at most MAX_SHARDS of at most MAX_SHARD_BYTES each.
 */
export function validateManifest(json: unknown, file = "manifest.json"): Manifest {
  const f = new Fields(file);
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ArtifactError("WF503", `${file}: should hold a JSON object, found ${show(json)}`);
  const m = json as Obj;
  if (m.format !== "wasmformer") throw new ArtifactError("WF504", `${file}: not a wasmformer manifest (format should be "wasmformer", found ${show(m.format)})`);
  if (m.version !== MANIFEST_VERSION)
    throw new ArtifactError("WF504", `${file}: manifest version ${m.version === undefined ? "(none)" : show(m.version)} is not supported (this runtime reads version ${MANIFEST_VERSION}): recompile the artifact with this wasmformer`);
  f.string(m.model, "model");
  f.oneOf(m.kind, "kind", KINDS);
  const context = f.int(m.context, "context", 1, I32_MAX);
  for (const [k, v] of Object.entries(f.object(m.config, "config")))
    if (v !== null && !["number", "string", "boolean"].includes(typeof v)) f.fail(`config.${k}`, "a number, string, boolean or null", v);

  const mem = f.object(m.memory, "memory");
  const pages = f.int(mem.pages, "memory.pages", 1, MAX_PAGES);
  const memBytes = pages * PAGE;
  /** The bytes [at, at + size) must lie in the memory. */
  const within = (path: string, what: string, at: number, size: number) => {
    if (at + size > memBytes)
      throw new ArtifactError("WF503", `${file}: ${path} (${what} at byte ${at}) ends at byte ${at + size}, past the ${memBytes} bytes of memory.pages ${pages}`);
  };
  const weightsAt = f.int(mem.weights_offset, "memory.weights_offset", 0);
  const weightsBytes = f.int(mem.weights_bytes, "memory.weights_bytes", 0);
  within("memory.weights_offset", `${weightsBytes} bytes of weights`, weightsAt, weightsBytes);
  f.int(mem.activation_bytes, "memory.activation_bytes", 0);
  if (mem.control !== undefined) within("memory.control", "the thread control block", f.address(mem.control, "memory.control"), CONTROL.bytes);
  if (mem.max_threads !== undefined) f.int(mem.max_threads, "memory.max_threads", 1, I32_MAX);
  if (mem.kv !== undefined)
    f.array(mem.kv, "memory.kv").forEach((x, i) => {
      const c = f.object(x, `memory.kv[${i}]`);
      // a sliding window's ring buffer: rows, window, keep and the address of its base, all or none
      let rows = context;
      if (c.rows !== undefined || c.window !== undefined || c.keep !== undefined || c.base !== undefined) {
        const window = f.int(c.window, `memory.kv[${i}].window`, 1, context);
        rows = f.int(c.rows, `memory.kv[${i}].rows`, window + 1, context);
        f.int(c.keep, `memory.kv[${i}].keep`, window - 1, rows - 1);
        within(`memory.kv[${i}].base`, "the ring buffer's base", f.address(c.base, `memory.kv[${i}].base`), 4);
      }
      // bytes a value: 4 (f32) unless a bf16 cache says 2
      const bytes = c.bytes === undefined ? 4 : f.int(c.bytes, `memory.kv[${i}].bytes`, 2, 4);
      if (bytes === 3) throw new ArtifactError("WF503", `${file}: memory.kv[${i}].bytes should be 2 or 4, found 3`);
      for (const part of ["k", "v"] as const) {
        const width = f.int(c[`${part}_width`], `memory.kv[${i}].${part}_width`, 1, I32_MAX);
        within(`memory.kv[${i}].${part}`, `a cache of ${rows} rows of ${width}`, f.address(c[part], `memory.kv[${i}].${part}`), rows * width * bytes);
      }
    });

  if (m.weights !== undefined) {
    // shards in order, each starting where the one before ends, together exactly the weights
    const shards = f.array(f.object(m.weights, "weights").shards, "weights.shards", true);
    if (shards.length > MAX_SHARDS) f.fail("weights.shards", `at most ${MAX_SHARDS} shards`, shards);
    let end = 0;
    const files = shards.map((x, i) => {
      const p = `weights.shards[${i}]`;
      const s = f.object(x, p);
      const name = f.string(s.file, `${p}.file`, FILE_NAME, "a file name (no folder)");
      f.int(s.offset, `${p}.offset`, end, end, `${end} (where ${i ? `weights.shards[${i - 1}]` : "the weights"} ${i ? "ends" : "start"})`);
      if (i > 0 && end === weightsBytes) throw new ArtifactError("WF503", `${file}: ${p} lies past the weights (the shards before it cover the ${weightsBytes} bytes of memory.weights_bytes)`);
      // an empty shard only as the one file of empty weights
      const most = Math.min(MAX_SHARD_BYTES, weightsBytes - end);
      const why = most === MAX_SHARD_BYTES ? "the largest shard" : "the weights' bytes from its offset on";
      end += f.int(s.bytes, `${p}.bytes`, weightsBytes === 0 ? 0 : 1, most, `${weightsBytes === 0 ? "0 (the weights are empty)" : `an integer from 1 to ${most} (${why})`}`);
      f.string(s.sha256, `${p}.sha256`, SHA256_HEX, "64 lower-case hex digits (a sha-256)");
      return name;
    });
    f.unique(files, (i) => `weights.shards[${i}].file`);
    if (end !== weightsBytes) throw new ArtifactError("WF503", `${file}: weights.shards end at byte ${end}, but memory.weights_bytes is ${weightsBytes}`);
  }

  f.array(m.features, "features").forEach((x, i) => f.string(x, `features[${i}]`));
  f.array(m.variants, "variants", true).forEach((x, i) => {
    const v = f.object(x, `variants[${i}]`);
    f.string(v.file, `variants[${i}].file`, /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.wasm$/, "a file name ending in .wasm (no folder)");
    f.array(v.features, `variants[${i}].features`).forEach((y, j) => f.string(y, `variants[${i}].features[${j}]`));
  });

  let vocab = 0;
  const imageChannels: number[] = [];
  const entries = f.array(m.entries, "entries", true).map((x, i) => {
    const at = `entries[${i}]`;
    const e = f.object(x, at);
    const name = f.string(e.name, `${at}.name`, EXPORT_NAME, "a function name");
    if (e.prepare !== null) f.string(e.prepare, `${at}.prepare`, EXPORT_NAME, "null or a function name");
    f.bool(e.cached, `${at}.cached`);
    const inputs = f.array(e.inputs, `${at}.inputs`).map((y, j) => {
      const p = `${at}.inputs[${j}]`;
      const inp = f.object(y, p);
      const name = f.string(inp.name, `${p}.name`, /./, "a non-empty string");
      const kind = f.oneOf(inp.kind, `${p}.kind`, INPUT_KINDS);
      const dtype = f.oneOf(inp.dtype, `${p}.dtype`, [INPUT_DTYPE[kind]]);
      const offset = f.address(inp.offset, `${p}.offset`);
      const width = f.int(inp.width, `${p}.width`, 1, I32_MAX);
      // each row's [first, end) of its sequence
      if (kind === "sequences" && width !== 2) f.fail(`${p}.width`, "2 (a row's first and end)", inp.width);
      if (kind === "image") {
        // one row a call: the whole image, [channels, height, width] of it
        const shape = f.array(inp.shape, `${p}.shape`).map((d, k) => f.int(d, `${p}.shape[${k}]`, 1, I32_MAX));
        if (shape.length !== 3 || shape[0] * shape[1] * shape[2] !== width) f.fail(`${p}.shape`, `[channels, height, width] of ${width} values (its width)`, inp.shape);
        imageChannels.push(shape[0]);
        within(p, `an image of ${width} f32`, offset, width * 4);
      } else {
        // Model.run writes up to `context` rows, setState up to `context` rows of a state
        within(p, `${context} rows of ${width} ${dtype}`, offset, context * width * 4);
      }
      // ids index embedding tables of `limit` rows: a token input without one cannot be checked
      if (kind === "tokens" || inp.limit !== undefined) {
        const limit = f.int(inp.limit, `${p}.limit`, 1, I32_MAX);
        if (kind === "tokens") vocab = Math.max(vocab, limit);
      }
      return name;
    });
    f.unique(inputs, (j) => `${at}.inputs[${j}].name`);
    const outputs = f.array(e.outputs, `${at}.outputs`, true).map((y, j) => {
      const p = `${at}.outputs[${j}]`;
      const out = f.object(y, p);
      const name = f.string(out.name, `${p}.name`, /./, "a non-empty string");
      const offset = f.address(out.offset, `${p}.offset`);
      const width = f.int(out.width, `${p}.width`, 1, I32_MAX);
      const rows = f.string(out.rows, `${p}.rows`, /^(S|E|[1-9][0-9]{0,9})$/, `"S", "E" or a row count`);
      const n = rows === "S" || rows === "E" ? context : Number(rows);
      if (n > context) f.fail(`${p}.rows`, `at most the context (${context})`, rows);
      within(p, `${n} rows of ${width} f32`, offset, n * width * 4);
      return name;
    });
    f.unique(outputs, (j) => `${at}.outputs[${j}].name`);
    return name;
  });
  f.unique(entries, (i) => `entries[${i}].name`);

  if (m.classifier !== undefined) {
    const c = f.object(m.classifier, "classifier");
    f.array(c.labels, "classifier.labels", true).forEach((l, j) => f.string(l, `classifier.labels[${j}]`));
    if (c.problem_type !== undefined) f.oneOf(c.problem_type, "classifier.problem_type", ["single_label_classification", "multi_label_classification", "regression"] as const);
  }
  if (m.image !== undefined) {
    const im = f.object(m.image, "image");
    for (const k of ["resize", "rescale", "normalize"]) f.bool(im[k], `image.${k}`);
    f.int(im.resample, "image.resample", 1, 5, "a PIL filter number from 1 to 5 (Lanczos, bilinear, bicubic, box, Hamming)");
    const finite = (v: unknown, path: string, positive = false) => {
      if (typeof v !== "number" || !Number.isFinite(v) || (positive && v <= 0)) f.fail(path, positive ? "a finite number > 0" : "a finite number", v);
    };
    finite(im.rescale_factor, "image.rescale_factor");
    for (const k of ["mean", "std"]) {
      const values = f.array(im[k], `image.${k}`, true);
      values.forEach((v, c) => finite(v, `image.${k}[${c}]`, k === "std"));
      // one value per channel of every image input
      for (const channels of imageChannels) if (values.length !== channels) f.fail(`image.${k}`, `${channels} values (the channels of the image input)`, values);
    }
  }
  if (m.chat !== undefined) {
    const c = f.object(m.chat, "chat");
    f.string(c.template, "chat.template", /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "a file name (no folder)");
    for (const k of ["bos_token", "eos_token"]) if (c[k] !== undefined) f.string(c[k], `chat.${k}`);
  }
  if (m.generation !== undefined) {
    const g = f.object(m.generation, "generation");
    if (g.do_sample !== undefined) f.bool(g.do_sample, "generation.do_sample");
    for (const k of ["temperature", "top_p", "min_p", "repetition_penalty"])
      if (g[k] !== undefined && (typeof g[k] !== "number" || !Number.isFinite(g[k] as number) || (g[k] as number) < 0)) f.fail(`generation.${k}`, "a finite number ≥ 0", g[k]);
    for (const k of ["top_k", "max_new_tokens"]) if (g[k] !== undefined) f.int(g[k], `generation.${k}`, 0, I32_MAX);
  }
  if (m.tokens !== undefined) {
    const t = f.object(m.tokens, "tokens");
    // ids the runtime feeds to the model or compares with generated ones lie in the vocabulary
    const id = (v: unknown, path: string) => (vocab ? f.int(v, path, 0, vocab - 1, `an id in the vocabulary [0, ${vocab})`) : f.int(v, path, 0));
    if (t.eos !== undefined) f.array(t.eos, "tokens.eos").forEach((v, i) => id(v, `tokens.eos[${i}]`));
    if (t.decoder_start !== undefined) id(t.decoder_start, "tokens.decoder_start");
    if (t.forced_bos !== undefined) id(t.forced_bos, "tokens.forced_bos");
    if (t.forced_eos !== undefined) f.array(t.forced_eos, "tokens.forced_eos").forEach((v, i) => id(v, `tokens.forced_eos[${i}]`));
    // unused by the runtime; configs write -1 for "none"
    for (const k of ["bos", "pad"]) if (t[k] !== undefined) f.int(t[k], `tokens.${k}`, -1);
  }
  if (m.tokenizer !== undefined) f.string(m.tokenizer, "tokenizer", FILE_NAME, "a file name (no folder)");
  return json as Manifest;
}

/** The weights' files of a validated manifest; one made in memory (without `weights`) is refused, naming `file`. */
export function weightShards(m: Manifest, file = "manifest.json"): WeightShard[] {
  if (!m.weights) throw new ArtifactError("WF503", `${file}: weights should be an object listing the weights' files (weights.shards), found nothing: recompile the artifact`);
  return m.weights.shards;
}

/** The first place where two JSON values differ (depth-bounded: a manifest is shallow). */
function firstDifference(a: unknown, b: unknown, path: string, depth = 0): { path: string; a: unknown; b: unknown } | undefined {
  const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
  if (depth > 8) return a === b ? undefined : { path, a, b };
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return { path, a, b };
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`, depth + 1);
      if (d) return d;
    }
    return undefined;
  }
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k, depth + 1);
      if (d) return d;
    }
    return undefined;
  }
  return a === b ? undefined : { path, a, b };
}

/**
 * Refuses a module that is not the one the (validated) manifest describes: every address,
 * width, limit, row count, entry and the context must equal those the module was compiled for
 * (its LAYOUT_SECTION), and every entry must be an exported function.
 */
export function checkModule(m: Manifest, module: WebAssembly.Module, files: { manifest: string; wasm: string }) {
  const sections = WebAssembly.Module.customSections(module, LAYOUT_SECTION);
  if (sections.length !== 1)
    throw new ArtifactError("WF506", `${files.wasm}: no '${LAYOUT_SECTION}' section (not a module wasmformer compiled for manifest version ${MANIFEST_VERSION}): recompile the artifact`);
  let layout: unknown;
  try {
    layout = JSON.parse(new TextDecoder().decode(sections[0]));
  } catch (e) {
    throw new ArtifactError("WF506", `${files.wasm}: its '${LAYOUT_SECTION}' section is not valid JSON (${reason(e)})`);
  }
  const d = firstDifference(layoutOf(m), layout, "");
  if (d) throw new ArtifactError("WF505", `${files.manifest}: ${d.path} is ${d.a === undefined ? "missing" : show(d.a)}, but ${files.wasm} was compiled for ${show(d.b)}`);
  const exported = new Set(WebAssembly.Module.exports(module).filter((x) => x.kind === "function").map((x) => x.name));
  for (const e of m.entries)
    for (const fn of [e.name, e.prepare])
      if (fn !== null && !exported.has(fn)) throw new ArtifactError("WF506", `${files.wasm}: exports no function '${fn}' (entry ${e.name})`);
}
