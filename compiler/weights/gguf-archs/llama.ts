// LLaMA and the Qwen decoders in GGUF, as llama.cpp's converter writes them.
// - llama: q/k rows permuted for the interleaved rotary (layouts rope-q / rope-k); optional
//   q/k/v/o biases; rope scaling linear and yarn as `llama.rope.scaling.*` keys, llama3 as a
//   `rope_freqs.weight` tensor of per-frequency divisors and no key. Those divisors fix only the
//   factor and the wavelength bounds original/low and original/high, so the import solves
//   rope_scaling with low_freq_factor 1 (every Llama 3.x config) unless the metadata names the
//   original context; another config reads back as the one with the same divisors. The export
//   takes the original context from rope_scaling, as transformers does (the converter reads a
//   top-level key that Llama 3.x configs lack, so uses 8192 whatever rope_scaling says).
// - qwen2: NEOX rotary, so no permutation; q/k/v biases always, none on o.
// - qwen3: qwen2 without the biases, with per-head q/k RMSNorms (attn_q_norm / attn_k_norm) and an
//   explicit head_dim (`qwen3.attention.key_length`).

import { type ArchSpec, type ConfigRule, type ExportContext, type ImportContext, type Sizes, type TensorRule, hfSizes, shortest, withBias } from "./types.js";

const t = (gguf: string, hf: string, shape: (s: Sizes) => readonly number[], more: Partial<TensorRule> = {}): TensorRule => ({ gguf, hf, shape, ...more });
const L = "model.layers.{i}.";

function decoder(o: { permute?: boolean; qkvBias: "optional" | "required" | "none"; oBias: boolean; qkNorm?: boolean }): TensorRule[] {
  const q = t("blk.{i}.attn_q.weight", `${L}self_attn.q_proj.weight`, (s) => [s.heads * s.headDim, s.d], o.permute ? { layout: "rope-q" } : {});
  const k = t("blk.{i}.attn_k.weight", `${L}self_attn.k_proj.weight`, (s) => [s.kvHeads * s.headDim, s.d], o.permute ? { layout: "rope-k" } : {});
  const v = t("blk.{i}.attn_v.weight", `${L}self_attn.v_proj.weight`, (s) => [s.kvHeads * s.headDim, s.d]);
  const out = t("blk.{i}.attn_output.weight", `${L}self_attn.o_proj.weight`, (s) => [s.d, s.heads * s.headDim]);
  const qkv = o.qkvBias === "none" ? [q, k, v] : withBias([q, k, v], o.qkvBias === "optional");
  const norms = o.qkNorm
    ? [t("blk.{i}.attn_q_norm.weight", `${L}self_attn.q_norm.weight`, (s) => [s.headDim]), t("blk.{i}.attn_k_norm.weight", `${L}self_attn.k_norm.weight`, (s) => [s.headDim])]
    : [];
  return [
    t("token_embd.weight", "model.embed_tokens.weight", (s) => [s.vocab, s.d]),
    t("output_norm.weight", "model.norm.weight", (s) => [s.d]),
    t("output.weight", "lm_head.weight", (s) => [s.vocab, s.d], { optional: true }),
    t("blk.{i}.attn_norm.weight", `${L}input_layernorm.weight`, (s) => [s.d]),
    ...qkv,
    ...norms,
    ...(o.oBias ? withBias([out], true) : [out]),
    t("blk.{i}.ffn_norm.weight", `${L}post_attention_layernorm.weight`, (s) => [s.d]),
    t("blk.{i}.ffn_gate.weight", `${L}mlp.gate_proj.weight`, (s) => [s.ffn, s.d]),
    t("blk.{i}.ffn_up.weight", `${L}mlp.up_proj.weight`, (s) => [s.ffn, s.d]),
    t("blk.{i}.ffn_down.weight", `${L}mlp.down_proj.weight`, (s) => [s.d, s.ffn]),
  ];
}

/** The keys every decoder here shares (llama.cpp's TextModel). */
const shared = (): ConfigRule[] => [
  { hf: ["hidden_size"], gguf: "embedding_length", type: "u32", required: true },
  { hf: ["num_hidden_layers"], gguf: "block_count", type: "u32", required: true },
  { hf: ["num_attention_heads"], gguf: "attention.head_count", type: "u32", required: true },
  { hf: ["num_key_value_heads"], gguf: "attention.head_count_kv", type: "u32", fallback: (s) => s.heads },
  { hf: ["intermediate_size"], gguf: "feed_forward_length", type: "u32", required: true },
  { hf: ["rms_norm_eps"], gguf: "attention.layer_norm_rms_epsilon", type: "f32", fallback: 1e-6 },
  { hf: ["rope_theta"], gguf: "rope.freq_base", type: "f32", fallback: 10000 },
  { hf: ["max_position_embeddings"], gguf: "context_length", type: "u32", required: true },
  { hf: ["head_dim"], gguf: "attention.key_length", type: "u32" },
];

