// Loads a compiled artifact into a WebAssembly instance and runs its entries. No Node-only
// imports: the same code runs in browsers, fed ArrayBuffers.

import type { Manifest, ManifestEntry } from "./manifest.js";
import { CONTROL } from "./control.js";
import type { ThreadHost } from "./threads.js";

/**
 * weights.bin: its bytes, a stream of them (a browser's `(await fetch(url)).body`), or a
 * function that writes them into the view it is given (Node reads the file straight into
 * linear memory). Streams and functions avoid holding a second copy of the weights.
 */
export type WeightsInput = ArrayBuffer | Uint8Array | ReadableStream<Uint8Array> | ((into: Uint8Array) => void | Promise<void>);

export interface ArtifactFiles {
  manifest: Manifest;
  wasm: BufferSource;
  weights: WeightsInput;
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

export class ArtifactError extends Error {}

export interface LoadOptions {
  /**
   * Threads running the matrix kernels, the calling one included (default 1). Above 1, `wasm`
   * must be the threaded variant (model.threads.wasm) and `host` starts the workers.
   */
  threads?: number;
  host?: ThreadHost;
}

async function fillWeights(w: WeightsInput, into: Uint8Array): Promise<void> {
  const size = (n: number) => {
    if (n !== into.byteLength) throw new ArtifactError(`weights.bin has ${n} bytes, the manifest expects ${into.byteLength}`);
  };
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
  /** Rows of the current state inputs (e.g. the encoder output the decoder attends to). */
  private stateRows = 0;
  private readonly exports: Record<string, (rows: number, past: number, erows: number) => void>;

  /** Worker threads serving kernel shares (threads − 1 of them). */
  private workers: { terminate(): void }[] = [];

  private constructor(readonly manifest: Manifest, readonly memory: WebAssembly.Memory, instance: WebAssembly.Instance) {
    this.exports = instance.exports as never;
  }

  static async load(files: ArtifactFiles, opts: LoadOptions = {}): Promise<Model> {
    const m = files.manifest;
    if (m.format !== "wasmformer" || m.version !== 1) throw new ArtifactError(`not a wasmformer v1 artifact (format ${String(m.format)}, version ${String(m.version)})`);
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new ArtifactError(`threads must be a positive integer, got ${threads}`);
    if (threads > (m.memory.max_threads ?? Infinity)) throw new ArtifactError(`${threads} threads: the artifact's kernels have scratch for at most ${m.memory.max_threads}`);
    const module = await WebAssembly.compile(files.wasm);
    const shared = WebAssembly.Module.exports(module).some((e) => e.name === "__worker");
    if (threads > 1 && !shared) throw new ArtifactError(`${threads} threads need the threaded module (model.threads.wasm); this one is single-threaded`);
    if (threads > 1 && !opts.host) throw new ArtifactError("threads > 1 need a thread host (loadArtifact in Node, browserThreads in a page)");
    const memory = new WebAssembly.Memory({ initial: m.memory.pages, maximum: m.memory.pages, shared });
    const into = new Uint8Array(memory.buffer, m.memory.weights_offset, m.memory.weights_bytes);
    const [instance] = await Promise.all([WebAssembly.instantiate(module, { env: { memory } }), fillWeights(files.weights, into)]);
    const model = new Model(m, memory, instance);
    if (threads > 1) await model.startThreads(module, threads, opts.host!);
    for (const e of m.entries) if (e.prepare && !e.inputs.some((i) => i.kind === "state")) model.exports[e.prepare](0, 0, 0);
    return model;
  }

  private async startThreads(module: WebAssembly.Module, threads: number, host: ThreadHost) {
    const at = this.manifest.memory.control;
    if (at === undefined) throw new ArtifactError("the manifest has no thread control block (recompile the artifact)");
    // workers wait for the generation after this one: nothing bumps it until `threads` is set below
    const generation = Atomics.load(new Int32Array(this.memory.buffer, at + CONTROL.generation, 1), 0);
    try {
      for (let id = 1; id < threads; id++) this.workers.push(await host.start(module, this.memory, id, generation));
    } catch (e) {
      this.dispose();
      throw new ArtifactError(`could not start ${threads - 1} worker threads: ${e instanceof Error ? e.message : String(e)}`);
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
    if (!e) throw new ArtifactError(`artifact has no entry '${name}' (it has ${this.manifest.entries.map((x) => x.name).join(", ")})`);
    return e;
  }

  /** Forgets the KV cache (and any state), starting a new sequence. */
  reset() {
    this.past = 0;
  }

  /**
   * Runs an entry on the rows of `inputs.ids`, continuing the KV cache of a cached entry.
   * Returns each output's rows for this call, copied out of linear memory: into a fresh array,
   * or into the start of `into[output]` where the caller passes one (at least rows × width
   * values; the result is then a view of exactly that many). Reusing arrays across calls spares
   * a fresh allocation of every output each call — for [128, 50257] logits, 26 MB whose first
   * touch alone took ~80 ms on the VM the bench ran on, against ~1.5 ms to copy.
   */
  run(name: string, inputs: RunInputs, into: Record<string, Float32Array> = {}): Record<string, Float32Array> {
    const e = this.entry(name);
    const rows = inputs.ids.length;
    if (rows < 1) throw new ArtifactError(`${name}: needs at least one token`);
    const past = e.cached ? this.past : 0;
    if (past + rows > this.manifest.context)
      throw new ArtifactError(`${name}: ${past + rows} tokens exceed the compiled context of ${this.manifest.context} (compile with a larger --context)`);
    for (const inp of e.inputs) {
      if (inp.kind === "state") continue;
      const src = inp.kind === "tokens" ? inputs.ids : inp.kind === "segments" ? inputs.segments : inputs.padding;
      if (src && src.length !== rows) throw new ArtifactError(`${name}: ${inp.name} has ${src.length} values for ${rows} tokens`);
      if (inp.dtype === "i32") {
        const dst = new Int32Array(this.memory.buffer, inp.offset, rows);
        for (let i = 0; i < rows; i++) {
          const v = src ? src[i] : 0;
          if (!Number.isInteger(v) || v < 0 || (inp.limit !== undefined && v >= inp.limit))
            throw new ArtifactError(`${name}: ${inp.name}[${i}] = ${v} is outside [0, ${inp.limit ?? "∞"})`);
          dst[i] = v;
        }
      } else {
        const dst = new Float32Array(this.memory.buffer, inp.offset, rows);
        for (let i = 0; i < rows; i++) dst[i] = src ? src[i] : 1;
      }
    }
    for (const key of Object.keys(into))
      if (!e.outputs.some((o) => o.name === key)) throw new ArtifactError(`${name}: into.${key} names no output (outputs: ${e.outputs.map((o) => o.name).join(", ")})`);
    const sizes = e.outputs.map((o) => (o.rows === "E" ? this.stateRows : /^\d+$/.test(o.rows) ? Number(o.rows) : rows) * o.width);
    e.outputs.forEach((o, i) => {
      const dst = into[o.name];
      if (dst && !(dst instanceof Float32Array && dst.length >= sizes[i]))
        throw new ArtifactError(`${name}: into.${o.name} must be a Float32Array of at least ${sizes[i]} values, got ${dst instanceof Float32Array ? dst.length : typeof dst}`);
    });
    this.exports[e.name](rows, past, this.stateRows);
    if (e.cached) this.past += rows;
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
   * Feeds `value` (rows × width) to every entry's state input named `name`, then runs those
   * entries' prepare functions (e.g. the decoder's cross-attention keys and values).
   */
  setState(name: string, value: Float32Array) {
    let fed = false;
    for (const e of this.manifest.entries) {
      const inp = e.inputs.find((i) => i.kind === "state" && i.name === name);
      if (!inp) continue;
      const rows = value.length / inp.width;
      if (!Number.isInteger(rows) || rows > this.manifest.context) throw new ArtifactError(`state ${name}: ${value.length} values is not a whole number of rows of ${inp.width} within the context`);
      new Float32Array(this.memory.buffer, inp.offset, value.length).set(value);
      this.stateRows = rows;
      if (e.prepare) this.exports[e.prepare](0, 0, rows);
      fed = true;
    }
    if (!fed) throw new ArtifactError(`no entry takes a state input '${name}'`);
  }
}
