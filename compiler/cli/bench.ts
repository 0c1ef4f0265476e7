// `wasmformer bench` (prompt processing and generation speed, as llama-bench reports it) and
// `wasmformer compare` (speed-ups between two bench runs, flagged where inside the noise).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { type BenchResult, type BenchSubject, benchSubjects, median, modelSubject, speedups } from "@wasmformer/runtime/bench";
import { loadArtifact, readManifest } from "@wasmformer/runtime/node";
import { type Io, command, int, intList, oneOf, optionError, path, usageError } from "./options.js";
import { PEERS, type PreparedPeer, llamaCppPeer, ortPeer } from "./peers.js";

/** One row of a bench run: a test on one thread count, with where it ran. */
export interface BenchRow {
  artifact: string;
  artifact_sha256: string;
  model: string;
  test: string;
  kind: "pp" | "tg";
  tokens: number;
  depth: number;
  threads: number;
  variant: string;
  repetitions: number;
  tokens_per_s: number;
  sd: number;
  cpu: string;
  host: string;
  /**
   * A peer's row: how many times faster wasmformer ran the same test, the median over the
   * repetitions of the two timed in turn (present with --peer).
   */
  wasmformer_speedup?: number;
}

const FORMATS = ["md", "csv", "json", "jsonl"] as const;

/** The artifact's identity: sha-256 over its manifest (which holds every weights shard's hash) and module files. */
function artifactHash(dir: string, files: string[]): string {
  const h = createHash("sha256");
  for (const f of ["manifest.json", ...files]) h.update(readFileSync(join(dir, f)));
  return h.digest("hex");
}

