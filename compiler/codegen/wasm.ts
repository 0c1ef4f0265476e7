// The one module that imports binaryen. It owns the feature set, loads the AssemblyScript
// kernel library as the starting module, and hands typed helpers to the lowerings.

import binaryen from "binaryen";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CONTROL } from "@wasmformer/runtime/control";
import { LIBRARY, type LibArgs, type LibKernel, SCALAR_ACTIVATIONS, type ScalarActivation } from "./library.js";
import { CHUNKS_PER_THREAD, MIN_PARALLEL_MACS } from "./tuning.js";

export type Expr = binaryen.ExpressionRef;
export type Type = binaryen.Type;
export type Module = binaryen.Module;
export const { i32, f32, v128, none, createType } = binaryen;

const FEATURES =
  binaryen.Features.MVP | binaryen.Features.MutableGlobals | binaryen.Features.SignExt |
  binaryen.Features.NontrappingFPToInt | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt | binaryen.Features.SIMD128;

function kernelLibrary(): string {
  // built by `npm run build` (asc, see asconfig.json) next to its source; this file runs
  // either from source (compiler/codegen) or compiled (dist/compiler/codegen)
  const candidates = ["./kernels/kernels.wat", "../../../compiler/codegen/kernels/kernels.wat"].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  for (const path of candidates) if (existsSync(path)) return readFileSync(path, "utf8");
  throw new Error(`kernel library ${candidates[0]} is missing: run 'npm run build'`);
}


/** A wasm module under construction: the kernel library plus generated kernels and entries. */
/**
 * A small hand-written module (text form) assembled to binary: the roofline probes. SIMD128 always;
 * `atomics` for one that imports a shared memory.
 */
export function assembleText(wat: string, { atomics = false, relaxed = false } = {}): Uint8Array<ArrayBuffer> {
  const m = binaryen.parseText(wat);
  try {
    m.setFeatures(binaryen.Features.MVP | binaryen.Features.SIMD128 | (atomics ? binaryen.Features.Atomics : 0) | (relaxed ? binaryen.Features.RelaxedSIMD : 0));
    if (!m.validate()) throw new Error("internal: a hand-written module does not validate");
    return m.emitBinary() as Uint8Array<ArrayBuffer>;
  } finally {
    m.dispose();
  }
}

export class WasmModule {
  readonly m: binaryen.Module;
  /** External kernel name → internal function name. */
  private readonly lib = new Map<string, string>();
  private readonly generated = new Set<string>();
  /** The library's constant data (e.g. exp/log tables), kept at its addresses. */
  private readonly segments: { offset: number; data: Uint8Array }[] = [];
  /** First free byte after the library's data: generated code lays out memory from here. */
  readonly dataEnd: number;
  /** Whether generated kernels may use relaxed SIMD (fused multiply-add). */
  readonly relaxed: boolean;
  /** Whether the module runs its matrix kernels on worker threads over a shared memory. */
  readonly threads: boolean;
  /** Address of the thread control block (reserved in every variant, so layouts agree). */
  readonly control: number;
  /** Kernels that `parallel` splits over threads, in table order. */
  private readonly table: string[] = [];

  /** Whether the entries call `env.__prof(site)` before each kernel (the profiling module). */
  readonly profile: boolean;

