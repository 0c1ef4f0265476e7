// Safetensors checkpoints: valid files (single and sharded) load; every malformed header gives one
// coded line naming the file and the tensor with the numbers that disagree, before any tensor is
// read. Malformed files are built in a temp folder, by hand or from the committed fixtures.

import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadProgram } from "../../compiler/load.js";
import { openSafetensors } from "../../compiler/weights/safetensors.js";
import { fixtureDir, root } from "../helpers.js";
import { inputError } from "./input-error.js";

const tmp = (prefix = "wf-st-") => mkdtempSync(join(tmpdir(), prefix));

/** A folder holding `name` (default model.safetensors) with this header and data; `len` overrides the header length. */
function file(header: object | string | Buffer, data: Uint8Array = new Uint8Array(0), len?: bigint | number, name = "model.safetensors", dir = tmp()): string {
  const h = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(len ?? h.length));
  writeFileSync(join(dir, name), Buffer.concat([n, h, data]));
  return dir;
}

/** A valid file of F32 tensors laid out in order. */
function f32File(tensors: Record<string, number[]>, name?: string, dir?: string): string {
  const header: Record<string, object> = {};
  let at = 0;
  for (const [n, v] of Object.entries(tensors)) {
    header[n] = { dtype: "F32", shape: [v.length], data_offsets: [at, (at += 4 * v.length)] };
  }
  return file(header, new Uint8Array(new Float32Array(Object.values(tensors).flat()).buffer), undefined, name, dir);
}

/** A copy of a fixture folder whose model.safetensors is `edit`ed. */
function fixtureCopy(name: string, edit: (bytes: Buffer) => Buffer): string {
  const dir = tmp("wf-fixture-");
  writeFileSync(join(dir, "model.safetensors"), edit(readFileSync(join(fixtureDir(name), "model.safetensors"))));
  copyFileSync(join(fixtureDir(name), "config.json"), join(dir, "config.json"));
  return dir;
}

const headerLength = (b: Buffer) => Number(b.readBigUInt64LE(0));
const withHeaderLength = (delta: number) => (b: Buffer) => {
  const out = Buffer.from(b);
  out.writeBigUInt64LE(BigInt(headerLength(b) + delta));
  return out;
};

const open = (dir: string) => () => openSafetensors(dir);
const example = (name: string) => join(root, "examples", `${name}.wf`);

describe("valid safetensors files load", () => {
  it("reads F32, F16 and BF16 as float32", () => {
    const f32 = new Float32Array([1.5, -2]);
    const f16 = new Uint16Array([0x3c00, 0xc000]); // 1, -2
    const bf16 = new Uint16Array([0x3fc0, 0xc000]); // 1.5, -2
    const data = Buffer.concat([Buffer.from(f32.buffer), Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]);
    const w = openSafetensors(file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] }, c: { dtype: "BF16", shape: [2], data_offsets: [12, 16] } }, data));
    expect(Array.from(w.read("a"))).toEqual([1.5, -2]);
    expect(Array.from(w.read("b"))).toEqual([1, -2]);
    expect(Array.from(w.read("c"))).toEqual([1.5, -2]);
  });

  it("accepts a space-padded header, __metadata__, entries in any order, empty tensors and sub-byte dtypes", () => {
    const header = JSON.stringify({
      __metadata__: { format: "pt" },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      empty: { dtype: "F32", shape: [0, 3], data_offsets: [4, 4] },
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      nibbles: { dtype: "F4", shape: [2, 3], data_offsets: [8, 11] },
    });
    const w = openSafetensors(file(`${header}     `, Buffer.concat([Buffer.from(new Float32Array([7, 9]).buffer), Buffer.alloc(3)])));
    expect([w.read("a")[0], w.read("b")[0], w.read("empty").length]).toEqual([7, 9, 0]);
    expect(w.info("nibbles")).toMatchObject({ dtype: "F4", shape: [2, 3] });
  });

  it("opens every committed fixture and reads each tensor", () => {
    for (const name of ["gpt2", "llama", "bert", "t5", "t5-v1_1", "llama-q8_0"]) {
      const w = openSafetensors(fixtureDir(name));
      for (const n of w.names()) expect(w.read(n).length).toBe(w.info(n)!.shape.reduce((a, b) => a * b, 1));
    }
  });

  it("reads tensors past 2 GiB of a file larger than 2 GiB (a sparse file), tensor by tensor", () => {
    const dir = tmp("wf-big-");
    const big = 2 ** 31 + 4096; // bytes of a tensor that is never read
    const header = Buffer.from(JSON.stringify({ pad: { dtype: "U8", shape: [big], data_offsets: [0, big] }, w: { dtype: "F32", shape: [2], data_offsets: [big, big + 8] } }));
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(header.length));
    const path = join(dir, "model.safetensors");
    writeFileSync(path, Buffer.concat([n, header]));
    const fd = openSync(path, "r+");
    try {
      writeSync(fd, Buffer.from(new Float32Array([2.5, -7]).buffer), 0, 8, 8 + header.length + big);
    } finally {
      closeSync(fd);
    }
    try {
      expect(Array.from(openSafetensors(dir).read("w"))).toEqual([2.5, -7]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads a sharded checkpoint through its index", () => {
    const dir = tmp("wf-shard-");
    f32File({ x: [3] }, "model-00001-of-00002.safetensors", dir);
    f32File({ y: [4], z: [5] }, "model-00002-of-00002.safetensors", dir);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00002-of-00002.safetensors", z: "model-00002-of-00002.safetensors" } }));
    const w = openSafetensors(dir);
    expect([w.read("x")[0], w.read("y")[0], w.read("z")[0]]).toEqual([3, 4, 5]);
    expect(w.info("y")!.file).toBe("model-00002-of-00002.safetensors");
  });
});

