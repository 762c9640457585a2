/**
 * `@advrec/adversary`: the Adversary contract, FGM, FGSM, PGD (L2 and L-infinity), random noise and none, a
 * registry for plugins, and the attack of APR section 2.3 on a trained model.
 *
 * @packageDocumentation
 */
export {
  ADVERSARY_SPECIFICATION_VERSION,
  fgm,
  fgsm,
  getAdversary,
  hasAdversary,
  listAdversaries,
  noAdversary,
  perturbSteps,
  randomNoise,
  registerAdversary,
} from './adversary.js';
export type { Adversary, PerturbContext } from './adversary.js';
export { createPgd, pgd, pgdLinf } from './pgd.js';
export type { PgdOptions } from './pgd.js';
export { craftPerturbation, craftPerturbationOn, perturbedCopy } from './attack.js';
export type {
  CraftPerturbationOptions,
  CraftedPerturbation,
  PerturbationTriples,
} from './attack.js';
