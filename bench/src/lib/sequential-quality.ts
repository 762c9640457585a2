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
import type { SequentialModel } from '@advrec/models';
import { GRU4Rec } from '@advrec/gru4rec';
import { SASRec } from '@advrec/sasrec';
import {
  evaluateSequentialArm,
  loadTfjs,
  runAtsrecExperiment,
  sequenceCandidates,
  trainSequentialModel,
} from '@advrec/trainer';
import type {
  AtsrecExperiment,
  HitRateAndNdcg,
  SequenceEpochEvent,
  SequenceTrainResult,
  SequentialArm,
  SequentialComparison,
} from '@advrec/trainer';

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

function comparison(c: SequentialComparison) {
  return {
    hitRate10: { relativeChange: c.hitRate10.change, pValue: c.hitRate10.p },
    ndcg10: { relativeChange: c.ndcg10.change, pValue: c.ndcg10.p },
  };
}

function robustnessPoints(arm: SequentialArm) {
  return arm.robustness.map((r) => ({
    relativeEpsilon: r.relativeEpsilon,
    epsilon: r.epsilon,
    hitRate10: r.hitRate10,
    ndcg10: r.ndcg10,
    ndcgChange: r.ndcgChange,
  }));
}

function continuedArm(arm: SequentialArm, continueEpochs: number) {
  return {
    epochs: continueEpochs,
    training: trainingSummary(arm.training),
    validationNdcg10: arm.validation.ndcg,
    test: summary(arm.test),
    itemEmbeddingMeanCosine: arm.itemEmbeddingMeanCosine,
    fgmOnItemEmbeddings: robustnessPoints(arm),
  };
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
  const withAdversarial =
    (options.model === 'sasrec' || options.settings.gru4recAtsrec) && continueEpochs > 0;
  const model: SequentialModel =
    options.model === 'sasrec'
      ? new SASRec(split.numItems, { seed: SEED })
      : new GRU4Rec(split.numItems, { seed: SEED });
  log(`${options.model}: ${backend}, ${epochs} epochs max`);
  const hooks = {
    onPhase: (p: { label: string }) => log(`${options.model} ${p.label}`),
    onEpoch: (e: SequenceEpochEvent) =>
      log(
        `${options.model} epoch ${e.epoch + 1}: loss ${e.loss.toFixed(4)}, ${e.seconds.toFixed(1)} s${e.validation ? `, valid NDCG@10 ${e.validation.ndcg.toFixed(4)}` : ''}`,
      ),
  };
  // Epsilons are relative to the trained model's mean item-row norm (the scale of what is
  // perturbed; APR's 0.5 was set for MF embeddings of norm about 1).
  const evaluation = {
    validation,
    test,
    attackEpsilons: options.settings.attackEpsilons,
    seed: SEED,
  };
  const common = { validateEvery: 5, patience: 3, seed: SEED, hooks };
  let base: SequentialArm;
  let experiment: AtsrecExperiment | null = null;
  if (withAdversarial) {
    experiment = await runAtsrecExperiment(tf, model, split, {
      ...common,
      ...evaluation,
      epochs,
      continueEpochs,
      relativeEpsilons: options.settings.atsrecEpsilons,
      adversarialWeight: 1,
      continueSeed: SEED + 7,
    });
    if (!experiment) throw new Error('the experiment was interrupted');
    base = experiment.base;
  } else {
    const training = await trainSequentialModel(tf, model, split, {
      epochs,
      seed: SEED,
      validateEvery: 5,
      patience: 3,
      validation,
      onEpoch: hooks.onEpoch,
    });
    base = await evaluateSequentialArm(tf, model, split, { kind: 'base', training }, evaluation);
  }
  const result: Record<string, unknown> = {
    model: options.model,
    config: model.config,
    backend,
    training: trainingSummary(base.training),
    test: summary(base.test),
    itemEmbeddingMeanCosine: base.itemEmbeddingMeanCosine,
    meanItemNorm: base.meanItemNorm,
  };
  log(`${options.model}: test ${JSON.stringify(result.test)}`);
  if (!experiment) return result;
  const { continued, atsrec, chosen, versusContinued } = experiment;
  log(`${options.model} continued: ${JSON.stringify(summary(continued.test))}`);
  return {
    ...result,
    continued: continuedArm(continued, continueEpochs),
    atsrec: atsrec.map((arm, k) => ({
      relativeEpsilon: arm.relativeEpsilon,
      epsilon: arm.epsilon,
      adversarialWeight: 1,
      ...continuedArm(arm, continueEpochs),
      versusContinued: comparison(versusContinued[k]!),
    })),
    chosenOnValidation: {
      relativeEpsilon: chosen.relativeEpsilon,
      epsilon: chosen.epsilon,
      versusContinued: comparison(versusContinued[atsrec.indexOf(chosen)]!),
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