export const benchCommand = command({
  summary: "prompt processing (pp) and generation (tg) speed of a causal LM, each test repeated, mean ± sd",
  positional: { arg: "ARTIFACT", help: "artifact folder of a causal LM, from compile" },
  options: {
    prompt: { kind: intList({ min: 1 }), short: "p", arg: "N,...", default: "128", help: "prompt lengths timed as one call each (pp)" },
    gen: { kind: intList({ min: 1 }), short: "n", arg: "N,...", default: "32", help: "generation lengths timed as one-token calls (tg)" },
    depth: { kind: intList({ min: 0 }), short: "d", arg: "N,...", default: "0", help: "tokens already in the context before each test" },
    repetitions: { kind: int({ min: 1, max: 1000 }), short: "r", arg: "N", default: "5", help: "timed repetitions of each test, after one warm-up" },
    threads: { kind: intList({ min: 1, max: 256 }), short: "t", arg: "N,...", default: "1", help: "thread counts (above 1: model.threads.wasm)" },
    variant: { kind: oneOf(["auto", "plain", "relaxed"]), arg: "V", default: "auto", help: "module on one thread: plain SIMD128, relaxed SIMD, or the most capable the host runs" },
    output: { kind: oneOf(FORMATS), short: "o", arg: "FORMAT", default: "md", help: "md, csv, json (an array of rows) or jsonl (a row a line)" },
    peer: { kind: oneOf(PEERS), arg: "NAME", repeatable: true, help: "also time a peer on the same weights through the same loop: ort (ONNX Runtime Web on the ONNX export; needs --model, --weights and onnxruntime-web installed) or llama.cpp (node-llama-cpp on the GGUF export; needs --weights and node-llama-cpp installed)" },
    model: { kind: path, arg: "MODEL.wf", help: "with --peer: the model file the artifact was compiled from" },
    weights: { kind: path, arg: "PATH", help: "with --peer: the checkpoint the artifact was compiled from" },
    "gguf-type": { kind: oneOf(["f32", "q8_0", "q4_0"]), arg: "TYPE", default: "f32", help: "with --peer llama.cpp: the GGUF weights type (q8_0 beside an int8 artifact, q4_0 beside int4)" },
  },
  async run(artifact, a, io) {
    if (a.peer.length && (a.model === undefined || a.weights === undefined)) throw usageError("--peer needs --model MODEL.wf and --weights PATH (the sources of the artifact)");
    // ONNX Runtime Web sets up its wasm backend once a process, with the thread count of that moment
    if (a.peer.includes("ort") && a.threads.length > 1) throw usageError("--peer ort times one thread count a process (ONNX Runtime Web fixes it when it starts): give one -t value");
    const man = readManifest(artifact);
    const cpu = cpus()[0]?.model?.trim() ?? "unknown CPU";
    const host = `Node ${process.versions.node} (V8 ${process.versions.v8})`;
    const rows: BenchRow[] = [];
    // the weights exported once for each peer (ONNX or GGUF), a session or context per thread count
    const peers: { name: string; peer: PreparedPeer }[] = [];
    try {
      for (const name of a.peer) peers.push({ name, peer: name === "ort" ? await ortPeer(a.model!, a.weights!) : await llamaCppPeer(a.weights!, a["gguf-type"], man.context) });
      for (const threads of a.threads) {
        const variant = threads > 1 ? "threads" : a.variant;
        const model = await loadArtifact(artifact, { threads, ...(variant === "plain" || variant === "relaxed" ? { module: variant } : {}) });
        const others: (BenchSubject & { release(): Promise<void> })[] = [];
        try {
          for (const { peer } of peers) others.push(await peer.subject(threads));
          const file = model.wasmFile;
          const sha = artifactHash(artifact, [file]);
          const who = peers.length ? ` (with ${peers.map((p) => p.name).join(", ")})` : "";
          // wasmformer and the peers in turn, repetition by repetition (benchSubjects): each
          // peer's speed-up is paired, not two runs minutes apart
          const [ours, ...theirs] = await benchSubjects([modelSubject(model), ...others], {
            prompt: a.prompt, gen: a.gen, depths: a.depth, repetitions: a.repetitions,
            onProgress: (test, r, n) => io.stderr.write(`bench${who}: ${test}, ${threads} thread${threads > 1 ? "s" : ""}, ${r === 0 ? "warm-up" : `repetition ${r}/${n}`}\n`),
          });
          const features = man.variants.find((v) => v.file === file)?.features.join("+") ?? file;
          const at = { sha, model: man.model, threads, repetitions: a.repetitions, cpu, host };
          for (const r of ours) rows.push(rowOf(r, { ...at, artifact, variant: features }));
          theirs.forEach((results, i) =>
            results.forEach((r, j) => rows.push({ ...rowOf(r, { ...at, artifact: a.model!, variant: peers[i].peer.variant }), wasmformer_speedup: median(speedups(r, ours[j])) })),
          );
        } finally {
          model.dispose();
          for (const o of others) await o.release();
        }
      }
    } finally {
      for (const { peer } of peers) peer.dispose();
    }
    io.stdout.write(formatRows(rows, a.output));
  },
});

function rowOf(r: BenchResult, at: { artifact: string; sha: string; model: string; threads: number; variant: string; repetitions: number; cpu: string; host: string }): BenchRow {
  return {
    artifact: at.artifact, artifact_sha256: at.sha, model: at.model, test: r.test, kind: r.kind, tokens: r.tokens, depth: r.depth,
    threads: at.threads, variant: at.variant, repetitions: at.repetitions, tokens_per_s: r.tokensPerS, sd: r.sd, cpu: at.cpu, host: at.host,
  };
}

const COLUMNS = ["model", "test", "threads", "variant", "repetitions", "tokens_per_s", "sd", "wasmformer_speedup", "artifact_sha256", "cpu", "host"] as const;

