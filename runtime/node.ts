// Node helpers: load an artifact folder from disk.

import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "./manifest.js";
import { pickVariant } from "./features.js";
import { ArtifactError, Model } from "./model.js";

export function readManifest(dir: string): Manifest {
  const path = join(dir, "manifest.json");
  if (!existsSync(path)) throw new ArtifactError(`${dir} is not an artifact folder (no manifest.json)`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new ArtifactError(`${path}: not valid JSON`);
  }
}

export async function loadArtifact(dir: string): Promise<Model> {
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
  const variant = pickVariant(manifest.variants ?? [{ file: "model.wasm", features: ["simd128"] }]);
  return Model.load({ manifest, wasm: readFileSync(join(dir, variant.file)), weights });
}
