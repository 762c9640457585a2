/**
 * `@advrec/onnx`: the one home of onnxruntime-node in advrec. Loading it (optional, with a
 * typed "not installed" result), the protobuf writer and reader, ONNX graph builders
 * (GEMM, GEMM+TopK, intermediate-tensor exposure), dense products with a plain-JS fallback
 * and the top-k scoring session.
 *
 * @packageDocumentation
 */
export {
  ONNXRUNTIME_DISABLE_ENV,
  ONNXRUNTIME_INSTALL_HINT,
  OnnxRuntimeMissingError,
  loadOnnxRuntime,
  requireOnnxRuntime,
} from './runtime.js';
export type {
  OnnxRuntimeLoad,
  OnnxRuntimeModule,
  OnnxSession,
  OnnxSessionOptions,
  OnnxTensor,
} from './runtime.js';
export { ProtoWriter, readFields, text } from './protobuf.js';
export type { ProtoField } from './protobuf.js';
export {
  OnnxModelError,
  buildBatchedMatMulModel,
  buildBatchedSoftmaxModel,
  buildGemmModel,
  buildTopKScoringModel,
  topKScoringUsers,
  exposeTensor,
  inspectOnnxModel,
} from './graphs.js';
export type { OnnxGraphInfo, TopKScoringModelSpec } from './graphs.js';
export {
  OnnxGemm,
  createGemm,
  jsGemm,
  multiplyBatchedJs,
  multiplyJs,
  softmaxBatchedJs,
} from './gemm.js';
export type {
  BatchedGemmArguments,
  Gemm,
  GemmArguments,
  GemmBackendName,
  GemmOptions,
  SoftmaxBatchedArguments,
} from './gemm.js';
export { OnnxTopKScorer } from './topk.js';
