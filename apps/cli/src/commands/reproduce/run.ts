import { join } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { Model, VisualBPR, VisualBPRConfig } from '@advrec/models';
import { runAmrExperiment, runAprExperiment } from '@advrec/trainer';
import type {
  AmrChainResult,
  EpochEvent,
  ExperimentResult,
  TrainCallbacks,
  ValidationEvent,
} from '@advrec/trainer';
import { applyOverrides, resolveRunConfig } from '../../config.js';
import type { ResolvedRunConfig } from '../../config.js';
import {
  dataLoading,
  emit,
  openRunFolder,
  pValue,
  percent,
  textTable,
} from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import { warnIfNoOnnxRuntime } from '../../runtime-notice.js';
import { loadData } from '../../catalog/load.js';
import type { LoadedData } from '../../catalog/load.js';
import {
  attackModel,
  coldStartSection,
  evaluateModel,
  logWarnings,
  protocolLine,
  robustnessLines,
  robustnessSections,
  sampledTestSetFor,
} from '../../evaluation.js';
import { machineLine, toJson, writeText } from '../../run-folder/runs.js';
import {
  checkRunSizes,
  historyForFile,
  historySections,
  pretrainingConfigOf,
  trainConfigOf,
} from '../../training.js';
import type { HistoryRow } from '../../training.js';
import { writeReport } from '../../run-folder/report.js';
import type { ReportSection } from '../../run-folder/report.js';

/** Seed of the sampled test set both reproductions evaluate on (and the cold-start table reads). */
const TEST_SET_SEED = 7;

/** Options of `advrec reproduce apr|amr`. */
export interface ReproduceOptions {
  readonly data?: string;
  readonly features?: string;
  readonly out?: string;
  /** Write into a run folder that holds other files or another run. */
  readonly force?: boolean;
  readonly epochs?: number;
  readonly adversarialEpochs?: number;
  readonly epsilon?: number;
  readonly lambda?: number;
  readonly epsilons?: number[];
  readonly protocol?: 'full' | 'sampled';
  readonly threads?: number;
  readonly set?: readonly string[];
  /** `reproduce amr`: the AMR paper's epsilon and lambda grid, chosen on validation. */
  readonly tune?: boolean;
}

function recorder(history: HistoryRow[], onEpoch: (event: EpochEvent) => void): TrainCallbacks {
  return {
    onEpochEnd: (event) => {
      history.push({
        epoch: event.epoch,
        phase: event.phase,
        loss: event.loss / event.triples,
        adversarialLoss: event.phase === 'apr' ? event.adversarialLoss / event.triples : null,
        trainAccuracy: event.trainAccuracy,
        parameterNorm: event.parameterNorm,
        seconds: event.seconds,
        triplesPerSecond: event.triplesPerSecond,
        validation: null,
      });
      onEpoch(event);
    },
    onValidation: (event: ValidationEvent) => {
      const k = history.findLastIndex((r) => r.epoch === event.epoch);
      if (k >= 0) history[k] = { ...history[k]!, validation: event.metrics };
    },
  };
}

function baseConfig(kind: 'apr' | 'amr', options: ReproduceOptions): ResolvedRunConfig {
  const amr = kind === 'amr';
  const raw = {
    data: {
      source: options.data ?? 'synthetic',
      ...(options.features ? { features: options.features } : {}),
      ...(amr && !options.data ? { synthetic: { featureDimension: 32 } } : {}),
      // AMR: leave-one-out at random on one log; files that carry their split keep it.
      split: amr
        ? { protocol: options.data ? 'auto' : 'leave-one-out', order: 'random' }
        : { protocol: 'auto' },
    },
    // reproduce apr initialises MF with seed 1 (its recorded tables); AMR with the model default.
    model: { name: amr ? 'vbpr' : 'mf', embeddingSize: 64, ...(amr ? {} : { seed: 1 }) },
    training: {
      epochs: options.epochs ?? (amr ? 100 : 300),
      adversarialEpochs: options.adversarialEpochs ?? (amr ? 40 : 60),
      ...(options.threads ? { threads: options.threads } : {}),
      adversarial: {
        epsilon: options.epsilon ?? (amr ? 0.1 : 0.5),
        adversarialWeight: options.lambda ?? 1,
      },
      validation: { every: 5, metric: amr ? 'ndcg@10' : 'ndcg@50', patience: 4 },
    },
    evaluation: {
      protocol: options.protocol ?? (amr ? 'sampled' : 'full'),
      negatives: 999,
      cutoffs: amr ? [5, 10, 20] : [10, 50],
      metrics: ['hr', 'ndcg'],
    },
    attack: {
      // AMR: relative to the mean row norm of the features as VBPR prepared them.
      epsilons: options.epsilons ?? (amr ? [0.05, 0.1, 0.2, 0.5, 1] : [0.25, 0.5, 1, 2]),
      adversaries: ['fgm', 'random'],
    },
  };
  return resolveRunConfig(applyOverrides(raw, options.set ?? []));
}

