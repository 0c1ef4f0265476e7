// Code generation: plans linear memory, lowers every entry to a wasm function that calls the
// kernels, lays weights out for the kernels, and assembles the artifact
// (model.wasm + weights.bin + manifest.json).

import type { Graph, Node, Program } from "../../ir/types.js";
import { rowWidth } from "../../ir/types.js";
import { InputError } from "../diagnostics.js";
import { type ProfileSite, profileSite } from "./profile-sites.js";
import { MAX_THREADS, packLinearWeight, packQuantWeight, packedLinearFloats, packedQuantBytes } from "./linear/index.js";
import { type KvCache, type LowerCtx, SCRATCH_AREAS, type ScratchArea, type ScratchQuery, constantsOf, loweringOf, REWIND_ROWS, ringRows } from "./lower.js";
import { type Expr, WasmModule, createType, i32, none } from "./wasm.js";
import { type OpNode, attrsOf, cacheKey, hasTrait, isOp, operandOf, roles } from "../../ir/ops.js";
import { LAYOUT_SECTION, MANIFEST_VERSION, type Manifest, type ManifestEntry, layoutOf } from "@wasmformer/runtime/manifest";

const ALIGN = 64;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
const PAGE = 65536;
/** Pages of a 32-bit WebAssembly memory: 4 GiB. */
const MAX_PAGES = 65536;

/** Run-time row symbols are bound to locals of every entry function: (rows, past, erows). */
const ROWS = 0, PAST = 1, EROWS = 2;

class Layout {
  top: number;
  constructor(start: number) {
    this.top = start;
  }
  take(bytes: number): number {
    const at = this.top;
    this.top = align(this.top + bytes);
    return at;
  }
}

/** Nodes whose value depends only on parameters and `state` inputs: computed once per state. */
function staticNodes(g: Graph): Set<number> {
  const s = new Set<number>();
  for (const n of g.nodes) {
    const leaf = isOp(n, "param") || (isOp(n, "input") && n.attrs.kind === "state");
    if (leaf || (hasTrait(n, "pure") && n.args.length > 0 && n.args.every((a) => s.has(a)))) s.add(n.id);
  }
  return s;
}

export interface CompiledArtifact {
  wasm: Uint8Array;
  /** weights.bin's bytes, assembled when first read (a compile streams `weightPieces` to disk instead). */
  readonly weights: Uint8Array;
  /** The length of weights.bin. */
  weightsBytes: number;
  /**
   * weights.bin as consecutive pieces, each parameter read, converted, quantized and packed as
   * its piece is reached: a writer holds one tensor at a time.
   */
  weightPieces(): Iterable<Uint8Array>;
  manifest: Manifest;
  /** The module in text form. */
  wat: string;
  /** Address of every node's buffer, per entry (for debugging and per-node tests). */
  buffers: Map<string, Map<number, number>>;
  /** Each planned scratch area's address and size (for debugging and tests). */
  scratch: Map<ScratchArea, { at: number; bytes: number }>;
  /** Each swappable parameter's pointer cell (an i32 outside weights.bin): 0, its own matrix; else the address of the matrix kernels read instead. */
  cells: Map<string, number>;
  /** Every module variant; `wasm` is the plain SIMD128 one. */
  variants?: { file: string; features: string[]; wasm: Uint8Array }[];
}

export interface GenerateOptions {
  onProgress?: (done: number, total: number) => void;
  /** Called as each weight is read, converted, quantized and packed into weights.bin. */
  onWeights?: (done: number, total: number) => void;
  /** Also emit model.profile.wasm, whose entries mark each kernel call for `wasmformer profile`. */
  profile?: boolean;
  /** Give every activation its own buffer (default false: reuse by liveness). For per-node debugging. */
  noReuse?: boolean;
}

