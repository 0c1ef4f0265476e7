// Config values against the constraints the examples declare (ranges, `require`), checked
// before any tensor is read: every int field each family reads, set to 0, -1, 2^31, 1.5, "7"
// or true, and every required key removed, is one clear WF3xx diagnostic naming the key.
// Also the --context option, and the weights walk reporting the first missing tensor first.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Diagnostic, DiagnosticList, formatDiagnostic } from "../../compiler/diagnostics.js";
import type { ConfigField } from "../../compiler/frontend/ast.js";
import { MAX_CONTEXT, MAX_TRIPS } from "../../compiler/frontend/limits.js";
import { parseModel } from "../../compiler/frontend/parser.js";
import { configAt } from "../../compiler/frontend/values.js";
import { type GgufKVEntry, encodeGgufHeader } from "../../compiler/export/gguf.js";
import { loadProgram, openWeights, programFromSource, readHfConfig } from "../../compiler/load.js";
import { GGUF_TYPE, parseGguf } from "../../compiler/weights/gguf.js";
import type { WeightSource } from "../../compiler/weights/source.js";
import { families, fixtureDir, root } from "../helpers.js";

const example = (family: string) => join(root, "examples", `${family}.wf`);
const sources = new Map<string, WeightSource>();
const weightsOf = (fixture: string) => sources.get(fixture) ?? sources.set(fixture, openWeights(fixtureDir(fixture))).get(fixture)!;

/** The diagnostic compiling `text` against a fixture's weights and `config` throws; undefined if it compiles. */
function failure(fixture: string, config: Record<string, unknown>, text = readFileSync(example(families[fixture]), "utf8"), opts: { context?: number } = {}): Diagnostic | undefined {
  try {
    programFromSource(example(families[fixture]), text, config, weightsOf(fixture), opts);
  } catch (e) {
    if (e instanceof DiagnosticList) throw new Error(`static errors: ${formatDiagnostic(e)}`);
    if (e instanceof Diagnostic) return e;
    throw e;
  }
  return undefined;
}

/** config with `key` (dotted: a nested object's field) set to value. */
function withKey(config: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = key.split(".");
  if (!rest.length) return { ...config, [head]: value };
  const inner = typeof config[head] === "object" && config[head] !== null ? (config[head] as Record<string, unknown>) : {};
  return { ...config, [head]: withKey(inner, rest.join("."), value) };
}

/** The config fields an example declares. */
function fields(family: string): ConfigField[] {
  const m = parseModel(example(family), readFileSync(example(family), "utf8"));
  return m.config.filter((c): c is ConfigField => c.kind === "field");
}

describe.each(Object.keys(families))("config values of %s", (fixture) => {
  const family = families[fixture];
  const hf = readHfConfig(fixtureDir(fixture));
  const ints = fields(family).filter((f) => f.type === "int" && f.keys.length);

  it("the fixture's own config compiles", () => {
    expect(failure(fixture, hf)).toBeUndefined();
  });

  it.each(ints.map((f) => [f.name, f] as const))("int field '%s': bad values are one WF3xx line naming the key", (_, f) => {
    const key = f.keys.find((k) => configAt(hf, k) !== undefined) ?? f.keys[0];
    // 0 is bad unless the field's range starts there (bert's labels: 0 for a bare encoder)
    const zeroOk = f.range?.lo.kind === "num" && f.range.lo.value === 0;
    for (const [value, code] of [[0, "WF303"], [-1, "WF303"], [2 ** 31, "WF303"], [1.5, "WF302"], ["7", "WF302"], [true, "WF302"]] as const) {
      if (value === 0 && zeroOk) continue;
      const d = failure(fixture, withKey(hf, key, value));
      const what = `${key} = ${JSON.stringify(value)}`;
      expect(d, what).toBeInstanceOf(Diagnostic);
      expect(d!.code, `${what}: ${d!.message}`).toBe(code);
      expect(d!.message, what).toContain(`config.json '${key}'`);
      expect(d!.message, what).not.toMatch(/\n/);
      expect(d!.span?.line, what).toBe(f.span.line);
    }
  });

  it("a missing required key is WF301 naming it", () => {
    for (const f of fields(family).filter((f) => f.keys.length && !f.value)) {
      const config = { ...hf };
      for (const k of f.keys) delete config[k];
      const d = failure(fixture, config);
      expect(d?.code, f.name).toBe("WF301");
      expect(d!.message).toBe(`config.json has no ${f.keys.map((k) => `'${k}'`).join(" or ")} (needed for '${f.name}')`);
    }
  });
});

