/**
 * Training a run config's model (the only CLI module that loads `@advrec/trainer`'s Trainer,
 * with the reproductions).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkAllocation, ConfigError, DataFormatError } from '@advrec/data';
import {
  ITEM_FEATURES,
  MatrixFactorization,
  cloneTable,
  readCheckpoint,
  restoreModel,
  writeCheckpoint,
} from '@advrec/models';
import type { JsonObject, Model, ParameterTable, VisualBPR } from '@advrec/models';
import { getAdversary } from '@advrec/adversary';
import {
  Trainer,
  optimizerTables,
  resolveTrainConfig,
  selectEngineProvider,
} from '@advrec/trainer';
import type {
  EngineInfo,
  EpochEvent,
  PhaseProgress,
  PhaseResult,
  TrainCallbacks,
  TrainConfig,
  ValidationEvent,
} from '@advrec/trainer';
import type { ResolvedRunConfig } from './config.js';
import { withPathPrefix } from './errors.js';
import type { LoadedData } from './datasets.js';
import { readJsonFile } from './datasets.js';
import { featureRowNorm } from './evaluation.js';
import type { Progress } from './progress.js';
import type { ReportSection } from './report.js';

/**
 * Checks the training section against the model (surfaces it has, engines that can train it)
 * before anything is written; problems are reported with their run-config paths.
 */
export function checkTrainConfig(config: ResolvedRunConfig, model: Model): void {
  if (model.trainableTables.length === 0) return;
  withPathPrefix('training', () => {
    const resolved = resolveTrainConfig(trainConfigOf(config, model), model);
    selectEngineProvider(model, getAdversary(resolved.adversarial.adversary), resolved);
  });
  // The BPR epochs' own config, when this model trains on it (not a warm-started VBPR's).
  const pretraining = warmStarts(config) ? null : pretrainingConfigOf(config);
  if (pretraining)
    withPathPrefix('training.pretraining', () => {
      const resolved = resolveTrainConfig(pretraining, model);
      selectEngineProvider(model, getAdversary(resolved.adversarial.adversary), resolved);
    });
}

/**
 * Checks, before any training, that the evaluation and validation cutoffs fit in memory
 * for this data set (a cutoff of 1e9 is refused here, not after hours of training).
 */
export function checkRunSizes(config: ResolvedRunConfig, data: LoadedData): void {
  const users = data.dataset.numUsers;
  const lists: [string, readonly number[]][] = [
    ['evaluation.cutoffs', config.evaluation.cutoffs],
    ['training.validation.cutoffs', config.training.validation.cutoffs],
  ];
  for (const [path, cutoffs] of lists) {
    const largest = Math.max(0, ...cutoffs);
    checkAllocation(path, `top-${largest} lists of ${users} users`, users * largest, 4);
  }
  // The sampled protocol draws each test user's negatives after training, among the items
  // the user has in no split: a user with too few of them is refused now, not after the last
  // epoch (ML-100K's user 405 has 945 left, fewer than the AMR protocol's 999).
  const e = config.evaluation;
  const given = data.sampledTestSet?.negativesPerCase === e.negatives;
  if (e.protocol === 'sampled' && !given) {
    const d = data.dataset;
    const splits = [d.train, d.validation, d.test].filter((m) => m !== null);
    const known = new Set<number>();
    let fewest = Infinity;
    let who = -1;
    for (let u = 0; u < d.numUsers; u++) {
      if (d.test.degree(u) === 0) continue;
      known.clear();
      for (const m of splits) for (const i of m.row(u)) known.add(i);
      if (d.numItems - known.size < fewest) {
        fewest = d.numItems - known.size;
        who = u;
      }
    }
    if (fewest < e.negatives)
      throw new ConfigError([
        {
          path: 'evaluation.negatives',
          message: `${e.negatives} sampled negatives per test case, but user ${d.userIdMap.toSource(who)} of ${d.name} has only ${fewest} items in no split to sample them from (ask for at most ${fewest}; the papers use 99 or 999)`,
        },
      ]);
  }
}

/**
 * The trainer's config from a run config. With a visual `model` (VBPR) and no surfaces
 * named, the adversarial phase is AMR's: FGM on the item features only, with
 * `training.adversarial.epsilon` relative to the prepared features' mean row norm.
 */
