// The chat page. The model lives in a Web Worker (worker.js): this thread only asks for an
// artifact, draws the download, sends prompts and appends the tokens that come back, so it keeps
// painting while the model computes.

const $ = (id) => document.getElementById(id);
const ui = {
  engine: $("engine"),
  loadForm: $("load-form"),
  artifact: $("artifact"),
  load: $("load"),
  progress: $("progress"),
  bar: $("bar"),
  progressText: $("progress-text"),
  status: $("status"),
  transcript: $("transcript"),
  promptForm: $("prompt-form"),
  prompt: $("prompt"),
  maxNew: $("max-new"),
  temperature: $("temperature"),
  send: $("send"),
  stop: $("stop"),
  speed: $("speed"),
};

// threads share the model's WebAssembly memory, which needs a cross-origin isolated page (COOP + COEP)
const threads = crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
// workers ignore the page's import map: the worker imports the tokenizer library from the URL it maps to
const tokenizers = import.meta.resolve("@huggingface/tokenizers");
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });

/** The loaded model as the worker describes it, or undefined while none is. */
let model;
/** Files of the current load and whether each came from the cache. */
let sources = new Map();
/** The reply being streamed. */
let reply;

const MB = (bytes) => (bytes / 1e6).toFixed(1);

/** Where the reply ended at the last frame (page coordinates): a reader who saw its end keeps seeing it as text arrives. */
let shownEnd = 0;
let following = false;
function follow(turn) {
  if (following) return;
  following = true;
  requestAnimationFrame(() => {
    following = false;
    if (shownEnd <= scrollY + innerHeight + 40) turn.scrollIntoView({ block: "end" });
    shownEnd = turn.getBoundingClientRect().bottom + scrollY;
  });
}

function say(text, kind = "") {
  ui.status.textContent = text;
  ui.status.className = kind;
}

function busy(generating) {
  ui.send.disabled = generating;
  ui.stop.disabled = !generating;
  ui.load.disabled = generating;
}

function load(url) {
  // a folder URL; relative to this page
  const base = new URL(url.endsWith("/") ? url : `${url}/`, location.href).href;
  const query = new URLSearchParams(location.search);
  query.set("artifact", url);
  history.replaceState(null, "", `?${query}`);
  model = undefined;
  sources = new Map();
  ui.promptForm.hidden = true;
  ui.progress.hidden = false;
  ui.bar.removeAttribute("value");
  ui.progressText.textContent = "";
  say(`loading ${base}`);
  worker.postMessage({ type: "load", base, threads, tokenizers });
}

/** Comma-separated ids below `vocab`, or a message saying what is wrong. */
function parseIds(text, vocab) {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (!items.length) return "type token ids, e.g. 1,2,3 (this artifact has no tokenizer)";
  const bad = items.find((s) => !/^\d+$/.test(s) || Number(s) >= vocab);
  return bad === undefined ? items.map(Number) : `${bad} is not a token id (0 to ${vocab - 1})`;
}

/** A transcript entry: the prompt, then the reply's text, its figures and its ids. */
function startReply(promptText) {
  const turn = document.createElement("article");
  turn.className = "turn";
  const user = document.createElement("p");
  user.className = "user";
  user.textContent = promptText;
  const answer = document.createElement("div");
  answer.className = "model";
  const text = document.createElement("span");
  text.className = "text";
  const stats = document.createElement("footer");
  stats.className = "stats muted";
  const details = document.createElement("details");
  details.innerHTML = "<summary>ids</summary><p>prompt <code class=\"prompt-ids\"></code></p><p>reply <code class=\"reply-ids\"></code></p>";
  answer.append(text, stats, details);
  turn.append(user, answer);
  ui.transcript.append(turn);
  turn.scrollIntoView({ block: "end" });
  shownEnd = turn.getBoundingClientRect().bottom + scrollY;
  return { turn, text, stats, details, ids: [], first: 0 };
}

