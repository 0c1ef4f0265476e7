// The command line end to end (the built CLI, as users run it).

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ONNX_FILE } from "../../compiler/output.js";
import { decodeNpy } from "../../runtime/npy.js";
import { fixtureDir, readExpected, readFixture, relError, root } from "../helpers.js";

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, "bin", "wasmformer.js"), ...args], { cwd: root, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const tmp = () => mkdtempSync(join(tmpdir(), "wf-cli-"));

function expectCleanError(r: ReturnType<typeof cli>, pattern: RegExp) {
  expect(r.code).toBe(1);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/^\s+at /m); // no JavaScript stack trace
}

describe("compile / run / generate", () => {
  const out = join(tmp(), "gpt2");
  beforeAll(() => {
    const r = cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", out, "--emit-wat");
    expect(r.code, r.err).toBe(0);
  });

  it("writes the artifact and its text form", () => {
    expect(readdirSync(out).sort()).toEqual(["manifest.json", "model.relaxed.wasm", "model.threads.wasm", "model.wasm", "model.wat", "weights.bin"]);
    const wat = readFileSync(join(out, "model.wat"), "utf8");
    expect(wat).toMatch(/\(func \$forward/);
    expect(wat).toMatch(/f32x4\.add/);
  });

  it("compiles byte-identically twice", () => {
    const again = join(tmp(), "gpt2");
    expect(cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", again, "--emit-wat").code).toBe(0);
    for (const f of ["model.wasm", "model.relaxed.wasm", "model.threads.wasm", "weights.bin", "manifest.json", "model.wat"]) expect(readFileSync(join(again, f)).equals(readFileSync(join(out, f))), f).toBe(true);
  });

  it("run writes logits for every position as .npy", () => {
    const fx = readFixture("gpt2");
    const c = fx.cases.find((x) => x.name === "len7")!;
    const npy = join(tmp(), "out.npy");
    const r = cli("run", out, "--input-ids", c.input_ids.join(","), "--out", npy);
    expect(r.code, r.err).toBe(0);
    const { data, shape } = decodeNpy(readFileSync(npy));
    expect(shape).toEqual(c.shape);
    expect(relError(data, readExpected("gpt2", c))).toBeLessThan(1e-4);
  });

  it("hosts with relaxed SIMD run model.relaxed.wasm, with the same results", () => {
    const c = readFixture("gpt2").cases.find((x) => x.name === "len38")!;
    const npy = join(tmp(), "relaxed.npy");
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", join(root, "bin", "wasmformer.js"), "run", out, "--input-ids", c.input_ids.join(","), "--out", npy], { cwd: root, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(relError(decodeNpy(readFileSync(npy)).data, readExpected("gpt2", c))).toBeLessThan(1e-4);
    expect(readFileSync(join(out, "model.relaxed.wasm")).equals(readFileSync(join(out, "model.wasm")))).toBe(false);
  });

  it("generate --json gives the greedy ids and speeds", () => {
    const g = readFixture("gpt2").greedy!;
    const r = cli("generate", out, "--input-ids", g.input_ids.join(","), "--max-new-tokens", String(g.max_new_tokens), "--temperature", "0", "--json", "--ignore-eos");
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.ids).toEqual(g.ids);
    expect(j.prefill_tokens_per_s).toBeGreaterThan(0);
    expect(j.decode_tokens_per_s).toBeGreaterThan(0);
  });

  it("generate --threads 2 gives the same greedy ids; --threads 0 is a usage error", () => {
    const g = readFixture("gpt2").greedy!;
    const r = cli("generate", out, "--input-ids", g.input_ids.join(","), "--max-new-tokens", String(g.max_new_tokens), "--json", "--ignore-eos", "--threads", "2");
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).ids).toEqual(g.ids);
    const bad = cli("generate", out, "--input-ids", "1,2", "--threads", "0");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^error\[WF601\]: --threads should be an integer from 1 to 256, found '0'$/m);
  });

  it("--print-ir prints the IR before and after each pass", () => {
    const r = cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", join(tmp(), "x"), "--print-ir");
    expect(r.code).toBe(0);
    for (const pass of ["input", "fuse-attention", "canonicalize-matmul", "fold-transpose", "fuse-ffn", "fuse-qkv", "fuse-norm", "specialize-last-row"]) expect(r.out).toContain(`// ---- IR after ${pass} ----`);
    expect(r.out).toMatch(/= linear\(%\d+, %\d+, %\d+\) : f32\[S,180\]/);
  });
});