describe("config requirements of the examples", () => {
  const gpt2 = readHfConfig(fixtureDir("gpt2"));
  const llama = readHfConfig(fixtureDir("llama"));
  const t5 = readHfConfig(fixtureDir("t5"));

  it("n_head: -1 and 0 fail before any weight is read", () => {
    expect(failure("gpt2", { ...gpt2, n_head: -1 })?.message).toBe("config.json 'n_head' = -1 is outside 1..=1024 (needed for 'heads')");
    expect(failure("gpt2", { ...gpt2, num_hidden_layers: 5, n_layer: 0 })?.message).toBe("config.json 'n_layer' = 0 is outside 1..=1024 (needed for 'layers')");
  });

  it("max_position_embeddings: 0 is refused, not a context of 0", () => {
    const d = failure("llama", { ...llama, max_position_embeddings: 0 });
    expect([d?.code, d?.message]).toEqual(["WF303", "config.json 'max_position_embeddings' = 0 is outside 1..=1048576 (needed for 'max_context')"]);
  });

  it("heads that do not divide the width", () => {
    const d = failure("gpt2", { ...gpt2, n_head: 7 });
    expect([d?.code, d?.message]).toEqual(["WF304", "requirement 'd % heads == 0' is not met: config.json 'n_embd' = 60, config.json 'n_head' = 7"]);
  });

  it("a GQA ratio that is not whole, and more KV heads than heads", () => {
    expect(failure("llama", { ...llama, num_key_value_heads: 4 })?.message).toBe(
      "requirement 'heads % kv_heads == 0' is not met: config.json 'num_attention_heads' = 6, config.json 'num_key_value_heads' = 4");
    expect(failure("llama", { ...llama, num_key_value_heads: 12 })?.message).toBe(
      "config.json 'num_key_value_heads' = 12 is outside 1..=6 (1..=heads) (needed for 'kv_heads'); config.json 'num_attention_heads' = 6");
  });

  it("a default computed from other fields names them", () => {
    const config: Record<string, unknown> = { ...llama, hidden_size: 45 };
    delete config.head_dim;
    expect(failure("llama", config)?.message).toBe(
      "'head_dim' (default d / heads) should be an int, found 7.5; config.json 'hidden_size' = 45, config.json 'num_attention_heads' = 6");
  });

  it("a T5 feed-forward kind the model does not implement", () => {
    expect(failure("t5", { ...t5, feed_forward_proj: "gated-relu" })?.message).toBe(
      `requirement 'ffn_kind == "relu" || ffn_kind == "gated-gelu"' is not met: config.json 'feed_forward_proj' = "gated-relu"`);
  });

  it("a float field must be finite", () => {
    const d = failure("llama", { ...llama, rope_theta: Infinity });
    expect([d?.code, d?.message]).toEqual(["WF302", "config.json 'rope_theta' should be a finite number, found Infinity"]);
  });

  it("a config key is never read from the object's prototype", () => {
    const text = readFileSync(example("gpt2"), "utf8").replace("eps: float from layer_norm_epsilon", "eps: float from constructor, layer_norm_epsilon");
    expect(failure("gpt2", gpt2, text)).toBeUndefined();
  });
});