/** The converter's default original context for llama3 factors (it reads a top-level original_max_position_embeddings, which Llama 3.x configs do not have). */
export const LLAMA3_ORIGINAL_CONTEXT = 8192;

interface Llama3 {
  readonly factor: number;
  readonly low: number;
  readonly high: number;
  /** original_max_position_embeddings */
  readonly ctx: number;
}

/**
 * llama.cpp's converter's llama3 rope factors, one per rotary frequency: 1 above the high-frequency
 * wavelength bound, `factor` below the low one, a smooth blend between; each step rounded to f32
 * as its float32 torch code rounds.
 */
export function llama3Factors(theta: number, dim: number, p: Llama3): Float32Array {
  const f = Math.fround;
  const lowWl = p.ctx / p.low, highWl = p.ctx / p.high;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < out.length; i++) {
    const freq = f(1 / f(f(theta) ** f((2 * i) / dim)));
    const wl = f(f(1 / freq) * f(2 * Math.PI));
    if (wl < highWl) out[i] = 1;
    else if (wl > lowWl) out[i] = p.factor;
    else {
      const smooth = f(f(f(f(1 / wl) * f(p.ctx)) - f(p.low)) / f(p.high - p.low));
      out[i] = f(1 / f(f(f(1 - smooth) / f(p.factor)) + smooth));
    }
  }
  return out;
}

/** Relative difference two factor lists may have and still be the same llama3 scaling. */
const FACTOR_TOLERANCE = 1e-5;

/**
 * The llama3 parameters whose factors are `F`. The factors fix only the factor and the wavelength
 * bounds ctx/low and ctx/high, so one of ctx and low has to be taken: with `ctx` given (the
 * metadata's original context) low and high are solved; without, low is 1, as in every Llama 3.x
 * config, and ctx and high are solved. The blended entries give the bounds (two or more: solved;
 * one: high/low = 4, the default ratio; none: anything between the bands); each value is then the
 * shortest decimal that still gives `F`, the converter's defaults (8, 8192, 1, 4) first.
 */
export function llama3FromFactors(F: Float32Array, theta: number, ctx?: number): Llama3 | undefined {
  // an original context that low 1 would make fractional: the converter's 8192, low solved
  return solveLlama3(F, theta, ctx) ?? (ctx === undefined ? solveLlama3(F, theta, LLAMA3_ORIGINAL_CONTEXT) : undefined);
}

function solveLlama3(F: Float32Array, theta: number, ctx: number | undefined): Llama3 | undefined {
  const dim = 2 * F.length;
  const same = (p: Llama3) =>
    Number.isInteger(p.ctx) && p.ctx > 0 && p.low !== p.high && llama3Factors(theta, dim, p).every((x, i) => Math.abs(x - F[i]) <= FACTOR_TOLERANCE * Math.max(1, F[i]));
  const f = Math.fround;
  const wl = Array.from(F, (_, i) => f(f(1 / f(1 / f(f(theta) ** f((2 * i) / dim)))) * f(2 * Math.PI)));
  const max = Math.max(...F);
  for (const factor of [...new Set([max, 8])].filter((x) => x >= max)) {
    const blended = [...F.keys()].filter((i) => F[i] > 1 + FACTOR_TOLERANCE && F[i] < factor * (1 - FACTOR_TOLERANCE));
    // 1/F = (1 − s)/factor + s, and ctx/wl = low + s·(high − low)
    const s = (i: number) => (factor > 1 ? (1 / F[i] - 1 / factor) / (1 - 1 / factor) : 0);
    const x = (i: number) => 1 / wl[i];
    const candidates: Llama3[] = [];
    const [a, b] = [blended[0], blended[blended.length - 1]];
    if (ctx !== undefined) {
      if (blended.length >= 2) {
        const slope = (ctx * x(b) - ctx * x(a)) / (s(b) - s(a)), low = ctx * x(a) - slope * s(a);
        candidates.push({ factor, ctx, low, high: low + slope });
      } else if (blended.length === 1) {
        candidates.push({ factor, ctx, low: 1, high: 1 + (ctx * x(a) - 1) / s(a) });
        const low = (ctx * x(a)) / (1 + 3 * s(a));
        candidates.push({ factor, ctx, low, high: 4 * low });
      } else candidates.push({ factor, ctx, low: 1, high: 4 });
    } else if (blended.length >= 2) {
      // ctx·x − s·(high − 1) = 1 at both ends
      const det = s(a) * x(b) - x(a) * s(b);
      candidates.push({ factor, ctx: (s(a) - s(b)) / det, low: 1, high: 1 + (x(a) - x(b)) / det });
    } else if (blended.length === 1) candidates.push({ factor, ctx: (1 + 3 * s(a)) / x(a), low: 1, high: 4 });
    else {
      // ones below ctx/4, factors above ctx
      const ones = [...F.keys()].filter((i) => F[i] <= 1 + FACTOR_TOLERANCE), rest = [...F.keys()].filter((i) => F[i] > 1 + FACTOR_TOLERANCE);
      const lo = ones.length ? 4 * wl[ones[ones.length - 1]] : 0, hi = rest.length ? wl[rest[0]] : 2 * lo;
      candidates.push({ factor, ctx: LLAMA3_ORIGINAL_CONTEXT, low: 1, high: 4 }, { factor, ctx: Math.ceil((lo + hi) / 2), low: 1, high: 4 });
    }
    for (let p of candidates) {
      if (![p.ctx, p.low, p.high].every(Number.isFinite)) continue;
      p = { ...p, ctx: Math.round(p.ctx) };
      if (!same(p)) continue;
      for (const [key, preferred] of [["factor", 8], ["ctx", LLAMA3_ORIGINAL_CONTEXT], ["low", 1], ["high", 4]] as const) {
        const v = shortest(p[key], (y) => same({ ...p, [key]: y }), preferred);
        if (v !== undefined) p = { ...p, [key]: v };
      }
      return p;
    }
  }
  return undefined;
}

