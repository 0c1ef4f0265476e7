// A weight source over tensors already in memory (tests, benchmarks, converters).

import type { WeightSource } from "./source.js";

export function memoryWeights(tensors: Record<string, { shape: readonly number[]; data: Float32Array }>, description = "in-memory weights"): WeightSource {
  return {
    description,
    names: () => Object.keys(tensors),
    info: (n) => (tensors[n] ? { dtype: "F32", shape: tensors[n].shape, file: description } : undefined),
    read: (n) => tensors[n].data,
  };
}
