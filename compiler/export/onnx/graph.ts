// The ONNX protobuf pieces the exporter writes: value types, attributes, tensors, and a graph
// under construction (nodes, initializers, shared constants, graph I/O).

import { littleEndianBytes, Message } from "../protobuf.js";

export class OnnxExportError extends Error {
  override name = "OnnxExportError";
}

export const OPSET = 17;
export const IR_VERSION = 8;

// TensorProto.DataType
export const FLOAT = 1;
export const UINT8 = 2;
export const INT64 = 7;
/** ONNX Runtime's contrib operators (MatMulNBits). */
export const MS_DOMAIN = "com.microsoft";

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

export type Attr = { f: number } | { i: number } | { s: string } | { ints: readonly number[] };
export type Dim = number | string;

export const DIM_B = "batch_size";
export const DIM_S = "sequence_length";
export const DIM_P = "past_sequence_length";
export const DIM_T = "total_sequence_length";
/** The largest finite float32 magnitude: what the reference adds for masked-out keys. */
export const NEG = -3.4028234663852886e38;

function attrProto(name: string, a: Attr): Message {
  const m = new Message().string(1, name);
  if ("f" in a) m.float(2, a.f).int(20, ATTR_FLOAT);
  else if ("i" in a) m.int(3, a.i).int(20, ATTR_INT);
  else if ("s" in a) m.string(4, a.s).int(20, ATTR_STRING);
  else m.ints(8, a.ints).int(20, ATTR_INTS);
  return m;
}

function tensorProto(name: string, dims: readonly number[], dataType: number, data: Uint8Array): Message {
  return new Message().ints(1, dims).int(2, dataType).string(8, name).bytes(9, data);
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): Message {
  const shape = new Message();
  for (const d of dims) shape.message(1, typeof d === "number" ? new Message().int(1, d) : new Message().string(2, d));
  const tensorType = new Message().int(1, elemType).message(2, shape);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** Accumulates ONNX nodes, initializers and graph I/O. */
export class OnnxGraph {
  readonly nodes: Message[] = [];
  readonly initializers: Message[] = [];
  readonly inputs: Message[] = [];
  readonly outputs: Message[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  private counter = 0;

  /** A name not used before, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${this.counter++}`;
    this.names.add(name);
    return name;
  }
  reserve(name: string): string {
    if (this.names.has(name)) throw new OnnxExportError(`ONNX export: duplicate value name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** Operator domains used besides the default one. */
  readonly domains = new Set<string>();

  /** Appends a node; returns its (first) output name. `out` names the outputs (fresh names otherwise). */
  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string, domain?: string): string {
    const output = out ?? this.fresh(`${type.toLowerCase()}_${this.nodes.length}`);
    const m = new Message();
    for (const i of inputs) m.string(1, i);
    m.string(2, output);
    m.string(3, `${type}_${this.nodes.length}`);
    m.string(4, type);
    for (const [k, v] of Object.entries(attrs)) m.message(5, attrProto(k, v));
    if (domain) {
      m.string(7, domain);
      this.domains.add(domain);
    }
    this.nodes.push(m);
    return output;
  }

  initializer(name: string, dims: readonly number[], data: Float32Array | BigInt64Array | Uint8Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${data.length} values for [${dims.join(",")}]`);
    const type = data instanceof Float32Array ? FLOAT : data instanceof Uint8Array ? UINT8 : INT64;
    this.initializers.push(tensorProto(name, dims, type, data instanceof Uint8Array ? data : littleEndianBytes(data)));
    return name;
  }

  /** A shared int64 constant (an initializer). `dims` undefined: a 1-D tensor; [] a scalar. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i64[${dims.join(",")}]:${values.join(",")}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(dims.length === 0 ? `const_i64_${values[0]}` : `const_i64_${values.join("_").replace(/-/g, "m")}`);
      this.initializer(name, dims, BigInt64Array.from(values, (v) => BigInt(v)));
      this.consts.set(key, name);
    }
    return name;
  }
  /** A shared float constant. */
  float(values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    const data = Float32Array.from(values);
    const key = `f32[${dims.join(",")}]:${Array.from(data).join(",")}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(data.length === 1 ? `const_f32` : `const_f32_${data.length}`);
      this.initializer(name, dims, data);
      this.consts.set(key, name);
    }
    return name;
  }

  input(name: string, elemType: number, dims: readonly Dim[]): string {
    this.reserve(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }
  output(name: string, elemType: number, dims: readonly Dim[]) {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  // small helpers
  reshape(x: string, dims: readonly number[]): string {
    return this.op("Reshape", [x, this.int64(dims)]);
  }
  transpose(x: string, perm: readonly number[]): string {
    return this.op("Transpose", [x], { perm: { ints: perm } });
  }
  unsqueeze(x: string, axes: readonly number[], out?: string): string {
    return this.op("Unsqueeze", [x, this.int64(axes)], {}, out);
  }
  slice(x: string, start: number, end: number, axis: number): string {
    return this.op("Slice", [x, this.int64([start]), this.int64([end]), this.int64([axis])]);
  }
}

export function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}
