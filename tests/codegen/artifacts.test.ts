// Byte identity of compiled artifacts: the sha-256 of every module variant, weights.bin and
// manifest.json of each case in artifact-cases.ts, against tests/codegen/artifacts.sha256.json.
// A refactor of code generation must leave them all unchanged. A change meant to alter the
// bytes regenerates the file (see UPDATE below) and says why in its commit.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generate } from "../../compiler/codegen/emit.js";
import { root } from "../helpers.js";
import { artifactCases } from "./artifact-cases.js";

const FILE_NAME = "tests/codegen/artifacts.sha256.json";
const FILE = join(root, FILE_NAME);
const UPDATE = "UPDATE_ARTIFACT_HASHES=1 npx vitest run tests/codegen/artifacts.test.ts";
const updating = process.env.UPDATE_ARTIFACT_HASHES === "1";

type Hashes = Record<string, string>;
const committed: Record<string, Hashes> = existsSync(FILE) ? JSON.parse(readFileSync(FILE, "utf8")) : {};
const computed: Record<string, Hashes> = {};
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

describe("compiled artifacts are byte-identical to the committed hashes", () => {
  const cases = artifactCases();

  for (const c of cases)
    it(c.name, () => {
      const art = generate(c.program());
      const hashes: Hashes = {};
      for (const v of art.variants ?? [{ file: "model.wasm", wasm: art.wasm }]) hashes[v.file] = sha256(v.wasm);
      hashes["weights.bin"] = sha256(art.weights);
      hashes["manifest.json"] = sha256(JSON.stringify(art.manifest, null, 2) + "\n");
      computed[c.name] = hashes;
      if (updating) return;
      expect(committed[c.name], `no committed hashes for '${c.name}': run ${UPDATE}`).toBeDefined();
      for (const [file, hash] of Object.entries(hashes))
        expect(hash, `${file} of '${c.name}' changed. If the change is intended, run ${UPDATE} and commit ${FILE_NAME} saying why the bytes changed`).toBe(committed[c.name][file]);
      expect(Object.keys(hashes).sort()).toEqual(Object.keys(committed[c.name]).sort());
    });

  it("the committed file holds exactly these cases", () => {
    if (updating) return;
    expect(Object.keys(committed).sort(), `stale or missing cases in ${FILE_NAME}: run ${UPDATE}`).toEqual(cases.map((c) => c.name).sort());
  });

  afterAll(() => {
    if (!updating) return;
    const sorted = Object.fromEntries(cases.map((c) => [c.name, computed[c.name]]));
    writeFileSync(FILE, JSON.stringify(sorted, null, 2) + "\n");
  });
});