export function trainConfigOf(config: ResolvedRunConfig, model?: Model): TrainConfig {
  // The run's schedule is the CLI's; everything else is the library's TrainConfig.
  const {
    epochs: _epochs,
    adversarialEpochs: _adversarialEpochs,
    checkpointEvery: _checkpointEvery,
    mfEpochs: _mfEpochs,
    pretraining: _pretraining,
    adversarial,
    validation,
    ...rest
  } = config.training;
  const { surfaces, ...attack } = adversarial;
  const rowNorm = model && !surfaces ? featureRowNorm(model) : null;
  return {
    ...rest,
    adversarial:
      rowNorm !== null
        ? { ...attack, epsilon: attack.epsilon * rowNorm, surfaces: [ITEM_FEATURES] }
        : { ...attack, ...(surfaces ? { surfaces } : {}) },
    validation: validationOf(validation),
  };
}

/** The trainer's validation config from a resolved one (`null`s are the library's defaults). */
function validationOf(
  validation: ResolvedRunConfig['training']['validation'],
): NonNullable<TrainConfig['validation']> {
  const { patience, users, ...checks } = validation;
  return {
    ...checks,
    ...(patience !== null ? { patience } : {}),
    ...(users !== null ? { users } : {}),
  };
}

/**
 * The BPR epochs' trainer config when the run gives them their own (`training.pretraining`),
 * else `null` (one trainer runs both phases).
 */
export function pretrainingConfigOf(config: ResolvedRunConfig): TrainConfig | null {
  const p = config.training.pretraining;
  if (p === null) return null;
  const { validation, ...rest } = p;
  return { ...rest, validation: validationOf(validation) };
}

/**
 * `history.json` counts epochs from 1, as the progress bar, the report, the plots and
 * `run.json` do; in memory (and in checkpoints) they count from 0, as the trainer reports them.
 */
export function historyForFile(rows: readonly HistoryRow[]): HistoryRow[] {
  return rows.map((row) => ({ ...row, epoch: row.epoch + 1 }));
}

/**
 * The rows of a `history.json` back in the trainer's 0-based epochs. A file written before
 * epochs counted from 1 has an epoch 0 (a 1-based one never does): it is taken as it is.
 */
export function historyFromFile(rows: readonly HistoryRow[]): HistoryRow[] {
  if (rows.some((row) => row.epoch === 0)) return [...rows];
  return rows.map((row) => ({ ...row, epoch: row.epoch - 1 }));
}

/** One row of a run's per-epoch history. */
export interface HistoryRow {
  readonly epoch: number;
  readonly phase: 'bpr' | 'apr';
  readonly loss: number;
  readonly adversarialLoss: number | null;
  readonly trainAccuracy: number | null;
  readonly parameterNorm: number;
  readonly seconds: number;
  readonly triplesPerSecond: number;
  /** Mean clean BPR loss per triple; `adversarialLoss` is lambda x the adversarial term's mean. */
  readonly validation: Readonly<Record<string, number>> | null;
}

/** The outcome of {@link trainModel}. */
export interface TrainOutcome {
  readonly history: HistoryRow[];
  readonly bestEpoch: { readonly bpr: number; readonly apr: number | null };
  readonly stoppedEarly: boolean;
  readonly interrupted: boolean;
  /** The engine that trained the model (null when there was nothing to train). */
  readonly engine: EngineInfo | null;
  /** The BPR epochs' engine, when `training.pretraining` gave them a trainer of their own. */
  readonly pretrainingEngine?: EngineInfo;
}

/**
 * Trains a model as a run config says: BPR epochs, then adversarial epochs (APR/AMR), with
 * validation, early stopping, the best checkpoint per phase, a resumable checkpoint every
 * `checkpointEvery` epochs and the final model; all checkpoints are written atomically, so
 * an interrupt (`signal`) leaves the last complete one intact.
 */
