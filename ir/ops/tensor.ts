// Leaves (inputs, parameters), lookups and ops that move values without arithmetic.

import { bool, dims, int, ints, oneOf, optional, string } from "../attrs.js";
import { type InputKind, QUANT_SCHEMES, formatType, rowWidth } from "../types.js";
import { type OpDef, defineOp, expect, expectF32, expectSequences, f32, lastDim, sequenceOf } from "./def.js";

const INPUT_KINDS = ["tokens", "segments", "padding", "state", "image", "sequences"] as const satisfies readonly InputKind[];
const rowsOf = (v: ArrayLike<number>, width: number) => v.length / width;

/** Rows from..from+rows-1 of the sinusoidal table of width dim: angles, sin and cos in f64, then rounded to f32, as transformers builds it. */
export function sinusoidTable(from: number, rows: number, dim: number): Float32Array {
  const sinCols = Math.ceil(dim / 2);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < dim; j++) {
      // sin columns take the even angle columns 2j, cos columns the odd ones 2k + 1: both of exponent 2k/dim
      const k = j < sinCols ? j : j - sinCols;
      const angle = (from + r) / Math.pow(10000, (2 * k) / dim);
      out[r * dim + j] = j < sinCols ? Math.sin(angle) : Math.cos(angle);
    }
  return out;
}

