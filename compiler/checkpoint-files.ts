// What generation needs from a checkpoint folder besides config.json and the weights: the chat
// template and the special tokens it reads (tokenizer_config.json, or chat_template.jinja beside
// it), and generation_config.json's end-of-sequence ids and default sampling settings. A file
// that is present but unusable is one coded error naming it; an absent one is fine.

import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "@wasmformer/runtime/manifest";
import { InputError } from "./diagnostics.js";

/** The largest tokenizer_config.json / generation_config.json / chat template read. */
const MAX_BYTES = 16 << 20;

function readJson(path: string, code: "WF351" | "WF352" | "WF354"): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  const size = statSync(path).size;
  if (size > MAX_BYTES) throw new InputError(`${path}: ${size} bytes is more than the ${MAX_BYTES} read of this file`, undefined, { code });
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    v = undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new InputError(`${path}: not a JSON object`, undefined, { code });
  return v as Record<string, unknown>;
}

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken {content}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

export interface ChatFiles {
  /** The template's text, written to the artifact as chat_template.jinja. */
  template: string;
  bos_token?: string;
  eos_token?: string;
}

/** The checkpoint's chat template and its special tokens, or undefined when it has none. */
export function readChatTemplate(dir: string): ChatFiles | undefined {
  const configPath = join(dir, "tokenizer_config.json");
  const cfg = readJson(configPath, "WF351") ?? {};
  let template: unknown = cfg.chat_template;
  let from = `${configPath} 'chat_template'`;
  const jinja = join(dir, "chat_template.jinja");
  if (template === undefined && existsSync(jinja)) {
    if (statSync(jinja).size > MAX_BYTES) throw new InputError(`${jinja}: more than the ${MAX_BYTES} bytes read of a template`, undefined, { code: "WF351" });
    template = readFileSync(jinja, "utf8");
    from = jinja;
  }
  if (template === undefined) return undefined;
  if (Array.isArray(template)) {
    // named templates: the "default" one
    const named = template.find((t) => typeof t === "object" && t !== null && (t as { name?: unknown }).name === "default");
    template = (named as { template?: unknown } | undefined)?.template;
    from += ' (the one named "default")';
  }
  if (typeof template !== "string" || template === "") throw new InputError(`${from}: should be a template's text`, undefined, { code: "WF351" });
  return { template, bos_token: tokenText(cfg.bos_token), eos_token: tokenText(cfg.eos_token) };
}

const SAMPLING: Record<string, [key: keyof NonNullable<Manifest["generation"]>, ok: (v: number) => boolean, want: string]> = {
  temperature: ["temperature", (v) => v >= 0, "a number ≥ 0"],
  top_k: ["top_k", (v) => Number.isSafeInteger(v) && v >= 0, "an integer ≥ 0"],
  top_p: ["top_p", (v) => v > 0 && v <= 1, "a number in (0, 1]"],
  min_p: ["min_p", (v) => v >= 0 && v <= 1, "a number in [0, 1]"],
  repetition_penalty: ["repetition_penalty", (v) => v > 0, "a number > 0"],
  max_new_tokens: ["max_new_tokens", (v) => Number.isSafeInteger(v) && v >= 0, "an integer ≥ 0"],
};

/**
 * A seq2seq checkpoint's forced_bos_token_id (an id) and forced_eos_token_id (an id or a list)
 * from config.json or generation_config.json (`file`, its diagnostic `code`); null or absent: none.
 */
export function forcedTokens(hf: Record<string, unknown>, vocab: number, file: string, code: "WF350" | "WF352"): { forced_bos?: number; forced_eos?: number[] } {
  const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < vocab;
  const bad = (key: string) => new InputError(`${file} '${key}' should be a token id in [0, ${vocab})${key === "forced_eos_token_id" ? " or a list of them" : ""}, found ${JSON.stringify(hf[key])}`, undefined, { code });
  const out: { forced_bos?: number; forced_eos?: number[] } = {};
  const bos = hf.forced_bos_token_id, eos = hf.forced_eos_token_id;
  if (bos !== undefined && bos !== null) {
    if (!isId(bos)) throw bad("forced_bos_token_id");
    out.forced_bos = bos;
  }
  if (eos !== undefined && eos !== null) {
    const ids = Array.isArray(eos) ? eos : [eos];
    if (ids.length === 0 || ids.length > 64 || !ids.every(isId)) throw bad("forced_eos_token_id");
    out.forced_eos = ids;
  }
  return out;
}

/**
 * generation_config.json: its EOS ids (to merge with config.json's) and the sampling settings
 * the checkpoint ships (applied when the user sets none; sampling only when do_sample is true).
 */
