// How GGUF architectures map onto Hugging Face checkpoints, following llama.cpp's
// convert_hf_to_gguf.py: tensor names, the layouts its converter changes, metadata keys ↔
// config.json keys, and the shapes each tensor must have for the config. Used both ways: reading a
// .gguf (weights/gguf.ts) and writing one (export/gguf.ts). Each family's entry, with what its
// converter does differently, is in gguf-archs/.
//
// The layouts (gguf-archs/types.ts):
// - LLaMA q_proj/k_proj rows are permuted per head for llama.cpp's interleaved rotary: GGUF row
//   h·hd + 2b + a holds HF row h·hd + a·hd/2 + b (a ∈ {0, 1}, b < hd/2), k with the KV head count.
// - GPT-2's Conv1D weights, stored [in, out] by HF, are transposed to [out, in].
// - Gemma's norm gains are stored + 1.

import { type Code, InputError } from "../diagnostics.js";
import { dequantize } from "./ggml-quants.js";
import { gemma, gemma2 } from "./gguf-archs/gemma.js";
import { gpt2 } from "./gguf-archs/gpt2.js";
import { llama, qwen2, qwen3 } from "./gguf-archs/llama.js";
import { phi3 } from "./gguf-archs/phi3.js";
import type { ArchSpec, ImportContext, Layout, Sizes, TensorRule } from "./gguf-archs/types.js";
import { GGUF_INTEGER_TYPES, GGUF_TYPE, type GgufHeader, type GgufTensor, ggufValueText } from "./gguf.js";
import { quoted } from "./source.js";

export type { ArchSpec, ConfigRule, Layout, Sizes } from "./gguf-archs/types.js";

export const ARCHS = { llama, qwen2, qwen3, gemma, gemma2, phi3, gpt2 } as const satisfies Record<string, ArchSpec>;

/** An architecture name llama.cpp uses and wasmformer maps. */
export type GgufArch = keyof typeof ARCHS;

export const archSpec = (arch: string): ArchSpec | undefined => (Object.hasOwn(ARCHS, arch) ? ARCHS[arch as GgufArch] : undefined);

/** "a, b and c", for messages. */
export const archList = () => {
  const a = Object.keys(ARCHS);
  return `${a.slice(0, -1).join(", ")} and ${a[a.length - 1]}`;
};

const patterns = new Map<string, RegExp>();
function match(pattern: string, name: string): string | undefined {
  let re = patterns.get(pattern);
  if (!re) patterns.set(pattern, (re = new RegExp(`^${pattern.replace(/\./g, "\\.").replace("{i}", "(\\d+)")}$`)));
  return re.exec(name)?.[1] ?? (re.test(name) ? "" : undefined);
}

/** `rule`'s counterpart of a name matching `from` ('{i}' carried over), or undefined. */
function rename(from: string, to: string, name: string): string | undefined {
  const i = match(from, name);
  return i === undefined ? undefined : to.replace("{i}", i);
}

/** Transposes a row-major [rows, cols] matrix. */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

/** Moves q/k rows between HF's half-split rotary order and llama.cpp's interleaved pairs. */
export function permuteRope(w: Float32Array, rows: number, heads: number, to: "gguf" | "hf", file: string, name: string): Float32Array {
  const hd = rows / heads;
  if (!Number.isInteger(hd) || hd % 2) throw new InputError(`${file}: tensor '${name}' has ${rows} rows, not ${heads} heads of an even size`);
  const cols = w.length / rows, half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++)
    for (let a = 0; a < 2; a++)
      for (let b = 0; b < half; b++) {
        const hf = (h * hd + a * half + b) * cols, gg = (h * hd + 2 * b + a) * cols;
        if (to === "hf") out.set(w.subarray(gg, gg + cols), hf);
        else out.set(w.subarray(hf, hf + cols), gg);
      }
  return out;
}

/** Gemma's norm gains: GGUF = HF + 1, in f32. */
export const plusOne = (w: Float32Array, sign: 1 | -1): Float32Array => w.map((x) => x + sign);

// (a function, not a set built at load: gguf.ts and this module import each other)
const isNumericType = (type: number) => GGUF_INTEGER_TYPES.has(type) || type === GGUF_TYPE.F32 || type === GGUF_TYPE.F64;

/**
 * A Hugging Face style config.json object from a GGUF header's metadata. Each value read is of the
 * type its key needs (a count or id: a non-negative integer of an integer type; a float: finite);
 * ranges (at least one layer, ...) are the model's config checks. Rope factors stored as tensors
 * (llama3's rope_freqs, Phi-3's LongRoPE factors) are read back into rope_scaling.
 */
