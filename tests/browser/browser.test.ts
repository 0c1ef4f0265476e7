// Browser smoke test: the artifact that Node runs also runs in Chromium, loading the built
// runtime (runtime/dist/*.js) as plain ES modules, and gives the same greedy ids and logits, the
// same sampled ids for a seed, and the same chat prompt.
//
// Needs Debian's chromium at /usr/bin/chromium (.ci/run installs it via .ci/install-chromium.sh).
// Serves everything from a local 127.0.0.1 server; every other request is aborted.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { applyChatTemplate } from "../../runtime/chat.js";
import { generate } from "../../runtime/generate.js";
import { loadArtifact } from "../../runtime/node.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const FIXTURE = join(ROOT, "tests/fixtures/gpt2");
const reference = JSON.parse(readFileSync(join(FIXTURE, "reference.json"), "utf8"));
const PROMPT: number[] = [35, 85, 26, 42, 60];
const MAX_NEW = 10;

// the runtime modules the page may load, and the artifact files it fetches
// (every module of the runtime but its Node-only ones)
const RUNTIME_MODULES = readdirSync(join(ROOT, "runtime")).filter((f) => f.endsWith(".ts") && !["node.ts", "lora-node.ts"].includes(f)).map((f) => f.slice(0, -3));
// the runtime's two dependencies, as the page's import map names them
const VENDOR: Record<string, string> = {
  "tokenizers.mjs": "node_modules/@huggingface/tokenizers/dist/tokenizers.mjs",
  "jinja.js": "node_modules/@huggingface/jinja/dist/index.js",
};
const SAMPLING = { temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.1, seed: 11 };
const CHAT = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/chat/templates.json"), "utf8")).qwen2_5.template as string;
const MESSAGES = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi — 你好 🙂" }];
const ARTIFACT_FILES = ["manifest.json", "model.wasm", "model.relaxed.wasm", "model.threads.wasm", "weights.bin"];
const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
  ".html": "text/html; charset=utf-8",
};

const INDEX_HTML = `<!doctype html>
<meta charset="utf-8">
<title>wasmformer browser smoke</title>
<link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "@huggingface/tokenizers": "/vendor/tokenizers.mjs", "@huggingface/jinja": "/vendor/jinja.js" } }</script>
<script type="module">
import { Model, applyChatTemplate, browserThreads, generate, pickVariant } from "/runtime/index.js";

async function bytes(name) {
  const r = await fetch("/artifact/" + name);
  if (!r.ok) throw new Error(name + ": HTTP " + r.status);
  return r.arrayBuffer();
}

window.wasmformerSmoke = async (prompt, maxNewTokens) => {
  const manifest = JSON.parse(new TextDecoder().decode(await bytes("manifest.json")));
  // the most capable module this browser runs (Chromium has relaxed SIMD)
  const variant = pickVariant(manifest.variants);
  const wasm = await bytes(variant.file);
  // (streaming the response body into linear memory works too — tests/runtime.test.ts — but
  // headless Chromium sometimes reports such a fully read fetch as aborted, which this page counts as a failure)
  const model = await Model.load({ manifest, wasm, weights: await bytes("weights.bin") });
  const logits = model.run("forward", { ids: prompt }).logits;
  model.reset();
  const ids = (await generate(model, prompt, { maxNewTokens, stopAtEos: false })).ids;
  // the page is cross-origin isolated: the threaded module runs on 2 Web Workers, with the same logits
  const threaded = pickVariant(manifest.variants, { threads: 2 });
  const m2 = await Model.load({ manifest, wasm: await bytes(threaded.file), weights: await bytes("weights.bin") }, { threads: 2, host: browserThreads });
  const threadedLogits = m2.run("forward", { ids: prompt }).logits;
  const threads = m2.threads;
  // sampling with a seed on the threaded module (whose logits equal Node's plain ones bit for bit), and
  // timers still firing while it generates: the page's event loop runs between tokens
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const sampled = (await generate(m2, prompt, { maxNewTokens: 24, stopAtEos: false, ...${JSON.stringify(SAMPLING)} })).ids;
  clearInterval(timer);
  m2.dispose();
  const chat = applyChatTemplate(${JSON.stringify(CHAT)}, ${JSON.stringify(MESSAGES)});
  return { ids, logits: Array.from(logits), userAgent: navigator.userAgent, variant: variant.file, isolated: crossOriginIsolated, threaded: threaded.file, threads, threadedLogits: Array.from(threadedLogits), sampled, ticks, chat };
};
window.wasmformerReady = true;
</script>
`;

