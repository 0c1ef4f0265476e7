// A minimal protocol-buffers writer: varints, fixed32 floats, length-delimited strings, bytes and
// nested messages. Enough to write ONNX ModelProto files without a protobuf dependency.
//
// A message is kept as a list of parts (small fields are gathered in a scratch buffer; large byte
// payloads such as tensor data are referenced, not copied) and is flattened once by `finish`.

const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Bytes = 2,
  Fixed32 = 5,
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const textEncoder = new TextEncoder();
/** Byte payloads at least this long are referenced instead of copied into the scratch buffer. */
const BIG = 4096;

export class Message {
  private parts: Uint8Array[] = [];
  private scratch = new Uint8Array(256);
  private used = 0;
  private done = 0; // bytes in `parts`

  /** Encoded size in bytes. */
  get length(): number {
    return this.done + this.used;
  }

  private room(n: number) {
    if (this.used + n <= this.scratch.length) return;
    const next = new Uint8Array(Math.max(this.scratch.length * 2, this.used + n));
    next.set(this.scratch.subarray(0, this.used));
    this.scratch = next;
  }
  private flush() {
    if (this.used === 0) return;
    this.parts.push(this.scratch.slice(0, this.used));
    this.done += this.used;
    this.used = 0;
  }
  private byte(b: number) {
    this.room(1);
    this.scratch[this.used++] = b;
  }
  private raw(data: Uint8Array) {
    if (data.length >= BIG) {
      this.flush();
      this.parts.push(data);
      this.done += data.length;
    } else {
      this.room(data.length);
      this.scratch.set(data, this.used);
      this.used += data.length;
    }
  }

  /** An unsigned varint; numbers up to 2^53, bigints up to 2^64 - 1. Negative values are written as 64-bit two's complement. */
  varint(v: number | bigint): this {
    if (typeof v === "number") {
      if (!Number.isInteger(v)) throw new RangeError(`varint: ${v} is not an integer`);
      if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
        while (v > 0x7f) {
          this.byte((v % 128) | 0x80);
          v = Math.floor(v / 128);
        }
        this.byte(v);
        return this;
      }
      v = BigInt(v);
    }
    let u = BigInt.asUintN(64, v);
    while (u > 0x7fn) {
      this.byte(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    this.byte(Number(u));
    return this;
  }

  private tag(field: number, wire: Wire) {
    this.varint(field * 8 + wire);
  }

  /** int32 / int64 / uint64 / enum / bool field. */
  int(field: number, v: number | bigint | boolean): this {
    this.tag(field, Wire.Varint);
    return this.varint(typeof v === "boolean" ? (v ? 1 : 0) : v);
  }
  /** float field (fixed32). */
  float(field: number, v: number): this {
    this.tag(field, Wire.Fixed32);
    this.room(4);
    new DataView(this.scratch.buffer, this.scratch.byteOffset + this.used, 4).setFloat32(0, v, true);
    this.used += 4;
    return this;
  }
  /** double field (fixed64). */
  double(field: number, v: number): this {
    this.tag(field, Wire.Fixed64);
    this.room(8);
    new DataView(this.scratch.buffer, this.scratch.byteOffset + this.used, 8).setFloat64(0, v, true);
    this.used += 8;
    return this;
  }
  /** bytes field; large payloads are referenced, so do not modify them before `finish`. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, Wire.Bytes);
    this.varint(data.length);
    this.raw(data);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, textEncoder.encode(s));
  }
  /** An embedded message. */
  message(field: number, m: Message): this {
    this.tag(field, Wire.Bytes);
    this.varint(m.length);
    this.flush();
    m.flush();
    for (const p of m.parts) this.parts.push(p);
    this.done += m.done;
    return this;
  }
  /** Repeated varint field, one tag per element (proto2's unpacked default; parsers accept both forms). */
  ints(field: number, vs: Iterable<number | bigint>): this {
    for (const v of vs) this.int(field, v);
    return this;
  }
  floats(field: number, vs: Iterable<number>): this {
    for (const v of vs) this.float(field, v);
    return this;
  }

  /** The encoded message as one array. */
  finish(): Uint8Array {
    this.flush();
    if (this.parts.length === 1) return this.parts[0];
    const out = new Uint8Array(this.done);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Little-endian bytes of a typed array (a view when the host is little-endian, else a swapped copy). */
export function littleEndianBytes(a: Float32Array | Int32Array | BigInt64Array | Uint8Array): Uint8Array {
  const view = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) return view;
  const out = new Uint8Array(view.length);
  const w = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < view.length; i += w) for (let j = 0; j < w; j++) out[i + j] = view[i + w - 1 - j];
  return out;
}
