// `wasmformer chat` and `generate` as a user runs them: turns read from stdin, the checkpoint's
// chat template and generation_config.json carried into the artifact, the KV cache reused from
// one turn to the next, streaming text, stop strings and the sampling flags.

import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { applyChatTemplate } from "../../runtime/chat.js";
import { rng, root, safetensors } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "wf-chat-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (args: string[], input = "") => spawnSync(process.execPath, [join(root, "bin", "wasmformer.js"), ...args], { cwd: root, encoding: "utf8", input });
const TEMPLATE = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

// the bundled tiny GPT-2, with a chat template and a generation_config.json that samples
const ckpt = join(tmp, "ckpt");
cpSync(join(root, "examples/tiny-gpt2"), ckpt, { recursive: true });
const cfgPath = join(ckpt, "tokenizer_config.json");
writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, "utf8")), chat_template: TEMPLATE }));
const art = join(tmp, "art");
const compiled = cli(["compile", "examples/gpt2.wf", "--weights", ckpt, "--out", art]);

describe("chat", () => {
  it("the artifact carries the template and the checkpoint's generation settings", () => {
    expect(compiled.status).toBe(0);
    const man = JSON.parse(readFileSync(join(art, "manifest.json"), "utf8"));
    expect(man.chat).toEqual({ template: "chat_template.jinja", bos_token: "<|endoftext|>", eos_token: "<|endoftext|>" });
    expect(readFileSync(join(art, "chat_template.jinja"), "utf8")).toBe(TEMPLATE);
    expect(man.generation).toEqual({ do_sample: false, max_new_tokens: 40 });
    expect(man.tokens.eos).toEqual([1023]);
  });

  it("answers each line of stdin; a second turn prefills only what the cache lacks, with the ids of a fresh run", () => {
    const r = cli(["chat", art, "--system", "Tell a story.", "--max-new-tokens", "8", "--json", "--threads", "1"], "Once upon a time\nand then?\n");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const turns = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(turns).toHaveLength(2);
    expect(turns[0].cached_tokens).toBe(0);
    expect(turns[1].cached_tokens).toBeGreaterThan(turns[0].prompt_tokens / 2);
    // the same conversation as one prompt through generate: the same reply
    const messages = [
      { role: "system" as const, content: "Tell a story." },
      { role: "user" as const, content: "Once upon a time" },
      { role: "assistant" as const, content: turns[0].text },
      { role: "user" as const, content: "and then?" },
    ];
    const prompt = applyChatTemplate(TEMPLATE, messages);
    const g = cli(["generate", art, "--prompt", prompt, "--max-new-tokens", "8", "--json", "--threads", "1"]);
    expect(JSON.parse(g.stdout).ids).toEqual(turns[1].ids);
  });

  it("--draft, --lookup and --adapter: the ids of plain chat (or of generate with the adapter), turn after turn", () => {
    const turnsOf = (r: ReturnType<typeof cli>) => {
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      return r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    };
    const input = "Once upon a time\nand then?\n";
    const flags = ["--max-new-tokens", "10", "--json", "--threads", "1"];
    const plain = turnsOf(cli(["chat", art, ...flags], input));
    // an int4 copy of the model drafts; its cache, too, carries over to the second turn
    const draft = join(tmp, "draft");
    expect(cli(["compile", "examples/gpt2.wf", "--weights", ckpt, "--quantize", "int4", "--out", draft]).status).toBe(0);
    for (const extra of [["--draft", draft, "--draft-tokens", "3"], ["--lookup", "2"]]) {
      const turns = turnsOf(cli(["chat", art, ...flags, ...extra], input));
      expect(turns.map((t) => t.ids)).toEqual(plain.map((t) => t.ids));
      expect(turns[1].cached_tokens).toBe(plain[1].cached_tokens);
      for (const t of turns) expect(t.draft_tokens).toBeGreaterThanOrEqual(t.accepted_tokens);
      expect(turns[0].draft_tokens).toBeGreaterThan(0);
    }
    // a random rank-4 adapter on every projection, in the slots of a --lora-slots artifact
    const slotted = join(tmp, "slotted");
    expect(cli(["compile", "examples/gpt2.wf", "--weights", ckpt, "--lora-slots", "4", "--out", slotted]).status).toBe(0);
    const adapterDir = join(tmp, "adapter");
    mkdirSync(adapterDir);
    const r = rng(5);
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (let i = 0; i < 4; i++)
      for (const [m, inp, out] of [["attn.c_attn", 128, 384], ["attn.c_proj", 128, 128], ["mlp.c_fc", 128, 512], ["mlp.c_proj", 512, 128]] as const) {
        tensors[`base_model.model.transformer.h.${i}.${m}.lora_A.weight`] = { shape: [4, inp], data: Float32Array.from({ length: 4 * inp }, () => r.next() - 0.5) };
        tensors[`base_model.model.transformer.h.${i}.${m}.lora_B.weight`] = { shape: [out, 4], data: Float32Array.from({ length: out * 4 }, () => r.next() - 0.5) };
      }
    writeFileSync(join(adapterDir, "adapter_model.safetensors"), safetensors(tensors));
    writeFileSync(join(adapterDir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: 4, lora_alpha: 8, fan_in_fan_out: true, target_modules: ["c_attn", "c_proj", "c_fc"] }));
    const adapted = turnsOf(cli(["chat", slotted, ...flags, "--adapter", adapterDir], "Once upon a time\n"));
    expect(adapted[0].ids).not.toEqual(plain[0].ids);
    const prompt = applyChatTemplate(TEMPLATE, [{ role: "user", content: "Once upon a time" }]);
    const g = cli(["generate", slotted, "--prompt", prompt, "--adapter", adapterDir, "--max-new-tokens", "10", "--json", "--threads", "1"]);
    expect(JSON.parse(g.stdout).ids).toEqual(adapted[0].ids);
    // without slots, one line
    const refused = cli(["chat", art, "--adapter", adapterDir], "hi\n");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^error\[WF\d+\]: --adapter needs an artifact compiled with --lora-slots.*\n$/);
  });

  it("refuses an artifact without a template, and bad sampling flags, in one line", () => {
    const plain = join(tmp, "plain");
    expect(cli(["compile", "examples/gpt2.wf", "--weights", "examples/tiny-gpt2", "--out", plain]).status).toBe(0);
    const r = cli(["chat", plain], "hi\n");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error\[WF604\]: chat needs a chat template, and .* has none .*\n$/);
    for (const [flag, value] of [["--top-p", "1.5"], ["--top-p", "0"], ["--min-p", "2"], ["--repetition-penalty", "0"], ["--presence-penalty", "-1"], ["--top-k", "-1"]]) {
      const b = cli(["generate", art, "--input-ids", "1,2", flag, value]);
      expect(b.status).toBe(1);
      expect(b.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(b.stderr).toMatch(new RegExp(`^error\\[WF601\\]: ${flag} `));
    }
  });
});