  constructor(opts: { relaxed?: boolean; threads?: boolean; profile?: boolean } = {}) {
    this.relaxed = opts.relaxed ?? false;
    this.threads = opts.threads ?? false;
    this.profile = opts.profile ?? false;
    // the library's text form keeps its function names (this binaryen.js build has no binary reader)
    this.m = binaryen.parseText(kernelLibrary());
    let features = FEATURES;
    if (this.relaxed) features |= binaryen.Features.RelaxedSIMD;
    if (this.threads) features |= binaryen.Features.Atomics;
    this.m.setFeatures(features);
    for (let i = this.m.getNumExports() - 1; i >= 0; i--) {
      const info = binaryen.getExportInfo(this.m.getExportByIndex(i));
      if (info.kind === binaryen.ExternalFunction) this.lib.set(info.name, info.value);
    }
    for (const name of [...this.exportNames()]) this.m.removeExport(name);
    let end = 1024;
    // binaryen.js 132 has these at run time but not in its typings
    const mod = this.m as unknown as { getNumDataSegments(): number; getDataSegmentByIndex(i: number): number; getDataSegmentInfo(s: number): { offset: number | null; data: ArrayBuffer; passive: boolean } };
    for (let i = 0; i < mod.getNumDataSegments(); i++) {
      const info = mod.getDataSegmentInfo(mod.getDataSegmentByIndex(i));
      if (info.passive || info.offset === null) throw new Error("kernel library has a data segment without a constant offset");
      this.segments.push({ offset: info.offset, data: new Uint8Array(info.data) });
      end = Math.max(end, info.offset + info.data.byteLength);
    }
    this.control = Math.ceil(end / 64) * 64;
    this.dataEnd = this.control + CONTROL.bytes;
    this.checkLibrary(LIBRARY);
    if (this.profile) this.m.addFunctionImport("__prof", "env", "__prof", binaryen.createType([binaryen.i32]), binaryen.none);
  }

  /** A call telling the profiler that site `site` starts (−1: the entry ends). */
  profileMark(site: number): binaryen.ExpressionRef {
    return this.m.call("__prof", [this.m.i32.const(site)], binaryen.none);
  }

  private *exportNames() {
    for (let i = 0; i < this.m.getNumExports(); i++) yield binaryen.getExportInfo(this.m.getExportByIndex(i)).name;
  }

  /** A call to a kernel of the AssemblyScript library, its arguments by parameter name (library.ts). */
  callLib<K extends LibKernel>(name: K, args: LibArgs<K, Expr>): Expr {
    const order = Object.keys(LIBRARY[name]) as (keyof LibArgs<K, Expr>)[];
    return this.m.call(this.lib.get(name)!, order.map((p) => args[p]), none);
  }

  /** A call to one of the library's scalar activations on an f32. */
  callActivation(name: ScalarActivation, x: Expr): Expr {
    return this.m.call(this.lib.get(name)!, [x], f32);
  }

  /**
   * Checks that the library has every function of `table` with those parameter types (and
   * SCALAR_ACTIVATIONS as f32 → f32): calls are built from the table, so a kernel whose
   * signature changed must fail here, by name, rather than in validation.
   */
  checkLibrary(table: Readonly<Record<string, Readonly<Record<string, "i32" | "f32">>>>) {
    const types = { i32, f32 };
    const signature = (params: readonly number[], result: number) => `(${params.map((t) => (t === i32 ? "i32" : t === f32 ? "f32" : String(t))).join(", ")}) → ${result === none ? "none" : result === f32 ? "f32" : String(result)}`;
    const expect = [
      ...Object.entries(table).map(([name, params]) => [name, Object.values(params).map((t) => types[t]), none] as const),
      ...SCALAR_ACTIVATIONS.map((name) => [name, [f32], f32] as const),
    ];
    for (const [name, params, result] of expect) {
      const fn = this.lib.get(name);
      if (!fn) throw new Error(`kernel library has no '${name}' (run 'npm run build')`);
      const info = binaryen.getFunctionInfo(this.m.getFunction(fn));
      const found = signature(binaryen.expandType(info.params), info.results), want = signature(params, result);
      if (found !== want) throw new Error(`kernel library's '${name}' takes ${found}, compiler/codegen/library.ts says ${want}`);
    }
  }

  /** Adds a generated function once per name; `build` runs only the first time. */
  private labels = new Map<string, number>();
  ensure(name: string, build: () => void): string {
    if (!this.generated.has(name)) {
      this.generated.add(name);
      build();
    }
    return name;
  }

