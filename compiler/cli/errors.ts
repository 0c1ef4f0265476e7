// How the command line reports a failure: every error from input as coded lines
// (error[WFnnn]: ...), anything else as an internal error (a bug in wasmformer).

import { IRError } from "../../ir/graph.js";
import { Diagnostic, DiagnosticList, formatDiagnostic } from "../diagnostics.js";
import { OnnxExportError } from "../export/onnx.js";

/** Reasons for the file system's error codes, worded for people. */
const FS_REASONS: Record<string, string> = {
  ENOENT: "no such file or folder",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a folder, not a file",
  ENOTDIR: "a part of the path is not a folder",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  ENOTEMPTY: "folder not empty",
  ENAMETOOLONG: "name too long",
  ELOOP: "too many symbolic links",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  EBUSY: "busy",
  EXDEV: "on another device",
  EIO: "input/output error",
  EFBIG: "file too large",
};

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ").replace(/[\x00-\x1f\x7f]/g, "?");

export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" && /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code!) && typeof (e as NodeJS.ErrnoException).syscall === "string";
}

/** Why a file system call failed, in words ("no such file or folder"). */
export const fsReason = (e: NodeJS.ErrnoException) => FS_REASONS[e.code!] ?? oneLine(e.message.replace(/^E[A-Z0-9]+: /, "").replace(/,.*$/, ""));

/** A file system error as `path: reason (syscall)`; a rename names both paths. */
export function fsErrorMessage(e: NodeJS.ErrnoException & { dest?: string }): string {
  const reason = fsReason(e);
  const where = e.path === undefined ? "" : `${e.path}${e.dest ? ` → ${e.dest}` : ""}: `;
  return oneLine(`${where}${reason} (${e.syscall})`);
}

/** The coded lines for an error from bad input, or undefined for a bug. */
export function errorLines(e: unknown): string | undefined {
  if (e instanceof Diagnostic || e instanceof DiagnosticList) return formatDiagnostic(e);
  if (e instanceof IRError) return formatDiagnostic(new Diagnostic(e.message, e.loc, { code: (e as { code?: Diagnostic["code"] }).code }));
  const code = (e as { code?: unknown } | undefined)?.code;
  if (e instanceof Error && typeof code === "string" && /^WF\d{3}$/.test(code)) return `error[${code}]: ${oneLine(e.message)}`;
  if (e instanceof OnnxExportError) return `error[WF606]: ${oneLine(e.message)}`;
  if (isFsError(e)) return `error[WF605]: ${fsErrorMessage(e)}`;
  return undefined;
}