describe("export-onnx", () => {
  it("writes an ONNX file; a model it cannot export is a clean error", () => {
    const out = join(tmp(), "gpt2.onnx");
    const r = cli("export-onnx", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(out).length).toBeGreaterThan(200_000);
    expect(ONNX_FILE.matches(readFileSync(out))).toBe(true); // so a later export may replace it
    expectCleanError(cli("export-onnx", "examples/t5.wf", "--weights", fixtureDir("t5"), "--out", join(tmp(), "t5.onnx")), /^error\[WF606\]: ONNX export: t5 has no entry 'forward'/m);
  });
});

describe("encoder and encoder-decoder runs", () => {
  it("bert with token type ids", () => {
    const out = join(tmp(), "bert");
    expect(cli("compile", "examples/bert.wf", "--weights", fixtureDir("bert"), "--out", out).code).toBe(0);
    const c = readFixture("bert").cases.find((x) => x.name === "len7")!;
    const npy = join(tmp(), "h.npy");
    expect(cli("run", out, "--input-ids", c.input_ids.join(","), "--token-type-ids", c.token_type_ids!.join(","), "--out", npy).code).toBe(0);
    expect(relError(decodeNpy(readFileSync(npy)).data, readExpected("bert", c))).toBeLessThan(1e-4);
    expectCleanError(cli("generate", out, "--input-ids", "1,2"), /^error\[WF511\]: generate: this artifact is an encoder model \(bert\), which computes hidden states, not tokens; use run\n$/);
  });
  it("t5 with decoder input ids, and generate feeding the encoder", () => {
    const out = join(tmp(), "t5");
    expect(cli("compile", "examples/t5.wf", "--weights", fixtureDir("t5-v1_1"), "--out", out, "--context", "40").code).toBe(0);
    const fx = readFixture("t5-v1_1");
    const c = fx.cases.find((x) => x.name === "enc7_dec7")!;
    const npy = join(tmp(), "l.npy");
    expect(cli("run", out, "--input-ids", c.input_ids.join(","), "--decoder-input-ids", c.decoder_input_ids!.join(","), "--out", npy).code).toBe(0);
    expect(relError(decodeNpy(readFileSync(npy)).data, readExpected("t5-v1_1", c))).toBeLessThan(1e-4);
    const g = fx.greedy!;
    const r = cli("generate", out, "--input-ids", g.input_ids.join(","), "--max-new-tokens", String(g.max_new_tokens), "--json", "--ignore-eos");
    expect(JSON.parse(r.out).ids).toEqual(g.ids);
  });
});

describe("the bundled example", () => {
  it("generate --prompt tokenizes, generates and decodes like the PyTorch reference", () => {
    const out = join(tmp(), "tiny");
    expect(cli("compile", "examples/gpt2.wf", "--weights", "examples/tiny-gpt2", "--out", out).code).toBe(0);
    const ref = JSON.parse(readFileSync(join(root, "examples", "tiny-gpt2", "greedy.json"), "utf8"));
    const r = cli("generate", out, "--prompt", ref.prompt, "--max-new-tokens", String(ref.ids.length), "--json", "--ignore-eos");
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.ids).toEqual(ref.ids);
    expect(typeof j.text).toBe("string");
    const plain = cli("generate", out, "--prompt", ref.prompt, "--max-new-tokens", "5");
    expect(plain.out.startsWith(ref.prompt)).toBe(true);
    // a damaged tokenizer.json is the artifact's fault, named in one line
    for (const [text, code, why] of [["{\"model\": ", "WF502", "not valid JSON"], ["{}", "WF509", "model should be an object"]]) {
      writeFileSync(join(out, "tokenizer.json"), text);
      expectCleanError(cli("generate", out, "--prompt", "x"), new RegExp(`^error\\[${code}\\]: .*tokenizer\\.json: ${why}`));
    }
  });
});