  /**
   * A call of `kernel(a0..a5, from, to, thread)` over work units [0, units) (a linear kernel's
   * groups of 4 output rows); `thread` (0 = the caller) indexes per-thread scratch. The threaded
   * variant cuts the range into chunks that the caller and the workers claim until none is left.
   * A unit's result does not depend on the chunk or thread that computes it (every sum keeps its
   * order), so results equal the single-thread ones.
   */
  parallel(kernel: string, args: Expr[], units: number, macsPerRow: number, work?: Expr): Expr {
    const m = this.m;
    if (args.length !== 6) throw new Error("internal: parallel kernels take 6 arguments");
    const alone = () => m.call(kernel, [...args.map((a) => m.copyExpression(a)), m.i32.const(0), m.i32.const(units), m.i32.const(0)], none);
    if (!this.threads) return alone();
    let index = this.table.indexOf(kernel);
    if (index < 0) index = this.table.push(kernel) - 1;
    const split = m.call("__parallel", [m.i32.const(index), ...args, m.i32.const(units)], none);
    // a job too small to pay for waking the workers runs on the calling thread alone: its
    // multiply-adds are macsPerRow × rows (args[5]), or `work` where that depends on more
    if (work) return m.if(m.i32.ge_u(work, m.i32.const(MIN_PARALLEL_MACS)), split, alone());
    const minRows = Math.ceil(MIN_PARALLEL_MACS / macsPerRow);
    return minRows <= 1 ? split : m.if(m.i32.ge_u(m.copyExpression(args[5]), m.i32.const(minRows)), split, alone());
  }

