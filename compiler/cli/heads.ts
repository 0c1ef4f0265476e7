// The encoder task heads' commands: `classify --tokens` (token classification, entities grouped),
// `answer` (extractive question answering) and `fill-mask`, each a runtime/heads.ts call.

import { answers, classifyTokens, fillMask, groupEntities } from "@wasmformer/runtime/heads";
import type { Manifest } from "@wasmformer/runtime/manifest";
import { loadArtifactTokenizer, readManifest } from "@wasmformer/runtime/node";
import type { TextTokenizer } from "@wasmformer/runtime/tokenizer";
import { type Io, command, int, text, usageError } from "./options.js";
import { autoThreads, threadsFor, withModel } from "./shared.js";

/** The artifact's tokenizer, which `what` needs: a usage error where there is none. */
function tokenizerOf(artifact: string, man: Manifest, what: string): TextTokenizer {
  const t = man.tokenizer ? loadArtifactTokenizer(artifact, man) : undefined;
  if (!t) throw usageError(`${what} needs a tokenizer, and ${artifact} has none (compile from a folder with tokenizer.json)`);
  return t;
}

const hasOutputs = (man: Manifest, ...names: string[]) => man.kind === "encoder" && names.every((n) => man.entries[0].outputs.some((o) => o.name === n));

/** classify --tokens: the label of every token of each input, and the entities they form. */
export async function classifyTokensRun(artifact: string, a: { text: string[]; "input-ids": number[][]; "top-k"?: number; json: boolean; threads?: number }, io: Io) {
  const man = readManifest(artifact);
  if (!hasOutputs(man, "token_logits")) throw usageError(`classify --tokens needs a token classifier, and ${artifact} has no token-classification head (compile a *ForTokenClassification checkpoint)`);
  if (a["top-k"] !== undefined) throw usageError("--top-k and --tokens cannot be given together");
  if (!a.text.length && !a["input-ids"].length) throw usageError("give --text TEXT or --input-ids IDS (each repeatable)");
  const tokenizer = a.text.length ? tokenizerOf(artifact, man, "--text") : man.tokenizer ? loadArtifactTokenizer(artifact, man) : undefined;
  await withModel(artifact, threadsFor(a.threads, man), (model) => {
    // the inputs side by side in calls where the artifact packs sequences
    for (const tags of classifyTokens(model, [...a.text, ...a["input-ids"]], { tokenizer })) {
      const entities = groupEntities(tags, { tokenizer });
      if (a.json) io.stdout.write(JSON.stringify({ tokens: tags.map(({ scores: _, ...t }) => t), entities }) + "\n");
      else io.stdout.write((entities.map((e) => `${e.entity_group} ${JSON.stringify(e.word)} ${e.score.toFixed(4)}`).join(", ") || "(no entities)") + "\n");
    }
  });
}

export const answerCommand = command({
  summary: "the span of a context answering a question, from an extractive question-answering encoder",
  positional: { arg: "ARTIFACT", help: "artifact folder of a *ForQuestionAnswering checkpoint with its tokenizer.json, from compile" },
  options: {
    question: { kind: text, arg: "TEXT", required: true, help: "the question" },
    context: { kind: text, arg: "TEXT", required: true, help: "the text holding the answer" },
    "top-k": { kind: int({ min: 1 }), arg: "K", default: "1", help: "answers to print, best first" },
    "max-answer-len": { kind: int({ min: 1 }), arg: "N", default: "15", help: "most tokens in an answer" },
    "max-seq-len": { kind: int({ min: 2 }), arg: "N", help: "most tokens of question and context in one window (default 384, at most the artifact's context)" },
    "doc-stride": { kind: int({ min: 0 }), arg: "N", help: "tokens shared by consecutive windows of a long context (default min(128, max-seq-len / 2))" },
    json: { kind: "flag", help: "print one JSON array: [{answer, score, first, last}, ...] (first, last: token positions in the context)" },
    threads: autoThreads,
  },
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    if (!hasOutputs(man, "start_logits", "end_logits")) throw usageError(`answer needs a question-answering model, and ${artifact} has no start and end logits (compile a *ForQuestionAnswering checkpoint)`);
    const tokenizer = tokenizerOf(artifact, man, "answer");
    await withModel(artifact, threadsFor(a.threads, man), (model) => {
      const found = answers(model, tokenizer, a.question, a.context, { topK: a["top-k"], maxAnswerLen: a["max-answer-len"], maxSeqLen: a["max-seq-len"], docStride: a["doc-stride"] });
      if (a.json) io.stdout.write(JSON.stringify(found) + "\n");
      else for (const x of found) io.stdout.write(`${JSON.stringify(x.answer)} ${x.score.toFixed(4)}\n`);
    });
  },
});

export const fillMaskCommand = command({
  summary: "the likeliest tokens for each mask of a text, from a masked LM",
  positional: { arg: "ARTIFACT", help: "artifact folder of a *ForMaskedLM checkpoint with its tokenizer.json, from compile" },
  options: {
    text: { kind: text, arg: "TEXT", required: true, help: "a text with one or more mask tokens ([MASK], <mask>)" },
    "top-k": { kind: int({ min: 1 }), arg: "K", default: "5", help: "tokens to print per mask, likeliest first" },
    json: { kind: "flag", help: "print one JSON array per mask: [{score, token, token_str, sequence}, ...]" },
    threads: autoThreads,
  },
  async run(artifact, a, io) {
    const man = readManifest(artifact);
    if (!man.entries[0].outputs.some((o) => o.name === "logits" && o.rows === "S") || man.kind !== "encoder")
      throw usageError(`fill-mask needs a masked LM, and ${artifact} has no masked-LM head (compile a *ForMaskedLM checkpoint)`);
    const tokenizer = tokenizerOf(artifact, man, "fill-mask");
    await withModel(artifact, threadsFor(a.threads, man), (model) => {
      for (const fills of fillMask(model, tokenizer, a.text, { topK: a["top-k"] }))
        io.stdout.write((a.json ? JSON.stringify(fills) : fills.map((f) => `${JSON.stringify(f.token_str)} ${f.score.toFixed(4)}`).join(", ")) + "\n");
    });
  },
});