/**
 * `advrec reproduce apr`: APR's pipeline (Algorithm 1) on a data set: ItemPop, MF-BPR with
 * early stopping, then AMF (APR on MF) versus BPR continued from the same checkpoint for as
 * many epochs, significance tests, and the robustness of both (APR Figure 1, Table 2). The
 * experiment itself is `runAprExperiment` of `@advrec/trainer`.
 */
export function reproduceAprCommand(
  options: ReproduceOptions,
  context: CommandContext,
): Promise<number> {
  return reproduction('apr', options, context, {
    stages: (t) => ({
      'mf-bpr': ['MF-BPR epochs (early stopping)', t.epochs],
      'bpr-continued': ['BPR continued epochs', t.adversarialEpochs],
      amf: [`AMF (eps ${t.adversarial.epsilon}) epochs`, t.adversarialEpochs],
    }),
    run: (data, common, t, config) =>
      runAprExperiment(data.dataset, {
        ...common,
        bprEpochs: t.epochs,
        continueEpochs: t.adversarialEpochs,
        // `training.pretraining`: MF-BPR on its own config (per-triple SGD, say); both
        // continuations then start with a fresh optimiser state.
        ...(t.pretraining ? { pretrainingTrain: pretrainingConfigOf(config) ?? {} } : {}),
        ...(config.model.options['itemBias'] === true ? { itemBias: true } : {}),
      }),
    report: (result, config, _data, histories) => {
      const t = config.training;
      return {
        modelFact: `MF, K = ${config.model.embeddingSize}; batch ${t.batchSize}, ${t.optimizer.name} lr ${t.optimizer.learningRate}`,
        whatWasRun: `APR Algorithm 1: MF-BPR trained${t.pretraining ? ` by ${t.pretraining.algorithm === 'sgd-triples' ? 'per-triple SGD' : 'mini-batches'} (${t.pretraining.optimizer.name} lr ${t.pretraining.optimizer.learningRate}, l2 ${t.pretraining.l2})` : ''} with early stopping on validation ${(t.pretraining ?? t).validation.metric} (best epoch ${result.pretraining.bestEpoch}); from its best parameters, AMF (BPR + lambda x BPR under FGM perturbations of both embeddings, epsilon ${t.adversarial.epsilon}, lambda ${t.adversarial.adversarialWeight}) and plain BPR continued for ${t.adversarialEpochs} epochs each with the same sampler seed.`,
        histories: {
          'MF-BPR (pre-training)': histories['mf-bpr']!,
          'BPR continued': histories['bpr-continued']!,
          [result.arms.at(-1)!.name]: histories['amf']!,
        },
        metricKey: (keys) =>
          keys.find(
            (k) => k.startsWith('ndcg@') && k.endsWith(`@${config.evaluation.cutoffs.at(-1)}`),
          ) ?? keys[0]!,
      };
    },
  });
}

/**
 * `advrec reproduce amr`: AMR's pipeline (Algorithm 1 of the TKDE paper): MF-BPR, VBPR
 * initialised from it, then AMR (adversarial perturbations of the item features) versus VBPR
 * continued; the sampled protocol (999 negatives) by default, and the feature-robustness
 * table (AMR Table 3). The experiment itself is `runAmrExperiment` of `@advrec/trainer`.
 */
