// GGUF import and export: every metadata type, round trips through the writer that compile to
// the same logits as the safetensors path, LLaMA's q/k permutation and GPT-2's transposed
// Conv1D layout, ggml's dequantizers on hand-checked blocks, lossless Q8_0 / Q4_0 re-quantization,
// a Q8_0 file written independently in Python (tests/fixtures/make_gguf.py), and malformed files
// (one coded line each) and metadata values of the wrong type.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { type GgufKVEntry, encodeGgufHeader, encodeTensor, ggufTensorBytes, writeGguf } from "../../compiler/export/gguf.js";
import { loadProgram, openWeights, readHfConfig } from "../../compiler/load.js";
import { passes, runPipeline, withQuantization } from "../../compiler/passes/manager.js";
import { GGML_TYPE_ID, dequantize } from "../../compiler/weights/ggml-quants.js";
import { GGUF_TYPE, type GgufHeader, parseGguf, readGgufHeader } from "../../compiler/weights/gguf.js";
import { openGguf } from "../../compiler/weights/gguf-source.js";
import { memoryWeights } from "../../compiler/weights/memory.js";
import { floatToHalf, halfToFloat } from "../../ir/half.js";
import { quantizeQ4_0, quantizeQ4_1, quantizeQ8 } from "../../ir/quant.js";
import type { Program } from "../../ir/types.js";
import { compileInMemory, families, fixtureDir, readExpected, readFixture, relError, rng, root } from "../helpers.js";
import { inputError } from "./input-error.js";

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
    expect(inputError(() => openGguf(path).read("w"))).toBe(
      "error[WF409]: model.gguf: tensor 'w' has type Q5_K, which wasmformer cannot read (it reads F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K, BF16)",
    );
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

  // each architecture llama.cpp names, from the families' fixtures (gemma2's fixture has a
  // query_pre_attn_scalar llama.cpp cannot express, and mistral's window no GGUF key holds)
  for (const [name, arch] of [["qwen2", "qwen2"], ["qwen3", "qwen3"], ["llama3", "llama"], ["gemma", "gemma"], ["phi3", "phi3"]] as const) {
    it(`${name} (${arch}) at f32 compiles to the safetensors path's logits`, async () => {
      const path = join(tmp(), `${name}.gguf`);
      const r = writeGguf(path, { arch, config: readHfConfig(fixtureDir(name)), weights: openWeights(fixtureDir(name)), type: "f32" });
      expect(r.skipped).toEqual([]);
      const wf = join(root, "examples", `${families[name]}.wf`);
      for (const c of readFixture(name).cases) {
        const viaGguf = await logits(runPipeline(loadProgram(wf, path)), c.input_ids);
        const viaSafetensors = await logits(runPipeline(loadProgram(wf, fixtureDir(name))), c.input_ids);
        // gemma's gains travel as w + 1 and back: within an ulp of the gain
        expect(relError(viaGguf, viaSafetensors)).toBeLessThan(name === "gemma" ? 1e-5 : 1e-7);
        expect(relError(viaGguf, readExpected(name, c))).toBeLessThan(1e-4);
      }
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

describe("malformed GGUF files are one coded line naming the file and the problem", () => {
  const good = () => ggufBytes([{ key: "general.architecture", type: T.STRING, value: "llama" }], [f32("w", [4, 2], [1, 2, 3, 4, 5, 6, 7, 8])]);
  /** Where tensor `name`'s info (after its name) starts in `b`: n_dims, dims, type, offset follow. */
  const infoAt = (b: Buffer, name: string) => b.indexOf(Buffer.concat([str(name), u32(0)]).subarray(0, 8 + name.length)) + 8 + name.length;
  const offsetAt = (b: Buffer, name: string) => infoAt(b, name) + 4 + 8 * b.readUInt32LE(infoAt(b, name)) + 4;
  /** Two F32[8] tensors a and b (32 bytes each), b's offset set to `offset`, the data section `dataLen` bytes. */
  const pair = (offset: number, dataLen: number) => {
    const b = ggufBytes([], [f32("a", [8], [1, 2, 3, 4, 5, 6, 7, 8]), f32("b", [8], [1, 2, 3, 4, 5, 6, 7, 8])]);
    b.writeBigUInt64LE(BigInt(offset), offsetAt(b, "b"));
    const dataStart = b.length - 64;
    return Buffer.concat([b.subarray(0, dataStart), Buffer.alloc(dataLen)]);
  };

  const cases: [string, () => Buffer, string][] = [
    ["bad magic", () => Buffer.concat([Buffer.from("GGML"), good().subarray(4)]), `WF403 bad.gguf: not a GGUF file (magic "GGML", expected "GGUF")`],
    ["version 1", () => head(0, 0, 1), "WF403 bad.gguf: unsupported GGUF version 1 (2 and 3 are supported)"],
    ["version 4", () => head(0, 0, 4), "WF403 bad.gguf: unsupported GGUF version 4 (2 and 3 are supported)"],
    ["big-endian", () => head(0, 0, 0x03000000), "WF403 bad.gguf: big-endian GGUF is not supported"],
    ["empty file", () => Buffer.alloc(0), "WF403 bad.gguf: truncated header (magic) at byte 0 (needs 4 bytes, 0 left)"],
    ["truncated header", () => head(0, 0).subarray(0, 12), "WF403 bad.gguf: truncated tensor count at byte 8 (needs 8 bytes, 4 left)"],
    ["truncated metadata", () => good().subarray(0, 24 + 8 + 20 + 2), "WF403 bad.gguf: truncated metadata 'general.architecture' type at byte 52 (needs 4 bytes, 2 left)"],
    ["truncated string value", () => Buffer.concat([head(0, 1), str("k"), u32(T.STRING), u64(5), Buffer.from("ab")]), "WF403 bad.gguf: metadata 'k' length 5 runs past the end of the file (2 bytes left)"],
    ["huge string length", () => Buffer.concat([head(0, 1), u64(2n ** 62n), Buffer.alloc(16)]), "WF403 bad.gguf: metadata key 0 length 4611686018427387904 runs past the end of the file (16 bytes left)"],
    ["tensor count past the file", () => head(2n ** 40n, 0), "WF403 bad.gguf: tensor count 1099511627776 cannot fit in the remaining 8 bytes"],
    ["metadata count past the file", () => Buffer.concat([head(0, 1000), Buffer.alloc(100)]), "WF403 bad.gguf: metadata count 1000 cannot fit in the remaining 100 bytes"],
    ["array length past the file", () => Buffer.concat([head(0, 1), str("a"), u32(T.ARRAY), u32(T.U32), u64(2n ** 50n), Buffer.alloc(16)]), "WF403 bad.gguf: metadata 'a' array length 1125899906842624 cannot fit in the remaining 16 bytes"],
    ["string array past the file", () => Buffer.concat([head(0, 1), str("a"), u32(T.ARRAY), u32(T.STRING), u64(3), u64(1), Buffer.from("x")]), "WF403 bad.gguf: metadata 'a' array length 3 cannot fit in the remaining 9 bytes"],
    ["unknown value type", () => Buffer.concat([head(0, 1), str("k"), u32(13), Buffer.alloc(8)]), "WF403 bad.gguf: metadata 'k' has unknown value type 13"],
    ["unknown array item type", () => Buffer.concat([head(0, 1), str("k"), u32(T.ARRAY), u32(99), u64(0)]), "WF403 bad.gguf: metadata 'k' is an array of unknown value type 99"],
    ["duplicate key", () => ggufBytes([{ key: "k", type: T.U8, value: 1 }, { key: "k", type: T.U8, value: 2 }], []), "WF403 bad.gguf: duplicate metadata key 'k'"],
    ["a key with a control character", () => ggufBytes([{ key: "k\r", type: T.U8, value: 1 }, { key: "k\r", type: T.U8, value: 2 }], []), "WF403 bad.gguf: duplicate metadata key 'k\\u000d'"],
    ["bad alignment", () => ggufBytes([{ key: "general.alignment", type: T.U32, value: 24 }], []), "WF408 bad.gguf: general.alignment 24 (u32) is not a power of two"],
    ["a float alignment", () => ggufBytes([{ key: "general.alignment", type: T.F32, value: 32 }], []), "WF408 bad.gguf: general.alignment 32 (f32) is not a power of two"],
    ["a string alignment", () => ggufBytes([{ key: "general.alignment", type: T.STRING, value: "3\n2" }], []), `WF408 bad.gguf: general.alignment "3\\n2" (string) is not a power of two`],
    ["duplicate tensor", () => ggufBytes([], [f32("w", [1], [1]), f32("w", [1], [2])]), "WF403 bad.gguf: duplicate tensor name 'w'"],
    ["unknown tensor type", () => {
      const b = ggufBytes([], [f32("w", [4], [1, 2, 3, 4])]);
      b.writeUInt32LE(99, infoAt(b, "w") + 4 + 8);
      return b;
    }, "WF404 bad.gguf: tensor 'w' has unknown type 99"],
    ["too many dims", () => ggufBytes([], [f32("w", [1, 1, 1, 1, 1], [1])]), "WF403 bad.gguf: tensor 'w' has 5 dimensions (at most 4)"],
    ["a zero dimension", () => ggufBytes([], [{ name: "w", dims: [4, 0], type: 0, data: new Uint8Array(0) }]), "WF405 bad.gguf: tensor 'w' has dims [4, 0]; every dimension must be at least 1"],
    ["dims overflow", () => ggufBytes([], [{ name: "w", dims: [2 ** 32, 2 ** 32], type: 0, data: new Uint8Array(0) }]), "WF405 bad.gguf: tensor 'w' dims [4294967296, 4294967296] overflow (18446744073709551616 elements)"],
    ["dims past the data", () => ggufBytes([], [{ name: "w", dims: [1024, 1024], type: 0, data: new Uint8Array(64) }]), "WF406 bad.gguf: tensor 'w' F32[1024, 1024] data [0, 4194304) runs past the end of the data (64 bytes); the file may be truncated"],
    ["bytes past 2^53", () => ggufBytes([], [{ name: "w", dims: [2 ** 26, 2 ** 26], type: GGML_TYPE_ID.F64, data: new Uint8Array(64) }]), "WF406 bad.gguf: tensor 'w' F64[67108864, 67108864] data [0, 36028797018963968) runs past the end of the data (64 bytes); the file may be truncated"],
    ["row not whole blocks", () => ggufBytes([], [{ name: "w", dims: [30, 2], type: GGML_TYPE_ID.Q8_0, data: new Uint8Array(68) }]), "WF405 bad.gguf: tensor 'w' has rows of 30 elements, not a multiple of Q8_0's block of 32"],
    ["offset past the end", () => {
      const b = good();
      b.writeBigUInt64LE(2n ** 40n, offsetAt(b, "w"));
      return b;
    }, "WF406 bad.gguf: tensor 'w' F32[4, 2] data [1099511627776, 1099511627808) runs past the end of the data (32 bytes); the file may be truncated"],
    ["misaligned offset", () => {
      const b = good();
      b.writeBigUInt64LE(4n, offsetAt(b, "w"));
      return b;
    }, "WF406 bad.gguf: tensor 'w' offset 4 is not a multiple of the alignment 32"],
    ["truncated data", () => good().subarray(0, good().length - 1), "WF406 bad.gguf: tensor 'w' F32[4, 2] data [0, 32) runs past the end of the data (31 bytes); the file may be truncated"],
    ["overlapping tensors", () => pair(0, 64), "WF406 bad.gguf: tensor 'b' data [0, 32) overlaps tensor 'a' data [0, 32)"],
    ["a gap between tensors", () => pair(64, 96), "WF406 bad.gguf: bytes [32, 64) of the data section belong to no tensor (a gap before tensor 'b', after 'a')"],
    ["a gap before the first tensor", () => {
      const b = good();
      b.writeBigUInt64LE(32n, offsetAt(b, "w"));
      return Buffer.concat([b, Buffer.alloc(32)]);
    }, "WF406 bad.gguf: bytes [0, 32) of the data section belong to no tensor (a gap before tensor 'w')"],
    ["bytes after the last tensor's padding", () => Buffer.concat([good(), Buffer.alloc(33)]), "WF406 bad.gguf: the tensors cover 32 bytes of data (32 with padding) but the data section holds 65 (33 trailing bytes after tensor 'w')"],
    ["one byte after the last tensor", () => Buffer.concat([good(), Buffer.alloc(1)]), "WF406 bad.gguf: the tensors cover 32 bytes of data (32 with padding) but the data section holds 33 (1 trailing byte after tensor 'w')"],
    ["bytes after a header with no tensors", () => Buffer.concat([ggufBytes([], []), Buffer.alloc(5)]), "WF406 bad.gguf: the tensors cover 0 bytes of data (0 with padding) but the data section holds 5 (5 trailing bytes)"],
  ];
  for (const [what, bytes, expected] of cases)
    it(what, () => {
      const [code, ...message] = expected.split(" ");
      expect(inputError(() => parseGguf(bytes(), "bad.gguf"))).toBe(`error[${code}]: ${message.join(" ")}`);
    });

  it("padding after the last tensor, up to the alignment, is allowed; tensors may be listed out of offset order", () => {
    const b = ggufBytes([], [f32("w", [3], [1, 2, 3])]);
    const h = parseGguf(Buffer.concat([b, Buffer.alloc(20)]));
    expect(h.tensors.get("w")!.bytes).toBe(12);
    const swapped = pair(0, 64);
    swapped.writeBigUInt64LE(32n, offsetAt(swapped, "a"));
    expect([...parseGguf(swapped).tensors.values()].map((t) => [t.name, t.offset])).toEqual([["a", 32], ["b", 0]]);
  });

  it("a config from an unmapped architecture or missing keys", () => {
    const arch = (a: string, more: GgufKVEntry[] = []) => file(ggufBytes([{ key: "general.architecture", type: T.STRING, value: a }, ...more], []));
    expect(inputError(() => readHfConfig(arch("bert")))).toBe("error[WF408]: model.gguf: architecture 'bert' is not supported (wasmformer maps llama, qwen2, qwen3, gemma, gemma2, phi3 and gpt2)");
    expect(inputError(() => readHfConfig(arch("llama")))).toBe("error[WF408]: model.gguf: no llama.embedding_length in the metadata (needed for hidden_size)");
    expect(inputError(() => readHfConfig(file(ggufBytes([], []))))).toBe("error[WF408]: model.gguf: no general.architecture in the metadata");
    expect(inputError(() => readHfConfig(file(ggufBytes([{ key: "general.architecture", type: T.U32, value: 1 }], []))))).toBe("error[WF408]: model.gguf: general.architecture should be a string, found 1 (u32)");
  });

  describe("config values read from the metadata are of the type their key needs", () => {
    const gpt2 = (kv: GgufKVEntry) => {
      const base: GgufKVEntry[] = [
        { key: "general.architecture", type: T.STRING, value: "gpt2" },
        { key: "gpt2.embedding_length", type: T.U32, value: 8 },
        { key: "gpt2.block_count", type: T.U32, value: 1 },
        { key: "gpt2.attention.head_count", type: T.U32, value: 2 },
        { key: "gpt2.context_length", type: T.U32, value: 16 },
      ];
      return file(ggufBytes([...base.filter((e) => e.key !== kv.key), kv], []));
    };
    const cases: [GgufKVEntry, string][] = [
      [{ key: "gpt2.block_count", type: T.I32, value: -5 }, "gpt2.block_count should be a non-negative integer, found -5 (i32)"],
      [{ key: "gpt2.block_count", type: T.F32, value: 2.5 }, "gpt2.block_count should be a non-negative integer, found 2.5 (f32)"],
      [{ key: "gpt2.block_count", type: T.F64, value: 2 }, "gpt2.block_count should be a non-negative integer, found 2 (f64)"],
      [{ key: "gpt2.block_count", type: T.U64, value: 2n ** 63n }, "gpt2.block_count should be a non-negative integer, found 9223372036854775808 (u64)"],
      [{ key: "gpt2.block_count", type: T.BOOL, value: true }, "gpt2.block_count should be a non-negative integer, found true (bool)"],
      [{ key: "gpt2.embedding_length", type: T.STRING, value: "wide" }, `gpt2.embedding_length should be a non-negative integer, found "wide" (string)`],
      [{ key: "gpt2.context_length", type: T.ARRAY, itemType: T.U32, value: [16] }, "gpt2.context_length should be a non-negative integer, found an array of 1 u32"],
      [{ key: "gpt2.attention.layer_norm_epsilon", type: T.F32, value: Number.NaN }, "gpt2.attention.layer_norm_epsilon should be a finite number, found NaN (f32)"],
      [{ key: "gpt2.attention.layer_norm_epsilon", type: T.STRING, value: "1e-5" }, `gpt2.attention.layer_norm_epsilon should be a finite number, found "1e-5" (string)`],
      [{ key: "tokenizer.ggml.eos_token_id", type: T.I32, value: -1 }, "tokenizer.ggml.eos_token_id should be a non-negative integer, found -1 (i32)"],
      [{ key: "gpt2.vocab_size", type: T.F32, value: 100.5 }, "gpt2.vocab_size should be a non-negative integer, found 100.5 (f32)"],
    ];
    for (const [kv, message] of cases)
      it(`${kv.key} = ${String(kv.value)}`, () => expect(inputError(() => readHfConfig(gpt2(kv)))).toBe(`error[WF408]: model.gguf: ${message}`));

    it("values of the right type pass through unchanged, whatever their range (the model's config checks judge it)", () => {
      expect(readHfConfig(gpt2({ key: "gpt2.block_count", type: T.U32, value: 0 }))).toMatchObject({ n_layer: 0, n_embd: 8 });
      expect(readHfConfig(gpt2({ key: "gpt2.block_count", type: T.I64, value: 3 }))).toMatchObject({ n_layer: 3 });
      expect(readHfConfig(gpt2({ key: "gpt2.attention.layer_norm_epsilon", type: T.U8, value: 1 }))).toMatchObject({ layer_norm_epsilon: 1 });
    });

    it("the reproducer: the committed llama GGUF with block_count −5 as an i32 (before: a 0-layer model, exit 0)", () => {
      const src = readFileSync(join(fixtureDir("llama-q8_0"), "model-q8_0.gguf"));
      const h = parseGguf(src);
      const kv: GgufKVEntry[] = [...h.metadata].map(([key, e]) => (key === "llama.block_count" ? { key, type: T.I32, value: -5 } : { key, ...e }));
      const tensors = [...h.tensors.values()].map((t) => ({ ...t, data: src.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.bytes) }));
      const path = file(ggufBytes(kv, tensors));
      expect(inputError(() => loadProgram(example("llama"), path))).toBe("error[WF408]: model.gguf: llama.block_count should be a non-negative integer, found -5 (i32)");
      // the same file with the original entry loads
      const same = file(ggufBytes([...h.metadata].map(([key, e]) => ({ key, ...e })), tensors));
      expect(readHfConfig(same)).toMatchObject({ num_hidden_layers: 2 });
      expect(Array.from(openGguf(same).read("lm_head.weight"))).toEqual(Array.from(openGguf(join(fixtureDir("llama-q8_0"), "model-q8_0.gguf")).read("lm_head.weight")));
    });
  });

  it("a real GGUF truncated by one byte fails loadProgram with the tensor that runs past the end", () => {
    const bytes = readFileSync(join(fixtureDir("llama-q8_0"), "model-q8_0.gguf"));
    const path = file(bytes.subarray(0, bytes.length - 1));
    expect(inputError(() => loadProgram(example("llama"), path))).toMatch(
      /^error\[WF406\]: model.gguf: tensor 'output_norm.weight' F32\[32\] data \[\d+, \d+\) runs past the end of the data \(\d+ bytes\); the file may be truncated$/,
    );
  });

  it("a GGUF that cannot be read names the file", () => {
    const dir = tmp();
    mkdirSync(join(dir, "model.gguf", "x"), { recursive: true });
    expect(inputError(() => openGguf(join(dir, "model.gguf")))).toBe("error[WF402]: model.gguf: cannot read the checkpoint file (a folder)");
  });

  it("sizes of every tensor type come from ggml's block table", () => {
    expect(ggufTensorBytes({ name: "a", dims: [256, 3], type: GGML_TYPE_ID.Q4_K })).toBe(3 * 144);
    expect(ggufTensorBytes({ name: "a", dims: [256, 2], type: GGML_TYPE_ID.Q6_K })).toBe(2 * 210);
    expect(ggufTensorBytes({ name: "a", dims: [64], type: GGML_TYPE_ID.Q4_1 })).toBe(40);
  });
});
