// llama.cpp peers for the quantization bench: the LLaMA shape of bench/common.js with the random
// weights bench/run.js times (same generator, same seed), written as GGUF by the project's writer
// (compiler/export/gguf.ts) and run by
//   wllama            @wllama/wllama (llama.cpp compiled to wasm) in headless Debian Chromium, one
//                     thread (the page is not cross-origin isolated, so no Web Worker threads)
//   llama.cpp-native  node-llama-cpp's prebuilt CPU build, 1 thread, no GPU: the native ceiling
//
//   node bench/llamacpp.js            q8_0, q4_0, f32; decode at past 128 and 512 (~5 min here)
//   node bench/llamacpp.js --quick    q8_0 and q4_0, past 128 only, fewer repeats (~110 s on 2 busy cores)
//   options: --model llama|qwen  --types q8_0,q4_0,f32  --systems wllama,native  --repeats N (prompt runs)
//            --decode-runs N  --decode-steps N  --prefill N (default 128)  --seed N  --no-long
//            --keep (keep the GGUF files)
// Needs `npm run build` (dist/compiler) and Chromium at /usr/bin/chromium (for wllama). Both peers
// are exact-pinned dependencies of bench/package.json (`npm --prefix bench ci`, which `npm run bench` runs); node-llama-cpp runs its prebuilt binaries (build: "never"), its
// postinstall is not needed (NODE_LLAMA_CPP_POSTINSTALL=skip skips it where npm would run it).
//
// Method (PEERS.md):
// - One GGUF per type in os.tmpdir(), deleted at the end; rows say its size as weight_bytes.
//   The vocabulary is synthetic, one character per token ("▁" + U+4E00+id, past the surrogates) so that a text
//   prompt tokenizes to exactly the chosen ids: wllama's completion API takes text only (a token
//   array is refused: "type must be string, but is array"). Token ids do not change the work
//   (one embedding row each); ids below 259 (special and byte tokens) are moved up by 259.
// - native is timed by the runtime's timing loop (runtime/bench.ts) on its context sequence as a
//   bench subject (compiler/cli/peer-subjects.ts, as `wasmformer bench --peer llama.cpp`), exactly
//   as bench/run.js times wasmformer; each call computes the last position's logits and samples a
//   token. wllama's completion API takes text and has no call that feeds ids or rewinds the cache
//   (@wllama/wllama 3.8.1), so the runtime's loop cannot drive it: its page keeps its own loop.
// - prompt (prefill_tokens_per_s): N tokens from an empty cache; llama.cpp computes the logits of
//   the last position only, so the same figure is also written as ttft_tokens_per_s, which is the
//   wasmformer figure with the same work (its prefill_tokens_per_s computes all N positions' logits).
//   wllama: BOS + (N-1) ids (i*7919+13) % vocab, as text; llama.cpp's own prompt_ms. native: the
//   loop's seeded random ids, wall time, after a warm-up run.
// - decode at past P (decode_tokens_per_s for P = N, decode_tokens_per_s_past512):
//   wllama: after a P-token prompt, greedy steps at past P, P+1, ...; the cache is rewound to P
//   between runs; llama.cpp's own timings (predicted_ms over predicted_n - 1 decodes), median over runs.
//   native: one token at past exactly P a step (the cache rewound to P before each, as bench/run.js
//   does), wall time of each step, median over all steps after a run's worth of warm-up steps.
// - Both get the text prompt's ids once (native untimed): their greedy tokens after it are compared.
// - load_time: wllama loadModel from an in-page Blob (worker start, wasm compile, weights read,
//   context); native loadModel (no mmap: the weights are read into memory) + createContext.
// - A fresh page (wllama) or model + context (native) per type; warm-up runs are not timed.
// Rows {model, system, variant: <type>, threads: 1, metric, value, unit} replace earlier rows of the
// same model/system/variant/threads in bench/results/latest.json; all of this run's rows are also
// written alone to bench/results/llamacpp.json.