describe("bad input: one line, exit 1, no stack, nothing written", () => {
  it("a DSL syntax error points at file:line:col", () => {
    const out = join(tmp(), "never");
    const r = cli("compile", "tests/frontend/errors/syntax.wf", "--weights", fixtureDir("gpt2"), "--out", out);
    expectCleanError(r, /^tests\/frontend\/errors\/syntax\.wf:4:5: error\[WF102\]: expected ';' but found 'd'$/m);
    expect(existsSync(out)).toBe(false);
  });
  it("a weight with the wrong shape names tensor, expected and found shapes", () => {
    const r = cli("compile", "tests/frontend/errors/wrong-weight-shape.wf", "--weights", fixtureDir("gpt2"), "--out", join(tmp(), "x"));
    expectCleanError(r, /tensor 'transformer\.h\.0\.attn\.c_attn\.weight' in model\.safetensors: expected shape \[60, 120\], found \[60, 180\]/);
  });
  it("missing files", () => {
    expectCleanError(cli("compile", "nope.wf", "--weights", fixtureDir("gpt2"), "--out", join(tmp(), "x")), /^error\[WF605\]: model 'nope\.wf' does not exist$/m);
    expectCleanError(cli("compile", "examples", "--weights", fixtureDir("gpt2"), "--out", join(tmp(), "x")), /^error\[WF605\]: model 'examples' is a folder, not a file$/m);
    expectCleanError(cli("compile", "examples/gpt2.wf", "--weights", "no/such/dir", "--out", join(tmp(), "x")), /weights 'no\/such\/dir' do not exist/);
    expectCleanError(cli("run", "no/artifact", "--input-ids", "1", "--out", join(tmp(), "x.npy")), /not an artifact folder/);
  });
  it("bad ids", () => {
    const out = join(tmp(), "gpt2");
    cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", out);
    expectCleanError(cli("run", out, "--input-ids", "1,x", "--out", join(tmp(), "x.npy")), /^error\[WF601\]: --input-ids should be comma-separated non-negative integer ids, found 'x'$/m);
    expectCleanError(cli("run", out, "--input-ids", "1,101", "--out", join(tmp(), "x.npy")), /ids\[1\] = 101 is outside \[0, 101\)/);
    expectCleanError(cli("generate", out, "--input-ids", Array(41).fill(1).join(","), "--max-new-tokens", "1"), /41 tokens exceed the compiled context of 40/);
  });
  it("--disable-pass skips a pass; unknown or required passes are errors", () => {
    const out = join(tmp(), "unfused");
    const r = cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", out, "--disable-pass", "fuse-ffn", "--print-ir");
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toContain("IR after fuse-ffn");
    expect(r.out).toMatch(/= gelu_tanh\(/);
    expectCleanError(cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", out, "--disable-pass", "fuse-everything"), /^error\[WF601\]: --disable-pass should be a pass that may be skipped \(fuse-attention, .*\), found 'fuse-everything'$/m);
    expectCleanError(cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", out, "--disable-pass", "fold-transpose"), /--disable-pass should be a pass that may be skipped \(.*\), found 'fold-transpose'$/m);
  });
  it("unknown flags are usage errors", () => {
    const r = cli("compile", "examples/gpt2.wf", "--weights", fixtureDir("gpt2"), "--out", join(tmp(), "x"), "--frobnicate");
    expectCleanError(r, /^error\[WF604\]: unknown option --frobnicate for compile; wasmformer compile --help lists its options\n$/);
  });
});