/** config.rope_scaling (or transformers 5's rope_parameters) as an object, or undefined for none. */
export function ropeScaling(config: Record<string, unknown>, fail: (m: string) => never): { type: string; get: (k: string) => unknown } | undefined {
  const rs = config.rope_scaling ?? config.rope_parameters;
  if (rs === undefined || rs === null) return undefined;
  if (typeof rs !== "object" || Array.isArray(rs)) return fail(`config rope_scaling should be an object, found ${JSON.stringify(rs)}`);
  const o = rs as Record<string, unknown>;
  const type = o.rope_type ?? o.type;
  if (type === undefined || type === "default") return undefined;
  if (typeof type !== "string") return fail(`config rope_scaling.rope_type should be a string, found ${JSON.stringify(type)}`);
  return { type, get: (k) => o[k] };
}

/** Rope scaling → metadata (linear, yarn) or the rope_freqs tensor (llama3, llama only), as the converter writes it. */
function exportRope(c: ExportContext) {
  const rs = ropeScaling(c.config, (m) => c.fail(m, "WF302"));
  if (!rs) return;
  const need = (k: string): number => {
    const v = rs.get(k);
    if (typeof v !== "number" || !Number.isFinite(v)) return c.fail(`config rope_scaling.${k} should be a number for rope_type '${rs.type}', found ${JSON.stringify(v) ?? "nothing"}`, "WF301");
    return v;
  };
  const opt = (k: string, ...alt: string[]) => [k, ...alt].map(rs.get).find((v) => typeof v === "number") as number | undefined;
  if (rs.type === "linear") {
    c.set("rope.scaling.type", "string", "linear");
    c.set("rope.scaling.factor", "f32", need("factor"));
  } else if (rs.type === "yarn") {
    c.set("rope.scaling.type", "string", "yarn");
    c.set("rope.scaling.factor", "f32", need("factor"));
    c.set("rope.scaling.original_context_length", "u32", need("original_max_position_embeddings"));
    for (const [key, hf] of [["yarn_ext_factor", ["extrapolation_factor"]], ["yarn_attn_factor", ["attention_factor", "attn_factor"]], ["yarn_beta_fast", ["beta_fast"]], ["yarn_beta_slow", ["beta_slow"]]] as const) {
      const v = opt(hf[0], ...hf.slice(1));
      if (v !== undefined) c.set(`rope.scaling.${key}`, "f32", v);
    }
  } else if (rs.type === "llama3" && c.arch === "llama") {
    const p = { factor: opt("factor") ?? 8, low: opt("low_freq_factor") ?? 1, high: opt("high_freq_factor") ?? 4, ctx: opt("original_max_position_embeddings") ?? (c.config.original_max_position_embeddings as number | undefined) ?? LLAMA3_ORIGINAL_CONTEXT };
    if (p.low === p.high) c.fail(`config rope_scaling low_freq_factor and high_freq_factor are both ${p.low}; llama3 scaling blends between two different bounds`, "WF304");
    const theta = typeof c.config.rope_theta === "number" ? c.config.rope_theta : 10000;
    c.tensor("rope_freqs.weight", llama3Factors(theta, c.sizes.headDim, p));
  } else {
    c.fail(`config rope_scaling type '${rs.type}' has no GGUF form for ${c.arch} (llama.cpp's converter writes linear, yarn${c.arch === "llama" ? " and llama3" : ""})`, "WF303");
  }
}