/** Module variants: all share the memory layout and weights.bin; the runtime picks one by feature detection. */
const VARIANTS = [
  // runs everywhere
  { file: "model.wasm", features: ["simd128"], options: {} },
  // fused multiply-add in the matrix kernels
  { file: "model.relaxed.wasm", features: ["simd128", "relaxed-simd"], options: { relaxed: true } },
  // shared memory: matrix kernels split over worker threads (run with threads > 1)
  { file: "model.threads.wasm", features: ["simd128", "threads"], options: { threads: true } },
];

const PROFILE_FILE = "model.profile.wasm";

/** Plans memory once, then lowers the program for each variant. */
export function generate(p: Program, opts: GenerateOptions = {}): CompiledArtifact {
  const plain = new WasmModule();
  try {
    const plan = planMemory(p, plain.dataEnd, opts);
    const base = lowerVariant(plain, p, plan, opts.onProgress);
    const variants = [{ file: VARIANTS[0].file, features: VARIANTS[0].features, wasm: base.wasm }];
    for (const v of VARIANTS.slice(1)) {
      const wm = new WasmModule(v.options);
      try {
        variants.push({ file: v.file, features: v.features, wasm: lowerVariant(wm, p, plan).wasm });
      } finally {
        wm.dispose();
      }
    }
    if (opts.profile) {
      // a single-threaded plain module whose entries call env.__prof(site) before each kernel;
      // its "profile" feature keeps pickVariant from ever running it
      const wm = new WasmModule({ profile: true });
      try {
        const { wasm, sites } = lowerVariant(wm, p, plan);
        variants.push({ file: PROFILE_FILE, features: ["simd128", "profile"], wasm });
        base.manifest.profile = { file: PROFILE_FILE, sites };
      } finally {
        wm.dispose();
      }
    }
    base.manifest.variants = variants.map(({ file, features }) => ({ file, features }));
    let assembled: Uint8Array | undefined;
    return {
      ...base,
      variants,
      weightsBytes: plan.weightsBytes,
      weightPieces: plan.weightPieces,
      get weights() {
        if (!assembled) {
          assembled = new Uint8Array(plan.weightsBytes);
          let at = 0;
          for (const piece of plan.weightPieces()) assembled.set(piece, (at += piece.byteLength) - piece.byteLength);
        }
        return assembled;
      },
    };
  } finally {
    plain.dispose();
  }
}

type Plan = ReturnType<typeof planMemory>;


