// Loads a compiled artifact into a WebAssembly instance and runs its entries. No Node-only
// imports: the same code runs in browsers, fed ArrayBuffers.

import { type Manifest, type ManifestEntry, layoutOf } from "./manifest.js";
import { CONTROL } from "./control.js";
import { ArtifactError, reason, show } from "./errors.js";
import type { ThreadHost } from "./threads.js";
import { checkModule, validateManifest } from "./validate.js";
import { loraRegionBytes } from "./lora.js";

export { ArtifactError } from "./errors.js";

/** The first 4 bytes of a saved state ("WFKV"), and its header's format number. */
/** A WebAssembly page, and the pages of a 32-bit memory (4 GiB). */
const PAGE_BYTES = 65536, MAX_PAGES = 65536;
const STATE_MAGIC = 0x564b4657;
const STATE_FORMAT = 1;

/**
 * weights.bin: its bytes, a stream of them (a browser's `(await fetch(url)).body`), or a
 * function that writes them into the view it is given (Node reads the file straight into
 * linear memory). Streams and functions avoid holding a second copy of the weights.
 */
export type WeightsInput = ArrayBuffer | Uint8Array | ReadableStream<Uint8Array> | ((into: Uint8Array) => void | Promise<void>);

export interface ArtifactFiles {
  /** manifest.json, parsed; `load` validates it (runtime/validate.ts) before reading a number of it. */
  manifest: Manifest;
  wasm: BufferSource;
  weights: WeightsInput;
  /** The folder or URL the files came from, named in error messages. */
  location?: string;
  /** The module's file name (default model.wasm), named in error messages. */
  wasmFile?: string;
}

export type Ids = ArrayLike<number>;

export interface RunInputs {
  /** Token ids of this call (the `tokens` input). */
  ids: Ids;
  /** Segment (token type) ids; zeros when absent. */
  segments?: Ids;
  /** 1 for real tokens, 0 for padding; ones when absent. */
  padding?: Ids;
}

export interface LoadOptions {
  /**
   * Threads running the matrix kernels, the calling one included (default 1). Above 1, `wasm`
   * must be the threaded variant (model.threads.wasm) and `host` starts the workers.
   */
  threads?: number;
  host?: ThreadHost;
  /** Functions the module imports besides its memory (the profiling module's `__prof`). */
  imports?: Record<string, (...args: number[]) => unknown>;
  /**
   * Run-time LoRA adapters to make room for (artifacts compiled with --lora-slots; default 8):
   * each loaded adapter's matrices take memory of their own (LoraSlots), up to this many at once.
   */
  adapters?: number;
}

async function fillWeights(w: WeightsInput, into: Uint8Array, file: string): Promise<void> {
  const size = (n: number) => {
    if (n !== into.byteLength) throw new ArtifactError("WF507", `${file} has ${n} bytes, the manifest expects ${into.byteLength}`);
  };
  try {
    await fill(w, into, size);
  } catch (e) {
    throw e instanceof ArtifactError ? e : new ArtifactError("WF507", `${file}: cannot be read (${reason(e)})`);
  }
}

async function fill(w: WeightsInput, into: Uint8Array, size: (n: number) => void): Promise<void> {
  if (typeof w === "function") return w(into);
  if (w instanceof ArrayBuffer || w instanceof Uint8Array) {
    size(w.byteLength);
    into.set(w instanceof Uint8Array ? w : new Uint8Array(w));
    return;
  }
  const reader = w.getReader();
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.byteLength > into.byteLength) size(at + value.byteLength);
    into.set(value, at);
    at += value.byteLength;
  }
  size(at);
}

export class Model {
  /** Rows already in the KV cache. */
  past = 0;
  /**
   * The ids whose keys and values the KV cache holds, in order (past of them): generate
   * compares a new prompt with them and prefills only what differs.
   */
  readonly tokens: number[] = [];
  /** Rows of the current state inputs (e.g. the encoder output the decoder attends to). */
  private stateRows = 0;
  private readonly exports: Record<string, (rows: number, past: number, erows: number) => void>;

  /** Worker threads serving kernel shares (threads − 1 of them). */
  private workers: { terminate(): void }[] = [];

