// One serving process, as a user runs an artifact: load it from disk, generate, report.
// node --no-liftoff bench/serve.js ARTIFACT_DIR PROMPT_TOKENS NEW_TOKENS → one JSON line on stdout.

import { generate } from "../runtime/dist/index.js";
import { loadArtifact } from "../runtime/dist/node.js";
import { now, procStatus } from "./common.js";

const [dir, promptLen, newTokens] = [process.argv[2], Number(process.argv[3] ?? 128), Number(process.argv[4] ?? 32)];
const t0 = now();
const model = await loadArtifact(dir);
const loadS = (now() - t0) / 1000;
const vocab = model.entry("forward").outputs[0].width;
const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % vocab);
await generate(model, prompt.slice(0, 8), { maxNewTokens: 2, stopAtEos: false }); // warm up the kernels
model.reset(); // time the whole prompt, not a cached prefix
const r = await generate(model, prompt, { maxNewTokens: newTokens, stopAtEos: false });
console.log(JSON.stringify({ load_s: loadS, peak_rss: procStatus("VmHWM"), prefill_tokens_per_s: r.prefillTokensPerS, decode_tokens_per_s: r.decodeTokensPerS, generated: r.ids.length }));