export const tensorOps = {
  /** An entry's input, fed per call (attr kind says how, see InputKind). */
  input: defineOp({
    attrs: { name: string, kind: oneOf(INPUT_KINDS), dtype: oneOf(["f32", "i32"]), shape: dims },
    arity: 0,
    roles: [],
    traits: [],
    infer: (_, a) => ({ dtype: a.dtype, shape: a.shape }),
    interp: (_, a, _n, _t, st) => st.inputs(a.name),
  }),
  /**
   * A parameter of the program (attr quant: stored quantized in that scheme, see quantize-weights).
   * swappable: a matrix the runtime replaces after loading (a LoRA slot, lora-slots): it stays f32,
   * is never stacked with fixed parameters, and kernels read its address from a pointer cell.
   */
  param: defineOp({
    attrs: { name: string, shape: ints, quant: optional(oneOf(QUANT_SCHEMES)), swappable: optional(bool) },
    arity: 0,
    roles: [],
    traits: ["pure"],
    infer: (_, a) => f32(a.shape),
    interp: (_, a, _n, _t, st) => st.params(a.name),
  }),
  /**
   * Absolute positions past..past+rows-1 of the rows of x; with padding_idx (x: the token ids),
   * RoBERTa's: padding_idx for an id equal to it, else padding_idx + past + the count of such
   * non-padding ids up to and including this row (HF create_position_ids_from_input_ids).
   * offset: added to every plain position (BART's learned table keeps its first 2 rows unused).
   * sequences (operand, pack-sequences): rows of several sequences, each counted from its own
   * first row (past is 0: packed calls have no cache).
   */
  positions: defineOp({
    attrs: { padding_idx: optional(int), offset: optional(int), sequences: optional(bool) },
    arity: [1, 2],
    roles: (a) => (a.sequences ? ["activation", "sequences"] : ["activation"]),
    traits: [],
    infer: ([x, seq], a) => {
      if (a.sequences) expectSequences(seq, x.shape[0], "positions");
      if (a.padding_idx !== undefined) {
        expect(a.padding_idx >= 0, `positions: padding_idx must be at least 0, got ${a.padding_idx}`);
        expect(x.dtype === "i32" && x.shape.length === 1, `positions with padding_idx take the token ids i32[rows], got ${formatType(x)}`);
      }
      if (a.offset !== undefined) expect(a.offset >= 1 && a.padding_idx === undefined, `positions: offset must be at least 1, without padding_idx, got ${a.offset}`);
      return { dtype: "i32", shape: [x.shape[0]] };
    },
    interp: ([x, seq], a, _n, [t], st) => {
      const rows = t.shape.length === 1 ? x.length : rowsOf(x, rowWidth(t.shape));
      const first = (i: number) => sequenceOf(seq, i, rows)[0];
      const pad = a.padding_idx;
      if (pad === undefined) return Int32Array.from({ length: rows }, (_, i) => st.past + i - first(i) + (a.offset ?? 0));
      let seen = 0;
      return Int32Array.from(x, (id, i) => {
        if (i === first(i)) seen = 0;
        return id === pad ? pad : pad + st.past + ++seen;
      });
    },
  }),
  /**
   * Sinusoidal position embeddings [rows, dim] of positions past..past+rows-1 (Marian's table):
   * column j < ⌈dim/2⌉ is sin(p / 10000^(2j/dim)), column ⌈dim/2⌉ + j is cos(p / 10000^(2j/dim)).
   * sequences (operand): each row's position counted from its sequence's first row, as positions.
   */
  sinusoidal_positions: defineOp({
    attrs: { dim: int, sequences: optional(bool) },
    arity: [1, 2],
    roles: (a) => (a.sequences ? ["activation", "sequences"] : ["activation"]),
    traits: [],
    infer: ([x, seq], a) => {
      expect(a.dim >= 1, `sinusoidal_positions: dim must be at least 1, got ${a.dim}`);
      if (a.sequences) expectSequences(seq, x.shape[0], "sinusoidal_positions");
      return f32([x.shape[0], a.dim]);
    },
    interp: ([x, seq], a, _n, [t], st) => {
      const rows = t.shape.length === 1 ? x.length : rowsOf(x, rowWidth(t.shape));
      const out = new Float32Array(rows * a.dim);
      for (let i = 0; i < rows; i++) out.set(sinusoidTable(st.past + i - sequenceOf(seq, i, rows)[0], 1, a.dim), i * a.dim);
      return out;
    },
  }),
  /** Rows of a table [V, D] picked by ids. */
  embedding: defineOp({
    attrs: {},
    arity: 2,
    roles: ["table", "ids"],
    traits: ["pure", "rowwise"],
    infer: ([table, ids]) => {
      expectF32(table, "embedding table");
      expect(table.shape.length === 2, `embedding table must be 2-D, got ${formatType(table)}`);
      expect(ids.dtype === "i32" && ids.shape.length === 1, `embedding ids must be i32[rows], got ${formatType(ids)}`);
      return f32([ids.shape[0], table.shape[1]]);
    },
    interp: ([table, ids], _a, _n, [tt]) => {
      const [V, D] = tt.shape as number[];
      const out = new Float32Array(ids.length * D);
      ids.forEach((id, r) => {
        if (id < 0 || id >= V) throw new RangeError(`id ${id} is outside the table of ${V} rows`);
        out.set(table.subarray(id * D, id * D + D), r * D);
      });
      return out;
    },
  }),
  /** Swaps the last two dims: a matrix transpose of a 2-D parameter, or a per-row transpose of x[R, A, B]. */
  transpose: defineOp({
    attrs: {},
    arity: 1,
    roles: ["activation"],
    traits: ["pure", "rowwise"],
    infer: ([x]) => {
      expect(x.shape.length === 2 || x.shape.length === 3, `transpose takes a 2-D or 3-D tensor, got ${formatType(x)}`);
      const s = [...x.shape];
      [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
      return { dtype: x.dtype, shape: s };
    },
    interp: ([x], _a, _n, [t]) => {
      const [A, B] = t.shape.slice(-2) as number[];
      const out = new Float32Array(x.length);
      for (let base = 0; base < x.length; base += A * B)
        for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) out[base + j * A + i] = x[base + i * B + j];
      return out;
    },
  }),
  /** New trailing dims for each row: x[R, ...] → [R, ...shape] with the same row width. */
  reshape: defineOp({
    attrs: { shape: ints },
    arity: 1,
    roles: ["activation"],
    traits: ["pure", "rowwise"],
    infer: ([x], a) => {
      const w = x.shape.length > 1 ? rowWidth(x.shape) : 1;
      expect(a.shape.every((d) => Number.isInteger(d) && d > 0), `reshape: dims must be positive integers, got [${a.shape.join(", ")}]`);
      expect(a.shape.reduce((p, d) => p * d, 1) === w, `reshape: [${a.shape.join(", ")}] does not hold a row of ${w} values of ${formatType(x)}`);
      return { dtype: x.dtype, shape: [x.shape[0], ...a.shape] };
    },
    interp: ([x]) => x.slice(),
  }),
  /** The first row of x (a classifier reads the [CLS] position). */
  first_row: defineOp({
    attrs: { sequences: optional(bool) },
    arity: [1, 2],
    roles: (a) => (a.sequences ? ["activation", "sequences"] : ["activation"]),
    traits: ["pure"],
    // (sequences, pack-sequences: every row gets its sequence's first row, [rows, ...])
    infer: ([x, seq], a) => {
      if (a.sequences) expectSequences(seq, x.shape[0], "first_row");
      return { dtype: x.dtype, shape: [a.sequences ? x.shape[0] : 1, ...x.shape.slice(1)] };
    },
    interp: ([x, seq], a, _n, [t]) => {
      const w = t.shape.length > 1 ? rowWidth(t.shape) : 1;
      if (!a.sequences) return x.slice(0, w);
      const out = x.slice(), rows = x.length / w;
      for (let r = 0; r < rows; r++) {
        const first = sequenceOf(seq, r, rows)[0];
        out.set(x.subarray(first * w, first * w + w), r * w);
      }
      return out;
    },
  }),
  /** The last row of x (generation needs only the last position's logits). */
  last_row: defineOp({
    attrs: {},
    arity: 1,
    roles: ["activation"],
    traits: ["pure"],
    infer: ([x]) => ({ dtype: x.dtype, shape: [1, ...x.shape.slice(1)] }),
    interp: ([x], _a, _n, [t]) => {
      const w = t.shape.length > 1 ? rowWidth(t.shape) : 1;
      return x.slice(x.length - w);
    },
  }),
  /** Columns start..start+size-1 of the last dimension. */
  slice: defineOp({
    attrs: { start: int, size: int },
    arity: 1,
    roles: ["activation"],
    traits: ["pure", "rowwise"],
    infer: ([x], a) => {
      const D = lastDim(x);
      expect(a.start >= 0 && a.start + a.size <= D, `slice [${a.start}, +${a.size}) is outside width ${D}`);
      return { dtype: x.dtype, shape: [...x.shape.slice(0, -1), a.size] };
    },
    interp: ([x], a, _n, [t]) => {
      const D = lastDim(t), { start, size } = a;
      const R = x.length / D;
      const out = new Float32Array(R * size);
      for (let r = 0; r < R; r++) out.set(x.subarray(r * D + start, r * D + start + size), r * size);
      return out;
    },
  }),
} satisfies Record<string, OpDef>;
