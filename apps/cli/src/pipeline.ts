import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigError,
  DataFormatError,
  generateSampledTestSet,
  writeFileAtomic,
} from '@advrec/data';
import type { Dataset, SampledTestSet } from '@advrec/data';
import { evaluateFullRanking, evaluateSampled, robustnessSweep } from '@advrec/metrics';
import type { EvaluationResult, MetricName, RobustnessReport } from '@advrec/metrics';
import { createModel, readCheckpoint, restoreModel, writeCheckpoint } from '@advrec/models';
import type { JsonObject, Model } from '@advrec/models';
import { getAdversary } from '@advrec/adversary';
import { Trainer, resolveTrainConfig, selectEngineProvider } from '@advrec/trainer';
import type {
  EngineInfo,
  EpochEvent,
  PhaseResult,
  TrainConfig,
  ValidationEvent,
} from '@advrec/trainer';
import type { ResolvedRunConfig } from './config.js';
import { loadData } from './datasets.js';
import type { LoadedData } from './datasets.js';
import type { Progress } from './progress.js';
import type { ReportSection } from './report.js';

/** Writes text (or JSON) to a file atomically. */
export async function writeText(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, () => [text]);
}

/** JSON with typed arrays as plain arrays and non-finite numbers as null. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (ArrayBuffer.isView(v) && !(v instanceof DataView))
        return Array.from(v as unknown as ArrayLike<number>);
      if (typeof v === 'number' && !Number.isFinite(v)) return null;
      return v;
    },
    2,
  )}\n`;
}

/**
 * Loads plugin modules (a path, or a package name resolved from the working folder). A plugin
 * registers models with `registerModel` / `registerTfjsModel` and adversaries with
 * `registerAdversary` when imported.
 */
export async function loadPlugins(specs: readonly string[]): Promise<string[]> {
  const loaded: string[] = [];
  for (const spec of specs) {
    let url: string;
    if (spec.startsWith('.') || spec.startsWith('/') || existsSync(spec)) {
      const path = resolve(spec);
      if (!existsSync(path))
        throw new DataFormatError({ file: path }, 'a plugin module (--plugin)', 'no such file');
      url = pathToFileURL(path).href;
    } else {
      try {
        url = pathToFileURL(createRequire(join(process.cwd(), 'noop.js')).resolve(spec)).href;
      } catch {
        url = spec;
      }
    }
    try {
      await import(url);
    } catch (error) {
      throw new ConfigError([
        { path: 'plugins', message: `cannot load plugin "${spec}": ${(error as Error).message}` },
      ]);
    }
    loaded.push(spec);
  }
  return loaded;
}

/**
 * Creates the model a run config names, on a loaded data set. The factory's option errors
 * are reported with their run-config paths (`data.features`, `model.embeddingSize`, ...).
 */
export function buildModel(config: ResolvedRunConfig, data: LoadedData): Model {
  try {
    return createConfiguredModel(config, data);
  } catch (error) {
    if (!ConfigError.isInstance(error)) throw error;
    throw new ConfigError(
      error.issues.map((issue) => ({
        path:
          issue.path === 'features'
            ? 'data.features'
            : ['embeddingSize', 'seed'].includes(issue.path)
              ? `model.${issue.path}`
              : `model.options.${issue.path}`,
        message: issue.message,
      })),
    );
  }
}

function createConfiguredModel(config: ResolvedRunConfig, data: LoadedData): Model {
  const features = data.itemFeatures
    ? { data: data.itemFeatures.matrix, dimension: data.itemFeatures.dimension }
    : undefined;
  return createModel(
    config.model.name,
    {
      numUsers: data.dataset.numUsers,
      numItems: data.dataset.numItems,
      train: data.dataset.train,
      seed: config.model.seed,
      ...(features ? { itemFeatures: features } : {}),
    },
    {
      embeddingSize: config.model.embeddingSize,
      seed: config.model.seed,
      ...config.model.options,
    } as JsonObject,
  );
}

/**
 * Checks the training section against the model (surfaces it has, engines that can train it)
 * before anything is written; problems are reported with their run-config paths.
 */