describe("the reproducers: a header length off by one byte", () => {
  it("one byte short on a space-padded header parses as JSON but leaves a trailing byte (before: every tensor one byte off, exit 0)", () => {
    const dir = fixtureCopy("llama", withHeaderLength(-1));
    expect(inputError(() => loadProgram(example("llama"), dir))).toBe(
      "error[WF406]: model.safetensors: the tensors cover 128520 bytes of data but the data section holds 128521 (1 trailing byte after tensor 'model.norm.weight')",
    );
  });

  it("one byte short on an unpadded header cuts the JSON", () => {
    expect(inputError(() => loadProgram(example("gpt2"), fixtureCopy("gpt2", withHeaderLength(-1))))).toBe("error[WF403]: model.safetensors: header (2607 bytes) is not valid JSON");
  });

  it("one byte long takes the first data byte into the header", () => {
    expect(inputError(() => loadProgram(example("gpt2"), fixtureCopy("gpt2", withHeaderLength(1))))).toBe("error[WF403]: model.safetensors: header (2609 bytes) is not valid UTF-8");
  });

  it("a real checkpoint truncated by one byte names the tensor that runs past the end", () => {
    const dir = fixtureCopy("gpt2", (b) => b.subarray(0, b.length - 1));
    expect(inputError(() => loadProgram(example("gpt2"), dir))).toBe(
      "error[WF406]: model.safetensors: tensor 'transformer.wte.weight' data [216720, 240960) runs past the end of the data section (240959 bytes); the file may be truncated",
    );
  });
});