const handlers = {
  progress(p) {
    if (p.phase === "weights") {
      sources.set(p.file, p.fromCache);
      ui.bar.max = Math.max(1, p.total);
      ui.bar.value = p.loaded;
      ui.progressText.textContent = `${p.file}: ${MB(p.loaded)} / ${MB(p.total)} MB${p.fromCache ? " (from cache)" : ""}`;
    } else if (p.phase === "ready") {
      ui.bar.max = 1;
      ui.bar.value = 1;
      const cached = [...sources.values()].filter(Boolean).length;
      const from = cached === 0 ? "downloaded" : cached === sources.size ? "from cache" : `${cached} of ${sources.size} files from cache`;
      ui.progressText.textContent = `${MB(p.total)} MB of weights, ${from}`;
    } else {
      ui.bar.removeAttribute("value");
      ui.progressText.textContent = `loading ${p.file}`;
    }
  },
  ready(m) {
    model = m;
    ui.engine.textContent = `${m.model} · ${m.variant} · ${m.threads} thread${m.threads > 1 ? "s" : ""}${crossOriginIsolated ? "" : " (page not cross-origin isolated)"}`;
    ui.prompt.placeholder = m.tokenizer ? "Write the start of a text; the model continues it" : "Token ids, e.g. 1,2,3 (this artifact has no tokenizer)";
    ui.promptForm.hidden = false;
    busy(false);
    say(`${m.model} ready (context ${m.context}, vocabulary ${m.vocab})`);
    ui.prompt.focus();
  },
  prompt(m) {
    reply.details.querySelector(".prompt-ids").textContent = m.ids.join(",");
  },
  token(m) {
    const r = reply;
    const now = performance.now();
    if (!r.ids.length) r.first = now;
    r.ids.push(m.id);
    r.text.append(model.tokenizer ? m.text : `${r.ids.length > 1 ? "," : ""}${m.id}`);
    follow(r.turn);
    const n = r.ids.length;
    ui.speed.textContent = n > 1 ? `${n} tokens, ${((n - 1) / ((now - r.first) / 1000)).toFixed(1)} tokens/s` : "1 token";
  },
  done(m) {
    const r = reply;
    reply = undefined;
    r.details.querySelector(".reply-ids").textContent = m.ids.join(",");
    r.turn.dataset.stopReason = m.stopReason;
    const why = { eos: "end of text", stop: "stop string", length: "length", context: "context full", abort: "stopped" }[m.stopReason] ?? m.stopReason;
    r.stats.textContent = `${m.ids.length} tokens · ${m.decodeTokensPerS.toFixed(1)} tokens/s (prefill ${m.prefillTokensPerS.toFixed(0)}) · ${why}`;
    ui.speed.textContent = `${m.decodeTokensPerS.toFixed(1)} tokens/s`;
    busy(false);
    say("");
  },
  error(m) {
    // runtime errors carry a code (WF5xx) that docs/diagnostics.md explains
    say(m.code ? `error[${m.code}]: ${m.message}` : m.message, "error");
    if (reply) {
      reply.turn.dataset.stopReason = "error";
      reply = undefined;
    }
    busy(false);
    if (!model) ui.promptForm.hidden = true;
  },
};

worker.onmessage = ({ data }) => handlers[data.type](data);
// (a module that fails to load or link gives an error event without a message)
worker.onerror = (e) => handlers.error({ message: `the model's worker failed: ${e.message || "a module of worker.js did not load (see the browser console)"}` });

ui.loadForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!reply) load(ui.artifact.value.trim() || "./artifact/");
});

ui.promptForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!model || reply) return;
  const maxNewTokens = Number(ui.maxNew.value);
  const temperature = Number(ui.temperature.value);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) return say("max new tokens should be a positive integer", "error");
  if (!(temperature >= 0)) return say("temperature should be a number ≥ 0", "error");
  const text = ui.prompt.value;
  const input = model.tokenizer ? (text === "" ? "write a prompt" : { text }) : parseIds(text, model.vocab);
  if (typeof input === "string") return say(input, "error");
  const request = { type: "generate", ...(Array.isArray(input) ? { ids: input } : input), maxNewTokens, temperature };
  // a fresh seed for each sampled reply (the runtime's default seed repeats the same draws)
  if (temperature > 0) request.seed = Math.floor(Math.random() * 2 ** 31);
  reply = startReply(text);
  say("");
  ui.speed.textContent = "";
  busy(true);
  worker.postMessage(request);
});

ui.stop.addEventListener("click", () => worker.postMessage({ type: "stop" }));

// Enter sends, Shift+Enter starts a new line
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    ui.promptForm.requestSubmit();
  }
});

ui.artifact.value = new URLSearchParams(location.search).get("artifact") ?? ui.artifact.value;
load(ui.artifact.value);
