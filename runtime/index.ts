// wasmformer/runtime: load a compiled artifact and run it, in Node or a browser.

export { Model, ArtifactError, type ArtifactFiles, type LoadOptions, type RunInputs, type Ids } from "./model.js";
export { browserThreads, hasThreads, type ThreadHost } from "./threads.js";
export { generate, argmax, type GenerateOptions, type GenerateResult } from "./generate.js";
export { meanNll, type NllOptions, type NllResult } from "./eval.js";
export { ARTIFACT_CODES, type ArtifactCode } from "./errors.js";
export { validateManifest } from "./validate.js";
export { MANIFEST_VERSION, type Manifest, type ManifestEntry, type ManifestInput, type ManifestOutput } from "./manifest.js";
export { encodeNpy, decodeNpy } from "./npy.js";
export { hasRelaxedSimd, pickVariant, type WasmVariant } from "./features.js";
