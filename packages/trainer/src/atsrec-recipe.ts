/**
 * ATSRec as a library recipe (the CLI's `reproduce atsrec` and `pnpm bench quality-deep` both
 * call it): a sequential model trained with early stopping on validation, then, from its best
 * epoch and with its Adam state, the same model continued for the same epochs and ATSRec
 * (FGM on the item embeddings during training) at each epsilon; every arm evaluated on the
 * sampled protocol at 10, attacked by FGM on its item embeddings, and ATSRec compared with
 * the continued model by a paired t-test over test users.
 */
import { fgm } from '@advrec/adversary';
import type { SequenceSplit } from '@advrec/data';
import { meanPairwiseCosine, meanRowNorm, pairedTTest } from '@advrec/metrics';
import { SEQUENCE_ITEM_TABLE, cloneTable } from '@advrec/models';
import type { SequentialModel, Tfjs } from '@advrec/models';
import { trainSequentialModel } from './sequential.js';
import type { SequenceEpochEvent, SequenceTrainConfig, SequenceTrainResult } from './sequential.js';
import { tableOf } from './sequence-pass.js';
import { craftSequencePerturbation } from './sequential-attack.js';
import { evaluateSequential, hitRateAndNdcg } from './sequential-evaluation.js';
import type { HitRateAndNdcg, SequenceEvaluationSet } from './sequential-evaluation.js';

/** NDCG@10 under FGM on the item embeddings at one epsilon. */
export interface SequenceRobustnessPoint {
  /** Epsilon relative to the arm's mean item-row norm. */
  readonly relativeEpsilon: number;
  readonly epsilon: number;
  readonly hitRate10: number;
  readonly ndcg10: number;
  /** `ndcg10 / clean NDCG@10 - 1`. */
  readonly ndcgChange: number;
}

/** One trained model of an ATSRec experiment, evaluated. */
export interface SequentialArm {
  /** `base`, `continued` or `atsrec`. */
  readonly kind: 'base' | 'continued' | 'atsrec';
  /** ATSRec's epsilon relative to the base model's mean item-row norm, and absolute. */
  readonly relativeEpsilon?: number;
  readonly epsilon?: number;
  /** Its training, the base phase's epochs first for continued arms. */
  readonly training: SequenceTrainResult;
  readonly test: HitRateAndNdcg;
  /** The final model on the validation targets (what the experiment chooses an epsilon on). */
  readonly validation: HitRateAndNdcg;
  /** Mean pairwise cosine of the item embeddings (ATSRec's diversity figure). */
  readonly itemEmbeddingMeanCosine: number;
  readonly meanItemNorm: number;
  readonly robustness: readonly SequenceRobustnessPoint[];
}

/** A relative change with its paired t-test p-value. */
export interface PairedChange {
  readonly change: number;
  readonly p: number;
}

/** Arm `a` against arm `b` on the same test users. */
export interface SequentialComparison {
  readonly hitRate10: PairedChange;
  readonly ndcg10: PairedChange;
}

/** Options of {@link evaluateSequentialArm}. */
export interface SequentialArmEvaluation {
  readonly validation: SequenceEvaluationSet;
  readonly test: SequenceEvaluationSet;
  /** FGM attack epsilons, relative to the model's mean item-row norm. */
  readonly attackEpsilons: readonly number[];
  /** The attack's seed. */
  readonly seed: number;
}

/** The item table's mean row norm (the unit of relative epsilons on sequential models). */
export function meanItemRowNorm(model: SequentialModel): number {
  const items = tableOf(model, SEQUENCE_ITEM_TABLE);
  return meanRowNorm(items.values, items.rows, items.dimension);
}

/** Mean pairwise cosine of the item embeddings. */
export function itemEmbeddingCosine(model: SequentialModel): number {
  const items = tableOf(model, SEQUENCE_ITEM_TABLE);
  return meanPairwiseCosine(items.values, items.rows, items.dimension).meanCosine;
}

/** SASRec's sampled protocol at 10 on `set`, the item table perturbed when given. */
async function atTen(
  tf: Tfjs,
  model: SequentialModel,
  set: SequenceEvaluationSet,
  split: 'test' | 'validation',
  perturbation?: Float32Array,
): Promise<HitRateAndNdcg> {
  const result = await evaluateSequential(tf, model, set, {
    split,
    metrics: ['hr', 'ndcg'],
    ...(perturbation ? { perturbation } : {}),
  });
  return hitRateAndNdcg(result);
}

