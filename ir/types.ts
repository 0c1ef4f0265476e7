// Core IR types: a typed SSA graph with static shapes, except for named sequence
// dimensions that stay symbolic until run time ("S" = rows of this call, "T" = past + S
// for cached attention, "E" = rows of a static input such as an encoder output).

export type DType = "f32" | "i32";
export type Dim = number | string;
export type Shape = readonly Dim[];

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export type AttrValue = number | string | boolean | readonly (number | string)[];
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly args: readonly number[];
  readonly attrs: Attrs;
  readonly type: TensorType;
  readonly loc?: SourceLoc;
}

/**
 * How an entry input is fed: token ids, segment ids, a 0/1 padding mask, a tensor kept from
 * another entry, an image's pixel values [1, channels, height, width] (one row per call), or
 * (pack-sequences) the sequence each row belongs to: i32[rows, 2], the first row of the row's
 * sequence and the row after its last, so that one call runs several sequences side by side.
 */
export type InputKind = "tokens" | "segments" | "padding" | "state" | "image" | "sequences";

export interface Graph {
  readonly name: string;
  readonly nodes: Node[];
  readonly outputs: { name: string; id: number }[];
}

/** Block-quantized weight formats the kernels compute on (GGUF Q8_0, Q4_0 and Q4_1). */
export type QuantScheme = "q8_0" | "q4_0" | "q4_1";
export const QUANT_SCHEMES: readonly QuantScheme[] = ["q8_0", "q4_0", "q4_1"];

export interface Param {
  readonly name: string;
  readonly shape: readonly number[];
  /** The values the model computes with (for a quantized parameter: the dequantized values). */
  readonly data: Float32Array;
  /**
   * Quantized storage, per row in blocks of 32 along the input dim, a scale each (an f16 value,
   * as GGUF stores it): q8_0 codes −127..127, q4_0 codes −8..7 (GGUF's nibble q − 8), q4_1
   * codes 0..15 and a minimum each (f16): w = code · scale + min.
   */
  readonly quant?: { scheme: QuantScheme; codes: Int8Array; scales: Float32Array; mins?: Float32Array };
}

export interface Program {
  readonly model: string;
  readonly config: Record<string, number | string | boolean>;
  /** Longest sequence (past + current) the compiled model accepts; sizes caches and buffers. */
  readonly context: number;
  readonly graphs: Graph[];
  readonly params: Map<string, Param>;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Size of a shape with symbolic dims replaced by `bind`. */
export function sizeOf(shape: Shape, bind: (sym: string) => number): number {
  let n = 1;
  for (const d of shape) n *= typeof d === "number" ? d : bind(d);
  return n;
}

/** Product of the static trailing dims (everything after the leading row dim). */
export function rowWidth(shape: Shape): number {
  let n = 1;
  for (let i = 1; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== "number") throw new Error(`dimension ${i} of [${shape.join(",")}] is symbolic`);
    n *= d;
  }
  return n;
}

export function formatType(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(",")}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
