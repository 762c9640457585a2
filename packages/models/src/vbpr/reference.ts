import type { ReferenceScore } from '../model.js';
import { ITEM_EMBEDDINGS, USER_EMBEDDINGS } from '../mf.js';
import {
  FEATURE_PROJECTION,
  ITEM_FEATURES,
  USER_VISUAL_EMBEDDINGS,
  VISUAL_BIAS,
} from './config.js';

/**
 * The reference definition in tfjs: `p_u . q_i + h_u . (c_i E)` (+ `c_i . beta'`), with
 * `h_u = p_u` (shared) or theta_u; E stored as `D x K` (the transpose of the paper's
 * `K x D`), so `E c_i` is the row `c_i E`.
 */
export const vbprReferenceScore: ReferenceScore = (tf, users, items, dense) => {
  const p = users[USER_EMBEDDINGS]!;
  const q = items[ITEM_EMBEDDINGS]!;
  const c = items[ITEM_FEATURES]!;
  const e = dense[FEATURE_PROJECTION]!;
  const h = users[USER_VISUAL_EMBEDDINGS] ?? p;
  const visual = tf.matMul(c, e);
  let score = tf.add(tf.sum(tf.mul(p, q), 1), tf.sum(tf.mul(h, visual), 1));
  const beta = dense[VISUAL_BIAS];
  if (beta) score = tf.add(score, tf.reshape(tf.matMul(c, beta), [-1]));
  return score as ReturnType<ReferenceScore>;
};
