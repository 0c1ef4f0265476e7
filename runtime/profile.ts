// Per-kernel times of a causal LM: the profiling module (model.profile.wasm, compile --profile)
// calls `__prof(site)` before each kernel and `__prof(-1)` at the end of an entry; a site's time
// is the gap to the next mark. One prefill of the prompt, then decode steps, each attributed to
// its kernel sites with the work the site table says they did. No Node-only imports.

import { ArtifactError, type Model } from "./model.js";
import type { ProfileSite } from "./manifest.js";

/** The marks a profiling module records, for `imports` when loading it. */
export class ProfileRecorder {
  private sites = new Int32Array(1 << 12);
  private times = new Float64Array(1 << 12);
  count = 0;
  readonly imports = {
    __prof: (site: number) => {
      if (this.count === this.sites.length) this.grow();
      this.sites[this.count] = site;
      this.times[this.count++] = performance.now();
    },
  };

  private grow() {
    const s = new Int32Array(this.sites.length * 2), t = new Float64Array(this.times.length * 2);
    s.set(this.sites);
    t.set(this.times);
    [this.sites, this.times] = [s, t];
  }

  /** Each site's seconds in the marks since the last call, and the span they cover. */
  take(): { site: number; seconds: number }[] {
    const out: { site: number; seconds: number }[] = [];
    for (let i = 0; i + 1 < this.count; i++) if (this.sites[i] >= 0) out.push({ site: this.sites[i], seconds: (this.times[i + 1] - this.times[i]) / 1000 });
    this.count = 0;
    return out;
  }
}

export interface KernelTime {
  phase: "prefill" | "decode";
  label: string;
  op: string;
  kind: ProfileSite["kind"];
  /** Calls (sites × steps) and their total seconds. */
  calls: number;
  seconds: number;
  /** The work those calls did (site table estimates). */
  flops: number;
  bytes: number;
  /** Whether a quantized matrix kernel took the integer (8-bit dot product) path. */
  integer: boolean;
}

export interface PhaseTime {
  phase: "prefill" | "decode";
  /** Rows per call and calls made (1 for prefill; the decode steps). */
  rows: number;
  steps: number;
  /** Wall seconds of the entry calls, and the part the kernel sites account for. */
  seconds: number;
  kernelSeconds: number;
}

export interface ProfileResult {
  phases: PhaseTime[];
  /** One row per phase and label (kernel kind and shape), slowest first. */
  kernels: KernelTime[];
}

/** Seeded token ids in [0, vocab). */
const idsOf = (n: number, vocab: number) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);

/**
 * Profiles a prefill of `promptTokens` and `decodeSteps` one-token steps on a model loaded from
 * the profiling module with `recorder.imports`. One untimed round warms the module up first.
 */
export function profileModel(model: Model, recorder: ProfileRecorder, { promptTokens = 128, decodeSteps = 32 } = {}): ProfileResult {
  const sites = model.manifest.profile?.sites;
  if (!sites) throw new ArtifactError("WF511", "the artifact has no profiling module: compile it with --profile");
  if (model.manifest.kind !== "causal-lm") throw new ArtifactError("WF511", `profile times causal LMs; this artifact is ${model.manifest.kind === "encoder" ? "an" : "a"} ${model.manifest.kind} model`);
  if (promptTokens < 1 || promptTokens + decodeSteps > model.manifest.context)
    throw new ArtifactError("WF510", `a prompt of ${promptTokens} tokens and ${decodeSteps} decode steps need ${promptTokens + decodeSteps} positions; the artifact's context is ${model.manifest.context}`);
  const entry = model.manifest.entries.some((e) => e.name === "forward_last") ? "forward_last" : "forward";
  const vocab = model.entry(entry).outputs[0].width;
  const ids = idsOf(promptTokens + decodeSteps, vocab);
  const groups = new Map<string, KernelTime>();
  const phases: PhaseTime[] = [];
  const round = (record: boolean) => {
    model.reset();
    for (const [phase, calls] of [["prefill", [ids.slice(0, promptTokens)]], ["decode", ids.slice(promptTokens).map((id) => [id])]] as const) {
      let seconds = 0, kernelSeconds = 0;
      for (const call of calls) {
        const past = model.past;
        recorder.take();
        const t0 = performance.now();
        model.run(entry, { ids: call });
        seconds += (performance.now() - t0) / 1000;
        for (const { site, seconds: s } of recorder.take()) {
          const k = sites[site];
          if (!k || k.entry !== entry) continue;
          const rows = k.rows ?? call.length, keys = past + (call.length + 1) / 2;
          kernelSeconds += s;
          const integer = k.quant !== undefined && (k.int_rows === undefined || rows <= k.int_rows);
          const key = `${phase}|${k.label}|${integer}`;
          const g = groups.get(key) ?? { phase, label: k.label, op: k.op, kind: k.kind, calls: 0, seconds: 0, flops: 0, bytes: 0, integer };
          g.calls++;
          g.seconds += s;
          g.flops += rows * (k.flops_row + k.flops_row_key * keys);
          g.bytes += k.bytes_call + rows * k.bytes_row + (past + call.length) * k.bytes_key;
          groups.set(key, g);
        }
      }
      phases.push({ phase, rows: calls[0].length, steps: calls.length, seconds, kernelSeconds });
    }
    if (!record) {
      groups.clear();
      phases.length = 0;
    }
  };
  try {
    round(false);
    round(true);
  } finally {
    model.reset();
  }
  return { phases, kernels: [...groups.values()].sort((a, b) => b.seconds - a.seconds) };
}
