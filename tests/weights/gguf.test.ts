// GGUF import and export: every metadata type, round trips through the writer that compile to
// the same logits as the safetensors path, LLaMA's q/k permutation and GPT-2's transposed
// Conv1D layout, ggml's dequantizers on hand-checked blocks, lossless Q8_0 / Q4_0 re-quantization,
// a Q8_0 file written independently in Python (tests/fixtures/make_gguf.py), and malformed files.

import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { InputError } from "../../compiler/diagnostics.js";
import { type GgufKVEntry, encodeGgufHeader, encodeTensor, ggufTensorBytes, writeGguf } from "../../compiler/export/gguf.js";
import { loadProgram, openWeights, readHfConfig } from "../../compiler/load.js";
import { passes, runPipeline, withQuantization } from "../../compiler/passes/manager.js";
import { GGML_TYPE_ID, dequantize } from "../../compiler/weights/ggml-quants.js";
import { GGUF_TYPE, type GgufHeader, openGguf, parseGguf, readGgufHeader } from "../../compiler/weights/gguf.js";
import { memoryWeights } from "../../compiler/weights/memory.js";
import { floatToHalf, halfToFloat } from "../../ir/half.js";
import { quantizeQ4_0, quantizeQ4_1, quantizeQ8 } from "../../ir/quant.js";
import type { Program } from "../../ir/types.js";
import { compileInMemory, fixtureDir, readExpected, readFixture, relError, rng, root } from "../helpers.js";

const T = GGUF_TYPE;
const tmp = () => mkdtempSync(join(tmpdir(), "wf-gguf-"));
const example = (name: string) => join(root, "examples", `${name}.wf`);

interface RawTensor {
  name: string;
  dims: number[];
  type: number;
  data: Uint8Array;
}

/** A GGUF file from metadata and tensors with their bytes. */
function ggufBytes(kv: GgufKVEntry[], tensors: RawTensor[], opts: { version?: number } = {}): Buffer {
  const { header, offsets } = encodeGgufHeader(kv, tensors, opts);
  const size = tensors.length ? offsets[offsets.length - 1] + tensors[tensors.length - 1].data.length : 0;
  const data = Buffer.alloc(size);
  tensors.forEach((t, i) => data.set(t.data, offsets[i]));
  return Buffer.concat([header, data]);
}

function file(bytes: Uint8Array, name = "model.gguf"): string {
  const path = join(tmp(), name);
  writeFileSync(path, bytes);
  return path;
}

const f32 = (name: string, dims: number[], values: number[]): RawTensor => ({ name, dims, type: GGML_TYPE_ID.F32, data: new Uint8Array(new Float32Array(values).buffer) });
const halfBytes = (v: number) => [floatToHalf(v) & 0xff, floatToHalf(v) >> 8];

