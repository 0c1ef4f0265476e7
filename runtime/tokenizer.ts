// Text ↔ ids through a Hugging Face tokenizer.json (tokenizers.js runs in browsers and Node).

import { Tokenizer } from "@huggingface/tokenizers";
import { ArtifactError, reason, show } from "./errors.js";

export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
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
  if (!isObject(tokenizerConfig)) throw new ArtifactError("WF509", `${files.config}: should hold a JSON object, found ${show(tokenizerConfig)}`);
  const unusable = (e: unknown) => new ArtifactError("WF509", `${files.tokenizer}: not a tokenizer this runtime can use (${reason(e)})`);
  let t: Tokenizer;
  try {
    t = new Tokenizer(tokenizerJson as object, tokenizerConfig as object);
  } catch (e) {
    throw unusable(e);
  }
  return {
    encode(text) {
      try {
        return Array.from(t.encode(text, { add_special_tokens: false }).ids);
      } catch (e) {
        throw unusable(e);
      }
    },
    decode(ids) {
      try {
        return t.decode(ids, { skip_special_tokens: false });
      } catch (e) {
        throw unusable(e);
      }
    },
  };
}
