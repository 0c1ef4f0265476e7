// Speculative decoding against plain greedy decoding of the same fp32 target, one thread:
//   - the target's own int4 copy as the draft model, on a plain prompt;
//   - prompt lookup on an input with repeated spans (a passage, then its first half again);
//   - the cost of one verify call of 8 drafts (9 rows of `forward`) against one decode step, the
//     verify cost of 2 to 9 rows, and the int4 draft's decode step against the target's: the
//     figures that bound the speed-up.
// Runs the module the runtime picks (relaxed SIMD under node --experimental-wasm-relaxed-simd).
// Every speculative run must give the plain run's ids (checked). The default target is the
// trained tiny GPT-2 (examples/tiny-gpt2); --weights DIR takes another trained GPT-2 or LLaMA
// folder (e.g. the larger sibling of docs/performance.md § Speculative decoding, made with
// examples/train/train_tiny_gpt2.py into /tmp/wf-spec-model), --random-llama the LLaMA-110M shape
// with random weights (meaningful for the verify cost only: random weights make acceptance
// meaningless). Writes bench/results/speculative.json and rows of latest.json.
// Not a test: `npm run build && node bench/speculative.js [--weights DIR | --random-llama] [--tokens N] [--draft-tokens K] [--lookup N] [--repeats R]`.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateArtifact, loadProgram, memoryWeights, passes, programFromSource, runPipeline, withQuantization } from "../dist/compiler/index.js";
import { generate } from "../runtime/dist/generate.js";
import { Model, pickVariant } from "../runtime/dist/index.js";
import { loadTokenizer } from "../runtime/dist/tokenizer.js";
import { benchModels, cliOptions, log, median, mergeResults, now, resultsDir } from "./common.js";

const { flag, str, opt } = cliOptions();
const TOKENS = opt("--tokens", 96);
const K = opt("--draft-tokens", 4);
const LOOKUP = opt("--lookup", 3);
const REPEATS = opt("--repeats", 3);
const CONTEXT = opt("--context", 512);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const RANDOM = flag("--random-llama");
const WEIGHTS = str("--weights", here("../examples/tiny-gpt2"));

/** The fp32 program and its int4 copy. */
function programs() {
  if (RANDOM) {
    const m = benchModels.llama;
    const source = readFileSync(here(`../${m.wf}`), "utf8");
    const load = () => programFromSource(m.wf, source, m.config, memoryWeights(m.weights(m.config, 7), "random LLaMA-110M-shaped weights"), { context: CONTEXT });
    return { name: `LLaMA-110M shape, random weights`, fp: runPipeline(load()), q4: runPipeline(load(), {}, withQuantization(passes, "int4")) };
  }
  const config = JSON.parse(readFileSync(join(WEIGHTS, "config.json"), "utf8"));
  const wf = here(`../examples/${config.model_type === "gpt2" ? "gpt2" : "llama"}.wf`);
  const context = Math.min(CONTEXT, config.n_positions ?? config.max_position_embeddings ?? CONTEXT);
  const load = () => loadProgram(wf, WEIGHTS, { context });
  return { name: `${WEIGHTS.replace(/\/+$/, "").split("/").pop()} (${config.model_type})`, fp: runPipeline(load()), q4: runPipeline(load(), {}, withQuantization(passes, "int4")) };
}

const t0 = now();
const p = programs();
let moduleFile;
const compile = async (program) => {
  const art = generateArtifact(program);
  moduleFile = pickVariant(art.manifest.variants).file;
  return Model.load({ manifest: art.manifest, wasm: art.variants.find((v) => v.file === moduleFile).wasm, weights: art.weights });
};
const target = await compile(p.fp), draft = await compile(p.q4);
const vocab = target.manifest.entries.find((e) => e.name === "forward").outputs[0].width;
log(`compiled ${p.name}: fp32 target and int4 draft in ${((now() - t0) / 1000).toFixed(1)} s; running ${moduleFile}`);

// a plain prompt, and an input with repeated spans: a passage, then the start of it again
const tokenizerFile = join(WEIGHTS, "tokenizer.json");
const tokenizer = !RANDOM && existsSync(tokenizerFile) ? loadTokenizer(JSON.parse(readFileSync(tokenizerFile, "utf8")), {}) : undefined;
const heldout = !RANDOM && existsSync(join(WEIGHTS, "heldout_ids.json")) ? JSON.parse(readFileSync(join(WEIGHTS, "heldout_ids.json"), "utf8")) : undefined;
const plainPrompt = tokenizer ? tokenizer.encode("To move the cursor to the end of the line, ") : Array.from({ length: 16 }, (_, i) => (i * 7919 + 13) % vocab);
// (the passage and its repeated half fit the context with the new tokens: 160 + 80 + 96 at most)
const span = Math.max(8, Math.min(160, Math.floor(((target.manifest.context - TOKENS) * 2) / 3)));
const passage = heldout ? heldout.slice(0, span) : Array.from({ length: span }, (_, i) => (i * 104729 + 5) % vocab);
const repeated = [...passage, ...passage.slice(0, span >> 1)];
const room = (prompt) => Math.min(TOKENS, target.manifest.context - prompt.length);

