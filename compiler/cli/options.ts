// Command-line options as data: each command declares its options (type, constraint, help) in a
// table; one parser checks a command line against it and the same table prints --help.

import { parseArgs } from "node:util";
import { InputError } from "../diagnostics.js";

/** An option value of the wrong type or out of range (WF601). */
export const optionError = (message: string) => new InputError(message, undefined, { code: "WF601" });
/** A malformed command line: unknown command or option, a missing value, argument or option (WF604). */
export const usageError = (message: string) => new InputError(message, undefined, { code: "WF604" });

/** How an option's text becomes a value; `what` completes "--x should be ...". */
export interface Kind<T> {
  what: string;
  /** The value, or the offending text (the whole value, or one item of a list) and optionally a fuller `what`. */
  parse(text: string): { value: T } | { found: string; what?: string };
}

const INT = /^-?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Integers written in decimal digits, within [min, max] and exactly representable. */
export function int(range: { min?: number; max?: number } = {}): Kind<number> {
  const { min, max } = range;
  const what =
    min !== undefined && max !== undefined ? `an integer from ${min} to ${max}`
    : min === 1 ? "a positive integer"
    : min === 0 ? "a non-negative integer"
    : min !== undefined ? `an integer of at least ${min}`
    : "an integer";
  return {
    what,
    parse(text) {
      const n = Number(text);
      if (!INT.test(text)) return { found: text };
      if (!Number.isSafeInteger(n)) return { found: text, what: `${what} of magnitude below 2^53` };
      if ((min !== undefined && n < min) || (max !== undefined && n > max)) return { found: text };
      return { value: n };
    },
  };
}

/** Finite decimal numbers ≥ 0 (no NaN, Infinity or hexadecimal). */
export const nonNegativeNumber: Kind<number> = {
  what: "a finite number ≥ 0",
  parse(text) {
    const n = Number(text);
    return DECIMAL.test(text) && Number.isFinite(n) && n >= 0 ? { value: n } : { found: text };
  },
};

/** Finite decimal numbers in a range; `open` excludes the low end: numberIn(0, 1, true) is (0, 1]. */
export function numberIn(lo: number, hi: number, open = false): Kind<number> {
  const what = hi === Infinity ? `a finite number ${open ? ">" : "≥"} ${lo}` : `a number in ${open ? "(" : "["}${lo}, ${hi}]`;
  return {
    what,
    parse(text) {
      const n = Number(text);
      return DECIMAL.test(text) && Number.isFinite(n) && (open ? n > lo : n >= lo) && n <= hi ? { value: n } : { found: text };
    },
  };
}

/** Sizes in bytes: digits, optionally followed by K, M or G (binary: 64K is 65536), within [min, max]. */
export function byteSize(min: number, max: number): Kind<number> {
  const unit = (n: number) => ([[2 ** 30, "G"], [2 ** 20, "M"], [2 ** 10, "K"]] as const).map(([u, s]) => (n % u === 0 ? `${n / u}${s}` : "")).find(Boolean) ?? String(n);
  const what = `a size in bytes from ${unit(min)} to ${unit(max)} (digits, optionally followed by K, M or G)`;
  return {
    what,
    parse(text) {
      const m = /^(\d+)([KMG]?)$/i.exec(text);
      const n = m ? Number(m[1]) * 2 ** (10 * " KMG".indexOf((m[2] || " ").toUpperCase())) : NaN;
      return Number.isSafeInteger(n) && n >= min && n <= max ? { value: n } : { found: text };
    },
  };
}

export function oneOf<const C extends string>(choices: readonly C[], what = `one of ${choices.join(", ")}`): Kind<C> {
  return { what, parse: (text) => ((choices as readonly string[]).includes(text) ? { value: text as C } : { found: text }) };
}

/** Any text, empty or not (a prompt). */
export const text: Kind<string> = { what: "text", parse: (t) => ({ value: t }) };

/** A file or folder name: not empty. */
export const path: Kind<string> = { what: "a path", parse: (t) => (t === "" ? { found: t } : { value: t }) };

/** Comma-separated token ids: non-negative integers, spaces around them allowed. */
export const ids: Kind<number[]> = {
  what: "comma-separated non-negative integer ids",
  parse(text) {
    const items = text.split(",").map((s) => s.trim());
    const bad = items.find((s) => !/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)));
    return bad === undefined ? { value: items.map(Number) } : { found: bad };
  },
};

