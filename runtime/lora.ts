// LoRA adapters as PEFT saves them (adapter_config.json + adapter_model.safetensors), and their
// run-time use: an artifact compiled with LoRA slots (compile --lora-slots) holds, beside each
// targeted linear, a side path y += (x·Aᵀ)·(s·B)ᵀ whose kernels read the address of A and B from
// pointer cells. Each loaded adapter's matrices get memory of their own; switching adapters
// writes the cells (a few dozen i32s), never the matrices or the base weights.
// The compiler reads adapters through the same parser to merge them at compile time.

import { ArtifactError, show } from "./errors.js";
import type { LoraLayout, Manifest } from "./manifest.js";

/** A bad adapter: its config, a tensor, or a mismatch with the model (one line naming the tensor). */
export class LoraError extends Error {
  readonly code = "WF410";
  constructor(message: string) {
    super(message);
    this.name = "LoraError";
  }
}

/** One adapted module: A [r, in] and B [out, r] as saved, and its scale s (alpha / r or alpha / √r, times the user's). */
export interface LoraModule {
  /** The module's path in the base model (PEFT's name without base_model.model. and .lora_X.weight). */
  module: string;
  r: number;
  in: number;
  out: number;
  scale: number;
  a: Float32Array;
  b: Float32Array;
  /** The PEFT tensor names, for messages. */
  aName: string;
  bName: string;
}

export interface LoraAdapter {
  /** Where it was read from, for messages. */
  source: string;
  /** The base weight is stored [in, out] (GPT-2's Conv1D): a merge adds (B·A)ᵀ. */
  fanInFanOut: boolean;
  modules: LoraModule[];
}

// ---- safetensors (F32, F16 and BF16 tensors), read without the compiler

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** The tensors of a safetensors file as float32, by name; `file` names it in messages. */
export function readSafetensorsTensors(bytes: Uint8Array, file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const bad = (why: string) => new LoraError(`${file}: ${why}`);
  if (bytes.byteLength < 8) throw bad(`truncated (${bytes.byteLength} bytes, no header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(bytes.byteLength - 8)) throw bad(`header length ${headerLen} runs past the end of the file (${bytes.byteLength} bytes)`);
  const start = 8 + Number(headerLen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, start)));
    if (typeof header !== "object" || header === null || Array.isArray(header)) throw new Error();
  } catch {
    throw bad("the header is not a JSON object");
  }
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const what = `tensor '${name}'`;
    if (typeof e !== "object" || e === null) throw bad(`${what}: not an object`);
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES)) throw bad(`${what}: dtype ${show(e.dtype)} is not F32, F16 or BF16`);
    const shape = e.shape, offsets = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`${what}: shape ${show(shape)} is not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`${what}: data_offsets ${show(offsets)} is not [begin, end]`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1), size = DTYPE_BYTES[e.dtype];
    const [b0, b1] = offsets as number[];
    if (b1 - b0 !== count * size || start + b1 > bytes.byteLength) throw bad(`${what}: data_offsets [${b0}, ${b1}] do not hold ${count} ${e.dtype} values inside the file`);
    const data = new Float32Array(count), at = start + b0;
    for (let i = 0; i < count; i++) {
      if (e.dtype === "F32") data[i] = view.getFloat32(at + 4 * i, true);
      else if (e.dtype === "F16") data[i] = halfToFloat(view.getUint16(at + 2 * i, true));
      else data[i] = new Float32Array(new Uint32Array([view.getUint16(at + 2 * i, true) << 16]).buffer)[0];
    }
    out.set(name, { shape: shape as number[], data });
  }
  return out;
}

// ---- adapter_config.json and the tensors

const TENSOR = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;

/** PEFT's per-module pattern lookup: the first key that is the module's name or a dotted suffix of it. */
function patternValue(pattern: Record<string, unknown>, module: string): unknown {
  const key = Object.keys(pattern).find((k) => module === k || module.endsWith(`.${k}`));
  return key === undefined ? undefined : pattern[key];
}

/**
 * Reads a PEFT LoRA adapter: the config's text and the safetensors bytes. `scale` multiplies
 * each module's alpha / r (alpha / √r with use_rslora). Anything wasmformer cannot apply as
 * W + s·B·A (another peft_type, modules_to_save, DoRA, LoRA biases, a missing or misshaped
 * tensor) is a LoraError naming the field or tensor.
 */