let tmp: string | undefined;
let artifact: string;
let server: Server | undefined;
let origin: string;
let browser: Browser | undefined;
const served: string[] = []; // "<status> <path>" for every request the server answered
const pageProblems: string[] = []; // console errors, page errors, failed or blocked requests

/** Builds dist/ (npm run build) when the runtime the page loads is missing or older than its source. */
function ensureBuiltRuntime() {
  const stale = RUNTIME_MODULES.filter((m) => {
    const js = join(ROOT, "runtime/dist", `${m}.js`);
    return !existsSync(js) || statSync(js).mtimeMs < statSync(join(ROOT, "runtime", `${m}.ts`)).mtimeMs;
  });
  if (!stale.length) return;
  try {
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "pipe", timeout: 150_000 });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(
      `runtime/dist is missing or stale (${stale.join(", ")}) and \`npm run build\` failed: ` +
        `${err.message}\n${err.stdout?.toString() ?? ""}${err.stderr?.toString() ?? ""}`,
    );
  }
  const still = RUNTIME_MODULES.filter((m) => !existsSync(join(ROOT, "runtime/dist", `${m}.js`)));
  if (still.length) throw new Error(`\`npm run build\` ran but runtime/dist still lacks ${still.join(", ")}.js`);
}

function startServer(): Promise<Server> {
  const s = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    let file: string | undefined;
    if (path === "/" || path === "/index.html") file = "index.html";
    else if (path.startsWith("/runtime/")) {
      const name = path.slice("/runtime/".length);
      if (RUNTIME_MODULES.some((m) => name === `${m}.js` || name === `${m}.js.map`)) file = join(ROOT, "runtime/dist", name);
    } else if (path.startsWith("/vendor/")) {
      const name = path.slice("/vendor/".length);
      if (Object.hasOwn(VENDOR, name)) file = join(ROOT, VENDOR[name]);
    } else if (path.startsWith("/artifact/")) {
      const name = path.slice("/artifact/".length);
      if (ARTIFACT_FILES.includes(name)) file = join(artifact, name);
    }
    if (!file || (file !== "index.html" && !existsSync(file))) {
      served.push(`404 ${path}`);
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const body = file === "index.html" ? Buffer.from(INDEX_HTML) : readFileSync(file);
    served.push(`200 ${path}`);
    // cross-origin isolated (COOP + COEP), as a page must be to share WebAssembly memory with workers
    res.writeHead(200, {
      "content-type": TYPES[file.slice(file.lastIndexOf("."))],
      "cache-control": "no-store",
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    }).end(body);
  });
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

