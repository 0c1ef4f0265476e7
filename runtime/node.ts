// Node helpers: load an artifact folder from disk.

import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Manifest, WeightShard } from "./manifest.js";
import { pickVariant } from "./features.js";
import { ArtifactError, reason } from "./errors.js";
import { type LoadOptions, Model } from "./model.js";
import { type TextTokenizer, loadTokenizer } from "./tokenizer.js";
import { validateManifest, weightShards } from "./validate.js";
import { type ThreadHost, WORKER_BODY, whenReady } from "./threads.js";
import { Worker } from "node:worker_threads";

export { parseAdapterSpec, readAdapter } from "./lora-node.js";

/** Node worker threads, running the worker protocol from source (no file to locate). */
export const nodeThreads: ThreadHost = {
  start(module, memory, id, generation) {
    const src = `const { parentPort } = require("node:worker_threads"); const on = (f) => parentPort.once("message", f); const post = (m) => parentPort.postMessage(m);${WORKER_BODY}`;
    const w = new Worker(src, { eval: true });
    // a worker blocked in its kernel loop must not keep the process alive
    w.unref();
    const ready = whenReady((f) => w.once("message", f), (f) => w.once("error", f), () => void w.terminate());
    w.postMessage({ module, memory, id, generation });
    return ready;
  },
};

/** The largest manifest.json read: real ones are a few KiB. */
const MAX_MANIFEST_BYTES = 16 << 20;

/** A file's bytes; an unreadable file is an ArtifactError naming it. */
function readArtifactFile(path: string, limit = Infinity): Buffer<ArrayBuffer> {
  try {
    const size = statSync(path).size;
    if (size > limit) throw new ArtifactError("WF502", `${path}: ${size} bytes is too large for this file (at most ${limit})`);
    return readFileSync(path);
  } catch (e) {
    throw e instanceof ArtifactError ? e : new ArtifactError("WF502", `${path}: cannot be read (${reason(e)})`);
  }
}

/** A JSON file of the artifact, parsed; unreadable or invalid JSON is an ArtifactError naming it. */
function readJsonFile(path: string, limit?: number): unknown {
  const text = readArtifactFile(path, limit).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ArtifactError("WF502", `${path}: not valid JSON (${reason(e)})`);
  }
}

/** An artifact folder's manifest.json, validated (runtime/validate.ts). */
export function readManifest(dir: string): Manifest {
  if (!existsSync(dir)) throw new ArtifactError("WF501", `${dir} is not an artifact folder (it does not exist)`);
  if (!statSync(dir).isDirectory()) throw new ArtifactError("WF501", `${dir} is not an artifact folder (it is not a folder)`);
  const path = join(dir, "manifest.json");
  if (!existsSync(path)) throw new ArtifactError("WF501", `${dir} is not an artifact folder (no manifest.json)`);
  return validateManifest(readJsonFile(path, MAX_MANIFEST_BYTES), path);
}

export interface ArtifactLoadOptions {
  /** Threads running the matrix kernels (default 1); above 1 they run on worker threads. */
  threads?: number;
  /** Check each weights shard's sha-256 against the manifest as it is read (default false). */
  verify?: boolean;
  /** The single-threaded module to run (default: the most capable one this host runs); "profile": model.profile.wasm. */
  module?: "plain" | "relaxed" | "profile";
  /** Functions the module imports besides its memory (the profiling module's `__prof`). */
  imports?: LoadOptions["imports"];
  /** Run-time LoRA adapters to make room for (see LoadOptions.adapters; default 8). */
  adapters?: number;
}

/** Bytes read from a shard at a time. */
const READ_BYTES = 1 << 26;

/** Reads the shard at `path` straight into `into` (its slice of linear memory), hashing it when `verify`. */
function readShard(path: string, shard: WeightShard, into: Uint8Array, verify: boolean) {
  const hash = verify ? createHash("sha256") : undefined;
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new ArtifactError("WF507", `${path}: cannot be read (${reason(e)})`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size !== shard.bytes) throw new ArtifactError("WF507", `${path} has ${size} bytes, the manifest expects ${shard.bytes}`);
    for (let at = 0; at < size; ) {
      const n = readSync(fd, into, at, Math.min(size - at, READ_BYTES), at);
      if (n <= 0) throw new ArtifactError("WF507", `${path}: unexpected end of file`);
      hash?.update(into.subarray(at, at + n));
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  const sha = hash?.digest("hex");
  if (sha !== undefined && sha !== shard.sha256)
    throw new ArtifactError("WF507", `${path}: its sha-256 is ${sha}, the manifest expects ${shard.sha256} (the file is corrupted or from another build)`);
}

/**
 * Loads an artifact folder: each weights shard is read straight into its slice of linear memory
 * (no second copy of the weights); `threads` > 1 runs the matrix kernels on worker threads.
 */
export async function loadArtifact(dir: string, { threads = 1, verify = false, module, imports, adapters }: ArtifactLoadOptions = {}): Promise<Model> {
  const manifest = readManifest(dir);
  const shards = weightShards(manifest, join(dir, "manifest.json"));
  const variant = pickVariant(manifest.variants, { threads, module });
  if (threads > 1 && !variant.features.includes("threads")) throw new ArtifactError("WF511", `${dir}: ${threads} threads need model.threads.wasm and a host with shared WebAssembly memory`);
  for (const f of [variant.file, ...shards.map((s) => s.file)]) if (!existsSync(join(dir, f))) throw new ArtifactError("WF501", `${dir}: missing ${f}`);
  // sizes first: a shard of the wrong size is refused before the memory is allocated
  for (const s of shards) {
    const path = join(dir, s.file);
    const size = statSync(path).size;
    if (size !== s.bytes) throw new ArtifactError("WF507", `${path} has ${size} bytes, the manifest expects ${s.bytes}`);
  }
  const wasm = readArtifactFile(join(dir, variant.file));
  const weights = (into: Uint8Array) => {
    for (const s of shards) readShard(join(dir, s.file), s, into.subarray(s.offset, s.offset + s.bytes), verify);
  };
  return Model.load({ manifest, wasm, weights, location: dir, wasmFile: variant.file }, { threads, host: nodeThreads, imports, adapters });
}

/**
 * The tokenizer an artifact ships (manifest `tokenizer`, with tokenizer_config.json beside it
 * when present), or undefined when it has none. A file that cannot be read, parsed or used is
 * an ArtifactError naming it.
 */
export function loadArtifactTokenizer(dir: string, manifest: Manifest): TextTokenizer | undefined {
  if (manifest.tokenizer === undefined) return undefined;
  const files = { tokenizer: join(dir, manifest.tokenizer), config: join(dir, "tokenizer_config.json") };
  if (!existsSync(files.tokenizer)) throw new ArtifactError("WF501", `${dir}: missing ${manifest.tokenizer} (the manifest's tokenizer)`);
  const config = existsSync(files.config) ? readJsonFile(files.config) : {};
  return loadTokenizer(readJsonFile(files.tokenizer), config, files);
}

/** The chat template an artifact ships (manifest `chat`), or undefined when it has none. */
export function loadArtifactChat(dir: string, manifest: Manifest): { template: string; bosToken?: string; eosToken?: string } | undefined {
  if (!manifest.chat) return undefined;
  const path = join(dir, manifest.chat.template);
  if (!existsSync(path)) throw new ArtifactError("WF501", `${dir}: missing ${manifest.chat.template} (the manifest's chat template)`);
  return { template: readArtifactFile(path, MAX_MANIFEST_BYTES).toString("utf8"), bosToken: manifest.chat.bos_token, eosToken: manifest.chat.eos_token };
}