/** Little-endian pieces for hand-made (malformed) headers. */
const u32 = (v: number) => Buffer.from(new Uint32Array([v]).buffer);
const u64 = (v: bigint | number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
const head = (nTensors: bigint | number, nKV: bigint | number, version = 3) => Buffer.concat([Buffer.from("GGUF"), u32(version), u64(nTensors), u64(nKV)]);

const parse = (b: Buffer) => () => parseGguf(b, "bad.gguf");

async function logits(p: Program, ids: number[]): Promise<Float32Array> {
  const { model } = await compileInMemory(p);
  return model.run("forward", { ids }).logits;
}

describe("GGUF container", () => {
  it("reads every metadata value type, v2 and v3", () => {
    const kv: GgufKVEntry[] = [
      { key: "u8", type: T.U8, value: 250 },
      { key: "i8", type: T.I8, value: -7 },
      { key: "u16", type: T.U16, value: 65000 },
      { key: "i16", type: T.I16, value: -30000 },
      { key: "u32", type: T.U32, value: 4e9 },
      { key: "i32", type: T.I32, value: -2e9 },
      { key: "f32", type: T.F32, value: 1e-6 },
      { key: "bool", type: T.BOOL, value: true },
      { key: "str", type: T.STRING, value: "héllo ▁" },
      { key: "u64", type: T.U64, value: 2 ** 53 + 2 },
      { key: "i64", type: T.I64, value: -(2 ** 40) },
      { key: "f64", type: T.F64, value: Math.PI },
      { key: "arr.str", type: T.ARRAY, itemType: T.STRING, value: ["a", "", "ccc"] },
      { key: "arr.i32", type: T.ARRAY, itemType: T.I32, value: [1, -2, 3] },
      { key: "arr.empty", type: T.ARRAY, itemType: T.F32, value: [] },
    ];
    for (const version of [2, 3]) {
      const h = parseGguf(ggufBytes(kv, [], { version }));
      expect(h.version).toBe(version);
      const v = Object.fromEntries([...h.metadata].map(([k, e]) => [k, e.value]));
      expect(v).toEqual({
        u8: 250, i8: -7, u16: 65000, i16: -30000, u32: 4e9, i32: -2e9,
        f32: 1e-6, // the f32 nearest 1e-6 reads back as the shortest decimal, as config.json says it
        bool: true, str: "héllo ▁", u64: BigInt(2 ** 53 + 2), i64: -(2 ** 40), f64: Math.PI,
        "arr.str": ["a", "", "ccc"], "arr.i32": [1, -2, 3], "arr.empty": [],
      });
      expect(h.metadata.get("arr.str")!.itemType).toBe(T.STRING);
    }
  });

  it("reads nested arrays", () => {
    const b = Buffer.concat([head(0, 1), str("nested"), u32(T.ARRAY), u32(T.ARRAY), u64(2), u32(T.U8), u64(1), Buffer.from([7]), u32(T.STRING), u64(1), str("x")]);
    expect(parseGguf(b).metadata.get("nested")!.value).toEqual([[7], ["x"]]);
  });

  it("lays out tensors at the alignment (default 32, or general.alignment) and reads F32, F16 and BF16", () => {
    const tensors: RawTensor[] = [
      f32("a", [3], [1.5, -2, 0.25]),
      { name: "b", dims: [2], type: GGML_TYPE_ID.F16, data: new Uint8Array([...halfBytes(1), ...halfBytes(-2.5)]) },
      { name: "c", dims: [2], type: GGML_TYPE_ID.BF16, data: new Uint8Array([0xc0, 0x3f, 0x00, 0xc0]) }, // 1.5, -2
    ];
    for (const alignment of [32, 64]) {
      const kv: GgufKVEntry[] = alignment === 32 ? [] : [{ key: "general.alignment", type: T.U32, value: alignment }];
      const { header, offsets } = encodeGgufHeader(kv, tensors, { alignment });
      expect(header.length % alignment).toBe(0);
      expect(offsets).toEqual([0, alignment, 2 * alignment]);
      const data = Buffer.alloc(2 * alignment + 4);
      tensors.forEach((t, i) => data.set(t.data, offsets[i]));
      const w = openGguf(file(Buffer.concat([header, data])));
      expect(Array.from(w.read("a"))).toEqual([1.5, -2, 0.25]);
      expect(Array.from(w.read("b"))).toEqual([1, -2.5]);
      expect(Array.from(w.read("c"))).toEqual([1.5, -2]);
      expect(w.info("b")).toEqual({ dtype: "F16", shape: [2], file: "model.gguf" });
    }
  });

  it("reads only the header when asked (config without the data)", () => {
    const path = join(tmp(), "big.gguf");
    const many = Array.from({ length: 40000 }, (_, i) => `token number ${i}`); // a header past the first MiB
    writeFileSync(path, ggufBytes([{ key: "tokenizer.ggml.tokens", type: T.ARRAY, itemType: T.STRING, value: many }], [f32("x", [4], [1, 2, 3, 4])]));
    const h = readGgufHeader(path);
    expect((h.metadata.get("tokenizer.ggml.tokens")!.value as string[])[39999]).toBe("token number 39999");
    expect(h.tensors.get("x")!.dims).toEqual([4]);
  });
});

describe("ggml dequantization (hand-checked blocks)", () => {
  it("Q8_0: q·d", () => {
    const block = new Uint8Array([...halfBytes(0.5), ...Array.from({ length: 32 }, (_, j) => (j - 16) & 0xff)]);
    expect(Array.from(dequantize(GGML_TYPE_ID.Q8_0, block, 32)!)).toEqual(Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5));
  });

  it("Q4_0: low nibbles are elements 0..15, high nibbles 16..31, (q − 8)·d", () => {
    // byte j = j | (15 − j) << 4
    const block = new Uint8Array([...halfBytes(0.25), ...Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4))]);
    const y = dequantize(GGML_TYPE_ID.Q4_0, block, 32)!;
    expect([y[0], y[3], y[15], y[16], y[20], y[31]]).toEqual([-2, -1.25, 1.75, 1.75, 0.75, -2]);
  });

  it("Q4_1: q·d + m", () => {
    const block = new Uint8Array([...halfBytes(0.5), ...halfBytes(-1), ...Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4))]);
    const y = dequantize(GGML_TYPE_ID.Q4_1, block, 32)!;
    expect([y[0], y[3], y[15], y[16], y[31]]).toEqual([-1, 0.5, 6.5, 6.5, -1]);
    for (let j = 0; j < 16; j++) expect([y[j], y[j + 16]]).toEqual([j * 0.5 - 1, (15 - j) * 0.5 - 1]);
  });

  it("Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes", () => {
    const sc = [1, 2, 3, 4, 5, 6, 7, 63], mn = [0, 1, 2, 3, 4, 5, 6, 33];
    // ggml's packing: bytes 0–3 scales 0–3 (+ the high 2 bits of scales 4–7), 4–7 mins 0–3 (+ of mins 4–7),
    // 8–11 the low 4 bits of scale and min 4–7
    const scales = new Uint8Array(12);
    for (let j = 0; j < 4; j++) {
      scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      scales[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
      scales[j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
    const qs = Array.from({ length: 128 }, (_, i) => (i * 7) & 0xff);
    const block = new Uint8Array([...halfBytes(0.5), ...halfBytes(0.25), ...scales, ...qs]);
    const y = dequantize(GGML_TYPE_ID.Q4_K, block, 256)!;
    // y = d·scale·q − dmin·min; e.g. element 255: sub-block 7, high nibble of byte 127 = 121 → 7: 0.5·63·7 − 0.25·33
    expect([y[0], y[33], y[100], y[130], y[200], y[255]]).toEqual([0, -0.25, 29.25, 34, 26.5, 212.25]);
    for (let e = 0; e < 256; e++) {
      const chunk = e >> 6, r = e & 63, sb = 2 * chunk + (r >> 5), byte = qs[chunk * 32 + (r & 31)];
      expect(y[e]).toBe(0.5 * sc[sb] * (r < 32 ? byte & 15 : byte >> 4) - 0.25 * mn[sb]);
    }
  });

  it("Q6_K: two halves of 128, 4 + 2 bit codes, int8 scales per 16", () => {
    const ql = Array.from({ length: 128 }, (_, i) => (i * 5) & 0xff);
    const qh = Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);
    const sc = Array.from({ length: 16 }, (_, i) => i - 8);
    const block = new Uint8Array([...ql, ...qh, ...sc.map((s) => s & 0xff), ...halfBytes(0.25)]);
    const y = dequantize(GGML_TYPE_ID.Q6_K, block, 256)!;
    // e.g. element 35: low nibble of ql[35] = 15, bits 2–3 of qh[3] = 3 → q = 63 − 32 = 31, scale sc[2] = −6
    expect([y[0], y[1], y[20], y[35], y[45], y[97], y[200], y[255]]).toEqual([64, 22, 49, -46.5, 46.5, 11, -26, -43.75]);
  });

  it("types it does not read are named in the error; unknown types are rejected when opening", () => {
    const path = file(ggufBytes([], [{ name: "w", dims: [256], type: GGML_TYPE_ID.Q5_K, data: new Uint8Array(176) }]));
    expect(openGguf(path).info("w")!.dtype).toBe("Q5_K");
    expect(() => openGguf(path).read("w")).toThrow(InputError);
    expect(() => openGguf(path).read("w")).toThrow(/tensor 'w' has type Q5_K, which wasmformer cannot read \(it reads F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K, BF16\)/);
  });
});

