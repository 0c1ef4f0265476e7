// Outputs never lose a user's files. An output is written beside its target and swapped in only
// over nothing, an empty folder or empty file, or an earlier output of the same kind; anything
// else needs `force`, and some paths are never replaced (the current folder, a folder above it,
// the home folder, the root, the command's inputs). The checks run before any work and again
// just before the swap.

import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, realpathSync, renameSync, rmSync, type Stats, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, parse, resolve, sep } from "node:path";
import { InputError } from "./diagnostics.js";

export interface OutputOptions {
  /** Replace whatever is at the target, except the paths that are never replaced. */
  force?: boolean;
  /** The command's input files and folders: never replaced, nor a folder holding one. */
  inputs?: readonly string[];
}

/** A kind of output file, recognised by its first bytes. */
export interface FileKind {
  /** Completes "exists and is not ...". */
  name: string;
  matches(head: Uint8Array): boolean;
}

export const NPY_FILE: FileKind = { name: "a .npy file", matches: (h) => Buffer.from(h.subarray(0, 6)).toString("latin1") === "\x93NUMPY" };

/** ONNX ModelProto as serialised: field 1 (ir_version, a small varint), then another ModelProto field. */
export const ONNX_FILE: FileKind = {
  name: "an ONNX model",
  matches: (h) => h[0] === 0x08 && h[1] > 0 && h[1] < 0x80 && [0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72].includes(h[2]),
};

/** The files an artifact folder may hold (compile writes these and nothing else). */
const ARTIFACT_FILES = new Set(["manifest.json", "weights.bin", "model.wat", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]);
const MODULE_FILE = /^model(\.[a-z0-9-]+)*\.wasm$/;
/** Weights split by --shard-size: weights-00001-of-00003.bin and on. */
const WEIGHTS_SHARD = /^weights-\d{5}-of-\d{5}\.bin$/;

const wf602 = (m: string) => new InputError(m, undefined, { code: "WF602" });
const wf603 = (m: string) => new InputError(m, undefined, { code: "WF603" });
const wf605 = (m: string) => new InputError(m, undefined, { code: "WF605" });

/** A path as typed, printable on one line. */
const shown = (p: string) => p.replace(/[\x00-\x1f\x7f]/g, "?");

const lstat = (p: string): Stats | undefined => {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
};

/** The real path of `p`, resolving symbolic links in the part of it that exists. */
function real(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const up = dirname(abs);
    return up === abs ? abs : join(real(up), basename(abs));
  }
}

const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);

/** Why `target` is never replaced, or undefined. */
function protectedAs(target: string): string | undefined {
  const t = real(target);
  const cwd = real(process.cwd());
  if (parse(t).root === t) return "the root folder";
  if (t === real(homedir())) return "your home folder";
  if (t === cwd) return "the current folder";
  if (within(cwd, t)) return "a folder above the current one";
  return undefined;
}

