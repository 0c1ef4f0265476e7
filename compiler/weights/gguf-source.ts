// A .gguf file as a weight source: the reader (gguf.ts) plus the architecture's mapping to
// Hugging Face names and layouts (gguf-arch.ts), so a .wf file binds either kind of checkpoint.

import { InputError } from "../diagnostics.js";
import { GGML_TYPES, READABLE_TYPES, dequantize } from "./ggml-quants.js";
import { ggufArch } from "./gguf-arch.js";
import { type GgufTensor, readGgufHeader } from "./gguf.js";
import { type TensorInfo, type WeightSource, checkpointFileSize, quoted } from "./source.js";

/**
 * Opens a .gguf checkpoint as a weight source. For a mapped architecture (gguf-arch.ts: llama,
 * qwen2, qwen3, gemma, gemma2, phi3, gpt2) tensors appear under their Hugging Face names and
 * layouts, so a .wf file binds them as it binds a safetensors checkpoint; other tensors (rope
 * factor tensors among them) keep their GGUF names (shape in row-major order).
 */
export function openGguf(path: string): WeightSource {
  // the header now, each tensor's bytes when it is read: a file of any size, never read whole
  checkpointFileSize(path);
  const h = readGgufHeader(path);
  const arch = ggufArch(h);
  const entries = new Map<string, { tensor: GgufTensor; info: TensorInfo; toHf: (w: Float32Array) => Float32Array }>();
  for (const t of h.tensors.values()) {
    const m = arch?.toHf(t);
    const name = m?.name ?? t.name;
    entries.set(name, {
      tensor: t,
      info: { dtype: GGML_TYPES[t.type].name, shape: m?.shape ?? [...t.dims].reverse(), file: h.file },
      toHf: m?.convert ?? ((w) => w),
    });
  }
  return {
    description: path,
    names: () => [...entries.keys()],
    info: (n) => entries.get(n)?.info,
    read: (n) => {
      const e = entries.get(n)!;
      const t = e.tensor;
      const w = dequantize(t.type, h.data(t), t.elements);
      if (!w) throw new InputError(`${h.file}: tensor ${quoted(t.name)} has type ${e.info.dtype}, which wasmformer cannot read (it reads ${READABLE_TYPES.join(", ")})`, undefined, { code: "WF409" });
      return e.toHf(w);
    },
  };
}
