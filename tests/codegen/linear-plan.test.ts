// LinearPlan: the paths, panels and names the linear kernel generator decides before emitting
// code, and the register allocator's numbering.

import { describe, expect, it } from "vitest";
import { ALL_ROWS, planLinear } from "../../compiler/codegen/linear/plan.js";
import { Locals, linearRegisters } from "../../compiler/codegen/linear/registers.js";
import { f32, i32, v128 } from "../../compiler/codegen/wasm.js";

const plain = { bias: true, residual: false };
const scratch = { xq: 64, dq: 128 };

describe("planLinear", () => {
  it("f32, K > 512: panels; single rows in pairs of groups; few rows panel by panel", () => {
    const p = planLinear({ K: 520, N: 23, epilogue: plain });
    expect(p.panels.map((x) => [x.k0, x.size])).toEqual([[0, 264], [264, 256]]);
    expect([p.full, p.part, p.paired, p.streamed]).toEqual([5, 3, true, true]);
    expect(p.name).toBe("linear_k520_n23_bias");
  });
  it("f32 with a K % 4 tail or one group: neither paired nor streamed", () => {
    expect(planLinear({ K: 13, N: 36, epilogue: plain })).toMatchObject({ K4: 12, Kt: 1, paired: false, streamed: false });
    expect(planLinear({ K: 64, N: 7, epilogue: plain })).toMatchObject({ full: 1, paired: false, streamed: false });
    expect(planLinear({ K: 64, N: 8, epilogue: plain })).toMatchObject({ paired: true, streamed: true });
  });
  it("quantized: one panel read whole; the name marks a row bound other than the tuned one", () => {
    const q = planLinear({ K: 1056, N: 6, epilogue: plain, quant: "q8_0", scratch, intRows: 16 });
    expect([q.panels.length, q.paired, q.streamed, q.groupBytes]).toEqual([1, false, false, 33 * (8 + 4 * 32)]);
    expect(q.name).toBe("linear_k1056_n6_q8_0_bias");
    expect(planLinear({ K: 64, N: 6, epilogue: plain, quant: "q8_0", scratch, intRows: ALL_ROWS }).name).toBe("linear_k64_n6_q8_0_bias");
    expect(planLinear({ K: 64, N: 6, epilogue: plain, quant: "q8_0", scratch, intRows: 16 }).name).toBe("linear_k64_n6_q8_0_i16_bias");
    expect(planLinear({ K: 64, N: 6, epilogue: { ...plain, act: "silu", residual: true }, quant: "q4_1", scratch, intRows: 3 }).name).toBe("linear_k64_n6_q4_1_bias_silu_res");
  });
  it("refuses plans no kernel can run", () => {
    expect(() => planLinear({ K: 48, N: 4, epilogue: plain, quant: "q8_0", scratch })).toThrow("q8_0 needs K a multiple of 32, got 48");
    expect(() => planLinear({ K: 64, N: 4, epilogue: plain, quant: "q4_0" })).toThrow("scratch");
    expect(() => planLinear({ K: 528, N: 4, epilogue: { bias: false, residual: false, gated: true, act: "silu" } })).toThrow("gate sums");
    expect(() => planLinear({ K: 64, N: 4, epilogue: { bias: false, residual: false, ln: true, normAt: 0 } })).toThrow("LayerNorm");
  });
});

describe("Locals", () => {
  it("numbers parameters, then locals, consecutively, and keeps their types in order", () => {
    const l = new Locals();
    expect([l.param(i32), l.param(i32)]).toEqual([0, 1]);
    expect([l.local(v128, 3), l.local(f32), l.local(i32, 2)]).toEqual([2, 5, 6]);
    expect(l.vars).toEqual([v128, v128, v128, f32, i32, i32]);
    expect(() => l.param(i32)).toThrow("parameters come before locals");
  });
  it("a linear kernel's registers: 9 i32 parameters, locals in the order the kernels were written for", () => {
    const { regs, locals } = linearRegisters();
    expect(locals.params).toEqual(Array(9).fill(i32));
    expect([regs.TID, regs.R, regs.XV, regs.ACC, regs.WQ, regs.PWB, regs.XSF, regs.DOT, regs.GATE, regs.NG]).toEqual([8, 9, 16, 19, 28, 32, 33, 39, 49, 56]);
  });
});
