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

const sources = new Map<string, string>();

/** Registers a source text so diagnostics pointing into it can print an excerpt. */
export function registerSource(file: string, text: string) {
  sources.set(file, text);
}

/** The lines of a source as the lexer counts them (\r\n, \r and \n each end a line). */
export const sourceLines = (text: string) => text.split(/\r\n|\r|\n/);

export function formatDiagnostic(d: Diagnostic | DiagnosticList): string {
  if (d instanceof DiagnosticList) return d.diagnostics.map(formatDiagnostic).join("\n");
  const severity = d.code ? `error[${d.code}]` : "error";
  const s = d.span;
  if (!s) return `${severity}: ${d.message}`;
  const head = `${s.file}:${s.line}:${s.col}: ${severity}: ${d.message}`;
  const src = sources.get(s.file);
  const text = src === undefined ? undefined : sourceLines(src)[s.line - 1];
  if (text === undefined) return [head, ...d.notes.map((n) => `note: ${n}`)].join("\n");
  // control characters would move the caret or the terminal: show them as '?'
  const shown = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?").replace(/\t/g, " ");
  const gutter = `${s.line} | `;
  const caret = " ".repeat(gutter.length + Math.max(0, s.col - 1)) + "^".repeat(Math.max(1, Math.min(s.length ?? 1, Math.max(1, shown.length - s.col + 1))));
  return [head, gutter + shown, caret, ...d.notes.map((n) => `note: ${n}`)].join("\n");
}
