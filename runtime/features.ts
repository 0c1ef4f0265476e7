// Feature detection for the host's WebAssembly: which artifact variant it can run.

import { ArtifactError } from "./errors.js";
import { hasThreads } from "./threads.js";

const bytes = (...parts: number[][]) => new Uint8Array(parts.flat());
const v128zero = [0xfd, 0x0c, ...Array(16).fill(0)];

/** (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0))) */
const RELAXED_PROBE = bytes(
  [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b], // type: () -> v128
  [0x03, 0x02, 0x01, 0x00], // one function of type 0
  [0x0a, 0x3d, 0x01, 0x3b, 0x00, ...v128zero, ...v128zero, ...v128zero, 0xfd, 0x85, 0x02, 0x0b],
);

export function hasRelaxedSimd(): boolean {
  try {
    return WebAssembly.validate(RELAXED_PROBE);
  } catch {
    return false;
  }
}

export interface WasmVariant {
  file: string;
  features: string[];
}

/**
 * The variant to run: with `threads` > 1 the threaded one where the host has shared memory,
 * otherwise the most capable single-threaded one (the plain SIMD128 one always works).
 */
export function pickVariant(variants: readonly WasmVariant[], { threads = 1, module }: { threads?: number; module?: "plain" | "relaxed" | "profile" } = {}): WasmVariant {
  if (module === "profile") {
    const v = variants.find((x) => x.features.includes("profile"));
    if (!v) throw new ArtifactError("WF511", "the artifact has no profiling module: compile it with --profile");
    return v;
  }
  // a chosen single-threaded module: plain SIMD128, or relaxed SIMD where the host has it
  if (module !== undefined && threads <= 1) {
    const want = module === "plain" ? ["simd128"] : ["simd128", "relaxed-simd"];
    const v = variants.find((x) => x.features.length === want.length && want.every((f) => x.features.includes(f)));
    if (!v) throw new ArtifactError("WF511", `the artifact has no ${module === "plain" ? "plain SIMD128" : "relaxed-SIMD"} module`);
    if (module === "relaxed" && !hasRelaxedSimd()) throw new ArtifactError("WF511", "this host has no relaxed SIMD (Node 20: node --experimental-wasm-relaxed-simd)");
    return v;
  }
  const have = new Set(["simd128", ...(hasRelaxedSimd() ? ["relaxed-simd"] : []), ...(threads > 1 && hasThreads() ? ["threads"] : [])]);
  const usable = variants.filter((v) => v.features.every((f) => have.has(f)));
  const rank = (v: WasmVariant) => (v.features.includes("threads") ? 100 : 0) + v.features.length;
  return usable.sort((a, b) => rank(b) - rank(a))[0] ?? variants[0];
}