export function parseAdapter(configText: string, weights: Uint8Array, opts: { scale?: number; source?: string } = {}): LoraAdapter {
  const source = opts.source ?? "adapter";
  const cfgFile = `${source}/adapter_config.json`, wFile = `${source}/adapter_model.safetensors`;
  const scale = opts.scale ?? 1;
  if (!Number.isFinite(scale)) throw new LoraError(`${source}: the scale should be a finite number, found ${show(scale)}`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(configText);
    if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) throw new Error();
  } catch {
    throw new LoraError(`${cfgFile}: not a JSON object`);
  }
  const field = (k: string, why: string) => new LoraError(`${cfgFile}: '${k}' ${why}, found ${show(cfg[k])}`);
  if (cfg.peft_type !== "LORA") throw field("peft_type", "should be \"LORA\" (the only adapter type wasmformer applies)");
  const modulesToSave = cfg.modules_to_save;
  if (modulesToSave !== undefined && modulesToSave !== null && !(Array.isArray(modulesToSave) && modulesToSave.length === 0))
    throw field("modules_to_save", "should be null: the adapter replaces whole modules, which wasmformer does not apply");
  if (cfg.use_dora === true) throw field("use_dora", "should be false: DoRA adapters are not supported");
  if (cfg.lora_bias === true) throw field("lora_bias", "should be false: LoRA biases are not supported");
  const r = cfg.r;
  if (!Number.isSafeInteger(r) || (r as number) < 1) throw field("r", "should be a positive integer");
  const alpha = cfg.lora_alpha ?? 8;
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw field("lora_alpha", "should be a number");
  for (const k of ["use_rslora", "fan_in_fan_out"]) if (cfg[k] !== undefined && typeof cfg[k] !== "boolean") throw field(k, "should be true or false");
  const patterns = ["rank_pattern", "alpha_pattern"].map((k) => {
    const v = cfg[k] ?? {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw field(k, "should be an object");
    return v as Record<string, unknown>;
  });
  const rslora = cfg.use_rslora === true;

  const tensors = readSafetensorsTensors(weights, wFile);
  const parts = new Map<string, { A?: string; B?: string }>();
  for (const name of tensors.keys()) {
    const m = TENSOR.exec(name);
    if (!m) throw new LoraError(`${wFile}: tensor '${name}' is not a LoRA matrix (base_model.model.<module>.lora_A.weight or .lora_B.weight)`);
    const p = parts.get(m[1]) ?? {};
    p[m[2] as "A" | "B"] = name;
    parts.set(m[1], p);
  }
  if (parts.size === 0) throw new LoraError(`${wFile}: holds no LoRA tensors`);
  const modules: LoraModule[] = [];
  for (const [module, p] of parts) {
    const aName = p.A ?? `base_model.model.${module}.lora_A.weight`, bName = p.B ?? `base_model.model.${module}.lora_B.weight`;
    if (!p.A || !p.B) throw new LoraError(`${wFile}: tensor '${p.A ? bName : aName}' is missing (each adapted module needs lora_A and lora_B)`);
    const a = tensors.get(aName)!, b = tensors.get(bName)!;
    const rm = patternValue(patterns[0], module) ?? r;
    const am = patternValue(patterns[1], module) ?? alpha;
    if (!Number.isSafeInteger(rm) || (rm as number) < 1) throw new LoraError(`${cfgFile}: rank_pattern gives '${module}' rank ${show(rm)}, not a positive integer`);
    if (typeof am !== "number" || !Number.isFinite(am)) throw new LoraError(`${cfgFile}: alpha_pattern gives '${module}' alpha ${show(am)}, not a number`);
    if (a.shape.length !== 2 || a.shape[0] !== rm) throw new LoraError(`${wFile}: tensor '${aName}' has shape [${a.shape.join(", ")}], expected [${rm}, in] for rank ${rm}`);
    if (b.shape.length !== 2 || b.shape[1] !== rm) throw new LoraError(`${wFile}: tensor '${bName}' has shape [${b.shape.join(", ")}], expected [out, ${rm}] for rank ${rm}`);
    const s = (am / (rslora ? Math.sqrt(rm as number) : (rm as number))) * scale;
    modules.push({ module, r: rm as number, in: a.shape[1], out: b.shape[0], scale: s, a: a.data, b: b.data, aName, bName });
  }
  return { source, fanInFanOut: cfg.fan_in_fan_out === true, modules };
}

/**
 * The module of `names` an adapter's module path denotes: the same path, or one path a dotted
 * suffix of the other (an adapter trained on GPT2LMHeadModel, transformer.h.0…, on a bare h.0…
 * checkpoint). Undefined when none or several match.
 */
export function matchModule(module: string, names: Iterable<string>): string | undefined {
  const all = [...names];
  if (all.includes(module)) return module;
  const near = all.filter((n) => n.endsWith(`.${module}`) || module.endsWith(`.${n}`));
  return near.length === 1 ? near[0] : undefined;
}

// ---- run time: the artifact's slots