  /**
   * The threaded variant's dispatcher, claim loop and worker loop (see CONTROL). The caller
   * publishes a job and claims chunks like any worker, then waits until every chunk is done — not
   * for every worker: a worker that wakes late finds the chunks taken (or the claim word tagged
   * with a newer job) and goes back to waiting, so it never stalls the caller.
   */
  private addThreadFunctions() {
    const m = this.m;
    const c = (k: number) => m.i32.const(this.control + k);
    const get = (l: number) => m.local.get(l, i32);
    const params = (n: number) => createType(Array<number>(n).fill(i32));
    const kernelType = params(9);
    // chunk k of `units` cut into `chunks`: [units·k/chunks, units·(k+1)/chunks)
    const bound = (units: Expr, k: Expr, chunks: Expr) => m.i32.div_u(m.i32.mul(units, k), chunks);
    const job = (k: number) => m.i32.load(CONTROL.job + 4 * k, 4, m.i32.const(this.control));
    // the claim word: the job's generation (low 20 bits) above a 12-bit chunk index
    const TAG = 12, GENERATIONS = (1 << (32 - TAG)) - 1, MAX_CHUNKS = (1 << TAG) - 1;

    // __claim(g, fn, a0..a5, units, chunks, thread): runs chunks of job generation g until none is
    // left; locals 11 = the claim word read, 12 = its chunk
    const C = { g: 0, fn: 1, units: 8, chunks: 9, thread: 10, word: 11, k: 12 };
    m.addFunction("__claim", params(11), none, [i32, i32], m.loop("claim", m.block(null, [
      m.local.set(C.word, m.i32.atomic.load(0, c(CONTROL.claim))),
      m.if(m.i32.ne(m.i32.shr_u(get(C.word), m.i32.const(TAG)), m.i32.and(get(C.g), m.i32.const(GENERATIONS))), m.return()),
      m.local.set(C.k, m.i32.and(get(C.word), m.i32.const(MAX_CHUNKS))),
      m.if(m.i32.ge_u(get(C.k), get(C.chunks)), m.return()),
      // chunk k is ours if the word is unchanged; else read it again
      m.if(m.i32.eq(m.i32.atomic.rmw.cmpxchg(0, c(CONTROL.claim), get(C.word), m.i32.add(get(C.word), m.i32.const(1))), get(C.word)), m.block(null, [
        m.call_indirect("kernels", get(C.fn), [...[2, 3, 4, 5, 6, 7].map(get),
          bound(get(C.units), get(C.k), get(C.chunks)), bound(get(C.units), m.i32.add(get(C.k), m.i32.const(1)), get(C.chunks)), get(C.thread)], kernelType, none),
        m.drop(m.i32.atomic.rmw.add(0, c(CONTROL.done), m.i32.const(1))),
      ])),
      m.br("claim"),
    ])));

    // __parallel(fn, a0..a5, units): locals 8 = threads, 9 = chunks, 10 = the job's generation
    const P = { fn: 0, units: 7, n: 8, chunks: 9, g: 10 };
    const args = () => [1, 2, 3, 4, 5, 6].map(get);
    const fewest = (a: Expr, b: () => Expr) => m.select(m.i32.lt_u(a, b()), m.copyExpression(a), b());
    m.addFunction("__parallel", params(8), none, [i32, i32, i32], m.block(null, [
      m.local.set(P.n, m.i32.load(0, 4, c(CONTROL.threads))),
      m.if(m.i32.le_u(get(P.n), m.i32.const(1)), m.block(null, [
        m.call_indirect("kernels", get(P.fn), [...args(), m.i32.const(0), get(P.units), m.i32.const(0)], kernelType, none),
        m.return(),
      ])),
      m.local.set(P.chunks, fewest(m.i32.mul(get(P.n), m.i32.const(CHUNKS_PER_THREAD)), () => fewest(get(P.units), () => m.i32.const(MAX_CHUNKS)))),
      ...[P.fn, 1, 2, 3, 4, 5, 6, P.units, P.chunks].map((l, k) => m.i32.store(CONTROL.job + 4 * k, 4, m.i32.const(this.control), get(l))),
      m.i32.atomic.store(0, c(CONTROL.done), m.i32.const(0)),
      // the claim word before the generation: a worker that sees the new generation finds it tagged
      m.local.set(P.g, m.i32.add(m.i32.atomic.load(0, c(CONTROL.generation)), m.i32.const(1))),
      m.i32.atomic.store(0, c(CONTROL.claim), m.i32.shl(m.i32.and(get(P.g), m.i32.const(GENERATIONS)), m.i32.const(TAG))),
      m.i32.atomic.store(0, c(CONTROL.generation), get(P.g)),
      m.drop(m.memory.atomic.notify(c(CONTROL.generation), m.i32.sub(get(P.n), m.i32.const(1)))),
      m.call("__claim", [get(P.g), get(P.fn), ...args(), get(P.units), get(P.chunks), m.i32.const(0)], none),
      // the last chunks are as long as ours: spin (a browser's main thread may not block)
      m.loop("join", m.br("join", m.i32.ne(m.i32.atomic.load(0, c(CONTROL.done)), get(P.chunks)))),
    ]));

    // __worker(id, seen): serves jobs until quit. `seen` is the generation the runtime read before
    // starting the worker (no job is published before every worker has started); local 2 = spins
    const W = { id: 0, seen: 1, spins: 2 };
    const SPINS = 1 << 22;
    m.addFunction("__worker", params(2), none, [i32], m.loop("serve", m.block(null, [
      // wait for the next generation: spin a while (jobs come back to back), then sleep
      m.local.set(W.spins, m.i32.const(0)),
      m.block("woken", [
        m.loop("wait", m.block(null, [
          m.br("woken", m.i32.ne(m.i32.atomic.load(0, c(CONTROL.generation)), get(W.seen))),
          m.local.set(W.spins, m.i32.add(get(W.spins), m.i32.const(1))),
          m.if(m.i32.gt_u(get(W.spins), m.i32.const(SPINS)), m.drop(m.memory.atomic.wait32(c(CONTROL.generation), get(W.seen), m.i64.const(-1n)))),
          m.br("wait"),
        ])),
      ]),
      m.local.set(W.seen, m.i32.atomic.load(0, c(CONTROL.generation))),
      m.if(m.i32.atomic.load(0, c(CONTROL.quit)), m.return()),
      // the job read after its generation; __claim runs none of it if a newer job replaced it meanwhile
      m.call("__claim", [get(W.seen), ...[0, 1, 2, 3, 4, 5, 6, 7, 8].map(job), get(W.id)], none),
      m.br("serve"),
    ])));
    m.addTable("kernels", this.table.length, this.table.length);
    m.addActiveElementSegment("kernels", "kernels_init", this.table, m.i32.const(0));
  }

