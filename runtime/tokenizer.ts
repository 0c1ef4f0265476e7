// Text ↔ ids through a Hugging Face tokenizer.json (tokenizers.js runs in browsers and Node).

import { Tokenizer } from "@huggingface/tokenizers";

export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
}

export function loadTokenizer(tokenizerJson: unknown, tokenizerConfig: unknown = {}): TextTokenizer {
  const t = new Tokenizer(tokenizerJson as object, tokenizerConfig as object);
  return {
    encode: (text) => Array.from(t.encode(text, { add_special_tokens: false }).ids),
    decode: (ids) => t.decode(ids, { skip_special_tokens: false }),
  };
}