function planMemory(p: Program, dataEnd: number, { noReuse, onWeights }: GenerateOptions) {
  const mem = new Layout(align(dataEnd));

  // 1. weights, in first-use order, each aligned for SIMD loads; constant tables follow.
  // A matrix read by linear is stored packed for the matrix kernels (embedding lookups read
  // that layout too); a row-major copy is added only if another op reads the parameter.
  const weightsStart = mem.top;
  const layouts = new Map<string, { packed: boolean; rowMajor: boolean }>();
  for (const g of p.graphs)
    for (const n of g.nodes) {
      const r = roles(n);
      n.args.forEach((a, i) => {
        const src = g.nodes[a];
        if (!isOp(src, "param")) return;
        const l = layouts.get(src.attrs.name) ?? { packed: false, rowMajor: false };
        if (r[i] === "weight") l.packed = true;
        else if (r[i] !== "table") l.rowMajor = true;
        layouts.set(src.attrs.name, l);
      });
    }
  const paramAt = new Map<string, { rowMajor?: number; packed?: number }>();
  // a chunk's bytes are computed only when weights.bin is filled, one parameter at a time
  const chunks: { at: number; bytes: number; data: () => Float32Array | Int32Array | Uint8Array }[] = [];
  for (const g of p.graphs)
    for (const n of g.nodes)
      if (isOp(n, "param") && !paramAt.has(n.attrs.name)) {
        const w = p.params.get(n.attrs.name)!;
        const l = layouts.get(w.name) ?? { packed: false, rowMajor: true };
        const place: { rowMajor?: number; packed?: number } = {};
        const [N, K] = w.shape, scheme = n.attrs.quant;
        if (l.packed) {
          const bytes = scheme ? packedQuantBytes(scheme, N, K) : packedLinearFloats(N, K) * 4;
          const data = () => {
            if (!scheme) return packLinearWeight(w.data, N, K);
            const q = w.quant!;
            return packQuantWeight(q.scheme, q.codes, q.scales, N, K, q.mins);
          };
          chunks.push({ at: (place.packed = mem.take(bytes)), bytes, data });
        }
        if (l.rowMajor || !l.packed) {
          const bytes = w.shape.reduce((a, b) => a * b, 1) * 4;
          chunks.push({ at: (place.rowMajor = mem.take(bytes)), bytes, data: () => w.data });
        }
        paramAt.set(w.name, place);
      }
  const constants = new Map<string, number>();
  const constant = (key: string, data: () => Int32Array) => {
    let at = constants.get(key);
    if (at === undefined) {
      const d = data();
      constants.set(key, (at = mem.take(d.byteLength)));
      chunks.push({ at, bytes: d.byteLength, data: () => d });
    }
    return at;
  };
  // constant tables live with the weights: create them now, before the arena is planned
  for (const g of p.graphs) for (const n of g.nodes) for (const t of constantsOf(n, p.context)) constant(t.key, t.data);
  // swappable matrices' pointer cells, past weights.bin (so they start at 0: the matrix itself)
  const swappable = [...new Set(p.graphs.flatMap((g) => g.nodes.flatMap((n) => (isOp(n, "param") && n.attrs.swappable ? [n.attrs.name] : []))))];
  const cellsAt = swappable.length ? mem.take(4 * swappable.length) : 0;
  const cells = new Map(swappable.map((name, i) => [name, cellsAt + 4 * i]));

  // 2. per entry: caches, state buffers, inputs, hoisted values; activations share one arena
  const caches = new Map<string, KvCache>();
  const planned: { g: Graph; statics: Set<number>; borrowed: Set<number>; buf: Map<number, number>; arenaNodes: Node[] }[] = [];
  // a value that depends only on parameters and state inputs is computed once for all entries:
  // entries that hold the same one (decode and decode_last: T5's cross-attention keys and values)
  // share its buffer, and only the first entry's prepare function computes it
  const staticByKey = new Map<string, number>();
  const rowBytes = (n: Node) => rowWidth(n.type.shape) * 4;
  const maxBytes = (n: Node) => (typeof n.type.shape[0] === "number" ? n.type.shape.reduce<number>((a, b) => a * (b as number), 1) * 4 : p.context * rowBytes(n));

  for (const g of p.graphs) {
    const statics = staticNodes(g);
    const borrowed = new Set<number>();
    const keys = new Map<number, string>();
    const buf = new Map<number, number>();
    for (const n of g.nodes) {
      if (isOp(n, "param")) {
        const at = paramAt.get(n.attrs.name)!;
        buf.set(n.id, at.rowMajor ?? at.packed!);
        keys.set(n.id, `param:${n.attrs.name}`);
      }
      else if (isOp(n, "input")) {
        buf.set(n.id, mem.take(maxBytes(n)));
        keys.set(n.id, `input:${n.attrs.name}`);
      }
      else if (statics.has(n.id)) {
        const key = `${n.op}${JSON.stringify(n.attrs)}(${n.args.map((a) => keys.get(a)).join(",")})`;
        keys.set(n.id, key);
        const at = staticByKey.get(key);
        if (at !== undefined) borrowed.add(n.id);
        else staticByKey.set(key, mem.take(maxBytes(n)));
        buf.set(n.id, staticByKey.get(key)!);
      }
      if (isOp(n, "attention") && n.attrs.cache) {
        const kw = rowWidth(g.nodes[n.args[1]].type.shape), vw = rowWidth(g.nodes[n.args[2]].type.shape);
        const key = cacheKey(g.name, n);
        if (!caches.has(key)) {
          // a sliding window keeps its last rows only: a ring buffer (KvCache, ringRows)
          const window = n.attrs.window, rows = ringRows(p.context, window);
          const ring = window !== undefined && rows < p.context ? { window, keep: window - 1 + REWIND_ROWS, base: mem.take(4) } : {};
          const bytes = n.attrs.kv_dtype === "bf16" ? 2 : 4;
          caches.set(key, { k: mem.take(rows * kw * bytes), v: mem.take(rows * vw * bytes), kWidth: kw, vWidth: vw, bytes, rows, ...ring });
        }
      }
    }
    planned.push({ g, statics, borrowed, buf, arenaNodes: g.nodes.filter((n) => !buf.has(n.id)) });
  }

  // scratch: each area a lowering declares (lower.ts), as large as the largest need
  const needs = new Map<ScratchArea, number>();
  for (const g of p.graphs) {
    const query: ScratchQuery = { node: (id) => g.nodes[id], context: p.context, threads: MAX_THREADS };
    for (const n of g.nodes)
      for (const [area, bytes] of Object.entries(loweringOf(n.op).scratch?.(n, query) ?? {}) as [ScratchArea, number][]) needs.set(area, Math.max(needs.get(area) ?? 0, bytes));
  }
  const scratch = new Map(SCRATCH_AREAS.filter((a) => needs.has(a)).map((a) => [a, mem.take(needs.get(a)!)]));

  // activations: a first-fit arena with liveness-based reuse (outputs stay live to the end)
  const arenaStart = mem.top;
  let arenaEnd = arenaStart;
  for (const { g, buf, arenaNodes } of planned) {
    const lastUse = new Map<number, number>();
    for (const n of g.nodes) for (const a of n.args) lastUse.set(a, n.id);
    for (const o of g.outputs) lastUse.set(o.id, Infinity);
    const live: { at: number; end: number; id: number }[] = [];
    const need = new Set(arenaNodes.map((n) => n.id));
    for (const n of g.nodes) {
      if (need.has(n.id)) {
        const size = align(maxBytes(n));
        live.sort((a, b) => a.at - b.at);
        let at = arenaStart;
        for (const l of live) {
          if (l.at - at >= size) break;
          at = Math.max(at, l.end);
        }
        live.push({ at, end: at + size, id: n.id });
        buf.set(n.id, at);
        arenaEnd = Math.max(arenaEnd, at + size);
      }
      // operands whose last use is this node are freed after it is placed, so no kernel writes over its inputs
      if (!noReuse) for (let i = live.length - 1; i >= 0; i--) if ((lastUse.get(live[i].id) ?? -1) <= n.id && live[i].id !== n.id) live.splice(i, 1);
    }
  }

  if (mem.top > arenaStart) throw new Error("internal: memory was allocated after the arena was planned");
  const pages = Math.ceil(arenaEnd / PAGE) + 1;
  if (pages > MAX_PAGES) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    const kv = [...caches.values()].reduce((s, c) => s + c.rows * (c.kWidth + c.vWidth) * c.bytes, 0);
    const weightBytes = Math.max(0, ...chunks.map((c) => c.at + c.bytes)) - weightsStart;
    throw new InputError(
      `the model needs ${gib(pages * PAGE)} of WebAssembly memory (weights ${gib(weightBytes)}, KV cache ${gib(kv)} for a context of ${p.context}, ` +
        `activations ${gib(arenaEnd - arenaStart)}); a 32-bit WebAssembly memory holds at most 4 GiB: quantize the weights (--quantize int4) or compile a shorter --context`,
      undefined,
      { code: "WF307" },
    );
  }

  // weights.bin holds everything from weightsStart that has data (params and constant tables)
  const dataEndW = Math.max(weightsStart, ...chunks.map((c) => c.at + c.bytes));
  const ordered = [...chunks].sort((x, y) => x.at - y.at);
  function* weightPieces(): Generator<Uint8Array> {
    let at = weightsStart;
    for (const [i, c] of ordered.entries()) {
      if (c.at < at) throw new Error("internal: weight chunks overlap");
      if (c.at > at) yield new Uint8Array(c.at - at);
      const d = c.data();
      if (d.byteLength !== c.bytes) throw new Error(`internal: a weight chunk has ${d.byteLength} bytes, planned ${c.bytes}`);
      yield new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      at = c.at + c.bytes;
      onWeights?.(i + 1, ordered.length);
    }
  }
  return { planned, paramAt, cells, caches, constants, scratch, scratchNeeds: needs, pages, weightsBytes: dataEndW - weightsStart, weightPieces, weightsStart, activationBytes: arenaEnd - arenaStart };
}