/** The nearest existing folder that `target` would be created in must exist and be writable. */
function checkWritableParent(target: string, flag: string) {
  let dir = dirname(resolve(target));
  let st = lstat(dir);
  while (!st && dirname(dir) !== dir) st = lstat((dir = dirname(dir)));
  const s = st?.isSymbolicLink() ? lstat(real(dir)) : st;
  if (!s?.isDirectory()) throw wf605(`${flag} ${shown(target)}: ${shown(dir)} is not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw wf605(`${flag} ${shown(target)}: cannot write in ${shown(dir)} (permission denied)`);
  }
}

/** Whether `dir` is an artifact this tool wrote: a manifest of format "wasmformer" and only artifact files. */
export function isArtifactFolder(dir: string): boolean {
  const entries = readdirSync(dir, { withFileTypes: true });
  if (!entries.some((e) => e.name === "manifest.json")) return false;
  if (!entries.every((e) => e.isFile() && (ARTIFACT_FILES.has(e.name) || MODULE_FILE.test(e.name) || WEIGHTS_SHARD.test(e.name)))) return false;
  const path = join(dir, "manifest.json");
  if (lstatSync(path).size > 1 << 24) return false;
  try {
    const m = JSON.parse(readFileSync(path, "utf8"));
    return typeof m === "object" && m !== null && m.format === "wasmformer";
  } catch {
    return false;
  }
}

/**
 * Checks that an artifact folder may be written at `out`: absent, an empty folder or an earlier
 * artifact, or (with `force`) anything else except the paths never replaced. Throws WF602
 * (refused without --force), WF603 (never replaced) or WF605 (cannot be written).
 */
export function checkFolderOut(out: string, opts: OutputOptions = {}, flag = "--out") {
  const target = resolve(out);
  const why = protectedAs(target);
  if (why) throw wf603(`${flag} ${shown(out)} is ${why}; it is never replaced, even with --force`);
  const input = opts.inputs?.find((i) => within(real(i), real(target)));
  if (input !== undefined) throw wf603(`${flag} ${shown(out)} holds ${shown(input)}, an input of this command; it is never replaced`);
  const st = lstat(target);
  if (st?.isDirectory() && (readdirSync(target).length === 0 || isArtifactFolder(target))) return checkWritableParent(target, flag);
  if (st && !opts.force) throw wf602(`${flag} ${shown(out)} exists and is not a wasmformer artifact (refusing to replace it; use --force)`);
  checkWritableParent(target, flag);
}

/** First bytes of a file (fewer if it is shorter). */
function head(path: string, n = 16): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that a file of `kind` may be written at `out`: absent, empty or already of that kind, or
 * (with `force`) any other file; never a folder, an input, or an existing file in an input folder.
 */
export function checkFileOut(out: string, kind: FileKind, opts: OutputOptions = {}, flag = "--out") {
  const target = resolve(out);
  const st = lstat(target);
  if (st?.isDirectory()) throw wf603(`${flag} ${shown(out)} is a folder; give the name of a file to write (${kind.name})`);
  const input = opts.inputs?.find((i) => real(i) === real(target) || (st && within(real(target), real(i))));
  if (input !== undefined) throw wf603(`${flag} ${shown(out)} is ${real(input) === real(target) ? "" : "in "}${shown(input)}, an input of this command; it is never replaced`);
  if (st && !opts.force && !(st.isFile() && (st.size === 0 || kind.matches(head(target)))))
    throw wf602(`${flag} ${shown(out)} exists and is not ${kind.name} (refusing to replace it; use --force)`);
  checkWritableParent(target, flag);
}

/** A sibling name of `prefix` that does not exist yet. */
function freeName(prefix: string): string {
  for (;;) {
    const p = `${prefix}${process.pid}-${randomBytes(3).toString("hex")}`;
    if (!lstat(p)) return p;
  }
}

/**
 * Runs `fn` (synchronous) with SIGINT, SIGTERM and SIGHUP held where nothing else handles them:
 * a signal arriving meanwhile takes effect just after, once the output is whole (swapped in, or
 * removed after a failure), instead of killing the process halfway through a write.
 */
export function holdSignals<T>(fn: () => T): T {
  const signals = (["SIGINT", "SIGTERM", "SIGHUP"] as const).filter((s) => process.listenerCount(s) === 0);
  const release = () => signals.forEach((s) => process.off(s, onSignal));
  // the default action, once our listener is gone: the process ends by the signal
  const onSignal = (s: NodeJS.Signals) => (release(), process.kill(process.pid, s));
  signals.forEach((s) => process.on(s, onSignal));
  try {
    return fn();
  } finally {
    // a signal that came during fn is read in the event loop's next poll phase: release after it
    setImmediate(() => setImmediate(release));
  }
}

/** Renames `fresh` to `target`; an existing target is moved aside first and restored if that fails. Returns the aside path. */
function swapIn(fresh: string, target: string): string | undefined {
  if (!lstat(target)) {
    renameSync(fresh, target);
    return undefined;
  }
  const aside = freeName(`${target}.old-`);
  renameSync(target, aside);
  try {
    renameSync(fresh, target);
  } catch (e) {
    renameSync(aside, target);
    throw e;
  }
  return aside;
}

/** Writes a folder with `write(tmp)` into a sibling temporary folder and swaps it in at `out` (see checkFolderOut). */
export function writeFolderOut(out: string, write: (dir: string) => void, opts: OutputOptions = {}) {
  holdSignals(() => {
    checkFolderOut(out, opts);
    const target = resolve(out);
    const made = mkdirSync(dirname(target), { recursive: true });
    let tmp: string | undefined, aside: string | undefined;
    try {
      tmp = mkdtempSync(`${target}.tmp-`);
      write(tmp);
      aside = swapIn(tmp, target);
    } catch (e) {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      if (made) rmSync(made, { recursive: true, force: true });
      throw e;
    }
    if (aside) rmSync(aside, { recursive: true, force: true });
  });
}

/** Writes `bytes` to a sibling temporary file and renames it to `out` (see checkFileOut). */
export function writeFileOut(out: string, bytes: Uint8Array, kind: FileKind, opts: OutputOptions = {}) {
  holdSignals(() => {
    checkFileOut(out, kind, opts);
    const target = resolve(out);
    const made = mkdirSync(dirname(target), { recursive: true });
    const tmp = freeName(`${target}.tmp-`);
    try {
      writeFileSync(tmp, bytes, { flag: "wx" });
      renameSync(tmp, target);
    } catch (e) {
      rmSync(tmp, { force: true });
      if (made) rmSync(made, { recursive: true, force: true });
      throw e;
    }
  });
}
