// wasmformer/runtime: load a compiled artifact and run it, in Node or a browser.

export { Model, ArtifactError, type ArtifactFiles, type LoadOptions, type RunInputs, type Ids } from "./model.js";
export { browserThreads, hasThreads, type ThreadHost } from "./threads.js";
export { generate, stream, argmax, type GenerateOptions, type GenerateResult, type GenerateChunk, type StopReason } from "./generate.js";
export { Sampler, checkSampling, type SamplingOptions } from "./sampling.js";
export { lookupDraft, MAX_DRAFT_TOKENS, type SpeculativeOptions } from "./speculative.js";
export { TextStream, StopMatcher } from "./detokenize.js";
export { loadTokenizer, type TextTokenizer } from "./tokenizer.js";
export { applyChatTemplate, chatIds, chatTemplate, checkMessages, type ChatMessage, type ChatTemplateOptions } from "./chat.js";
export { fetchArtifactText } from "./fetch.js";
export { classify, embed, labelScores, type Classification, type EmbedOptions, type Pooling } from "./embed.js";
export { answer, answers, classifyTokens, fillMask, groupEntities, type Answer, type AnswerOptions, type Entity, type MaskFill, type TokenTag } from "./heads.js";
export { classifyImage, imagePixels, resizeRgb, toRgb, type RawImage } from "./image.js";
export { klDivergence, meanNll, type KlResult, type NllOptions, type NllResult } from "./eval.js";
export { ARTIFACT_CODES, type ArtifactCode } from "./errors.js";
export { validateManifest } from "./validate.js";
export { MANIFEST_VERSION, MAX_SHARDS, MAX_SHARD_BYTES, type ImagePreprocessing, type Manifest, type ManifestEntry, type ManifestInput, type ManifestOutput, type ProfileSite, type WeightShard } from "./manifest.js";
export { encodeNpy, decodeNpy } from "./npy.js";
export { LoraError, LoraSlots, parseAdapter, type LoraAdapter, type LoraModule } from "./lora.js";
export { hasRelaxedSimd, pickVariant, type WasmVariant } from "./features.js";
export { loadArtifactFromUrl, fetchArtifactTokenizer, shardCacheKey, WEIGHTS_CACHE, type LoadProgress, type UrlLoadOptions, type WeightsCache, type WeightsCacheStorage } from "./web.js";
export { benchModel, meanSd, type BenchOptions, type BenchResult } from "./bench.js";
export { ProfileRecorder, profileModel, type KernelTime, type PhaseTime, type ProfileResult } from "./profile.js";
