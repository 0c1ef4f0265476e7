// The commands that generate text: generate (plain, sampled or speculative) and chat.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type ChatMessage, chatIds, chatTemplate } from "@wasmformer/runtime/chat";
import { type GenerateResult, stream as generateStream } from "@wasmformer/runtime/generate";
import { ArtifactError, reason } from "@wasmformer/runtime/errors";
import { MAX_DRAFT_TOKENS, MAX_LOOKUP } from "@wasmformer/runtime/speculative";
import type { Manifest } from "@wasmformer/runtime/manifest";
import { loadArtifact, loadArtifactChat, loadArtifactTokenizer, readManifest } from "@wasmformer/runtime/node";
import type { TextTokenizer } from "@wasmformer/runtime/tokenizer";
import { fsReason, isFsError } from "./errors.js";
import { command, ids, int, nonNegativeNumber, numberIn, optionError, path, text, usageError } from "./options.js";
import { adapter, autoThreads, readAdapterOption, threadsFor, withModel } from "./shared.js";

const maxNewTokens = { kind: int({ min: 0 }), arg: "N", help: "tokens to generate (default: generation_config.json's max_new_tokens, else 32)" } as const;

/** The sampling flags of generate and chat; unset ones fall back to what the checkpoint ships. */
const samplingFlags = {
  temperature: { kind: nonNegativeNumber, arg: "T", help: "0 picks the most likely token; above 0 samples from softmax(logits / T) (default 0, or the checkpoint's when it samples)" },
  "top-k": { kind: int({ min: 0 }), arg: "K", help: "sample from the K most likely tokens (0: all)" },
  "top-p": { kind: numberIn(0, 1, true), arg: "P", help: "sample from the most likely tokens holding probability P (1: all)" },
  "min-p": { kind: numberIn(0, 1), arg: "P", help: "drop tokens less likely than P × the most likely one" },
  "repetition-penalty": { kind: numberIn(0, Infinity, true), arg: "R", help: "divide positive logits of tokens already seen by R, multiply negative ones (1: off)" },
  "presence-penalty": { kind: nonNegativeNumber, arg: "A", help: "subtract A from the logits of generated tokens" },
  "frequency-penalty": { kind: nonNegativeNumber, arg: "F", help: "subtract F per occurrence from the logits of generated tokens" },
  seed: { kind: int(), arg: "S", default: "0", help: "seed of the sampler" },
} as const;

/**
 * Generation options from the flags; a flag not given takes the checkpoint's setting
 * (generation_config.json), as transformers does: its sampling settings when do_sample is true
 * (top-k 50 when it names none), its repetition penalty and length always.
 */
function samplingOptions(a: { [K in keyof typeof samplingFlags]?: number } & { "max-new-tokens"?: number }, man: Manifest) {
  const g = man.generation ?? {};
  const sample = g.do_sample === true;
  return {
    maxNewTokens: a["max-new-tokens"] ?? g.max_new_tokens ?? 32,
    temperature: a.temperature ?? (sample ? (g.temperature ?? 1) : 0),
    topK: a["top-k"] ?? (sample ? (g.top_k ?? 50) : 0),
    topP: a["top-p"] ?? (sample ? (g.top_p ?? 1) : 1),
    minP: a["min-p"] ?? (sample ? (g.min_p ?? 0) : 0),
    repetitionPenalty: a["repetition-penalty"] ?? g.repetition_penalty ?? 1,
    presencePenalty: a["presence-penalty"] ?? 0,
    frequencyPenalty: a["frequency-penalty"] ?? 0,
    seed: a.seed ?? 0,
  };
}

/** The tokenizer.json of an artifact, parsed (null when it ships none). */
function artifactTokenizerJson(dir: string, man: Manifest): { model?: { vocab?: unknown }; added_tokens?: { id?: unknown; content?: unknown }[] } | null {
  if (!man.tokenizer) return null;
  const file = join(dir, man.tokenizer);
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ArtifactError("WF502", `${file}: cannot be read as JSON (${isFsError(e) ? fsReason(e) : reason(e)})`);
  }
}

