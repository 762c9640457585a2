import { ConfigError, Random } from '@advrec/data';
import { ProtoWriter } from '@advrec/onnx';

/**
 * The ONNX model zoo's ResNet-50 v1 (`resnet50-v1-7.onnx`, converted from GluonCV's
 * `resnet50_v1`): its input, its 2048-d pooled tensor (the layer VBPR and AMR use) and its
 * logits, by the names the zoo's file gives them.
 */
export const RESNET50_V1 = {
  /** `data`, `[N, 3, 224, 224]`, ImageNet-normalised RGB. */
  input: 'data',
  /** `resnetv17_pool1_fwd`, `[N, 2048, 1, 1]`: global average pooling after stage 4. */
  pooledTensor: 'resnetv17_pool1_fwd',
  /** `resnetv17_dense0_fwd`, `[N, 1000]`. */
  logits: 'resnetv17_dense0_fwd',
  dimension: 2048,
  /**
   * Where the pretrained file comes from: the ONNX model zoo (Apache-2.0), as the tarball
   * `resnet50-v1-7.tar.gz` (95,435,189 bytes; the SHA-256 below is the one its Git LFS
   * pointer records) holding `resnet50v1/resnet50-v1-7.onnx` (102,583,340 bytes).
   */
  source: {
    url: 'https://github.com/onnx/models/raw/main/validated/vision/classification/resnet/model/resnet50-v1-7.tar.gz',
    sha256: '898a9183256e884ae06fb1c11869386eccd38393ab41d9339909e974519a9feb',
    bytes: 95_435_189,
    member: 'resnet50v1/resnet50-v1-7.onnx',
    memberBytes: 102_583_340,
    license: 'Apache-2.0',
  },
} as const;

/** Options of {@link buildResNet50}. */
export interface ResNet50Options {
  /** Seed of the random weights (default 1). */
  readonly seed?: number;
  /**
   * Channels of the stem (default 64, ResNet-50's). Smaller values build the same graph,
   * same tensor names and depth, with every width scaled (tests use 8: a 256-d pooled layer).
   */
  readonly baseWidth?: number;
  /** Classes of the final dense layer (default 1000). */
  readonly classes?: number;
}

const FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INTS = 7;
/** Bottleneck blocks per stage: ResNet-50. */
const BLOCKS = [3, 4, 6, 3] as const;
const PREFIX = 'resnetv17';

/** An ONNX attribute of integers. */
function ints(name: string, values: number[]) {
  return (a: ProtoWriter): void => {
    a.string(1, name);
    a.packedInts(8, values);
    a.int(20, ATTR_INTS);
  };
}

/** An ONNX attribute holding one float. */
function float(name: string, value: number) {
  return (a: ProtoWriter): void => {
    a.string(1, name);
    a.float(2, value);
    a.int(20, ATTR_FLOAT);
  };
}

/**
 * Writes an ONNX graph: nodes (field 1) and initializers (field 5) interleave, as protobuf
 * keeps repeated fields in order; convolutions draw He-normal weights from `random`.
 */
class GraphWriter {
  readonly graph = new ProtoWriter();
  constructor(private readonly random: Random) {}

