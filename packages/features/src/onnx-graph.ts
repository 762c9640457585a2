import { DataFormatError } from '@advrec/data';
import { ProtoWriter, readFields, text } from './protobuf.js';

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

/** Lists the tensors of an ONNX model (no dependency on the onnx package). */
export function inspectOnnxModel(model: Uint8Array, file = '<model>'): OnnxGraphInfo {
  try {
    const graph = readFields(model).filter((f) => f.field === 7 && f.wire === 2);
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
    if (DataFormatError.isInstance(cause)) throw cause;
    throw new DataFormatError({ file }, 'an ONNX model (ModelProto)', (cause as Error).message, {
      cause,
    });
  }
}

/**
 * Returns the model with `tensor` added to the graph's outputs, so onnxruntime can fetch an
 * intermediate tensor (e.g. MobileNetV2's `627`, the last conv block before pooling). The
 * extra output is appended as a second `graph` field, which protobuf merges into the first
 * (repeated fields concatenate), so the original bytes are kept as they are.
 * @throws {@link DataFormatError} naming the file when no node produces the tensor.
 */
export function exposeTensor(model: Uint8Array, tensor: string, file = '<model>'): Uint8Array {
  const info = inspectOnnxModel(model, file);
  if (info.outputs.includes(tensor)) return model;
  if (!info.nodeOutputs.has(tensor)) {
    const sample = [...info.nodeOutputs].slice(-8).join(', ');
    throw new DataFormatError(
      { file },
      `a tensor named "${tensor}" produced by a node of the graph (outputs: ${info.outputs.join(', ')}; last node outputs: ${sample})`,
      'none',
    );
  }
  // ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT } } }
  const valueInfo = new ProtoWriter()
    .bytes(1, tensor)
    .bytes(2, new ProtoWriter().bytes(1, new ProtoWriter().int(1, 1)));
  const extra = new ProtoWriter().bytes(7, new ProtoWriter().bytes(12, valueInfo)).finish();
  return Buffer.concat([model, extra]);
}
