// The verdict on one case: a malformed input must end in exit status 1 with well-formed
// coded messages on stderr, nothing on stdout, no stack trace or "internal error", nothing
// written or deleted in the case's folder, within the time limit.

export type Verdict = "ok" | "accepted" | "internal" | "unclean" | "wrote" | "hang" | "memory";

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** Files added, removed or changed in the case's folder, as `+path`, `-path`, `~path`. */
  changes: string[];
}

export const TIME_LIMIT_MS = 15_000;

const HEAD = /^(?:\S.*:\d+:\d+: )?error\[WF\d{3}\]: \S/;
const FRAME = /^\d+ \| /;
const CARET = /^ *\^+$/;
const NOTE = /^note: /;

/** Why a finished run is not a clean error, or "ok". */
export function judge(o: Outcome): { verdict: Verdict; why: string } {
  if (o.code === 0) return { verdict: "accepted", why: "exit status 0" };
  if (/internal error/i.test(o.stderr) || o.code === 2) return { verdict: "internal", why: firstLine(o.stderr) };
  if (o.changes.length) return { verdict: "wrote", why: o.changes.slice(0, 4).join(" ") };
  if (o.ms > TIME_LIMIT_MS) return { verdict: "hang", why: `${(o.ms / 1000).toFixed(1)} s` };
  const lines = o.stderr.replace(/\n$/, "").split("\n");
  if (o.code !== 1) return { verdict: "unclean", why: `exit status ${o.code}` };
  if (o.stdout !== "") return { verdict: "unclean", why: `stdout: ${firstLine(o.stdout)}` };
  if (lines.some((l) => /^\s+at /.test(l))) return { verdict: "unclean", why: "stack trace" };
  const heads = lines.filter((l) => HEAD.test(l));
  const other = lines.filter((l) => !HEAD.test(l) && !FRAME.test(l) && !CARET.test(l) && !NOTE.test(l));
  if (!heads.length || other.length) return { verdict: "unclean", why: `not a coded message: ${firstLine(other[0] ?? lines[0])}` };
  // several messages only for several errors located in one source file (every syntax error of a parse)
  if (heads.length > 1 && !heads.every((h) => /:\d+:\d+: /.test(h))) return { verdict: "unclean", why: `${heads.length} messages` };
  if (lines.some((l) => l.length > 600)) return { verdict: "unclean", why: "a message line over 600 characters" };
  return { verdict: "ok", why: heads[0] };
}

const firstLine = (s: string) => s.split("\n")[0].slice(0, 200);
