// The one binaryen wrapper: library calls by parameter name, checked against the library.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { generate as generateArtifact } from "../../compiler/codegen/emit.js";
import { WasmModule, createType, none } from "../../compiler/codegen/wasm.js";
import { fixtureProgram, root } from "../helpers.js";

describe("kernel library calls", () => {
  it("take their arguments by name and pass them in the library's parameter order", () => {
    const wm = new WasmModule();
    try {
      const c = (v: number) => wm.c32(v);
      // named in reverse: the call still passes x, out, rows, D, start, size
      const call = wm.callLib("slice", { size: c(6), start: c(5), D: c(4), rows: c(3), out: c(2), x: c(1) });
      wm.m.addFunction("probe", createType([]), none, [], call);
      const text = wm.m.emitText();
      const probe = text.slice(text.indexOf("(func $probe"));
      const consts = [...probe.slice(0, probe.indexOf("\n )")).matchAll(/i32\.const (\d+)/g)].map((x) => Number(x[1]));
      expect(consts).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      wm.dispose();
    }
  });

  it("the signature table is checked against the library: a wrong count, type or name fails by name", () => {
    const wm = new WasmModule(); // checks compiler/codegen/library.ts against the library it loads
    try {
      expect(() => wm.checkLibrary({ softmax: { x: "i32", out: "i32", rows: "i32" } })).toThrow("kernel library's 'softmax' takes (i32, i32, i32, i32) → none, compiler/codegen/library.ts says (i32, i32, i32) → none");
      expect(() => wm.checkLibrary({ scale: { a: "i32", out: "i32", n: "i32", c: "i32" } })).toThrow("'scale' takes (i32, i32, i32, f32)");
      expect(() => wm.checkLibrary({ no_such_kernel: {} })).toThrow("kernel library has no 'no_such_kernel'");
      expect(() => wm.checkLibrary({ relu: { x: "i32", out: "i32", n: "i32" } })).not.toThrow();
    } finally {
      wm.dispose();
    }
  });
});

describe("one binaryen importer", () => {
  it("only compiler/codegen/wasm.ts imports binaryen", () => {
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) => {
        const path = join(dir, f);
        return statSync(path).isDirectory() ? (f === "kernels" ? [] : files(path)) : f.endsWith(".ts") ? [path] : [];
      });
    const importers = ["compiler", "ir", "runtime"].flatMap((d) => files(join(root, d))).filter((f) => /from "binaryen"/.test(readFileSync(f, "utf8")));
    expect(importers.map((f) => relative(root, f))).toEqual(["compiler/codegen/wasm.ts"]);
  });
});


describe("attention kernels are specialised to the model", () => {
  it("prefill attention is generated for the head shape; decode's library kernel keeps none of it as a parameter", () => {
    // llama3 fixture: 4 heads, 1 KV head, head_dim 12
    const { wat } = generateArtifact(fixtureProgram("llama3"), {});
    expect(wat).toMatch(/\n \(func \$attention_rows_4_1_12_12_/);
    // the library's decode kernel, once binaryen has propagated the constant arguments of its
    // one caller (dead-argument elimination): of its 19 parameters, the head counts, sizes,
    // scale, cap, bias, mask and unit count are constants in its body
    const part = wat.match(/\n \(func \$compiler\/codegen\/kernels\/attention\/attention_part((?: \(param \$\d+ i32\))*)/);
    expect(part, "the decode kernel is a function of its own").not.toBeNull();
    expect(part![1].match(/\(param/g)?.length ?? 0).toBeLessThanOrEqual(5);
  });
});