describe("a GGUF file's config", () => {
  it("block_count 0 is refused by the model's range, naming the file", () => {
    const src = readFileSync(join(fixtureDir("llama-q8_0"), "model-q8_0.gguf"));
    const h = parseGguf(src);
    const kv: GgufKVEntry[] = [...h.metadata].map(([key, e]) => (key === "llama.block_count" ? { key, type: GGUF_TYPE.U32, value: 0 } : { key, ...e }));
    const tensors = [...h.tensors.values()];
    const { header, offsets } = encodeGgufHeader(kv, tensors);
    const data = Buffer.alloc(offsets.at(-1)! + tensors.at(-1)!.bytes);
    tensors.forEach((t, i) => data.set(src.subarray(h.dataStart + t.offset, h.dataStart + t.offset + t.bytes), offsets[i]));
    const path = join(mkdtempSync(join(tmpdir(), "wf-config-")), "zero.gguf");
    writeFileSync(path, Buffer.concat([header, data]));
    let d: unknown;
    try {
      loadProgram(example("llama"), path);
    } catch (e) {
      d = e;
    }
    expect(d instanceof Diagnostic && [d.code, d.message]).toEqual(["WF303", "zero.gguf (as config.json) 'num_hidden_layers' = 0 is outside 1..=1024 (needed for 'layers')"]);
  });
});

describe("config constraints in the DSL", () => {
  const gpt2 = readHfConfig(fixtureDir("gpt2"));
  const model = (config: string) => `model m {\n  config {\n    ${config}\n  }\n  entry f(ids: tokens) { output y = ids; }\n}\n`;
  const outcome = (config: string) => {
    try {
      programFromSource("m.wf", model(config), gpt2, weightsOf("gpt2"));
      return "ok";
    } catch (e) {
      return e instanceof DiagnosticList ? formatDiagnostic(e) : `${(e as Diagnostic).code} ${(e as Diagnostic).message}`;
    }
  };

  it("a range excludes its upper bound after '..' and includes it after '..='", () => {
    expect(outcome("heads: int from n_head in 1..6;")).toBe("ok");
    expect(outcome("heads: int from n_head in 1..=5;")).toBe("ok");
    expect(outcome("heads: int from n_head in 1..5;")).toBe("WF303 config.json 'n_head' = 5 is outside 1..5 (needed for 'heads')");
    expect(outcome("heads: int from n_head in 6..=9;")).toBe("WF303 config.json 'n_head' = 5 is outside 6..=9 (needed for 'heads')");
  });

  it("a range applies to the default too, and may come before it", () => {
    expect(outcome("w: int from wide in 1..=8 = 9;")).toBe("WF303 'w' = 9 (default 9) is outside 1..=8 (needed for 'w')");
    expect(outcome("d: int from n_embd; w: int from wide in 1..=d = d;")).toBe("ok");
  });

  it("requirements run in order, after the fields they read", () => {
    expect(outcome("d: int from n_embd; require d > 0; heads: int from n_head; require d % heads == 1;")).toBe(
      "WF304 requirement 'd % heads == 1' is not met: config.json 'n_embd' = 60, config.json 'n_head' = 5");
    expect(outcome("require 1 > 0;")).toBe("ok");
    expect(outcome("require 1 > 2;")).toBe("WF304 requirement '1 > 2' is not met");
  });

  it("deep requirements and ranges are refused by the parser's nesting limit, not the JS stack", () => {
    expect(outcome(`d: int from n_embd; require d${" + 1".repeat(300)} > 0;`)).toMatch(/error\[WF106\]: nested deeper than/);
    expect(outcome(`d: int from n_embd in 1..=d${" + 1".repeat(300)};`)).toMatch(/error\[WF106\]: nested deeper than/);
  });

  it("'require' is still a field name before a colon", () => {
    expect(outcome("require: int from n_head; require require == 5;")).toBe("ok");
  });
});