  /**
   * i16x8.relaxed_dot_i8x16_i7x16_s: lane i = a[2i]·b[2i] + a[2i+1]·b[2i+1], a signed, b in
   * 0..127 (exact there on every host; pmaddubsw on x64). Relaxed variant only. (The i32x4 _add_
   * form is not used: Node 20's V8 gets it wrong.)
   */
  dotI8x16I7x16(a: Expr, b: Expr): Expr {
    if (!this.relaxed) throw new Error("internal: an 8-bit dot product needs the relaxed SIMD variant");
    const raw = binaryen as unknown as { _BinaryenBinary(m: number, op: number, a: Expr, b: Expr): Expr; RelaxedDotI8x16I7x16SToVecI16x8: number };
    return raw._BinaryenBinary((this.m as unknown as { ptr: number }).ptr, raw.RelaxedDotI8x16I7x16SToVecI16x8, a, b);
  }

  /** a·b + c on f32x4: relaxed_madd (fused where the host fuses) in the relaxed variant. */
  madd(a: Expr, b: Expr, c: Expr): Expr {
    if (!this.relaxed) return this.m.f32x4.add(c, this.m.f32x4.mul(a, b));
    const raw = binaryen as unknown as { _BinaryenSIMDTernary(m: number, op: number, a: Expr, b: Expr, c: Expr): Expr; RelaxedMaddVecF32x4: number };
    return raw._BinaryenSIMDTernary((this.m as unknown as { ptr: number }).ptr, raw.RelaxedMaddVecF32x4, a, b, c);
  }

  c32(n: number): Expr {
    return this.m.i32.const(n);
  }
  cf32(n: number): Expr {
    return this.m.f32.const(n);
  }

  /**
   * `for (i = from; i < to; i += step) body` as a block/loop pair; `i` is a local index. `to` is
   * a constant or a function making the bound (binaryen trees cannot share a node).
   */
  loop(label: string, i: number, from: Expr, bound: number | (() => Expr), step: number, body: Expr[]): Expr {
    const m = this.m;
    // labels must be unique within a function: a second loop of the same name gets a suffix
    const seen = this.labels.get(label) ?? 0;
    this.labels.set(label, seen + 1);
    if (seen) label = `${label}.${seen}`;
    const to = () => (typeof bound === "number" ? m.i32.const(bound) : bound());
    return m.block(null, [
      m.local.set(i, from),
      m.block(`${label}_out`, [
        m.br(`${label}_out`, m.i32.ge_s(m.local.get(i, i32), to())),
        m.loop(`${label}_top`, m.block(null, [
          ...body,
          m.local.set(i, m.i32.add(m.local.get(i, i32), m.i32.const(step))),
          m.br(`${label}_top`, m.i32.lt_s(m.local.get(i, i32), to())),
        ])),
      ]),
    ]);
  }

  /** A custom section (data the module's code does not read, e.g. the layout it was compiled for). */
  addCustomSection(name: string, data: Uint8Array) {
    this.m.addCustomSection(name, data);
  }

  /** Imports memory `env.memory` of the given size in 64 KiB pages (shared in the threaded variant). */
  finish(pages: number, exports: Map<string, string>) {
    const segments = this.segments.map((s) => ({ offset: this.m.i32.const(s.offset), data: s.data, passive: false }));
    // the runtime creates the memory: the planned size, with room to grow where LoRA adapters are
    // loaded at run time (runtime/lora.ts); a shared one's maximum is the runtime's choice below 4 GiB
    this.m.setMemory(pages, 65536, null, segments, this.threads, false, "0");
    this.m.addMemoryImport("0", "env", "memory", this.threads);
    if (this.threads) {
      this.addThreadFunctions();
      this.m.addFunctionExport("__worker", "__worker");
    }
    for (const [internal, external] of exports) this.m.addFunctionExport(internal, external);
    if (!this.m.validate()) throw new Error("generated wasm failed validation");
    binaryen.setOptimizeLevel(3);
    binaryen.setShrinkLevel(0);
    // small functions without loops are inlined into their callers (V8 does not inline wasm
    // calls here): the f32x4 activations with their exp (vexp, vact_gelu_tanh) in every matrix
    // kernel's epilogue, and the attention wrappers
    binaryen.setFlexibleInlineMaxSize(120);
    binaryen.setDebugInfo(true); // keeps function names: readable profiles and stack traces
    this.m.optimize();
    return { binary: this.m.emitBinary(), text: this.m.emitText() };
  }

  dispose() {
    this.m.dispose();
  }
}
