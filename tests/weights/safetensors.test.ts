// Malformed checkpoints give one clear error naming the file or tensor, never a read past a buffer.

import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../compiler/diagnostics.js";
import { loadProgram } from "../../compiler/load.js";
import { openSafetensors } from "../../compiler/weights/safetensors.js";
import { fixtureDir, root } from "../helpers.js";

function file(header: object | string, data: Uint8Array = new Uint8Array(0), lenOverride?: number): string {
  const dir = mkdtempSync(join(tmpdir(), "wf-st-"));
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lenOverride ?? h.length));
  writeFileSync(join(dir, "model.safetensors"), Buffer.concat([len, h, data]));
  return dir;
}

const open = (dir: string) => () => openSafetensors(dir);

describe("safetensors", () => {
  it("reads F32, F16 and BF16 as float32", () => {
    const f32 = new Float32Array([1.5, -2]);
    const f16 = new Uint16Array([0x3c00, 0xc000]); // 1, -2
    const bf16 = new Uint16Array([0x3fc0, 0xc000]); // 1.5, -2
    const data = Buffer.concat([Buffer.from(f32.buffer), Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]);
    const w = openSafetensors(file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] }, c: { dtype: "BF16", shape: [2], data_offsets: [12, 16] } }, data));
    expect(Array.from(w.read("a"))).toEqual([1.5, -2]);
    expect(Array.from(w.read("b"))).toEqual([1, -2]);
    expect(Array.from(w.read("c"))).toEqual([1.5, -2]);
  });
  it("rejects a file too short for a header", () => {
    const dir = mkdtempSync(join(tmpdir(), "wf-st-"));
    writeFileSync(join(dir, "model.safetensors"), Buffer.from([1, 2, 3]));
    expect(open(dir)).toThrow(/model.safetensors: truncated file/);
  });
  it("rejects a header length past the end of the file", () => {
    expect(open(file("{}", new Uint8Array(0), 1 << 30))).toThrow(/header length 1073741824 runs past the end of the file/);
  });
  it("rejects a header that is not JSON", () => {
    expect(open(file("{not json"))).toThrow(/header is not valid JSON/);
  });
  it("rejects tensor data past the end (a truncated file)", () => {
    expect(open(file({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)))).toThrow(/tensor 'w' data \[0, 16\) runs past the end of the data \(8 bytes\)/);
  });
  it("rejects offsets that disagree with the shape", () => {
    expect(open(file({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)))).toThrow(/tensor 'w' holds 8 bytes but F32\[3\] needs 12/);
  });
  it("rejects unknown dtypes and malformed entries", () => {
    expect(open(file({ w: { dtype: "Q9", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)))).toThrow(/tensor 'w' has unknown dtype Q9/);
    expect(open(file({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)))).toThrow(/tensor 'w' has a malformed header entry/);
  });
  it("reads a sharded checkpoint through its index", () => {
    const a = file({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([3]).buffer));
    const b = file({ y: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([4]).buffer));
    const dir = mkdtempSync(join(tmpdir(), "wf-shard-"));
    copyFileSync(join(a, "model.safetensors"), join(dir, "model-00001-of-00002.safetensors"));
    copyFileSync(join(b, "model.safetensors"), join(dir, "model-00002-of-00002.safetensors"));
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00002-of-00002.safetensors" } }));
    const w = openSafetensors(dir);
    expect([w.read("x")[0], w.read("y")[0]]).toEqual([3, 4]);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { x: "missing.safetensors" } }));
    expect(open(dir)).toThrow(/names shard 'missing.safetensors', which is missing/);
  });
  it("a real checkpoint truncated by one byte names the tensor that runs past the end", () => {
    const dir = mkdtempSync(join(tmpdir(), "wf-trunc-"));
    const bytes = readFileSync(join(fixtureDir("gpt2"), "model.safetensors"));
    writeFileSync(join(dir, "model.safetensors"), bytes.subarray(0, bytes.length - 1));
    copyFileSync(join(fixtureDir("gpt2"), "config.json"), join(dir, "config.json"));
    expect(() => loadProgram(join(root, "examples", "gpt2.wf"), dir)).toThrow(InputError);
    expect(() => loadProgram(join(root, "examples", "gpt2.wf"), dir)).toThrow(/runs past the end of the data/);
  });
  it("a config.json that is not an object is an input error", () => {
    const dir = mkdtempSync(join(tmpdir(), "wf-cfg-"));
    copyFileSync(join(fixtureDir("gpt2"), "model.safetensors"), join(dir, "model.safetensors"));
    writeFileSync(join(dir, "config.json"), "[1, 2");
    expect(() => loadProgram(join(root, "examples", "gpt2.wf"), dir)).toThrow(/config.json: not a JSON object/);
  });
});
