/**
 * `@advrec/losses`: pairwise ranking losses, value and gradient w.r.t. the scores.
 *
 * @packageDocumentation
 */
export { bprBatch, bprLoss, bprLossGradient, l2Penalty, sigmoid, softplus } from './bpr.js';
export type { BprBatchResult } from './bpr.js';
