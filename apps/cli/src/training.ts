/**
 * Training a run config's model (the only CLI module that loads `@advrec/trainer`'s Trainer,
 * with the reproductions).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkAllocation, ConfigError, DataFormatError } from '@advrec/data';
import { absoluteEpsilon, readCheckpoint, resolveAttackTarget } from '@advrec/models';
import type { JsonObject, Model } from '@advrec/models';
import { getAdversary } from '@advrec/adversary';
import { resolveTrainConfig, selectEngineProvider, trainSchedule } from '@advrec/trainer';
import type {
  EngineInfo,
  EpochEvent,
  PhaseProgress,
  PhaseResult,
  SchedulePlan,
  ScheduleResume,
  ScheduleStage,
  ScheduleStageName,
  TrainConfig,
  ValidationEvent,
} from '@advrec/trainer';
import type { ResolvedRunConfig } from './config.js';
import { withPathPrefix } from './errors.js';
import { checkResumeConfig, configHash } from './run-folder/resume-config.js';
import type { LoadedData } from './catalog/load.js';
import { readJsonFile } from './catalog/load.js';
import type { Progress, ProgressBar } from './progress.js';
import type { ReportSection } from './run-folder/report.js';

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
  // Epsilon relative to the surface when the model's surface has a scale (AMR on VBPR).
  const target = model
    ? resolveAttackTarget(model, surfaces)
    : { surfaces: surfaces ?? undefined, relative: false, unit: 1 };
  return {
    ...rest,
    adversarial: {
      ...attack,
      epsilon: absoluteEpsilon(target, attack.epsilon),
      ...(target.surfaces ? { surfaces: target.surfaces } : {}),
    },
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
  /** Where a stop landed (`warm-start`: not resumable), null when training ran to its end. */
  readonly interrupted: ScheduleStageName | null;
  /** The engine that trained the model (null when there was nothing to train). */
  readonly engine: EngineInfo | null;
  /** The BPR epochs' engine, when `training.pretraining` gave them a trainer of their own. */
  readonly pretrainingEngine?: EngineInfo;
  /** What the MF-BPR warm start did (`--model vbpr`), for run.json and the report. */
  readonly warmStart: MfWarmStart | null;
}

/** The library's schedule for a run config ({@link trainSchedule}'s plan). */
export function schedulePlanOf(config: ResolvedRunConfig, model: Model): SchedulePlan {
  const t = config.training;
  const pretraining = pretrainingConfigOf(config);
  return {
    config: trainConfigOf(config, model),
    bprEpochs: t.epochs,
    adversarialEpochs: t.adversarialEpochs,
    ...(pretraining ? { pretraining } : {}),
    // A VBPR's warm start trains its MF-BPR on `training.pretraining` (else the run's config).
    ...(warmStarts(config) ? { warmStart: { epochs: t.mfEpochs, seed: config.model.seed } } : {}),
    checkpointEvery: t.checkpointEvery,
  };
}

