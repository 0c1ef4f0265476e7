// GGUF writer (version 3): a checkpoint (Hugging Face names) → a .gguf llama.cpp loads, for the
// architectures weights/gguf-arch.ts maps (llama, qwen2, qwen3, gemma, gemma2, phi3, gpt2). The
// inverse of weights/gguf.ts, following llama.cpp's convert_hf_to_gguf.py: names and layouts
// mapped (LLaMA's q/k rows permuted, GPT-2's Conv1D weights transposed, Gemma's norm gains + 1),
// each tensor's shape checked against the config, config → metadata, rope factors the converter
// computes as tensors (llama3, LongRoPE), 1-D tensors, norms and position embeddings kept F32,
// matrices in the chosen type (F16 where a row is not a whole number of 32-blocks, as the
// converter falls back). llama.cpp refuses a model without a tokenizer, so a minimal synthetic
// vocabulary of the right size is written unless a real one is given.

import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { floatToHalf } from "../../ir/half.js";
import { quantizeQ4_0, quantizeQ8 } from "../../ir/quant.js";
import { type Code, InputError } from "../diagnostics.js";
import { GGML_TYPES, GGML_TYPE_ID } from "../weights/ggml-quants.js";
import { type ArchSpec, type GgufArch, type Layout, type Sizes, archList, archSpec, checkHfTensor, ggufName, missingTensor, permuteRope, plusOne, transpose } from "../weights/gguf-arch.js";
import type { MetaType } from "../weights/gguf-archs/types.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_TYPE, type GgufValue } from "../weights/gguf.js";
import type { WeightSource } from "../weights/source.js";

export type GgufFileType = "f32" | "f16" | "q8_0" | "q4_0";

export interface GgufKVEntry {
  readonly key: string;
  readonly type: number;
  /** For arrays: the element type (arrays of scalars or strings). */
  readonly itemType?: number;
  readonly value: GgufValue;
}

export interface GgufTensorEntry {
  readonly name: string;
  /** ggml order (dims[0] contiguous). */
  readonly dims: readonly number[];
  readonly type: number;
}

/** Bytes a tensor's data takes. */
export function ggufTensorBytes(t: GgufTensorEntry): number {
  const g = GGML_TYPES[t.type];
  return (t.dims.reduce((a, b) => a * b, 1) / g.block) * g.bytes;
}

