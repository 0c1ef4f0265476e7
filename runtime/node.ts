// Node helpers: load an artifact folder from disk.

import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "./manifest.js";
import { pickVariant } from "./features.js";
import { ArtifactError, type LoadOptions, Model } from "./model.js";
import { type ThreadHost, WORKER_BODY, whenReady } from "./threads.js";
import { Worker } from "node:worker_threads";

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

export function readManifest(dir: string): Manifest {
  const path = join(dir, "manifest.json");
  if (!existsSync(path)) throw new ArtifactError(`${dir} is not an artifact folder (no manifest.json)`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new ArtifactError(`${path}: not valid JSON`);
  }
}

/** Loads an artifact folder; `threads` > 1 runs the matrix kernels on worker threads. */
export async function loadArtifact(dir: string, { threads = 1 }: Pick<LoadOptions, "threads"> = {}): Promise<Model> {
  const manifest = readManifest(dir);
  for (const f of ["model.wasm", "weights.bin"]) if (!existsSync(join(dir, f))) throw new ArtifactError(`${dir}: missing ${f}`);
  // weights.bin is read straight into linear memory: no second copy of the weights
  const weights = (into: Uint8Array) => {
    const fd = openSync(join(dir, "weights.bin"), "r");
    try {
      const size = fstatSync(fd).size;
      if (size !== into.byteLength) throw new ArtifactError(`${dir}/weights.bin has ${size} bytes, the manifest expects ${into.byteLength}`);
      for (let at = 0; at < size; ) {
        const n = readSync(fd, into, at, Math.min(size - at, 1 << 26), at);
        if (n <= 0) throw new ArtifactError(`${dir}/weights.bin: unexpected end of file`);
        at += n;
      }
    } finally {
      closeSync(fd);
    }
  };
  const variant = pickVariant(manifest.variants ?? [{ file: "model.wasm", features: ["simd128"] }], { threads });
  if (threads > 1 && !variant.features.includes("threads")) throw new ArtifactError(`${dir}: ${threads} threads need model.threads.wasm and a host with shared WebAssembly memory`);
  if (!existsSync(join(dir, variant.file))) throw new ArtifactError(`${dir}: missing ${variant.file}`);
  return Model.load({ manifest, wasm: readFileSync(join(dir, variant.file)), weights }, { threads, host: nodeThreads });
}
