// The one module that imports binaryen. It owns the feature set, loads the AssemblyScript
// kernel library as the starting module, and hands typed helpers to the lowerings.

import binaryen from "binaryen";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CONTROL } from "@wasmformer/runtime/control";
import { LIBRARY, type LibArgs, type LibKernel, SCALAR_ACTIVATIONS, type ScalarActivation } from "./library.js";
import { MIN_PARALLEL_MACS } from "./tuning.js";

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
export function assembleText(wat: string, { atomics = false } = {}): Uint8Array<ArrayBuffer> {
  const m = binaryen.parseText(wat);
  try {
    m.setFeatures(binaryen.Features.MVP | binaryen.Features.SIMD128 | (atomics ? binaryen.Features.Atomics : 0));
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
   * groups of 4 output rows); `thread` (0 = the caller) indexes per-thread scratch. The threaded variant splits the range over the threads serving kernels:
   * the caller publishes the job, runs the first share and waits for the workers' shares.
   * Splitting by output rows keeps every sum's order, so results equal the single-thread ones.
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

  /** The threaded variant's dispatcher and worker loop (see CONTROL). */
  private addThreadFunctions() {
    const m = this.m;
    const c = (k: number) => m.i32.const(this.control + k);
    const get = (l: number) => m.local.get(l, i32);
    const kernelType = createType([i32, i32, i32, i32, i32, i32, i32, i32, i32]);
    // thread t's share of `units` split over `n`: [units·t/n, units·(t+1)/n)
    const bound = (units: Expr, t: Expr, n: Expr) => m.i32.div_u(m.i32.mul(units, t), n);
    const job = (k: number) => m.i32.load(CONTROL.job + 4 * k, 4, m.i32.const(this.control));
    const callShare = (fn: Expr, args: Expr[], from: Expr, to: Expr, thread: Expr) => m.call_indirect("kernels", fn, [...args, from, to, thread], kernelType, none);

    // __parallel(fn, a0..a5, units): locals 8 = n
    const P = { fn: 0, a: 1, units: 7, n: 8 };
    const args = () => [1, 2, 3, 4, 5, 6].map((l) => get(l));
    m.addFunction("__parallel", createType([i32, i32, i32, i32, i32, i32, i32, i32]), none, [i32], m.block(null, [
      m.local.set(P.n, m.i32.load(0, 4, c(CONTROL.threads))),
      m.if(m.i32.le_u(get(P.n), m.i32.const(1)), m.block(null, [callShare(get(P.fn), args(), m.i32.const(0), get(P.units), m.i32.const(0)), m.return()])),
      ...[P.fn, ...args().map((_, i) => i + 1), P.units].map((l, k) => m.i32.store(CONTROL.job + 4 * k, 4, m.i32.const(this.control), get(l))),
      m.i32.atomic.store(0, c(CONTROL.pending), m.i32.sub(get(P.n), m.i32.const(1))),
      m.drop(m.i32.atomic.rmw.add(0, c(CONTROL.generation), m.i32.const(1))),
      m.drop(m.memory.atomic.notify(c(CONTROL.generation), m.i32.sub(get(P.n), m.i32.const(1)))),
      callShare(get(P.fn), args(), m.i32.const(0), bound(get(P.units), m.i32.const(1), get(P.n)), m.i32.const(0)),
      // the workers' shares are about as long as ours: spin (a browser's main thread may not block)
      m.loop("join", m.br("join", m.i32.atomic.load(0, c(CONTROL.pending)))),
    ]));

    // __worker(id, seen): serves jobs until quit. `seen` is the generation the runtime read before
    // starting the worker (no job is published before every worker has started); locals 2 = spins,
    // 3 = n, 4 = units
    const W = { id: 0, seen: 1, spins: 2, n: 3, units: 4 };
    const SPINS = 1 << 22;
    m.addFunction("__worker", createType([i32, i32]), none, [i32, i32, i32], m.block(null, [
      m.loop("serve", m.block(null, [
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
        m.local.set(W.n, m.i32.load(0, 4, c(CONTROL.threads))),
        m.local.set(W.units, job(7)),
        callShare(job(0), [1, 2, 3, 4, 5, 6].map((k) => job(k)),
          bound(get(W.units), get(W.id), get(W.n)), bound(get(W.units), m.i32.add(get(W.id), m.i32.const(1)), get(W.n)), get(W.id)),
        m.drop(m.i32.atomic.rmw.sub(0, c(CONTROL.pending), m.i32.const(1))),
        m.br("serve"),
      ])),
    ]));
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
    // a shared memory needs a maximum: it is exactly the planned size, as in every variant
    this.m.setMemory(pages, this.threads ? pages : 65536, null, segments, this.threads, false, "0");
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
