/**
 * The sequential part of `pnpm bench quality-deep`: SASRec and GRU4Rec (the `@advrec/sasrec`
 * and `@advrec/gru4rec` model packages, defined only through the sequential Model contract)
 * on Amazon Games with the SASRec paper's protocol, and ATSRec (FGM on the item embeddings
 * during training) against the same model continued for the same epochs.
 *
 * Run as a child process per model (`node <this file> <model> <out.json>`), so the two
 * single-threaded tfjs-wasm runs use both cores.
 */
import { writeFile } from 'node:fs/promises';
import { median } from '../context.js';
import { leaveLastOut, readDelimited, sequencesFromLog } from '@advrec/data';
import type { SequenceSplit } from '@advrec/data';
import { meanPairwiseCosine, meanRowNorm, pairedTTest } from '@advrec/metrics';
import { SEQUENCE_ITEM_TABLE, cloneTable } from '@advrec/models';
import type { ParameterTable, SequentialModel } from '@advrec/models';
import { GRU4Rec } from '@advrec/gru4rec';
import { SASRec } from '@advrec/sasrec';
import { fgm } from '@advrec/adversary';
import {
  craftSequencePerturbation,
  evaluateSequential,
  hitRateAndNdcg,
  loadTfjs,
  sequenceCandidates,
  trainSequentialModel,
} from '@advrec/trainer';
import type {
  HitRateAndNdcg,
  SequenceEvaluationSet,
  SequenceOptimizerState,
  SequenceTrainResult,
} from '@advrec/trainer';
import type { Tfjs } from '@advrec/models';

const SEED = 2024;

/** The run's epochs and epsilons (`pnpm bench quality-deep`'s options). */
export interface SequentialQualitySettings {
  readonly epochs: number;
  readonly continueEpochs: number;
  /** ATSRec epsilons tried, relative to the trained model's mean item-row norm. */
  readonly atsrecEpsilons: readonly number[];
  /** FGM attack epsilons, relative likewise. */
  readonly attackEpsilons: readonly number[];
  /** Run ATSRec on GRU4Rec too (always on SASRec). */
  readonly gru4recAtsrec: boolean;
}

export interface SequentialQualityOptions {
  readonly file: string;
  readonly model: 'sasrec' | 'gru4rec';
  readonly log: (line: string) => void;
  readonly settings: SequentialQualitySettings;
}

function summary(e: HitRateAndNdcg) {
  return { hitRate10: e.hitRate, ndcg10: e.ndcg };
}

function trainingSummary(r: SequenceTrainResult) {
  return {
    engine: r.engine,
    epochsRun: r.epochs.length,
    bestEpoch: r.bestEpoch + 1,
    stoppedEarly: r.stoppedEarly,
    seconds: r.seconds,
    medianEpochSeconds: median(r.epochs.map((e) => e.seconds)),
    medianSequencesPerSecond: median(r.epochs.map((e) => e.sequencesPerSecond)),
    medianPositionsPerSecond: median(r.epochs.map((e) => e.positionsPerSecond)),
    validation: r.epochs
      .filter((e) => e.validation)
      .map((e) => ({ epoch: e.epoch + 1, ...e.validation })),
  };
}

/** SASRec's sampled protocol at 10, through the metrics package's evaluator. */
async function atTen(
  tf: Tfjs,
  model: SequentialModel,
  set: SequenceEvaluationSet,
  perturbation?: Float32Array,
): Promise<HitRateAndNdcg> {
  const r = await evaluateSequential(tf, model, set, {
    metrics: ['hr', 'ndcg'],
    ...(perturbation ? { perturbation } : {}),
  });
  return hitRateAndNdcg(r);
}

function comparison(a: HitRateAndNdcg, b: HitRateAndNdcg) {
  const out: Record<string, unknown> = {};
  for (const key of ['hitRate', 'ndcg'] as const) {
    const t = pairedTTest(a.perUser[key], b.perUser[key]);
    out[key === 'hitRate' ? 'hitRate10' : 'ndcg10'] = {
      relativeChange: a[key] / b[key] - 1,
      pValue: t.pValue,
    };
  }
  return out;
}

