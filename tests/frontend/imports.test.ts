// The front end's modules import each other without cycles (type-only imports included):
// builtins.ts and elaborate.ts share values.ts instead of importing each other.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { root } from "../helpers.js";

it("compiler/frontend has no import cycle", () => {
  const dir = join(root, "compiler", "frontend");
  const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
  const imports = new Map(files.map((f) => {
    const src = readFileSync(join(dir, f), "utf8");
    const deps = [...src.matchAll(/^(?:import|export)\s[^;]*?from\s+"\.\/([\w-]+)\.js"/gm)].map((m) => `${m[1]}.ts`);
    return [f, deps.filter((d) => files.includes(d))];
  }));
  expect(imports.get("builtins.ts")).not.toContain("elaborate.ts");
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (f: string, path: string[]) => {
    state.set(f, "open");
    for (const d of imports.get(f)!) {
      if (state.get(d) === "open") cycles.push([...path.slice(path.indexOf(d)), f, d].join(" → "));
      else if (!state.has(d)) visit(d, [...path, f]);
    }
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f, []);
  expect(cycles).toEqual([]);
});