/** Comma-separated integers, each within [min, max] (a list of sizes: 128,512). */
export function intList(range: { min?: number; max?: number } = {}): Kind<number[]> {
  const one = int(range);
  return {
    what: `comma-separated ${one.what.replace(/^an? /, "")}s`,
    parse(text) {
      const out: number[] = [];
      for (const item of text.split(",").map((s) => s.trim())) {
        const r = one.parse(item);
        if (!("value" in r)) return { found: item };
        out.push(r.value);
      }
      return { value: out };
    },
  };
}

/** A value another function validates by throwing (e.g. a pattern=scheme pair). */
export function checkedBy<T>(what: string, read: (text: string) => T): Kind<T> {
  return {
    what,
    parse(text) {
      try {
        return { value: read(text) };
      } catch {
        return { found: text };
      }
    },
  };
}

export interface OptionSpec {
  /** How the value is read; "flag" for a boolean option without a value. */
  kind: Kind<unknown> | "flag";
  /** Placeholder for the value in --help (N, DIR, ...). */
  arg?: string;
  /** A one-letter alias (-p for --prompt), as llama-bench's options have. */
  short?: string;
  help: string;
  required?: boolean;
  /** Given any number of times; the values collect in order. */
  repeatable?: boolean;
  /** Default, as text read by `kind` (so it obeys the same rule). */
  default?: string;
}

type ValueOf<S> = S extends { kind: Kind<infer T> } ? (S extends { repeatable: true } ? T[] : T) : boolean;
type Present<S> = S extends { required: true } | { default: string } | { repeatable: true } | { kind: "flag" } ? true : false;
/** The parsed values of an option table: options never undefined when required, defaulted, repeatable or flags. */
export type Values<O> = { [K in keyof O]: Present<O[K]> extends true ? ValueOf<O[K]> : ValueOf<O[K]> | undefined };

export interface Writer {
  write(text: string): unknown;
}
/** Where the command line writes: the process's streams, or a test's or fuzzer's buffers. */
export interface Io {
  stdout: Writer;
  stderr: Writer;
}

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  summary: string;
  /** The positional argument: its placeholder and meaning. */
  positional: { arg: string; help: string };
  /** A second positional argument, required when declared (compare BASE NEW). */
  second?: { arg: string; help: string };
  options: O;
  /** Pairs of options that cannot be given together. */
  conflicts?: readonly (readonly [keyof O & string, keyof O & string])[];
  /** Resolves to the exit status when it is not 0 (e.g. 130: stopped by Ctrl-C). */
  run(positional: string, values: Values<O>, io: Io, second?: string): Promise<void | number>;
}

export const command = <const O extends Record<string, OptionSpec>>(spec: CommandSpec<O>) => spec as unknown as CommandSpec;

/** Text shown for a value in a message: quoted, one line, at most 60 characters. */
export function quote(s: string): string {
  const shown = s.length > 60 ? `${s.slice(0, 57)}...` : s;
  return `'${shown.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}'`;
}

