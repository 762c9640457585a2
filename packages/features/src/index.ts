/**
 * `@advrec/features`: item image features from a CNN in ONNX, through sharp and
 * onnxruntime-node.
 *
 * @packageDocumentation
 */
export {
  IMAGENET_PREPROCESSING,
  preprocessImage,
  resolvePreprocessing,
  tensorSize,
} from './preprocess.js';
export type { Preprocessing } from './preprocess.js';
export { FeatureSession, extractFeatures } from './extractor.js';
export type {
  ExtractionOptions,
  ExtractionProgress,
  ExtractionResult,
  FailedImage,
  FeatureManifest,
  ImageEntry,
} from './extractor.js';
export { mergeFeatureShards, planFeatureShards } from './shards.js';
export type { FeatureShard } from './shards.js';
export { RESNET50_V1, buildResNet50 } from './resnet50.js';
export type { ResNet50Options } from './resnet50.js';
export { KNOWN_EXTRACTORS, identifyExtractor, knownExtractor } from './extractors.js';
export type { KnownExtractor } from './extractors.js';