/**
 * The model as it stands, evaluated: test and validation at 10, item diversity, and NDCG@10
 * under FGM on the item embeddings (the perturbation from the training loss) at each
 * relative epsilon.
 */
export async function evaluateSequentialArm(
  tf: Tfjs,
  model: SequentialModel,
  split: SequenceSplit,
  arm: Pick<SequentialArm, 'kind' | 'training' | 'relativeEpsilon' | 'epsilon'>,
  options: SequentialArmEvaluation,
): Promise<SequentialArm> {
  const test = await atTen(tf, model, options.test, 'test');
  const validation = await atTen(tf, model, options.validation, 'validation');
  const norm = meanItemRowNorm(model);
  const robustness: SequenceRobustnessPoint[] = [];
  for (const relativeEpsilon of options.attackEpsilons) {
    const epsilon = relativeEpsilon * norm;
    const perturbation = await craftSequencePerturbation(tf, model, split, {
      adversary: fgm,
      epsilon,
      seed: options.seed,
    });
    const attacked = await atTen(tf, model, options.test, 'test', perturbation);
    robustness.push({
      relativeEpsilon,
      epsilon,
      hitRate10: attacked.hitRate,
      ndcg10: attacked.ndcg,
      ndcgChange: attacked.ndcg / test.ndcg - 1,
    });
  }
  return {
    ...arm,
    test,
    validation,
    itemEmbeddingMeanCosine: itemEmbeddingCosine(model),
    meanItemNorm: norm,
    robustness,
  };
}

/** Relative changes of `a` over `b` with paired t-tests over the test users. */
export function compareSequentialArms(a: SequentialArm, b: SequentialArm): SequentialComparison {
  const change = (key: 'hitRate' | 'ndcg'): PairedChange => ({
    change: a.test[key] / b.test[key] - 1,
    p: pairedTTest(a.test.perUser[key], b.test.perUser[key]).pValue,
  });
  return { hitRate10: change('hitRate'), ndcg10: change('ndcg') };
}

/** Training settings every phase shares (the phases set epochs, validation and the rest). */
export type AtsrecTrainingSettings = Pick<
  SequenceTrainConfig,
  | 'batchSize'
  | 'adam'
  | 'itemL2'
  | 'engine'
  | 'threads'
  | 'signal'
  | 'bucketByLength'
  | 'positionWeighting'
>;

/** What a caller hears about while an experiment runs (progress bars, checkpoints). */
export interface AtsrecHooks {
  /**
   * A phase starts: `label` (`base`, `continued`, `atsrec eps 0.5`), its epochs at most, and
   * the number of its first epoch (its events count from there).
   */
  onPhase?(phase: {
    readonly kind: SequentialArm['kind'];
    readonly label: string;
    readonly epochs: number;
    readonly startEpoch: number;
  }): void;
  onEpoch?(event: SequenceEpochEvent): void;
  /** A phase ended (interrupted or not). */
  onPhaseEnd?(result: SequenceTrainResult): void;
  /** An arm is trained, before it is evaluated: the model holds its tables (write a checkpoint). */
  onArmTrained?(
    arm: Pick<SequentialArm, 'kind' | 'relativeEpsilon' | 'epsilon'>,
  ): void | Promise<void>;
}

/** Options of {@link runAtsrecExperiment}. */
export interface AtsrecExperimentOptions {
  /** Epochs of the base model at most (early stopping on validation). */
  readonly epochs: number;
  /** Epochs of the continued model and of each ATSRec arm (>= 1). */
  readonly continueEpochs: number;
  /** ATSRec epsilons, relative to the base model's mean item-row norm (one arm each). */
  readonly relativeEpsilons: readonly number[];
  /** ATSRec's lambda. */
  readonly adversarialWeight: number;
  /** FGM attack epsilons for every arm's robustness, relative likewise. */
  readonly attackEpsilons: readonly number[];
  readonly validation: SequenceEvaluationSet;
  readonly test: SequenceEvaluationSet;
  /** The base phase's seed (and the attacks'). */
  readonly seed: number;
  /** The continued phases' seed (default `seed`). */
  readonly continueSeed?: number;
  /** Validate every this many epochs in the base phase, and its patience. */
  readonly validateEvery: number;
  readonly patience: number;
  readonly training?: AtsrecTrainingSettings;
  readonly hooks?: AtsrecHooks;
}