export function reproduceAmrCommand(
  options: ReproduceOptions,
  context: CommandContext,
): Promise<number> {
  return reproduction('amr', options, context, {
    stages: (t) => ({
      'mf-bpr': ['mf epochs', t.epochs],
      vbpr: ['vbpr epochs', t.epochs],
      'vbpr-continued': ['vbpr-continued epochs', t.adversarialEpochs],
      amr: ['amr epochs', t.adversarialEpochs],
    }),
    run: (data, common, t, config) =>
      runAmrExperiment(data.dataset, {
        ...common,
        // model.options (userVisual, visualBias, featureNormalization, ...) reach VBPR.
        vbpr: config.model.options as VisualBPRConfig,
        features: { data: data.itemFeatures!.matrix, dimension: data.itemFeatures!.dimension },
        mfEpochs: t.epochs,
        vbprEpochs: t.epochs,
        amrEpochs: t.adversarialEpochs,
        epsilon: t.adversarial.epsilon,
        adversarialWeight: t.adversarial.adversarialWeight,
        ...(options.tune ? { grid: 'paper' as const } : {}),
      }),
    report: (result, config, data, histories) => {
      const t = config.training;
      const coldStart =
        config.evaluation.protocol === 'sampled'
          ? coldStartSection(
              result.test,
              sampledTestSetFor(data, config.evaluation.negatives, TEST_SET_SEED).positives,
              data.dataset.coldStartItems,
            )
          : null;
      // What the trained VBPR did with its features, not a second reading of its options.
      const vbpr = result.chain.vbpr;
      const reduced = vbpr.featureBasis !== null;
      const chain = result.chain;
      // Every AMR arm tried, when there was a choice (the validation values it was made on).
      const tuning =
        chain.amrRuns.length > 1
          ? chain.amrRuns.map((r) => ({
              epsilon: r.epsilon,
              adversarialWeight: r.adversarialWeight,
              bestValidation: r.phase.bestValue,
              bestEpoch: r.phase.bestEpoch + 1,
              chosen: r.model === chain.amr,
            }))
          : null;
      const tuningSection: ReportSection | null = tuning
        ? {
            kind: 'table',
            title: 'AMR tuned on validation',
            caption: `Each arm trained from VBPR's parameters and optimiser state for ${t.adversarialEpochs} epochs; epsilon relative to the prepared features' mean row norm. The arm with the best validation ${t.validation.metric} is AMR above (test never used).`,
            columns: [
              'epsilon',
              'lambda',
              `best validation ${t.validation.metric}`,
              'at epoch',
              'chosen',
            ],
            rows: tuning.map((r) => [
              r.epsilon,
              r.adversarialWeight,
              r.bestValidation,
              r.bestEpoch,
              r.chosen ? 'yes' : '',
            ]),
          }
        : null;
      const visual = visualPartSection(chain);
      const extraSections = [
        ...(coldStart ? [coldStart.section] : []),
        ...(tuningSection ? [tuningSection] : []),
        visual.section,
      ];
      return {
        ...(extraSections.length > 0 ? { extraSections } : {}),
        warnings: [...chain.tuningWarnings, ...visual.warnings],
        extraMetrics: {
          ...(coldStart ? { coldStart: coldStart.metrics } : {}),
          ...(tuning ? { amrTuning: tuning } : {}),
          visualPart: visual.metrics,
        },
        dataNote: `; features ${data.itemFeatures!.dimension}-d from ${data.itemFeatures!.source}`,
        modelFact: `VBPR (AMR Eq. 4: p_u . (q_i + E c_i)), K = ${config.model.embeddingSize}; features ${reduced ? `reduced to ${vbpr.featureSize} principal components, ` : ''}${vbpr.featureTransform.normalization}, mean row norm ${vbpr.featureTransform.rowNorm.toPrecision(3)}; attack epsilons relative to it; item-ID dropout ${vbpr.itemIdDropout}; batch ${t.batchSize}, ${t.optimizer.name} lr ${t.optimizer.learningRate}`,
        whatWasRun: `AMR Algorithm 1: MF-BPR (${t.epochs} epochs max, early stopping on validation ${t.validation.metric}), VBPR initialised from MF's embeddings, then from VBPR's parameters AMR (BPR + lambda x BPR under FGM perturbations of the item features, epsilon ${chain.chosenEpsilon} of a feature row's mean norm, lambda ${chain.chosenAdversarialWeight}${tuning ? `, both chosen on validation from the AMR paper's grid over ${tuning.length} runs` : ''}) and VBPR continued, ${t.adversarialEpochs} epochs each.`,
        histories,
        metricKey: (keys) => (keys.includes('ndcg@10') ? 'ndcg@10' : keys[0]!),
      };
    },
  });
}

/**
 * How strongly each visual model's scores answer the item features
 * (`VisualBPR.featureSensitivity`): AMR's adversarial term penalises exactly this, so an AMR
 * far below VBPR continued has switched its visual part off rather than made it robust.
 */
