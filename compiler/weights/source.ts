// Where a compile reads checkpoint tensors from.

import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import { InputError } from "../diagnostics.js";

export interface TensorInfo {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** File the tensor lives in, for error messages. */
  readonly file: string;
}

export interface WeightSource {
  readonly description: string;
  names(): string[];
  info(name: string): TensorInfo | undefined;
  /** The tensor converted to float32. */
  read(name: string): Float32Array;
}

/** Why a checkpoint file cannot be read, as one input error. */
function unreadable(path: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === "ERR_FS_FILE_TOO_LARGE" ? "larger than 2 GiB" : code === "EISDIR" ? "a folder" : code === "EACCES" ? "permission denied" : code === "ENOENT" ? "no such file" : String((e as Error).message);
  return new InputError(`${basename(path)}: cannot read the checkpoint file (${why})`, undefined, { code: "WF402" });
}

/** A checkpoint file's size in bytes (a folder or an unreadable file is an input error). */
export function checkpointFileSize(path: string): number {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw Object.assign(new Error("a folder"), { code: "EISDIR" });
    return st.size;
  } catch (e) {
    throw unreadable(path, e);
  }
}

/** `length` bytes of a checkpoint file from byte `at` (the caller has checked they lie within it). */
export function readCheckpointBytes(path: string, at: number, length: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const n = readSync(fd, out, done, Math.min(length - done, 1 << 30), at + done);
      if (n === 0) throw Object.assign(new Error("the file ended early"), { code: "EOF" });
      done += n;
    }
    return out;
  } catch (e) {
    throw unreadable(path, e);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A checkpoint file's bytes; a file that cannot be read (a folder, no permission, over 2 GiB) is an input error. */
export function readCheckpointFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw unreadable(path, e);
  }
}

/** A name or value from a checkpoint, quoted for a one-line message: control characters escaped, long text cut. */
export function quoted(s: string, max = 120): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return `'${cut.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}'`;
}

/** A JSON value from a checkpoint's header, shown on one line and cut to `max` characters. */
export function shown(v: unknown, max = 60): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