import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MB, benchModels, cliOptions, log, median, mergeResults, now, resultsDir } from "./common.js";
import { benchSubject } from "../runtime/dist/bench.js";
import { llamaCppSubject } from "../dist/compiler/cli/peer-subjects.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const WLLAMA_DIR = join(ROOT, "bench/node_modules/@wllama/wllama/esm");

// ---------------------------------------------------------------------------------------------
// options

const { flag, opt, list, str } = cliOptions();

const QUICK = flag("--quick");
const TYPES = list("--types", QUICK ? "q8_0,q4_0" : "q8_0,q4_0,f32");
const SYSTEMS = list("--systems", "wllama,native");
const PREFILL = opt("--prefill", 128);
const REPEATS = opt("--repeats", QUICK ? 2 : 3); // timed prompt runs (after one warm-up)
const DECODE_RUNS = opt("--decode-runs", QUICK ? 2 : 3); // timed decode runs per past length
const DECODE_STEPS = opt("--decode-steps", QUICK ? 16 : 32); // greedy steps per run
const LONG_PAST = 512;
const PASTS = QUICK || flag("--no-long") ? [PREFILL] : [PREFILL, LONG_PAST];
const SEED = opt("--seed", 1234);
const THREADS = 1;
for (const t of TYPES) if (!["q8_0", "q4_0", "f32", "f16"].includes(t)) throw new Error(`--types: unknown '${t}' (q8_0, q4_0, f32, f16)`);
for (const s of SYSTEMS) if (!["wllama", "native"].includes(s)) throw new Error(`--systems: unknown '${s}' (wllama, native)`);
if (!(REPEATS >= 1 && DECODE_RUNS >= 1 && DECODE_STEPS >= 2)) throw new Error("--repeats and --decode-runs must be >= 1, --decode-steps >= 2");

const spec = benchModels[str("--model", "llama")];
const MODEL = spec.name;
const VOCAB = spec.config.vocab_size;
const BOS = spec.config.bos_token_id;
const SYSTEM_NAME = { wllama: "wllama", native: "llama.cpp-native" };
const CONTEXT = 1024;

// ---------------------------------------------------------------------------------------------
// tokens: a vocabulary whose text form maps one character to one token

const FIRST_TEXT_ID = 259; // <unk>, <s>, </s>, then 256 byte tokens
// U+4E00 + id, past the surrogates (U+D800..U+DFFF, no characters: a 151,936-word vocabulary
// reaches them) and the private-use area after them
const SKIP_FROM = 0xd800, SKIP = 0xf900 - 0xd800;
const tokenChar = (id) => String.fromCodePoint(0x4e00 + id < SKIP_FROM ? 0x4e00 + id : 0x4e00 + id + SKIP);
/** The id of generated text that is one ordinary token (" " + its character), else undefined. */
const tokenOfText = (text) => {
  const m = /^ (.)$/u.exec(text ?? "");
  const cp = m ? m[1].codePointAt(0) : -1;
  const id = cp < 0 ? -1 : cp < SKIP_FROM ? cp - 0x4e00 : cp - SKIP - 0x4e00;
  return id >= FIRST_TEXT_ID && id < VOCAB ? id : undefined;
};