/** 3. Lowers each entry (and its prepare function for hoisted values) into `wm`. */
function lowerVariant(wm: WasmModule, p: Program, plan: Plan, onProgress?: (done: number, total: number) => void) {
  const m = wm.m;
  const { planned, paramAt, caches, constants, pages, weightsBytes, weightsStart } = plan;
  const entries: ManifestEntry[] = [];
  const exports = new Map<string, string>();
  const sites: ProfileSite[] = [];
  let lowered = 0;
  const totalNodes = planned.reduce((s, x) => s + x.g.nodes.length, 0);
  for (const { g, statics, borrowed, buf } of planned) {
    // what each per-call scratch area holds as this entry's main or prepare function runs
    // (see LowerCtx.fresh): kernels reading the same input back to back share its work
    let list: "main" | "prep" = "main";
    const scratchHolds = new Map<string, string>();
    const ctx: LowerCtx = {
      wm,
      context: p.context,
      node: (id) => g.nodes[id],
      address: (id) => buf.get(id)!,
      ptr: (id) => wm.c32(buf.get(id)!),
      rows: (id) => {
        const d = g.nodes[id].type.shape[0];
        return typeof d === "number" ? wm.c32(d) : m.local.get(d === "E" ? EROWS : ROWS, i32);
      },
      width: (id) => rowWidth(g.nodes[id].type.shape),
      count: (id) => {
        const n = g.nodes[id];
        const w = rowWidth(n.type.shape);
        const d = n.type.shape[0];
        return typeof d === "number" ? wm.c32(d * w) : m.i32.mul(m.local.get(d === "E" ? EROWS : ROWS, i32), wm.c32(w));
      },
      past: () => m.local.get(PAST, i32),
      packed: (id) => {
        const at = paramAt.get(attrsOf(g.nodes[id], "param").name);
        return at?.rowMajor === undefined && at?.packed !== undefined;
      },
      packedWeight: (id) => {
        const name = attrsOf(g.nodes[id], "param").name, own = wm.c32(paramAt.get(name)!.packed!), cell = plan.cells.get(name);
        if (cell === undefined) return own;
        // a swappable matrix: the address in its cell, or its own where the cell holds 0
        const load = () => m.i32.load(0, 4, wm.c32(cell));
        return m.select(load(), load(), own);
      },
      constant: (key) => constants.get(key)!,
      scratch: (area) => {
        const at = plan.scratch.get(area);
        if (at === undefined) throw new Error(`internal: no scratch planned for ${area}`);
        return at;
      },
      cache: (id) => caches.get(cacheKey(g.name, g.nodes[id]))!,
      fresh: (area, key) => {
        const k = `${list}:${area}`;
        if (scratchHolds.get(k) === key) return false;
        scratchHolds.set(k, key);
        return true;
      },
    };
    const main: Expr[] = [];
    const prep: Expr[] = [];
    for (const n of g.nodes) {
      onProgress?.(++lowered, totalNodes);
      if (borrowed.has(n.id)) continue; // an earlier entry's prepare computes it
      list = statics.has(n.id) ? "prep" : "main";
      const code = loweringOf(n.op)(ctx, n);
      if (wm.profile && list === "main" && code.length) {
        main.push(wm.profileMark(sites.length));
        sites.push(profileSite(g, n));
      }
      (list === "prep" ? prep : main).push(...code);
    }
    if (wm.profile) main.push(wm.profileMark(-1));
    const sig = createType([i32, i32, i32]);
    m.addFunction(g.name, sig, none, [], m.block(null, main.length ? main : [m.nop()]));
    exports.set(g.name, g.name);
    const prepName = `${g.name}__prepare`;
    if (prep.length) {
      m.addFunction(prepName, sig, none, [], m.block(null, prep));
      exports.set(prepName, prepName);
    }
    const input = (n: OpNode<"input">) => {
      // the tables these ids index (an embedding's)
      const tables = g.nodes.filter((u) => operandOf(u, "ids") === n.id).map((u) => g.nodes[operandOf(u, "table")!].type.shape[0] as number);
      return {
        name: n.attrs.name,
        kind: n.attrs.kind,
        dtype: n.type.dtype,
        offset: buf.get(n.id)!,
        width: rowWidth(n.type.shape),
        // an image's [channels, height, width]: its one row is the whole image
        ...(n.attrs.kind === "image" ? { shape: n.type.shape.slice(1) as number[] } : {}),
        // every token input has a limit (manifest v2): ids that index no table may be any i32 ≥ 0
        ...(tables.length ? { limit: Math.min(...tables) } : n.attrs.kind === "tokens" ? { limit: 2 ** 31 - 1 } : {}),
      };
    };
    entries.push({
      name: g.name,
      prepare: prep.length ? prepName : null,
      cached: g.nodes.some((n) => isOp(n, "attention") && !!n.attrs.cache),
      inputs: g.nodes.filter((n) => isOp(n, "input")).map(input),
      outputs: g.outputs.map((o) => ({ name: o.name, offset: buf.get(o.id)!, width: rowWidth(g.nodes[o.id].type.shape), rows: String(g.nodes[o.id].type.shape[0]) })),
    });
  }

  const manifest: Manifest = {
    format: "wasmformer",
    version: MANIFEST_VERSION,
    model: p.model,
    kind: kindOf(p),
    context: p.context,
    config: p.config,
    memory: {
      pages, weights_offset: weightsStart, weights_bytes: weightsBytes, activation_bytes: plan.activationBytes, control: wm.control, max_threads: MAX_THREADS,
      // the KV caches, row-major by position: what saveState copies
      ...(plan.caches.size ? { kv: [...plan.caches.values()].map((c) => ({ k: c.k, v: c.v, k_width: c.kWidth, v_width: c.vWidth, ...(c.bytes === 2 ? { bytes: 2 } : {}), ...(c.base !== undefined ? { rows: c.rows, window: c.window, keep: c.keep, base: c.base } : {}) })) } : {}),
    },
    features: ["simd128"],
    variants: VARIANTS.map(({ file, features }) => ({ file, features })),
    entries,
  };
  // the layout this code was compiled for: the runtime refuses a manifest that differs from it
  wm.addCustomSection(LAYOUT_SECTION, new TextEncoder().encode(JSON.stringify(layoutOf(manifest))));
  const { binary, text } = wm.finish(pages, exports);
  const scratch = new Map([...plan.scratch].map(([area, at]) => [area, { at, bytes: plan.scratchNeeds.get(area)! }]));
  return { wasm: binary, manifest, wat: text, buffers: new Map(planned.map((x) => [x.g.name, x.buf])), scratch, cells: plan.cells, sites };
}

function kindOf(p: Program): Manifest["kind"] {
  const names = p.graphs.map((g) => g.name);
  if (names.includes("encode") && names.includes("decode")) return "seq2seq";
  // a causal LM continues its KV cache; an encoder (with or without a classifier's logits) has none
  return p.graphs.some((g) => g.nodes.some((n) => isOp(n, "attention") && !!n.attrs.cache)) ? "causal-lm" : "encoder";
}