/**
 * The --draft artifact's manifest, checked against the target's before either is loaded: a causal
 * LM with the target's vocabulary and, where both ship a tokenizer, the same tokens and ids.
 */
function checkDraft(artifact: string, man: Manifest, draft: string): Manifest {
  const d = readManifest(draft);
  if (d.kind !== "causal-lm") throw optionError(`--draft ${draft}: a draft must be a causal LM, and it is ${d.kind === "encoder" ? "an encoder" : "a seq2seq model"}`);
  const vocabOf = (m: Manifest) => m.entries.find((e) => e.name === "forward")?.outputs[0]?.width;
  // a target that cannot be drafted for (T5, an encoder) is refused by generate itself
  if (man.kind !== "causal-lm") return d;
  if (vocabOf(d) !== vocabOf(man)) throw optionError(`--draft ${draft}: its vocabulary has ${vocabOf(d)} tokens, ${artifact}'s ${vocabOf(man)}; a draft needs the target's vocabulary`);
  const [td, tt] = [artifactTokenizerJson(draft, d), artifactTokenizerJson(artifact, man)];
  if (td && tt) {
    const ids = (t: NonNullable<typeof td>) => JSON.stringify([t.model?.vocab, (t.added_tokens ?? []).map((x) => [x.id, x.content])]);
    if (ids(td) !== ids(tt)) throw optionError(`--draft ${draft}: its tokenizer maps tokens to other ids than ${artifact}'s; a draft needs the target's tokenizer`);
  }
  return d;
}

/** --json's speculative fields. */
const speculativeJson = (r: GenerateResult) =>
  r.draftTokens === undefined ? {} : { draft_tokens: r.draftTokens, accepted_tokens: r.acceptedTokens, acceptance_rate: r.draftTokens ? r.acceptedTokens! / r.draftTokens : 0 };

/** The summary line's speculative part. */
const speculativeLine = (r: GenerateResult) =>
  r.draftTokens === undefined ? "" : `; drafted ${r.draftTokens}, accepted ${r.acceptedTokens}${r.draftTokens ? ` (${((100 * r.acceptedTokens!) / r.draftTokens).toFixed(0)}%)` : ""}`;

/** The speculative-decoding flags of generate and chat. */
const speculativeFlags = {
  draft: { kind: path, arg: "DRAFT_ARTIFACT", help: "speculative decoding: draft tokens with this causal LM of the same vocabulary and tokenizer (e.g. an int4 copy of the target), verified by the target in one call" },
  lookup: { kind: int({ min: 1, max: MAX_LOOKUP }), arg: "N", help: "speculative decoding without a second model: draft the tokens that followed the last N ids (or fewer) earlier in the prompt and output" },
  "draft-tokens": { kind: int({ min: 1, max: MAX_DRAFT_TOKENS }), arg: "K", help: "most tokens drafted per verification (default 4 with --draft, 8 with --lookup); fewer while drafts are being rejected" },
} as const;

/**
 * Checks the speculative and --adapter flags against the artifact before anything is loaded, and
 * returns what loads the draft model (undefined without --draft; the caller disposes it).
 */
function speculativeSetup(artifact: string, man: Manifest, a: { draft?: string; lookup?: number; "draft-tokens"?: number; adapter?: unknown; threads?: number }) {
  if (a["draft-tokens"] !== undefined && a.draft === undefined && a.lookup === undefined) throw usageError("--draft-tokens needs --draft DRAFT_ARTIFACT or --lookup N");
  const draftManifest = a.draft !== undefined ? checkDraft(artifact, man, a.draft) : undefined;
  if (a.adapter && !man.lora) throw usageError(`--adapter needs an artifact compiled with --lora-slots, and ${artifact} has no LoRA slots`);
  return async () => (draftManifest ? loadArtifact(a.draft!, { threads: threadsFor(a.threads, draftManifest) }) : undefined);
}

