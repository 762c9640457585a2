/**
 * `@advrec/adversary`: the Adversary contract, FGM, FGSM, random noise and none, a
 * registry for plugins, and the attack of APR section 2.3 on a trained model.
 *
 * @packageDocumentation
 */
export {
  ADVERSARY_SPECIFICATION_VERSION,
  fgm,
  fgsm,
  getAdversary,
  listAdversaries,
  noAdversary,
  perturbSteps,
  randomNoise,
  registerAdversary,
} from './adversary.js';
export type { Adversary, PerturbContext } from './adversary.js';
export { craftPerturbation, perturbedCopy } from './attack.js';
export type { CraftPerturbationOptions, CraftedPerturbation } from './attack.js';