function visualPartSection(chain: AmrChainResult): {
  section: ReportSection;
  metrics: Record<string, { projectionNorm: number; meanUserSensitivity: number }>;
  warnings: { code: 'visual-part-collapsed'; message: string }[];
} {
  const models: [string, VisualBPR][] = [
    ['VBPR', chain.vbpr],
    ...(chain.vbprContinued
      ? [['VBPR continued', chain.vbprContinued] as [string, VisualBPR]]
      : []),
    ['AMR', chain.amr],
  ];
  const metrics = Object.fromEntries(
    models.map(([name, model]) => [name, model.featureSensitivity()]),
  );
  const referenceName = chain.vbprContinued ? 'VBPR continued' : 'VBPR';
  const reference = metrics[referenceName]!;
  const amr = metrics['AMR']!;
  const fold = reference.meanUserSensitivity / Math.max(amr.meanUserSensitivity, 1e-30);
  const verdict =
    fold >= 10
      ? ` AMR's sensitivity is ${fold >= 100 ? Math.round(fold) : fold.toFixed(1)} times below ${referenceName}'s: its robustness to feature attacks comes from switching the visual part off, not from a robust visual part (and cold items, scored by E c_i alone, lose their signal).`
      : '';
  return {
    metrics,
    warnings: verdict ? [{ code: 'visual-part-collapsed', message: verdict.trim() }] : [],
    section: {
      kind: 'table',
      title: 'The visual part',
      caption: `How strongly the scores answer the item features. The score is linear in them, so a perturbation of an item's prepared features of norm epsilon moves user u's score by at most epsilon ||E^T p_u||, and FGM lowers a training pair's margin by 2 epsilon ||E^T p_u||: AMR's adversarial term penalises this sensitivity, and only a smaller E lowers it.${verdict}`,
      columns: [
        'model',
        'norm of E',
        'mean norm of E^T p_u over users',
        `sensitivity relative to ${referenceName}`,
      ],
      rows: models.map(([name]) => [
        name,
        metrics[name]!.projectionNorm,
        metrics[name]!.meanUserSensitivity,
        metrics[name]!.meanUserSensitivity / Math.max(reference.meanUserSensitivity, 1e-30),
      ]),
    },
  };
}

/** How one reproduction differs from the other: its stages, its experiment, its report text. */
interface ReproductionSpec<R extends ExperimentResult> {
  readonly stages: (
    t: ResolvedRunConfig['training'],
  ) => Readonly<Record<string, readonly [label: string, epochs: number]>>;
  readonly run: (
    data: LoadedData,
    common: ReturnType<typeof experimentOptions>,
    t: ResolvedRunConfig['training'],
    config: ResolvedRunConfig,
  ) => Promise<R>;
  readonly report: (
    result: R,
    config: ResolvedRunConfig,
    data: LoadedData,
    histories: Record<string, HistoryRow[]>,
  ) => {
    readonly dataNote?: string;
    readonly modelFact: string;
    readonly whatWasRun: string;
    readonly histories: Readonly<Record<string, readonly HistoryRow[]>>;
    readonly metricKey: (keys: readonly string[]) => string;
    /** Sections after the test results (AMR: warm and cold-start cases). */
    readonly extraSections?: readonly ReportSection[];
    /** Warnings of the reproduction (AMR: tuning at a grid's edge, a collapsed visual part). */
    readonly warnings?: readonly { readonly code: string; readonly message: string }[];
    /** Written into metrics.json beside the metrics. */
    readonly extraMetrics?: Readonly<Record<string, unknown>>;
  };
}

/** A reproduction: config, data, run folder, the experiment with progress, then the report. */
async function reproduction<R extends ExperimentResult>(
  kind: 'apr' | 'amr',
  options: ReproduceOptions,
  context: CommandContext,
  spec: ReproductionSpec<R>,
): Promise<number> {
  const config = baseConfig(kind, options);
  const started = new Date();
  const data = await loadData(config.data, dataLoading(context));
  checkRunSizes(config, data);
  await warnIfNoOnnxRuntime(context, 'full');
  if (kind === 'amr' && !data.itemFeatures)
    throw new ConfigError([
      {
        path: '--features',
        message:
          'AMR needs item features: pass a .npy feature file (advrec features), or use the synthetic default',
      },
    ]);
  const { folder, description, release } = await openRunFolder(
    options.out,
    `reproduce-${kind}`,
    config,
    data,
    context.progress,
    { force: options.force ?? false },
  );
  try {
    const stages = stageProgress(context, spec.stages(config.training));
    const result = await spec.run(
      data,
      experimentOptions(config, data, folder, stages),
      config.training,
      config,
    );
    stages.finish();
    return finishReproduction(context, config, data, {
      command: `reproduce ${kind}`,
      title: `advrec reproduce ${kind} on ${description.name}`,
      description,
      folder,
      started,
      result,
      ...spec.report(result, config, data, stages.histories),
    });
  } finally {
    await release();
  }
}

