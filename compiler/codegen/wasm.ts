// The one module that imports binaryen. It owns the feature set, loads the AssemblyScript
// kernel library as the starting module, and hands typed helpers to the lowerings.

import binaryen from "binaryen";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Expr = binaryen.ExpressionRef;
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

  constructor(opts: { relaxed?: boolean } = {}) {
    this.relaxed = opts.relaxed ?? false;
    // the library's text form keeps its function names (this binaryen.js build has no binary reader)
    this.m = binaryen.parseText(kernelLibrary());
    this.m.setFeatures(this.relaxed ? FEATURES | binaryen.Features.RelaxedSIMD : FEATURES);
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
    this.dataEnd = end;
  }

  private *exportNames() {
    for (let i = 0; i < this.m.getNumExports(); i++) yield binaryen.getExportInfo(this.m.getExportByIndex(i)).name;
  }

  /** A call to a kernel of the AssemblyScript library. */
  callLib(name: string, args: Expr[]): Expr {
    const fn = this.lib.get(name);
    if (!fn) throw new Error(`kernel library has no '${name}'`);
    return this.m.call(fn, args, none);
  }

  /** A call to a scalar f32 → f32 function of the library (e.g. an activation). */
  callLibF32(name: string, args: Expr[]): Expr {
    const fn = this.lib.get(name);
    if (!fn) throw new Error(`kernel library has no '${name}'`);
    return this.m.call(fn, args, f32);
  }

  /** Adds a generated function once per name; `build` runs only the first time. */
  ensure(name: string, build: () => void): string {
    if (!this.generated.has(name)) {
      this.generated.add(name);
      build();
    }
    return name;
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

  /** Imports memory `env.memory` of the given size in 64 KiB pages. */
  finish(pages: number, exports: Map<string, string>) {
    const segments = this.segments.map((s) => ({ offset: this.m.i32.const(s.offset), data: s.data, passive: false }));
    this.m.setMemory(pages, 65536, null, segments, false, false, "0");
    this.m.addMemoryImport("0", "env", "memory", false);
    for (const [internal, external] of exports) this.m.addFunctionExport(internal, external);
    if (!this.m.validate()) throw new Error("generated wasm failed validation");
    binaryen.setOptimizeLevel(3);
    binaryen.setShrinkLevel(0);
    binaryen.setDebugInfo(true); // keeps function names: readable profiles and stack traces
    this.m.optimize();
    return { binary: this.m.emitBinary(), text: this.m.emitText() };
  }

  dispose() {
    this.m.dispose();
  }
}
