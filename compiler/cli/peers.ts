// The peers `wasmformer bench --peer` times on the same weights as the artifact, through the same
// timing loop (runtime/bench.ts): ONNX Runtime Web (wasm backend) on this project's ONNX export,
// and native llama.cpp (node-llama-cpp, CPU) on this project's GGUF export of the checkpoint.
// Peers are optional dependencies: the user's project installs them.

import { createRequire } from "node:module";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchSubject } from "@wasmformer/runtime/bench";
import { exportOnnx, onnxCacheLayout } from "../export/onnx.js";
import { type GgufFileType, writeGguf } from "../export/gguf.js";
import { loadProgram, openWeights, readHfConfig } from "../load.js";
import { ARCHS, type GgufArch, archSpec } from "../weights/gguf-arch.js";
import { runPipeline } from "../passes/manager.js";
import { optionError } from "./options.js";
import { type LlamaSequence, type OrtModule, llamaCppSubject, ortSubject } from "./peer-subjects.js";

export const PEERS = ["ort", "llama.cpp"] as const;
export type Peer = (typeof PEERS)[number];

/**
 * A package from the user's project (the current folder) or beside wasmformer, with its version;
 * a one-line error naming how to install it.
 */
async function importPeer(name: string, install: string): Promise<{ module: Record<string, unknown>; version: string }> {
  for (const from of [join(process.cwd(), "noop.js"), import.meta.url]) {
    let file: string;
    try {
      file = createRequire(from).resolve(name);
    } catch {
      continue; // not resolvable from there
    }
    let version = "?";
    for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
      const pkg = join(dir, "package.json");
      if (existsSync(pkg)) {
        const j = JSON.parse(readFileSync(pkg, "utf8"));
        if (j.name === name) {
          version = j.version;
          break;
        }
      }
    }
    return { module: await import(pathToFileURL(file).href), version };
  }
  throw optionError(`--peer needs ${name}, which is not installed: ${install}`);
}

/** A peer ready to time: its weights exported once, a subject made per thread count. */
export interface PreparedPeer {
  /** The row's variant: the peer, its version and what it computes. */
  variant: string;
  subject(threads: number): Promise<BenchSubject & { release(): Promise<void> }>;
  dispose(): void;
}

/**
 * ONNX Runtime Web on the ONNX export of MODEL.wf bound to WEIGHTS (the decoder with explicit
 * past/present KV inputs; see ortSubject).
 */
export async function ortPeer(modelPath: string, weightsPath: string): Promise<PreparedPeer> {
  const peer = await importPeer("onnxruntime-web", "npm install onnxruntime-web");
  const ort = peer.module as unknown as OrtModule;
  ort.env.logLevel = "error";
  const program = runPipeline(loadProgram(modelPath, weightsPath));
  const forward = program.graphs.find((g) => g.name === "forward");
  const logits = forward?.outputs.find((o) => o.name === "logits");
  if (!forward || !logits) throw optionError(`--peer ort: ${modelPath} has no forward entry with logits (a causal LM)`);
  const vocab = forward.nodes[logits.id].type.shape.at(-1) as number;
  const caches = onnxCacheLayout(program);
  const bytes = exportOnnx(program);
  return {
    variant: `onnxruntime-web ${peer.version} wasm (all logits)`,
    async subject(threads) {
      ort.env.wasm.numThreads = threads;
      const session = await ort.InferenceSession.create(bytes);
      return { ...ortSubject(ort, session, { context: program.context, vocab, caches }), release: () => session.release() };
    },
    dispose() {},
  };
}

interface LlamaModule {
  getLlama(opts: Record<string, unknown>): Promise<{
    loadModel(opts: Record<string, unknown>): Promise<{ createContext(opts: Record<string, unknown>): Promise<LlamaContext>; dispose(): Promise<void> }>;
    dispose(): Promise<void>;
  }>;
}
interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}

/**
 * Native llama.cpp (node-llama-cpp's prebuilt CPU binaries, no GPU) on a GGUF file this project
 * writes from the checkpoint (`type`: f32, q8_0 or q4_0 — the formats of fp32, int8 and int4 artifacts).
 */
export async function llamaCppPeer(weightsPath: string, type: GgufFileType, context: number): Promise<PreparedPeer> {
  const peer = await importPeer("node-llama-cpp", "npm install node-llama-cpp");
  const { getLlama } = peer.module as unknown as LlamaModule;
  const config = readHfConfig(weightsPath);
  const arch = String(config.model_type);
  if (!archSpec(arch)) throw optionError(`--peer llama.cpp: the GGUF export has no '${arch}' architecture (it writes ${Object.keys(ARCHS).join(", ")})`);
  const dir = mkdtempSync(join(tmpdir(), "wasmformer-peer-"));
  const file = join(dir, `model-${type}.gguf`);
  try {
    writeGguf(file, { arch: arch as GgufArch, config, weights: openWeights(weightsPath), type });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    variant: `llama.cpp native (node-llama-cpp ${peer.version}) ${type}`,
    async subject(threads) {
      const llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: "error" });
      const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: false });
      const ctx = await model.createContext({ contextSize: context, batchSize: Math.min(context, 512), threads: { ideal: threads, min: threads }, sequences: 1 });
      return {
        ...llamaCppSubject(ctx.getSequence(), { context, vocab: Number(config.vocab_size) }),
        async release() {
          await ctx.dispose();
          await model.dispose();
          await llama.dispose();
        },
      };
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