export const generateCommand = command({
  summary: "generate tokens from a prompt, printing the text as it is produced",
  positional: { arg: "ARTIFACT", help: "artifact folder of a causal LM or T5, from compile" },
  options: {
    prompt: { kind: text, arg: "TEXT", help: "the prompt as text (needs the artifact's tokenizer.json)" },
    "input-ids": { kind: ids, arg: "IDS", help: "the prompt as comma-separated token ids" },
    "max-new-tokens": maxNewTokens,
    ...samplingFlags,
    seed: { kind: int(), arg: "S", default: "0", help: "seed of the sampler" },
    stop: { kind: text, arg: "STR", repeatable: true, help: "stop where this text appears, leaving it out (needs the tokenizer)" },
    "ignore-eos": { kind: "flag", help: "keep going after an end-of-sequence token" },
    ...speculativeFlags,
    json: { kind: "flag", help: 'print one object at the end: {"ids", "text", "stop_reason", "prefill_tokens_per_s", "decode_tokens_per_s"}, with "draft_tokens", "accepted_tokens" and "acceptance_rate" when drafting' },
    threads: autoThreads,
    adapter,
  },
  conflicts: [["prompt", "input-ids"], ["draft", "lookup"]],
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    let tokenizer: TextTokenizer | undefined;
    if (a.prompt !== undefined || a.stop.length) {
      const why = a.prompt !== undefined ? "--prompt" : "--stop";
      if (!man.tokenizer) throw usageError(`${why} needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json${a.prompt !== undefined ? ", or pass --input-ids" : ""})`);
      tokenizer = loadArtifactTokenizer(artifact, man)!;
    } else if (man.tokenizer) {
      tokenizer = loadArtifactTokenizer(artifact, man)!;
    }
    const prompt = a.prompt !== undefined ? tokenizer!.encode(a.prompt) : a["input-ids"];
    if (!prompt?.length) throw usageError("give a non-empty --prompt or --input-ids");
    if (a.stop.some((s) => s === "")) throw usageError("--stop needs a non-empty text");
    const loadDraft = speculativeSetup(artifact, man, a);
    return withModel(artifact, threadsFor(a.threads, man), async (model) => {
      const draft = await loadDraft();
      const abort = new AbortController();
      const interrupt = () => abort.abort();
      process.once("SIGINT", interrupt);
      try {
        const stream = generateStream(model, prompt, {
          ...samplingOptions(a, man),
          stop: a.stop,
          tokenizer,
          stopAtEos: !a["ignore-eos"],
          signal: abort.signal,
          draft,
          lookup: a.lookup,
          draftTokens: a["draft-tokens"],
        });
        const printing = !a.json;
        if (printing && a.prompt !== undefined) io.stdout.write(a.prompt);
        let r;
        for (;;) {
          const step = await stream.next();
          if (step.done) {
            r = step.value;
            break;
          }
          if (printing) io.stdout.write(tokenizer ? step.value.text : `${step.value.id},`);
        }
        if (a.json) {
          io.stdout.write(JSON.stringify({ ids: r.ids, ...(r.text !== undefined ? { text: r.text } : {}), stop_reason: r.stopReason, prefill_tokens_per_s: r.prefillTokensPerS, decode_tokens_per_s: r.decodeTokensPerS, ...speculativeJson(r) }) + "\n");
        } else {
          io.stdout.write("\n");
          io.stderr.write(`prefill ${r.prefillTokensPerS.toFixed(1)} tokens/s, decode ${r.decodeTokensPerS.toFixed(1)} tokens/s${model.threads > 1 ? ` (${model.threads} threads)` : ""}, stopped: ${r.stopReason}${speculativeLine(r)}\n`);
        }
        // stopped by Ctrl-C: the shell's status for SIGINT
        return r.stopReason === "abort" ? 130 : 0;
      } finally {
        process.off("SIGINT", interrupt);
        draft?.dispose();
      }
    }, readAdapterOption(a.adapter));
  },
});

