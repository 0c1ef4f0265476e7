// Tokens of the model DSL (`.wf` files).

import { createToken, Lexer, type TokenType } from "chevrotain";
import { type Code, escapeUnprintable } from "../diagnostics.js";

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: "a name" });
const kw = (name: string) => createToken({ name: name[0].toUpperCase() + name.slice(1), pattern: new RegExp(`${name}\\b`), longer_alt: Identifier, label: `'${name}'` });

export const Model = kw("model");
export const Config = kw("config");
export const Weights = kw("weights");
export const Prefix = kw("prefix");
export const From = kw("from");
export const Block = kw("block");
export const Entry = kw("entry");
export const Let = kw("let");
export const For = kw("for");
export const In = kw("in");
export const If = kw("if");
export const Else = kw("else");
export const Output = kw("output");
export const Return = kw("return");
export const True = kw("true");
export const False = kw("false");

export const NumberLit = createToken({ name: "NumberLit", pattern: /\d+(\.\d+)?([eE][+-]?\d+)?/, label: "a number" });
// A string ends on its line. Any escape and any character other than a line break lex here, so
// decodeString can point at a bad escape or a raw control character exactly.
export const StringLit = createToken({ name: "StringLit", pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*"/, label: "a string" });
/** A string missing its closing quote, up to the end of its line: reported, then parsed as a string. */
export const UnterminatedString = createToken({ name: "UnterminatedString", pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*\\?/, categories: [StringLit], label: "a string" });
const p = (name: string, pattern: RegExp, label: string) => createToken({ name, pattern, label: `'${label}'` });
export const DotDot = p("DotDot", /\.\./, "..");
export const Arrow = p("Arrow", /->/, "->");
export const EqEq = p("EqEq", /==/, "==");
export const NotEq = p("NotEq", /!=/, "!=");
export const LtEq = p("LtEq", /<=/, "<=");
export const GtEq = p("GtEq", />=/, ">=");
export const AndAnd = p("AndAnd", /&&/, "&&");
export const OrOr = p("OrOr", /\|\|/, "||");
export const Lt = p("Lt", /</, "<");
export const Gt = p("Gt", />/, ">");
export const Bang = p("Bang", /!/, "!");
export const Question = p("Question", /\?/, "?");
export const Plus = p("Plus", /\+/, "+");
export const Minus = p("Minus", /-/, "-");
export const Star = p("Star", /\*/, "*");
export const Slash = p("Slash", /\//, "/");
export const At = p("At", /@/, "@");
export const Percent = p("Percent", /%/, "%");
export const Assign = p("Assign", /=/, "=");
export const Colon = p("Colon", /:/, ":");
export const Semi = p("Semi", /;/, ";");
export const Comma = p("Comma", /,/, ",");
export const Dot = p("Dot", /\./, ".");
export const LParen = p("LParen", /\(/, "(");
export const RParen = p("RParen", /\)/, ")");
export const LBrace = p("LBrace", /\{/, "{");
export const RBrace = p("RBrace", /\}/, "}");
export const LBracket = p("LBracket", /\[/, "[");
export const RBracket = p("RBracket", /\]/, "]");
// Line breaks are \r\n, \r or \n, as chevrotain counts lines and as the code frame splits them
// (sourceLines in diagnostics.ts). Other whitespace and control characters are not the DSL's.
const Comment = createToken({ name: "Comment", pattern: /\/\/[^\r\n]*/, group: Lexer.SKIPPED, line_breaks: false });
const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED, line_breaks: true });

export const allTokens: TokenType[] = [
  WhiteSpace, Comment,
  Model, Config, Weights, Prefix, From, Block, Entry, Let, For, In, If, Else, Output, Return, True, False,
  Identifier, NumberLit, StringLit, UnterminatedString,
  DotDot, Arrow, EqEq, NotEq, LtEq, GtEq, AndAnd, OrOr, Lt, Gt, Bang, Question, Plus, Minus, Star, Slash, At, Percent,
  Assign, Colon, Semi, Comma, Dot, LParen, RParen, LBrace, RBrace, LBracket, RBracket,
];

export const lexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });

const printableAscii = (cp: number) => cp >= 0x20 && cp <= 0x7e;

/** A character as a message names it: 'x' when printable ASCII, else its code point (U+0009). */
export function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return printableAscii(cp) ? `'${ch}'` : `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** A run of characters as a message names it: "character '$'", "characters '$#'", "characters U+0000 '$'". */
export function describeChars(text: string): string {
  const chars = Array.from(text);
  const noun = chars.length > 1 ? "characters" : "character";
  if (chars.every((c) => printableAscii(c.codePointAt(0) ?? 0))) return `${noun} '${shownText(text, 16)}'`;
  return `${noun} ${chars.slice(0, 4).map(describeChar).join(" ")}${chars.length > 4 ? ` and ${chars.length - 4} more` : ""}`;
}

/** A token's text for a message: unprintable characters as \u{..} escapes, long text cut short. */
export function shownText(text: string, max = 32): string {
  return escapeUnprintable(text.length > max ? `${text.slice(0, max)}...` : text);
}

export interface StringProblem {
  code: Code;
  message: string;
  /** Where in the token's image, in UTF-16 units. */
  offset: number;
  length: number;
}

const escapes: Record<string, string> = { '"': '"', "\\": "\\", n: "\n", r: "\r", t: "\t" };
const escapeList = "\\\" \\\\ \\n \\r \\t \\u{HEX} \\uHHHH";

/**
 * Decodes a string literal's image. The escapes are \" \\ \n \r \t, \u{H...} (1 to 6 hex digits)
 * and \uHHHH, each naming a Unicode scalar value; anything else after a backslash, and a raw control
 * character (U+0000-U+001F, U+007F-U+009F), is a problem located in the image.
 */
export function decodeString(image: string, terminated: boolean): { value: string; problems: StringProblem[] } {
  const problems: StringProblem[] = [];
  const end = terminated ? image.length - 1 : image.length;
  let value = "";
  let i = 1;
  while (i < end) {
    const c = image[i];
    const cp = image.charCodeAt(i);
    if (c !== "\\") {
      if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
        const hint = cp === 9 ? "\\t" : `\\u{${cp.toString(16)}}`;
        problems.push({ code: "WF104", message: `control character ${describeChar(c)} in a string (write it as ${hint})`, offset: i, length: 1 });
      }
      value += c;
      i += 1;
      continue;
    }
    if (i + 1 >= end) break; // a backslash ending an unterminated string, which is reported already
    const e = image[i + 1];
    if (escapes[e] !== undefined) {
      value += escapes[e];
      i += 2;
      continue;
    }
    if (e === "u") {
      const m = /^u(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{4}))/.exec(image.slice(i + 1, Math.min(end, i + 10)));
      if (!m) {
        problems.push({ code: "WF103", message: `invalid escape '\\u' in a string: write \\u{HEX} (1 to 6 hex digits) or \\uHHHH`, offset: i, length: 2 });
        i += 2;
        continue;
      }
      const n = parseInt(m[1] ?? m[2], 16);
      if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff))
        problems.push({ code: "WF103", message: `escape '\\${m[0]}' is not a Unicode scalar value (U+0000-U+D7FF or U+E000-U+10FFFF)`, offset: i, length: m[0].length + 1 });
      else value += String.fromCodePoint(n);
      i += m[0].length + 1;
      continue;
    }
    const after = describeChar(String.fromCodePoint(image.codePointAt(i + 1) ?? 0));
    const shown = after.startsWith("'") ? `'\\${e}'` : `'\\' followed by ${after}`;
    problems.push({ code: "WF103", message: `unknown escape ${shown} in a string (the escapes are ${escapeList})`, offset: i, length: 2 });
    i += 2;
  }
  return { value, problems };
}