describe("lossless re-quantization", () => {
  const r = rng(7);
  // rows of several magnitudes, a zero block, exact ties
  const w = Float32Array.from({ length: 8 * 96 }, (_, i) => (i >= 96 && i < 128 ? 0 : r.floats(1, [0.01, 1, 30][i % 3])[0]));
  w.set(Array.from({ length: 32 }, (_, j) => (j - 16) / 8), 7 * 96);

  it("Q8_0 from GGUF dequantizes to values quantizeQ8 maps back to the same codes and scales", () => {
    const data = encodeTensor(w, [96, 8], GGML_TYPE_ID.Q8_0);
    const y = dequantize(GGML_TYPE_ID.Q8_0, data, w.length)!;
    const a = quantizeQ8(w, 8, 96), b = quantizeQ8(y, 8, 96);
    expect(Array.from(b.codes)).toEqual(Array.from(a.codes));
    expect(Array.from(b.scales)).toEqual(Array.from(a.scales));
    expect(Array.from(b.dequant)).toEqual(Array.from(y));
  });

  it("Q4_1 (int4-min): codes, f16 scales and minimums as GGUF blocks dequantize (ggml's q·d + m) to quantizeQ4_1's values", () => {
    const N = 8, K = 96, q = quantizeQ4_1(w, N, K);
    const blocks = (N * K) / 32, bytes = new Uint8Array(blocks * 20), view = new DataView(bytes.buffer);
    for (let b = 0; b < blocks; b++) {
      view.setUint16(b * 20, floatToHalf(q.scales[b]), true);
      view.setUint16(b * 20 + 2, floatToHalf(q.mins[b]), true);
      for (let j = 0; j < 16; j++) bytes[b * 20 + 4 + j] = q.codes[b * 32 + j] | (q.codes[b * 32 + j + 16] << 4);
    }
    expect(Array.from(dequantize(GGML_TYPE_ID.Q4_1, bytes, N * K)!)).toEqual(Array.from(q.dequant));
    // the block's minimum and maximum are (nearly) representable: the range is kept
    expect(Math.max(...q.codes)).toBe(15);
    expect(Math.min(...q.codes)).toBe(0);
    for (let i = 0; i < w.length; i++) expect(Math.abs(q.dequant[i] - w[i])).toBeLessThanOrEqual(q.scales[Math.floor(i / 32)] * 0.5 + 1e-3 * Math.abs(w[i]) + 1e-6);
    // ggml's Q4_1 blocks span codes 0..15, so their dequantized values map back to the same blocks
    // (a GGUF Q4_1 tensor imported under --quantize int4-min keeps its codes)
    const again = quantizeQ4_1(q.dequant, N, K);
    expect(Array.from(again.codes)).toEqual(Array.from(q.codes));
    expect(Array.from(again.scales)).toEqual(Array.from(q.scales));
    expect(Array.from(again.mins)).toEqual(Array.from(q.mins));
  });

  it("Q8_0 tensors llama.cpp's converter wrote (make_gguf.py) re-quantize to their own bytes", () => {
    const buf = readFileSync(join(fixtureDir("llama-q8_0"), "model-q8_0.gguf"));
    const h = parseGguf(buf);
    const q8 = [...h.tensors.values()].filter((t) => t.type === GGML_TYPE_ID.Q8_0);
    expect(q8.length).toBe(16);
    for (const t of q8) {
      const raw = buf.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.bytes);
      const y = dequantize(t.type, raw, t.elements)!;
      const q = quantizeQ8(y, t.elements / t.dims[0], t.dims[0]);
      expect(encodeTensor(y, t.dims, GGML_TYPE_ID.Q8_0).equals(raw)).toBe(true);
      for (let b = 0; b < t.elements / 32; b++) expect(q.scales[b]).toBe(halfToFloat(raw.readUInt16LE(b * 34)));
    }
  });

  it("Q4_0 as ggml's reference quantizer, and back without loss", () => {
    // hand-checked block: values −16..15, the largest magnitude is −16 → d = −16 / −8 = 2,
    // q = min(15, trunc(v / 2 + 8.5)): −16 → 0, −3 → 7, −1 → 8, 1 → 9, 15 → 15
    const block = Float32Array.from({ length: 32 }, (_, j) => j - 16);
    const h = quantizeQ4_0(block, 1, 32);
    expect(h.scales[0]).toBe(2);
    expect([h.codes[0], h.codes[13], h.codes[15], h.codes[17], h.codes[31]]).toEqual([0, 7, 8, 9, 15]);
    expect(h.dequant[31]).toBe(14);
    const bytes = encodeTensor(block, [32], GGML_TYPE_ID.Q4_0);
    expect([bytes.readUInt16LE(0), bytes[2], bytes[3]]).toEqual([floatToHalf(2), 0 | (8 << 4), 1 | (9 << 4)]);
    expect(Array.from(dequantize(GGML_TYPE_ID.Q4_0, bytes, 32)!)).toEqual(Array.from(h.dequant));

    const data = encodeTensor(w, [96, 8], GGML_TYPE_ID.Q4_0);
    const y = dequantize(GGML_TYPE_ID.Q4_0, data, w.length)!;
    const a = quantizeQ4_0(w, 8, 96), b = quantizeQ4_0(y, 8, 96);
    expect(Array.from(y)).toEqual(Array.from(a.dequant));
    expect(Array.from(b.codes)).toEqual(Array.from(a.codes));
    expect(Array.from(b.scales)).toEqual(Array.from(a.scales));
    expect(encodeTensor(y, [96, 8], GGML_TYPE_ID.Q4_0).equals(data)).toBe(true);
  });
});

