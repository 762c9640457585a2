/**
 * `@advrec/gru4rec`: GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent
 * Neural Networks", ICLR 2016) as an advrec sequential model package. Importing it registers
 * the model as `gru4rec`. It is defined only through the sequential Model contract of
 * `@advrec/models`: `@advrec/trainer` trains it on next-item prediction (with ATSRec's
 * adversarial perturbations of its item embeddings when asked), with no change to the core.
 *
 * @packageDocumentation
 */
import { SEQUENTIAL_MODEL_SPECIFICATION_VERSION, registerSequentialModel } from '@advrec/models';
import type { JsonObject, SequentialModelFactory } from '@advrec/models';
import { GRU4REC_MODEL_NAME, GRU4Rec } from './gru4rec.js';
import type { GRU4RecConfig } from './gru4rec.js';

export {
  GRU4REC_MODEL_NAME,
  GRU4Rec,
  GRU_INPUT_BIAS,
  GRU_INPUT_WEIGHTS,
  GRU_RECURRENT_BIAS,
  GRU_RECURRENT_WEIGHTS,
  OUTPUT_BIAS,
  OUTPUT_WEIGHTS,
  gru4recEncoder,
  resolveGRU4RecConfig,
} from './gru4rec.js';
export type { GRU4RecConfig, ResolvedGRU4RecConfig } from './gru4rec.js';
export { GRU4RecGradientKernel, createPassKernel } from './kernel.js';

/** The registry entry of GRU4Rec (registered when this module is imported). */
export const gru4recFactory: SequentialModelFactory = {
  kind: 'sequential',
  specificationVersion: SEQUENTIAL_MODEL_SPECIFICATION_VERSION,
  modelName: GRU4REC_MODEL_NAME,
  description:
    'GRU4Rec (ICLR 2016): a GRU over the item sequence, projected to the item space; ATSRec perturbs its item embeddings',
  create(context, config: JsonObject) {
    const { seed, ...rest } = config as GRU4RecConfig & JsonObject;
    return new GRU4Rec(context.numItems, {
      ...(rest as GRU4RecConfig),
      seed: typeof seed === 'number' ? seed : context.seed,
    });
  },
  restore(state) {
    return new GRU4Rec(state.numItems, state.config as GRU4RecConfig, state.tables);
  },
};

registerSequentialModel(gru4recFactory);
