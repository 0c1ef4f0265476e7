// A diagnostic is data: a stable code, a message, a primary location and notes; one formatter
// prints it as `file:line:col: error[WF201]: message` followed by the source line and a caret.
// The codes are listed in diagnostic-codes.ts and documented in docs/diagnostics.md.

import type { SourceLoc } from "../ir/types.js";
import type { Code } from "./diagnostic-codes.js";

export type { Code } from "./diagnostic-codes.js";

export interface Span extends SourceLoc {
  readonly length?: number;
}

export interface DiagnosticOptions {
  /** Stable identifier of the kind of error (docs/diagnostics.md). */
  code?: Code;
  /** Further lines, printed as `note: ...` after the excerpt. */
  notes?: readonly string[];
}

export class Diagnostic extends Error {
  readonly code?: Code;
  readonly notes: readonly string[];
  constructor(message: string, readonly span?: Span, opts: DiagnosticOptions = {}) {
    super(message);
    this.code = opts.code;
    this.notes = opts.notes ?? [];
  }
}

/** Several diagnostics from one run (e.g. every syntax error of a file). */
export class DiagnosticList extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => d.message).join("; "));
  }
}

/** Errors about inputs (files, weights, configs) with no source span: printed as one line. */
export class InputError extends Diagnostic {}

/** Each registered source's lines, split when a diagnostic first needs them. */
const sources = new Map<string, { text: string; lines?: string[] }>();

/** Registers a source text so diagnostics pointing into it can print an excerpt. */
export function registerSource(file: string, text: string) {
  sources.set(file, { text });
}

/** The lines of a source as the lexer counts them (\r\n, \r and \n each end a line; a leading byte order mark is not text). */
export const sourceLines = (text: string) => text.replace(/^\ufeff/, "").split(/\r\n|\r|\n/);

/** Control characters, and those that would reorder a terminal's text; all in the BMP, one column each. */
const unprintable = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** Text for a message, with unprintable characters written as \u{..} escapes. */
export const escapeUnprintable = (text: string) => text.replace(unprintable, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);

/** The most characters of a source line a code frame shows. */
const frameWidth = 120;

export function formatDiagnostic(d: Diagnostic | DiagnosticList): string {
  if (d instanceof DiagnosticList) return d.diagnostics.map(formatDiagnostic).join("\n");
  const severity = d.code ? `error[${d.code}]` : "error";
  const s = d.span;
  if (!s) return `${severity}: ${d.message}`;
  const head = `${s.file}:${s.line}:${s.col}: ${severity}: ${d.message}`;
  const src = sources.get(s.file);
  if (src) src.lines ??= sourceLines(src.text);
  const text = src?.lines?.[s.line - 1];
  if (text === undefined) return [head, ...d.notes.map((n) => `note: ${n}`)].join("\n");
  // a tab is one column to the lexer; other control characters would move the caret or the terminal
  const line = text.replace(/\t/g, " ").replace(unprintable, "?");
  // a long line is cut to a window around the column
  const col = Math.max(0, s.col - 1);
  const from = line.length <= frameWidth ? 0 : Math.max(0, Math.min(col - frameWidth / 2, line.length - frameWidth));
  const shown = (from > 0 ? "..." : "") + line.slice(from, from + frameWidth) + (from + frameWidth < line.length ? "..." : "");
  const gutter = `${s.line} | `;
  const at = col - from + (from > 0 ? 3 : 0);
  const caret = " ".repeat(gutter.length + at) + "^".repeat(Math.max(1, Math.min(s.length ?? 1, shown.length - at)));
  return [head, gutter + shown, caret, ...d.notes.map((n) => `note: ${n}`)].join("\n");
}
