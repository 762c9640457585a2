/**
 * ONNX graphs built byte by byte (no dependency on the onnx package): the dense product
 * and the top-k scoring graph advrec runs on onnxruntime, and the inspection/exposure of
 * a user-supplied CNN's tensors for feature extraction.
 */
import { ProtoWriter, readFields, text } from './protobuf.js';

const FLOAT = 1;
const INT64 = 7;
const ATTRIBUTE_INT = 2;

const MARKER = Symbol.for('advrec.error.OnnxModelError');

/** A model file that is not a usable ONNX model: names the file, what was expected and found. */
export class OnnxModelError extends Error {
  readonly [MARKER] = true;
  readonly file: string;
  readonly expected: string;
  readonly found: string;

  constructor(file: string, expected: string, found: string, options?: { cause?: unknown }) {
    super(`${file}: expected ${expected}, found ${found}`, options);
    this.name = 'OnnxModelError';
    this.file = file;
    this.expected = expected;
    this.found = found;
  }

  /** True for an instance from any copy of this package. */
  static isInstance(value: unknown): value is OnnxModelError {
    return typeof value === 'object' && value !== null && MARKER in value;
  }
}

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
  values: Float32Array,
): void {
  // TensorProto { dims (1), data_type (2), name (8), raw_data (9) }
  w.message(5, (t) => {
    for (const d of dims) t.int(1, d);
    t.int(2, elemType);
    t.string(8, name);
    t.bytes(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
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
    for (const a of attributes)
      n.message(5, (attr) => {
        attr.string(1, a.name);
        attr.int(3, a.int);
        attr.int(20, ATTRIBUTE_INT);
      });
  });
}

/** A whole model: ir_version 8, opset 13, one graph. */
function model(graphName: string, build: (graph: ProtoWriter) => void): Uint8Array {
  const out = new ProtoWriter();
  out.int(1, 8);
  out.string(2, '@advrec/onnx');
  out.message(7, (graph) => {
    build(graph);
    graph.string(2, graphName);
  });
  out.message(8, (opset) => {
    opset.string(1, '');
    opset.int(2, 13);
  });
  return out.finish();
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
 * `TopK(Gemm(users, items^T) + itemBias, k)` (opset 13): inputs `users` `[B, dimension]`
 * float32 (`[B, dimension + 1]` with an item bias, see below) and `k` `[1]` int64; outputs
 * `values` `[B, k]` float32 (descending) and `indices` `[B, k]` int64. The item factors
 * are an initializer, so onnxruntime pre-packs them once per session; k is an input, so one
 * session serves every k.
 *
 * An item bias is folded into the product as one more column of the item factors, and the
 * users carry a 1 in that column ({@link topKScoringUsers}): onnxruntime's Gemm with a bias
 * input adds it in a separate pass over the scores, which took 1.45 s against 0.9 s for
 * the folded product on Gowalla's 29,858 x 40,981 scores (top-28, 2 cores).
 */
export function buildTopKScoringModel(spec: TopKScoringModelSpec): Uint8Array {
  const { itemFactors, numItems, dimension, itemBias } = spec;
  if (itemFactors.length !== numItems * dimension)
    throw new RangeError(
      `itemFactors has ${itemFactors.length} values, expected numItems ${numItems} x dimension ${dimension}`,
    );
  if (itemBias && itemBias.length !== numItems)
    throw new RangeError(`itemBias has ${itemBias.length} values, expected ${numItems}`);
  const width = itemBias ? dimension + 1 : dimension;
  let items = itemFactors;
  if (itemBias) {
    items = new Float32Array(numItems * width);
    for (let i = 0; i < numItems; i++) {
      items.set(itemFactors.subarray(i * dimension, (i + 1) * dimension), i * width);
      items[i * width + dimension] = itemBias[i]!;
    }
  }
  return model('advrec_topk_scoring', (graph) => {
    node(graph, 'Gemm', ['users', 'items'], ['scores'], [{ name: 'transB', int: 1 }]);
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
    initializer(graph, 'items', [numItems, width], FLOAT, items);
    valueInfo(graph, 11, 'users', FLOAT, ['batch', width]);
    valueInfo(graph, 11, 'k', INT64, [1]);
    valueInfo(graph, 12, 'values', FLOAT, ['batch', 'k']);
    valueInfo(graph, 12, 'indices', INT64, ['batch', 'k']);
  });
}

/**
 * The `users` input of {@link buildTopKScoringModel} for `rows x dimension` user factors:
 * themselves without an item bias, else each row followed by a 1 (written into `into` when
 * it is large enough).
 */
export function topKScoringUsers(
  users: Float32Array,
  rows: number,
  dimension: number,
  withBias: boolean,
  into?: Float32Array,
): Float32Array {
  if (!withBias) return users;
  const width = dimension + 1;
  const out =
    into && into.length >= rows * width
      ? into.subarray(0, rows * width)
      : new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    out.set(users.subarray(r * dimension, (r + 1) * dimension), r * width);
    out[r * width + dimension] = 1;
  }
  return out;
}

/** A one-node model `y = op(a) . op(b)` (Gemm with `transA` / `transB`), dynamic shapes. */
export function buildGemmModel(transA: boolean, transB: boolean): Uint8Array {
  return model('advrec_gemm', (graph) => {
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
    valueInfo(graph, 11, 'a', FLOAT, ['a0', 'a1']);
    valueInfo(graph, 11, 'b', FLOAT, ['b0', 'b1']);
    valueInfo(graph, 12, 'y', FLOAT, ['y0', 'y1']);
  });
}

/**
 * A one-node model `y = MatMul(a, b)` over a leading batch axis: `a` `[batch, m, k]`, `b`
 * `[batch, k, n]`, `y` `[batch, m, n]`, dynamic shapes.
 */
export function buildBatchedMatMulModel(): Uint8Array {
  return model('advrec_batched_matmul', (graph) => {
    node(graph, 'MatMul', ['a', 'b'], ['y']);
    valueInfo(graph, 11, 'a', FLOAT, ['batch', 'm', 'k']);
    valueInfo(graph, 11, 'b', FLOAT, ['batch', 'k', 'n']);
    valueInfo(graph, 12, 'y', FLOAT, ['batch', 'm', 'n']);
  });
}

/**
 * Attention's weights over a leading batch axis: `y = Softmax(MatMul(a, b) * scale + bias)`
 * along the last axis, `a` `[batch, m, k]`, `b` `[batch, k, n]`, `bias` `[batch, m, n]` (a
 * large negative entry masks a key), `scale` an initializer; dynamic shapes.
 */
export function buildBatchedSoftmaxModel(scale: number): Uint8Array {
  return model('advrec_batched_softmax', (graph) => {
    node(graph, 'MatMul', ['a', 'b'], ['products']);
    node(graph, 'Mul', ['products', 'scale'], ['scaled']);
    node(graph, 'Add', ['scaled', 'bias'], ['logits']);
    node(graph, 'Softmax', ['logits'], ['y'], [{ name: 'axis', int: -1 }]);
    initializer(graph, 'scale', [1], FLOAT, Float32Array.of(scale));
    valueInfo(graph, 11, 'a', FLOAT, ['batch', 'm', 'k']);
    valueInfo(graph, 11, 'b', FLOAT, ['batch', 'k', 'n']);
    valueInfo(graph, 11, 'bias', FLOAT, ['batch', 'm', 'n']);
    valueInfo(graph, 12, 'y', FLOAT, ['batch', 'm', 'n']);
  });
}

/** Tensor names found in an ONNX model's main graph. */
export interface OnnxGraphInfo {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Every tensor a node produces (intermediate tensors included). */
  readonly nodeOutputs: ReadonlySet<string>;
  readonly initializers: ReadonlySet<string>;
  readonly nodes: number;
}

// ModelProto.graph = 7; GraphProto: node = 1, initializer = 5, input = 11, output = 12;
// NodeProto.output = 2; ValueInfoProto.name = 1; TensorProto.name = 8.

/**
 * Lists the tensors of an ONNX model.
 * @throws {@link OnnxModelError} naming `file` when the bytes are not a ModelProto.
 */
export function inspectOnnxModel(bytes: Uint8Array, file = '<model>'): OnnxGraphInfo {
  try {
    const graph = readFields(bytes).filter((f) => f.field === 7 && f.wire === 2);
    if (graph.length === 0) throw new RangeError('no graph');
    const inputs: string[] = [];
    const outputs: string[] = [];
    const nodeOutputs = new Set<string>();
    const initializers = new Set<string>();
    let nodes = 0;
    for (const g of graph) {
      for (const f of readFields(g.bytes!)) {
        if (f.wire !== 2) continue;
        if (f.field === 1) {
          nodes++;
          for (const n of readFields(f.bytes!))
            if (n.field === 2 && n.wire === 2) nodeOutputs.add(text(n));
        } else if (f.field === 11 || f.field === 12) {
          const name = readFields(f.bytes!).find((v) => v.field === 1 && v.wire === 2);
          if (name) (f.field === 11 ? inputs : outputs).push(text(name));
        } else if (f.field === 5) {
          const name = readFields(f.bytes!).find((v) => v.field === 8 && v.wire === 2);
          if (name) initializers.add(text(name));
        }
      }
    }
    return {
      inputs: inputs.filter((i) => !initializers.has(i)),
      outputs,
      nodeOutputs,
      initializers,
      nodes,
    };
  } catch (cause) {
    throw new OnnxModelError(file, 'an ONNX model (ModelProto)', (cause as Error).message, {
      cause,
    });
  }
}

/**
 * Returns the model with `tensor` added to the graph's outputs, so onnxruntime can fetch an
 * intermediate tensor (e.g. MobileNetV2's `627`, the last conv block before pooling). The
 * extra output is appended as a second `graph` field, which protobuf merges into the first
 * (repeated fields concatenate), so the original bytes are kept as they are.
 * @throws {@link OnnxModelError} naming the file when no node produces the tensor.
 */
export function exposeTensor(bytes: Uint8Array, tensor: string, file = '<model>'): Uint8Array {
  const info = inspectOnnxModel(bytes, file);
  if (info.outputs.includes(tensor)) return bytes;
  if (!info.nodeOutputs.has(tensor)) {
    const sample = [...info.nodeOutputs].slice(-8).join(', ');
    throw new OnnxModelError(
      file,
      `a tensor named "${tensor}" produced by a node of the graph (outputs: ${info.outputs.join(', ')}; last node outputs: ${sample})`,
      'none',
    );
  }
  // ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT } } }
  const info2 = new ProtoWriter()
    .bytes(1, tensor)
    .bytes(2, new ProtoWriter().bytes(1, new ProtoWriter().int(1, FLOAT)));
  const extra = new ProtoWriter().bytes(7, new ProtoWriter().bytes(12, info2)).finish();
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes, 0);
  out.set(extra, bytes.length);
  return out;
}
