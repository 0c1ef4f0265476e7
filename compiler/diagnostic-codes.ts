// Stable codes of the compiler's diagnostics, by area. A code never changes meaning once
// released; docs/diagnostics.md explains each with an example. Ranges:
//   WF1xx  lexing and parsing of .wf files
//   WF2xx  names, types and structure of a model (static checks, elaboration)
//   WF3xx  config values (config.json, GGUF metadata)
//   WF4xx  checkpoints: safetensors, GGUF, tensors
//   WF5xx  artifacts (manifest.json, model.wasm, weights.bin); the runtime's own errors
//   WF6xx  command-line options and output paths

import { ARTIFACT_CODES } from "@wasmformer/runtime/errors";

export const codes = {
  // ---- WF1xx: lexing and parsing ----------------------------------------------------------
  WF101: "unexpected character",
  WF102: "syntax error",
  WF103: "invalid escape in a string",
  WF104: "control character in a string",
  WF105: "unterminated string",
  WF106: "nesting too deep",
  WF107: "model file too large",

  // ---- WF2xx: names, types and structure --------------------------------------------------
  WF201: "unknown name",
  WF202: "unknown function",
  WF203: "wrong arguments to a call",
  WF204: "value of the wrong kind",
  WF205: "recursive block",
  WF206: "assignment to an undeclared name",
  WF207: "name declared twice",
  WF208: "invalid model structure",
  WF209: "shapes an operation does not accept",
  WF210: "value out of range",
  WF211: "loop runs too many times",
  WF212: "elaboration too long",
  WF213: "graph or tensor too large",

  // ---- WF3xx: config values ---------------------------------------------------------------
  WF301: "missing config field",
  WF302: "config value of the wrong type",
  WF303: "config value out of range",
  WF304: "config requirement not met",
  WF305: "tensor shape differs from the config's",
  WF306: "config.json is not a JSON object",
  WF307: "model too large for a 32-bit WebAssembly memory",
  WF350: "special token id outside the vocabulary",
  WF351: "unusable tokenizer_config.json or chat template",
  WF352: "unusable generation_config.json",
  WF353: "unknown problem_type of a classifier",
  WF354: "unusable preprocessor_config.json",

  // ---- WF4xx: checkpoints -----------------------------------------------------------------
  WF401: "missing tensor",
  WF402: "checkpoint not found",
  WF403: "malformed checkpoint header",
  WF404: "unknown tensor type",
  WF405: "tensor shape and size disagree",
  WF406: "tensor data out of place",
  WF407: "invalid shard index",
  WF408: "invalid GGUF metadata",
  WF409: "unsupported tensor type",
  WF410: "unusable LoRA adapter",

  // ---- WF5xx: artifacts (the runtime's own list: it imports nothing of the compiler) ------
  ...ARTIFACT_CODES,

  // ---- WF6xx: options and output paths ----------------------------------------------------
  WF601: "invalid option",
  WF602: "output path exists and is not of the kind written",
  WF603: "output path never replaced",
  WF604: "malformed command line",
  WF605: "file system error",
  WF606: "not exportable to ONNX",
} as const;

export type Code = keyof typeof codes;