  tensor(name: string, dims: number[], values: Float32Array): void {
    this.graph.message(5, (t) => {
      for (const d of dims) t.int(1, d);
      t.int(2, FLOAT);
      t.string(8, name);
      t.bytes(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    });
  }

  node(
    op: string,
    name: string,
    inputs: string[],
    output: string,
    attributes: ((a: ProtoWriter) => void)[] = [],
  ): void {
    this.graph.message(1, (n) => {
      for (const i of inputs) n.string(1, i);
      n.string(2, output);
      n.string(3, name);
      n.string(4, op);
      for (const a of attributes) n.message(5, a);
    });
  }

  heNormal(out: number, fanIn: number): Float32Array {
    const std = Math.sqrt(2 / fanIn);
    const w = new Float32Array(out * fanIn);
    for (let k = 0; k < w.length; k++) w[k] = std * this.random.nextGaussian();
    return w;
  }

  /** Conv (no bias) + BatchNormalization named as GluonCV names them; returns the BN output. */
  convBn(
    scope: string,
    index: number,
    input: string,
    inChannels: number,
    outChannels: number,
    kernel: number,
    stride: number,
    bnScale = 1,
  ): string {
    const conv = `${scope}_conv${index}`;
    const bn = `${scope}_batchnorm${index}`;
    this.tensor(
      `${conv}_weight`,
      [outChannels, inChannels, kernel, kernel],
      this.heNormal(outChannels, inChannels * kernel * kernel),
    );
    const pad = (kernel - 1) >> 1;
    this.node('Conv', `${conv}_fwd`, [input, `${conv}_weight`], `${conv}_fwd`, [
      ints('kernel_shape', [kernel, kernel]),
      ints('strides', [stride, stride]),
      ints('pads', [pad, pad, pad, pad]),
      ints('dilations', [1, 1]),
    ]);
    this.tensor(`${bn}_gamma`, [outChannels], new Float32Array(outChannels).fill(bnScale));
    this.tensor(`${bn}_beta`, [outChannels], new Float32Array(outChannels));
    this.tensor(`${bn}_running_mean`, [outChannels], new Float32Array(outChannels));
    this.tensor(`${bn}_running_var`, [outChannels], new Float32Array(outChannels).fill(1));
    this.node(
      'BatchNormalization',
      `${bn}_fwd`,
      [`${conv}_fwd`, `${bn}_gamma`, `${bn}_beta`, `${bn}_running_mean`, `${bn}_running_var`],
      `${bn}_fwd`,
      [float('epsilon', 1e-5)],
    );
    return `${bn}_fwd`;
  }

  relu(scope: string, index: number, input: string, label = 'relu'): string {
    const out = `${scope}_${label}${index}${label === 'relu' ? '_fwd' : ''}`;
    this.node('Relu', out, [input], out);
    return out;
  }

  /** A graph input (field 11) or output (field 12) of float elements and these dimensions. */
  valueInfo(field: number, name: string, dims: (number | string)[]): void {
    this.graph.message(field, (v) => {
      v.string(1, name);
      v.message(2, (t) =>
        t.message(1, (tt) => {
          tt.int(1, FLOAT);
          tt.message(2, (shape) => {
            for (const d of dims)
              shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
          });
        }),
      );
    });
  }
}

/**
 * Builds ResNet-50 v1 as an ONNX model with deterministic random weights: the graph of the
 * model zoo's `resnet50-v1-7.onnx` (opset 7; Conv without bias, BatchNormalization, Relu,
 * MaxPool, Add, GlobalAveragePool, Flatten, Gemm; stride 2 on the first 1x1 convolution of
 * stages 2-4, as GluonCV's v1), with the same tensor names for the input (`data`), the
 * pooled layer (`resnetv17_pool1_fwd`) and the logits. For throughput benchmarks and tests
 * where the pretrained file cannot be downloaded; its features carry no image semantics.
 * Weights: He-normal convolutions, BatchNormalization as the identity except the last one
 * of each residual branch (scale 0.2, so activations stay finite through 16 blocks).
 * @throws {@link ConfigError} for a base width or class count that is not a positive integer.
 */
export function buildResNet50(options: ResNet50Options = {}): Uint8Array {
  const base = options.baseWidth ?? 64;
  const classes = options.classes ?? 1000;
  for (const [path, value] of [
    ['baseWidth', base],
    ['classes', classes],
  ] as const)
    if (!Number.isInteger(value) || value < 1)
      throw new ConfigError([{ path, message: `must be a positive integer, got ${value}` }]);
  const g = new GraphWriter(new Random(options.seed ?? 1));

  // Stem: conv 7x7/2, BN, ReLU, max pool 3x3/2.
  let x = g.relu(PREFIX, 0, g.convBn(PREFIX, 0, RESNET50_V1.input, 3, base, 7, 2));
  g.node('MaxPool', `${PREFIX}_pool0_fwd`, [x], `${PREFIX}_pool0_fwd`, [
    ints('kernel_shape', [3, 3]),
    ints('strides', [2, 2]),
    ints('pads', [1, 1, 1, 1]),
  ]);
  x = `${PREFIX}_pool0_fwd`;
  let channels = base;
  BLOCKS.forEach((blocks, s) => {
    const scope = `${PREFIX}_stage${s + 1}`;
    const width = base << s;
    const out = width * 4;
    let conv = 0;
    let reluIndex = 0;
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      let y = g.relu(scope, reluIndex++, g.convBn(scope, conv++, x, channels, width, 1, stride));
      y = g.relu(scope, reluIndex++, g.convBn(scope, conv++, y, width, width, 3, 1));
      y = g.convBn(scope, conv++, y, width, out, 1, 1, 0.2);
      const shortcut = b === 0 ? g.convBn(scope, conv++, x, channels, out, 1, stride) : x;
      const sum = `${scope}__plus${b}`;
      g.node('Add', sum, [y, shortcut], sum);
      x = g.relu(scope, b, sum, 'activation');
      channels = out;
    }
  });
  g.node('GlobalAveragePool', RESNET50_V1.pooledTensor, [x], RESNET50_V1.pooledTensor);
  g.node('Flatten', 'flatten_473', [RESNET50_V1.pooledTensor], 'flatten_473', [
    (a) => {
      a.string(1, 'axis');
      a.int(3, 1);
      a.int(20, 2);
    },
  ]);
  g.tensor(`${PREFIX}_dense0_weight`, [classes, channels], g.heNormal(classes, channels));
  g.tensor(`${PREFIX}_dense0_bias`, [classes], new Float32Array(classes));
  g.node(
    'Gemm',
    RESNET50_V1.logits,
    ['flatten_473', `${PREFIX}_dense0_weight`, `${PREFIX}_dense0_bias`],
    RESNET50_V1.logits,
    [
      float('alpha', 1),
      float('beta', 1),
      (a) => {
        a.string(1, 'transB');
        a.int(3, 1);
        a.int(20, 2);
      },
    ],
  );
  g.graph.string(2, 'resnet50-v1 (advrec, random weights)');
  g.valueInfo(11, RESNET50_V1.input, ['N', 3, 224, 224]);
  g.valueInfo(12, RESNET50_V1.logits, ['N', classes]);
  const model = new ProtoWriter();
  model.int(1, 3);
  model.string(2, '@advrec/features');
  model.bytes(7, g.graph);
  model.message(8, (opset) => {
    opset.string(1, '');
    opset.int(2, 7);
  });
  return model.finish();
}