function textVocab(size, bos, eos) {
  const tokens = [], types = [], scores = [];
  for (let i = 0; i < size; i++) {
    const b = i - 3;
    if (i === 0) tokens.push("<unk>"), types.push(2), scores.push(0);
    else if (i === bos || i === eos) tokens.push(i === bos ? "<s>" : "</s>"), types.push(3), scores.push(0);
    else if (b >= 0 && b < 256) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`), types.push(6), scores.push(0);
    else tokens.push("\u2581" + tokenChar(i)), types.push(1), scores.push(-i);
  }
  return { model: "llama", tokens, types, scores };
}

/** BOS + n-1 ids of bench/run.js's sequence, and the text that tokenizes to those n-1 ids. */
function promptOf(n, mul, add) {
  const ids = Array.from({ length: n - 1 }, (_, i) => (i * mul + add) % VOCAB).map((x) => (x < FIRST_TEXT_ID ? x + FIRST_TEXT_ID : x));
  return { tokens: [BOS, ...ids], text: ids.map(tokenChar).join(" ") };
}
const prompts = { [PREFILL]: promptOf(PREFILL, 7919, 13) };
for (const P of PASTS) if (!prompts[P]) prompts[P] = promptOf(P, 104729, 7); // bench/run.js's long-past sequence

// ---------------------------------------------------------------------------------------------
// results

const rows = [];
const failures = [];
const summary = []; // [system, type, load s, prefill tok/s, decode@P tok/s...]
const firstTokens = {}; // type -> system -> greedy token after the prompt (a cross-check, not a gate)
const addRow = (system, variant, metric, value, unit) => rows.push({ model: MODEL, system, variant, threads: THREADS, metric, value, unit });
function stat(system, variant, metric, xs, unit) {
  addRow(system, variant, metric, median(xs), unit);
  addRow(system, variant, `${metric}_min`, Math.min(...xs), unit);
  addRow(system, variant, `${metric}_max`, Math.max(...xs), unit);
}
/** Rows for one system and type from its raw timings (seconds). */
function record(system, type, r) {
  const name = SYSTEM_NAME[system];
  addRow(name, type, "weight_bytes", r.weightBytes, "bytes");
  addRow(name, type, "load_time", r.loadS, "s");
  const ppTokS = r.promptS.map((s) => PREFILL / s);
  stat(name, type, "prefill_tokens_per_s", ppTokS, "tok/s");
  stat(name, type, "prefill_time", r.promptS, "s");
  stat(name, type, "ttft_tokens_per_s", ppTokS, "tok/s");
  stat(name, type, "ttft_time", r.promptS, "s");
  for (const P of PASTS) {
    const suffix = P === PREFILL ? "" : `_past${P}`; // past = prefill: the names bench/run.js uses
    stat(name, type, `decode_tokens_per_s${suffix}`, r.decodeS[P].map((s) => 1 / s), "tok/s");
    stat(name, type, `decode_time_per_token${suffix}`, r.decodeS[P].map((s) => s * 1000), "ms");
  }
  summary.push([name, type, r.loadS, median(ppTokS), ...PASTS.map((P) => 1 / median(r.decodeS[P]))]);
  (firstTokens[type] ??= {})[name] = r.firstToken;
}

function mergeRows() {
  const kept = mergeResults(rows);
  writeFileSync(join(resultsDir, "llamacpp.json"), JSON.stringify(rows, null, 2) + "\n");
  log(`merged ${rows.length} rows into bench/results/latest.json (${kept} other rows kept); also bench/results/llamacpp.json`);
}

// ---------------------------------------------------------------------------------------------
// native llama.cpp (node-llama-cpp)

async function runNative(files) {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const version = JSON.parse(readFileSync(join(ROOT, "bench/node_modules/node-llama-cpp/package.json"), "utf8")).version;
  const backendLines = [];
  const llama = await getLlama({
    gpu: false,
    build: "never", // the prebuilt binaries from npm; never download or compile
    progressLogs: false,
    logLevel: LlamaLogLevel.info,
    logger: (level, message) => {
      if (/load_backend|CPU backend/i.test(message)) backendLines.push(message.trim());
      else if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(`llama.cpp: ${message}`);
    },
  });
  const rel = llama.llamaCppRelease;
  log(`node-llama-cpp ${version} (${llama.buildType} binaries, llama.cpp ${rel.repo} ${rel.release}), gpu: ${llama.gpu}`);
  log(`  ${llama.systemInfo.trim()}`);
  try {
    for (const type of TYPES) {
      try {
        log(`\n-- llama.cpp-native ${type}`);
        const r = await nativeType(llama, type, files[type]);
        for (const l of new Set(backendLines.splice(0))) log(`  ${l}`); // which CPU variant ggml loaded (logged at the first model load)
        record("native", type, r);
      } catch (e) {
        failures.push(`llama.cpp-native ${type}: ${e?.stack ?? e}`);
        console.error(`llama.cpp-native ${type} failed: ${e?.stack ?? e}`);
      }
    }
  } finally {
    await llama.dispose();
  }
}

const GGML_TYPE_NAME = { 0: "f32", 1: "f16", 2: "q4_0", 8: "q8_0", 30: "bf16" };

async function nativeType(llama, type, file) {
  const warnings = [];
  const warn = console.warn;
  let t0 = now();
  let model;
  console.warn = (...a) => warnings.push(a.join(" ")); // node-llama-cpp's tokenizer round-trip check: see below
  try {
    model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: false });
  } finally {
    console.warn = warn;
  }
  const context = await model.createContext({ contextSize: CONTEXT, batchSize: 512, threads: { ideal: THREADS, min: THREADS }, sequences: 1 });
  const loadS = (now() - t0) / 1000;
  // its check detokenizes sample text: byte-fallback text does not round-trip in this vocabulary
  if (warnings.length) log(`  (node-llama-cpp warned at load: "${warnings[0].replace(/\s+/g, " ").slice(0, 120)}..."; the ids are fed directly here)`);
  try {
    // the text wllama is given tokenizes to the very ids fed here
    for (const P of Object.keys(prompts)) {
      const { tokens, text } = prompts[P];
      const got = model.tokenize(text, true);
      if (got.length !== tokens.length - 1 || got.some((x, i) => x !== tokens[i + 1])) throw new Error(`prompt text of ${P} tokens does not tokenize to the chosen ids`);
    }
    log(`  load ${loadS.toFixed(2)} s, threads ${context.currentThreads}, batch ${context.batchSize}, flash attention ${context.flashAttention}, KV cache ${GGML_TYPE_NAME[context.kvCacheKeyType] ?? context.kvCacheKeyType}/${GGML_TYPE_NAME[context.kvCacheValueType] ?? context.kvCacheValueType}`);
    const seq = context.getSequence();
    // the greedy token after the prompt wllama is given (a cross-check of the two, untimed)
    const prompt = prompts[PREFILL].tokens;
    const out = await seq.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { token: true } }] : t)));
    const firstToken = out[prompt.length - 1]?.next?.token;
    if (typeof firstToken !== "number") throw new Error("no token sampled after the prompt");
    // timed by the runtime's loop, as bench/run.js times wasmformer: the prompt from an empty
    // cache, and decode steps at each past length P (each step after rewinding the cache to P;
    // one run of warm-up steps)
    const subject = llamaCppSubject(seq, { context: CONTEXT, vocab: VOCAB });
    const c0 = process.cpuUsage(), w0 = now();
    const [pp] = await benchSubject(subject, { prompt: [PREFILL], gen: [], repetitions: REPEATS });
    const used = process.cpuUsage(c0), cpu = (used.user + used.system) / 1e6, wall = (now() - w0) / 1000;
    const promptS = pp.seconds;
    log(`  prompt ${PREFILL}: ${promptS.map((s) => (PREFILL / s).toFixed(1)).join(", ")} tok/s (process CPU time / wall ${(cpu / wall).toFixed(2)}, warm-up included)`);
    const decode = await benchSubject(subject, { prompt: [], gen: [1], depths: PASTS, repetitions: DECODE_RUNS * DECODE_STEPS, warmups: DECODE_STEPS, fixedDepth: true });
    const decodeS = Object.fromEntries(decode.map((r) => [r.depth, r.seconds]));
    for (const P of PASTS) {
      const steps = decodeS[P];
      log(`  decode @ past ${P}: median ${(1 / median(steps)).toFixed(2)} tok/s (${steps.length} steps, ${(1 / Math.max(...steps)).toFixed(2)}-${(1 / Math.min(...steps)).toFixed(2)})`);
    }
    return { weightBytes: statSync(file).size, loadS, promptS, decodeS, firstToken };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// wllama in Chromium

// The page: wllama's ESM bundle, single-thread (no COOP/COEP headers), driven step by step.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>wllama bench</title>
<link rel="icon" href="data:,">
<script type="module">
import { Wllama } from "/wllama/index.js";
const logs = [];
const keep = (kind) => (...a) => logs.push(kind + " " + a.map(String).join(" "));
// llama.cpp's debug lines: only those that say how it runs (they are many during generation)
const debug = keep("debug");
const logger = { debug: (...a) => /system_info|flash_attn|n_threads|CPU :|n_batch|type_k/.test(a.join(" ")) && debug(...a), log: keep("log"), warn: keep("warn"), error: keep("error") };
let w = null;
window.wl = {
  logs: () => logs.splice(0),
  async load(type, params) {
    let t0 = performance.now();
    const r = await fetch("/model/" + type + ".gguf");
    if (!r.ok) throw new Error("GGUF: HTTP " + r.status);
    const blob = await r.blob();
    const fetchMs = performance.now() - t0;
    w = new Wllama({ default: "/wllama/wllama.wasm" }, { logger });
    t0 = performance.now();
    await w.loadModel([blob], params);
    const loadMs = performance.now() - t0;
    return { fetchMs, loadMs, bytes: blob.size, multithread: w.isMultithread(), threads: w.getNumThreads(), isolated: self.crossOriginIsolated,
      libllama: Wllama.getLibllamaVersion(), ctx: w.getLoadedContextInfo().n_ctx, userAgent: navigator.userAgent };
  },
  async complete(opts) {
    const t0 = performance.now();
    const res = await w.createCompletion({ temperature: 0, ...opts, stream: false });
    return { wallMs: performance.now() - t0, timings: res.timings, finish: res.choices[0].finish_reason, text: res.choices[0].text };
  },
  async exit() {
    await w?.exit();
    w = null;
  },
};
window.wlReady = true;
</script>
`;

function startServer(files) {
  const served = [];
  const s = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    let file, type;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(PAGE);
      return;
    }
    if (path === "/wllama/index.js") (file = join(WLLAMA_DIR, "index.js")), (type = "text/javascript; charset=utf-8");
    else if (path === "/wllama/wllama.wasm") (file = join(WLLAMA_DIR, "wasm/wllama.wasm")), (type = "application/wasm");
    else {
      const m = /^\/model\/(\w+)\.gguf$/.exec(path);
      if (m && files[m[1]]) (file = files[m[1]]), (type = "application/octet-stream");
    }
    if (!file) {
      served.push(`404 ${path}`);
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    served.push(`200 ${path}`);
    res.writeHead(200, { "content-type": type, "content-length": statSync(file).size, "cache-control": "no-store" });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve({ server: s, served }));
  });
}

