/**
 * `@advrec/sasrec`: SASRec (Kang and McAuley, "Self-Attentive Sequential Recommendation",
 * ICDM 2018) as an advrec sequential model package. Importing it registers the model as
 * `sasrec`. It is defined only through the sequential Model contract of `@advrec/models`:
 * `@advrec/trainer` trains it on next-item prediction (with ATSRec's adversarial
 * perturbations of its item embeddings when asked) and evaluates it with the paper's
 * protocol, with no change to the core.
 *
 * @packageDocumentation
 */
import { SEQUENTIAL_MODEL_SPECIFICATION_VERSION, registerSequentialModel } from '@advrec/models';
import type { JsonObject, SequentialModelFactory } from '@advrec/models';
import { SASREC_MODEL_NAME, SASRec } from './sasrec.js';
import type { SASRecConfig } from './sasrec.js';

export {
  OUTPUT_NORM,
  POSITION_EMBEDDINGS,
  SASREC_MODEL_NAME,
  SASRec,
  blockTable,
  resolveSASRecConfig,
  sasrecEncoder,
} from './sasrec.js';
export type { ResolvedSASRecConfig, SASRecConfig } from './sasrec.js';
export { SASRecGradientKernel, createPassKernel } from './kernel.js';

/** The registry entry of SASRec (registered when this module is imported). */
export const sasrecFactory: SequentialModelFactory = {
  kind: 'sequential',
  specificationVersion: SEQUENTIAL_MODEL_SPECIFICATION_VERSION,
  modelName: SASREC_MODEL_NAME,
  description:
    'SASRec (ICDM 2018): causal self-attention over the most recent items; ATSRec perturbs its item embeddings',
  create(context, config: JsonObject) {
    const { seed, ...rest } = config as SASRecConfig & JsonObject;
    return new SASRec(context.numItems, {
      ...(rest as SASRecConfig),
      seed: typeof seed === 'number' ? seed : context.seed,
    });
  },
  restore(state) {
    return new SASRec(state.numItems, state.config as SASRecConfig, state.tables);
  },
};

registerSequentialModel(sasrecFactory);
