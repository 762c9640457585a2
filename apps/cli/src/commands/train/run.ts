import {
  attackModel,
  evaluateModel,
  metricsTable,
  protocolLine,
  logWarnings,
  robustnessMetricKey,
  robustnessSections,
} from '../../evaluation.js';
import {
  buildModel,
  loadPlugins,
  machineLine,
  reloadRun,
  toJson,
  writeText,
} from '../../run-folder/runs.js';
import { pluginsOf } from '../../plugins.js';
import { isSequentialRunFolder } from '../../run-folder/sequential-kind.js';
import { sequentialModelNames } from '@advrec/models';
import {
  checkRunSizes,
  checkTrainConfig,
  historyForFile,
  historySections,
  readResumePoint,
  trainModel,
} from '../../training.js';
import type { ResumePoint } from '../../training.js';
import { join, resolve } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { featureSensitivityOf } from '@advrec/models';
import type { Model } from '@advrec/models';
import type { EvaluationResult, RobustnessReport } from '@advrec/metrics';
import type { EngineInfo } from '@advrec/trainer';
import { shorthandOverrides } from '../../shorthands.js';
import { TRAIN_SHORTHANDS } from './options.js';
import { applyOverrides, readConfigFile, resolveRunConfig } from '../../config.js';
import type { ResolvedRunConfig } from '../../config.js';
import { dataLoading, emit, openRunFolder, textTable } from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import { warnIfNoOnnxRuntime } from '../../runtime-notice.js';
import { loadData } from '../../catalog/load.js';
import type { LoadedData } from '../../catalog/load.js';
import { writeReport } from '../../run-folder/report.js';
import type { ReportSection } from '../../run-folder/report.js';

/** Options of `advrec train`. */
export interface TrainOptions {
  readonly config?: string;
  /**
   * The run config itself instead of a file (programmatic callers, e.g. a sweep's jobs);
   * `--set` and the shorthands still apply on top.
   */
  readonly configObject?: Readonly<Record<string, unknown>>;
  readonly set?: readonly string[];
  readonly data?: string;
  readonly model?: string;
  readonly epochs?: string;
  readonly adversarialEpochs?: string;
  readonly adversary?: string;
  readonly epsilon?: string;
  readonly lambda?: string;
  readonly threads?: string;
  readonly out?: string;
  /** Write into a run folder that holds other files or another run. */
  readonly force?: boolean;
  readonly plugin?: readonly string[];
  /** Continue the run in this folder from its `checkpoints/last.ckpt`, with its own config. */
  readonly resume?: string;
}

/** The run config of `advrec train` as given: the file (or object), then the shorthands and `--set`. */
async function mergedRunConfig(options: TrainOptions): Promise<Record<string, unknown>> {
  const base =
    options.configObject ??
    (options.config
      ? await readConfigFile(options.config)
      : { data: { source: 'synthetic' }, model: { name: 'mf' } });
  return applyOverrides(base, [...shorthandOverrides(options), ...(options.set ?? [])]) as Record<
    string,
    unknown
  >;
}

/**
 * True when the run config names a sequential model: one the sequential registry knows once
 * the config's plugins (and `--plugin`) are loaded, built-in or a plugin's.
 */
