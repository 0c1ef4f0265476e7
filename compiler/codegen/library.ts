// The kernel library's functions (compiler/codegen/kernels/kernels.ts) that generated code
// calls: each one's parameters by name, in order, with their wasm types (usize is i32). Calls
// name their arguments (WasmModule.callLib), and every module checks this table against the
// library it loads, so a kernel whose signature changed fails at once by name.

type P = "i32" | "f32";

export const LIBRARY = {
  embedding: { table: "i32", ids: "i32", out: "i32", rows: "i32", D: "i32" },
  embedding_packed: { table: "i32", ids: "i32", out: "i32", rows: "i32", D: "i32", panel: "i32", stride: "i32" },
  embedding_q: { table: "i32", ids: "i32", out: "i32", rows: "i32", D: "i32", scheme: "i32" },
  quantize_rows_q8: { x: "i32", out: "i32", rows: "i32", K: "i32" },
  positions: { out: "i32", rows: "i32", past: "i32" },
  add: { a: "i32", b: "i32", out: "i32", n: "i32", bn: "i32" },
  mul: { a: "i32", b: "i32", out: "i32", n: "i32", bn: "i32" },
  scale: { a: "i32", out: "i32", n: "i32", c: "f32" },
  layernorm: { x: "i32", g: "i32", b: "i32", out: "i32", rows: "i32", D: "i32", eps: "f32" },
  rmsnorm: { x: "i32", g: "i32", out: "i32", rows: "i32", D: "i32", eps: "f32" },
  row_rms_inv: { x: "i32", out: "i32", rows: "i32", D: "i32", eps: "f32" },
  row_mean_inv: { x: "i32", out: "i32", rows: "i32", D: "i32", eps: "f32" },
  gelu: { x: "i32", out: "i32", n: "i32" },
  gelu_tanh: { x: "i32", out: "i32", n: "i32" },
  silu: { x: "i32", out: "i32", n: "i32" },
  relu: { x: "i32", out: "i32", n: "i32" },
  softmax: { x: "i32", out: "i32", rows: "i32", D: "i32" },
  slice: { x: "i32", out: "i32", rows: "i32", D: "i32", start: "i32", size: "i32" },
  transpose_rows: { x: "i32", out: "i32", rows: "i32", A: "i32", B: "i32" },
  rope: { x: "i32", out: "i32", rows: "i32", D: "i32", hd: "i32", past: "i32", table: "i32" },
  attention: {
    q: "i32", k: "i32", v: "i32", out: "i32", rows: "i32", L: "i32", q0: "i32",
    H: "i32", Hkv: "i32", dk: "i32", dv: "i32", scale: "f32", causal: "i32", window: "i32", cap: "f32",
    table: "i32", buckets: "i32", range: "i32", mask: "i32", h0: "i32", h1: "i32",
  },
  attention_part: {
    q: "i32", k: "i32", v: "i32", part: "i32", L: "i32", first: "i32",
    H: "i32", Hkv: "i32", dk: "i32", dv: "i32", scale: "f32", cap: "f32",
    table: "i32", buckets: "i32", range: "i32", mask: "i32", u0: "i32", u1: "i32", units: "i32",
  },
  attention_part_bf16: {
    q: "i32", k: "i32", v: "i32", part: "i32", L: "i32", first: "i32",
    H: "i32", Hkv: "i32", dk: "i32", dv: "i32", scale: "f32", mask: "i32", u0: "i32", u1: "i32", units: "i32",
  },
  attention_merge: { part: "i32", out: "i32", H: "i32", dv: "i32", keys: "i32", units: "i32" },
} as const satisfies Record<string, Record<string, P>>;

/** The library's scalar activations, f32 → f32 (the epilogues call them lane by lane). */
export const SCALAR_ACTIVATIONS = ["act_gelu", "act_gelu_tanh", "act_silu"] as const;

export type LibKernel = keyof typeof LIBRARY;
export type ScalarActivation = (typeof SCALAR_ACTIVATIONS)[number];
/** A call's arguments, by parameter name. */
export type LibArgs<K extends LibKernel, E> = { [A in keyof (typeof LIBRARY)[K]]: E };
