// Text ↔ ids through a Hugging Face tokenizer.json (tokenizers.js runs in browsers and Node).

import { Tokenizer } from "@huggingface/tokenizers";
import { ArtifactError, reason, show } from "./errors.js";

/** Tokenizer models of tokenizer.json that the library implements. */
const MODEL_TYPES = ["BPE", "WordPiece", "Unigram", "WordLevel"];

export interface TextTokenizer {
  /** The ids of `text`, with the special tokens the tokenizer's post-processor adds (BOS for Llama and Gemma, none for GPT-2 and Qwen) unless `addSpecialTokens` is false, as transformers encodes. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** The ids of a text and its pair (a question and its context) with the post-processor's special tokens, and their segment ids, as transformers' tokenizer(text, text_pair). */
  encodePair?(text: string, pair: string): { ids: number[]; segments: number[] };
  /** An id's token as the vocabulary writes it ("##ing", "Ġthe"), as convert_ids_to_tokens; undefined outside the vocabulary. */
  idToToken?(id: number): string | undefined;
  /** The id of a token of the vocabulary or the added tokens; undefined if there is none. */
  tokenToId?(token: string): number | undefined;
  /** tokenizer_config.json's mask token, where it names one. */
  maskToken?: string;
}

/**
 * A tokenizer from parsed tokenizer.json and tokenizer_config.json. Contents the library cannot
 * use, at load or on a later encode/decode, are an ArtifactError (WF509) naming the file
 * (`files`: their paths or URLs).
 */
export function loadTokenizer(tokenizerJson: unknown, tokenizerConfig: unknown = {}, files = { tokenizer: "tokenizer.json", config: "tokenizer_config.json" }): TextTokenizer {
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(tokenizerJson)) throw new ArtifactError("WF509", `${files.tokenizer}: should hold a JSON object, found ${show(tokenizerJson)}`);
  if (!isObject((tokenizerJson as { model?: unknown }).model)) throw new ArtifactError("WF509", `${files.tokenizer}: model should be an object, found ${show((tokenizerJson as { model?: unknown }).model)}`);
  // the library guesses a model from its fields when `type` is unknown; the Rust tokenizers refuse it
  const type = (tokenizerJson as { model: { type?: unknown } }).model.type;
  if (type !== undefined && !MODEL_TYPES.includes(type as string))
    throw new ArtifactError("WF509", `${files.tokenizer}: model.type should be one of ${MODEL_TYPES.join(", ")}, found ${show(type)}`);
  if (!isObject(tokenizerConfig)) throw new ArtifactError("WF509", `${files.config}: should hold a JSON object, found ${show(tokenizerConfig)}`);
  const unusable = (e: unknown) => new ArtifactError("WF509", `${files.tokenizer}: not a tokenizer this runtime can use (${reason(e)})`);
  let t: Tokenizer;
  try {
    t = new Tokenizer(tokenizerJson as object, tokenizerConfig as object);
  } catch (e) {
    throw unusable(e);
  }
  const mask = (tokenizerConfig as { mask_token?: unknown }).mask_token;
  return {
    encode(text, { addSpecialTokens = true } = {}) {
      try {
        return Array.from(t.encode(text, { add_special_tokens: addSpecialTokens }).ids);
      } catch (e) {
        throw unusable(e);
      }
    },
    decode(ids, { skipSpecialTokens = false } = {}) {
      try {
        return t.decode(ids, { skip_special_tokens: skipSpecialTokens });
      } catch (e) {
        throw unusable(e);
      }
    },
    encodePair(text, pair) {
      try {
        const e = t.encode(text, { text_pair: pair, return_token_type_ids: true });
        return { ids: Array.from(e.ids), segments: Array.from(e.token_type_ids ?? e.ids.map(() => 0)) };
      } catch (e) {
        throw unusable(e);
      }
    },
    idToToken: (id) => t.id_to_token(id),
    tokenToId: (token) => t.token_to_id(token),
    // a string, or an added token's {content}
    ...(typeof mask === "string" ? { maskToken: mask } : isObject(mask) && typeof (mask as { content?: unknown }).content === "string" ? { maskToken: (mask as { content: string }).content } : {}),
  };
}
