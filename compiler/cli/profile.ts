// `wasmformer profile`: per-kernel times of a causal LM (its profiling module, compile --profile)
// against this machine's roofline measured in the same run, as a table, JSON and an SVG chart.

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { loadArtifact } from "@wasmformer/runtime/node";
import { type KernelTime, type PhaseTime, ProfileRecorder, profileModel } from "@wasmformer/runtime/profile";
import { peakDotGops, peakMaddGflops, readBandwidth } from "../measure/roofline.js";
import { command, int, optionError, path } from "./options.js";

export interface Roofline {
  /** f32x4 multiply-add and 8-bit dot-product peaks (GFLOP/s), read bandwidth over the weights (GB/s). */
  f32Gflops: number;
  int8Gops: number;
  readGbs: number;
}

export interface KernelRow extends KernelTime {
  share: number;
  gflops: number;
  gbs: number;
  /** Flops per byte, and the compute ceiling that applies (f32 or int8). */
  intensity: number;
  peak: "f32" | "int8";
  /** The time the roofline allows for this work over the time taken (1: on the roofline). */
  rooflineFraction: number;
}

/** Each kernel row with its rates and its place under the roofline. */
export function placeKernels(kernels: KernelTime[], phases: PhaseTime[], roof: Roofline): KernelRow[] {
  return kernels.map((k) => {
    const peak = k.integer ? "int8" : "f32";
    const ceiling = (peak === "int8" ? roof.int8Gops : roof.f32Gflops) * 1e9;
    const bound = Math.max(k.flops / ceiling, k.bytes / (roof.readGbs * 1e9));
    const phaseSeconds = phases.find((p) => p.phase === k.phase)!.kernelSeconds;
    return {
      ...k, share: k.seconds / phaseSeconds, gflops: k.flops / k.seconds / 1e9, gbs: k.bytes / k.seconds / 1e9,
      intensity: k.bytes ? k.flops / k.bytes : 0, peak, rooflineFraction: bound / k.seconds,
    };
  });
}

export const profileCommand = command({
  summary: "time each kernel of a causal LM (prefill, then decode steps) against this machine's measured roofline",
  positional: { arg: "ARTIFACT", help: "artifact folder compiled with --profile" },
  options: {
    "prompt-tokens": { kind: int({ min: 1 }), arg: "N", default: "128", help: "tokens of the profiled prefill" },
    "decode-steps": { kind: int({ min: 0 }), arg: "N", default: "32", help: "one-token steps profiled after it" },
    json: { kind: "flag", help: "print {machine, roofline, phases, kernels} as JSON" },
    svg: { kind: path, arg: "FILE", help: "also write an SVG chart: time shares and the roofline plot" },
  },
  async run(artifact, a, io) {
    const recorder = new ProfileRecorder();
    const model = await loadArtifact(artifact, { module: "profile", imports: recorder.imports });
    let result, roof: Roofline;
    try {
      if (a["prompt-tokens"] + a["decode-steps"] > model.manifest.context)
        throw optionError(`--prompt-tokens ${a["prompt-tokens"]} and --decode-steps ${a["decode-steps"]} need ${a["prompt-tokens"] + a["decode-steps"]} positions; the artifact's context is ${model.manifest.context}`);
      io.stderr.write("profile: timing the kernels\n");
      result = profileModel(model, recorder, { promptTokens: a["prompt-tokens"], decodeSteps: a["decode-steps"] });
      io.stderr.write("profile: measuring the roofline\n");
      const { weights_offset, weights_bytes } = model.manifest.memory;
      roof = { f32Gflops: await peakMaddGflops(), int8Gops: await peakDotGops(), readGbs: await readBandwidth(model.memory, weights_offset, weights_bytes) };
    } finally {
      model.dispose();
    }
    const kernels = placeKernels(result.kernels, result.phases, roof);
    const machine = { cpu: cpus()[0]?.model?.trim() ?? "unknown CPU", host: `Node ${process.versions.node}`, module: model.manifest.profile!.file };
    if (a.svg) writeFileSync(a.svg, profileSvg(kernels, roof, model.manifest.model));
    if (a.json) return void io.stdout.write(JSON.stringify({ machine, roofline: roof, phases: result.phases, kernels }, null, 2) + "\n");
    const f = (x: number, d = 1) => x.toFixed(d);
    let out = `${machine.cpu}, ${machine.host}; roofline: f32 ${f(roof.f32Gflops)} GFLOP/s, int8 ${f(roof.int8Gops)} GOP/s, read ${f(roof.readGbs)} GB/s over the weights\n`;
    for (const p of result.phases) {
      out += `\n${p.phase}: ${p.steps} call${p.steps > 1 ? "s" : ""} of ${p.rows} row${p.rows > 1 ? "s" : ""}, ${f(p.seconds * 1e3, 2)} ms; kernels ${f(p.kernelSeconds * 1e3, 2)} ms (${f((100 * p.kernelSeconds) / p.seconds)}%)\n`;
      out += `  ${"kernel".padEnd(36)} ${"calls".padStart(6)} ${"µs/call".padStart(9)} ${"share".padStart(6)} ${"GFLOP/s".padStart(8)} ${"GB/s".padStart(7)} ${"roofline".padStart(8)}\n`;
      for (const k of kernels.filter((x) => x.phase === p.phase))
        out += `  ${(k.label + (k.integer ? " (int)" : "")).padEnd(36)} ${String(k.calls).padStart(6)} ${f((k.seconds / k.calls) * 1e6).padStart(9)} ${`${f(100 * k.share)}%`.padStart(6)} ${f(k.gflops).padStart(8)} ${f(k.gbs).padStart(7)} ${f(k.rooflineFraction, 2).padStart(8)}\n`;
    }
    io.stdout.write(out);
  },
});

