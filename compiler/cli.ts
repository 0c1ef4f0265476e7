// The wasmformer command line: compile, export-onnx, run, generate, eval. The commands and their
// option tables are in compiler/cli/; this file dispatches and reports errors.

import { readFileSync } from "node:fs";
import { commands } from "./cli/commands.js";
import { errorLines } from "./cli/errors.js";
import { type Io, closest, commandHelp, parseCommand, quote, usageError } from "./cli/options.js";

export type { Io } from "./cli/options.js";

const NAMES = Object.keys(commands);

function overallHelp(): string {
  const rows = NAMES.map((n) => [`${n} ${commands[n].positional.arg}`, commands[n].summary]);
  const w = Math.max(...rows.map(([l]) => l.length)) + 2;
  return (
    "usage: wasmformer COMMAND ARGUMENT [options]\n\n" +
    "Compile transformer model definitions to WebAssembly SIMD artifacts, and run them.\n\n" +
    rows.map(([l, r]) => `  ${l.padEnd(w)}${r}`).join("\n") +
    "\n\n  wasmformer COMMAND --help   the options of a command\n  wasmformer --version        the version\n"
  );
}

/** The version in the package.json above this file (compiler/ from source, dist/compiler/ when built). */
function version(): string {
  for (const up of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8"));
      if (pkg.name === "wasmformer") return pkg.version;
    } catch {
      // not this level
    }
  }
  return "unknown";
}

/**
 * Runs the command line `argv` (without node and the script), writing to `io` (default: the
 * process's streams). Returns the exit status: 0, 1 for any error from input (one coded line),
 * 2 for a bug in wasmformer.
 */
export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined) throw usageError(`give a command: ${NAMES.join(", ")} (wasmformer --help describes them)`);
    if (name === "--help" || name === "-h" || name === "help") {
      const about = name === "help" && rest[0] !== undefined ? rest[0] : undefined;
      if (about !== undefined && !Object.hasOwn(commands, about)) throw usageError(`no command named ${quote(about)}; the commands are ${NAMES.join(", ")}`);
      io.stdout.write(about === undefined ? overallHelp() : commandHelp(about, commands[about]));
      return 0;
    }
    if (name === "--version") {
      io.stdout.write(`${version()}\n`);
      return 0;
    }
    if (!Object.hasOwn(commands, name)) {
      if (name.startsWith("-")) throw usageError(`give a command before options (${NAMES.join(", ")}), found ${quote(name)}`);
      const near = closest(name, NAMES);
      throw usageError(`no command named ${quote(name)}${near ? ` (did you mean ${near}?)` : ""}; the commands are ${NAMES.join(", ")}`);
    }
    const spec = commands[name];
    const parsed = parseCommand(name, spec, rest);
    if (parsed === "help") {
      io.stdout.write(commandHelp(name, spec));
      return 0;
    }
    return (await spec.run(parsed.positional, parsed.values as never, io, parsed.second)) ?? 0;
  } catch (e) {
    const lines = errorLines(e);
    if (lines !== undefined) {
      io.stderr.write(`${lines}\n`);
      return 1;
    }
    io.stderr.write(`internal error: ${(e as Error)?.message ?? e}\n`);
    if (process.env.WASMFORMER_DEBUG) io.stderr.write(`${(e as Error)?.stack}\n`);
    return 2;
  }
}