async function runWllama(files) {
  if (!existsSync(CHROMIUM)) throw new Error(`wllama needs Chromium at ${CHROMIUM} (Debian: apt-get install -y chromium)`);
  const { chromium } = await import("playwright-core");
  const version = JSON.parse(readFileSync(join(ROOT, "bench/node_modules/@wllama/wllama/package.json"), "utf8")).version;
  const { server, served } = await startServer(files);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
  log(`@wllama/wllama ${version} in Chromium ${browser.version()} (headless, --disable-gpu), page not cross-origin isolated`);
  try {
    for (const type of TYPES) {
      const problems = [];
      const context = await browser.newContext();
      try {
        log(`\n-- wllama ${type}`);
        // nothing but the local server: abort every other request (wllama's CDN fallbacks included)
        await context.route("**/*", (route) => {
          const url = route.request().url();
          if (url.startsWith(origin + "/")) return route.continue();
          problems.push(`blocked ${url}`);
          return route.abort();
        });
        const page = await context.newPage();
        page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
        page.on("console", (m) => m.type() === "error" && problems.push(`console.error: ${m.text().slice(0, 500)}`));
        await page.goto(origin + "/");
        await page.waitForFunction("window.wlReady === true", undefined, { timeout: 30_000 });
        const r = await wllamaType(page, type, files[type]);
        record("wllama", type, r);
      } catch (e) {
        const detail = `${e?.stack ?? e}\n  page problems: ${problems.join("\n    ") || "(none)"}\n  requests: ${served.slice(-12).join(", ")}`;
        failures.push(`wllama ${type}: ${detail}`);
        console.error(`wllama ${type} failed: ${detail}`);
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function wllamaType(page, type, file) {
  const nativeLogs = async () => (await page.evaluate(() => window.wl.logs())).map((l) => l.replace(/\s+$/, ""));
  const complete = async (opts) => {
    try {
      return await page.evaluate((o) => window.wl.complete(o), opts);
    } catch (e) {
      const tail = (await nativeLogs().catch(() => [])).filter((l) => !l.startsWith("log")).slice(-8);
      throw new Error(`${e.message}\n  wllama log: ${tail.join("\n    ")}`);
    }
  };
  const load = await page.evaluate(
    ([t, params]) => window.wl.load(t, params),
    [type, { n_ctx: 1024, n_batch: 512, n_ubatch: 512, n_threads: THREADS, n_gpu_layers: 0, n_parallel: 1, warmup: false }],
  );
  const info = (await nativeLogs()).filter((l) => /system_info|CPU :|flash_attn|n_threads|n_batch|type_k|WebGPU|adapter/i.test(l));
  if (load.multithread || load.threads !== THREADS || load.isolated) throw new Error(`expected the single-thread build: multithread ${load.multithread}, threads ${load.threads}, crossOriginIsolated ${load.isolated}`);
  log(`  libllama ${load.libllama}; fetch ${MB(load.bytes)} ${(load.fetchMs / 1000).toFixed(2)} s, loadModel ${(load.loadMs / 1000).toFixed(2)} s, n_ctx ${load.ctx}, threads ${load.threads}`);
  for (const l of new Set(info)) log(`  ${l.slice(0, 240)}`);

  // prompt: a fresh cache each run (cache_prompt off), one token generated
  const promptS = [];
  let firstToken;
  for (let r = 0; r <= REPEATS; r++) {
    const res = await complete({ prompt: prompts[PREFILL].text, max_tokens: 1, cache_prompt: false });
    firstToken = tokenOfText(res.text);
    const t = res.timings;
    if (t.prompt_n !== PREFILL || t.cache_n !== 0) throw new Error(`prompt: llama.cpp evaluated ${t.prompt_n} tokens with ${t.cache_n} cached, expected ${PREFILL} and 0`);
    if (r > 0) promptS.push(t.prompt_ms / 1000); // r = 0: warm-up
    if (r > 0 && Math.abs(res.wallMs - t.prompt_ms) > 0.1 * res.wallMs) log(`  (prompt run ${r}: wall ${res.wallMs.toFixed(0)} ms vs llama.cpp ${t.prompt_ms.toFixed(0)} ms)`);
  }
  log(`  prompt ${PREFILL}: ${promptS.map((s) => (PREFILL / s).toFixed(1)).join(", ")} tok/s`);

  // decode: the P-token prompt cached (each run re-evaluates its last token), then greedy steps
  const decodeS = {};
  for (const P of PASTS) {
    const runs = [];
    const opts = { prompt: prompts[P].text, cache_prompt: true, ignore_eos: true };
    await complete({ ...opts, max_tokens: 2 }); // fills the cache (a P-token prompt)
    for (let r = 0; r <= DECODE_RUNS; r++) {
      const res = await complete({ ...opts, max_tokens: DECODE_STEPS });
      const t = res.timings;
      if (t.cache_n + t.prompt_n !== P || t.cache_n < P - 1) throw new Error(`decode: prompt of ${t.cache_n} cached + ${t.prompt_n} tokens, expected ${P - 1} + 1`);
      if (t.predicted_n !== DECODE_STEPS) throw new Error(`decode: ${t.predicted_n} tokens generated, expected ${DECODE_STEPS} (${res.finish})`);
      // the first token is sampled from the prompt's logits: predicted_ms covers predicted_n - 1 decodes
      if (r > 0) runs.push(t.predicted_ms / (t.predicted_n - 1) / 1000); // r = 0: warm-up
    }
    decodeS[P] = runs;
    log(`  decode @ past ${P}: ${runs.map((s) => (1 / s).toFixed(2)).join(", ")} tok/s (${DECODE_STEPS - 1} steps per run)`);
  }
  await page.evaluate(() => window.wl.exit());
  return { weightBytes: statSync(file).size, loadS: load.loadMs / 1000, promptS, decodeS, firstToken };
}

// ---------------------------------------------------------------------------------------------
// main

const tStart = now();
log(`llama.cpp peers${QUICK ? " (--quick)" : ""}: ${MODEL} (${spec.shape}); types ${TYPES.join(", ")}; systems ${SYSTEMS.join(", ")}; ${THREADS} thread`);
log(`node ${process.version}; host CPUs: ${os.availableParallelism?.() ?? os.cpus().length} (${os.cpus()[0]?.model ?? "?"}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
log(`prompt ${PREFILL} tokens (${REPEATS} timed runs after 1 warm-up); decode at past ${PASTS.join(" and ")}: ${DECODE_RUNS} timed runs of ${DECODE_STEPS} steps after 1 warm-up run`);

const { writeGguf, memoryWeights } = await import("../dist/compiler/index.js");
const tmp = mkdtempSync(join(os.tmpdir(), "wasmformer-llamacpp-"));
const files = {};
try {
  let t0 = now();
  let tensors = spec.weights(spec.config, SEED);
  const params = Object.values(tensors).reduce((s, t) => s + t.data.length, 0);
  log(`random weights (seed ${SEED}): ${(params / 1e6).toFixed(1)} M params in ${((now() - t0) / 1000).toFixed(1)} s`);
  const vocab = textVocab(VOCAB, BOS, spec.config.eos_token_id);
  for (const type of TYPES) {
    t0 = now();
    files[type] = join(tmp, `${type}.gguf`);
    writeGguf(files[type], { arch: spec.ggufArch ?? "llama", config: spec.config, weights: memoryWeights(tensors, `random llama weights (seed ${SEED})`), type, name: MODEL, vocab });
    log(`  ${type}.gguf: ${MB(statSync(files[type]).size)} in ${((now() - t0) / 1000).toFixed(1)} s`);
  }
  tensors = null;

  if (SYSTEMS.includes("native")) {
    log("");
    try {
      await runNative(files);
    } catch (e) {
      failures.push(`llama.cpp-native: ${e?.stack ?? e}`);
      console.error(`llama.cpp-native failed: ${e?.stack ?? e}`);
    }
  }
  if (SYSTEMS.includes("wllama")) {
    log("");
    try {
      await runWllama(files);
    } catch (e) {
      failures.push(`wllama: ${e?.stack ?? e}`);
      console.error(`wllama failed: ${e?.stack ?? e}`);
    }
  }
} finally {
  if (flag("--keep")) log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

if (summary.length) {
  log("");
  log(`${"system".padEnd(18)}${"type".padEnd(6)}${"load s".padStart(8)}${`pp${PREFILL} tok/s`.padStart(14)}${PASTS.map((P) => `tg@${P} tok/s`.padStart(14)).join("")}`);
  for (const [sys, type, loadS, pp, ...tg] of summary)
    log(`${sys.padEnd(18)}${type.padEnd(6)}${loadS.toFixed(2).padStart(8)}${pp.toFixed(1).padStart(14)}${tg.map((x) => x.toFixed(2).padStart(14)).join("")}`);
  log("(medians, 1 thread; pp = prompt with the last position's logits; tg = greedy decode steps after a prompt of that length)");
  // the same model in both? their greedy token after the prompt (random weights: close logits can differ in order)
  for (const [type, bySystem] of Object.entries(firstTokens))
    if (Object.keys(bySystem).length > 1)
      log(`greedy token after the ${PREFILL}-token prompt, ${type}: ${Object.entries(bySystem).map(([k, v]) => `${k} ${v ?? "(not an ordinary token)"}`).join(", ")}${new Set(Object.values(bySystem)).size === 1 ? " (agree)" : " (DIFFER)"}`);
  mergeRows();
}
log(`total ${((now() - tStart) / 1000).toFixed(1)} s`);
if (failures.length) {
  console.error(`\n${failures.length} failed:\n  ${failures.map((f) => f.split("\n")[0]).join("\n  ")}`);
  process.exit(1);
}