export async function trainModel(
  model: Model,
  data: LoadedData,
  config: ResolvedRunConfig,
  options: {
    folder: string;
    progress: Progress;
    signal?: AbortSignal;
    /** Continue a stopped run from this checkpoint (`checkpoints/last.ckpt`), exactly. */
    resume?: ResumePoint;
    /** Optimiser state to start from (a warm start's, see {@link warmStartFromMf}). */
    initialState?: readonly ParameterTable[];
  },
): Promise<TrainOutcome> {
  const resume = options.resume;
  // A resumed run keeps the history of the epochs it already ran.
  const history: HistoryRow[] = resume
    ? resume.history.filter((row) => row.epoch < resume.epoch)
    : [];
  const checkpoints = join(options.folder, 'checkpoints');
  await mkdir(checkpoints, { recursive: true });
  if (model.trainableTables.length === 0) {
    options.progress.log(`${model.modelName} has nothing to train`);
    await writeCheckpoint(join(checkpoints, 'model.ckpt'), model, [], {
      datasetFingerprint: data.fingerprint,
    });
    return {
      history,
      bestEpoch: { bpr: -1, apr: null },
      stoppedEarly: false,
      interrupted: false,
      engine: null,
    };
  }
  let interrupted = false;
  const t = config.training;
  const resumeInApr = resume?.progress.phase === 'apr';
  let bar = options.progress.bar(
    resumeInApr ? `${t.adversarial.adversary.toUpperCase()} adversarial epochs` : 'BPR epochs',
    resumeInApr ? t.adversarialEpochs : t.epochs,
  );
  let phaseStart = resume ? resume.epoch - resume.progress.epochsDone : 0;
  let lastValidation: Record<string, number> | null = null;
  let trainer: Trainer | null = null;
  const trainerRef = (): Trainer => trainer!;
  // With `training.pretraining`, the BPR epochs have a trainer of their own; the adversarial
  // epochs then get a new one, from the best BPR parameters with a fresh optimiser state.
  // A VBPR warm-started from MF spent `training.pretraining` on the MF (warmStartFromMf).
  const pretrainingConfig = warmStarts(config) ? null : pretrainingConfigOf(config);
  // The metric the progress bar shows: the BPR epochs may validate on their own.
  const bprMetric =
    (pretrainingConfig ? t.pretraining : null)?.validation.metric ?? t.validation.metric;
  let metric = resumeInApr ? t.validation.metric : bprMetric;
  const callbacks: TrainCallbacks = {
    onLog: (message) => options.progress.log(message),
    onEpochEnd: async (event: EpochEvent) => {
      const row: HistoryRow = {
        epoch: event.epoch,
        phase: event.phase,
        loss: event.loss / event.triples,
        adversarialLoss: event.phase === 'apr' ? event.adversarialLoss / event.triples : null,
        trainAccuracy: event.trainAccuracy ?? null,
        parameterNorm: event.parameterNorm,
        seconds: event.seconds,
        triplesPerSecond: event.triplesPerSecond,
        validation: null,
      };
      history.push(row);
      bar.update(
        event.epoch + 1 - phaseStart,
        `loss ${(event.loss / event.triples).toFixed(4)}${lastValidation ? ` | last ${metric} ${(lastValidation[metric] ?? Number.NaN).toFixed(4)}` : ''}`,
      );
    },
    onValidation: (event: ValidationEvent) => {
      lastValidation = { ...event.metrics };
      const row = history.findLast((r) => r.epoch === event.epoch);
      if (row) {
        history[history.indexOf(row)] = { ...row, validation: event.metrics };
        // The epoch's line again, now with this epoch's validation (it arrives after the
        // epoch's end).
        bar.update(
          event.epoch + 1 - phaseStart,
          `loss ${row.loss.toFixed(4)} | ${metric} ${(event.metrics[metric] ?? Number.NaN).toFixed(4)}`,
          true,
        );
      }
    },
  };
  trainer = await Trainer.create(
    model,
    data.dataset,
    pretrainingConfig && !resumeInApr ? pretrainingConfig : trainConfigOf(config, model),
    callbacks,
    resume
      ? { extraTables: resume.extraTables, epoch: resume.epoch, step: resume.step }
      : options.initialState
        ? { extraTables: options.initialState }
        : undefined,
  );
  let pretrainingEngine: EngineInfo | null = null;
  let bestBpr = -1;
  let bestApr: number | null = null;
  let stoppedEarly = false;
  // One phase: its best checkpoint records the data set, Ctrl-C stops it between epochs.
  const phase = async (
    epochs: number,
    adversarial: boolean,
    best: string,
  ): Promise<PhaseResult> => {
    const continued = resume && resume.progress.phase === (adversarial ? 'apr' : 'bpr');
    const bestFile = join(checkpoints, best);
    const bestTables =
      continued && resume.progress.bestEpoch >= 0 && existsSync(bestFile)
        ? restoreModel((await readCheckpoint(bestFile)).model).tables
        : undefined;
    return trainerRef().runPhase({
      ...(options.signal ? { signal: options.signal } : {}),
      epochs,
      adversarial,
      checkpoint: bestFile,
      checkpointMetadata: { datasetFingerprint: data.fingerprint },
      ...(t.checkpointEvery > 0
        ? {
            periodicCheckpoint: {
              file: join(checkpoints, 'last.ckpt'),
              every: t.checkpointEvery,
              // The history so far travels with the checkpoint: a killed run resumes with it.
              metadata: () => ({
                datasetFingerprint: data.fingerprint,
                history: history as unknown as JsonObject[],
              }),
            },
          }
        : {}),
      ...(continued
        ? { resume: { progress: resume.progress, ...(bestTables ? { bestTables } : {}) } }
        : {}),
    });
  };
  try {
    if (!resumeInApr) {
      const bpr = await phase(t.epochs, false, 'bpr-best.ckpt');
      bestBpr = bpr.bestEpoch;
      stoppedEarly ||= bpr.stoppedEarly;
      bar.finish(phaseSummary(bpr, bprMetric), bpr.epochs.length);
    } else bestBpr = resume!.bestBprEpoch;
    if (t.adversarialEpochs > 0) {
      if (pretrainingConfig && !resumeInApr) {
        const epoch = trainer.epoch;
        pretrainingEngine = trainer.engineInfo;
        await trainer.close();
        trainer = await Trainer.create(
          model,
          data.dataset,
          trainConfigOf(config, model),
          callbacks,
          { epoch },
        );
      }
      metric = t.validation.metric;
      if (!resumeInApr) {
        phaseStart = trainer.epoch;
        lastValidation = null;
        bar = options.progress.bar(
          `${t.adversarial.adversary.toUpperCase()} adversarial epochs`,
          t.adversarialEpochs,
        );
      }
      const apr = await phase(t.adversarialEpochs, true, 'adversarial-best.ckpt');
      bestApr = apr.bestEpoch;
      stoppedEarly ||= apr.stoppedEarly;
      bar.finish(phaseSummary(apr, t.validation.metric), apr.epochs.length);
    }
    await trainer.save(join(checkpoints, 'model.ckpt'), { datasetFingerprint: data.fingerprint });
  } catch (error) {
    if (!options.signal?.aborted) throw error;
    // Stopped between two epochs: the tables are consistent; keep them as the last checkpoint.
    interrupted = true;
    options.progress.log(
      `interrupted after epoch ${trainerRef().epoch}; saving checkpoints/last.ckpt`,
    );
    await trainerRef().save(join(checkpoints, 'last.ckpt'), {
      datasetFingerprint: data.fingerprint,
      history: history as unknown as JsonObject[],
      interrupted: true,
    });
  } finally {
    await trainer?.close();
  }
  return {
    history,
    bestEpoch: { bpr: bestBpr, apr: bestApr },
    stoppedEarly,
    interrupted,
    engine: trainer!.engineInfo,
    ...(pretrainingEngine ? { pretrainingEngine } : {}),
  };
}