export const chatCommand = command({
  summary: "chat with a model: a REPL on a terminal, or turns read line by line from stdin",
  positional: { arg: "ARTIFACT", help: "artifact folder of a causal LM with a chat template, from compile" },
  options: {
    system: { kind: text, arg: "TEXT", help: "a system message before the first turn" },
    "max-new-tokens": maxNewTokens,
    ...samplingFlags,
    ...speculativeFlags,
    json: { kind: "flag", help: 'print one object per turn: {"text", "ids", "prompt_tokens", "cached_tokens", "stop_reason", "prefill_tokens_per_s", "decode_tokens_per_s"}, with "draft_tokens", "accepted_tokens" and "acceptance_rate" when drafting' },
    threads: autoThreads,
    adapter,
  },
  conflicts: [["draft", "lookup"]],
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    if (man.kind !== "causal-lm") throw usageError(`chat needs a causal LM, and ${artifact} is ${man.kind === "encoder" ? "an encoder" : "a seq2seq model"}`);
    if (!man.tokenizer) throw usageError(`chat needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json)`);
    const chat = loadArtifactChat(artifact, man);
    if (!chat) throw usageError(`chat needs a chat template, and ${artifact} has none (compile from a folder whose tokenizer_config.json has a chat_template, or with a chat_template.jinja)`);
    const tokenizer = loadArtifactTokenizer(artifact, man)!;
    const template = chatTemplate(chat.template, `${artifact}/${man.chat!.template}`);
    const messages: ChatMessage[] = a.system !== undefined ? [{ role: "system", content: a.system }] : [];
    const options = samplingOptions(a, man);
    const terminal = !!(process.stdin as { isTTY?: boolean }).isTTY && !a.json;
    const loadDraft = speculativeSetup(artifact, man, a);
    return withModel(artifact, threadsFor(a.threads, man), async (model) => {
      // the draft keeps its cache from turn to turn as the target does
      const draft = await loadDraft();
      const lines = createInterface({ input: process.stdin, terminal: false });
      const ask = () => terminal && io.stderr.write("> ");
      // Ctrl-C stops the reply in progress; at the prompt it ends the session
      let abort: AbortController | undefined;
      const interrupt = () => (abort ? abort.abort() : lines.close());
      process.on("SIGINT", interrupt);
      try {
        ask();
        for await (const line of lines) {
          if (line.trim() === "") {
            ask();
            continue;
          }
          messages.push({ role: "user", content: line });
          const ids = chatIds(tokenizer, template, messages, { bosToken: chat.bosToken, eosToken: chat.eosToken });
          abort = new AbortController();
          const it = generateStream(model, ids, { ...options, tokenizer, signal: abort.signal, draft, lookup: a.lookup, draftTokens: a["draft-tokens"] });
          let r;
          for (;;) {
            const step = await it.next();
            if (step.done) {
              r = step.value;
              break;
            }
            if (!a.json) io.stdout.write(step.value.text);
          }
          abort = undefined;
          messages.push({ role: "assistant", content: r.text ?? "" });
          if (a.json)
            io.stdout.write(JSON.stringify({ text: r.text, ids: r.ids, prompt_tokens: ids.length, cached_tokens: r.cachedTokens, stop_reason: r.stopReason, prefill_tokens_per_s: r.prefillTokensPerS, decode_tokens_per_s: r.decodeTokensPerS, ...speculativeJson(r) }) + "\n");
          else io.stdout.write("\n");
          if (terminal) io.stderr.write(`(${ids.length} prompt tokens, ${r.cachedTokens} from the cache; ${r.decodeTokensPerS.toFixed(1)} tokens/s${speculativeLine(r)}${r.stopReason === "abort" ? "; stopped" : ""})\n`);
          ask();
        }
      } finally {
        process.off("SIGINT", interrupt);
        draft?.dispose();
      }
    }, readAdapterOption(a.adapter));
  },
});