export async function runSequentialQuality(
  options: SequentialQualityOptions,
): Promise<Record<string, unknown>> {
  const { tf, backend } = await loadTfjs();
  const log = options.log;
  const split: SequenceSplit = leaveLastOut(
    sequencesFromLog(await readDelimited(options.file, { delimiter: 'whitespace', header: false })),
  );
  const validation = sequenceCandidates(split, 'validation', { seed: SEED + 1 });
  const test = sequenceCandidates(split, 'test', { seed: SEED + 2 });
  const { epochs, continueEpochs } = options.settings;
  // Epsilons are relative to the trained model's mean item-row norm (the scale of what is
  // perturbed; APR's 0.5 was set for MF embeddings of norm about 1).
  const relativeEpsilons = options.settings.atsrecEpsilons;
  const relativeAttackEpsilons = options.settings.attackEpsilons;
  const withAdversarial = options.model === 'sasrec' || options.settings.gru4recAtsrec;
  const make = (): SequentialModel =>
    options.model === 'sasrec'
      ? new SASRec(split.numItems, { seed: SEED })
      : new GRU4Rec(split.numItems, { seed: SEED });
  const model = make();
  log(`${options.model}: ${backend}, ${epochs} epochs max`);
  const base = await trainSequentialModel(tf, model, split, {
    epochs,
    seed: SEED,
    validateEvery: 5,
    patience: 3,
    validation,
    onEpoch: (e) =>
      log(
        `${options.model} epoch ${e.epoch + 1}: loss ${e.loss.toFixed(4)}, ${e.seconds.toFixed(1)} s${e.validation ? `, valid NDCG@10 ${e.validation.ndcg.toFixed(4)}` : ''}`,
      ),
  });
  const checkpoint: ParameterTable[] = model.tables.map(cloneTable);
  const items = model.tables.find((t) => t.name === SEQUENCE_ITEM_TABLE)!;
  const meanItemNorm = meanRowNorm(items.values, items.rows, items.dimension);
  const epsilons = relativeEpsilons.map((e) => e * meanItemNorm);
  const attackEpsilons = relativeAttackEpsilons.map((e) => e * meanItemNorm);
  const restore = () => {
    for (const t of checkpoint) model.tables.find((x) => x.name === t.name)!.values.set(t.values);
  };
  const optimizer: SequenceOptimizerState = base.optimizer;
  const diversity = () => meanPairwiseCosine(items.values, items.rows, items.dimension).meanCosine;
  const robustness = async (clean: HitRateAndNdcg) => {
    const points = [];
    for (const [k, epsilon] of attackEpsilons.entries()) {
      const perturbation = await craftSequencePerturbation(tf, model, split, {
        adversary: fgm,
        epsilon,
        seed: SEED,
      });
      const attacked = await atTen(tf, model, test, perturbation);
      points.push({
        relativeEpsilon: relativeAttackEpsilons[k],
        epsilon,
        hitRate10: attacked.hitRate,
        ndcg10: attacked.ndcg,
        ndcgChange: attacked.ndcg / clean.ndcg - 1,
      });
    }
    return points;
  };
  const baseTest = await atTen(tf, model, test);
  const result: Record<string, unknown> = {
    model: options.model,
    config: model.config,
    backend,
    training: trainingSummary(base),
    test: summary(baseTest),
    itemEmbeddingMeanCosine: diversity(),
    meanItemNorm,
  };
  log(`${options.model}: test ${JSON.stringify(result.test)}`);
  if (!withAdversarial || continueEpochs === 0) return result;

  const continueFrom = async (adversarial?: { epsilon: number; adversarialWeight: number }) => {
    restore();
    const run = await trainSequentialModel(tf, model, split, {
      epochs: continueEpochs,
      seed: SEED + 7,
      startEpoch: base.epochs.length,
      optimizer,
      ...(adversarial ? { adversarial } : {}),
    });
    const valid = await atTen(tf, model, validation);
    const evaluation = await atTen(tf, model, test);
    return { run, valid, evaluation, cosine: diversity() };
  };
  const continued = await continueFrom();
  const continuedRobustness = await robustness(continued.evaluation);
  log(`${options.model} continued: ${JSON.stringify(summary(continued.evaluation))}`);
  const arms = [];
  for (const [k, epsilon] of epsilons.entries()) {
    const arm = await continueFrom({ epsilon, adversarialWeight: 1 });
    log(
      `atsrec eps ${epsilon}: valid NDCG@10 ${arm.valid.ndcg.toFixed(4)}, test ${JSON.stringify(summary(arm.evaluation))}`,
    );
    arms.push({
      relativeEpsilon: relativeEpsilons[k]!,
      epsilon,
      ...arm,
      robustness: await robustness(arm.evaluation),
    });
  }
  const chosen = arms.reduce((a, b) => (b.valid.ndcg > a.valid.ndcg ? b : a));
  return {
    ...result,
    continued: {
      epochs: continueEpochs,
      training: trainingSummary(continued.run),
      validationNdcg10: continued.valid.ndcg,
      test: summary(continued.evaluation),
      itemEmbeddingMeanCosine: continued.cosine,
      fgmOnItemEmbeddings: continuedRobustness,
    },
    atsrec: arms.map((arm) => ({
      relativeEpsilon: arm.relativeEpsilon,
      epsilon: arm.epsilon,
      adversarialWeight: 1,
      epochs: continueEpochs,
      training: trainingSummary(arm.run),
      validationNdcg10: arm.valid.ndcg,
      test: summary(arm.evaluation),
      itemEmbeddingMeanCosine: arm.cosine,
      fgmOnItemEmbeddings: arm.robustness,
      versusContinued: comparison(arm.evaluation, continued.evaluation),
    })),
    chosenOnValidation: {
      relativeEpsilon: chosen.relativeEpsilon,
      epsilon: chosen.epsilon,
      versusContinued: comparison(chosen.evaluation, continued.evaluation),
    },
  };
}

// Child-process entry: node --import tsx sequential-quality.ts <model> <data file> <out.json> <settings JSON>
if (process.argv[1]?.endsWith('sequential-quality.ts') && process.argv.length >= 6) {
  const [model, file, out, settings] = process.argv.slice(2) as [
    'sasrec' | 'gru4rec',
    string,
    string,
    string,
  ];
  const result = await runSequentialQuality({
    file,
    model,
    settings: JSON.parse(settings) as SequentialQualitySettings,
    log: (line) => console.log(`[quality-deep ${model}] ${line}`),
  });
  await writeFile(out, JSON.stringify(result, null, 2));
}