/** Progress bars and per-epoch histories for the stages of an experiment. */
function stageProgress(
  context: CommandContext,
  stages: Readonly<Record<string, readonly [label: string, epochs: number]>>,
): {
  callbacks: (stage: string) => TrainCallbacks;
  histories: Record<string, HistoryRow[]>;
  finish: () => void;
} {
  const histories: Record<string, HistoryRow[]> = Object.fromEntries(
    Object.keys(stages).map((stage) => [stage, []]),
  );
  let bar: ReturnType<CommandContext['progress']['bar']> | null = null;
  let logged = false;
  return {
    histories,
    callbacks: (stage) => {
      // A grid's arms (amr-eps0.1-lambda1) take their family's bar (amr).
      const [label, epochs] = stages[stage] ??
        stages[stage.split('-eps')[0]!] ?? [`${stage} epochs`, 1];
      bar?.finish();
      bar = context.progress.bar(label, epochs);
      const history = (histories[stage] ??= []);
      let first = -1;
      return {
        ...recorder(history, (e) => {
          if (first < 0) first = e.epoch;
          bar!.update(e.epoch - first + 1, `loss ${(e.loss / e.triples).toFixed(4)}`);
        }),
        onLog: (m) => {
          // The engine line once per experiment.
          if (!logged) context.progress.log(m);
          logged = true;
        },
      };
    },
    finish: () => bar?.finish(),
  };
}

/** What both experiments take from the run config. */
function experimentOptions(
  config: ResolvedRunConfig,
  data: LoadedData,
  folder: string,
  stages: { callbacks: (stage: string) => TrainCallbacks },
) {
  const t = config.training;
  return {
    embeddingSize: config.model.embeddingSize,
    modelSeed: config.model.seed,
    train: trainConfigOf(config),
    evaluate: (model: Model) =>
      evaluateModel(model, data, config.evaluation, { seed: TEST_SET_SEED, threads: t.threads }),
    // Sizes on the item features are relative to the prepared rows' mean norm (VBPR).
    attack: (model: Model) =>
      attackModel(model, data, config.evaluation, config.attack!, 11, t.threads),
    checkpoints: join(folder, 'checkpoints'),
    checkpointMetadata: { datasetFingerprint: data.fingerprint },
    callbacks: stages.callbacks,
  };
}

