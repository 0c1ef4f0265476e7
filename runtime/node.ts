// Node helpers: load an artifact folder from disk.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "./manifest.js";
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
  return Model.load({ manifest, wasm: readFileSync(join(dir, "model.wasm")), weights: readFileSync(join(dir, "weights.bin")) });
}