/** Rows as a markdown table (with where they ran above it), CSV, a JSON array or JSON lines. */
export function formatRows(rows: BenchRow[], format: (typeof FORMATS)[number]): string {
  if (format === "json") return JSON.stringify(rows, null, 2) + "\n";
  if (format === "jsonl") return rows.map((r) => JSON.stringify(r) + "\n").join("");
  if (format === "csv") {
    const cell = (v: unknown) => (typeof v === "string" && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));
    return [COLUMNS.join(","), ...rows.map((r) => COLUMNS.map((c) => cell(r[c] ?? "")).join(","))].join("\n") + "\n";
  }
  if (!rows.length) return "";
  const head = `${rows[0].cpu}, ${rows[0].host}; artifact ${rows[0].artifact} (sha-256 ${rows[0].artifact_sha256.slice(0, 12)})\n\n`;
  const paired = rows.some((r) => r.wasmformer_speedup !== undefined);
  const table = [
    `| model | test | threads | variant | t/s |${paired ? " wasmformer vs it (paired) |" : ""}`,
    `| --- | --- | ---: | --- | ---: |${paired ? " ---: |" : ""}`,
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.test} | ${r.threads} | ${r.variant} | ${r.tokens_per_s.toFixed(2)} ± ${r.sd.toFixed(2)} |` +
        (paired ? ` ${r.wasmformer_speedup === undefined ? "" : `${r.wasmformer_speedup.toFixed(2)}×`} |` : ""),
    ),
  ];
  return head + table.join("\n") + "\n";
}

/** Rows from a bench run's output file: a JSON array or JSON lines. */
function readRows(file: string, flag: string): BenchRow[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw optionError(`${flag} ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let rows: unknown;
  try {
    rows = text.trimStart().startsWith("[") ? JSON.parse(text) : text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  } catch {
    throw optionError(`${flag} ${file}: not the JSON or JSON lines of \`wasmformer bench -o json\``);
  }
  const ok = (r: unknown): r is BenchRow => typeof r === "object" && r !== null && ["test", "variant"].every((k) => typeof (r as Record<string, unknown>)[k] === "string") && ["threads", "tokens_per_s", "sd", "repetitions"].every((k) => Number.isFinite((r as Record<string, unknown>)[k]));
  if (!Array.isArray(rows) || !rows.every(ok)) throw optionError(`${flag} ${file}: rows should be bench rows (test, threads, variant, tokens_per_s, sd, repetitions)`);
  return rows;
}

export interface Comparison {
  test: string;
  threads: number;
  variant: string;
  base: number;
  new: number;
  speedup: number;
  /** Whether the difference is within two standard errors of the difference of the means. */
  noise: boolean;
}

/** Each test of `base` also in `next` (same test, threads and variant): speed-up and whether it is inside the noise. */
export function compareRows(base: BenchRow[], next: BenchRow[]): Comparison[] {
  const key = (r: BenchRow) => `${r.test}|${r.threads}|${r.variant}`;
  const byKey = new Map(next.map((r) => [key(r), r]));
  return base.flatMap((b) => {
    const n = byKey.get(key(b));
    if (!n) return [];
    const se = Math.sqrt(b.sd ** 2 / b.repetitions + n.sd ** 2 / n.repetitions);
    return [{ test: b.test, threads: b.threads, variant: b.variant, base: b.tokens_per_s, new: n.tokens_per_s, speedup: n.tokens_per_s / b.tokens_per_s, noise: Math.abs(n.tokens_per_s - b.tokens_per_s) <= 2 * se }];
  });
}

export const compareCommand = command({
  summary: "speed-ups between two `wasmformer bench -o json` runs, each flagged when inside the repetitions' noise",
  positional: { arg: "BASE.json", help: "the earlier run (bench -o json or jsonl)" },
  second: { arg: "NEW.json", help: "the run to compare with it" },
  options: {
    output: { kind: oneOf(["md", "json"]), short: "o", arg: "FORMAT", default: "md", help: "md or json" },
  },
  async run(baseFile, a, io: Io, newFile?: string) {
    const rows = compareRows(readRows(baseFile, "BASE.json"), readRows(newFile!, "NEW.json"));
    if (!rows.length) throw optionError(`no test of ${baseFile} is in ${newFile} with the same threads and variant`);
    if (a.output === "json") return void io.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    io.stdout.write(
      [
        "| test | threads | variant | base t/s | new t/s | speed-up |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
        ...rows.map((r) => `| ${r.test} | ${r.threads} | ${r.variant} | ${r.base.toFixed(2)} | ${r.new.toFixed(2)} | ${r.speedup.toFixed(3)}×${r.noise ? " (noise)" : ""} |`),
      ].join("\n") + "\n",
    );
  },
});
