// A diagnostic is data: a message with a primary location; one formatter prints it as
// `file:line:col: message` followed by the source line and a caret.

import type { SourceLoc } from "../ir/types.js";

export interface Span extends SourceLoc {
  readonly length?: number;
}

export class Diagnostic extends Error {
  constructor(message: string, readonly span?: Span, readonly notes: readonly string[] = []) {
    super(message);
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

export function formatDiagnostic(d: Diagnostic | DiagnosticList): string {
  if (d instanceof DiagnosticList) return d.diagnostics.map(formatDiagnostic).join("\n");
  const s = d.span;
  if (!s) return `error: ${d.message}`;
  const head = `${s.file}:${s.line}:${s.col}: ${d.message}`;
  const text = sources.get(s.file)?.split(/\r?\n/)[s.line - 1];
  if (text === undefined) return head;
  const gutter = `${s.line} | `;
  const caret = " ".repeat(gutter.length + s.col - 1) + "^".repeat(Math.max(1, s.length ?? 1));
  return [head, gutter + text, caret, ...d.notes.map((n) => `note: ${n}`)].join("\n");
}
