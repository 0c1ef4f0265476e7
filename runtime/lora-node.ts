// Node helper: a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) from disk.

import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { reason } from "./errors.js";
import { type LoraAdapter, LoraError, parseAdapter } from "./lora.js";

/** Reads and checks the adapter in folder `dir`; `scale` multiplies its alpha / r. */
export function readAdapter(dir: string, scale = 1): LoraAdapter {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new LoraError(`adapter '${dir}' is not a folder (it should hold adapter_config.json and adapter_model.safetensors)`);
  const read = (file: string) => {
    const path = join(dir, file);
    if (!existsSync(path)) throw new LoraError(`adapter '${dir}' has no ${file}`);
    try {
      return readFileSync(path);
    } catch (e) {
      throw new LoraError(`${path}: cannot be read (${reason(e)})`);
    }
  };
  const config = read("adapter_config.json").toString("utf8");
  const weights = read("adapter_model.safetensors");
  return parseAdapter(config, new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength), { scale, source: dir });
}

/** `DIR` or `DIR=SCALE` as the command line writes an adapter: the folder and the scale (default 1). */
export function parseAdapterSpec(text: string): { dir: string; scale: number } {
  const m = /^(.*)=([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)$/i.exec(text);
  const dir = m ? m[1] : text, scale = m ? Number(m[2]) : 1;
  if (dir === "" || !Number.isFinite(scale)) throw new Error(`'${text}' is not DIR or DIR=SCALE`);
  return { dir, scale };
}
