// Shared test helpers: fixtures, compiling in memory, comparing arrays.

import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generate as generateArtifact } from "../compiler/codegen/emit.js";
import { loadProgram } from "../compiler/load.js";
import { runPipeline } from "../compiler/passes/manager.js";
import type { Program } from "../ir/types.js";
import { Model } from "../runtime/model.js";
import { decodeNpy } from "../runtime/npy.js";

export const root = join(import.meta.dirname, "..");
export const fixtureDir = (name: string) => join(root, "tests", "fixtures", name);

export interface FixtureCase {
  name: string;
  input_ids: number[];
  token_type_ids?: number[];
  decoder_input_ids?: number[];
  /** 0 at padding positions (an encoder's padded case) */
  attention_mask?: number[];
  output: string;
  shape: [number, number];
  max_abs: number;
}
export interface Fixture {
  output_kind: "logits" | "last_hidden_state";
  cases: FixtureCase[];
  greedy?: { input_ids: number[]; max_new_tokens: number; ids: number[] };
}

export function readFixture(name: string): Fixture {
  return JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8"));
}

export function readExpected(name: string, c: FixtureCase): Float32Array {
  return decodeNpy(readFileSync(join(fixtureDir(name), c.output))).data as Float32Array;
}

/** Which example model reads each fixture. */
export const families: Record<string, string> = {
  gpt2: "gpt2", llama: "llama", bert: "bert", t5: "t5", "t5-v1_1": "t5",
  qwen2: "qwen2", qwen3: "qwen3", llama3: "llama", mistral: "mistral", gemma: "gemma", gemma2: "gemma2", phi3: "phi3",
  bart: "bart", mbart: "bart", marian: "marian",
  roberta: "roberta", "roberta-cls": "roberta", distilbert: "distilbert", "distilbert-cls": "distilbert", albert: "albert", "albert-cls": "albert",
};

export function fixtureProgram(name: string, opts: { context?: number } = {}): Program {
  return runPipeline(loadProgram(join(root, "examples", `${families[name]}.wf`), fixtureDir(name), opts));
}

/** Compiles p and loads its plain SIMD128 module, or (`relaxed`) its relaxed-SIMD one. */
export async function compileInMemory(p: Program, opts: { noReuse?: boolean; relaxed?: boolean } = {}) {
  const art = generateArtifact(p, opts);
  const wasm = opts.relaxed ? art.variants?.find((v) => v.file === "model.relaxed.wasm")?.wasm : art.wasm;
  if (!wasm) throw new Error("the artifact has no relaxed-SIMD module");
  const model = await Model.load({ manifest: art.manifest, wasm, weights: art.weights });
  return { art, model };
}

/** Largest |a - b| relative to the largest |b| (the fixtures' tolerance measure). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let err = 0, mag = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  if (Number.isNaN(err) || [...Array.from(a)].some(Number.isNaN)) return Infinity;
  return err / (mag || 1);
}

/** Seeded PRNG (mulberry32) for reproducible random shapes and data. */
export function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
    floats: (n: number, scale = 1) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale),
  };
}

/** Copies of an artifact folder under `tmp`, each changed by `change(dir)` (for tests of broken artifacts). */
export function artifactCopier(tmp: string) {
  let copies = 0;
  return (from: string, change: (dir: string) => void = () => {}): string => {
    const dir = join(tmp, `copy${copies++}`);
    cpSync(from, dir, { recursive: true });
    change(dir);
    return dir;
  };
}

/** Rewrites an artifact's manifest.json through `change`. */
export function editManifest(dir: string, change: (m: any) => void) {
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  change(m);
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
}

/** A safetensors file of F32 tensors. */
export function safetensors(tensors: Record<string, { shape: number[]; data: ArrayLike<number> }>): Uint8Array {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [k, t] of Object.entries(tensors)) {
    header[k] = { dtype: "F32", shape: t.shape, data_offsets: [at, at + 4 * t.data.length] };
    at += 4 * t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(Float32Array.from(t.data).buffer), p);
    p += 4 * t.data.length;
  }
  return out;
}