export function readGenerationConfig(dir: string, vocab: number): { eos: number[]; generation?: Manifest["generation"]; forced?: { forced_bos?: number; forced_eos?: number[] } } {
  const path = join(dir, "generation_config.json");
  const g = readJson(path, "WF352");
  if (!g) return { eos: [] };
  const bad = (key: string, want: string) => new InputError(`${path} '${key}' should be ${want}, found ${JSON.stringify(g[key])}`, undefined, { code: "WF352" });
  const isId = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < vocab;
  const eosRaw = g.eos_token_id ?? [];
  const eos = Array.isArray(eosRaw) ? eosRaw : [eosRaw];
  if (eos.length > 64 || !eos.every(isId)) throw bad("eos_token_id", `a token id in [0, ${vocab}) or a list of them`);
  const generation: NonNullable<Manifest["generation"]> = {};
  if (g.do_sample !== undefined) {
    if (typeof g.do_sample !== "boolean") throw bad("do_sample", "true or false");
    generation.do_sample = g.do_sample;
  }
  for (const [key, [name, ok, want]] of Object.entries(SAMPLING)) {
    const v = g[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw bad(key, want);
    (generation as Record<string, number>)[name] = v;
  }
  return { eos: eos as number[], generation: Object.keys(generation).length ? generation : undefined, forced: forcedTokens(g, vocab, path, "WF352") };
}

/** Image processors whose steps are ViTImageProcessor's (the only ones the runtime implements). */
const VIT_PROCESSORS = ["ViTImageProcessor", "ViTImageProcessorFast", "ViTFeatureExtractor"];

/**
 * How an image becomes the pixel values of an image input of `shape` [channels, height, width],
 * from preprocessor_config.json as transformers' ViTImageProcessor reads it: its defaults for the
 * keys left out, `size` an int or {height, width} equal to the input's, `image_mean`/`image_std`
 * one number or one a channel. Steps the runtime does not implement (center cropping, another
 * processor, a filter other than PIL's convolutions) are one WF354 error; no file, undefined.
 */
export function readImageProcessor(dir: string, shape: readonly number[]): Manifest["image"] {
  const path = join(dir, "preprocessor_config.json");
  const cfg = readJson(path, "WF354");
  if (!cfg) return undefined;
  const fail = (key: string, want: string) => new InputError(`${path} '${key}' ${want}, found ${JSON.stringify(cfg[key])}`, undefined, { code: "WF354" });
  const get = (key: string, dflt: unknown) => cfg[key] ?? dflt;
  const flag = (key: string, dflt: boolean) => {
    const v = get(key, dflt);
    if (typeof v !== "boolean") throw fail(key, "should be true or false");
    return v;
  };
  const [C, H, W] = shape;
  const typeKey = cfg.image_processor_type !== undefined ? "image_processor_type" : "feature_extractor_type";
  if (cfg[typeKey] !== undefined && !VIT_PROCESSORS.includes(cfg[typeKey] as string)) throw fail(typeKey, `is not one whose steps wasmformer implements (${VIT_PROCESSORS.join(", ")})`);
  if (flag("do_center_crop", false)) throw fail("do_center_crop", "should be false: center cropping is not implemented");
  const resize = flag("do_resize", true);
  if (resize) {
    const size = get("size", { height: 224, width: 224 }) as Record<string, unknown> | number;
    const [h, w] = typeof size === "number" ? [size, size] : typeof size === "object" && size !== null ? [size.height, size.width] : [];
    if (h !== H || w !== W) throw fail("size", `should be the model's image size, ${H} or {"height": ${H}, "width": ${W}}`);
  }
  const resample = get("resample", 2);
  if (!Number.isInteger(resample) || (resample as number) < 1 || (resample as number) > 5)
    throw fail("resample", "should be a PIL filter from 1 to 5 (Lanczos, bilinear, bicubic, box, Hamming)");
  const rescaleFactor = get("rescale_factor", 1 / 255);
  if (typeof rescaleFactor !== "number" || !Number.isFinite(rescaleFactor)) throw fail("rescale_factor", "should be a finite number");
  const perChannel = (key: string, dflt: number) => {
    const v = get(key, dflt);
    const values = typeof v === "number" ? Array<number>(C).fill(v) : v;
    const positive = key === "image_std";
    if (!Array.isArray(values) || values.length !== C || !values.every((x) => typeof x === "number" && Number.isFinite(x) && (!positive || x > 0)))
      throw fail(key, `should be a ${positive ? "positive " : ""}number or a list of ${C} (one a channel)`);
    return values as number[];
  };
  return {
    resize,
    resample: resample as number,
    rescale: flag("do_rescale", true),
    rescale_factor: rescaleFactor,
    normalize: flag("do_normalize", true),
    // transformers' IMAGENET_STANDARD_MEAN and _STD
    mean: perChannel("image_mean", 0.5),
    std: perChannel("image_std", 0.5),
  };
}
