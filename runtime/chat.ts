// Chat prompts: a checkpoint's Jinja chat template rendered for a list of messages, as
// transformers' apply_chat_template renders it (@huggingface/jinja, with HF's globals), and the
// prompt's ids. No Node-only imports.

import { Template } from "@huggingface/jinja";
import { ArtifactError, reason, show } from "./errors.js";
import type { TextTokenizer } from "./tokenizer.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
}

export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, for the model to continue (default true). */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Further variables the template may read. */
  extra?: Record<string, unknown>;
}

const ROLES = ["system", "user", "assistant", "tool"];

/** Checks a conversation: a non-empty list of {role, content} with known roles and text content (WF510). */
export function checkMessages(messages: unknown): asserts messages is ChatMessage[] {
  const bad = (why: string) => new ArtifactError("WF510", `chat: ${why}`);
  if (!Array.isArray(messages) || messages.length === 0) throw bad(`messages should be a non-empty list of {role, content}, got ${show(messages)}`);
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null) throw bad(`messages[${i}] should be {role, content}, got ${show(m)}`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== "string" || !ROLES.includes(role)) throw bad(`messages[${i}].role should be one of ${ROLES.join(", ")}, got ${show(role)}`);
    if (typeof content !== "string") throw bad(`messages[${i}].content should be text, got ${show(content)}`);
  });
}

/** Parses a template once; a template the engine cannot read is WF509. */
export function chatTemplate(source: string, file = "chat template"): Template {
  try {
    return new Template(source);
  } catch (e) {
    throw new ArtifactError("WF509", `${file}: not a chat template this runtime can read (${reason(e)})`);
  }
}

/**
 * The text of `messages` under `template`, with HF's globals (raise_exception, strftime_now:
 * the engine's own). A template that raises or fails is WF510 with its message.
 */
export function applyChatTemplate(template: string | Template, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  checkMessages(messages);
  const t = typeof template === "string" ? chatTemplate(template) : template;
  try {
    return t.render({
      ...opts.extra,
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: opts.bosToken ?? "",
      eos_token: opts.eosToken ?? "",
    });
  } catch (e) {
    // the engine's raise_exception (e.g. "Conversation roles must alternate…") and its own errors
    throw new ArtifactError("WF510", `chat: the template stopped: ${reason(e)}`);
  }
}

/**
 * The ids of a chat prompt, as apply_chat_template(tokenize=True) gives them: the rendered text
 * encoded without the tokenizer's own special tokens (the template writes them).
 */
export function chatIds(tokenizer: TextTokenizer, template: string | Template, messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
  return tokenizer.encode(applyChatTemplate(template, messages, opts), { addSpecialTokens: false });
}