/** Whether a run starts its VBPR from an MF-BPR ({@link warmStartFromMf}). */
export function warmStarts(config: ResolvedRunConfig): boolean {
  return config.model.name === 'vbpr' && config.training.mfEpochs > 0;
}

/** What {@link warmStartFromMf} did, for run.json and the report. */
export interface MfWarmStart {
  readonly epochsRun: number;
  /** 1-based, as history.json and the report. */
  readonly bestEpoch: number | null;
  readonly bestValidation: number | null;
  readonly metric: string;
  readonly stoppedEarly: boolean;
  readonly seconds: number;
}

/**
 * The AMR paper's Algorithm 1 for `advrec train --model vbpr`: trains an MF-BPR of the same
 * size and seed for `training.mfEpochs` (the BPR epochs' config, its validation and early
 * stopping, the best epoch kept; `checkpoints/mf-best.ckpt`), then copies its user and item
 * embeddings into `vbpr` (`VisualBPR.copyIdEmbeddingsFrom`: items without a training
 * interaction keep a zero ID embedding). Returns the MF's optimiser state, which VBPR's
 * trainer continues from, and a summary.
 */
export async function warmStartFromMf(
  vbpr: VisualBPR,
  data: LoadedData,
  config: ResolvedRunConfig,
  options: { folder: string; progress: Progress; signal?: AbortSignal },
): Promise<{ state: ParameterTable[]; summary: MfWarmStart } | null> {
  const epochs = config.training.mfEpochs;
  if (epochs <= 0) return null;
  const started = performance.now();
  const mf = new MatrixFactorization(data.dataset, {
    embeddingSize: vbpr.embeddingSize,
    seed: config.model.seed,
  });
  const base = pretrainingConfigOf(config) ?? trainConfigOf(config);
  // Only the tables an MF has keep their per-table settings (featureProjection is VBPR's).
  const tables = Object.fromEntries(
    Object.entries(base.tables ?? {}).filter(([name]) => mf.trainableTables.includes(name)),
  );
  const { adversarial: _adversarial, ...bpr } = base;
  const metric = (config.training.pretraining ?? config.training).validation.metric;
  const bar = options.progress.bar('MF-BPR epochs (VBPR starts from them)', epochs);
  const trainer = await Trainer.create(
    mf,
    data.dataset,
    { ...bpr, tables },
    {
      onLog: (message) => options.progress.log(message),
      onEpochEnd: (event: EpochEvent) =>
        bar.update(event.epoch + 1, `loss ${(event.loss / event.triples).toFixed(4)}`),
    },
  );
  let phase: PhaseResult;
  try {
    phase = await trainer.runPhase({
      epochs,
      adversarial: false,
      ...(options.signal ? { signal: options.signal } : {}),
      checkpoint: join(options.folder, 'checkpoints', 'mf-best.ckpt'),
      checkpointMetadata: { datasetFingerprint: data.fingerprint },
    });
  } finally {
    await trainer.close();
  }
  bar.finish(phaseSummary(phase, metric), phase.epochs.length);
  vbpr.copyIdEmbeddingsFrom(mf, data.dataset.train);
  return {
    state: optimizerTables(trainer.optimizerStates).map(cloneTable),
    summary: {
      epochsRun: phase.epochs.length,
      bestEpoch: phase.bestEpoch >= 0 ? phase.bestEpoch + 1 : null,
      bestValidation: phase.bestEpoch >= 0 ? phase.bestValue : null,
      metric,
      stoppedEarly: phase.stoppedEarly,
      seconds: (performance.now() - started) / 1000,
    },
  };
}

