// wasmformer's compiler API: the pipeline stages, for tools that drive them directly.

export { compileModel, type CompileOptions, type CompileResult } from "./compile.js";
export { loadProgram, programFromSource, readHfConfig, openWeights } from "./load.js";
export { runPipeline, passes, selectPasses, withKvCache, withQuantization, type Pass } from "./passes/manager.js";
export { generate as generateArtifact, type CompiledArtifact } from "./codegen/emit.js";
export { memoryWeights } from "./weights/memory.js";
export { openSafetensors } from "./weights/safetensors.js";
export { openGguf } from "./weights/gguf-source.js";
export { writeGguf, type GgufFileType, type WriteGgufOptions } from "./export/gguf.js";
export { Diagnostic, DiagnosticList, formatDiagnostic } from "./diagnostics.js";
export { exportOnnx, OnnxExportError, type OnnxExportOptions } from "./export/onnx.js";