describe("GGUF round trip through the writer", () => {
  for (const name of ["llama", "gpt2"] as const) {
    it(`${name} at f32 compiles to the safetensors path's logits`, async () => {
      const path = join(tmp(), `${name}.gguf`);
      const r = writeGguf(path, { arch: name, config: readHfConfig(fixtureDir(name)), weights: openWeights(fixtureDir(name)), type: "f32" });
      expect(r.skipped).toEqual([]);
      expect(r.tensors.every((t) => t.type === "F32")).toBe(true);
      // the config the .wf binds comes from the metadata
      const want = readHfConfig(fixtureDir(name)), got = readHfConfig(path);
      const keys = name === "llama"
        ? ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size", "rms_norm_eps", "rope_theta", "max_position_embeddings", "bos_token_id", "eos_token_id", "tie_word_embeddings"]
        : ["vocab_size", "n_embd", "n_layer", "n_head", "n_inner", "layer_norm_epsilon", "n_positions", "bos_token_id", "eos_token_id"];
      for (const k of keys) expect([k, got[k]]).toEqual([k, want[k]]);

      const c = readFixture(name).cases[1];
      const viaGguf = await logits(runPipeline(loadProgram(example(name), path)), c.input_ids);
      const viaSafetensors = await logits(runPipeline(loadProgram(example(name), fixtureDir(name))), c.input_ids);
      expect(Array.from(viaGguf)).toEqual(Array.from(viaSafetensors));
      expect(relError(viaGguf, readExpected(name, c))).toBeLessThan(1e-4);
    });
  }

  it("compile --weights model.gguf writes an artifact whose special tokens come from the metadata", () => {
    const path = join(tmp(), "gpt2.gguf");
    writeGguf(path, { arch: "gpt2", config: readHfConfig(fixtureDir("gpt2")), weights: openWeights(fixtureDir("gpt2")), type: "f16" });
    const out = join(tmp(), "art");
    const r = compileModel(example("gpt2"), path, out);
    expect(r.manifest.tokens.eos).toEqual([100]);
    expect(r.manifest.tokens.bos).toBe(100);
    expect(existsSync(join(out, "model.wasm"))).toBe(true);
  });

  it("LLaMA q/k rows are stored permuted for llama.cpp's interleaved rotary, and read back in HF order", () => {
    const path = join(tmp(), "llama.gguf");
    const src = openWeights(fixtureDir("llama"));
    writeGguf(path, { arch: "llama", config: readHfConfig(fixtureDir("llama")), weights: src, type: "f32" });
    const buf = readFileSync(path), h = parseGguf(buf);
    const raw = (n: string) => {
      const t = h.tensors.get(n)!;
      return { t, y: dequantize(t.type, buf.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.bytes), t.elements)! };
    };
    for (const [proj, heads] of [["q", 6], ["k", 2]] as const) {
      const { t, y } = raw(`blk.1.attn_${proj}.weight`);
      const hf = src.read(`model.layers.1.self_attn.${proj}_proj.weight`);
      const cols = 60, hd = 10;
      expect(t.dims).toEqual([cols, heads * hd]);
      // GGUF row h·hd + 2b + a holds HF row h·hd + a·hd/2 + b
      for (let h2 = 0; h2 < heads; h2++)
        for (let a = 0; a < 2; a++)
          for (let b = 0; b < hd / 2; b++) {
            const g = (h2 * hd + 2 * b + a) * cols, f = (h2 * hd + a * (hd / 2) + b) * cols;
            expect(Array.from(y.subarray(g, g + cols))).toEqual(Array.from(hf.subarray(f, f + cols)));
          }
      expect(Array.from(openGguf(path).read(`model.layers.1.self_attn.${proj}_proj.weight`))).toEqual(Array.from(hf));
    }
    // v is not permuted
    expect(Array.from(raw("blk.0.attn_v.weight").y)).toEqual(Array.from(src.read("model.layers.0.self_attn.v_proj.weight")));
  });

  it("GPT-2 Conv1D weights ([in, out] in HF) are stored [out, in] (ggml dims [in, out]), as llama.cpp's converter transposes them", () => {
    const path = join(tmp(), "gpt2.gguf");
    const src = openWeights(fixtureDir("gpt2"));
    writeGguf(path, { arch: "gpt2", config: readHfConfig(fixtureDir("gpt2")), weights: src, type: "f32" });
    const h = readGgufHeader(path);
    expect(h.tensors.get("blk.0.attn_qkv.weight")!.dims).toEqual([60, 180]);
    expect(h.tensors.get("blk.0.ffn_up.weight")!.dims).toEqual([60, 90]);
    expect(h.tensors.get("blk.0.ffn_down.weight")!.dims).toEqual([90, 60]);
    expect(h.tensors.has("output.weight")).toBe(false); // tied: llama.cpp falls back to token_embd
    const g = openGguf(path);
    expect(g.info("transformer.h.0.attn.c_attn.weight")!.shape).toEqual([60, 180]);
    const hf = src.read("transformer.h.0.attn.c_attn.weight");
    const buf = readFileSync(path), t = h.tensors.get("blk.0.attn_qkv.weight")!;
    const stored = new Float32Array(buf.buffer.slice(buf.byteOffset + h.dataStart + t.offset, buf.byteOffset + h.dataStart + t.offset + t.bytes));
    for (const [i, o] of [[0, 0], [3, 100], [59, 179]]) expect(stored[o * 60 + i]).toBe(hf[i * 180 + o]);
    expect(Array.from(g.read("transformer.h.0.attn.c_attn.weight"))).toEqual(Array.from(hf));
  });

  it("writes the metadata llama.cpp reads, with the value types it checks", () => {
    const path = join(tmp(), "llama.gguf");
    writeGguf(path, { arch: "llama", config: readHfConfig(fixtureDir("llama")), weights: openWeights(fixtureDir("llama")), type: "q8_0", name: "tiny" });
    const h = readGgufHeader(path);
    const m = (k: string) => h.metadata.get(k)!;
    expect([m("general.architecture").value, m("general.name").value, m("general.file_type").value]).toEqual(["llama", "tiny", 7]);
    for (const k of ["llama.block_count", "llama.context_length", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count"])
      expect([k, m(k).type]).toEqual([k, T.U32]);
    for (const k of ["llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"]) expect([k, m(k).type]).toEqual([k, T.F32]);
    const tokens = m("tokenizer.ggml.tokens").value as string[];
    expect(tokens.length).toBe(103);
    expect(new Set(tokens).size).toBe(103);
    expect([tokens[0], tokens[1], tokens[2], tokens[3]]).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect((m("tokenizer.ggml.scores").value as number[]).length).toBe(103);
    expect([m("tokenizer.ggml.model").value, m("tokenizer.ggml.bos_token_id").value, m("tokenizer.ggml.eos_token_id").value]).toEqual(["llama", 1, 2]);
    // rows of 60 are not whole Q8_0 blocks: F16, as the converter falls back; norms F32
    expect(h.tensors.get("blk.0.attn_q.weight")!.type).toBe(GGML_TYPE_ID.F16);
    expect(h.tensors.get("blk.0.attn_norm.weight")!.type).toBe(GGML_TYPE_ID.F32);

    const g = join(tmp(), "gpt2.gguf");
    writeGguf(g, { arch: "gpt2", config: readHfConfig(fixtureDir("gpt2")), weights: openWeights(fixtureDir("gpt2")), type: "f32" });
    const hg = readGgufHeader(g);
    expect(hg.metadata.get("tokenizer.ggml.model")!.value).toBe("gpt2");
    expect(hg.metadata.get("tokenizer.ggml.merges")!.itemType).toBe(T.STRING); // llama.cpp requires merges for BPE
    expect((hg.metadata.get("tokenizer.ggml.tokens")!.value as string[])[100]).toBe("<|endoftext|>");
    expect(hg.metadata.get("gpt2.feed_forward_length")!.value).toBe(90);
  });

  it("Q8_0 export matches the independent Python converter byte for byte, tensor by tensor", () => {
    const dir = fixtureDir("llama-q8_0");
    const path = join(tmp(), "ours.gguf");
    writeGguf(path, { arch: "llama", config: readHfConfig(dir), weights: openWeights(dir), type: "q8_0" });
    const a = readFileSync(path), b = readFileSync(join(dir, "model-q8_0.gguf"));
    const ha = parseGguf(a), hb = parseGguf(b);
    const bytes = (buf: Buffer, h: GgufHeader, n: string) => {
      const t = h.tensors.get(n)!;
      return buf.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.bytes);
    };
    expect([...ha.tensors.keys()].sort()).toEqual([...hb.tensors.keys()].sort());
    for (const [n, t] of hb.tensors) {
      expect([n, ha.tensors.get(n)!.type, ha.tensors.get(n)!.dims]).toEqual([n, t.type, t.dims]);
      expect([n, bytes(a, ha, n).equals(bytes(b, hb, n))]).toEqual([n, true]);
    }
  });

  it("Q4_0 export imports as the quantizer's values", () => {
    const r = rng(3);
    const d = 64, vocab = 48, ffn = 96;
    const t = (shape: number[], scale = 0.2) => ({ shape, data: r.floats(shape.reduce((a, b) => a * b, 1), scale) });
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = { "model.embed_tokens.weight": t([vocab, d]), "model.norm.weight": t([d], 1) };
    for (const [n, s] of Object.entries({ q_proj: [d, d], k_proj: [32, d], v_proj: [32, d], o_proj: [d, d] })) tensors[`model.layers.0.self_attn.${n}.weight`] = t(s);
    for (const [n, s] of Object.entries({ gate_proj: [ffn, d], up_proj: [ffn, d], down_proj: [d, ffn] })) tensors[`model.layers.0.mlp.${n}.weight`] = t(s);
    tensors["model.layers.0.input_layernorm.weight"] = t([d], 1);
    tensors["model.layers.0.post_attention_layernorm.weight"] = t([d], 1);
    const config = { hidden_size: d, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: ffn, max_position_embeddings: 16 };
    const path = join(tmp(), "q4.gguf");
    writeGguf(path, { arch: "llama", config, weights: memoryWeights(tensors), type: "q4_0" });
    const g = openGguf(path);
    expect(g.info("model.layers.0.mlp.down_proj.weight")!.dtype).toBe("Q4_0");
    expect(g.info("model.norm.weight")!.dtype).toBe("F32");
    for (const n of ["model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.embed_tokens.weight"]) {
      const [N, K] = tensors[n].shape;
      expect(Array.from(g.read(n))).toEqual(Array.from(quantizeQ4_0(tensors[n].data, N, K).dequant));
    }
    expect(readHfConfig(path)).toMatchObject({ ...config, vocab_size: vocab, head_dim: 16, tie_word_embeddings: true });
  });

  it("writes nothing when a tensor cannot be read (temporary file, renamed at the end)", () => {
    const dir = tmp(), path = join(dir, "broken.gguf");
    const src = openWeights(fixtureDir("gpt2"));
    const failing = { ...src, read: (n: string) => (n.includes("h.1.") ? (() => { throw new Error("disk on fire"); })() : src.read(n)) };
    expect(() => writeGguf(path, { arch: "gpt2", config: readHfConfig(fixtureDir("gpt2")), weights: failing, type: "f32" })).toThrow(/disk on fire/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("a Q8_0 GGUF written by llama.cpp's conventions (make_gguf.py)", () => {
  const dir = fixtureDir("llama-q8_0");
  const gguf = join(dir, "model-q8_0.gguf");

  it("binds llama.wf unchanged, and equals the safetensors checkpoint compiled --quantize int8", async () => {
    const g = openGguf(gguf);
    expect(g.info("model.layers.0.self_attn.q_proj.weight")).toEqual({ dtype: "Q8_0", shape: [32, 32], file: "model-q8_0.gguf" });
    expect(g.info("lm_head.weight")!.dtype).toBe("Q8_0");
    const a = runPipeline(loadProgram(example("llama"), dir), {}, withQuantization(passes, "int8"));
    const b = runPipeline(loadProgram(example("llama"), gguf), {}, withQuantization(passes, "int8"));
    const quantized = [...a.params.values()].filter((p) => p.quant);
    // 7 matrices in each of 2 layers, the head, and each layer's q/k/v stacked by fuse-qkv
    expect(quantized.length).toBe(17);
    expect(quantized.filter((p) => p.name.startsWith("cat("))).toHaveLength(2);
    for (const p of quantized) {
      const q = b.params.get(p.name)!;
      expect(Array.from(q.quant!.codes)).toEqual(Array.from(p.quant!.codes));
      expect(Array.from(q.quant!.scales)).toEqual(Array.from(p.quant!.scales));
    }
    expect(Array.from(b.params.get("model.embed_tokens.weight")!.data)).toEqual(Array.from(a.params.get("model.embed_tokens.weight")!.data));
    const ids = [5, 9, 33, 2, 17, 40, 63, 1];
    expect(Array.from(await logits(b, ids))).toEqual(Array.from(await logits(a, ids)));
  });
});

describe("malformed GGUF files are input errors naming the file and the problem", () => {
  const good = () => ggufBytes([{ key: "general.architecture", type: T.STRING, value: "llama" }], [f32("w", [4, 2], [1, 2, 3, 4, 5, 6, 7, 8])]);

  const cases: [string, () => Buffer, RegExp][] = [
    ["bad magic", () => Buffer.concat([Buffer.from("GGML"), good().subarray(4)]), /bad\.gguf: not a GGUF file \(magic "GGML", expected "GGUF"\)/],
    ["version 1", () => head(0, 0, 1), /unsupported GGUF version 1 \(2 and 3 are supported\)/],
    ["version 4", () => head(0, 0, 4), /unsupported GGUF version 4/],
    ["big-endian", () => head(0, 0, 0x03000000), /big-endian GGUF is not supported/],
    ["empty file", () => Buffer.alloc(0), /truncated header \(magic\) at byte 0 \(needs 4 bytes, 0 left\)/],
    ["truncated header", () => head(0, 0).subarray(0, 12), /truncated tensor count at byte 8 \(needs 8 bytes, 4 left\)/],
    ["truncated metadata", () => good().subarray(0, 24 + 8 + 20 + 2), /truncated metadata 'general.architecture' type at byte 52 \(needs 4 bytes, 2 left\)/],
    ["truncated string value", () => Buffer.concat([head(0, 1), str("k"), u32(T.STRING), u64(5), Buffer.from("ab")]), /metadata 'k' length 5 runs past the end of the file \(2 bytes left\)/],
    ["huge string length", () => Buffer.concat([head(0, 1), u64(2n ** 62n), Buffer.alloc(16)]), /metadata key 0 length 4611686018427387904 runs past the end of the file \(16 bytes left\)/],
    ["tensor count past the file", () => head(2n ** 40n, 0), /tensor count 1099511627776 cannot fit in the remaining 8 bytes/],
    ["metadata count past the file", () => Buffer.concat([head(0, 1000), Buffer.alloc(100)]), /metadata count 1000 cannot fit in the remaining 100 bytes/],
    ["array length past the file", () => Buffer.concat([head(0, 1), str("a"), u32(T.ARRAY), u32(T.U32), u64(2n ** 50n), Buffer.alloc(16)]), /metadata 'a' array length 1125899906842624 cannot fit in the remaining 16 bytes/],
    ["string array past the file", () => Buffer.concat([head(0, 1), str("a"), u32(T.ARRAY), u32(T.STRING), u64(3), u64(1), Buffer.from("x")]), /metadata 'a' array length 3 cannot fit in the remaining 9 bytes/],
    ["unknown value type", () => Buffer.concat([head(0, 1), str("k"), u32(13), Buffer.alloc(8)]), /metadata 'k' has unknown value type 13/],
    ["unknown array item type", () => Buffer.concat([head(0, 1), str("k"), u32(T.ARRAY), u32(99), u64(0)]), /metadata 'k' is an array of unknown value type 99/],
    ["duplicate key", () => ggufBytes([{ key: "k", type: T.U8, value: 1 }, { key: "k", type: T.U8, value: 2 }], []), /duplicate metadata key 'k'/],
    ["bad alignment", () => ggufBytes([{ key: "general.alignment", type: T.U32, value: 24 }], []), /general.alignment 24 is not a power of two/],
    ["duplicate tensor", () => ggufBytes([], [f32("w", [1], [1]), f32("w", [1], [2])]), /duplicate tensor name 'w'/],
    ["unknown tensor type", () => {
      const b = ggufBytes([], [f32("w", [4], [1, 2, 3, 4])]);
      b.writeUInt32LE(99, b.indexOf(Buffer.from([0x77, 1, 0, 0, 0])) + 1 + 4 + 8); // after "w", n_dims, dims
      return b;
    }, /tensor 'w' has unknown type 99/],
    ["too many dims", () => ggufBytes([], [f32("w", [1, 1, 1, 1, 1], [1])]), /tensor 'w' has 5 dimensions \(at most 4\)/],
    ["dims overflow", () => ggufBytes([], [{ name: "w", dims: [2 ** 32, 2 ** 32], type: 0, data: new Uint8Array(0) }]), /tensor 'w' dims \[4294967296, 4294967296\] overflow \(18446744073709551616 elements\)/],
    ["dims past the data", () => ggufBytes([], [{ name: "w", dims: [1024, 1024], type: 0, data: new Uint8Array(64) }]), /tensor 'w' F32\[1024, 1024\] data \[0, 4194304\) runs past the end of the data \(64 bytes\); the file may be truncated/],
    ["row not whole blocks", () => ggufBytes([], [{ name: "w", dims: [30, 2], type: GGML_TYPE_ID.Q8_0, data: new Uint8Array(68) }]), /tensor 'w' has rows of 30 elements, not a multiple of Q8_0's block of 32/],
    ["offset past the end", () => {
      const b = good();
      const at = b.indexOf(Buffer.from([0x77, 2, 0, 0, 0])) + 1 + 4 + 16 + 4; // after "w", n_dims, dims, type
      b.writeBigUInt64LE(2n ** 40n, at);
      return b;
    }, /tensor 'w' F32\[4, 2\] data \[1099511627776, 1099511627808\) runs past the end of the data \(32 bytes\)/],
    ["misaligned offset", () => {
      const b = good();
      b.writeBigUInt64LE(4n, b.indexOf(Buffer.from([0x77, 2, 0, 0, 0])) + 1 + 4 + 16 + 4);
      return b;
    }, /tensor 'w' offset 4 is not a multiple of the alignment 32/],
    ["truncated data", () => good().subarray(0, good().length - 1), /tensor 'w' F32\[4, 2\] data \[0, 32\) runs past the end of the data \(31 bytes\)/],
  ];
  for (const [what, bytes, message] of cases)
    it(what, () => {
      expect(parse(bytes())).toThrow(InputError);
      expect(parse(bytes())).toThrow(message);
    });

  it("a config from an unmapped architecture or missing keys", () => {
    const arch = (a: string, more: GgufKVEntry[] = []) => file(ggufBytes([{ key: "general.architecture", type: T.STRING, value: a }, ...more], []));
    expect(() => readHfConfig(arch("bert"))).toThrow(/model.gguf: architecture 'bert' is not supported \(wasmformer maps llama and gpt2\)/);
    expect(() => readHfConfig(arch("llama"))).toThrow(/model.gguf: no llama.embedding_length in the metadata \(needed for hidden_size\)/);
    expect(() => readHfConfig(file(ggufBytes([], [])))).toThrow(/no general.architecture in the metadata/);
    expect(() => readHfConfig(arch("gpt2", [{ key: "gpt2.embedding_length", type: T.STRING, value: "wide" }]))).toThrow(/gpt2.embedding_length should be a number, found "wide"/);
  });

  it("a real GGUF truncated by one byte fails loadProgram with the tensor that runs past the end", () => {
    const bytes = readFileSync(join(fixtureDir("llama-q8_0"), "model-q8_0.gguf"));
    const path = file(bytes.subarray(0, bytes.length - 1));
    expect(() => loadProgram(example("llama"), path)).toThrow(InputError);
    expect(() => loadProgram(example("llama"), path)).toThrow(/model.gguf: tensor 'output_norm.weight' F32\[32\] data \[\d+, \d+\) runs past the end of the data \(\d+ bytes\); the file may be truncated/);
  });

  it("sizes of every tensor type come from ggml's block table", () => {
    expect(ggufTensorBytes({ name: "a", dims: [256, 3], type: GGML_TYPE_ID.Q4_K })).toBe(3 * 144);
    expect(ggufTensorBytes({ name: "a", dims: [256, 2], type: GGML_TYPE_ID.Q6_K })).toBe(2 * 210);
    expect(ggufTensorBytes({ name: "a", dims: [64], type: GGML_TYPE_ID.Q4_1 })).toBe(40);
  });
});