class ByteWriter {
  private readonly chunks: Buffer[] = [];
  length = 0;
  raw(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  private num(n: number, write: (b: Buffer) => void) {
    const b = Buffer.alloc(n);
    write(b);
    this.raw(b);
  }
  u32(v: number) {
    this.num(4, (b) => b.writeUInt32LE(v));
  }
  u64(v: number | bigint) {
    this.num(8, (b) => b.writeBigUInt64LE(BigInt(v)));
  }
  string(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.raw(b);
  }
  value(type: number, v: GgufValue, itemType?: number) {
    const n = v as number;
    switch (type) {
      case GGUF_TYPE.U8: return this.num(1, (b) => b.writeUInt8(n));
      case GGUF_TYPE.I8: return this.num(1, (b) => b.writeInt8(n));
      case GGUF_TYPE.U16: return this.num(2, (b) => b.writeUInt16LE(n));
      case GGUF_TYPE.I16: return this.num(2, (b) => b.writeInt16LE(n));
      case GGUF_TYPE.U32: return this.num(4, (b) => b.writeUInt32LE(n));
      case GGUF_TYPE.I32: return this.num(4, (b) => b.writeInt32LE(n));
      case GGUF_TYPE.F32: return this.num(4, (b) => b.writeFloatLE(n));
      case GGUF_TYPE.BOOL: return this.num(1, (b) => b.writeUInt8(v ? 1 : 0));
      case GGUF_TYPE.U64: return this.num(8, (b) => b.writeBigUInt64LE(BigInt(n)));
      case GGUF_TYPE.I64: return this.num(8, (b) => b.writeBigInt64LE(BigInt(n)));
      case GGUF_TYPE.F64: return this.num(8, (b) => b.writeDoubleLE(n));
      case GGUF_TYPE.STRING: return this.string(String(v));
      case GGUF_TYPE.ARRAY: {
        if (itemType === undefined || itemType === GGUF_TYPE.ARRAY || !Array.isArray(v)) throw new Error(`GGUF arrays are written from a list and a scalar or string item type`);
        this.u32(itemType);
        this.u64(v.length);
        for (const x of v) this.value(itemType, x);
        return;
      }
      default:
        throw new Error(`unknown GGUF value type ${type}`);
    }
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n) this.raw(Buffer.alloc(n));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * The bytes before the data section: header, metadata, tensor infos (each tensor's data laid out
 * in order, every one starting at a multiple of the alignment), padded to the alignment.
 */
export function encodeGgufHeader(kv: readonly GgufKVEntry[], tensors: readonly GgufTensorEntry[], opts: { version?: number; alignment?: number } = {}): { header: Buffer; offsets: number[] } {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const w = new ByteWriter();
  w.raw(Buffer.from("GGUF", "latin1"));
  w.u32(opts.version ?? 3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const e of kv) {
    w.string(e.key);
    w.u32(e.type);
    w.value(e.type, e.value, e.itemType);
  }
  const offsets: number[] = [];
  let at = 0;
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(at);
    offsets.push(at);
    at += Math.ceil(ggufTensorBytes(t) / alignment) * alignment;
  }
  w.pad(alignment);
  return { header: w.bytes(), offsets };
}

/** A tensor's data in a ggml type, from float32 values in ggml order (rows of dims[0]). */
export function encodeTensor(w: Float32Array, dims: readonly number[], type: number): Buffer {
  const K = dims[0] ?? 1, N = w.length / K;
  switch (GGML_TYPES[type]?.name) {
    case "F32":
      return Buffer.from(w.buffer, w.byteOffset, w.byteLength);
    case "F16": {
      const h = new Uint16Array(w.length);
      for (let i = 0; i < w.length; i++) h[i] = floatToHalf(w[i]);
      return Buffer.from(h.buffer);
    }
    case "Q8_0": {
      const q = quantizeQ8(w, N, K), out = Buffer.alloc((w.length / 32) * 34);
      for (let b = 0; b < w.length / 32; b++) {
        out.writeUInt16LE(floatToHalf(q.scales[b]), b * 34);
        out.set(new Uint8Array(q.codes.buffer, b * 32, 32), b * 34 + 2);
      }
      return out;
    }
    case "Q4_0": {
      const q = quantizeQ4_0(w, N, K), out = Buffer.alloc((w.length / 32) * 18);
      for (let b = 0; b < w.length / 32; b++) {
        out.writeUInt16LE(floatToHalf(q.scales[b]), b * 18);
        for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = q.codes[b * 32 + j] | (q.codes[b * 32 + j + 16] << 4);
      }
      return out;
    }
    default:
      throw new Error(`GGUF export writes F32, F16, Q8_0 and Q4_0, not type ${type}`);
  }
}

/** A tokenizer in llama.cpp's metadata form. */
export interface GgufVocab {
  /** tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece). */
  readonly model: "gpt2" | "llama";
  readonly tokens: readonly string[];
  readonly scores?: readonly number[];
  /** llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte. */
  readonly types?: readonly number[];
  /** BPE merges ("a b"); llama.cpp requires the key for "gpt2" vocabularies. */
  readonly merges?: readonly string[];
  readonly pre?: string;
}

const TOKEN = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

/** GPT-2's byte → printable character table (bytes_to_unicode). */
function byteChars(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/**
 * A synthetic vocabulary of `size` tokens for random-weight models: byte tokens first (as many as
 * fit), the special tokens at their ids, unique filler names for the rest.
 */
export function syntheticVocab(model: "gpt2" | "llama", size: number, special: { bos: number; eos: number }): GgufVocab {
  const tokens: string[] = [], types: number[] = [], scores: number[] = [];
  const bytes = byteChars();
  for (let i = 0; i < size; i++) {
    if (model === "gpt2") {
      tokens.push(i < 256 ? bytes[i] : `tok${i}`);
      types.push(TOKEN.NORMAL);
      scores.push(0);
    } else {
      const b = i - 3;
      tokens.push(i === 0 ? "<unk>" : b >= 0 && b < 256 ? `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>` : `▁t${i}`);
      types.push(i === 0 ? TOKEN.UNKNOWN : b >= 0 && b < 256 ? TOKEN.BYTE : TOKEN.NORMAL);
      scores.push(b >= 256 ? -i : 0);
    }
  }
  const names = model === "gpt2" ? { bos: "<|startoftext|>", eos: "<|endoftext|>" } : { bos: "<s>", eos: "</s>" };
  for (const k of ["bos", "eos"] as const) {
    tokens[special[k]] = special.bos === special.eos ? names.eos : names[k];
    types[special[k]] = TOKEN.CONTROL;
    scores[special[k]] = 0;
  }
  return { model, tokens, types, scores, merges: model === "gpt2" ? [] : undefined, pre: model === "gpt2" ? "gpt-2" : undefined };
}

export interface WriteGgufOptions {
  readonly arch: GgufArch;
  /** config.json of the checkpoint. */
  readonly config: Record<string, unknown>;
  readonly weights: WeightSource;
  readonly type: GgufFileType;
  /** general.name (default: the architecture). */
  readonly name?: string;
  /** A real tokenizer; default a synthetic one of the embedding's size. */
  readonly vocab?: GgufVocab;
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface WriteGgufResult {
  readonly tensors: { name: string; type: string; dims: readonly number[] }[];
  /** Checkpoint tensors llama.cpp has no use for (e.g. rotary inv_freq buffers, Gemma's lm_head). */
  readonly skipped: string[];
}

/** llama.cpp's general.file_type for each output type. */
const FILE_TYPE: Record<GgufFileType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

interface Planned {
  /** The checkpoint tensor, or the values of one computed from the config. */
  readonly hf?: string;
  readonly data?: Float32Array;
  readonly name: string;
  readonly layout: Layout;
  readonly dims: number[];
  readonly type: number;
  readonly rank: number[];
}

/** Writes `path` (through a temporary file renamed into place: never a half-written file). */
export function writeGguf(path: string, opts: WriteGgufOptions): WriteGgufResult {
  const spec = archSpec(opts.arch);
  if (!spec) throw new InputError(`GGUF export supports ${archList()}, not '${opts.arch}'`);
  const src = opts.weights;
  const fail = (m: string, code?: Code): never => {
    throw new InputError(`${src.description}: ${m}`, undefined, { code });
  };

  // the token embedding's rows are the vocabulary the other shapes are checked against
  const mapped = src.names().map((hf) => ({ hf, m: spec.dropped?.test(hf) ? undefined : ggufName(spec, hf) }));
  const embd = mapped.find((e) => e.m?.name === "token_embd.weight");
  if (!embd) return fail(`no token embedding to export (${spec.tensors[0].hf})`, "WF401");
  const sizes = spec.sizes(opts.config, src.info(embd.hf)!.shape[0]);
  const cfg = configValues(opts.arch, spec, opts.config, sizes);

  // which tensors, under which names, in which layout and type
  const plan: Planned[] = cfg.tensors.map((t, i) => ({ data: t.data, name: t.name, layout: "same", dims: [t.data.length], type: GGML_TYPE_ID.F32, rank: [-1, 0, i] }));
  const skipped: string[] = [];
  const order = spec.tensors.map((r) => r.gguf);
  for (const { hf, m } of mapped) {
    if (!m) {
      skipped.push(hf);
      continue;
    }
    if (plan.some((p) => p.name === m.name)) fail(`'${hf}' and another tensor both map to GGUF '${m.name}'`);
    const shape = [...src.info(hf)!.shape];
    checkHfTensor(src.description, spec, m, hf, shape, sizes);
    const dims = m.layout === "transpose" && shape.length === 2 ? shape : shape.reverse();
    const block = /^blk\.(\d+)\./.exec(m.name);
    const rule = order.indexOf(m.name.replace(/^blk\.\d+\./, "blk.{i}."));
    const rank = block ? [1, Number(block[1]), rule] : [/^(token|position)_embd\./.test(m.name) ? 0 : 2, 0, rule];
    plan.push({ hf, name: m.name, layout: m.layout, dims, type: tensorType(m.name, dims, opts.type), rank });
  }
  const missing = missingTensor(spec, sizes.layers, (n) => plan.some((p) => p.name === n));
  if (missing) fail(`no tensor '${missing.hf}' (GGUF ${opts.arch} needs it as '${missing.gguf}')`, "WF401");
  plan.sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.rank[2] - b.rank[2]);

  const kv = metadata(opts, cfg.values, sizes.vocab);
  const { header, offsets } = encodeGgufHeader(kv, plan);

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, header);
    let at = 0;
    plan.forEach((p, i) => {
      let w = p.data ?? src.read(p.hf!);
      if (p.layout === "transpose" && p.dims.length === 2) w = transpose(w, p.dims[0], p.dims[1]);
      if (p.layout === "rope-q" || p.layout === "rope-k")
        w = permuteRope(w, p.dims[p.dims.length - 1], p.layout === "rope-q" ? sizes.heads : sizes.kvHeads, "gguf", src.description, p.hf!);
      if (p.layout === "plus-one") w = plusOne(w, 1);
      const data = encodeTensor(w, p.dims, p.type);
      if (offsets[i] > at) writeSync(fd, Buffer.alloc(offsets[i] - at));
      writeSync(fd, data);
      at = offsets[i] + data.length;
      opts.onProgress?.(i + 1, plan.length, p.name);
    });
    const end = Math.ceil(at / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
    if (end > at) writeSync(fd, Buffer.alloc(end - at));
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return { tensors: plan.map((p) => ({ name: p.name, type: GGML_TYPES[p.type].name, dims: p.dims })), skipped };
}

/** The converter's choice: F32 for 1-D tensors, norms, position embeddings and biases; else the file's type. */
function tensorType(name: string, dims: readonly number[], type: GgufFileType): number {
  if (dims.length <= 1 || name.endsWith("_norm.weight") || name.startsWith("position_embd.") || !name.endsWith(".weight")) return GGML_TYPE_ID.F32;
  if (type === "f32") return GGML_TYPE_ID.F32;
  if (type === "f16" || dims[0] % 32) return GGML_TYPE_ID.F16;
  return GGML_TYPE_ID[type.toUpperCase()];
}

type MetaValues = Map<string, { type: MetaType; value: number | string }>;

/**
 * The architecture's metadata (by key after `<arch>.`) from the config: each rule's key, its
 * fallback where the config has no value, then what the family's hook adds (rope scaling,
 * derived keys) with the tensors it computes.
 */
function configValues(arch: GgufArch, spec: ArchSpec, config: Record<string, unknown>, sizes: Sizes): { values: MetaValues; tensors: { name: string; data: Float32Array }[] } {
  const fail = (m: string, code: Code): never => {
    throw new InputError(m, undefined, { code });
  };
  const values: MetaValues = new Map();
  for (const r of spec.config) {
    const key = r.hf.find((k) => config[k] !== undefined && config[k] !== null);
    let v = key === undefined ? undefined : config[key];
    if (v === undefined) {
      if (r.required) fail(`config has no ${r.hf.map((k) => `'${k}'`).join(" or ")} (needed for GGUF ${arch}.${r.gguf})`, "WF301");
      if (r.fallback === undefined) continue;
      v = typeof r.fallback === "function" ? r.fallback(sizes) : r.fallback;
    }
    const ok = typeof v === "number" && (r.type === "u32" ? Number.isInteger(v) && v >= 0 && v < 2 ** 32 : Number.isFinite(v));
    if (!ok) fail(`config ${key} should be ${r.type === "u32" ? "a non-negative integer" : "a finite number"} (GGUF ${arch}.${r.gguf} is ${r.type}), found ${JSON.stringify(v)}`, "WF302");
    values.set(r.gguf, { type: r.type, value: v as number });
  }
  const tensors: { name: string; data: Float32Array }[] = [];
  spec.exportConfig?.({
    arch,
    config,
    sizes,
    set: (key, type, value) => void values.set(key, { type, value }),
    has: (key) => values.has(key),
    tensor: (name, data) => void tensors.push({ name, data }),
    fail,
  });
  return { values, tensors };
}

const META_TYPE: Record<MetaType, number> = { u32: GGUF_TYPE.U32, f32: GGUF_TYPE.F32, string: GGUF_TYPE.STRING };

function metadata(opts: WriteGgufOptions, values: MetaValues, vocabSize: number): GgufKVEntry[] {
  const { arch, config } = opts;
  const S = (key: string, value: string): GgufKVEntry => ({ key, type: GGUF_TYPE.STRING, value });
  const U = (key: string, value: number): GgufKVEntry => ({ key, type: GGUF_TYPE.U32, value });
  const kv: GgufKVEntry[] = [S("general.architecture", arch), S("general.name", opts.name ?? arch), U("general.file_type", FILE_TYPE[opts.type]), U("general.quantization_version", 2)];
  for (const [k, v] of values) kv.push({ key: `${arch}.${k}`, type: META_TYPE[v.type], value: v.value });

  const id = (v: unknown) => (typeof v === "number" ? v : Array.isArray(v) && typeof v[0] === "number" ? (v[0] as number) : undefined);
  const eos = id(config.eos_token_id) ?? (arch === "gpt2" ? vocabSize - 1 : 2);
  const bos = id(config.bos_token_id) ?? (arch === "gpt2" ? eos : 1);
  for (const [k, v] of [["bos", bos], ["eos", eos]] as const)
    if (!Number.isInteger(v) || v < 0 || v >= vocabSize) throw new InputError(`${k}_token_id ${v} is outside the vocabulary of ${vocabSize}`);
  const vocab = opts.vocab ?? syntheticVocab(arch === "gpt2" ? "gpt2" : "llama", vocabSize, { bos, eos });
  if (vocab.tokens.length !== vocabSize) throw new InputError(`the tokenizer has ${vocab.tokens.length} tokens, the embedding ${vocabSize} rows`);
  kv.push(S("tokenizer.ggml.model", vocab.model));
  if (vocab.pre) kv.push(S("tokenizer.ggml.pre", vocab.pre));
  kv.push({ key: "tokenizer.ggml.tokens", type: GGUF_TYPE.ARRAY, itemType: GGUF_TYPE.STRING, value: [...vocab.tokens] });
  if (vocab.scores) kv.push({ key: "tokenizer.ggml.scores", type: GGUF_TYPE.ARRAY, itemType: GGUF_TYPE.F32, value: [...vocab.scores] });
  if (vocab.types) kv.push({ key: "tokenizer.ggml.token_type", type: GGUF_TYPE.ARRAY, itemType: GGUF_TYPE.I32, value: [...vocab.types] });
  if (vocab.merges) kv.push({ key: "tokenizer.ggml.merges", type: GGUF_TYPE.ARRAY, itemType: GGUF_TYPE.STRING, value: [...vocab.merges] });
  kv.push(U("tokenizer.ggml.bos_token_id", bos), U("tokenizer.ggml.eos_token_id", eos));
  if (vocab.model === "llama" && bos !== 0 && eos !== 0) kv.push(U("tokenizer.ggml.unknown_token_id", 0));
  return kv;
}
