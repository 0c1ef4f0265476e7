// What several commands share: progress on a terminal, the options of the commands that load an
// artifact (threads, a run-time LoRA adapter), and loading an artifact for the length of a command.

import { availableParallelism } from "node:os";
import type { Manifest } from "@wasmformer/runtime/manifest";
import type { Model } from "@wasmformer/runtime/model";
import { loadArtifact } from "@wasmformer/runtime/node";
import { type LoraAdapter, LoraSlots } from "@wasmformer/runtime/lora";
import { parseAdapterSpec, readAdapter } from "@wasmformer/runtime/lora-node";
import { type Progress, terminalProgress } from "../progress.js";
import { type Writer, checkedBy, int, path } from "./options.js";

/** Progress lines on `stream` when it is a terminal. */
export const progressOn = (stream: Writer): Progress | undefined => ((stream as NodeJS.WriteStream).isTTY ? terminalProgress(stream as NodeJS.WriteStream) : undefined);

export const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

export const weights = { kind: path, arg: "PATH", required: true, help: "Hugging Face folder (config.json + safetensors) or a .gguf file" } as const;
export const context = { kind: int({ min: 1 }), arg: "N", help: "longest sequence to support (default: the model's, at most 2048)" } as const;
export const force = (what: string) => ({ kind: "flag", help: `replace --out even if it is not ${what} (never the current folder, a folder above it, the home folder, / or an input)` }) as const;
export const threads = { kind: int({ min: 1, max: 256 }), arg: "N", default: "1", help: "threads running the matrix kernels (model.threads.wasm above 1)" } as const;
/** --threads of the commands that generate: by default every core, where the artifact has the threaded module. */
export const autoThreads = { kind: int({ min: 1, max: 256 }), arg: "N", help: "threads running the matrix kernels (default: the machine's cores, when the artifact has model.threads.wasm; else 1)" } as const;
export function threadsFor(given: number | undefined, man: Manifest): number {
  if (given !== undefined) return given;
  if (!man.variants.some((v) => v.features.includes("threads"))) return 1;
  return Math.max(1, Math.min(availableParallelism(), man.memory.max_threads ?? 1));
}
/** A PEFT adapter folder, optionally with a scale: DIR or DIR=SCALE. */
export const adapterSpec = checkedBy("DIR or DIR=SCALE (a PEFT LoRA adapter folder and a scale, default 1)", parseAdapterSpec);
export const adapter = { kind: adapterSpec, arg: "DIR[=SCALE]", help: "apply a PEFT LoRA adapter at run time (the artifact needs --lora-slots of at least its rank)" } as const;

/** Reads --adapter's folder, before the artifact is loaded. */
export const readAdapterOption = (spec: { dir: string; scale: number } | undefined) => (spec ? readAdapter(spec.dir, spec.scale) : undefined);

/** Loads an artifact (with `adapter` applied in its LoRA slots), runs `use` on it, and stops its worker threads. */
export async function withModel<T>(artifact: string, threadCount: number, use: (model: Model) => T | Promise<T>, adapter?: LoraAdapter): Promise<T> {
  const model = await loadArtifact(artifact, { threads: threadCount });
  try {
    if (adapter) {
      const slots = new LoraSlots(model);
      slots.load(adapter.source, adapter);
      slots.use(adapter.source);
    }
    return await use(model);
  } finally {
    model.dispose();
  }
}
