// Reader for Hugging Face safetensors checkpoints (single file or sharded with an index).
// A file is a u64 header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets}}
// (space-padded), then the data section. The whole header is checked before any tensor is read,
// by the reference reader's rules (the Rust `safetensors` crate): each entry's offsets hold
// exactly shape × dtype size bytes, and sorted by offset the entries tile the data section with
// no gap, overlap or trailing byte, so a wrong header length cannot shift every tensor.

import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { halfToFloat } from "../../ir/half.js";
import { type Code, InputError } from "../diagnostics.js";
import { type TensorInfo, type WeightSource, checkpointFileSize, quoted, readCheckpointBytes, readCheckpointFile, shown } from "./source.js";

/** Bits per element of every dtype the format defines. */
const BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32, I64: 64, U64: 64, F64: 64, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};
const READABLE = ["F32", "F16", "BF16"];
/** The reference reader's limit on the JSON header. */
const MAX_HEADER_BYTES = 100_000_000;
const INDEX = "model.safetensors.index.json";

interface Entry extends TensorInfo {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The first top-level key of a (valid) JSON object text that appears twice: JSON.parse keeps the last silently. */
function duplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0, expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key: string = JSON.parse(text.slice(i, j + 1));
        if (seen.has(key)) return key;
        seen.add(key);
      }
      expectKey = false;
      i = j;
    } else if (ch === "{" || ch === "[") {
      depth++;
      expectKey = ch === "{" && depth === 1;
    } else if (ch === "}" || ch === "]") {
      depth--;
    } else if (ch === ",") {
      expectKey = depth === 1;
    }
  }
  return undefined;
}

/** A shape for messages, cut when long. */
const dims = (shape: readonly number[]) => (shape.length > 8 ? `[${shape.slice(0, 8).join(", ")}, …]` : `[${shape.join(", ")}]`);

/**
 * A safetensors file read in place: the header when opened, each tensor's bytes when it is read
 * (so a file of any size is read a tensor at a time, never whole).
 */
class SafetensorsFile {
  readonly entries = new Map<string, Entry>();
  private readonly dataStart: number;
  private readonly name: string;

  constructor(readonly path: string) {
    this.name = basename(path);
    const size = checkpointFileSize(path);
    if (size < 8) this.fail("WF403", `truncated file (${size} bytes, no header)`);
    const headerLen = readCheckpointBytes(path, 0, 8).readBigUInt64LE(0);
    if (headerLen > BigInt(size - 8)) this.fail("WF403", `header length ${headerLen} runs past the end of the file (${size} bytes)`);
    if (headerLen > BigInt(MAX_HEADER_BYTES)) this.fail("WF403", `header length ${headerLen} is over the limit of ${MAX_HEADER_BYTES} bytes`);
    this.dataStart = 8 + Number(headerLen);
    const bytes = readCheckpointBytes(path, 8, Number(headerLen));
    if (bytes[0] !== 0x7b) this.fail("WF403", `header (${bytes.length} bytes) does not start with '{'`);
    let text: string, header: Record<string, unknown>;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return this.fail("WF403", `header (${bytes.length} bytes) is not valid UTF-8`);
    }
    try {
      header = JSON.parse(text); // an object: the text starts with '{'
    } catch {
      return this.fail("WF403", `header (${bytes.length} bytes) is not valid JSON`);
    }
    const dup = duplicateKey(text);
    if (dup !== undefined) this.fail("WF403", `tensor ${quoted(dup)} appears twice in the header`);