export function ggufConfig(h: GgufHeader): Record<string, unknown> {
  function fail(m: string, code: Code = "WF408"): never {
    throw new InputError(`${h.file}: ${m}`, undefined, { code });
  }
  const integer = (key: string): number | undefined => {
    const e = h.metadata.get(key);
    if (e && !(GGUF_INTEGER_TYPES.has(e.type) && typeof e.value === "number" && e.value >= 0)) fail(`${key} should be a non-negative integer, found ${ggufValueText(e)}`);
    return e?.value as number | undefined;
  };
  const real = (key: string): number | undefined => {
    const e = h.metadata.get(key);
    if (e && !(isNumericType(e.type) && typeof e.value === "number" && Number.isFinite(e.value))) fail(`${key} should be a finite number, found ${ggufValueText(e)}`);
    return e?.value as number | undefined;
  };
  const text = (key: string): string | undefined => {
    const e = h.metadata.get(key);
    if (e && e.type !== GGUF_TYPE.STRING) fail(`${key} should be a string, found ${ggufValueText(e)}`);
    return e?.value as string | undefined;
  };
  const archKV = h.metadata.get("general.architecture");
  if (!archKV) return fail(`no general.architecture in the metadata`);
  const arch = archKV.value;
  if (typeof arch !== "string") return fail(`general.architecture should be a string, found ${ggufValueText(archKV)}`);
  const spec = archSpec(arch);
  if (!spec) return fail(`architecture ${quoted(arch)} is not supported (wasmformer maps ${archList()})`);
  const cfg: Record<string, unknown> = { model_type: arch, architectures: [spec.hfClass] };
  for (const r of spec.config) {
    const key = `${arch}.${r.gguf}`;
    const v = r.type === "u32" ? integer(key) : real(key);
    if (v === undefined) {
      if (r.required) fail(`no ${key} in the metadata (needed for ${r.hf[0]})`);
      continue;
    }
    cfg[r.hf[0]] = v;
  }
  const tokens = h.metadata.get("tokenizer.ggml.tokens")?.value;
  const vocab = h.tensors.get("token_embd.weight")?.dims[1] ?? integer(`${arch}.vocab_size`) ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocab !== undefined) cfg.vocab_size = vocab;
  if (spec.tied) cfg.tie_word_embeddings = spec.tied === "always" || !h.tensors.has("output.weight");
  const ctx: ImportContext = {
    arch,
    file: h.file,
    cfg,
    integer,
    real,
    text,
    fail,
    tensor(name) {
      const t = h.tensors.get(name);
      if (!t) return undefined;
      return {
        dims: t.dims,
        values: () => dequantize(t.type, h.data(t), t.elements) ?? fail(`tensor ${quoted(name)} is of a type wasmformer cannot read`, "WF409"),
      };
    },
  };
  spec.importConfig?.(ctx);
  for (const t of ["bos", "eos", "pad"] as const) {
    const v = integer(`tokenizer.ggml.${t}_token_id`);
    if (v !== undefined) cfg[`${t}_token_id`] = v;
  }
  return cfg;
}

/** Sizes usable as tensor shapes (positive integers): checks are left to the model's config checks otherwise. */
const validShape = (shape: readonly number[]) => shape.every((n) => Number.isInteger(n) && n > 0);
const dimsText = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/** The HF shape `rule` requires for the sizes, or undefined where they give no usable shape. */
function expectedShape(rule: TensorRule, s: Sizes): readonly number[] | undefined {
  const shape = rule.shape(s);
  return validShape(shape) ? shape : undefined;
}

/** The block index of a name matching `pattern`, or undefined for a name outside the blocks. */
const blockOf = (pattern: string, name: string) => {
  const i = match(pattern, name);
  return i ? Number(i) : undefined;
};

export interface HfTensor {
  readonly name: string;
  readonly shape: readonly number[];
  /** GGUF's layout (dequantized) → HF's. */
  readonly convert: (w: Float32Array) => Float32Array;
}

/**
 * The HF view of a mapped architecture's tensors, or undefined for an architecture not mapped.
 * Every tensor the family needs must be present, each in the shape the config gives it (where the
 * config's sizes are positive integers; other configs are the model's config checks to refuse).
 */