describe("malformed safetensors headers are one coded line naming the file and the tensor", () => {
  const w4 = new Uint8Array(4);
  const cases: [string, () => string, string][] = [
    ["a file too short for the header length", () => {
      const dir = tmp();
      writeFileSync(join(dir, "model.safetensors"), Buffer.from([1, 2, 3]));
      return dir;
    }, "WF403 model.safetensors: truncated file (3 bytes, no header)"],
    ["a header length of 2^64 − 1", () => file("{}", new Uint8Array(0), 2n ** 64n - 1n), "WF403 model.safetensors: header length 18446744073709551615 runs past the end of the file (10 bytes)"],
    ["a header length past the end", () => file("{}", new Uint8Array(0), 1 << 30), "WF403 model.safetensors: header length 1073741824 runs past the end of the file (10 bytes)"],
    ["a header that does not start with '{'", () => file("  {}"), "WF403 model.safetensors: header (4 bytes) does not start with '{'"],
    ["a header that is not UTF-8", () => file(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), "WF403 model.safetensors: header (7 bytes) is not valid UTF-8"],
    ["a header that is not JSON", () => file("{not json"), "WF403 model.safetensors: header (9 bytes) is not valid JSON"],
    ["a duplicate tensor name", () => file(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": [{"a": 1}], "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}`, w4), "WF403 model.safetensors: tensor 'a' appears twice in the header"],
    ["__metadata__ of non-strings", () => file({ __metadata__: { format: 1 } }), `WF403 model.safetensors: __metadata__ is {"format":1}, not an object of strings`],
    ["an entry that is not an object", () => file({ w: [1, 2] }), "WF403 model.safetensors: tensor 'w' has header entry [1,2], not an object with dtype, shape and data_offsets"],
    ["an unknown dtype", () => file({ w: { dtype: "Q9", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), `WF404 model.safetensors: tensor 'w' has unknown dtype "Q9"`],
    ["a dtype that is not a string", () => file({ w: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, w4), "WF404 model.safetensors: tensor 'w' has unknown dtype 4"],
    ["a negative dimension", () => file({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, w4), "WF405 model.safetensors: tensor 'w' has shape [-1], not a list of non-negative integers"],
    ["a fractional dimension", () => file({ w: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }, w4), "WF405 model.safetensors: tensor 'w' has shape [1.5], not a list of non-negative integers"],
    ["negative offsets", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [-4, 0] } }, w4), "WF403 model.safetensors: tensor 'w' has data_offsets [-4,0], not [begin, end] with integers 0 ≤ begin ≤ end"],
    ["fractional offsets", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4.5] } }, w4), "WF403 model.safetensors: tensor 'w' has data_offsets [0,4.5], not [begin, end] with integers 0 ≤ begin ≤ end"],
    ["offsets end before they begin", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, w4), "WF403 model.safetensors: tensor 'w' has data_offsets [4,0], not [begin, end] with integers 0 ≤ begin ≤ end"],
    ["offsets beyond 2^53", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 2 ** 60] } }, w4), "WF403 model.safetensors: tensor 'w' has data_offsets [0,1152921504606847000], not [begin, end] with integers 0 ≤ begin ≤ end"],
    ["three offsets", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, w4), "WF403 model.safetensors: tensor 'w' has data_offsets [0,4,8], not [begin, end] with integers 0 ≤ begin ≤ end"],
    ["offsets that disagree with the shape", () => file({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), "WF405 model.safetensors: tensor 'w' F32[3] needs 12 bytes, but its data_offsets [0, 8] hold 8"],
    ["a shape of more than 2^53 elements", () => file({ w: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 4] } }, w4), "WF405 model.safetensors: tensor 'w' has shape [1073741824, 1073741824, 1073741824], more than 2^53 elements"],
    ["a shape whose bytes overflow 2^53", () => file({ w: { dtype: "F64", shape: [2 ** 26, 2 ** 26], data_offsets: [0, 4] } }, w4), "WF405 model.safetensors: tensor 'w' F64[67108864, 67108864] needs 36028797018963968 bytes, but its data_offsets [0, 4] hold 4"],
    ["sub-byte elements that do not fill a byte", () => file({ w: { dtype: "F4", shape: [3], data_offsets: [0, 2] } }, new Uint8Array(2)), "WF405 model.safetensors: tensor 'w' F4[3] is 12 bits, not a whole number of bytes"],
    ["a shape beyond the file, offsets agreeing", () => file({ w: { dtype: "F32", shape: [1000], data_offsets: [0, 4000] } }, new Uint8Array(8)), "WF406 model.safetensors: tensor 'w' data [0, 4000) runs past the end of the data section (8 bytes); the file may be truncated"],
    ["offsets past the end", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [2 ** 40, 2 ** 40 + 4] } }, w4), "WF406 model.safetensors: tensor 'w' data [1099511627776, 1099511627780) runs past the end of the data section (4 bytes); the file may be truncated"],
    ["a gap before the first tensor", () => file({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), "WF406 model.safetensors: bytes [0, 4) of the data section belong to no tensor (a gap before tensor 'w')"],
    ["a gap between tensors", () => file({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12)), "WF406 model.safetensors: bytes [4, 8) of the data section belong to no tensor (a gap before tensor 'b', after 'a')"],
    ["overlapping tensors", () => file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), "WF406 model.safetensors: tensor 'b' data [4, 8) overlaps tensor 'a' data [0, 8)"],
    ["two tensors on the same bytes", () => file({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "I32", shape: [1], data_offsets: [0, 4] } }, w4), "WF406 model.safetensors: tensor 'b' data [0, 4) overlaps tensor 'a' data [0, 4)"],
    ["trailing bytes", () => file({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(6)), "WF406 model.safetensors: the tensors cover 4 bytes of data but the data section holds 6 (2 trailing bytes after tensor 'a')"],
    ["data and no tensors", () => file({}, new Uint8Array(3)), "WF406 model.safetensors: the tensors cover 0 bytes of data but the data section holds 3 (3 trailing bytes)"],
    ["a tensor name with a newline", () => file({ "a\nb": { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, w4), "WF405 model.safetensors: tensor 'a\\u000ab' F32[2] needs 8 bytes, but its data_offsets [0, 4] hold 4"],
  ];
  for (const [what, make, expected] of cases)
    it(what, () => {
      const [code, ...message] = expected.split(" ");
      expect(inputError(open(make()))).toBe(`error[${code}]: ${message.join(" ")}`);
    });

  it("a header length over the 100 MB limit (within the file)", () => {
    const dir = tmp();
    const fd = openSync(join(dir, "model.safetensors"), "w");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(100_000_001n);
    writeSync(fd, len);
    writeSync(fd, Buffer.from("{"), 0, 1, 8 + 100_000_001); // a sparse file of 100 MB
    closeSync(fd);
    expect(inputError(open(dir))).toBe("error[WF403]: model.safetensors: header length 100000001 is over the limit of 100000000 bytes");
  });

  it("a dtype the format defines but wasmformer does not convert is named when read", () => {
    const w = openSafetensors(file({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)));
    expect(w.info("ids")).toMatchObject({ dtype: "I64", shape: [2] });
    expect(inputError(() => w.read("ids"))).toBe("error[WF409]: model.safetensors: tensor 'ids' has dtype I64; wasmformer reads F32, F16, BF16");
  });
});

describe("checkpoint folders and shard indexes", () => {
  /** A folder with shards a.safetensors {x} and b.safetensors {y} and this index text. */
  function sharded(index: unknown): string {
    const dir = tmp("wf-shard-");
    f32File({ x: [3] }, "a.safetensors", dir);
    f32File({ y: [4] }, "b.safetensors", dir);
    writeFileSync(join(dir, "model.safetensors.index.json"), typeof index === "string" ? index : JSON.stringify(index));
    return dir;
  }
  const cases: [string, () => string, string][] = [
    ["an index that is not JSON", () => sharded("{"), "WF407 model.safetensors.index.json: not valid JSON"],
    ["an index without a weight_map", () => sharded({ metadata: {} }), "WF407 model.safetensors.index.json: no weight_map object"],
    ["a weight_map that is an array", () => sharded({ weight_map: ["a.safetensors"] }), "WF407 model.safetensors.index.json: no weight_map object"],
    ["a shard that does not exist", () => sharded({ weight_map: { x: "a.safetensors", y: "missing.safetensors" } }), "WF407 model.safetensors.index.json: tensor 'y' is mapped to shard 'missing.safetensors', which does not exist"],
    ["a tensor absent from its shard", () => sharded({ weight_map: { x: "a.safetensors", y: "a.safetensors" } }), "WF407 model.safetensors.index.json: tensor 'y' is mapped to shard 'a.safetensors', which does not hold it"],
    ["a shard outside the folder", () => sharded({ weight_map: { x: "../a.safetensors" } }), `WF407 model.safetensors.index.json: tensor 'x' is mapped to "../a.safetensors", not the name of a file in the checkpoint's folder`],
    ["a shard that is not a string", () => sharded({ weight_map: { x: 1 } }), "WF407 model.safetensors.index.json: tensor 'x' is mapped to 1, not the name of a file in the checkpoint's folder"],
    ["a tensor in two shards", () => {
      const dir = sharded({ weight_map: { x: "a.safetensors", y: "b.safetensors" } });
      f32File({ y: [4], x: [5] }, "b.safetensors", dir);
      return dir;
    }, "WF407 model.safetensors.index.json: tensor 'x' is in both shard 'a.safetensors' and shard 'b.safetensors'"],
    ["a malformed shard names the shard", () => {
      const dir = sharded({ weight_map: { x: "a.safetensors", y: "b.safetensors" } });
      file({ y: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4), undefined, "b.safetensors", dir);
      return dir;
    }, "WF405 b.safetensors: tensor 'y' F32[2] needs 8 bytes, but its data_offsets [0, 4] hold 4"],
    ["a model.safetensors that is a folder", () => {
      const dir = tmp();
      mkdirSync(join(dir, "model.safetensors"));
      return dir;
    }, "WF402 model.safetensors: cannot read the checkpoint file (a folder)"],
  ];
  for (const [what, make, expected] of cases)
    it(what, () => {
      const [code, ...message] = expected.split(" ");
      expect(inputError(open(make()))).toBe(`error[${code}]: ${message.join(" ")}`);
    });

  it("a folder with no checkpoint, and weights that do not exist", () => {
    const dir = tmp();
    expect(inputError(open(dir))).toBe(`error[WF402]: ${dir}: no model.safetensors or model.safetensors.index.json`);
    expect(inputError(() => loadProgram(example("gpt2"), join(dir, "nope")))).toBe(`error[WF402]: weights '${join(dir, "nope")}' do not exist`);
  });

  it("a config.json that is not an object is an input error", () => {
    const dir = tmp("wf-cfg-");
    copyFileSync(join(fixtureDir("gpt2"), "model.safetensors"), join(dir, "model.safetensors"));
    writeFileSync(join(dir, "config.json"), "[1, 2");
    expect(inputError(() => loadProgram(example("gpt2"), dir))).toMatch(/^error\[WF306\]: .*config.json: not a JSON object$/);
  });
});
