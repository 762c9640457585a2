/**
 * `@advrec/neumf`: NeuMF (He et al., "Neural Collaborative Filtering", WWW 2017) as an advrec
 * model package. Importing it registers the model as `neumf` (`--plugin @advrec/neumf` on
 * the command line; `model: { name: neumf }` in a run config loads it by itself). It is
 * defined only through the public Model contract of `@advrec/models`: the trainer, the
 * adversaries (APR on its four embedding surfaces) and the evaluators need no change.
 *
 * @packageDocumentation
 */
import { registerModel } from '@advrec/models';
import type { JsonObject, ModelFactory } from '@advrec/models';
import { MODEL_SPECIFICATION_VERSION } from '@advrec/models';
import { NEUMF_MODEL_NAME, NeuralMatrixFactorization } from './neumf.js';
import type { NeuMFConfig } from './neumf.js';

export {
  GMF_ITEM_EMBEDDINGS,
  GMF_USER_EMBEDDINGS,
  MLP_ITEM_EMBEDDINGS,
  MLP_USER_EMBEDDINGS,
  NEUMF_MODEL_NAME,
  NeuralMatrixFactorization,
  PREDICTION_WEIGHTS,
  mlpBias,
  mlpWeights,
  neumfReferenceScore,
  resolveNeuMFConfig,
} from './neumf.js';
export type { NeuMFConfig, ResolvedNeuMFConfig } from './neumf.js';

/** The registry entry of NeuMF (registered when this module is imported). */
export const neumfFactory: ModelFactory = {
  specificationVersion: MODEL_SPECIFICATION_VERSION,
  modelName: NEUMF_MODEL_NAME,
  description:
    'NeuMF (NCF, WWW 2017): GMF and MLP towers fused by a prediction layer; APR perturbs its four embedding tables',
  create(context, config: JsonObject) {
    const { seed, ...rest } = config as NeuMFConfig & JsonObject;
    return new NeuralMatrixFactorization(context, {
      ...(rest as NeuMFConfig),
      seed: typeof seed === 'number' ? seed : context.seed,
    });
  },
  restore(state) {
    return new NeuralMatrixFactorization(state, state.config as NeuMFConfig, state.tables);
  },
};

registerModel(neumfFactory);