    const dataLen = size - this.dataStart;
    for (const [tname, t] of Object.entries(header)) {
      if (tname === "__metadata__") {
        if (!isObject(t) || !Object.values(t).every((v) => typeof v === "string")) this.fail("WF403", `__metadata__ is ${shown(t)}, not an object of strings`);
        continue;
      }
      this.entries.set(tname, this.entry(tname, t, dataLen));
    }
    this.checkTiling(dataLen);
  }

  private fail(code: Code, message: string): never {
    throw new InputError(`${this.name}: ${message}`, undefined, { code });
  }

  /** One header entry, checked on its own: fields, dtype, size against the shape, end within the data. */
  private entry(tname: string, t: unknown, dataLen: number): Entry {
    const q = quoted(tname);
    if (!isObject(t)) this.fail("WF403", `tensor ${q} has header entry ${shown(t)}, not an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = t;
    if (typeof dtype !== "string" || BITS[dtype] === undefined) this.fail("WF404", `tensor ${q} has unknown dtype ${shown(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) this.fail("WF405", `tensor ${q} has shape ${shown(shape)}, not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1])
      this.fail("WF403", `tensor ${q} has data_offsets ${shown(offsets)}, not [begin, end] with integers 0 ≤ begin ≤ end`);
    const [begin, end] = offsets as number[];
    // the element count in BigInt, stopping once past 2^53 (a zero dimension makes it 0 whatever follows)
    let elements = shape.includes(0) ? 0n : 1n;
    for (const d of shape) if (elements && elements <= 2n ** 53n) elements *= BigInt(d);
    if (elements > 2n ** 53n) this.fail("WF405", `tensor ${q} has shape ${dims(shape)}, more than 2^53 elements`);
    const bits = elements * BigInt(BITS[dtype]);
    if (bits % 8n) this.fail("WF405", `tensor ${q} ${dtype}${dims(shape)} is ${bits} bits, not a whole number of bytes`);
    if (bits / 8n !== BigInt(end - begin))
      this.fail("WF405", `tensor ${q} ${dtype}${dims(shape)} needs ${bits / 8n} bytes, but its data_offsets [${begin}, ${end}] hold ${end - begin}`);
    if (end > dataLen) this.fail("WF406", `tensor ${q} data [${begin}, ${end}) runs past the end of the data section (${dataLen} bytes); the file may be truncated`);
    return { name: tname, dtype, shape, file: this.name, begin, end };
  }

  /** Sorted by offset, the tensors must cover the data section exactly, as the reference reader requires. */
  private checkTiling(dataLen: number) {
    const sorted = [...this.entries.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
    let at = 0;
    let prev: Entry | undefined;
    for (const e of sorted) {
      if (e.begin > at)
        this.fail("WF406", `bytes [${at}, ${e.begin}) of the data section belong to no tensor (a gap before tensor ${quoted(e.name)}${prev ? `, after ${quoted(prev.name)}` : ""})`);
      if (e.begin < at && prev)
        this.fail("WF406", `tensor ${quoted(e.name)} data [${e.begin}, ${e.end}) overlaps tensor ${quoted(prev.name)} data [${prev.begin}, ${prev.end})`);
      at = e.end;
      prev = e;
    }
    if (at !== dataLen)
      this.fail("WF406", `the tensors cover ${at} bytes of data but the data section holds ${dataLen} (${dataLen - at} trailing byte${dataLen - at === 1 ? "" : "s"}${prev ? ` after tensor ${quoted(prev.name)}` : ""})`);
  }

  read(tname: string): Float32Array {
    const e = this.entries.get(tname)!;
    if (!READABLE.includes(e.dtype)) this.fail("WF409", `tensor ${quoted(tname)} has dtype ${e.dtype}; wasmformer reads ${READABLE.join(", ")}`);
    const bytes = BITS[e.dtype] / 8;
    const raw = readCheckpointBytes(this.path, this.dataStart + e.begin, e.end - e.begin);
    const n = (e.end - e.begin) / bytes;
    const out = new Float32Array(n);
    if (e.dtype === "F32") {
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    // 16-bit values read through an aligned view (little-endian, as every host wasm runs on)
    const u16 = raw.byteOffset % 2 ? new Uint16Array(new Uint8Array(raw).buffer) : new Uint16Array(raw.buffer, raw.byteOffset, n);
    if (e.dtype === "BF16") {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
    } else {
      for (let i = 0; i < n; i++) out[i] = halfToFloat(u16[i]);
    }
    return out;
  }
}

/** The shards `model.safetensors.index.json` names, each checked, every mapped tensor in its shard. */
function openShards(dir: string): SafetensorsFile[] {
  function fail(message: string): never {
    throw new InputError(`${INDEX}: ${message}`, undefined, { code: "WF407" });
  }
  const text = readCheckpointFile(join(dir, INDEX)).toString("utf8");
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch {
    return fail("not valid JSON");
  }
  const map = isObject(index) ? index.weight_map : undefined;
  if (!isObject(map)) return fail("no weight_map object");
  const shards = new Map<string, SafetensorsFile>();
  for (const [tname, shard] of Object.entries(map)) {
    const q = quoted(tname);
    if (typeof shard !== "string" || basename(shard) !== shard || shard === "." || shard === "..")
      fail(`tensor ${q} is mapped to ${shown(shard)}, not the name of a file in the checkpoint's folder`);
    let file = shards.get(shard);
    if (!file) {
      const path = join(dir, shard);
      if (!existsSync(path)) fail(`tensor ${q} is mapped to shard ${quoted(shard)}, which does not exist`);
      shards.set(shard, (file = new SafetensorsFile(path)));
    }
    if (!file.entries.has(tname)) fail(`tensor ${q} is mapped to shard ${quoted(shard)}, which does not hold it`);
  }
  return [...shards.values()];
}

/** Opens `dir/model.safetensors`, or the shards listed by `dir/model.safetensors.index.json`, or a .safetensors file. */
export function openSafetensors(path: string): WeightSource {
  let files: SafetensorsFile[];
  if (statSync(path).isFile()) files = [new SafetensorsFile(path)];
  else if (existsSync(join(path, "model.safetensors"))) files = [new SafetensorsFile(join(path, "model.safetensors"))];
  else if (existsSync(join(path, INDEX))) files = openShards(path);
  else throw new InputError(`${path}: no model.safetensors or ${INDEX}`, undefined, { code: "WF402" });
  const where = new Map<string, SafetensorsFile>();
  for (const f of files)
    for (const n of f.entries.keys()) {
      const other = where.get(n);
      if (other) throw new InputError(`${INDEX}: tensor ${quoted(n)} is in both shard ${quoted(basename(other.path))} and shard ${quoted(basename(f.path))}`, undefined, { code: "WF407" });
      where.set(n, f);
    }
  return {
    description: path,
    names: () => [...where.keys()],
    info: (n) => where.get(n)?.entries.get(n),
    read: (n) => where.get(n)!.read(n),
  };
}
