// Reader for GGUF, llama.cpp's checkpoint format (versions 2 and 3, little-endian):
//   "GGUF", u32 version, u64 tensor count, u64 metadata count,
//   metadata: (string key, u32 value type, value)*   — strings are u64 length + UTF-8 bytes
//   tensor infos: (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset)*
//   padding to `general.alignment` (default 32), then the data section; offsets are relative to it.
// dims are in ggml order: dims[0] is the contiguous one, so a row-major [out, in] matrix has dims
// [in, out]. Every count and length in the header is checked against the bytes that remain
// before anything is allocated from it, and every tensor against the data section: sorted by
// offset, the tensors cover it exactly, each starting at the previous one's end padded to the
// alignment, and nothing follows the last but that padding.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import { type Code, InputError } from "../diagnostics.js";
import { GGML_TYPES } from "./ggml-quants.js";
import { quoted } from "./source.js";

/** Metadata value types. */
export const GGUF_TYPE = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

/** A metadata value type's name for messages (u32, f32, string, ...). */
export const ggufTypeName = (type: number) => Object.entries(GGUF_TYPE).find(([, id]) => id === type)?.[0].toLowerCase() ?? `type ${type}`;

/** The integer value types. */
export const GGUF_INTEGER_TYPES: ReadonlySet<number> = new Set([GGUF_TYPE.U8, GGUF_TYPE.I8, GGUF_TYPE.U16, GGUF_TYPE.I16, GGUF_TYPE.U32, GGUF_TYPE.I32, GGUF_TYPE.U64, GGUF_TYPE.I64]);

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufKV {
  readonly type: number;
  /** For arrays, the element type. */
  readonly itemType?: number;
  readonly value: GgufValue;
}

/** A metadata value and its type on one line, for messages: `-5 (i32)`, `"wide" (string)`, `an array of 3 u32`. */
export function ggufValueText(e: GgufKV): string {
  const v = e.value;
  if (Array.isArray(v)) return `an array of ${v.length} ${ggufTypeName(e.itemType ?? GGUF_TYPE.ARRAY)}`;
  const s = typeof v === "string" ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v);
  return `${s} (${ggufTypeName(e.type)})`;
}

export interface GgufTensor {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous dimension. */
  readonly dims: readonly number[];
  readonly type: number;
  /** Byte offset from the start of the data section. */
  readonly offset: number;
  readonly bytes: number;
  readonly elements: number;
}

export interface GgufHeader {
  /** The file's name, for messages. */
  readonly file: string;
  readonly version: number;
  readonly metadata: Map<string, GgufKV>;
  readonly tensors: Map<string, GgufTensor>;
  readonly alignment: number;
  /** Absolute byte offset of the data section. */
  readonly dataStart: number;
  /** A tensor's bytes (for the small tensors a config is read from, e.g. rope factors). */
  readonly data: (t: GgufTensor) => Buffer;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
const MAX_ARRAY_NESTING = 8;
/** Fewest bytes a value of each type takes (arrays: item type + count; strings: the length). */
const MIN_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8 };

/** The header needs bytes past the prefix read so far (only when reading a prefix). */
class NeedMore {
  constructor(readonly upTo: number) {}
}

class Cursor {
  pos = 0;
  private readonly decoder = new TextDecoder();
  /** `buf` holds the first bytes of a file of `size` bytes. */
  constructor(readonly buf: Buffer, readonly size: number, readonly file: string) {}

  get left(): number {
    return this.size - this.pos;
  }

  fail(message: string, code: Code = "WF403"): never {
    throw new InputError(`${this.file}: ${message}`, undefined, { code });
  }