  private constructor(readonly manifest: Manifest, readonly memory: WebAssembly.Memory, instance: WebAssembly.Instance, readonly wasmFile: string) {
    this.exports = instance.exports as never;
    this.ringCaches = (manifest.memory.kv ?? []).filter((c) => c.base !== undefined);
    this.maxCallRows = Math.min(manifest.context, ...this.ringCaches.map((c) => c.rows! - c.keep!));
  }

  /**
   * Validates the manifest, compiles the module and checks it was compiled for this manifest,
   * allocates the memory and reads the weights into it. Every failure is an ArtifactError
   * naming the file at fault.
   */
  static async load(files: ArtifactFiles, opts: LoadOptions = {}): Promise<Model> {
    const path = (file: string) => (files.location ? `${files.location.replace(/[/\\]+$/, "")}/${file}` : file);
    const names = { manifest: path("manifest.json"), wasm: path(files.wasmFile ?? "model.wasm"), weights: path("weights.bin") };
    const m = validateManifest(files.manifest, names.manifest);
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new ArtifactError("WF510", `threads must be a positive integer, got ${show(threads)}`);
    if (threads > (m.memory.max_threads ?? Infinity)) throw new ArtifactError("WF511", `${threads} threads: the artifact's kernels have scratch for at most ${m.memory.max_threads}`);
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(files.wasm);
    } catch (e) {
      throw new ArtifactError("WF506", `${names.wasm}: not a WebAssembly module this host can compile (${reason(e).replace(/^WebAssembly\.compile\(\): /, "")})`);
    }
    checkModule(m, module, names);
    const shared = WebAssembly.Module.exports(module).some((e) => e.name === "__worker");
    if (threads > 1 && !shared) throw new ArtifactError("WF511", `${threads} threads need the threaded module (model.threads.wasm); this one is single-threaded`);
    if (threads > 1 && !opts.host) throw new ArtifactError("WF510", "threads > 1 need a thread host (loadArtifact in Node, browserThreads in a page)");
    const adapters = opts.adapters ?? 8;
    if (!Number.isInteger(adapters) || adapters < 0) throw new ArtifactError("WF510", `adapters must be an integer ≥ 0, got ${show(adapters)}`);
    const maximum = m.lora ? Math.min(MAX_PAGES, m.memory.pages + adapters * Math.ceil(loraRegionBytes(m.lora) / PAGE_BYTES)) : m.memory.pages;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: m.memory.pages, maximum, shared });
    } catch (e) {
      throw new ArtifactError("WF508", `${names.manifest}: cannot allocate the ${m.memory.pages} pages (${Math.ceil(m.memory.pages / 16)} MiB) of WebAssembly memory it asks for (${reason(e)})`);
    }
    const into = new Uint8Array(memory.buffer, m.memory.weights_offset, m.memory.weights_bytes);
    const instantiate = WebAssembly.instantiate(module, { env: { ...opts.imports, memory } }).catch((e) => {
      throw new ArtifactError("WF506", `${names.wasm}: cannot be instantiated (${reason(e)})`);
    });
    const [instance] = await Promise.all([instantiate, fillWeights(files.weights, into, names.weights)]);
    const model = new Model(m, memory, instance, files.wasmFile ?? "model.wasm");
    if (threads > 1) await model.startThreads(module, threads, opts.host!);
    for (const e of m.entries) if (e.prepare && !e.inputs.some((i) => i.kind === "state")) model.exports[e.prepare](0, 0, 0);
    return model;
  }

  private async startThreads(module: WebAssembly.Module, threads: number, host: ThreadHost) {
    const at = this.manifest.memory.control;
    if (at === undefined) throw new ArtifactError("WF503", "manifest.json: memory.control is missing (the threaded module needs its thread control block): recompile the artifact");
    // workers wait for the generation after this one: nothing bumps it until `threads` is set below
    const generation = Atomics.load(new Int32Array(this.memory.buffer, at + CONTROL.generation, 1), 0);
    try {
      for (let id = 1; id < threads; id++) this.workers.push(await host.start(module, this.memory, id, generation));
    } catch (e) {
      this.dispose();
      throw new ArtifactError("WF512", `could not start ${threads - 1} worker threads: ${reason(e)}`);
    }
    // from now on the kernels publish jobs to the workers
    new Int32Array(this.memory.buffer, at + CONTROL.threads, 1)[0] = threads;
  }

  /** Threads running the kernels, the calling one included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Stops the worker threads (a single-threaded model has nothing to release). */
  dispose() {
    const at = this.manifest.memory.control;
    if (this.workers.length && at !== undefined) {
      const c = new Int32Array(this.memory.buffer, at, CONTROL.bytes / 4);
      c[CONTROL.threads / 4] = 1;
      Atomics.store(c, CONTROL.quit / 4, 1);
      Atomics.add(c, CONTROL.generation / 4, 1);
      Atomics.notify(c, CONTROL.generation / 4);
    }
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }

  entry(name: string): ManifestEntry {
    const e = this.manifest.entries.find((x) => x.name === name);
    if (!e) throw new ArtifactError("WF511", `artifact has no entry ${show(name)} (it has ${this.manifest.entries.map((x) => x.name).join(", ")})`);
    return e;
  }

  /** Forgets the KV cache (and any state), starting a new sequence. */
  reset() {
    this.past = 0;
    this.tokens.length = 0;
    for (const c of this.ringCaches) this.setRingBase(c, 0);
  }

  /** The sliding windows' ring-buffer caches (manifest memory.kv entries with a window). */
  private readonly ringCaches: NonNullable<Manifest["memory"]["kv"]>;
  private ringBase(c: { base?: number }): number {
    return c.base === undefined ? 0 : new Int32Array(this.memory.buffer, c.base, 1)[0];
  }
  private setRingBase(c: { base?: number }, base: number) {
    new Int32Array(this.memory.buffer, c.base!, 1)[0] = base;
  }

  /** Most rows one call of a cached entry takes: a ring buffer of R rows keeping K takes R − K (run splits longer calls). */
  readonly maxCallRows: number;

  /**
   * Whether rewind(rows) can keep `rows` rows: a sliding window's ring buffer has dropped the
   * positions before its base, and the next query needs the window before it.
   */
  canRewind(rows: number): boolean {
    return Number.isInteger(rows) && rows >= 0 && rows <= this.past && (rows === 0 || this.ringCaches.every((c) => rows - c.window! + 1 >= this.ringBase(c)));
  }

  /** Keeps the first `rows` rows of the KV cache and forgets the rest (nothing is copied); see canRewind. */
  rewind(rows: number) {
    if (!Number.isInteger(rows) || rows < 0 || rows > this.past) throw new ArtifactError("WF510", `rewind: rows should be an integer in [0, ${this.past}] (the rows cached), got ${show(rows)}`);
    if (!this.canRewind(rows)) throw new ArtifactError("WF510", `rewind: the sliding window's cache no longer holds the keys before row ${rows} (canRewind tells; reset and feed the ids again)`);
    if (rows === 0) return this.reset();
    this.past = rows;
    this.tokens.length = rows;
  }

  /**
   * The KV state as bytes: the cached rows of every cache and their ids, tagged with the
   * artifact's layout, so that restoreState on a model of the same artifact continues exactly
   * where this one stands (e.g. after a long system prompt).
   */
  saveState(): Uint8Array {
    const kv = this.kvLayout("saveState");
    // each cache's rows from its base (0 but for a sliding window's ring buffer)
    const bases = kv.map((c) => this.ringBase(c));
    const bytesOf = (past: number, bases: number[]) => kv.reduce((a, c, i) => a + (past - bases[i]) * (c.k_width + c.v_width) * (c.bytes ?? 4), 0);
    const header = new TextEncoder().encode(JSON.stringify({ format: STATE_FORMAT, layout: this.fingerprint(), past: this.past, tokens: this.tokens, ...(this.ringCaches.length ? { bases } : {}) }));
    const out = new Uint8Array(8 + header.byteLength + bytesOf(this.past, bases));
    new DataView(out.buffer).setUint32(0, STATE_MAGIC, true);
    new DataView(out.buffer).setUint32(4, header.byteLength, true);
    out.set(header, 8);
    let at = 8 + header.byteLength;
    kv.forEach((c, i) => {
      for (const [addr, width] of [[c.k, c.k_width], [c.v, c.v_width]]) {
        const n = (this.past - bases[i]) * width * (c.bytes ?? 4);
        out.set(new Uint8Array(this.memory.buffer, addr, n), at);
        at += n;
      }
    });
    return out;
  }

  /** Restores bytes from saveState of a model of the same artifact; anything else is WF510. */
  restoreState(bytes: Uint8Array) {
    const kv = this.kvLayout("restoreState");
    const bad = (why: string) => new ArtifactError("WF510", `restoreState: ${why}`);
    if (!(bytes instanceof Uint8Array) || bytes.byteLength < 8) throw bad(`expected the bytes saveState returned, got ${show(bytes)}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== STATE_MAGIC) throw bad("these bytes are not a saved state");
    const headerBytes = view.getUint32(4, true);
    if (8 + headerBytes > bytes.byteLength) throw bad("the saved state is truncated");
    let header: { format?: unknown; layout?: unknown; past?: unknown; tokens?: unknown; bases?: unknown };
    try {
      header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerBytes)));
    } catch {
      throw bad("the saved state's header is not valid");
    }
    if (header.format !== STATE_FORMAT) throw bad(`a saved state of format ${show(header.format)}, this runtime reads ${STATE_FORMAT}`);
    if (header.layout !== this.fingerprint()) throw bad("the state was saved by another artifact (its layout differs)");
    const past = header.past, tokens = header.tokens;
    if (!Number.isInteger(past) || (past as number) < 0 || (past as number) > this.manifest.context) throw bad(`past = ${show(past)} is outside [0, ${this.manifest.context}]`);
    if (!Array.isArray(tokens) || tokens.length !== past || !tokens.every((t) => Number.isInteger(t) && t >= 0)) throw bad("its token list does not match its rows");
    const bases = header.bases ?? kv.map(() => 0);
    // a ring buffer's base: at most past, with at most its rows from there
    const baseOk = (b: unknown, i: number) => Number.isInteger(b) && (b as number) >= 0 && (b as number) <= (past as number) && (past as number) - (b as number) <= (kv[i].rows ?? this.manifest.context) && (kv[i].base !== undefined || b === 0);
    if (!Array.isArray(bases) || bases.length !== kv.length || !bases.every(baseOk)) throw bad("its ring-buffer bases do not fit the caches");
    const size = kv.reduce((a, c, i) => a + ((past as number) - bases[i]) * (c.k_width + c.v_width) * (c.bytes ?? 4), 0);
    if (bytes.byteLength !== 8 + headerBytes + size) throw bad(`${bytes.byteLength} bytes for ${past} rows (${8 + headerBytes + size} expected)`);
    let at = 8 + headerBytes;
    kv.forEach((c, i) => {
      for (const [addr, width] of [[c.k, c.k_width], [c.v, c.v_width]]) {
        const n = ((past as number) - bases[i]) * width * (c.bytes ?? 4);
        new Uint8Array(this.memory.buffer, addr, n).set(bytes.subarray(at, at + n));
        at += n;
      }
      if (c.base !== undefined) this.setRingBase(c, bases[i]);
    });
    this.past = past as number;
    this.tokens.length = 0;
    this.tokens.push(...(tokens as number[]));
  }

  private kvLayout(call: string) {
    if (this.manifest.kind !== "causal-lm") throw new ArtifactError("WF511", `${call}: only a causal LM's state can be saved (this artifact is ${this.manifest.kind})`);
    const kv = this.manifest.memory.kv;
    if (!kv) throw new ArtifactError("WF511", `${call}: the manifest does not locate the KV caches (memory.kv): recompile the artifact`);
    return kv;
  }

  /** What identifies the artifact's compiled layout in a saved state. */
  private fingerprint(): string {
    const text = JSON.stringify(layoutOf(this.manifest));
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    return `${this.manifest.model}:${(h >>> 0).toString(16)}`;
  }

  /**
   * Runs an entry on the rows of `inputs.ids`, continuing the KV cache of a cached entry.
   * Returns each output's rows for this call, copied out of linear memory: into a fresh array,
   * or into the start of `into[output]` where the caller passes one (at least rows × width
   * values; the result is then a view of exactly that many). Reusing arrays across calls spares
   * a fresh allocation of every output each call — for [128, 50257] logits, 26 MB whose first
   * touch alone took ~80 ms on the VM the bench ran on, against ~1.5 ms to copy.
   *
   * The inputs are checked before anything is written or run, and a bad one throws an
   * ArtifactError with code WF510 (WF511: no such entry): ids and segments must be integers in
   * [0, limit) of their input (the rows of the table they index), padding 0 or 1, each as many
   * as the ids, 1 to context − past of them; an entry with a state input needs setState first.
   */
  run(name: string, inputs: RunInputs, into: Record<string, Float32Array> = {}): Record<string, Float32Array> {
    const e = this.entry(name);
    const bad = (msg: string) => new ArtifactError("WF510", `${name}: ${msg}`);
    const past = e.cached ? this.past : 0;
    const { rows, fed } = this.checkInputs(e, inputs, past, "inputs");
    for (const key of Object.keys(into))
      if (!e.outputs.some((o) => o.name === key)) throw bad(`into.${key} names no output (outputs: ${e.outputs.map((o) => o.name).join(", ")})`);
    const sizes = e.outputs.map((o) => this.outputRows(o, rows) * o.width);
    e.outputs.forEach((o, i) => {
      const dst = into[o.name];
      if (dst && !(dst instanceof Float32Array && dst.length >= sizes[i]))
        throw bad(`into.${o.name} must be a Float32Array of at least ${sizes[i]} values, got ${dst instanceof Float32Array ? dst.length : show(dst)}`);
    });
    // (every input is valid: a split call fails in none of its parts)
    if (e.cached && rows > this.maxCallRows) return this.runSplit(e, inputs, this.maxCallRows, into);
    this.writeInputs(fed, 0, rows);
    this.exports[e.name](rows, past, this.stateRows);
    if (e.cached) {
      this.past += rows;
      for (let i = 0; i < rows; i++) this.tokens.push(inputs.ids[i]);
    }
    const out: Record<string, Float32Array> = {};
    e.outputs.forEach((o, i) => {
      // filled by set(): V8's slice() of a view on wasm memory copies ~8× slower (0.6-0.8 ms
      // for one row of a 32000-word vocabulary, against 0.09 ms)
      const copy = into[o.name]?.subarray(0, sizes[i]) ?? new Float32Array(sizes[i]);
      copy.set(new Float32Array(this.memory.buffer, o.offset, sizes[i]));
      out[o.name] = copy;
    });
    return out;
  }

  /**
   * Runs an uncached entry on several sequences (an encoder's sentences), each giving what `run`
   * gives for it alone: its outputs, one record a sequence. Where the artifact has the entry's
   * packed form (`<name>_packed`, compiled by the pack-sequences pass) the sequences run side by
   * side, as few calls as keep each within `maxRows` rows (default and most: the context), so the
   * matrix kernels multiply the rows of many short sentences at once; else one by one. Every
   * sequence's inputs are checked (as `run` does, WF510) before anything runs.
   */
  runSequences(name: string, list: readonly RunInputs[], opts: { maxRows?: number } = {}): Record<string, Float32Array>[] {
    const e = this.entry(name);
    const bad = (msg: string) => new ArtifactError("WF510", `${name}: ${msg}`);
    if (e.cached) throw new ArtifactError("WF511", `${name}: runSequences runs an entry without a KV cache; this one continues its cache (use run)`);
    if (!Array.isArray(list)) throw bad(`sequences should be a list of { ids, segments?, padding? }, got ${show(list)}`);
    const { maxRows = this.manifest.context } = opts;
    if (!Number.isSafeInteger(maxRows) || maxRows < 1) throw bad(`maxRows should be a positive integer, got ${show(maxRows)}`);
    const p = this.manifest.entries.find((x) => x.name === `${name}_packed` && x.inputs.some((i) => i.kind === "sequences"));
    const checked = list.map((inputs, n) => this.checkInputs(p ?? e, inputs, 0, `sequences[${n}]`, name));
    if (!p) return list.map((inputs) => this.run(name, inputs));
    const out: Record<string, Float32Array>[] = [];
    for (let first = 0; first < checked.length; ) {
      // the next call: sequences while their rows fit
      let last = first, rows = checked[first].rows;
      while (last + 1 < checked.length && rows + checked[last + 1].rows <= Math.min(maxRows, this.manifest.context)) rows += checked[++last].rows;
      for (let n = first, at = 0; n <= last; n++) {
        this.writeInputs(checked[n].fed, at, checked[n].rows);
        at += checked[n].rows;
      }
      this.exports[p.name](rows, 0, this.stateRows);
      for (let n = first, at = 0; n <= last; n++) {
        const k = checked[n].rows;
        const record: Record<string, Float32Array> = {};
        // each output's rows of this sequence; an output of fixed rows (a head's first row) the first of them
        for (const o of p.outputs) {
          const want = this.outputRows(e.outputs.find((x) => x.name === o.name)!, k);
          record[o.name] = new Float32Array(this.memory.buffer, o.offset + at * o.width * 4, want * o.width).slice();
        }
        out.push(record);
        at += k;
      }
      first = last + 1;
    }
    return out;
  }

  /** Rows of an output in a call of `rows` rows. */
  private outputRows(o: ManifestEntry["outputs"][number], rows: number): number {
    return o.rows === "E" ? this.stateRows : /^\d+$/.test(o.rows) ? Number(o.rows) : rows;
  }

  /**
   * One call's inputs checked against entry `e` (see run): its rows, and the source of each input
   * the caller feeds (absent: the default, zeros or ones).
   */
  private checkInputs(e: ManifestEntry, inputs: RunInputs, past: number, what: string, label = e.name) {
    // (runSequences names the sequence)
    const bad = (msg: string) => new ArtifactError("WF510", `${label}: ${what === "inputs" ? "" : `${what}: `}${msg}`);
    if (typeof inputs !== "object" || inputs === null) throw bad(`inputs should be an object { ids, segments?, padding? }, got ${show(inputs)}`);
    const count = (v: unknown, what: string) => {
      const n = (v as { length?: unknown } | null)?.length;
      if (typeof v !== "object" || typeof n !== "number" || !Number.isSafeInteger(n)) throw bad(`${what} should be an array of numbers, got ${show(v)}`);
      return n;
    };
    if (e.inputs.some((i) => i.kind === "image")) throw new ArtifactError("WF511", `${label}: takes an image: run it with runImage`);
    const rows = count(inputs.ids, "ids");
    if (rows < 1) throw bad("needs at least one token");
    if (past + rows > this.manifest.context)
      throw bad(`${past + rows} tokens exceed the compiled context of ${this.manifest.context} (compile with a larger --context)`);
    if (e.inputs.some((i) => i.kind === "state") && this.stateRows === 0) throw bad(`set its state input first (setState("${e.inputs.find((i) => i.kind === "state")!.name}", …))`);
    const fed = e.inputs.filter((i) => i.kind !== "state").map((inp) => {
      const src = inp.kind === "tokens" ? inputs.ids : inp.kind === "segments" ? inputs.segments : inp.kind === "padding" ? inputs.padding : undefined;
      if (src !== undefined && count(src, inp.kind) !== rows) throw bad(`${inp.name} has ${src.length} values for ${rows} tokens`);
      for (let i = 0; src && i < rows; i++) {
        const v = src[i];
        if (inp.kind === "padding" ? v !== 0 && v !== 1 : !Number.isInteger(v) || v < 0 || v >= (inp.limit ?? 2 ** 31))
          throw bad(`${inp.name}[${i}] = ${show(v)} is outside ${inp.kind === "padding" ? "{0, 1}" : `[0, ${inp.limit ?? 2 ** 31})`}`);
      }
      return { inp, src };
    });
    return { rows, fed };
  }

  /**
   * Writes one sequence's checked inputs (n rows) at row `at` of their buffers: absent segments
   * are zeros, absent padding ones (every token real), and the sequences input makes the n rows
   * one sequence.
   */
  private writeInputs(fed: { inp: ManifestEntry["inputs"][number]; src?: Ids }[], at: number, n: number) {
    for (const { inp, src } of fed) {
      if (inp.kind === "sequences") {
        const b = new Int32Array(this.memory.buffer, inp.offset + at * 8, n * 2);
        for (let r = 0; r < n; r++) (b[2 * r] = at), (b[2 * r + 1] = at + n);
      } else if (inp.dtype === "i32") new Int32Array(this.memory.buffer, inp.offset + at * 4, n).set(src ?? new Int32Array(n));
      else new Float32Array(this.memory.buffer, inp.offset + at * 4, n).set(src ?? new Float32Array(n).fill(1));
    }
  }

  /**
   * Runs an entry whose one input is an image: `pixels` are its values [channels, height, width]
   * (the manifest input's shape), channel by channel, as an image processor gives them
   * (runtime/image.ts makes them from an image's bytes). Returns each output, copied out of linear
   * memory. Pixels of another count or not finite are an ArtifactError (WF510), an entry that
   * takes no image, or more than one, WF511.
   */
  runImage(name: string, pixels: ArrayLike<number>): Record<string, Float32Array> {
    const e = this.entry(name);
    const inp = e.inputs.find((i) => i.kind === "image");
    if (!inp || e.inputs.length > 1) throw new ArtifactError("WF511", `${name}: runImage runs an entry whose one input is an image; its inputs are ${e.inputs.map((i) => `${i.name} (${i.kind})`).join(", ") || "none"}`);
    const n = (pixels as { length?: unknown } | null)?.length;
    if (typeof pixels !== "object" || n !== inp.width)
      throw new ArtifactError("WF510", `${name}: pixels should be ${inp.width} numbers, [${inp.shape?.join(", ")}], got ${typeof n === "number" ? `${n} values` : show(pixels)}`);
    for (let i = 0; i < inp.width; i++)
      if (!Number.isFinite(pixels[i])) throw new ArtifactError("WF510", `${name}: pixels[${i}] = ${show(pixels[i])} is not a finite number`);
    new Float32Array(this.memory.buffer, inp.offset, inp.width).set(pixels);
    this.exports[e.name](1, 0, this.stateRows);
    const out: Record<string, Float32Array> = {};
    for (const o of e.outputs) {
      // every row count is fixed: the image's tokens, or one
      const size = Number(o.rows) * o.width;
      out[o.name] = new Float32Array(size);
      out[o.name].set(new Float32Array(this.memory.buffer, o.offset, size));
    }
    return out;
  }

  /**
   * A call of more rows than a sliding window's ring buffer takes at once, as calls of at most
   * `limit` rows: outputs of every row concatenated, outputs of fixed rows from the last call.
   */
  private runSplit(e: ManifestEntry, inputs: RunInputs, limit: number, into: Record<string, Float32Array>): Record<string, Float32Array> {
    const rows = inputs.ids.length;
    const parts: Record<string, Float32Array>[] = [];
    for (let at = 0; at < rows; at += limit) {
      const cut = <T extends ArrayLike<number> | undefined>(v: T) => (v === undefined ? undefined : Array.prototype.slice.call(v, at, at + limit)) as T;
      parts.push(this.run(e.name, { ids: cut(inputs.ids), segments: cut(inputs.segments), padding: cut(inputs.padding) }));
    }
    const out: Record<string, Float32Array> = {};
    for (const o of e.outputs) {
      const perRow = !/^\d+$/.test(o.rows) && o.rows !== "E";
      const values = perRow ? parts.map((p) => p[o.name]) : [parts[parts.length - 1][o.name]];
      const total = values.reduce((a, v) => a + v.length, 0);
      const dst = into[o.name]?.subarray(0, total) ?? new Float32Array(total);
      let at = 0;
      for (const v of values) dst.set(v, (at += v.length) - v.length);
      out[o.name] = dst;
    }
    return out;
  }

  /**
   * Feeds `value` (rows × width) to every entry's state input named `name`, then runs those
   * entries' prepare functions (e.g. the decoder's cross-attention keys and values). A value
   * that is not 1 to context whole rows is an ArtifactError (WF510), a name no entry takes WF511.
   */
  setState(name: string, value: Float32Array) {
    const takers = this.manifest.entries.filter((e) => e.inputs.some((i) => i.kind === "state" && i.name === name));
    if (!takers.length) throw new ArtifactError("WF511", `no entry takes a state input ${show(name)}`);
    if (!(value instanceof Float32Array)) throw new ArtifactError("WF510", `state ${name}: should be a Float32Array, got ${show(value)}`);
    for (const e of takers) {
      const inp = e.inputs.find((i) => i.kind === "state" && i.name === name)!;
      const rows = value.length / inp.width;
      if (!Number.isInteger(rows) || rows < 1 || rows > this.manifest.context)
        throw new ArtifactError("WF510", `state ${name}: ${value.length} values is not 1 to ${this.manifest.context} (the context) whole rows of ${inp.width}`);
    }
    for (const e of takers) {
      const inp = e.inputs.find((i) => i.kind === "state" && i.name === name)!;
      new Float32Array(this.memory.buffer, inp.offset, value.length).set(value);
      this.stateRows = value.length / inp.width;
      if (e.prepare) this.exports[e.prepare](0, 0, this.stateRows);
    }
  }
}
