// LoRA adapters in the compiler: merged into the checkpoint's weights before anything else reads
// them (compile --lora DIR[=SCALE]), or compiled as run-time slots (compile --lora-slots
// RANK[:MODULES], compiler/passes/lora-slots.ts) whose place in memory the manifest records.

import type { Graph, Program } from "../ir/types.js";
import { isOp, roles } from "../ir/ops.js";
import { type LoraAdapter, LoraError, matchModule } from "@wasmformer/runtime/lora";
import type { LoraLayout } from "@wasmformer/runtime/manifest";
import type { CompiledArtifact } from "./codegen/emit.js";
import { GROUP, linearPanels, packLinearWeight } from "./codegen/linear/layout.js";
import { InputError } from "./diagnostics.js";
import { type LoraSlotOptions, SLOT_PREFIX, loraSlots } from "./passes/lora-slots.js";
import type { Pass } from "./passes/manager.js";
import type { WeightSource } from "./weights/source.js";

/**
 * `source` with each adapter folded in: W + s·B·A for every adapted module's `<module>.weight`
 * ((B·A)ᵀ added where the adapter says fan_in_fan_out: GPT-2's Conv1D stores W as [in, out]).
 * Every module is checked against the checkpoint first (present, a matrix of the adapter's
 * in/out); a mismatch is a LoraError naming the adapter's tensor.
 */
export function mergeAdapters(source: WeightSource, adapters: readonly LoraAdapter[]): WeightSource {
  const modules = new Map(source.names().filter((n) => n.endsWith(".weight")).map((n) => [n.slice(0, -".weight".length), n]));
  const deltas = new Map<string, { adapter: LoraAdapter; m: LoraAdapter["modules"][number] }[]>();
  for (const adapter of adapters)
    for (const m of adapter.modules) {
      const key = matchModule(m.module, modules.keys());
      if (key === undefined) throw new LoraError(`${adapter.source}: tensor '${m.aName}' targets '${m.module}', and the checkpoint has no '${m.module}.weight'`);
      const name = modules.get(key)!;
      const shape = source.info(name)!.shape;
      const want = adapter.fanInFanOut ? [m.in, m.out] : [m.out, m.in];
      if (shape.length !== 2 || shape[0] !== want[0] || shape[1] !== want[1])
        throw new LoraError(
          `${adapter.source}: tensors '${m.aName}' [${m.r}, ${m.in}] and '${m.bName}' [${m.out}, ${m.r}] make a [${want.join(", ")}] update${adapter.fanInFanOut ? " (fan_in_fan_out)" : ""}, but '${name}' is [${shape.join(", ")}]`,
        );
      deltas.set(name, [...(deltas.get(name) ?? []), { adapter, m }]);
    }
  return {
    description: `${source.description} with ${adapters.length === 1 ? "a LoRA adapter" : `${adapters.length} LoRA adapters`} merged`,
    names: () => source.names(),
    info: (name) => source.info(name),
    read(name) {
      const base = source.read(name);
      const ds = deltas.get(name);
      if (!ds) return base;
      const w = Float32Array.from(base);
      const cols = source.info(name)!.shape[1];
      for (const { adapter, m } of ds) {
        const { r, a, b, scale } = m;
        for (let o = 0; o < m.out; o++)
          for (let i = 0; i < m.in; i++) {
            let s = 0;
            for (let j = 0; j < r; j++) s += b[o * r + j] * a[j * m.in + i];
            const at = adapter.fanInFanOut ? i * cols + o : o * cols + i;
            w[at] += scale * s;
          }
      }
      return w;
    },
  };
}

/**
 * The pipeline with lora-slots after fold-transpose (the linears are canonical, the fusion
 * passes still ahead). fuse-norm is left out: it would fold a norm's gain into the zero A
 * matrices the runtime later overwrites with the adapter's own.
 */
export function withLoraSlots(pipeline: readonly Pass[], slots: LoraSlotOptions | undefined): readonly Pass[] {
  if (!slots) return pipeline;
  const kept = pipeline.filter((p) => p.name !== "fuse-norm");
  const at = kept.findIndex((p) => p.name === "fold-transpose") + 1;
  return [...kept.slice(0, at), { name: "lora-slots", run: (p: Program) => loraSlots(p, slots) }, ...kept.slice(at)];
}

/**
 * Where the compiled artifact keeps each slot matrix, for the manifest: its address, pointer
 * cell, shape and packed layout, and which module's rows it holds (fuse-qkv stacks sibling A
 * matrices as `cat(a, b, c)`). A slot matrix must be read by linear kernels only (packed, no
 * second copy), and stacked with slot matrices only (a cell moves the whole parameter).
 */
export function loraLayout(p: Program, art: CompiledArtifact, rank: number): LoraLayout {
  const params: LoraLayout["params"] = [];
  const where = new Map<string, { g: Graph; id: number }>();
  for (const g of p.graphs)
    for (const u of g.nodes) {
      if (isOp(u, "param") && u.attrs.swappable && !where.has(u.attrs.name)) where.set(u.attrs.name, { g, id: u.id });
      u.args.forEach((a, i) => {
        const src = g.nodes[a];
        if (isOp(src, "param") && src.attrs.swappable && !(isOp(u, "linear") && roles(u)[i] === "weight"))
          throw new Error(`internal: LoRA slot ${src.attrs.name} is read by ${u.op} as ${roles(u)[i]}`);
      });
    }
  const slotRe = new RegExp(`^${SLOT_PREFIX.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(.+)\\.(A|B)$`);
  for (const [name, { g, id }] of where) {
    const param = p.params.get(name)!;
    if (param.quant) throw new Error(`internal: LoRA slot ${name} was quantized`);
    const [rows, cols] = param.shape;
    const members = name.startsWith("cat(") && name.endsWith(")") ? name.slice(4, -1).split(", ") : [name];
    let row = 0;
    const parts: LoraLayout["params"][number]["parts"] = [];
    for (const member of members) {
      const m = slotRe.exec(member);
      if (!m) throw new Error(`internal: LoRA slot parameter ${name} stacks ${member}, not a slot matrix`);
      const size = m[2] === "A" ? rank : rows;
      parts.push({ module: m[1], role: m[2] as "A" | "B", row, rows: size });
      row += size;
    }
    if (row !== rows) throw new Error(`internal: LoRA slot parameter ${name} has ${rows} rows, its parts ${row}`);
    const at = art.buffers.get(g.name)?.get(id), cell = art.cells.get(name);
    if (at === undefined || cell === undefined) throw new Error(`internal: no address or cell for LoRA slot ${name}`);
    const panels = linearPanels(rows, cols).map((q): [number, number, number] => [q.k0, q.size, q.at]);
    params.push({ name, at, cell, rows, cols, floats: packLinearWeight(new Float32Array(rows * cols), rows, cols).length, panels, parts });
  }
  if (params.length === 0) throw new InputError("--lora-slots matched no linear of the model (give module names such as q_proj,v_proj or c_attn)", undefined, { code: "WF601" });
  return { rank, group: GROUP, params };
}
