import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const runtime = fileURLToPath(new URL("./runtime/", import.meta.url));

export default defineConfig({
  // the compiler imports the runtime by its package name; tests run both from source, one copy
  resolve: {
    alias: [
      { find: /^@wasmformer\/runtime$/, replacement: `${runtime}index.ts` },
      { find: /^@wasmformer\/runtime\/(.+)$/, replacement: `${runtime}$1.ts` },
    ],
  },
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