/** Packs w[N, K] row-major into the f32 matrix kernels' layout (groups of 4 rows, 4-wide chunks of K, in panels). */
export function packForKernel(w: Float32Array, N: number, K: number, panels: readonly (readonly [k0: number, size: number, at: number])[], group: number, floats: number): Float32Array {
  const out = new Float32Array(floats);
  const K4 = K - (K % 4), Kt = K % 4;
  for (const [k0, size, from] of panels) {
    const end = Math.min(k0 + size, K4);
    for (let n = 0; n < N; n++) {
      const g = Math.floor(n / group), j = n % group, base = from + group * g * size, src = n * K;
      for (let k = k0, at = base + j * 4; k < end; k += 4, at += 4 * group) for (let t = 0; t < 4; t++) out[at + t] = w[src + k + t];
      for (let t = 0; t < Kt; t++) out[base + 4 * K4 + j * Kt + t] = w[src + K4 + t];
    }
  }
  return out;
}

/** The manifest's LoRA slots, checked against the memory it lays out. */
function checkLayout(m: Manifest): LoraLayout {
  const l = m.lora;
  const fail = (what: string) => new ArtifactError("WF503", `manifest.json: lora ${what}`);
  if (!l) throw new ArtifactError("WF511", "this artifact has no LoRA slots: compile it with --lora-slots RANK to apply adapters at run time");
  if (!Number.isSafeInteger(l.rank) || l.rank < 1 || !Array.isArray(l.params) || !Number.isSafeInteger(l.group) || l.group < 1) throw fail("should hold a rank, a group and params");
  const weightsEnd = m.memory.weights_offset + m.memory.weights_bytes, memoryEnd = m.memory.pages * 65536;
  for (const p of l.params) {
    if (![p.at, p.rows, p.cols, p.floats].every((v) => Number.isSafeInteger(v) && v >= 0) || p.at % 4 || p.at < m.memory.weights_offset || p.at + 4 * p.floats > weightsEnd)
      throw fail(`parameter ${show(p.name)} lies outside the weights`);
    if (!Number.isSafeInteger(p.cell) || p.cell % 4 || p.cell < weightsEnd || p.cell + 4 > memoryEnd)
      throw fail(`parameter ${show(p.name)}: its pointer cell ${show(p.cell)} is not an i32 past the weights (an artifact compiled before cells: recompile it)`);
    for (const part of p.parts) {
      const fits = Number.isSafeInteger(part.row) && part.row >= 0 && part.row + part.rows <= p.rows && (part.role === "A" ? part.rows === l.rank : p.cols === l.rank);
      if (!fits || (part.role !== "A" && part.role !== "B")) throw fail(`part ${show(part.module)} does not fit ${show(p.name)}`);
    }
    const last = p.panels.at(-1);
    if (!last || p.floats < last[2] + Math.ceil(p.rows / l.group) * l.group * last[1]) throw fail(`parameter ${show(p.name)}: its panels do not fit its ${p.floats} floats`);
  }
  return l;
}

/** Bytes of one adapter's matrices in memory: every slot parameter's packed floats, 64-byte aligned. */
export function loraRegionBytes(l: LoraLayout): number {
  return regionOffsets(l).bytes;
}

function regionOffsets(l: LoraLayout): { offsets: number[]; bytes: number } {
  let at = 0;
  const offsets = l.params.map((p) => {
    const o = at;
    at += Math.ceil((4 * p.floats) / 64) * 64;
    return o;
  });
  return { offsets, bytes: at };
}

/**
 * The adapters loaded for one model: `load` checks an adapter against the artifact's slots,
 * packs its matrices for the kernels and writes them into memory of their own (the memory grows
 * by one region per adapter, up to the room Model.load made: its `adapters` option); `use` points
 * the slots' cells at one adapter's region, or back at the artifact's zeros (none). A switch
 * writes one i32 per slot parameter.
 */
export class LoraSlots {
  private readonly layout: LoraLayout;
  /** Each loaded adapter's region (byte address). */
  private readonly regions = new Map<string, number>();
  /** Regions of unloaded adapters, reused before the memory grows. */
  private readonly free: number[] = [];
  private readonly offsets: number[];
  private readonly regionBytes: number;
  private current: string | null = null;
  /** Every module with a slot, and where its A and B rows are. */
  private readonly slots = new Map<string, { A?: [number, number]; B?: [number, number] }>();

  constructor(private readonly model: { manifest: Manifest; memory: WebAssembly.Memory }) {
    this.layout = checkLayout(model.manifest);
    this.layout.params.forEach((p, i) => {
      for (const part of p.parts) {
        const s = this.slots.get(part.module) ?? {};
        s[part.role] = [i, part.row];
        this.slots.set(part.module, s);
      }
    });
    for (const [module, s] of this.slots) if (!s.A || !s.B) throw new ArtifactError("WF503", `manifest.json: lora slot ${show(module)} needs an A and a B part`);
    ({ offsets: this.offsets, bytes: this.regionBytes } = regionOffsets(this.layout));
  }

