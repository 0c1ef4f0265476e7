// The front half of a compile: read a .wf model and a checkpoint into a verified IR program.

import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { verifyProgram } from "../ir/graph.js";
import type { Program } from "../ir/types.js";
import { InputError, registerSource } from "./diagnostics.js";
import { checkModel } from "./frontend/check.js";
import { type ElaborateOptions, elaborate } from "./frontend/elaborate.js";
import { checkSourceSize, parseModel } from "./frontend/parser.js";
import { ggufConfig } from "./weights/gguf-arch.js";
import { readGgufHeader } from "./weights/gguf.js";
import { openGguf } from "./weights/gguf-source.js";
import { openSafetensors } from "./weights/safetensors.js";
import type { WeightSource } from "./weights/source.js";

/** A text file the user named (`what`: "model", "config"); missing, a folder or unreadable is WF605. */
export function readText(path: string, what: string): string {
  const fail = (why: string) => new InputError(`${what} '${path}' ${why}`, undefined, { code: "WF605" });
  if (!existsSync(path)) throw fail("does not exist");
  if (statSync(path).isDirectory()) throw fail("is a folder, not a file");
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw fail(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** A .gguf file carries its own config (in its metadata) and tensors. */
const isGguf = (path: string) => path.toLowerCase().endsWith(".gguf") && statSync(path).isFile();

export function readHfConfig(dir: string): Record<string, unknown> {
  if (!existsSync(dir)) throw new InputError(`weights '${dir}' do not exist`, undefined, { code: "WF402" });
  if (isGguf(dir)) return ggufConfig(readGgufHeader(dir));
  const path = statSync(dir).isDirectory() ? join(dir, "config.json") : join(dir, "..", "config.json");
  const text = readText(path, "config");
  try {
    const cfg = JSON.parse(text);
    if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) throw new Error();
    // as transformers' PretrainedConfig: num_labels is the size of id2label when not written
    if (cfg.num_labels === undefined && typeof cfg.id2label === "object" && cfg.id2label !== null) cfg.num_labels = Object.keys(cfg.id2label).length;
    // as DeBERTa's configs: pos_att_type written as "p2c|c2p" is the list of its names
    if (typeof cfg.pos_att_type === "string") cfg.pos_att_type = cfg.pos_att_type.toLowerCase().split("|").map((x: string) => x.trim());
    return cfg;
  } catch {
    throw new InputError(`${path}: not a JSON object`, undefined, { code: "WF306" });
  }
}

export function openWeights(path: string): WeightSource {
  if (!existsSync(path)) throw new InputError(`weights '${path}' do not exist`, undefined, { code: "WF402" });
  return isGguf(path) ? openGguf(path) : openSafetensors(path);
}

export interface LoadOptions extends ElaborateOptions {
  /** Wraps the checkpoint before the model binds it (compile --lora merges adapters there). */
  mapWeights?: (source: WeightSource) => WeightSource;
  /** Values that replace config.json's (compile --config), by dotted key. */
  config?: readonly ConfigOverride[];
}

/** A config.json value to replace: `key` dotted as the DSL's `from` keys (`rope_scaling.factor`, `architectures.0`). */
export interface ConfigOverride {
  key: string;
  value: unknown;
}

/**
 * `hf` with each override's value set at its dotted key (objects made along the way; a list
 * index within or just past the list's end).
 */
export function withConfig(hf: Record<string, unknown>, overrides: readonly ConfigOverride[] = []): Record<string, unknown> {
  const out = structuredClone(hf);
  for (const { key, value } of overrides) {
    const parts = key.split(".");
    let at: Record<string, unknown> | unknown[] = out;
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const index = Array.isArray(at) ? Number(part) : NaN;
      if (Array.isArray(at) && !(/^\d+$/.test(part) && index <= at.length))
        throw new InputError(`--config ${key}: '${parts.slice(0, i).join(".")}' is a list of ${at.length}, so '${part}' should be an index up to ${at.length}`, undefined, { code: "WF601" });
      const holder = at as Record<string, unknown>;
      const k = Array.isArray(at) ? index : part;
      if (last) holder[k as string] = value;
      else {
        const next = holder[k as string];
        if (typeof next !== "object" || next === null) holder[k as string] = /^\d+$/.test(parts[i + 1]) ? [] : {};
        at = holder[k as string] as Record<string, unknown>;
      }
    });
  }
  return out;
}

export function loadProgram(modelPath: string, weightsPath: string, { mapWeights, config, ...opts }: LoadOptions = {}): Program {
  if (existsSync(modelPath)) checkSourceSize(modelPath, statSync(modelPath).size);
  const text = readText(modelPath, "model");
  const opened = openWeights(weightsPath);
  const weights = mapWeights ? mapWeights(opened) : opened;
  const configName = isGguf(weightsPath) ? `${basename(weightsPath)} (as config.json)` : "config.json";
  return programFromSource(modelPath, text, withConfig(readHfConfig(weightsPath), config), weights, { configName, ...opts });
}

/** Parses and elaborates DSL text against a config and a weight source (files or in memory). */
export function programFromSource(file: string, text: string, hfConfig: Record<string, unknown>, weights: WeightSource, opts: ElaborateOptions = {}): Program {
  registerSource(file, text);
  const model = parseModel(file, text);
  // static errors are found whatever the checkpoint, before anything is bound to it
  checkModel(model);
  const program = elaborate(model, hfConfig, weights, opts);
  verifyProgram(program);
  return program;
}
