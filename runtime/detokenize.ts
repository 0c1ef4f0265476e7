// Text as ids arrive: each new id yields only the text it completes. Decoding ids one at a time
// would drop SentencePiece's and byte-level BPE's spaces (a decoder strips a leading one) and
// split multi-byte characters carried by byte-fallback tokens; so the new ids are decoded
// together with a few before them, and only the text past those is emitted, once it no longer
// ends in an incomplete character (U+FFFD).

import type { TextTokenizer } from "./tokenizer.js";

export class TextStream {
  private readonly ids: number[] = [];
  /** ids[prefix..read) decoded is the text already emitted; ids[read..] is pending. */
  private prefix = 0;
  private read = 0;

  constructor(private readonly tokenizer: TextTokenizer, private readonly skip: ReadonlySet<number> = new Set()) {}

  private decode(ids: number[]): string {
    return ids.length ? this.tokenizer.decode(ids) : "";
  }

  /** Adds an id; returns the text it completes ("" while a character is incomplete). */
  push(id: number): string {
    if (this.skip.has(id)) return "";
    this.ids.push(id);
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    const after = this.decode(this.ids.slice(this.prefix));
    if (after.length <= before.length || after.endsWith("\uFFFD")) return "";
    const text = after.slice(before.length);
    this.prefix = this.read;
    this.read = this.ids.length;
    // the context needs no more than the last emitted ids: keep the list short
    if (this.prefix > 64) {
      this.ids.splice(0, this.prefix);
      this.read -= this.prefix;
      this.prefix = 0;
    }
    return text;
  }

  /** The text of pending ids, incomplete characters included (at the end of a generation). */
  flush(): string {
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    const after = this.decode(this.ids.slice(this.prefix));
    this.prefix = this.read = this.ids.length;
    return after.length > before.length ? after.slice(before.length) : "";
  }
}

/**
 * Holds back text that may be the start of a stop string, and finds stop strings across
 * token boundaries: `push` returns the text that is certainly not part of one, and `stopped`
 * says whether one was found (the text before it was returned; it and what follows are not).
 */
export class StopMatcher {
  private held = "";
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  push(text: string): string {
    if (this.stopped) return "";
    const buf = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.held = "";
      return buf.slice(0, cut);
    }
    // the longest end of buf that begins some stop string stays held
    let keep = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, buf.length); n > keep; n--)
        if (buf.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** The held text, at the end of a generation that no stop string ended. */
  flush(): string {
    const t = this.stopped ? "" : this.held;
    this.held = "";
    return t;
  }
}