/** Writes a reproduction's report, metrics, history, robustness and status, and prints its summary. */
async function finishReproduction(
  context: CommandContext,
  config: ResolvedRunConfig,
  data: LoadedData,
  run: {
    readonly command: string;
    readonly title: string;
    readonly description: Awaited<ReturnType<typeof openRunFolder>>['description'];
    readonly dataNote?: string;
    readonly modelFact: string;
    readonly whatWasRun: string;
    readonly folder: string;
    readonly started: Date;
    readonly result: ExperimentResult;
    readonly histories: Readonly<Record<string, readonly HistoryRow[]>>;
    readonly metricKey: (keys: readonly string[]) => string;
    readonly extraSections?: readonly ReportSection[];
    readonly extraMetrics?: Readonly<Record<string, unknown>>;
    /** Warnings of the reproduction itself (tuning at a grid's edge, a collapsed visual part). */
    readonly warnings?: readonly { readonly code: string; readonly message: string }[];
  },
): Promise<number> {
  const { folder, result, description } = run;
  const results = result.test;
  const keys = Object.keys(results[0]![1].metrics);
  const comparisons = result.comparison.metrics;
  const robustness = result.robustness;
  const metricKey = run.metricKey(keys);
  const warnings = [
    ...(run.warnings ?? []),
    ...robustness.flatMap(({ name, report }) =>
      report.warnings.map((w) => ({ code: w.code, message: `${name}: ${w.message}` })),
    ),
  ];
  logWarnings(context, warnings);
  await writeReport(folder, {
    title: run.title,
    facts: [
      [
        'data',
        `${description.name}: ${description.users} users, ${description.items} items; split ${description.protocol.kind} (${description.protocol.order}, seed ${description.protocol.seed})${run.dataNote ?? ''}`,
      ],
      ['data set fingerprint', data.fingerprint],
      ['model', run.modelFact],
      ['started', run.started.toISOString()],
      ['machine', machineLine()],
    ],
    sections: [
      {
        kind: 'text',
        title: 'What was run',
        text: `${run.whatWasRun}\n\nAll numbers below were measured by this run.`,
      },
      ...((run.warnings ?? []).length > 0
        ? [
            {
              kind: 'text' as const,
              title: 'Warnings',
              text: run.warnings!.map((w) => `- ${w.message}`).join('\n'),
            },
          ]
        : []),
      comparisonSection('Test results', result, keys),
      ...(run.extraSections ?? []),
      ...historySections(
        Object.entries(run.histories).map(([name, history]) => ({ name, history })),
        config.training.validation.metric,
      ),
      ...robustnessSections(robustness, metricKey),
    ],
  });
  const metrics = Object.fromEntries(results.map(([name, r]) => [name, r.metrics]));
  await writeText(
    join(folder, 'metrics.json'),
    toJson({
      metrics,
      comparisons,
      protocol: results[0]![1].protocol,
      ...run.extraMetrics,
      warnings,
    }),
  );
  await writeText(
    join(folder, 'history.json'),
    toJson(
      Object.fromEntries(
        Object.entries(run.histories).map(([stage, rows]) => [stage, historyForFile(rows)]),
      ),
    ),
  );
  await writeText(
    join(folder, 'robustness.json'),
    toJson(Object.fromEntries(robustness.map((r) => [r.name, r.report]))),
  );
  await writeText(
    join(folder, 'run.json'),
    toJson({ command: run.command, status: 'done', started: run.started, ended: new Date() }),
  );
  emit(context, { folder, metrics, comparisons, robustness }, () =>
    summary(result, metricKey, folder),
  );
  return 0;
}

function comparisonSection(
  title: string,
  result: ExperimentResult,
  keys: readonly string[],
): ReportSection {
  const { candidate, baseline, metrics: comparisons } = result.comparison;
  return {
    kind: 'table',
    title,
    caption: `Protocol: ${protocolLine(result.test[0]![1])}. Last rows: ${candidate} vs ${baseline}, relative change and paired t-test / Wilcoxon p-values over per-user values.`,
    columns: ['model', ...keys],
    rows: [
      ...result.test.map(([name, r]) => [name, ...keys.map((k) => r.metrics[k]!)]),
      [`${candidate} vs ${baseline}`, ...keys.map((k) => percent(comparisons[k]!.relative))],
      ['paired t-test p', ...keys.map((k) => pValue(comparisons[k]!.tTestP))],
      ['Wilcoxon p', ...keys.map((k) => pValue(comparisons[k]!.wilcoxonP))],
    ],
  };
}

/** `p = 0.012`, or `p < 1e-300`. */
function pEquals(p: number): string {
  const text = pValue(p);
  return text.startsWith('<') ? `p ${text}` : `p = ${text}`;
}

function summary(result: ExperimentResult, metricKey: string, folder: string): string {
  const results = result.test;
  const comparisons = result.comparison.metrics;
  const robustness = result.robustness;
  const keys = Object.keys(results[0]![1].metrics);
  const epsilons = [...new Set(robustness[0]!.report.points.map((p) => p.epsilon))];
  return [
    `test (${protocolLine(results[0]![1])})`,
    textTable(
      ['model', ...keys],
      results.map(([n, r]) => [n, ...keys.map((k) => r.metrics[k]!)]),
    ),
    `${result.comparison.candidate} vs ${result.comparison.baseline}: ${keys.map((k) => `${k} ${percent(comparisons[k]!.relative)} (${pEquals(comparisons[k]!.tTestP)})`).join(', ')}`,
    '',
    `robustness: relative change of ${metricKey}`,
    textTable(
      ['model', 'perturbation', ...epsilons.map((e) => `eps ${e}`)],
      robustness.flatMap(({ name, report }) =>
        robustnessLines(report, metricKey, epsilons, false).map((line) => [
          name,
          line.label,
          ...line.cells,
        ]),
      ),
    ),
    '(n.s.): the paired interval over users covers zero',
    '',
    `report: ${join(folder, 'report.html')} and report.md`,
  ].join('\n');
}