export function checkTrainConfig(config: ResolvedRunConfig, model: Model): void {
  if (model.trainableTables.length === 0) return;
  try {
    const resolved = resolveTrainConfig(trainConfigOf(config), model);
    selectEngineProvider(model, getAdversary(resolved.adversarial.adversary), resolved);
  } catch (error) {
    if (!ConfigError.isInstance(error)) throw error;
    throw new ConfigError(
      error.issues.map((i) => ({ path: `training.${i.path}`, message: i.message })),
    );
  }
}

/** The trainer's config from a run config. */
export function trainConfigOf(config: ResolvedRunConfig): TrainConfig {
  const { epochs, adversarialEpochs, checkpointEvery, adversarial, validation, ...rest } =
    config.training;
  void epochs;
  void adversarialEpochs;
  void checkpointEvery;
  const { surfaces, ...attack } = adversarial;
  const { patience, ...checks } = validation;
  return {
    ...rest,
    adversarial: { ...attack, ...(surfaces ? { surfaces } : {}) },
    validation: { ...checks, ...(patience !== null ? { patience } : {}) },
  };
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
  options: { folder: string; progress: Progress; signal?: AbortSignal },
): Promise<TrainOutcome> {
  const history: HistoryRow[] = [];
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
  let bar = options.progress.bar('BPR epochs', t.epochs);
  let phaseStart = 0;
  let lastValidation: Record<string, number> | null = null;
  let trainer: Trainer | null = null;
  const trainerRef = (): Trainer => trainer!;
  trainer = await Trainer.create(model, data.dataset, trainConfigOf(config), {
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
        `loss ${(event.loss / event.triples).toFixed(4)}${lastValidation ? ` | ${t.validation.metric} ${(lastValidation[t.validation.metric] ?? Number.NaN).toFixed(4)}` : ''}`,
      );
      if (t.checkpointEvery > 0 && (event.epoch + 1) % t.checkpointEvery === 0)
        await trainerRef().save(join(checkpoints, 'last.ckpt'), {
          datasetFingerprint: data.fingerprint,
        });
    },
    onValidation: (event: ValidationEvent) => {
      lastValidation = { ...event.metrics };
      const row = history.findLast((r) => r.epoch === event.epoch);
      if (row) history[history.indexOf(row)] = { ...row, validation: event.metrics };
    },
  });
  let bestBpr = -1;
  let bestApr: number | null = null;
  let stoppedEarly = false;
  try {
    const bpr = await trainer.runPhase({
      ...(options.signal ? { signal: options.signal } : {}),
      epochs: t.epochs,
      adversarial: false,
      checkpoint: join(checkpoints, 'bpr-best.ckpt'),
    });
    bestBpr = bpr.bestEpoch;
    stoppedEarly ||= bpr.stoppedEarly;
    bar.finish(phaseSummary(bpr, t.validation.metric), bpr.epochs.length);
    if (t.adversarialEpochs > 0) {
      phaseStart = trainer.epoch;
      lastValidation = null;
      bar = options.progress.bar(
        `${t.adversarial.adversary.toUpperCase()} adversarial epochs`,
        t.adversarialEpochs,
      );
      const apr = await trainer.runPhase({
        ...(options.signal ? { signal: options.signal } : {}),
        epochs: t.adversarialEpochs,
        adversarial: true,
        checkpoint: join(checkpoints, 'adversarial-best.ckpt'),
      });
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
      `interrupted after epoch ${trainer.epoch - 1}; saving checkpoints/last.ckpt`,
    );
    await trainer.save(join(checkpoints, 'last.ckpt'), {
      datasetFingerprint: data.fingerprint,
      interrupted: true,
    });
  } finally {
    await trainer.close();
  }
  return {
    history,
    bestEpoch: { bpr: bestBpr, apr: bestApr },
    stoppedEarly,
    interrupted,
    engine: trainer.engineInfo,
  };
}

