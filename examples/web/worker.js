// The model's thread (a module Web Worker): loads an artifact by URL (weights cached by content
// hash), tokenizes prompts, generates, and posts each token to the page as it comes. A worker
// has no import map, so it imports only runtime modules free of bare specifiers, and the
// tokenizer library from the URL the page's import map gives it.

import { pickVariant } from "./runtime/features.js";
import { fetchArtifactText } from "./runtime/fetch.js";
import { stream } from "./runtime/generate.js";
import { browserThreads, hasThreads } from "./runtime/threads.js";
import { loadArtifactFromUrl } from "./runtime/web.js";

/** The loaded model, and its tokenizer when the artifact ships one. */
let model, tokenizer;
/** AbortControllers of the load and the generation in progress. */
let loading, generating;

const post = (message) => self.postMessage(message);

/** JSON of an artifact file; a file that is not JSON is named in the error. */
async function artifactJson(base, file) {
  const text = await fetchArtifactText(base, file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${new URL(file, base)}: not valid JSON (${e.message})`);
  }
}

/**
 * The artifact's tokenizer.json (with tokenizer_config.json when it has one) as the runtime's
 * TextTokenizer: encode with the special tokens the post-processor adds, as transformers does.
 */
async function loadTextTokenizer(base, file, library) {
  const { Tokenizer } = await import(library);
  const json = await artifactJson(base, file);
  const configResponse = await fetch(new URL("tokenizer_config.json", base));
  const config = configResponse.ok ? await configResponse.json() : {};
  const t = new Tokenizer(json, config);
  return {
    encode: (text, { addSpecialTokens = true } = {}) => Array.from(t.encode(text, { add_special_tokens: addSpecialTokens }).ids),
    decode: (ids, { skipSpecialTokens = false } = {}) => t.decode(ids, { skip_special_tokens: skipSpecialTokens }),
  };
}

async function load({ base, threads: wanted, tokenizers }) {
  loading?.abort();
  generating?.abort();
  const abort = (loading = new AbortController());
  model?.dispose();
  model = tokenizer = undefined;
  try {
    // the threaded module where the artifact has one and this worker can share memory, else one thread
    const manifest = await artifactJson(base, "manifest.json");
    const threaded = hasThreads() && manifest.variants?.some((v) => v.features.includes("threads"));
    const threads = threaded ? Math.max(1, Math.min(wanted, manifest.memory?.max_threads ?? 1)) : 1;
    const loaded = await loadArtifactFromUrl(base, {
      threads,
      host: threads > 1 ? browserThreads : undefined,
      onProgress: ({ file, loaded, total, fromCache, phase }) => post({ type: "progress", file, loaded, total, fromCache, phase }),
      cache: true,
      signal: abort.signal,
    });
    const man = loaded.manifest;
    if (man.kind === "encoder") {
      loaded.dispose();
      throw new Error(`${man.model} is an encoder: it computes hidden states, not text (this page generates)`);
    }
    const text = man.tokenizer ? await loadTextTokenizer(base, man.tokenizer, tokenizers) : undefined;
    if (abort.signal.aborted) return loaded.dispose();
    [model, tokenizer] = [loaded, text];
    post({
      type: "ready",
      model: man.model,
      context: man.context,
      vocab: loaded.entry(man.kind === "seq2seq" ? "decode" : "forward").outputs[0].width,
      threads: loaded.threads,
      variant: pickVariant(man.variants, { threads }).file,
      tokenizer: text !== undefined,
    });
  } catch (e) {
    // a load that another one replaced says nothing
    if (!abort.signal.aborted) throw e;
  } finally {
    if (loading === abort) loading = undefined;
  }
}

async function generate({ text, ids, maxNewTokens, temperature, seed }) {
  if (!model) throw new Error("no model is loaded");
  if (generating) throw new Error("a reply is still being generated");
  const prompt = text !== undefined ? tokenizer.encode(text) : ids;
  post({ type: "prompt", ids: prompt });
  const abort = (generating = new AbortController());
  try {
    // the runtime yields to this worker's event loop between tokens, so a "stop" message is seen within one token
    const it = stream(model, prompt, { maxNewTokens, temperature, seed, tokenizer, signal: abort.signal });
    for (;;) {
      const step = await it.next();
      if (step.done) {
        const r = step.value;
        post({ type: "done", ids: r.ids, stopReason: r.stopReason, decodeTokensPerS: r.decodeTokensPerS, prefillTokensPerS: r.prefillTokensPerS });
        return;
      }
      post({ type: "token", id: step.value.id, text: step.value.text });
    }
  } finally {
    generating = undefined;
  }
}

self.onmessage = ({ data }) => {
  if (data.type === "stop") return void generating?.abort();
  const run = data.type === "load" ? load : generate;
  run(data).catch((e) => post({ type: "error", message: e?.message ?? String(e), code: e?.code }));
};
