// The source tree imports without cycles (type-only imports included), and the runtime imports
// nothing of the compiler or the IR: it ships alone.

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { expect, it } from "vitest";
import { root } from "./helpers.js";

const dirs = ["compiler", "ir", "runtime", "tools"];
const files = dirs.flatMap((d) => (readdirSync(join(root, d), { recursive: true }) as string[]).filter((f) => f.endsWith(".ts") && !f.includes("kernels/")).map((f) => join(d, f)));
const imports = new Map(
  files.map((f) => {
    const src = readFileSync(join(root, f), "utf8");
    const relativeDeps = [...src.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.\.?\/[^"]+)\.js"/gm)].map((m) => relative(root, join(root, dirname(f), `${m[1]}.ts`)));
    // the compiler imports the runtime by its package name (@wasmformer/runtime/<module>)
    const packageDeps = [...src.matchAll(/^(?:import|export)\s[^;]*?from\s+"@wasmformer\/runtime(?:\/([^"]+))?"/gm)].map((m) => `runtime/${m[1] ?? "index"}.ts`);
    const deps = [...relativeDeps, ...packageDeps];
    return [f, deps.filter((d) => files.includes(d))];
  }),
);

it("no module imports itself through others", () => {
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
  expect(imports.get("compiler/frontend/builtins.ts")).not.toContain("compiler/frontend/elaborate.ts");
});

it("the runtime imports nothing of the compiler or the IR", () => {
  const runtime = files.filter((f) => f.startsWith("runtime/"));
  expect(runtime.length).toBeGreaterThan(5);
  for (const f of runtime) expect(imports.get(f)!.filter((d) => !d.startsWith("runtime/")), f).toEqual([]);
});

it("the compiler reaches the runtime only through its package name", () => {
  for (const f of files.filter((f) => !f.startsWith("runtime/"))) expect(readFileSync(join(root, f), "utf8"), f).not.toMatch(/from\s+"(\.\.\/)+runtime\//);
});