export async function isSequentialRun(
  merged: Record<string, unknown>,
  plugins: readonly string[] = [],
): Promise<boolean> {
  const name = (merged.model as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string') return false;
  await loadPlugins([...new Set([...pluginsOf(merged), ...plugins])]);
  return sequentialModelNames().includes(name);
}

/** Reads, overrides, validates and resolves the run config of `advrec train`. */
export async function runConfigFromOptions(options: TrainOptions): Promise<ResolvedRunConfig> {
  const merged = await mergedRunConfig(options);
  if (await isSequentialRun(merged, options.plugin))
    throw new ConfigError([
      {
        path: 'model.name',
        message: `${String((merged.model as { name: string }).name)} is a sequential model: run it with advrec train, not here`,
      },
    ]);
  const plugins = [...pluginsOf(merged), ...(options.plugin ?? [])];
  if (plugins.length > 0) merged.plugins = [...new Set(plugins)];
  if (Array.isArray(merged.plugins))
    await loadPlugins(merged.plugins.filter((p): p is string => typeof p === 'string'));
  return resolveRunConfig(merged);
}

function evaluationSection(
  title: string,
  rows: readonly (readonly [string, EvaluationResult])[],
): ReportSection {
  const keys = Object.keys(rows[0]![1].metrics);
  return {
    kind: 'table',
    title,
    caption: `Protocol: ${protocolLine(rows[0]![1])}.`,
    columns: ['model', ...keys],
    rows: rows.map(([name, r]) => [name, ...keys.map((k) => r.metrics[k]!)]),
  };
}

/** What `advrec train` trains: a resumed run's own config, data and checkpoint, or a new run. */
interface PreparedTrainRun {
  readonly config: ResolvedRunConfig;
  readonly data: LoadedData;
  readonly model: Model;
  readonly resume?: ResumePoint;
}

/** `--resume`'s conflicting flags, spelt as on the command line. */
function resumeConflicts(options: TrainOptions): string[] {
  return (['config', 'configObject', 'set', ...TRAIN_SHORTHANDS, 'out', 'force'] as const)
    .filter((key) => {
      const value = options[key];
      return Array.isArray(value) ? value.length > 0 : value !== undefined && value !== false;
    })
    .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
}

/**
 * Reads the run to train: with `--resume`, the run's own config, data (fingerprint checked)
 * and last checkpoint; otherwise the merged config, its data (checked before anything is
 * written) and a new model. A sequential model's run is handed to its own command and its
 * exit code returned.
 */
async function prepareTrainRun(
  options: TrainOptions,
  context: CommandContext,
): Promise<PreparedTrainRun | number> {
  if (options.resume !== undefined) {
    const conflicting = resumeConflicts(options);
    if (conflicting.length > 0)
      throw new ConfigError([
        {
          path: '--resume',
          message: `continues a run with its own config; drop ${conflicting.join(', ')}`,
        },
      ]);
    const folder = resolve(options.resume);
    if (await isSequentialRunFolder(folder))
      return (await import('./sequential.js')).resumeSequentialCommand(folder, context);
    const { config, data, model } = await reloadRun(
      folder,
      join(folder, 'checkpoints', 'last.ckpt'),
    );
    const resume = await readResumePoint(folder, data.fingerprint, config, (line) =>
      context.progress.log(line),
    );
    context.progress.log(
      `resuming ${folder} after epoch ${resume.epoch} (${resume.progress.phase} phase, ${resume.progress.epochsDone} of its epochs done)`,
    );
    return { config, data, model, resume };
  }
  const merged = await mergedRunConfig(options);
  if (await isSequentialRun(merged, options.plugin)) {
    // SASRec, GRU4Rec: sequences, the SASRec split and protocol (see sequential.ts).
    if (options.plugin && options.plugin.length > 0)
      merged.plugins = [
        ...new Set([...((merged.plugins as string[] | undefined) ?? []), ...options.plugin]),
      ];
    const { trainSequentialCommand } = await import('./sequential.js');
    return trainSequentialCommand(
      merged,
      { out: options.out, force: options.force ?? false },
      context,
    );
  }
  const config = await runConfigFromOptions(options);
  // Load (and so check) the data before creating anything on disk.
  const data = await loadData(config.data, dataLoading(context));
  return { config, data, model: buildModel(config, data) };
}

/** The report and `run.json` of a finished `advrec train` run. */
async function writeTrainRecord(
  folder: string,
  run: {
    readonly config: ResolvedRunConfig;
    readonly data: LoadedData;
    readonly model: Model;
    readonly outcome: Awaited<ReturnType<typeof trainModel>>;
    readonly started: Date;
    readonly label: string;
    readonly sections: ReportSection[];
    readonly title: string;
  },
): Promise<void> {
  const { config, data, model, outcome, started, sections } = run;
  const warm = outcome.warmStart;
  // VBPR: how strongly its scores answer the features (what AMR's adversarial term penalises).
  const visualPart = featureSensitivityOf(model);
  await writeReport(folder, {
    title: run.title,
    facts: [
      ...runFacts(
        config,
        data.fingerprint,
        started,
        outcome.engine,
        data.dataset.protocol.validation,
      ),
      ...(visualPart
        ? ([
            [
              'visual part',
              `norm of E ${visualPart.projectionNorm.toPrecision(4)}; mean over users of ||E^T p_u|| ${visualPart.meanUserSensitivity.toPrecision(4)} (a perturbation of an item's prepared features of norm epsilon moves a score by at most epsilon times this; AMR lowers it by shrinking E)`,
            ],
          ] as [string, string][])
        : []),
      ...(warm
        ? ([
            [
              'MF warm start',
              `VBPR started from an MF-BPR's ID embeddings and optimiser state (AMR Algorithm 1): ${warm.epochsRun} MF epochs${warm.bestEpoch !== null ? `, best ${warm.metric} ${warm.bestValidation!.toFixed(4)} after epoch ${warm.bestEpoch}` : ''}, ${warm.seconds.toFixed(1)} s`,
            ],
          ] as [string, string][])
        : []),
    ],
    sections,
  });
  await writeText(
    join(folder, 'run.json'),
    toJson({
      command: 'train',
      status: 'done',
      started,
      ended: new Date(),
      engine: outcome.engine,
      ...(outcome.pretrainingEngine ? { pretrainingEngine: outcome.pretrainingEngine } : {}),
      ...(warm ? { mfWarmStart: warm } : {}),
      ...(visualPart ? { visualPart } : {}),
      // 1-based, as history.json and the report.
      bestEpoch: {
        bpr: outcome.bestEpoch.bpr >= 0 ? outcome.bestEpoch.bpr + 1 : null,
        apr: outcome.bestEpoch.apr !== null ? outcome.bestEpoch.apr + 1 : null,
      },
      stoppedEarly: outcome.stoppedEarly,
    }),
  );
}

/** `advrec train`: trains, evaluates on test, optionally attacks, writes the run folder. */
export async function trainCommand(
  options: TrainOptions,
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const prepared = await prepareTrainRun(options, context);
  if (typeof prepared === 'number') return prepared;
  const { config, data, model, resume } = prepared;
  // Validation and the test evaluation rank all items.
  await warnIfNoOnnxRuntime(context, 'full');
  checkTrainConfig(config, model);
  checkRunSizes(config, data);
  const { folder, description, release } = await openRunFolder(
    options.resume ?? options.out,
    'train',
    config,
    data,
    context.progress,
    { force: options.force ?? false },
  );
  try {
    // `--model vbpr`: MF-BPR first, VBPR starts from it (AMR's Algorithm 1), inside the
    // library's schedule; a resumed run's checkpoint already holds the warm-started VBPR.
    const outcome = await trainModel(model, data, config, {
      folder,
      progress: context.progress,
      signal: context.signal,
      ...(resume ? { resume } : {}),
    });
    if (outcome.interrupted === 'warm-start') {
      await writeText(
        join(folder, 'run.json'),
        toJson({
          command: 'train',
          status: 'interrupted',
          stage: 'the MF-BPR warm start',
          started,
          ended: new Date(),
        }),
      );
      context.progress.log(
        'interrupted during the MF-BPR warm start (not resumable: run the command again)',
      );
      return 130;
    }
    await writeText(join(folder, 'history.json'), toJson(historyForFile(outcome.history)));
    if (outcome.interrupted) {
      await writeText(
        join(folder, 'run.json'),
        toJson({ command: 'train', status: 'interrupted', started, ended: new Date() }),
      );
      context.progress.log(
        `interrupted: the last complete checkpoint is ${join(folder, 'checkpoints', 'last.ckpt')}`,
      );
      return 130;
    }
    const bar = context.progress.bar('evaluating on test', 1);
    const result = await evaluateModel(model, data, config.evaluation, {
      seed: config.data.split.seed,
      threads: config.training.threads,
    });
    bar.finish(`${result.protocol.usersEvaluated} users, ${result.seconds.toFixed(1)} s`);
    const metrics = {
      metrics: result.metrics,
      coverage: result.coverage,
      protocol: result.protocol,
      seconds: result.seconds,
    };
    await writeText(join(folder, 'metrics.json'), toJson(metrics));
    // Ctrl-C after training: stop before (or during) the sweep, say so, exit 130.
    const stopped = async (stage: string): Promise<number> => {
      await writeText(
        join(folder, 'run.json'),
        toJson({ command: 'train', status: 'interrupted', stage, started, ended: new Date() }),
      );
      context.progress.log(
        `interrupted during ${stage}: the trained model is ${join(folder, 'checkpoints', 'model.ckpt')}, its test metrics are in metrics.json`,
      );
      return 130;
    };
    const robustness = await runRobustnessSweep(model, data, config, folder, context);
    if (robustness === 'aborted') return await stopped('the robustness sweep');
    const metricKey = robustnessMetricKey(config.evaluation.cutoffs);
    const label = runLabel(config);
    const robustnessTables = robustness
      ? robustnessSections([{ name: label, report: robustness }], metricKey)
      : [];
    const sections: ReportSection[] = [
      evaluationSection('Test results', [[label, result]]),
      ...historySections(
        [{ name: label, history: outcome.history }],
        config.training.validation.metric,
        'training',
        [
          { epoch: outcome.bestEpoch.bpr, label: 'best BPR validation' },
          ...(outcome.bestEpoch.apr !== null
            ? [{ epoch: outcome.bestEpoch.apr, label: 'best adversarial validation' }]
            : []),
        ],
      ),
      ...robustnessTables,
    ];
    await writeTrainRecord(folder, {
      config,
      data,
      model,
      outcome,
      started,
      label,
      sections,
      title: `advrec train: ${config.model.name} on ${description.name}`,
    });
    emit(context, { folder, metrics: result.metrics, protocol: result.protocol, robustness }, () =>
      [
        metricsTable([[label, result]]),
        `protocol: ${protocolLine(result)}`,
        ...robustnessTables.flatMap((section) =>
          section.kind === 'table'
            ? ['', `${section.title.toLowerCase()}`, textTable(section.columns, section.rows)]
            : [],
        ),
        `run folder: ${folder} (report.html, report.md, metrics.json, history.json, checkpoints/)`,
      ].join('\n'),
    );
    return 0;
  } finally {
    await release();
  }
}

/**
 * The run's robustness sweep, when its config asks for one: written to `robustness.json`,
 * its warnings printed; `aborted` when Ctrl-C came before or during it.
 */
async function runRobustnessSweep(
  model: Model,
  data: LoadedData,
  config: ResolvedRunConfig,
  folder: string,
  context: CommandContext,
): Promise<RobustnessReport | null | 'aborted'> {
  if (!config.attack) return null;
  if (context.signal.aborted) return 'aborted';
  const bar = context.progress.bar('robustness sweep', 1);
  let robustness: RobustnessReport;
  try {
    robustness = await attackModel(
      model,
      data,
      config.evaluation,
      config.attack,
      config.training.seed,
      config.training.threads,
      context.signal,
    );
  } catch (error) {
    if (context.signal.aborted) return 'aborted';
    throw error;
  }
  bar.finish();
  if (context.signal.aborted) return 'aborted';
  await writeText(join(folder, 'robustness.json'), toJson(robustness));
  logWarnings(context, robustness.warnings);
  return robustness;
}

/**
 * What a run trained, in the papers' names: MF-BPR, AMF (MF with adversarial training on its
 * embeddings), VBPR, AMR (VBPR with adversarial training on its image features), or the
 * model's name with "+ APR".
 */
export function runLabel(config: ResolvedRunConfig): string {
  const adversarial = config.training.adversarialEpochs > 0;
  const name = config.model.name;
  if (name === 'mf') return adversarial ? 'AMF' : 'MF-BPR';
  if (name === 'vbpr') {
    if (!adversarial) return 'VBPR';
    const surfaces = config.training.adversarial.surfaces;
    return surfaces === null || surfaces.includes('itemFeatures') ? 'AMR' : 'VBPR + APR';
  }
  return adversarial ? `${name} + APR` : name;
}

/** The facts block of a run's report. */
export function runFacts(
  config: ResolvedRunConfig,
  fingerprint: string,
  started: Date,
  engine: EngineInfo | null,
  /** Where the validation split came from: the split's own record. */
  validation: Dataset['protocol']['validation'] = null,
): [string, string][] {
  // What the report says about validation is what the split did, not what the config asked.
  const validationText =
    validation === null
      ? ', no validation split'
      : validation.order === 'given'
        ? ', validation from the given validation file'
        : `, validation carved from train (${validation.order} interaction per user)`;
  const t = config.training;
  const visual = config.model.name === 'vbpr' && t.adversarial.surfaces === null;
  return [
    [
      'data',
      `${config.data.source} (split ${config.data.split.protocol}, order ${config.data.split.order}, seed ${config.data.split.seed}${validationText})`,
    ],
    ['data set fingerprint', fingerprint],
    ['model', `${config.model.name}, K = ${config.model.embeddingSize}, seed ${config.model.seed}`],
    [
      'training',
      `${t.epochs} BPR epochs + ${t.adversarialEpochs} adversarial epochs (${t.adversarial.adversary}${visual ? ' on the item features' : ''}, epsilon ${t.adversarial.epsilon}${visual ? " of the prepared features' mean row norm" : ''}, lambda ${t.adversarial.adversarialWeight}); batch ${t.batchSize}, ${t.optimizer.name} lr ${t.optimizer.learningRate}, l2 ${t.l2}; validation ${t.validation.metric} every ${t.validation.every}${t.validation.patience ? `, patience ${t.validation.patience}` : ''}`,
    ],
    ...(t.pretraining
      ? ([
          [
            'pre-training',
            `the BPR epochs on their own config: ${t.pretraining.algorithm}, ${t.pretraining.optimizer.name} lr ${t.pretraining.optimizer.learningRate}, l2 ${t.pretraining.l2}, batch ${t.pretraining.batchSize}; validation ${t.pretraining.validation.metric} every ${t.pretraining.validation.every}${t.pretraining.validation.patience ? `, patience ${t.pretraining.validation.patience}` : ''}${t.adversarialEpochs > 0 ? '; the adversarial epochs start from the best BPR epoch with a fresh optimiser state' : ''}`,
          ],
        ] as [string, string][])
      : []),
    ['engine', engine ? `${engine.name}: ${engine.description}` : 'n/a'],
    ['started', started.toISOString()],
    ['machine', machineLine()],
  ];
}
