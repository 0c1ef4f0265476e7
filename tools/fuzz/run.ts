// The fuzz campaign: `npm run fuzz -- --cases 2000 --seed 1 [--workers 2] [--json FILE]`.
// Cases are made and judged in worker threads (worker.ts); a case that outlives the time
// limit or the heap limit is recorded as a hang or a memory failure and its worker replaced.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { main } from "../../compiler/cli.js";
import { CATEGORIES, type Materials } from "./cases.js";
import { TIME_LIMIT_MS, type Verdict } from "./judge.js";

export interface CaseResult {
  index: number;
  category: string;
  mutator: string;
  argv: string[];
  verdict: Verdict;
  why: string;
  stderr: string;
  ms: number;
}

export interface Campaign {
  seed: number;
  cases: number;
  results: CaseResult[];
  /** category → verdict → count */
  counts: Record<string, Partial<Record<Verdict, number>>>;
  failures: CaseResult[];
}

const root = join(import.meta.dirname, "..", "..", "..");

/** Compiles the two artifacts the artifact and option cases start from. */
async function prepare(dir: string): Promise<Materials> {
  const m: Materials = { root, artifact: join(dir, "gpt2"), tokArtifact: join(dir, "tiny-gpt2") };
  const quiet = { stdout: { write: () => true }, stderr: { write: () => true } };
  for (const [wf, weights, out] of [["gpt2", "tests/fixtures/gpt2", m.artifact], ["gpt2", "examples/tiny-gpt2", m.tokArtifact]]) {
    const code = await (main as (a: string[], io?: unknown) => Promise<number>)(["compile", join(root, "examples", `${wf}.wf`), "--weights", join(root, weights), "--out", out], quiet);
    if (code !== 0) throw new Error(`fuzz: compiling ${weights} failed (exit ${code})`);
  }
  return m;
}

export async function runCampaign(opts: { cases: number; seed: number; workers?: number; first?: number; onResult?: (r: CaseResult, done: number) => void }): Promise<Campaign> {
  const dir = mkdtempSync(join(tmpdir(), "wf-fuzz-materials-"));
  try {
    const materials = await prepare(dir);
    const first = opts.first ?? 0;
    const queue = Array.from({ length: opts.cases }, (_, i) => first + i);
    const results: CaseResult[] = [];
    const worker = () =>
      new Promise<void>((resolve, reject) => {
        const spawn = () => new Worker(new URL("./worker.js", import.meta.url), { workerData: { materials, seed: opts.seed }, resourceLimits: { maxOldGenerationSizeMb: 2048 }, stdout: true, stderr: true });
        let w = spawn();
        let current: number | undefined;
        let started: { mutator: string; argv: string[] } = { mutator: "?", argv: [] };
        let timer: NodeJS.Timeout | undefined;
        const record = (r: CaseResult) => {
          results.push(r);
          opts.onResult?.(r, results.length);
        };
        const next = () => {
          current = queue.shift();
          if (current === undefined) {
            void w.terminate();
            return resolve();
          }
          timer = setTimeout(() => fail("hang", `no answer in ${(TIME_LIMIT_MS + 5000) / 1000} s`), TIME_LIMIT_MS + 5000);
          w.postMessage(current);
        };
        const fail = (verdict: Verdict, why: string) => {
          clearTimeout(timer);
          const index = current!;
          w.removeAllListeners();
          void w.terminate();
          record({ index, category: CATEGORIES[index % CATEGORIES.length], ...started, verdict, why, stderr: "", ms: TIME_LIMIT_MS });
          w = spawn();
          listen();
        };
        const listen = () => {
          w.on("message", (msg: CaseResult | "ready" | { starting: number; mutator: string; argv: string[] }) => {
            if (msg === "ready") return next();
            if ("starting" in msg) return void (started = { mutator: msg.mutator, argv: msg.argv });
            clearTimeout(timer);
            record(msg);
            next();
          });
          w.on("error", (e: Error & { code?: string }) => {
            if (current === undefined) return reject(e);
            fail(e.code === "ERR_WORKER_OUT_OF_MEMORY" ? "memory" : "internal", e.message);
          });
        };
        listen();
      });
    await Promise.all(Array.from({ length: Math.max(1, opts.workers ?? 1) }, worker));
    results.sort((a, b) => a.index - b.index);
    const counts: Campaign["counts"] = {};
    for (const r of results) {
      const c = (counts[r.category] ??= {});
      c[r.verdict] = (c[r.verdict] ?? 0) + 1;
    }
    return { seed: opts.seed, cases: opts.cases, results, counts, failures: results.filter((r) => r.verdict !== "ok") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatCampaign(c: Campaign): string {
  const verdicts: Verdict[] = ["ok", "accepted", "internal", "unclean", "wrote", "hang", "memory"];
  const rows = Object.entries(c.counts).map(([cat, v]) => `| ${cat} | ${verdicts.map((k) => v[k] ?? 0).join(" | ")} |`);
  const lines = [`seed ${c.seed}, ${c.cases} cases`, `| category | ${verdicts.join(" | ")} |`, `|---|${verdicts.map(() => "---|").join("")}`, ...rows];
  for (const f of c.failures.slice(0, 40)) lines.push(`#${f.index} ${f.category} ${f.mutator}: ${f.verdict}: ${f.why}\n    wasmformer ${f.argv.join(" ")}`);
  if (c.failures.length > 40) lines.push(`... and ${c.failures.length - 40} more`);
  return lines.join("\n");
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({ options: { cases: { type: "string", default: "2000" }, seed: { type: "string", default: "1" }, workers: { type: "string", default: "2" }, first: { type: "string", default: "0" }, json: { type: "string" } } });
  const t0 = performance.now();
  const c = await runCampaign({
    cases: Number(values.cases),
    seed: Number(values.seed),
    workers: Number(values.workers),
    first: Number(values.first),
    onResult: (r, done) => {
      if (r.verdict !== "ok") process.stderr.write(`\n#${r.index} ${r.category} ${r.mutator}: ${r.verdict}: ${r.why}\n`);
      if (done % 20 === 0 || done === Number(values.cases)) process.stderr.write(`\rfuzz: ${done}/${values.cases} cases`);
    },
  });
  process.stderr.write("\n");
  process.stdout.write(formatCampaign(c) + `\n${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  if (values.json) writeFileSync(values.json, JSON.stringify(c, null, 2));
  process.exitCode = c.failures.length ? 1 : 0;
}
