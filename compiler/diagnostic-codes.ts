// Stable codes of the compiler's diagnostics, by area. A code never changes meaning once
// released; docs/diagnostics.md explains each with an example. Ranges:
//   WF1xx  lexing and parsing of .wf files
//   WF2xx  names, types and structure of a model (static checks, elaboration)
//   WF3xx  config values (config.json, GGUF metadata)
//   WF4xx  checkpoints: safetensors, GGUF, tensors
//   WF5xx  artifacts (manifest.json, model.wasm, weights.bin); the runtime's own errors
//   WF6xx  command-line options and output paths

export const codes = {
  // ---- WF1xx: lexing and parsing ----------------------------------------------------------
  WF101: "unexpected character",
  WF102: "syntax error",

  // ---- WF2xx: names, types and structure --------------------------------------------------
  WF201: "unknown name",

  // ---- WF3xx: config values ---------------------------------------------------------------
  WF301: "missing config field",

  // ---- WF4xx: checkpoints -----------------------------------------------------------------
  WF401: "missing tensor",

  // ---- WF5xx: artifacts -------------------------------------------------------------------
  WF501: "invalid artifact",

  // ---- WF6xx: options and output paths ----------------------------------------------------
  WF601: "invalid option",
  WF602: "output path exists and is not of the kind written",
  WF603: "output path never replaced",
  WF604: "malformed command line",
  WF605: "file system error",
  WF606: "not exportable to ONNX",
} as const;

export type Code = keyof typeof codes;
