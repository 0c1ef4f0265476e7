// Shape-specialised SIMD128 matrix kernels: y[rows, N] = x[rows, K] · w[N, K]ᵀ with fused
// epilogues, over f32 or block-quantized weights (docs/kernels.md). K and N are compile-time
// constants: every loop bound but `rows` is constant, tails are unrolled, row offsets are load
// immediates.

export { MAX_THREADS, type Panel, dequantBytes, gateSumsBytes, linearPanels, linearUnits, packLinearWeight, packQuantWeight, packedLinearFloats, packedQuantBytes, panelStride, quantRowBytes } from "./layout.js";
export { type LinearEpilogue, type LinearPlan, type LinearSpec, type QuantScratch, integerRows, planLinear } from "./plan.js";
export { linearKernel } from "./kernel.js";
