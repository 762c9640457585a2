/**
 * The protobuf primitives the ONNX helpers need: a writer for building small models and
 * extra graph fields, and a reader that walks fields without a schema. The one protobuf
 * implementation of advrec.
 */

/** Appends protobuf-encoded fields to a growing byte list. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private varint(value: number | bigint): void {
    // Negative values: two's complement on 64 bits (10 bytes), as protobuf's int64.
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A varint field (int32, int64, enum). */
  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  /** A 32-bit float field. */
  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** A length-delimited field (bytes, string, embedded message). */
  bytes(field: number, value: Uint8Array | string | ProtoWriter): this {
    this.key(field, 2);
    if (value instanceof ProtoWriter) {
      // An embedded message's chunks are taken over, not copied: a model's weights are
      // copied once, by the outermost finish().
      this.varint(value.size);
      for (const chunk of value.chunks) this.push(chunk);
      return this;
    }
    const data = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    this.varint(data.length);
    this.push(data);
    return this;
  }

  /** A UTF-8 string field. */
  string(field: number, value: string): this {
    return this.bytes(field, value);
  }

  /** An embedded message built by `build`. */
  message(field: number, build: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner);
  }

  /** A packed repeated int64 field. */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner);
  }

  /** The encoded bytes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

/** One field of a message, as read without a schema. */
export interface ProtoField {
  readonly field: number;
  readonly wire: number;
  /** Varint value (wire 0). */
  readonly value?: bigint;
  /** Payload (wire 2), or the raw 4 / 8 bytes (wire 5 / 1). */
  readonly bytes?: Uint8Array;
}

/** Reads the fields of one message; throws RangeError on malformed input. */
export function readFields(data: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= data.length) throw new RangeError('truncated varint');
      const byte = data[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new RangeError('varint too long');
    }
  };
  while (at < data.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ field, wire, value: varint() });
    else if (wire === 2) {
      const length = Number(varint());
      if (at + length > data.length) throw new RangeError('truncated length-delimited field');
      fields.push({ field, wire, bytes: data.subarray(at, at + length) });
      at += length;
    } else if (wire === 5 || wire === 1) {
      const size = wire === 5 ? 4 : 8;
      if (at + size > data.length) throw new RangeError('truncated fixed field');
      fields.push({ field, wire, bytes: data.subarray(at, at + size) });
      at += size;
    } else throw new RangeError(`unsupported wire type ${wire}`);
  }
  return fields;
}

/** UTF-8 text of a length-delimited field. */
export function text(field: ProtoField): string {
  return new TextDecoder().decode(field.bytes ?? new Uint8Array(0));
}