/** `best ndcg@100 0.1234 at epoch 41 (stopped early)`, or nothing without validation. */
export function phaseSummary(phase: PhaseResult, metric: string): string {
  if (phase.bestEpoch < 0) return '';
  return `best ${metric} ${phase.bestValue.toFixed(4)} at epoch ${phase.bestEpoch}${phase.stoppedEarly ? ' (stopped early)' : ''}`;
}

/** Evaluates a model on the test split under the run's protocol. */
export async function evaluateModel(
  model: Model,
  data: LoadedData,
  evaluation: ResolvedRunConfig['evaluation'],
  options: {
    split?: 'test' | 'validation';
    seed?: number;
    threads?: number;
    testSet?: SampledTestSet | null;
  } = {},
): Promise<EvaluationResult> {
  const metrics = evaluation.metrics as readonly MetricName[];
  if (evaluation.protocol === 'sampled') {
    const testSet =
      options.testSet ?? sampledTestSetFor(data, evaluation.negatives, options.seed ?? 0);
    return evaluateSampled(model, data.dataset, testSet, {
      cutoffs: evaluation.cutoffs,
      metrics,
      split: options.split ?? 'test',
    });
  }
  return evaluateFullRanking(model, data.dataset, {
    cutoffs: evaluation.cutoffs,
    metrics,
    split: options.split ?? 'test',
    ...(options.threads ? { threads: options.threads } : {}),
  });
}

/** The sampled test set: the files' own negatives when they carry them, else generated (seeded). */
export function sampledTestSetFor(
  data: LoadedData,
  negatives: number,
  seed: number,
): SampledTestSet {
  if (data.sampledTestSet && data.sampledTestSet.negativesPerCase === negatives)
    return data.sampledTestSet;
  return generateSampledTestSet(data.dataset, { negatives, seed });
}

/** A run folder's config, data and model, reloaded (for evaluate, attack, recommend). */
export interface ReloadedRun {
  readonly config: ResolvedRunConfig;
  readonly data: LoadedData;
  readonly model: Model;
  readonly checkpoint: string;
}

/** The checkpoint of a run folder: `model.ckpt`, else the newest of the others. */
export async function runCheckpoint(folder: string): Promise<string> {
  const dir = join(folder, 'checkpoints');
  for (const name of ['model.ckpt', 'adversarial-best.ckpt', 'bpr-best.ckpt', 'last.ckpt'])
    if (existsSync(join(dir, name))) return join(dir, name);
  if (!existsSync(dir))
    throw new DataFormatError(
      { file: dir },
      'a run folder with checkpoints',
      'no checkpoints folder',
    );
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ckpt'));
  if (files.length === 0) throw new DataFormatError({ file: dir }, 'a checkpoint (*.ckpt)', 'none');
  return join(dir, files.sort().at(-1)!);
}

/** Reloads a run folder written by `advrec train`, checking the data set fingerprint. */
export async function reloadRun(folder: string, checkpointFile?: string): Promise<ReloadedRun> {
  const configFile = join(folder, 'config.json');
  if (!existsSync(configFile))
    throw new DataFormatError(
      { file: configFile },
      'a run folder written by advrec train (config.json)',
      'no such file',
    );
  const config = JSON.parse(await readFile(configFile, 'utf8')) as ResolvedRunConfig;
  await loadPlugins(config.plugins);
  const data = await loadData(config.data);
  const recorded = JSON.parse(
    await readFile(join(folder, 'dataset.json'), 'utf8').catch(() => '{}'),
  ) as {
    fingerprint?: string;
  };
  if (recorded.fingerprint && recorded.fingerprint !== data.fingerprint)
    throw new DataFormatError(
      { file: join(folder, 'dataset.json') },
      `data set fingerprint ${recorded.fingerprint} (the data the run was trained on)`,
      data.fingerprint,
    );
  const checkpoint = checkpointFile ?? (await runCheckpoint(folder));
  const saved = await readCheckpoint(checkpoint);
  const model = restoreModel(saved.model);
  if (model.numUsers !== data.dataset.numUsers || model.numItems !== data.dataset.numItems)
    throw new DataFormatError(
      { file: checkpoint },
      `a model of ${data.dataset.numUsers} users x ${data.dataset.numItems} items`,
      `${model.numUsers} x ${model.numItems}`,
    );
  return { config, data, model, checkpoint };
}