/** `<arch>.rope.scaling.*` keys, or a rope_freqs tensor (llama), → config.json's rope_scaling. */
function importRope(c: ImportContext) {
  const key = (k: string) => `${c.arch}.rope.scaling.${k}`;
  const type = c.text(key("type"));
  const freqs = c.tensor("rope_freqs.weight");
  if (type !== undefined && type !== "none") {
    if (freqs) c.fail(`rope_freqs.weight and ${key("type")} '${type}' both scale the rotary frequencies; wasmformer maps one or the other`);
    if (type !== "linear" && type !== "yarn") c.fail(`${key("type")} '${type}' is not a scaling wasmformer maps for ${c.arch} (none, linear, yarn)`);
    const need = (k: string, hf: string, read: (k: string) => number | undefined = c.real) => read(key(k)) ?? c.fail(`no ${key(k)} in the metadata (needed for rope_scaling.${hf})`);
    const rs: Record<string, unknown> = { rope_type: type, factor: need("factor", "factor") };
    if (type === "yarn") {
      rs.original_max_position_embeddings = need("original_context_length", "original_max_position_embeddings", c.integer);
      for (const [k, hf] of [["yarn_ext_factor", "extrapolation_factor"], ["yarn_attn_factor", "attention_factor"], ["yarn_beta_fast", "beta_fast"], ["yarn_beta_slow", "beta_slow"]]) {
        const v = c.real(key(k));
        if (v !== undefined) rs[hf] = v;
      }
    }
    c.cfg.rope_scaling = rs;
    return;
  }
  if (!freqs || c.arch !== "llama") return;
  const dim = c.integer(`${c.arch}.rope.dimension_count`) ?? (c.cfg.head_dim as number | undefined) ?? (c.cfg.hidden_size as number) / (c.cfg.num_attention_heads as number);
  const n = freqs.dims.reduce((a, b) => a * b, 1);
  if (freqs.dims.length !== 1 || n !== dim / 2) c.fail(`tensor 'rope_freqs.weight' has dims [${freqs.dims.join(", ")}], expected [${dim / 2}] (one factor per pair of the ${dim} rotary dimensions)`, "WF305");
  const theta = (c.cfg.rope_theta as number | undefined) ?? 10000;
  const ctx = c.integer(key("original_context_length"));
  const p = llama3FromFactors(freqs.values(), theta, ctx);
  if (!p) c.fail(`tensor 'rope_freqs.weight' holds factors that no llama3 rope_scaling gives (rope theta ${theta}, ${dim} rotary dimensions)`);
  c.cfg.rope_scaling = { rope_type: "llama3", factor: p.factor, low_freq_factor: p.low, high_freq_factor: p.high, original_max_position_embeddings: p.ctx };
}

const setKeyLength = (c: ExportContext, always: boolean) => {
  if (always && !c.has("attention.key_length")) c.set("attention.key_length", "u32", c.sizes.headDim);
  if (c.has("attention.key_length")) c.set("attention.value_length", "u32", c.sizes.headDim);
};

export const llama: ArchSpec = {
  hfClass: "LlamaForCausalLM",
  hfPrefix: "model.",
  tensors: decoder({ permute: true, qkvBias: "optional", oBias: true }),
  config: shared(),
  sizes: hfSizes,
  tied: "no-output",
  importConfig: importRope,
  exportConfig(c) {
    setKeyLength(c, true);
    c.set("rope.dimension_count", "u32", c.sizes.headDim);
    c.set("vocab_size", "u32", c.sizes.vocab);
    exportRope(c);
  },
};

export const qwen2: ArchSpec = {
  hfClass: "Qwen2ForCausalLM",
  hfPrefix: "model.",
  tensors: decoder({ qkvBias: "required", oBias: false }),
  config: shared(),
  sizes: hfSizes,
  tied: "no-output",
  importConfig: importRope,
  exportConfig(c) {
    setKeyLength(c, false);
    exportRope(c);
  },
};

export const qwen3: ArchSpec = {
  hfClass: "Qwen3ForCausalLM",
  hfPrefix: "model.",
  tensors: decoder({ qkvBias: "optional", oBias: true, qkNorm: true }),
  config: shared(),
  sizes: hfSizes,
  tied: "no-output",
  importConfig: importRope,
  exportConfig(c) {
    setKeyLength(c, true);
    exportRope(c);
  },
};