export function ggufArch(h: GgufHeader): { toHf(t: GgufTensor): HfTensor | undefined } | undefined {
  const arch = h.metadata.get("general.architecture")?.value;
  const spec = typeof arch === "string" ? archSpec(arch) : undefined;
  if (!spec) return undefined;
  const cfg = ggufConfig(h);
  const fail = (m: string, code: Code): never => {
    throw new InputError(`${h.file}: ${m}`, undefined, { code });
  };
  const sizes = spec.sizes(cfg, (cfg.vocab_size as number | undefined) ?? Number.NaN);
  const heads = cfg.num_attention_heads as number, kvHeads = (cfg.num_key_value_heads as number | undefined) ?? heads;
  // a config of no model (0 layers, ...) is for the model's config checks to report, not the tensors
  const check = validShape([sizes.d, sizes.layers, sizes.heads, sizes.kvHeads, sizes.headDim, sizes.ffn]);
  const missing = check && missingTensor(spec, sizes.layers, (n) => h.tensors.has(n));
  if (missing) fail(`no tensor ${quoted(missing.gguf)} (${arch} needs it for ${missing.hf})`, "WF401");
  return {
    toHf(t) {
      for (const r of spec.tensors) {
        const name = rename(r.gguf, r.hf, t.name);
        if (name === undefined) continue;
        const block = blockOf(r.gguf, t.name);
        if (check && block !== undefined && block >= sizes.layers) fail(`tensor ${quoted(t.name)} is in block ${block}, but ${arch}.block_count is ${sizes.layers}`, "WF305");
        const layout = r.layout ?? "same";
        const ggml = [...t.dims].reverse();
        const shape = layout === "transpose" && ggml.length === 2 ? [ggml[1], ggml[0]] : ggml;
        const want = check ? expectedShape(r, sizes) : undefined;
        if (want && dimsText(want) !== dimsText(shape))
          fail(`tensor ${quoted(t.name)} (${name}) has shape ${dimsText(shape)}, expected ${dimsText(want)} for the config`, "WF305");
        if (layout === "transpose" && ggml.length === 2) return { name, shape, convert: (w) => transpose(w, ggml[0], ggml[1]) };
        if (layout === "rope-q" || layout === "rope-k")
          return { name, shape, convert: (w) => permuteRope(w, shape[0], layout === "rope-q" ? heads : kvHeads, "hf", h.file, t.name) };
        if (layout === "plus-one") return { name, shape, convert: (w) => plusOne(w, -1) };
        return { name, shape, convert: (w) => w };
      }
      return undefined;
    },
  };
}

/** The GGUF name, layout and rule for an HF tensor name (with or without the architecture's prefix). */
export function ggufName(spec: ArchSpec, hfName: string): { name: string; layout: Layout; rule: TensorRule } | undefined {
  for (const candidate of [hfName, spec.hfPrefix + hfName])
    for (const r of spec.tensors) {
      const name = rename(r.hf, r.gguf, candidate);
      if (name !== undefined) return { name, layout: r.layout ?? "same", rule: r };
    }
  return undefined;
}

/**
 * Checks an HF tensor against the rule it maps to: its block within the config's layers, its shape
 * the one the config gives it. `what` names the source for messages.
 */
export function checkHfTensor(what: string, spec: ArchSpec, m: { name: string; rule: TensorRule }, hfName: string, shape: readonly number[], sizes: Sizes) {
  const fail = (msg: string, code: Code): never => {
    throw new InputError(`${what}: ${msg}`, undefined, { code });
  };
  const block = blockOf(m.rule.gguf, m.name);
  if (block !== undefined && Number.isInteger(sizes.layers) && block >= sizes.layers)
    fail(`tensor ${quoted(hfName)} is in layer ${block}, but the config has ${sizes.layers} layers`, "WF305");
  const want = expectedShape(m.rule, sizes);
  if (want && dimsText(want) !== dimsText(shape)) fail(`tensor ${quoted(hfName)} has shape ${dimsText(shape)}, expected ${dimsText(want)} for the config`, "WF305");
}

/** The first GGUF name a family needs that `have` lacks, with the HF name it comes from. */
export function missingTensor(spec: ArchSpec, layers: number, have: (ggufName: string) => boolean): { gguf: string; hf: string } | undefined {
  for (const r of spec.tensors) {
    if (r.optional) continue;
    const n = r.gguf.includes("{i}") ? layers : 1;
    for (let i = 0; i < n; i++) {
      const gguf = r.gguf.replace("{i}", String(i));
      if (!have(gguf)) return { gguf, hf: r.hf.replace("{i}", String(i)) };
    }
  }
  return undefined;
}