/** Runs a robustness sweep (APR Table 2 / AMR Table 3) under the run's protocol. */
export function attackModel(
  model: Model,
  data: LoadedData,
  evaluation: ResolvedRunConfig['evaluation'],
  attack: NonNullable<ResolvedRunConfig['attack']>,
  seed: number,
  threads?: number,
): Promise<RobustnessReport> {
  return robustnessSweep(model, data.dataset, {
    epsilons: attack.epsilons,
    adversaries: attack.adversaries,
    ...(attack.surfaces ? { surfaces: attack.surfaces } : {}),
    cutoffs: evaluation.cutoffs,
    metrics: evaluation.metrics.filter((m) => m !== 'auc') as MetricName[],
    seed,
    ...(threads ? { threads } : {}),
    ...(evaluation.protocol === 'sampled'
      ? { testSet: sampledTestSetFor(data, evaluation.negatives, seed) }
      : {}),
  });
}

/** The protocol line every table of results carries. */
export function protocolLine(result: EvaluationResult): string {
  const p = result.protocol;
  return `${p.kind === 'full' ? 'full ranking' : `sampled (${p.negativesPerCase} negatives, ${p.negativeSource ?? 'generated'})`} on ${p.split}; candidates: ${p.candidates}; excluded: ${p.excluded.join(', ') || 'none'}; ties: ${p.tieRule}; ${p.usersEvaluated} users`;
}

/** Report sections for a robustness sweep: the drop table (Tables 2/3) and the curve (Figures 1/4). */
export function robustnessSections(
  reports: readonly { readonly name: string; readonly report: RobustnessReport }[],
  metricKey: string,
  idPrefix = 'robustness',
): ReportSection[] {
  const epsilons = [...new Set(reports.flatMap((r) => r.report.points.map((p) => p.epsilon)))].sort(
    (a, b) => a - b,
  );
  const adversaries = [...new Set(reports.flatMap((r) => r.report.points.map((p) => p.adversary)))];
  const rows: (string | number)[][] = [];
  for (const { name, report } of reports)
    for (const adversary of adversaries)
      rows.push([
        name,
        adversary,
        report.clean[metricKey] ?? Number.NaN,
        ...epsilons.map((e) => {
          const point = report.points.find((p) => p.adversary === adversary && p.epsilon === e);
          const change = point?.relativeChange[metricKey];
          return change === undefined
            ? 'n/a'
            : `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%`;
        }),
      ]);
  return [
    {
      kind: 'table',
      title: `Robustness: relative change of ${metricKey} under perturbation`,
      caption: `Surfaces perturbed: ${reports[0]?.report.surfaces.join(', ') ?? ''}; split ${reports[0]?.report.split ?? 'test'}. Each perturbation has norm epsilon per row (FGM: the direction that most increases the BPR loss; random: a random direction).`,
      columns: ['model', 'adversary', `clean ${metricKey}`, ...epsilons.map((e) => `eps ${e}`)],
      rows,
    },
    {
      kind: 'plot',
      id: `${idPrefix}-curve`,
      title: `${metricKey} under perturbation`,
      caption:
        'Solid lines: adversarial (gradient) perturbation; dashed: random noise of the same size.',
      plot: {
        xLabel: 'epsilon',
        yLabel: metricKey,
        series: reports.flatMap(({ name, report }) =>
          adversaries.map((adversary) => ({
            name: `${name}, ${adversary}`,
            dashed: adversary === 'random',
            points: [
              [0, report.clean[metricKey] ?? Number.NaN] as const,
              ...report.points
                .filter((p) => p.adversary === adversary)
                .sort((a, b) => a.epsilon - b.epsilon)
                .map((p) => [p.epsilon, p.metrics[metricKey] ?? Number.NaN] as const),
            ],
          })),
        ),
      },
    },
  ];
}

/** Machine facts for reports: CPU, cores, memory, Node. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

export type { Dataset };