/** The closest of `names` to `name` within two edits, for "did you mean". */
export function closest(name: string, names: readonly string[]): string | undefined {
  const dist = (a: string, b: string) => {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      row = next;
    }
    return row[b.length];
  };
  let best: string | undefined, bestD = 3;
  for (const n of names) {
    const d = dist(name, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best;
}

/** A value that reads as an option: `--x` or `-x` (a letter), not `-1`. */
const optionLike = (s: string) => /^--?[A-Za-z]/.test(s);

/**
 * Checks `argv` (the words after the command's name) against the command's table: the positional
 * argument and the values, or "help" when -h/--help is among them. Unknown options, missing values,
 * repeated options, extra arguments, missing required options and conflicts are usage errors
 * (WF604); values breaking their kind's rule are WF601.
 */
export function parseCommand(name: string, spec: CommandSpec, argv: string[]): { positional: string; second?: string; values: Record<string, unknown> } | "help" {
  // parseArgs splits the words; the strict checks are made here over its tokens, so a value may
  // start with '-' (--seed -5) and each problem gets its own one-line message
  const config = Object.fromEntries(Object.entries(spec.options).map(([k, o]) => [k, { type: o.kind === "flag" ? ("boolean" as const) : ("string" as const), ...(o.short ? { short: o.short } : {}) }]));
  const { tokens } = parseArgs({ args: argv, options: { ...config, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: false, tokens: true });
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) return "help";
  const names = Object.keys(spec.options);
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") positionals.push(t.value);
    if (t.kind !== "option") continue;
    const o = spec.options[t.name];
    if (!Object.hasOwn(spec.options, t.name)) {
      const near = t.rawName.startsWith("--") ? closest(t.name, names) : undefined;
      throw usageError(`unknown option ${t.rawName} for ${name}${near ? ` (did you mean --${near}?)` : ""}; wasmformer ${name} --help lists its options`);
    }
    if (Object.hasOwn(values, t.name) && !o.repeatable) throw usageError(`${t.rawName} is given more than once`);
    if (o.kind === "flag") {
      if (t.value !== undefined) throw usageError(`${t.rawName} takes no value, found ${quote(t.value)}`);
      values[t.name] = true;
      continue;
    }
    if (t.value === undefined || (!t.inlineValue && optionLike(t.value)))
      throw usageError(`${t.rawName} needs a value${t.value === undefined ? "" : ` (for one starting with '-', write ${t.rawName}=VALUE)`}`);
    const r = o.kind.parse(t.value);
    if ("found" in r) throw optionError(`${t.rawName} should be ${r.what ?? o.kind.what}, found ${quote(r.found)}`);
    values[t.name] = o.repeatable ? [...((values[t.name] as unknown[]) ?? []), r.value] : r.value;
  }
  if (positionals.length === 0) throw usageError(`${name} needs ${spec.positional.arg}; usage: ${usageLine(name, spec)}`);
  const most = spec.second ? 2 : 1;
  if (spec.second && positionals.length < 2) throw usageError(`${name} needs ${spec.second.arg} after ${spec.positional.arg}; usage: ${usageLine(name, spec)}`);
  if (positionals.length > most) throw usageError(`unexpected argument ${quote(positionals[most])} after ${quote(positionals[most - 1])} (${name} takes ${spec.second ? `${spec.positional.arg} and ${spec.second.arg}` : `one ${spec.positional.arg}`})`);
  const missing = names.filter((k) => spec.options[k].required && !Object.hasOwn(values, k));
  if (missing.length) throw usageError(`${name} needs ${missing.map((k) => `--${k} ${spec.options[k].arg ?? ""}`.trim()).join(" and ")}`);
  for (const [a, b] of spec.conflicts ?? []) if (Object.hasOwn(values, a) && Object.hasOwn(values, b)) throw usageError(`--${a} and --${b} cannot be given together`);
  for (const [k, o] of Object.entries(spec.options)) {
    if (Object.hasOwn(values, k)) continue;
    if (o.kind === "flag") values[k] = false;
    else if (o.repeatable) values[k] = [];
    else if (o.default !== undefined) {
      const r = o.kind.parse(o.default);
      if ("found" in r) throw new Error(`the default of --${k}, ${o.default}, breaks its own rule`);
      values[k] = r.value;
    }
  }
  return { positional: positionals[0], ...(spec.second ? { second: positionals[1] } : {}), values };
}

/** The usage line of a command: its positional and its required options. */
export function usageLine(name: string, spec: CommandSpec): string {
  const required = Object.entries(spec.options).filter(([, o]) => o.required).map(([k, o]) => `--${k} ${o.arg ?? ""}`.trim());
  return `wasmformer ${name} ${spec.positional.arg}${spec.second ? ` ${spec.second.arg}` : ""} ${required.join(" ")}${required.length ? " " : ""}[options]`;
}

/** `wasmformer COMMAND --help`: usage, then one line per argument and option from the table. */
export function commandHelp(name: string, spec: CommandSpec): string {
  const rows: [string, string][] = [[spec.positional.arg, spec.positional.help], ...(spec.second ? [[spec.second.arg, spec.second.help] as [string, string]] : [])];
  for (const [k, o] of Object.entries(spec.options)) {
    const notes = [o.required ? "required" : "", o.default !== undefined ? `default ${o.default}` : "", o.repeatable ? "repeatable" : ""].filter(Boolean);
    rows.push([`${o.short ? `-${o.short}, ` : ""}--${k}${o.arg ? ` ${o.arg}` : ""}`, `${o.help}${notes.length ? ` (${notes.join("; ")})` : ""}`]);
  }
  rows.push(["-h, --help", "show this help"]);
  const w = Math.max(...rows.map(([l]) => l.length)) + 2;
  return `usage: ${usageLine(name, spec)}\n\n${spec.summary}\n\n${rows.map(([l, r]) => `  ${l.padEnd(w)}${r}`).join("\n")}\n`;
}
