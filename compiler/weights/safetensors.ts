// Reader for Hugging Face safetensors checkpoints (single file or sharded with an index).

import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { halfToFloat } from "../../ir/half.js";
import { InputError } from "../diagnostics.js";
import type { TensorInfo, WeightSource } from "./source.js";

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const KNOWN = new Set(["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"]);

interface Entry extends TensorInfo {
  readonly begin: number;
  readonly end: number;
}

class SafetensorsFile {
  readonly entries = new Map<string, Entry>();
  private readonly buf: Buffer;
  private readonly dataStart: number;

  constructor(readonly path: string) {
    const name = basename(path);
    this.buf = readFileSync(path);
    if (this.buf.length < 8) throw new InputError(`${name}: truncated file (${this.buf.length} bytes, no header)`);
    const headerLen = Number(this.buf.readBigUInt64LE(0));
    if (headerLen > this.buf.length - 8) throw new InputError(`${name}: header length ${headerLen} runs past the end of the file (${this.buf.length} bytes)`);
    let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    try {
      header = JSON.parse(this.buf.subarray(8, 8 + headerLen).toString("utf8"));
    } catch {
      throw new InputError(`${name}: header is not valid JSON`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) throw new InputError(`${name}: header is not a JSON object`);
    this.dataStart = 8 + headerLen;
    const dataLen = this.buf.length - this.dataStart;
    for (const [tname, t] of Object.entries(header)) {
      if (tname === "__metadata__") continue;
      const ok = t && typeof t.dtype === "string" && Array.isArray(t.shape) && Array.isArray(t.data_offsets) && t.data_offsets.length === 2 &&
        t.shape.every((d) => Number.isInteger(d) && d >= 0) && t.data_offsets.every((d) => Number.isInteger(d) && d >= 0);
      if (!ok) throw new InputError(`${name}: tensor '${tname}' has a malformed header entry`);
      if (!KNOWN.has(t.dtype)) throw new InputError(`${name}: tensor '${tname}' has unknown dtype ${t.dtype}`);
      const [begin, end] = t.data_offsets;
      if (end < begin || end > dataLen) throw new InputError(`${name}: tensor '${tname}' data [${begin}, ${end}) runs past the end of the data (${dataLen} bytes); the file may be truncated`);
      const bytes = BYTES[t.dtype];
      if (bytes) {
        const expect = t.shape.reduce((a, b) => a * b, 1) * bytes;
        if (end - begin !== expect) throw new InputError(`${name}: tensor '${tname}' holds ${end - begin} bytes but ${t.dtype}[${t.shape.join(",")}] needs ${expect}`);
      }
      this.entries.set(tname, { dtype: t.dtype, shape: t.shape, file: name, begin, end });
    }
  }

  read(tname: string): Float32Array {
    const e = this.entries.get(tname)!;
    const bytes = BYTES[e.dtype];
    if (!bytes) throw new InputError(`${e.file}: tensor '${tname}' has dtype ${e.dtype}; only F32, F16 and BF16 are supported`);
    const raw = this.buf.subarray(this.dataStart + e.begin, this.dataStart + e.end);
    const n = (e.end - e.begin) / bytes;
    const out = new Float32Array(n);
    if (e.dtype === "F32") {
      new Uint8Array(out.buffer).set(raw);
    } else if (e.dtype === "BF16") {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = raw.readUInt16LE(2 * i) << 16;
    } else {
      for (let i = 0; i < n; i++) out[i] = halfToFloat(raw.readUInt16LE(2 * i));
    }
    return out;
  }
}


/** Opens `dir/model.safetensors`, or the shards listed by `dir/model.safetensors.index.json`, or a .safetensors file. */
export function openSafetensors(path: string): WeightSource {
  const files: SafetensorsFile[] = [];
  if (statSync(path).isFile()) {
    files.push(new SafetensorsFile(path));
  } else if (existsSync(join(path, "model.safetensors"))) {
    files.push(new SafetensorsFile(join(path, "model.safetensors")));
  } else if (existsSync(join(path, "model.safetensors.index.json"))) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(join(path, "model.safetensors.index.json"), "utf8"));
    } catch {
      throw new InputError(`model.safetensors.index.json: not valid JSON`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") throw new InputError(`model.safetensors.index.json: no weight_map`);
    for (const shard of [...new Set(Object.values(index.weight_map))].sort()) {
      if (!existsSync(join(path, shard))) throw new InputError(`model.safetensors.index.json names shard '${shard}', which is missing`);
      files.push(new SafetensorsFile(join(path, shard)));
    }
  } else {
    throw new InputError(`${path}: no model.safetensors or model.safetensors.index.json`);
  }
  const where = new Map<string, SafetensorsFile>();
  for (const f of files) for (const n of f.entries.keys()) where.set(n, f);
  return {
    description: path,
    names: () => [...where.keys()],
    info: (n) => where.get(n)?.entries.get(n),
    read: (n) => where.get(n)!.read(n),
  };
}