describe("generate", () => {
  it("--stop ends the text where the stop string begins; --json has stop_reason", () => {
    const base = JSON.parse(cli(["generate", art, "--prompt", "Once upon a time", "--max-new-tokens", "30", "--json", "--ignore-eos", "--threads", "1"]).stdout);
    const stop = base.text.slice(10, 13);
    const r = JSON.parse(cli(["generate", art, "--prompt", "Once upon a time", "--max-new-tokens", "30", "--json", "--ignore-eos", "--stop", stop, "--threads", "1"]).stdout);
    expect(r.stop_reason).toBe("stop");
    expect(r.text).toBe(base.text.slice(0, base.text.indexOf(stop)));
    expect(base.stop_reason).toBe("length");
  });

  it("prints the prompt and the streamed text, the same as --json's text", () => {
    const r = cli(["generate", art, "--prompt", "Once upon a time", "--max-new-tokens", "20", "--threads", "1"]);
    const j = JSON.parse(cli(["generate", art, "--prompt", "Once upon a time", "--max-new-tokens", "20", "--json", "--threads", "1"]).stdout);
    expect(r.stdout).toBe(`Once upon a time${j.text}\n`);
  });

  it("the same seed and sampling options give the same ids on 1 and 2 threads", () => {
    const run = (threads: string) => JSON.parse(cli(["generate", art, "--prompt", "Once", "--max-new-tokens", "16", "--json", "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--repetition-penalty", "1.1", "--seed", "7", "--threads", threads]).stdout).ids;
    const one = run("1");
    expect(run("2")).toEqual(one);
    expect(one).toHaveLength(16);
  });
});
