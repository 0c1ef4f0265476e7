// `wasmformer chat` and `generate` as a user runs them: turns read from stdin, the checkpoint's
// chat template and generation_config.json carried into the artifact, the KV cache reused from
// one turn to the next, streaming text, stop strings and the sampling flags.

import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { applyChatTemplate } from "../../runtime/chat.js";
import { root } from "../helpers.js";

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