  /** The rank of every slot: adapters of this rank or less fit. */
  get rank(): number {
    return this.layout.rank;
  }

  /** The modules that have a slot, by their path in the checkpoint. */
  get modules(): string[] {
    return [...this.slots.keys()];
  }

  /** The adapter now applied, or null. */
  get active(): string | null {
    return this.current;
  }

  /** The names of the adapters loaded. */
  get names(): string[] {
    return [...this.regions.keys()];
  }

  /**
   * Checks `adapter` against the slots (each module has one, rank at most the slots', in/out of
   * the base linear) and writes its matrices into memory under `name` (replacing an adapter of
   * that name, applied or not); a failure leaves everything as it was.
   */
  load(name: string, adapter: LoraAdapter): void {
    if (typeof name !== "string" || name === "") throw new ArtifactError("WF510", `an adapter needs a non-empty name, got ${show(name)}`);
    const rows = this.layout.params.map((p) => new Float32Array(p.rows * p.cols));
    for (const m of adapter.modules) {
      const key = matchModule(m.module, this.slots.keys());
      if (key === undefined) throw new LoraError(`${adapter.source}: tensor '${m.aName}' targets '${m.module}', which has no LoRA slot in this artifact (slots: ${this.describeSlots()})`);
      if (m.r > this.layout.rank) throw new LoraError(`${adapter.source}: tensor '${m.aName}' has rank ${m.r}, above the artifact's slot rank ${this.layout.rank} (compile with --lora-slots ${m.r} or more)`);
      const slot = this.slots.get(key)!;
      const [ai, arow] = slot.A!, [bi, brow] = slot.B!;
      const pa = this.layout.params[ai], pb = this.layout.params[bi];
      if (m.in !== pa.cols) throw new LoraError(`${adapter.source}: tensor '${m.aName}' reads ${m.in} inputs, the base linear '${key}' has ${pa.cols}`);
      const outRows = pb.parts.find((p) => p.module === key && p.role === "B")!.rows;
      if (m.out !== outRows) throw new LoraError(`${adapter.source}: tensor '${m.bName}' writes ${m.out} outputs, the base linear '${key}' has ${outRows}`);
      // A's r rows at the module's rows; s·B in the first r columns of its rows
      rows[ai].set(m.a, arow * pa.cols);
      const b = rows[bi], R = pb.cols;
      for (let o = 0; o < m.out; o++) for (let j = 0; j < m.r; j++) b[(brow + o) * R + j] = Math.fround(m.b[o * m.r + j] * m.scale);
    }
    const images = this.layout.params.map((p, i) => packForKernel(rows[i], p.rows, p.cols, p.panels, this.layout.group, p.floats));
    let region = this.regions.get(name);
    if (region === undefined) region = this.free.pop() ?? this.grow(name);
    this.layout.params.forEach((p, i) => new Float32Array(this.model.memory.buffer, region + this.offsets[i], p.floats).set(images[i]));
    this.regions.set(name, region);
  }

  /** Forgets a loaded adapter and frees its memory for the next load (the one in use: none is applied). */
  unload(name: string): void {
    const region = this.regions.get(name);
    if (region === undefined) return;
    if (this.current === name) this.use(null);
    this.regions.delete(name);
    this.free.push(region);
  }

  /** Applies the adapter loaded as `name`, or none (null): the base model's outputs exactly. */
  use(name: string | null): void {
    const region = name === null ? undefined : this.regions.get(name);
    if (name !== null && region === undefined) throw new ArtifactError("WF510", `no adapter loaded as ${show(name)} (loaded: ${this.names.map((n) => JSON.stringify(n)).join(", ") || "none"})`);
    const cells = new Int32Array(this.model.memory.buffer);
    this.layout.params.forEach((p, i) => (cells[p.cell >> 2] = region === undefined ? 0 : region + this.offsets[i]));
    this.current = name;
  }

  /** A new region at the end of memory, grown for it. */
  private grow(name: string): number {
    const memory = this.model.memory, at = memory.buffer.byteLength;
    const pages = Math.ceil(this.regionBytes / 65536);
    try {
      memory.grow(pages);
    } catch {
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      throw new ArtifactError(
        "WF508",
        `cannot load adapter ${show(name)}: its matrices need ${mib(pages * 65536)} more WebAssembly memory and ${this.regions.size} adapters fill the room made for them (unload one, or load the model with a larger \`adapters\` option)`,
      );
    }
    return at;
  }

  private describeSlots(): string {
    const all = this.modules;
    return all.length > 4 ? `${all.slice(0, 4).join(", ")}, … ${all.length} in all` : all.join(", ");
  }
}