/**
 * Trains a model as a run config says, through the library's schedule ({@link trainSchedule}):
 * the MF-BPR warm start of a VBPR, BPR epochs, then adversarial epochs (APR/AMR), with
 * validation, early stopping, the best checkpoint per phase, a resumable checkpoint every
 * `checkpointEvery` epochs and the final model. The CLI's part is what a user sees: progress
 * bars and the per-epoch history.
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
  },
): Promise<TrainOutcome> {
  const resume = options.resume;
  // A resumed run keeps the history of the epochs it already ran.
  const history: HistoryRow[] = resume
    ? resume.history.filter((row) => row.epoch < resume.epoch)
    : [];
  // The resolved config travels with every checkpoint: --resume refuses one that differs.
  const metadata = {
    datasetFingerprint: data.fingerprint,
    runConfig: JSON.parse(JSON.stringify(config)) as JsonObject,
    configHash: configHash(config),
  };
  let bar: ProgressBar | null = null;
  let lastValidation: Record<string, number> | null = null;
  const result = await trainSchedule(model, data.dataset, schedulePlanOf(config, model), {
    checkpoints: {
      folder: join(options.folder, 'checkpoints'),
      metadata,
      // The history so far travels with the resumable checkpoint: a killed run resumes with it.
      resumeMetadata: () => ({ history: history as unknown as JsonObject[] }),
    },
    ...(resume ? { resume } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    callbacks: {
      onLog: (message) => options.progress.log(message),
      onStageStart: (stage) => {
        lastValidation = null;
        bar = options.progress.bar(stageTitle(stage), stage.epochs);
      },
      onStageEnd: (stage, phase) =>
        bar?.finish(phaseSummary(phase, stage.metric), phase.epochs.length),
      onEpochEnd: (event: EpochEvent, stage) => {
        const loss = event.loss / event.triples;
        if (stage.name === 'warm-start') {
          bar?.update(event.epoch + 1, `loss ${loss.toFixed(4)}`);
          return;
        }
        history.push({
          epoch: event.epoch,
          phase: event.phase,
          loss,
          adversarialLoss: event.phase === 'apr' ? event.adversarialLoss / event.triples : null,
          trainAccuracy: event.trainAccuracy ?? null,
          parameterNorm: event.parameterNorm,
          seconds: event.seconds,
          triplesPerSecond: event.triplesPerSecond,
          validation: null,
        });
        const last = lastValidation?.[stage.metric];
        bar?.update(
          event.epoch + 1 - stage.firstEpoch,
          `loss ${loss.toFixed(4)}${lastValidation ? ` | last ${stage.metric} ${(last ?? Number.NaN).toFixed(4)}` : ''}`,
        );
      },
      onValidation: (event: ValidationEvent, _result, stage) => {
        lastValidation = { ...event.metrics };
        const index = history.findLastIndex((r) => r.epoch === event.epoch);
        if (index < 0) return;
        const row = { ...history[index]!, validation: event.metrics };
        history[index] = row;
        // The epoch's line again, now with this epoch's validation (it arrives after the
        // epoch's end).
        bar?.update(
          event.epoch + 1 - stage.firstEpoch,
          `loss ${row.loss.toFixed(4)} | ${stage.metric} ${(event.metrics[stage.metric] ?? Number.NaN).toFixed(4)}`,
          true,
        );
      },
    },
  });
  const w = result.warmStart;
  return {
    history,
    bestEpoch: result.bestEpoch,
    stoppedEarly: result.stoppedEarly,
    interrupted: result.interrupted,
    engine: result.engine,
    ...(result.pretrainingEngine ? { pretrainingEngine: result.pretrainingEngine } : {}),
    warmStart: w
      ? {
          epochsRun: w.epochsRun,
          bestEpoch: w.bestEpoch >= 0 ? w.bestEpoch + 1 : null,
          bestValidation: w.bestValue,
          metric: w.metric,
          stoppedEarly: w.stoppedEarly,
          seconds: w.seconds,
        }
      : null,
  };
}

/** A stage's progress-bar title. */
function stageTitle(stage: ScheduleStage): string {
  if (stage.name === 'warm-start') return 'MF-BPR epochs (VBPR starts from them)';
  if (stage.name === 'bpr') return 'BPR epochs';
  return `${(stage.adversary ?? '').toUpperCase()} adversarial epochs`;
}

/** Whether a run starts its VBPR from an MF-BPR (the library's warm start). */
export function warmStarts(config: ResolvedRunConfig): boolean {
  return config.model.name === 'vbpr' && config.training.mfEpochs > 0;
}

/** What the MF-BPR warm start did, for run.json and the report. */
export interface MfWarmStart {
  readonly epochsRun: number;
  /** 1-based, as history.json and the report. */
  readonly bestEpoch: number | null;
  readonly bestValidation: number | null;
  readonly metric: string;
  readonly stoppedEarly: boolean;
  readonly seconds: number;
}

/** Where a stopped run continues: its last checkpoint and the history written so far. */
export interface ResumePoint extends ScheduleResume {
  readonly history: readonly HistoryRow[];
}

/**
 * Reads the resume point of a run folder: `checkpoints/last.ckpt` (written every
 * `checkpointEvery` epochs and on Ctrl-C) with its phase progress, and `history.json`.
 */
export async function readResumePoint(
  folder: string,
  fingerprint: string,
  config: ResolvedRunConfig,
  log: (line: string) => void = () => {},
): Promise<ResumePoint> {
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
  const unverified = checkResumeConfig(file, meta['runConfig'], config);
  if (unverified) log(`warning: ${unverified}`);
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
