/**
 * A small ONNX graph, built here byte by byte, that scores a block of users against every
 * item and keeps the k best: `TopK(Gemm(users, items^T) + itemBias, k)`. onnxruntime-node
 * runs it with MLAS kernels, the fastest dense product on these machines (see ENGINE.md).
 *
 * onnxruntime-node is optional: {@link loadOnnxRuntime} imports it dynamically and
 * returns `null` when it is not installed.
 */
import type * as OnnxRuntime from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';

type OrtModule = typeof OnnxRuntime;

let ortPromise: Promise<OrtModule | null> | undefined;

/** The onnxruntime-node module, or `null` when the package is not installed or fails to load. */
export function loadOnnxRuntime(): Promise<OrtModule | null> {
  ortPromise ??= import('onnxruntime-node').then(
    (module) => ((module as unknown as { default?: OrtModule }).default ?? module) as OrtModule,
    () => null,
  );
  return ortPromise;
}

// --- minimal protobuf writer -------------------------------------------------------------

class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private varint(value: number | bigint): void {
    let v = BigInt(value);
    if (v < 0n) v += 1n << 64n; // two's complement, 10 bytes
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

const FLOAT = 1;
const INT64 = 7;
const ATTRIBUTE_INT = 2;

function tensorType(w: ProtoWriter, elemType: number, dims: readonly (number | string)[]): void {
  // TypeProto { tensor_type (1): { elem_type (1), shape (2): { dim (1): { dim_value (1) | dim_param (2) } } } }
  w.message(1, (t) => {
    t.int(1, elemType);
    t.message(2, (shape) => {
      for (const d of dims)
        shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
    });
  });
}

function valueInfo(
  w: ProtoWriter,
  field: number,
  name: string,
  elemType: number,
  dims: readonly (number | string)[],
): void {
  w.message(field, (v) => {
    v.string(1, name);
    v.message(2, (t) => tensorType(t, elemType, dims));
  });
}

function initializer(
  w: ProtoWriter,
  name: string,
  dims: readonly number[],
  elemType: number,
  raw: Uint8Array,
): void {
  // TensorProto { dims (1), data_type (2), name (8), raw_data (9) }
  w.message(5, (t) => {
    for (const d of dims) t.int(1, d);
    t.int(2, elemType);
    t.string(8, name);
    t.bytes(9, raw);
  });
}

function node(
  w: ProtoWriter,
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: readonly { name: string; int: number }[] = [],
): void {
  // NodeProto { input (1), output (2), name (3), op_type (4), attribute (5) }
  // AttributeProto { name (1), i (3), type (20) }
  w.message(1, (n) => {
    for (const i of inputs) n.string(1, i);
    for (const o of outputs) n.string(2, o);
    n.string(3, `${opType}_${outputs[0]}`);
    n.string(4, opType);
    for (const a of attributes) {
      n.message(5, (attr) => {
        attr.string(1, a.name);
        attr.int(3, a.int);
        attr.int(20, ATTRIBUTE_INT);
      });
    }
  });
}

/** Inputs of {@link buildTopKScoringModel}. */
export interface TopKScoringModelSpec {
  /** `numItems x dimension` item factors, row-major (the model's `Q`, or `Q + E C` for VBPR). */
  readonly itemFactors: Float32Array;
  readonly numItems: number;
  readonly dimension: number;
  /** Optional additive item term, length `numItems`. */
  readonly itemBias?: Float32Array | undefined;
}

/**
 * Builds the ONNX model (opset 13): inputs `users` `[B, dimension]` float32 and `k` `[1]`
 * int64; outputs `values` `[B, k]` float32 (descending) and `indices` `[B, k]` int64. The
 * item factors and bias are initializers, so onnxruntime pre-packs them once per session;
 * k is an input, so one session serves every k.
 */
export function buildTopKScoringModel(spec: TopKScoringModelSpec): Uint8Array {
  const { itemFactors, numItems, dimension, itemBias } = spec;
  if (itemFactors.length !== numItems * dimension) {
    throw new RangeError('itemFactors must be numItems x dimension');
  }
  const model = new ProtoWriter();
  model.int(1, 8); // ir_version
  model.string(2, '@advrec/metrics');
  model.message(7, (graph) => {
    const gemmInputs = itemBias ? ['users', 'items', 'item_bias'] : ['users', 'items'];
    node(graph, 'Gemm', gemmInputs, ['scores'], [{ name: 'transB', int: 1 }]);
    node(
      graph,
      'TopK',
      ['scores', 'k'],
      ['values', 'indices'],
      [
        { name: 'axis', int: -1 },
        { name: 'largest', int: 1 },
        { name: 'sorted', int: 1 },
      ],
    );
    graph.string(2, 'advrec_topk_scoring');
    initializer(
      graph,
      'items',
      [numItems, dimension],
      FLOAT,
      new Uint8Array(itemFactors.buffer, itemFactors.byteOffset, itemFactors.byteLength),
    );
    if (itemBias)
      initializer(
        graph,
        'item_bias',
        [numItems],
        FLOAT,
        new Uint8Array(itemBias.buffer, itemBias.byteOffset, itemBias.byteLength),
      );
    valueInfo(graph, 11, 'users', FLOAT, ['batch', dimension]);
    valueInfo(graph, 11, 'k', INT64, [1]);
    valueInfo(graph, 12, 'values', FLOAT, ['batch', 'k']);
    valueInfo(graph, 12, 'indices', INT64, ['batch', 'k']);
  });
  model.message(8, (opset) => {
    opset.string(1, '');
    opset.int(2, 13);
  });
  return model.finish();
}

/** A running onnxruntime session of the top-k scoring graph. */
export class OnnxTopKScorer {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: InferenceSession,
    readonly numItems: number,
    readonly dimension: number,
  ) {}

