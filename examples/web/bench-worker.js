// The bench page's worker: loads an artifact by URL and runs the same timing loop as
// `wasmformer bench` (runtime/bench.ts) on each thread count asked for, posting progress and rows.

import { benchModel } from "./runtime/bench.js";
import { browserThreads, hasThreads } from "./runtime/threads.js";
import { loadArtifactFromUrl } from "./runtime/web.js";

const post = (message) => self.postMessage(message);

self.onmessage = async ({ data: { base, prompt, gen, depths, repetitions, threads: threadList } }) => {
  try {
    const rows = [];
    for (const wanted of threadList) {
      const threads = wanted > 1 && hasThreads() ? wanted : 1;
      if (threads !== wanted) post({ type: "note", text: `${wanted} threads need a cross-origin isolated page: running 1` });
      const model = await loadArtifactFromUrl(base, {
        threads,
        host: threads > 1 ? browserThreads : undefined,
        onProgress: ({ file, loaded, total, phase }) => post({ type: "progress", text: `loading ${file || phase} ${(loaded / 2 ** 20).toFixed(1)}/${(total / 2 ** 20).toFixed(1)} MiB` }),
      });
      try {
        const variant = model.manifest.variants.find((v) => v.file === model.wasmFile)?.features.join("+") ?? model.wasmFile;
        const results = await benchModel(model, {
          prompt, gen, depths, repetitions,
          onProgress: (test, r, n) => post({ type: "progress", text: `${test}, ${threads} thread${threads > 1 ? "s" : ""}: ${r === 0 ? "warm-up" : `repetition ${r}/${n}`}` }),
        });
        for (const r of results)
          rows.push({ model: model.manifest.model, test: r.test, kind: r.kind, tokens: r.tokens, depth: r.depth, threads, variant, repetitions, tokens_per_s: r.tokensPerS, sd: r.sd, host: navigator.userAgent });
      } finally {
        model.dispose();
      }
    }
    post({ type: "done", rows });
  } catch (e) {
    post({ type: "error", text: e && e.message ? e.message : String(e) });
  }
};
