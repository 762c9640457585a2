import * as tf from '@tensorflow/tfjs';
import { describeModelContract } from './contract.js';
import { mfReferenceScore } from './mf.js';
import type { ReferenceScore } from './model.js';
import { TfjsModel, registerTfjsModel } from './tfjs-model.js';

await tf.setBackend('cpu');

/** A plugin-style model with a bias: y_ui = p_u . q_i + b_i (b_i as a 1-wide item table). */
const biasedScore: ReferenceScore = (t, users, items, dense) =>
  t.add(
    mfReferenceScore(t, users, items, dense),
    t.reshape(items.itemBias!, [-1]),
  ) as ReturnType<ReferenceScore>;

const definition = {
  modelName: 'contract-biased-mf',
  description: 'MF with item bias, defined in tfjs (contract test)',
  tables: [
    { name: 'userEmbeddings', side: 'user', dimension: 5, initStd: 0.5 },
    { name: 'itemEmbeddings', side: 'item', dimension: 5, initStd: 0.5 },
    { name: 'itemBias', side: 'item', dimension: 1, initStd: 0.5, perturbable: false },
  ],
  score: biasedScore,
} as const;
registerTfjsModel(tf, definition);

describeModelContract({
  name: 'a tfjs-defined plugin model',
  create: () => new TfjsModel(tf, definition, { numUsers: 17, numItems: 29 }, { seed: 3 }),
  tf,
});
