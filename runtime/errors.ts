// The runtime's errors: every one it throws for an artifact, a file of one, or a call it
// cannot run carries a stable code (WF5xx, part of compiler/diagnostic-codes.ts's list and
// explained in docs/diagnostics.md). No Node-only imports.

export const ARTIFACT_CODES = {
  WF501: "not an artifact folder, or a file of it missing",
  WF502: "unreadable artifact file or invalid JSON",
  WF503: "manifest breaks the schema",
  WF504: "manifest of another format or version",
  WF505: "manifest disagrees with the module",
  WF506: "invalid module",
  WF507: "weights of the wrong size, unreadable or corrupted",
  WF508: "memory cannot be allocated",
  WF509: "unusable tokenizer",
  WF510: "invalid argument to a runtime call",
  WF511: "call the artifact cannot serve",
  WF512: "worker threads failed to start",
} as const;

export type ArtifactCode = keyof typeof ARTIFACT_CODES;

/**
 * A bad artifact, or a call it cannot run. The message is one line and names the file or the
 * argument at fault; `code` says which kind of error it is (callers branch on it, the CLI
 * prints it). Invalid arguments (WF510) share the class rather than being RangeErrors, so one
 * catch takes every error the runtime reports to a user.
 */
export class ArtifactError extends Error {
  constructor(
    readonly code: ArtifactCode,
    message: string,
  ) {
    super(message);
    this.name = "ArtifactError";
  }
}

/** A value as an error message shows it: short and on one line. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return typeof v;
}

/** The message of something thrown, on one line (engine messages may hold line breaks). */
export function reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/\s+/g, " ").trim();
}
