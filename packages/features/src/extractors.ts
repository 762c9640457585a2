import { ConfigError } from '@advrec/data';
import { RESNET50_V1 } from './resnet50.js';

/** A pretrained CNN advrec knows: where it comes from, and which tensor holds its features. */
export interface KnownExtractor {
  readonly name: string;
  readonly description: string;
  readonly inputName: string;
  /** The feature tensor `extractFeatures` reads by default for this model. */
  readonly tensor: string;
  /** Feature width after pooling. */
  readonly dimension: number;
  /** Where to get it (nothing is downloaded at run time). */
  readonly source: {
    readonly url: string;
    /** SHA-256 of the file at `url` (pinned from the publisher's Git LFS pointer or a copy). */
    readonly sha256: string;
    readonly bytes: number;
    /** For archives: the model file inside it. */
    readonly member?: string;
    readonly license: string;
  };
  /** SHA-256 of the `.onnx` file itself, when measured (identifies a file passed as --model). */
  readonly modelSha256: string | null;
}

/**
 * Extractors with pinned sources. `resnet50-v1` is the mission's default (the AMR paper's
 * CNN family): the ONNX model zoo's `resnet50-v1-7`, whose pooled layer
 * `resnetv17_pool1_fwd` gives 2048-d features. `mobilenetv2-12-int8` is the small model in
 * `../shared/models` (1280-d from tensor `627`, pooled over 7x7).
 */
export const KNOWN_EXTRACTORS: readonly KnownExtractor[] = [
  {
    name: 'resnet50-v1',
    description:
      'ResNet-50 v1 (ImageNet, ONNX model zoo resnet50-v1-7, GluonCV), 2048-d global-average-pooled features',
    inputName: RESNET50_V1.input,
    tensor: RESNET50_V1.pooledTensor,
    dimension: RESNET50_V1.dimension,
    source: {
      url: RESNET50_V1.source.url,
      sha256: RESNET50_V1.source.sha256,
      bytes: RESNET50_V1.source.bytes,
      member: RESNET50_V1.source.member,
      license: RESNET50_V1.source.license,
    },
    modelSha256: null,
  },
  {
    name: 'mobilenetv2-12-int8',
    description:
      'MobileNetV2 (ImageNet, ONNX model zoo mobilenetv2-12-int8), 1280-d features from tensor 627 averaged over 7x7',
    inputName: 'input',
    tensor: '627',
    dimension: 1280,
    source: {
      url: 'https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx',
      sha256: '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f',
      bytes: 3_655_640,
      license: 'Apache-2.0',
    },
    modelSha256: '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f',
  },
];

/**
 * A known extractor by name.
 * @throws {@link ConfigError} at `path` naming the known extractors.
 */
export function knownExtractor(name: string, path = 'extractor'): KnownExtractor {
  const found = KNOWN_EXTRACTORS.find((e) => e.name === name);
  if (!found)
    throw new ConfigError([
      {
        path,
        message: `unknown extractor "${name}" (known: ${KNOWN_EXTRACTORS.map((e) => e.name).join(', ')})`,
      },
    ]);
  return found;
}

/**
 * The known extractor a model file is, by its SHA-256, or by a feature tensor only that
 * extractor's graph has (`resnetv17_pool1_fwd`: any ResNet-50 v1 from the zoo, including
 * the graph {@link buildResNet50} writes). Null when it is none of them.
 */
export function identifyExtractor(
  sha256: string,
  tensors: ReadonlySet<string>,
): KnownExtractor | null {
  return (
    KNOWN_EXTRACTORS.find((e) => e.modelSha256 === sha256) ??
    KNOWN_EXTRACTORS.find((e) => e.modelSha256 === null && tensors.has(e.tensor)) ??
    null
  );
}
