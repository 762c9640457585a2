import { Random } from '@advrec/data';
import { ProtoWriter } from '@advrec/onnx';

/** Weights of the tiny CNN, to recompute its features by hand. */
export interface TinyCnn {
  readonly bytes: Uint8Array;
  /** [4 out, 3 in, 3, 3] */
  readonly convWeight: Float32Array;
  readonly convBias: Float32Array;
  readonly size: number;
}

function tensor(name: string, dims: number[], values: Float32Array): ProtoWriter {
  return new ProtoWriter()
    .packedInts(1, dims)
    .int(2, 1)
    .bytes(8, name)
    .bytes(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

function valueInfo(name: string, dims: (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims)
    shape.bytes(
      1,
      typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().bytes(2, d),
    );
  return new ProtoWriter()
    .bytes(1, name)
    .bytes(2, new ProtoWriter().bytes(1, new ProtoWriter().int(1, 1).bytes(2, shape)));
}

function node(
  op: string,
  inputs: string[],
  outputs: string[],
  attributes: ProtoWriter[] = [],
): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of inputs) w.bytes(1, i);
  for (const o of outputs) w.bytes(2, o);
  w.bytes(3, `${op}_${outputs[0]}`).bytes(4, op);
  for (const a of attributes) w.bytes(5, a);
  return w;
}

function ints(name: string, values: number[]): ProtoWriter {
  return new ProtoWriter().bytes(1, name).int(20, 7).packedInts(8, values);
}

/**
 * A tiny CNN built here (no download): image [N,3,size,size] -> Conv 3x3 stride 2 pad 1
 * (4 channels) -> Relu ("features", [N,4,size/2,size/2]) -> GlobalAveragePool -> Flatten
 * -> Gemm ("logits", [N,5]). Seeded weights.
 */
export function buildTinyCnn(seed = 1, size = 16): TinyCnn {
  const random = new Random(seed);
  const gaussian = (n: number, s: number) =>
    Float32Array.from({ length: n }, () => s * random.nextGaussian());
  const convWeight = gaussian(4 * 3 * 3 * 3, 0.5);
  const convBias = gaussian(4, 0.1);
  const graph = new ProtoWriter()
    .bytes(
      1,
      node(
        'Conv',
        ['image', 'conv_w', 'conv_b'],
        ['conv'],
        [ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), ints('kernel_shape', [3, 3])],
      ),
    )
    .bytes(1, node('Relu', ['conv'], ['features']))
    .bytes(1, node('GlobalAveragePool', ['features'], ['pooled']))
    .bytes(1, node('Flatten', ['pooled'], ['flat']))
    .bytes(
      1,
      node(
        'Gemm',
        ['flat', 'fc_w', 'fc_b'],
        ['logits'],
        [new ProtoWriter().bytes(1, 'transB').int(20, 2).int(3, 1)],
      ),
    )
    .bytes(2, 'tiny-cnn')
    .bytes(5, tensor('conv_w', [4, 3, 3, 3], convWeight))
    .bytes(5, tensor('conv_b', [4], convBias))
    .bytes(5, tensor('fc_w', [5, 4], gaussian(20, 0.5)))
    .bytes(5, tensor('fc_b', [5], gaussian(5, 0.1)))
    .bytes(11, valueInfo('image', ['N', 3, size, size]))
    .bytes(12, valueInfo('logits', ['N', 5]));
  const bytes = new ProtoWriter()
    .int(1, 7)
    .bytes(2, 'advrec-tests')
    .bytes(7, graph)
    .bytes(8, new ProtoWriter().bytes(1, '').int(2, 13))
    .finish();
  return { bytes, convWeight, convBias, size };
}

/** The tiny CNN's pooled "features" of one preprocessed NCHW image, computed by hand. */
export function tinyCnnFeatures(cnn: TinyCnn, image: Float32Array, offset = 0): Float64Array {
  const n = cnn.size;
  const m = n / 2;
  const out = new Float64Array(4);
  for (let o = 0; o < 4; o++) {
    let sum = 0;
    for (let y = 0; y < m; y++)
      for (let x = 0; x < m; x++) {
        let v = cnn.convBias[o]!;
        for (let c = 0; c < 3; c++)
          for (let ky = 0; ky < 3; ky++)
            for (let kx = 0; kx < 3; kx++) {
              const iy = 2 * y - 1 + ky;
              const ix = 2 * x - 1 + kx;
              if (iy < 0 || ix < 0 || iy >= n || ix >= n) continue;
              v +=
                cnn.convWeight[((o * 3 + c) * 3 + ky) * 3 + kx]! *
                image[offset + (c * n + iy) * n + ix]!;
            }
        sum += Math.max(0, v);
      }
    out[o] = sum / (m * m);
  }
  return out;
}