/** Where a stopped run continues: its last checkpoint and the history written so far. */
export interface ResumePoint {
  readonly epoch: number;
  readonly step: number;
  readonly extraTables: readonly ParameterTable[];
  readonly progress: PhaseProgress;
  readonly history: readonly HistoryRow[];
  /** The BPR phase's best epoch (from its checkpoint) when the run stopped in the adversarial phase. */
  readonly bestBprEpoch: number;
}

/**
 * Reads the resume point of a run folder: `checkpoints/last.ckpt` (written every
 * `checkpointEvery` epochs and on Ctrl-C) with its phase progress, and `history.json`.
 */
export async function readResumePoint(folder: string, fingerprint: string): Promise<ResumePoint> {
  const file = join(folder, 'checkpoints', 'last.ckpt');
  if (!existsSync(file))
    throw new DataFormatError(
      { file },
      'a checkpoint to resume from (written every training.checkpointEvery epochs and on Ctrl-C)',
      'no such file',
    );
  const saved = await readCheckpoint(file);
  const meta = saved.metadata;
  const progress = meta['phaseProgress'] as unknown as PhaseProgress | undefined;
  if (
    typeof meta['epoch'] !== 'number' ||
    typeof meta['step'] !== 'number' ||
    progress === undefined ||
    (progress.phase !== 'bpr' && progress.phase !== 'apr')
  )
    throw new DataFormatError(
      { file },
      'a resumable checkpoint (epoch, step and phase progress in its metadata)',
      'a checkpoint without them (written by an older advrec?)',
    );
  if (meta['datasetFingerprint'] !== fingerprint)
    throw new DataFormatError(
      { file },
      `a checkpoint of this run's data set (fingerprint ${fingerprint.slice(0, 12)})`,
      `fingerprint ${String(meta['datasetFingerprint']).slice(0, 12)}`,
    );
  // The checkpoint's own history (periodic checkpoints), else history.json (Ctrl-C).
  const historyFile = join(folder, 'history.json');
  const history = Array.isArray(meta['history'])
    ? (meta['history'] as unknown as HistoryRow[])
    : existsSync(historyFile)
      ? historyFromFile(
          (await readJsonFile(historyFile, 'the history advrec wrote')) as HistoryRow[],
        )
      : [];
  const bprBest = join(folder, 'checkpoints', 'bpr-best.ckpt');
  const bestBprEpoch =
    progress.phase === 'apr' && existsSync(bprBest)
      ? Number((await readCheckpoint(bprBest)).metadata['bestEpoch'] ?? -1)
      : -1;
  return {
    epoch: meta['epoch'],
    step: meta['step'],
    extraTables: saved.extraTables,
    progress,
    history,
    bestBprEpoch,
  };
}