/** Median decode tokens/s and wall ms of `opts` on `prompt`, the ids, and the speculative counts. */
async function measure(prompt, opts) {
  const n = room(prompt);
  const rates = [], walls = [];
  let last;
  for (let r = 0; r < REPEATS; r++) {
    target.reset();
    draft.reset();
    const s = now();
    last = await generate(target, prompt, { maxNewTokens: n, stopAtEos: false, ...opts });
    walls.push(now() - s);
    rates.push(last.decodeTokensPerS);
  }
  return { ids: last.ids, decode: median(rates), wall: median(walls), drafted: last.draftTokens, accepted: last.acceptedTokens };
}

// warm the JIT on both models
await generate(target, plainPrompt, { maxNewTokens: 8, stopAtEos: false, draft });

const scenarios = [
  ["int4 self-draft", plainPrompt, { draft, draftTokens: K }],
  ["prompt lookup", repeated, { lookup: LOOKUP }],
];
const result = { model: p.name, module: moduleFile, threads: 1, tokens: TOKENS, draft_tokens: K, lookup: LOOKUP, scenarios: {} };
const rows = [];
const row = (variant, metric, value, unit) => rows.push({ model: p.name, system: "wasmformer", variant, threads: 1, metric, value, unit });
for (const [name, prompt, opts] of scenarios) {
  const plain = await measure(prompt, {});
  const spec = await measure(prompt, opts);
  const same = spec.ids.length === plain.ids.length && spec.ids.every((x, i) => x === plain.ids[i]);
  if (!same) throw new Error(`${name}: the speculative ids differ from plain greedy decoding's`);
  const s = {
    prompt_tokens: prompt.length,
    new_tokens: plain.ids.length,
    plain_decode_tokens_per_s: plain.decode,
    speculative_decode_tokens_per_s: spec.decode,
    decode_speedup: spec.decode / plain.decode,
    wall_speedup: plain.wall / spec.wall,
    draft_tokens: spec.drafted,
    accepted_tokens: spec.accepted,
    acceptance_rate: spec.accepted / spec.drafted,
  };
  result.scenarios[name] = s;
  log(`${name.padEnd(16)} plain ${plain.decode.toFixed(1)} tok/s, speculative ${spec.decode.toFixed(1)} tok/s: ${s.decode_speedup.toFixed(2)}× decode (${s.wall_speedup.toFixed(2)}× wall); ` +
    `accepted ${spec.accepted} of ${spec.drafted} drafts (${(100 * s.acceptance_rate).toFixed(0)}%)`);
  row(`speculative ${name}`, "decode_tokens_per_s", spec.decode, "tok/s");
  row(`speculative ${name}`, "decode_speedup_vs_plain", s.decode_speedup, "x");
  row(`speculative ${name}`, "acceptance_rate", s.acceptance_rate, "");
}

// one verify call of 8 drafts (9 rows, every row's logits) against one decode step, at 128 cached rows
const cached = Array.from({ length: 128 }, (_, i) => (i * 31 + 7) % vocab);
const stepEntry = target.manifest.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
const timeCall = (model, entry, ids) => {
  const times = [];
  for (let i = 0; i < 25; i++) {
    const s = now();
    model.run(entry, { ids });
    times.push(now() - s);
    model.rewind(model.past - ids.length);
  }
  return median(times.slice(5));
};
const rowsOf = (n) => Array.from({ length: n }, (_, i) => (i * 17 + 3) % vocab);
for (const m of [target, draft]) {
  m.reset();
  m.run(stepEntry, { ids: cached });
}
const step = timeCall(target, stepEntry, [11]);
const draftStep = timeCall(draft, stepEntry, [11]);
const verify = timeCall(target, "forward", rowsOf(9));
result.decode_step_ms = step;
result.draft_step_ms = draftStep;
result.verify_9_rows_ms = verify;
result.verify_over_step = verify / step;
// a verify of n rows against one step, for the other draft lengths
result.verify_rows_over_step = {};
for (const n of [2, 3, 5]) result.verify_rows_over_step[n] = timeCall(target, "forward", rowsOf(n)) / step;
result.verify_rows_over_step[9] = verify / step;
log(`verify of 8 drafts (9 rows) ${verify.toFixed(2)} ms = ${(verify / step).toFixed(2)}× a decode step (${step.toFixed(2)} ms) at 128 cached rows; ` +
  `n rows: ${Object.entries(result.verify_rows_over_step).map(([n, r]) => `${n} ${r.toFixed(2)}×`).join(", ")}; int4 draft step ${draftStep.toFixed(2)} ms = ${(draftStep / step).toFixed(2)}× the target's`);
row("speculative verify", "verify9_over_decode_step", verify / step, "x");
row("speculative verify", "draft_step_over_decode_step", draftStep / step, "x");

writeFileSync(join(resultsDir, "speculative.json"), JSON.stringify(result, null, 2) + "\n");
mergeResults(rows);
