// The one line the CLI prints for an input error (code and message), for exact assertions.

import { InputError, formatDiagnostic } from "../../compiler/diagnostics.js";

/** Runs `fn`, which must throw an InputError, and returns the error as the CLI prints it. */
export function inputError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return formatDiagnostic(e);
    throw e;
  }
  throw new Error("expected an input error, but nothing was thrown");
}