/** What {@link runAtsrecExperiment} returns; null arms when a signal stopped it. */
export interface AtsrecExperiment {
  /** The model both continued arms start from, as it is. */
  readonly base: SequentialArm;
  readonly continued: SequentialArm;
  /** One arm per relative epsilon, in order. */
  readonly atsrec: readonly SequentialArm[];
  /** The ATSRec arm with the best validation NDCG@10 (the first at a tie). */
  readonly chosen: SequentialArm;
  /** Every ATSRec arm against the continued model, in order. */
  readonly versusContinued: readonly SequentialComparison[];
}

/**
 * Runs the ATSRec experiment on `model` (fresh: it is trained here). Returns null when the
 * training settings' signal stopped a phase; the model then holds that phase's last complete
 * epoch.
 */
export async function runAtsrecExperiment(
  tf: Tfjs,
  model: SequentialModel,
  split: SequenceSplit,
  options: AtsrecExperimentOptions,
): Promise<AtsrecExperiment | null> {
  if (options.continueEpochs < 1) throw new RangeError('continueEpochs must be at least 1');
  if (options.relativeEpsilons.length === 0)
    throw new RangeError('relativeEpsilons needs at least one epsilon');
  const hooks = options.hooks ?? {};
  const evaluation: SequentialArmEvaluation = {
    validation: options.validation,
    test: options.test,
    attackEpsilons: options.attackEpsilons,
    seed: options.seed,
  };
  const phase = async (
    kind: SequentialArm['kind'],
    label: string,
    config: SequenceTrainConfig,
  ): Promise<SequenceTrainResult> => {
    hooks.onPhase?.({ kind, label, epochs: config.epochs, startEpoch: config.startEpoch ?? 0 });
    const result = await trainSequentialModel(tf, model, split, {
      ...options.training,
      ...config,
      ...(hooks.onEpoch ? { onEpoch: (e) => hooks.onEpoch!(e) } : {}),
    });
    hooks.onPhaseEnd?.(result);
    return result;
  };
  const base = await phase('base', 'base', {
    epochs: options.epochs,
    seed: options.seed,
    validateEvery: options.validateEvery,
    patience: options.patience,
    validation: options.validation,
  });
  if (base.interrupted) return null;
  await hooks.onArmTrained?.({ kind: 'base' });
  const pretrained = model.tables.map(cloneTable);
  const baseArm = await evaluateSequentialArm(
    tf,
    model,
    split,
    { kind: 'base', training: base },
    evaluation,
  );
  const continueFrom = async (
    kind: 'continued' | 'atsrec',
    relativeEpsilon?: number,
  ): Promise<SequentialArm | null> => {
    for (const t of pretrained) model.tables.find((x) => x.name === t.name)!.values.set(t.values);
    const epsilon =
      relativeEpsilon === undefined ? undefined : relativeEpsilon * baseArm.meanItemNorm;
    const run = await phase(
      kind,
      kind === 'atsrec' ? `atsrec eps ${relativeEpsilon}` : 'continued',
      {
        epochs: options.continueEpochs,
        seed: options.continueSeed ?? options.seed,
        startEpoch: base.epochs.length,
        optimizer: base.optimizer,
        ...(epsilon === undefined
          ? {}
          : { adversarial: { epsilon, adversarialWeight: options.adversarialWeight } }),
      },
    );
    if (run.interrupted) return null;
    const arm = {
      kind,
      ...(epsilon === undefined ? {} : { relativeEpsilon, epsilon }),
    };
    await hooks.onArmTrained?.(arm);
    const training = { ...run, epochs: [...base.epochs, ...run.epochs] };
    return evaluateSequentialArm(tf, model, split, { ...arm, training }, evaluation);
  };
  const continued = await continueFrom('continued');
  if (!continued) return null;
  const atsrec: SequentialArm[] = [];
  for (const relativeEpsilon of options.relativeEpsilons) {
    const arm = await continueFrom('atsrec', relativeEpsilon);
    if (!arm) return null;
    atsrec.push(arm);
  }
  const chosen = atsrec.reduce((a, b) => (b.validation.ndcg > a.validation.ndcg ? b : a));
  return {
    base: baseArm,
    continued,
    atsrec,
    chosen,
    versusContinued: atsrec.map((arm) => compareSequentialArms(arm, continued)),
  };
}
