// Runs fuzz cases in a worker thread: the CLI's `main` in process (far faster than a process
// per case), its output captured, the case's folder compared before and after.

import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { main } from "../../compiler/cli.js";
import { CaseMaker, type Materials } from "./cases.js";
import { type Outcome, judge } from "./judge.js";

export interface WorkerData {
  materials: Materials;
  seed: number;
}

/** path → content hash of every file and folder below dir. */
function snapshot(dir: string, rel = "", into = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = statSync(join(dir, r));
    if (st.isDirectory()) {
      into.set(r + "/", "dir");
      snapshot(dir, r, into);
    } else into.set(r, createHash("sha1").update(readFileSync(join(dir, r))).digest("hex"));
  }
  return into;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of b) if (!a.has(k)) out.push(`+${k}`);
  else if (a.get(k) !== v) out.push(`~${k}`);
  for (const k of a.keys()) if (!b.has(k)) out.push(`-${k}`);
  return out;
}

async function runCase(maker: CaseMaker, seed: number, index: number) {
  const c = maker.make(seed, index);
  // said first, so that a case that kills its worker can still be named
  parentPort?.postMessage({ starting: index, mutator: c.mutator, argv: c.argv });
  const dir = mkdtempSync(join(tmpdir(), "wf-fuzz-"));
  try {
    for (const [rel, content] of Object.entries(c.files)) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), content);
    }
    const argv = c.argv.map((a) => (a.startsWith("@/") ? join(dir, a.slice(2)) : a));
    const before = snapshot(dir);
    let stdout = "";
    let stderr = "";
    const io = { stdout: { write: (s: string) => ((stdout += s), true) }, stderr: { write: (s: string) => ((stderr += s), true) } };
    // main writes through io where it takes one; the process streams are captured as well
    const [ow, ew] = [process.stdout.write, process.stderr.write];
    process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
    const t0 = performance.now();
    let code: number;
    try {
      code = await (main as (argv: string[], io?: unknown) => Promise<number>)(argv, io);
    } catch (e) {
      code = 2;
      stderr += `internal error (thrown out of main): ${(e as Error)?.message}\n`;
    } finally {
      process.stdout.write = ow;
      process.stderr.write = ew;
    }
    const outcome: Outcome = { code, stdout, stderr, ms: performance.now() - t0, changes: diff(before, snapshot(dir)) };
    return { index, category: c.category, mutator: c.mutator, argv: c.argv, ...judge(outcome), stderr: stderr.slice(0, 2000), ms: outcome.ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (parentPort) {
  const { materials, seed } = workerData as WorkerData;
  const maker = new CaseMaker(materials);
  parentPort.on("message", async (index: number) => {
    parentPort!.postMessage(await runCase(maker, seed, index));
  });
  parentPort.postMessage("ready");
}