/** `best ndcg@100 0.1234 after epoch 42 (stopped early)`, or nothing without validation. */
export function phaseSummary(phase: PhaseResult, metric: string): string {
  if (phase.bestEpoch < 0) return '';
  // Epochs are counted from 1 on screen and in the plots, as in the progress bar.
  return `best ${metric} ${phase.bestValue.toFixed(4)} after epoch ${phase.bestEpoch + 1}${phase.stoppedEarly ? ' (stopped early)' : ''}`;
}

/** Report sections of training history: loss and validation curves (papers' Figures 3-5). */
export function historySections(
  histories: readonly { readonly name: string; readonly history: readonly HistoryRow[] }[],
  metric: string,
  idPrefix = 'training',
  bestEpochs: readonly { readonly epoch: number; readonly label: string }[] = [],
): ReportSection[] {
  // Markers (1-based epochs, as plotted): where adversarial training starts, and the best
  // validation epochs (0-based in `bestEpochs`, as the trainer reports them).
  const markers: { x: number; label: string }[] = [];
  if (histories.length === 1) {
    const first = histories[0]!.history.find((r) => r.adversarialLoss !== null);
    if (first && first !== histories[0]!.history[0])
      markers.push({ x: first.epoch + 1, label: 'adversarial training from here' });
  }
  for (const best of bestEpochs)
    if (best.epoch >= 0) markers.push({ x: best.epoch + 1, label: best.label });
  const sections: ReportSection[] = [
    {
      kind: 'plot',
      id: `${idPrefix}-loss`,
      title: 'Training loss per epoch',
      caption:
        "Mean BPR loss over the epoch's triples (for adversarial epochs: BPR on clean parameters; the adversarial term is dashed).",
      plot: {
        xLabel: 'epoch',
        yLabel: 'loss',
        markers,
        series: histories.flatMap(({ name, history }) => [
          { name, points: history.map((r) => [r.epoch + 1, r.loss] as const) },
          ...(history.some((r) => r.adversarialLoss !== null)
            ? [
                {
                  name: `${name} (adversarial term)`,
                  dashed: true,
                  points: history
                    .filter((r) => r.adversarialLoss !== null)
                    .map((r) => [r.epoch + 1, r.adversarialLoss!] as const),
                },
              ]
            : []),
        ]),
      },
    },
  ];
  if (histories.some(({ history }) => history.some((r) => r.validation?.[metric] !== undefined)))
    sections.push({
      kind: 'plot',
      id: `${idPrefix}-validation`,
      title: `Validation ${metric} per epoch`,
      caption:
        'Full ranking on the validation split (training items excluded), at each validation epoch.',
      plot: {
        xLabel: 'epoch',
        yLabel: metric,
        markers,
        series: histories.map(({ name, history }) => ({
          name,
          points: history
            .filter((r) => r.validation?.[metric] !== undefined)
            .map((r) => [r.epoch + 1, r.validation![metric]!] as const),
        })),
      },
    });
  return sections;
}