describe("--context", () => {
  const gpt2 = readHfConfig(fixtureDir("gpt2"));
  const t5 = readHfConfig(fixtureDir("t5"));

  it.each([[0], [-1], [1.5], [NaN], [Infinity]])("%s is refused", (context) => {
    const d = failure("gpt2", gpt2, undefined, { context });
    expect([d?.code, d?.span, d?.message]).toEqual(["WF601", undefined, `--context ${context} should be a whole number from 1 to 40`]);
  });

  it("more than the model's max_context is refused, naming the key", () => {
    expect(failure("gpt2", gpt2, undefined, { context: 41 })?.message).toBe("--context 41 exceeds 40, the model's max_context (config.json 'n_positions' = 40)");
  });

  it(`a model without max_context compiles at most ${MAX_CONTEXT}`, () => {
    expect(failure("t5", t5, undefined, { context: MAX_CONTEXT + 1 })?.message).toBe(`--context ${MAX_CONTEXT + 1} exceeds ${MAX_CONTEXT}, the longest context wasmformer compiles`);
    const p = programFromSource(example("t5"), readFileSync(example("t5"), "utf8"), t5, weightsOf("t5"), { context: 40 });
    expect(p.context).toBe(40);
  });
});

describe("the weights walk", () => {
  const gpt2 = readHfConfig(fixtureDir("gpt2"));
  /** examples/gpt2.wf without its ranges and requirements: the elaborator's own bounds must hold. */
  const unchecked = readFileSync(example("gpt2"), "utf8").replace(/ in \d+\.\.=\d+/g, "").replace(/ *require .*\n/g, "");

  it("n_layer = 2^31 fails in well under a second, with or without the model's ranges", () => {
    for (const [text, code] of [[undefined, "WF303"], [unchecked, "WF211"]] as const) {
      const start = performance.now();
      const d = failure("gpt2", { ...gpt2, n_layer: 2 ** 31 }, text);
      expect(performance.now() - start).toBeLessThan(500);
      expect(d?.code).toBe(code);
      expect(d?.message).toContain("config.json 'n_layer' = 2147483648");
    }
    expect(failure("gpt2", { ...gpt2, n_layer: 2 ** 31 }, unchecked)?.message).toBe(
      `loop 'for i in 0..layers' would run 2147483648 times, more than ${MAX_TRIPS} (config.json 'n_layer' = 2147483648)`);
  });

  it("reports the first missing tensor before walking the later layers", () => {
    // a layer condition that fails from layer 3 on: a walk that expanded every layer first would report it
    const text = unchecked.replace(`ln1_g[i]: [d] = "h.{i}.ln_1.weight";`, `ln1_g[i]: [d] = "h.{i}.ln_1.weight" if [true, true, true][i];`);
    for (const onProgress of [undefined, () => {}]) {
      const d = failure("gpt2", { ...gpt2, n_layer: 50_000 }, text);
      expect([d?.code, d?.message]).toEqual(["WF401", `missing tensor 'transformer.h.2.ln_1.weight' in ${fixtureDir("gpt2")}`]);
      // the conditions are evaluated layer by layer: one that fails at layer 1 is reported there
      const early = failure("gpt2", { ...gpt2, n_layer: 50_000 }, text.replace("[true, true, true][i]", "[true][i]"));
      expect([early?.code, early?.message]).toEqual(["WF210", "index 1 is out of range (a tuple of 1)"]);
    }
  });

  it("progress counts every tensor once, conditional ones included", () => {
    for (const fixture of Object.keys(families)) {
      const calls: [number, number][] = [];
      const p = programFromSource(example(families[fixture]), readFileSync(example(families[fixture]), "utf8"), readHfConfig(fixtureDir(fixture)), weightsOf(fixture), {
        onProgress: (done, total) => calls.push([done, total]),
      });
      // each weights block counts 1..total, its total known from the first tensor on
      let next = 1, total = 0;
      for (const [done, t] of calls) {
        if (next > total) [next, total] = [1, t];
        expect([done, t], fixture).toEqual([next++, total]);
      }
      expect(next - 1, fixture).toBe(total);
      expect(p.params.size, fixture).toBeLessThanOrEqual(calls.length);
    }
  });
});