  need(n: number, what: string) {
    if (n > this.left) this.fail(`truncated ${what} at byte ${this.pos} (needs ${n} bytes, ${this.left} left)`);
    if (this.pos + n > this.buf.length) throw new NeedMore(this.pos + n);
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A u64 count of items of at least `each` bytes, checked against the bytes left. */
  count(what: string, each: number): number {
    const n = this.u64(what);
    if (n * BigInt(each) > BigInt(this.left)) this.fail(`${what} ${n} cannot fit in the remaining ${this.left} bytes`);
    return Number(n);
  }

  string(what: string): string {
    const n = this.u64(`${what} length`);
    if (n > BigInt(this.left)) this.fail(`${what} length ${n} runs past the end of the file (${this.left} bytes left)`);
    this.need(Number(n), what);
    const s = this.decoder.decode(this.buf.subarray(this.pos, this.pos + Number(n)));
    this.pos += Number(n);
    return s;
  }

  value(type: number, what: string, depth = 0): GgufValue {
    const b = this.buf;
    const scalar = (n: number, read: (at: number) => GgufValue) => {
      this.need(n, what);
      const v = read(this.pos);
      this.pos += n;
      return v;
    };
    switch (type) {
      case GGUF_TYPE.U8: return scalar(1, (at) => b.readUInt8(at));
      case GGUF_TYPE.I8: return scalar(1, (at) => b.readInt8(at));
      case GGUF_TYPE.U16: return scalar(2, (at) => b.readUInt16LE(at));
      case GGUF_TYPE.I16: return scalar(2, (at) => b.readInt16LE(at));
      case GGUF_TYPE.U32: return scalar(4, (at) => b.readUInt32LE(at));
      case GGUF_TYPE.I32: return scalar(4, (at) => b.readInt32LE(at));
      case GGUF_TYPE.F32: return scalar(4, (at) => (depth ? b.readFloatLE(at) : shortestF32(b.readFloatLE(at))));
      case GGUF_TYPE.BOOL: return scalar(1, (at) => b[at] !== 0);
      case GGUF_TYPE.U64: return scalar(8, (at) => safe(b.readBigUInt64LE(at)));
      case GGUF_TYPE.I64: return scalar(8, (at) => safe(b.readBigInt64LE(at)));
      case GGUF_TYPE.F64: return scalar(8, (at) => b.readDoubleLE(at));
      case GGUF_TYPE.STRING: return this.string(what);
      case GGUF_TYPE.ARRAY: {
        if (depth >= MAX_ARRAY_NESTING) this.fail(`${what} nests arrays more than ${MAX_ARRAY_NESTING} deep`);
        const item = this.u32(`${what} array type`);
        if (MIN_BYTES[item] === undefined) this.fail(`${what} is an array of unknown value type ${item}`);
        const n = this.count(`${what} array length`, MIN_BYTES[item]);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(item, what, depth + 1);
        return out;
      }
      default:
        return this.fail(`${what} has unknown value type ${type}`);
    }
  }
}

/** A u64/i64 as a number where that is exact, else a bigint. */
const safe = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** The shortest decimal that rounds to the same f32 (an f32 1e-6 reads as 1e-6, as config.json would say). */
export function shortestF32(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let p = 1; p < 10; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

/** Parses and checks the header of a GGUF file of `size` bytes whose first bytes are `buf`. */
function parseHeader(buf: Buffer, size: number, file: string): Omit<GgufHeader, "data"> {
  const c: Cursor = new Cursor(buf, size, file);
  c.need(4, "header (magic)");
  const magic = buf.subarray(0, 4).toString("latin1");
  if (magic !== "GGUF") c.fail(`not a GGUF file (magic ${JSON.stringify(magic)}, expected "GGUF")`);
  c.pos = 4;
  const version = c.u32("header (version)");
  if (version !== 2 && version !== 3) {
    if (version === 0x02000000 || version === 0x03000000) c.fail(`big-endian GGUF is not supported`);
    c.fail(`unsupported GGUF version ${version} (2 and 3 are supported)`);
  }
  const nTensors = c.count("tensor count", 8 + 4 + 4 + 8);
  const nKV = c.count("metadata count", 8 + 4 + 1);

  const metadata = new Map<string, GgufKV>();
  for (let i = 0; i < nKV; i++) {
    const key = c.string(`metadata key ${i}`);
    if (metadata.has(key)) c.fail(`duplicate metadata key ${quoted(key)}`);
    const type = c.u32(`metadata ${quoted(key)} type`);
    const at = c.pos;
    const value = c.value(type, `metadata ${quoted(key)}`);
    metadata.set(key, type === GGUF_TYPE.ARRAY ? { type, itemType: buf.readUInt32LE(at), value } : { type, value });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al) {
    const v = al.value;
    if (!GGUF_INTEGER_TYPES.has(al.type) || typeof v !== "number" || v <= 0 || v > 2 ** 30 || (v & (v - 1)) !== 0)
      c.fail(`general.alignment ${ggufValueText(al)} is not a power of two`, "WF408");
    alignment = v;
  }

  const infos: { name: string; dims: number[]; type: number; offset: bigint; elements: number }[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`tensor ${i} name`);
    const q = quoted(name);
    if (seen.has(name)) c.fail(`duplicate tensor name ${q}`);
    seen.add(name);
    const nd = c.u32(`tensor ${q} dimension count`);
    if (nd > MAX_DIMS) c.fail(`tensor ${q} has ${nd} dimensions (at most ${MAX_DIMS})`);
    const big: bigint[] = [];
    for (let d = 0; d < nd; d++) big.push(c.u64(`tensor ${q} dims`));
    if (big.includes(0n)) c.fail(`tensor ${q} has dims [${big.join(", ")}]; every dimension must be at least 1`, "WF405");
    const elements = big.reduce((a, b) => a * b, 1n);
    if (elements > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor ${q} dims [${big.join(", ")}] overflow (${elements} elements)`, "WF405");
    const type = c.u32(`tensor ${q} type`);
    if (!GGML_TYPES[type]) c.fail(`tensor ${q} has unknown type ${type}`, "WF404");
    const offset = c.u64(`tensor ${q} offset`);
    infos.push({ name, dims: big.map(Number), type, offset, elements: Number(elements) });
  }

  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const dataLen = Math.max(0, size - dataStart);
  const tensors = new Map<string, GgufTensor>();
  for (const t of infos) {
    const g = GGML_TYPES[t.type];
    const q = quoted(t.name);
    const row = t.dims[0] ?? 1;
    if (row % g.block) c.fail(`tensor ${q} has rows of ${row} elements, not a multiple of ${g.name}'s block of ${g.block}`, "WF405");
    if (t.offset % BigInt(alignment)) c.fail(`tensor ${q} offset ${t.offset} is not a multiple of the alignment ${alignment}`, "WF406");
    const bytes = (BigInt(t.elements) / BigInt(g.block)) * BigInt(g.bytes);
    const end = t.offset + bytes;
    if (end > BigInt(dataLen))
      c.fail(`tensor ${q} ${g.name}[${t.dims.join(", ")}] data [${t.offset}, ${end}) runs past the end of the data (${dataLen} bytes); the file may be truncated`, "WF406");
    tensors.set(t.name, { name: t.name, dims: t.dims, type: t.type, offset: Number(t.offset), bytes: Number(bytes), elements: t.elements });
  }
  checkTiling(c, [...tensors.values()], alignment, dataLen);
  return { file, version, metadata, tensors, alignment, dataStart };
}

/**
 * Sorted by offset, each tensor starts where the previous one ends, padded to the alignment (the
 * first at 0), and the data section ends with the last one or its padding, as llama.cpp lays them out.
 */
function checkTiling(c: Cursor, tensors: GgufTensor[], alignment: number, dataLen: number) {
  const pad = (n: number) => Math.ceil(n / alignment) * alignment;
  const sorted = tensors.sort((a, b) => a.offset - b.offset);
  let at = 0;
  let prev: GgufTensor | undefined;
  for (const t of sorted) {
    if (t.offset > pad(at))
      c.fail(`bytes [${at}, ${t.offset}) of the data section belong to no tensor (a gap before tensor ${quoted(t.name)}${prev ? `, after ${quoted(prev.name)}` : ""})`, "WF406");
    if (t.offset < at && prev)
      c.fail(`tensor ${quoted(t.name)} data [${t.offset}, ${t.offset + t.bytes}) overlaps tensor ${quoted(prev.name)} data [${prev.offset}, ${at})`, "WF406");
    at = t.offset + t.bytes;
    prev = t;
  }
  if (dataLen > pad(at))
    c.fail(`the tensors cover ${at} bytes of data (${pad(at)} with padding) but the data section holds ${dataLen} (${dataLen - pad(at)} trailing byte${dataLen - pad(at) === 1 ? "" : "s"}${prev ? ` after tensor ${quoted(prev.name)}` : ""})`, "WF406");
}

/** Parses a whole GGUF file held in memory. */
export function parseGguf(buf: Buffer, file = "model.gguf"): GgufHeader {
  const h = parseHeader(buf, buf.length, file);
  return { ...h, data: (t) => buf.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.bytes) };
}

/** Reads only the header of a GGUF file (metadata and tensor infos, not the data). */
export function readGgufHeader(path: string): GgufHeader {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new InputError(`${basename(path)}: cannot read the checkpoint file (${(e as Error).message})`, undefined, { code: "WF402" });
  }
  try {
    const size = fstatSync(fd).size;
    let want = Math.min(size, 1 << 20);
    for (;;) {
      const buf = Buffer.alloc(want);
      readSync(fd, buf, 0, want, 0);
      try {
        const h = parseHeader(buf, size, basename(path));
        return { ...h, data: (t) => readBytes(path, h.dataStart + t.offset, t.bytes) };
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        want = Math.min(size, Math.max(2 * want, e.upTo));
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** `n` bytes of the file at `path` from byte `at`. */
function readBytes(path: string, at: number, n: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, at);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A GGUF metadata value, if present. */
export function meta(h: GgufHeader, key: string): GgufValue | undefined {
  return h.metadata.get(key)?.value;
}