/** A standalone SVG: each phase's time shares as bars, and the kernels on a log-log roofline plot. */
export function profileSvg(kernels: KernelRow[], roof: Roofline, model: string): string {
  const W = 980, H = 460, esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="10" y="18" font-size="14">${esc(model)}: kernel time shares and the roofline</text>`);
  // bars: the top kernels of each phase
  let y = 40;
  for (const phase of ["prefill", "decode"] as const) {
    const rows = kernels.filter((k) => k.phase === phase).slice(0, 8);
    parts.push(`<text x="10" y="${y}" font-weight="bold">${phase}</text>`);
    y += 6;
    for (const k of rows) {
      parts.push(`<rect x="10" y="${y}" width="${Math.max(1, 200 * k.share)}" height="12" fill="${k.kind === "weights" ? "#4878d0" : k.kind === "attention" ? "#ee854a" : "#6acc64"}"/>`);
      parts.push(`<text x="${215}" y="${y + 10}">${esc(k.label)} ${(100 * k.share).toFixed(1)}%</text>`);
      y += 16;
    }
    y += 14;
  }
  // roofline: intensity (flops/byte) against GFLOP/s, both log10
  const x0 = 520, y0 = 420, w = 430, h = 370;
  const [ilo, ihi, glo, ghi] = [-2, 3, -1, Math.log10(Math.max(roof.f32Gflops, roof.int8Gops) * 2)];
  const px = (i: number) => x0 + ((Math.log10(i) - ilo) / (ihi - ilo)) * w;
  const py = (g: number) => y0 - ((Math.log10(Math.max(g, 10 ** glo)) - glo) / (ghi - glo)) * h;
  parts.push(`<rect x="${x0}" y="${y0 - h}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  for (let e = ilo; e <= ihi; e++) parts.push(`<text x="${px(10 ** e) - 8}" y="${y0 + 14}">1e${e}</text>`);
  for (let e = Math.ceil(glo); e <= ghi; e++) parts.push(`<text x="${x0 - 34}" y="${py(10 ** e) + 4}">1e${e}</text>`);
  parts.push(`<text x="${x0 + w / 2 - 60}" y="${y0 + 30}">flops per byte (log)</text>`, `<text x="${x0 - 40}" y="${y0 - h - 8}">GFLOP/s (log)</text>`);
  for (const [peak, color, name] of [[roof.f32Gflops, "#4878d0", "f32"], [roof.int8Gops, "#d65f5f", "int8"]] as const) {
    const knee = peak / roof.readGbs;
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${px(10 ** ilo)},${py(10 ** ilo * roof.readGbs)} ${px(knee)},${py(peak)} ${px(10 ** ihi)},${py(peak)}"/>`);
    parts.push(`<text x="${px(10 ** ihi) - 90}" y="${py(peak) - 4}" fill="${color}">${name} ${peak.toFixed(0)} GFLOP/s</text>`);
  }
  parts.push(`<text x="${px(10 ** ilo) + 4}" y="${py(10 ** ilo * roof.readGbs) - 6}" fill="#555">read ${roof.readGbs.toFixed(1)} GB/s</text>`);
  for (const k of kernels.filter((x) => x.flops > 0 && x.bytes > 0)) {
    const r = 2 + 10 * Math.sqrt(k.share);
    parts.push(`<circle cx="${px(Math.min(Math.max(k.intensity, 10 ** ilo), 10 ** ihi))}" cy="${py(k.gflops)}" r="${r.toFixed(1)}" fill="${k.phase === "prefill" ? "#4878d0" : "#ee854a"}" fill-opacity="0.5"><title>${esc(`${k.phase} ${k.label}: ${k.gflops.toFixed(1)} GFLOP/s, ${k.gbs.toFixed(1)} GB/s, ${(100 * k.share).toFixed(1)}%`)}</title></circle>`);
  }
  parts.push(`<text x="${x0}" y="${y0 - h + 14}" fill="#4878d0">● prefill</text>`, `<text x="${x0 + 70}" y="${y0 - h + 14}" fill="#ee854a">● decode</text>`);
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