function problems() {
  return `\npage problems:\n  ${pageProblems.join("\n  ") || "(none)"}\nrequests served:\n  ${served.join("\n  ") || "(none)"}`;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed (${CHROMIUM} is missing): the browser smoke test needs Debian's chromium. ` +
        `.ci/run installs it (.ci/install-chromium.sh); locally: apt-get install -y chromium`,
    );
  ensureBuiltRuntime();

  tmp = mkdtempSync(join(tmpdir(), "wasmformer-browser-"));
  artifact = join(tmp, "gpt2");
  compileModel(join(ROOT, "examples/gpt2.wf"), FIXTURE, artifact);

  server = await startServer();
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function openPage(): Promise<Page> {
  const context = await browser!.newContext();
  // nothing but the local server: abort every other request
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin + "/")) return route.continue();
    pageProblems.push(`blocked ${url}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageProblems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") pageProblems.push(`console.error: ${m.text()}`);
  });
  page.on("requestfailed", (r) => pageProblems.push(`requestfailed: ${r.url()} (${r.failure()?.errorText})`));
  // a module that fails to import or evaluate raises a page error: stop waiting at the first one
  const failed = new Promise<never>((_, reject) => page.once("pageerror", reject));
  failed.catch(() => {});
  await page.goto(origin + "/");
  try {
    await Promise.race([page.waitForFunction("window.wasmformerReady === true", undefined, { timeout: 20_000 }), failed]);
  } catch {
    throw new Error(`the page did not finish importing /runtime/index.js (runtime/dist)${problems()}`);
  }
  return page;
}

test("the gpt2 artifact gives the same greedy ids and logits in Chromium as in Node", async () => {
  // Node: the same artifact folder, through the Node helper
  const nodeModel = await loadArtifact(artifact);
  const nodeLogits = nodeModel.run("forward", { ids: PROMPT }).logits;
  const nodeIds = (await generate(nodeModel, PROMPT, { maxNewTokens: MAX_NEW, stopAtEos: false })).ids;

  // Chromium: the built runtime as ES modules, the artifact fetched
  const page = await openPage();
  let got: { ids: number[]; logits: number[]; userAgent: string; variant: string; isolated: boolean; threaded: string; threads: number; threadedLogits: number[]; sampled: number[]; ticks: number; chat: string };
  try {
    got = await page.evaluate(`window.wasmformerSmoke(${JSON.stringify(PROMPT)}, ${MAX_NEW})`);
  } catch (e) {
    throw new Error(`running the artifact in Chromium failed: ${(e as Error).message}${problems()}`);
  }
  await page.context().close();

  expect(got.userAgent).toMatch(/Chrom/);
  expect(got.variant).toBe("model.relaxed.wasm");
  // the page really ran the built runtime from runtime/dist
  for (const m of ["index", "model", "generate"]) expect(served, problems()).toContain(`200 /runtime/${m}.js`);
  for (const f of ["manifest.json", "model.relaxed.wasm", "weights.bin"]) expect(served, problems()).toContain(`200 /artifact/${f}`);
  expect(pageProblems, problems()).toEqual([]);

  expect(reference.greedy.input_ids).toEqual(PROMPT);
  expect(reference.greedy.max_new_tokens).toBe(MAX_NEW);
  expect(nodeIds).toEqual(reference.greedy.ids);
  expect(got.ids).toEqual(nodeIds);
  expect(got.ids).toEqual(reference.greedy.ids);

  expect(got.logits.length).toBe(nodeLogits.length);
  expect(got.logits.length).toBe(PROMPT.length * nodeModel.entry("forward").outputs[0].width);
  let maxDiff = 0;
  for (let i = 0; i < nodeLogits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got.logits[i] - nodeLogits[i]));
  expect(Number.isFinite(maxDiff), "logits contain NaN or infinity").toBe(true);
  // the page runs the relaxed-SIMD module (fused multiply-add), Node the plain one
  expect(maxDiff).toBeLessThanOrEqual(1e-5);

  // threads in the page: Web Workers over a shared memory give Node's single-thread plain-SIMD logits exactly
  expect(got.isolated).toBe(true);
  expect(got.threaded).toBe("model.threads.wasm");
  expect(got.threads).toBe(2);
  expect(got.threadedLogits).toEqual(Array.from(nodeLogits));

  // the same seed and options: the same sampled ids in the page (2 workers) as in Node (1 thread)
  nodeModel.reset();
  const nodeSampled = (await generate(nodeModel, PROMPT, { maxNewTokens: 24, stopAtEos: false, ...SAMPLING })).ids;
  expect(got.sampled).toEqual(nodeSampled);
  expect(new Set(nodeSampled).size).toBeGreaterThan(3);
  expect(got.ticks).toBeGreaterThan(3);
  expect(got.chat).toBe(applyChatTemplate(CHAT, MESSAGES as never));
}, 60_000);