  /**
   * Creates a session for the given item side. Returns `null` when onnxruntime-node is not
   * installed.
   */
  static async create(
    spec: TopKScoringModelSpec,
    options: { threads?: number } = {},
  ): Promise<OnnxTopKScorer | null> {
    const ort = await loadOnnxRuntime();
    if (ort === null) return null;
    const session = await ort.InferenceSession.create(buildTopKScoringModel(spec), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
    });
    return new OnnxTopKScorer(ort, session, spec.numItems, spec.dimension);
  }

  /**
   * The k best items of each user of a block (`1 <= k <= numItems`): `users` is
   * `rows x dimension` user factors.
   * Returns float32 scores (descending per row) and item ids, `rows x k` each.
   */
  async topK(
    users: Float32Array,
    rows: number,
    k: number,
  ): Promise<{ values: Float32Array; indices: Int32Array }> {
    const { values, indexWords } = await this.topKWords(users, rows, k);
    const indices = new Int32Array(values.length);
    for (let t = 0; t < indices.length; t++) indices[t] = indexWords[2 * t]!;
    return { values, indices };
  }

  /**
   * As {@link topK}, without converting the int64 indices: `indexWords[2 * t]` is the
   * index of entry `t` (the low word; item ids are below 2^31), which avoids a BigInt per
   * entry on the hot path.
   * @internal
   */
  async topKWords(
    users: Float32Array,
    rows: number,
    k: number,
  ): Promise<{ values: Float32Array; indexWords: Int32Array }> {
    if (!(Number.isInteger(k) && k >= 1 && k <= this.numItems)) {
      throw new RangeError(`k must be an integer in [1, ${this.numItems}], got ${k}`);
    }
    const input: Tensor = new this.ort.Tensor('float32', users, [rows, this.dimension]);
    const kInput: Tensor = new this.ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]);
    const output = await this.session.run({ users: input, k: kInput });
    const values = output['values']!.data as Float32Array;
    const indices64 = output['indices']!.data as BigInt64Array;
    const indexWords = new Int32Array(indices64.buffer, indices64.byteOffset, indices64.length * 2);
    return { values, indexWords };
  }

  /** Releases the native session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Builds a one-node ONNX model `y = op(a) . op(b)` (a Gemm with `transA` / `transB`),
 * dynamic shapes, opset 13.
 */
export function buildGemmModel(transA: boolean, transB: boolean): Uint8Array {
  const model = new ProtoWriter();
  model.int(1, 8);
  model.string(2, '@advrec/metrics');
  model.message(7, (graph) => {
    node(
      graph,
      'Gemm',
      ['a', 'b'],
      ['y'],
      [
        { name: 'transA', int: transA ? 1 : 0 },
        { name: 'transB', int: transB ? 1 : 0 },
      ],
    );
    graph.string(2, 'advrec_gemm');
    valueInfo(graph, 11, 'a', FLOAT, ['a0', 'a1']);
    valueInfo(graph, 11, 'b', FLOAT, ['b0', 'b1']);
    valueInfo(graph, 12, 'y', FLOAT, ['y0', 'y1']);
  });
  model.message(8, (opset) => {
    opset.string(1, '');
    opset.int(2, 13);
  });
  return model.finish();
}

/**
 * Dense float32 matrix products on onnxruntime (MLAS), for the training-time products of
 * visual models (`C E`, `C^T G`, `G E^T`). One session per transposition; `run` is
 * asynchronous like onnxruntime's.
 */
export class OnnxGemm {
  private constructor(
    private readonly ort: OrtModule,
    private readonly sessions: Map<string, InferenceSession>,
  ) {}

  /** Sessions for every transposition; `null` when onnxruntime-node is not installed. */
  static async create(options: { threads?: number } = {}): Promise<OnnxGemm | null> {
    const ort = await loadOnnxRuntime();
    if (ort === null) return null;
    const sessions = new Map<string, InferenceSession>();
    for (const transA of [false, true])
      for (const transB of [false, true])
        sessions.set(
          `${transA}${transB}`,
          await ort.InferenceSession.create(buildGemmModel(transA, transB), {
            executionProviders: ['cpu'],
            graphOptimizationLevel: 'all',
            intraOpNumThreads: options.threads ?? 0,
            interOpNumThreads: 1,
          }),
        );
    return new OnnxGemm(ort, sessions);
  }

  /**
   * `op(A) . op(B)` for row-major `A` (`aRows x aCols`) and `B` (`bRows x bCols`), with
   * `op` the transpose when asked. Returns the row-major product.
   */
  async multiply(
    a: Float32Array,
    aRows: number,
    aCols: number,
    b: Float32Array,
    bRows: number,
    bCols: number,
    transA = false,
    transB = false,
  ): Promise<Float32Array> {
    const inner = transA ? aRows : aCols;
    if (inner !== (transB ? bCols : bRows))
      throw new RangeError(
        `cannot multiply ${aRows}x${aCols}${transA ? 'ᵀ' : ''} by ${bRows}x${bCols}${transB ? 'ᵀ' : ''}`,
      );
    const session = this.sessions.get(`${transA}${transB}`)!;
    // onnxruntime-node does not take views of shared memory: copy those.
    const plain = (x: Float32Array, n: number): Float32Array =>
      x.buffer instanceof SharedArrayBuffer ? x.slice(0, n) : x.subarray(0, n);
    const output = await session.run({
      a: new this.ort.Tensor('float32', plain(a, aRows * aCols), [aRows, aCols]),
      b: new this.ort.Tensor('float32', plain(b, bRows * bCols), [bRows, bCols]),
    });
    return output.y!.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const session of this.sessions.values()) await session.release();
  }
}
