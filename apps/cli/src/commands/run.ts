import { join, relative } from 'node:path';
import { ConfigError, DataError } from '@advrec/data';
import type { EvaluationResult } from '@advrec/metrics';
import type { Model } from '@advrec/models';
import type { EngineInfo } from '@advrec/trainer';
import { applyOverrides, readConfigFile, resolveRunConfig } from '../config.js';
import type { ResolvedRunConfig } from '../config.js';
import { emit, openRunFolder, percent, textTable } from '../context.js';
import type { CommandContext } from '../context.js';
import { loadData } from '../datasets.js';
import {
  attackModel,
  buildModel,
  checkTrainConfig,
  evaluateModel,
  loadPlugins,
  machineLine,
  protocolLine,
  reloadRun,
  robustnessSections,
  toJson,
  trainModel,
  writeText,
} from '../pipeline.js';
import type { HistoryRow } from '../pipeline.js';
import { writeReport } from '../report.js';
import type { ReportSection } from '../report.js';

/** Options of `advrec train`. */
export interface TrainOptions {
  readonly config?: string;
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
  readonly plugin?: readonly string[];
}

/** Reads, overrides, validates and resolves the run config of `advrec train`. */
export async function runConfigFromOptions(options: TrainOptions): Promise<ResolvedRunConfig> {
  const base = options.config
    ? await readConfigFile(options.config)
    : { data: { source: 'synthetic' }, model: { name: 'mf' } };
  const shorthands: string[] = [];
  const flag = (path: string, value: string | undefined): void => {
    if (value !== undefined) shorthands.push(`${path}=${value}`);
  };
  flag('data.source', options.data);
  flag('model.name', options.model);
  flag('training.epochs', options.epochs);
  flag('training.adversarialEpochs', options.adversarialEpochs);
  flag('training.adversarial.adversary', options.adversary);
  flag('training.adversarial.epsilon', options.epsilon);
  flag('training.adversarial.adversarialWeight', options.lambda);
  flag('training.threads', options.threads);
  const merged = applyOverrides(base, [...shorthands, ...(options.set ?? [])]) as Record<
    string,
    unknown
  >;
  const plugins = [...((merged.plugins as string[] | undefined) ?? []), ...(options.plugin ?? [])];
  if (plugins.length > 0) merged.plugins = [...new Set(plugins)];
  if (Array.isArray(merged.plugins))
    await loadPlugins(merged.plugins.filter((p): p is string => typeof p === 'string'));
  return resolveRunConfig(merged);
}

function metricsTable(rows: readonly (readonly [string, EvaluationResult])[]): string {
  const keys = Object.keys(rows[0]![1].metrics);
  return textTable(
    ['model', ...keys],
    rows.map(([name, r]) => [name, ...keys.map((k) => r.metrics[k]!)]),
  );
}

/** Report sections of training history: loss and validation curves (papers' Figures 3-5). */
export function historySections(
  histories: readonly { readonly name: string; readonly history: readonly HistoryRow[] }[],
  metric: string,
  idPrefix = 'training',
): ReportSection[] {
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
        series: histories.flatMap(({ name, history }) => [
          { name, points: history.map((r) => [r.epoch, r.loss] as const) },
          ...(history.some((r) => r.adversarialLoss !== null)
            ? [
                {
                  name: `${name} (adversarial term)`,
                  dashed: true,
                  points: history
                    .filter((r) => r.adversarialLoss !== null)
                    .map((r) => [r.epoch, r.adversarialLoss!] as const),
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
        series: histories.map(({ name, history }) => ({
          name,
          points: history
            .filter((r) => r.validation?.[metric] !== undefined)
            .map((r) => [r.epoch, r.validation![metric]!] as const),
        })),
      },
    });
  return sections;
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

/** `advrec train`: trains, evaluates on test, optionally attacks, writes the run folder. */
export async function trainCommand(
  options: TrainOptions,
  context: CommandContext,
): Promise<number> {
  const config = await runConfigFromOptions(options);
  const started = new Date();
  // Load (and so check) the data before creating anything on disk.
  const data = await loadData(config.data);
  const model = buildModel(config, data);
  checkTrainConfig(config, model);
  const { folder, description } = await openRunFolder(
    options.out,
    'train',
    config,
    data,
    context.progress,
  );
  const outcome = await trainModel(model, data, config, {
    folder,
    progress: context.progress,
    signal: context.signal,
  });
  await writeText(join(folder, 'history.json'), toJson(outcome.history));
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
  let robustness = null;
  if (config.attack) {
    const b = context.progress.bar('robustness sweep', 1);
    robustness = await attackModel(
      model,
      data,
      config.evaluation,
      config.attack,
      config.training.seed,
      config.training.threads,
    );
    b.finish();
    await writeText(join(folder, 'robustness.json'), toJson(robustness));
  }
  const metricKey = `ndcg@${config.evaluation.cutoffs[Math.min(1, config.evaluation.cutoffs.length - 1)]}`;
  const sections: ReportSection[] = [
    evaluationSection('Test results', [[config.model.name, result]]),
    ...historySections(
      [{ name: config.model.name, history: outcome.history }],
      config.training.validation.metric,
    ),
    ...(robustness
      ? robustnessSections([{ name: config.model.name, report: robustness }], metricKey)
      : []),
  ];
  await writeReport(folder, {
    title: `advrec train: ${config.model.name} on ${description.name}`,
    facts: runFacts(config, data.fingerprint, started, outcome.engine),
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
      bestEpoch: outcome.bestEpoch,
      stoppedEarly: outcome.stoppedEarly,
    }),
  );
  emit(context, { folder, metrics: result.metrics, protocol: result.protocol, robustness }, () =>
    [
      metricsTable([[config.model.name, result]]),
      `protocol: ${protocolLine(result)}`,
      `run folder: ${folder} (report.html, report.md, metrics.json, history.json, checkpoints/)`,
    ].join('\n'),
  );
  return 0;
}

/** The facts block of a run's report. */
export function runFacts(
  config: ResolvedRunConfig,
  fingerprint: string,
  started: Date,
  engine: EngineInfo | null,
): [string, string][] {
  const t = config.training;
  return [
    [
      'data',
      `${config.data.source} (split ${config.data.split.protocol}, order ${config.data.split.order}, seed ${config.data.split.seed}${config.data.validation ? ', validation carved from train' : ''})`,
    ],
    ['data set fingerprint', fingerprint],
    ['model', `${config.model.name}, K = ${config.model.embeddingSize}, seed ${config.model.seed}`],
    [
      'training',
      `${t.epochs} BPR epochs + ${t.adversarialEpochs} adversarial epochs (${t.adversarial.adversary}, epsilon ${t.adversarial.epsilon}, lambda ${t.adversarial.adversarialWeight}); batch ${t.batchSize}, ${t.optimizer.name} lr ${t.optimizer.learningRate}, l2 ${t.l2}; validation ${t.validation.metric} every ${t.validation.every}${t.validation.patience ? `, patience ${t.validation.patience}` : ''}`,
    ],
    ['engine', engine ? `${engine.name}: ${engine.description}` : 'n/a'],
    ['started', started.toISOString()],
    ['machine', machineLine()],
  ];
}

/** Options of `advrec evaluate`. */
export interface EvaluateOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly protocol?: 'full' | 'sampled';
  readonly negatives?: number;
  readonly cutoffs?: number[];
  readonly metrics?: string[];
  readonly split?: 'test' | 'validation';
  readonly seed?: number;
}

/** `advrec evaluate`: evaluates a run's model under either protocol. */
export async function evaluateCommand(
  options: EvaluateOptions,
  context: CommandContext,
): Promise<number> {
  const run = await reloadRun(options.run, options.checkpoint);
  const evaluation = {
    ...run.config.evaluation,
    ...(options.protocol ? { protocol: options.protocol } : {}),
    ...(options.negatives ? { negatives: options.negatives } : {}),
    ...(options.cutoffs ? { cutoffs: options.cutoffs } : {}),
    ...(options.metrics
      ? { metrics: options.metrics as ResolvedRunConfig['evaluation']['metrics'] }
      : {}),
  };
  const bar = context.progress.bar(
    `evaluating ${relative(process.cwd(), run.checkpoint) || run.checkpoint}`,
    1,
  );
  const result = await evaluateModel(run.model, run.data, evaluation, {
    split: options.split ?? 'test',
    seed: options.seed ?? run.config.data.split.seed,
    threads: run.config.training.threads,
  });
  bar.finish(`${result.seconds.toFixed(1)} s`);
  const file = join(
    options.run,
    `evaluation-${evaluation.protocol}-${options.split ?? 'test'}.json`,
  );
  await writeText(
    file,
    toJson({
      checkpoint: run.checkpoint,
      metrics: result.metrics,
      coverage: result.coverage,
      protocol: result.protocol,
    }),
  );
  emit(
    context,
    { checkpoint: run.checkpoint, metrics: result.metrics, protocol: result.protocol, file },
    () =>
      [
        metricsTable([[run.model.modelName, result]]),
        `protocol: ${protocolLine(result)}`,
        `written: ${file}`,
      ].join('\n'),
  );
  return 0;
}

/** Options of `advrec attack`. */
export interface AttackOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly epsilons?: number[];
  readonly adversaries?: string[];
  readonly surfaces?: string[];
  readonly protocol?: 'full' | 'sampled';
  readonly seed?: number;
}

/** `advrec attack`: the robustness sweep (adversarial vs random, epsilon list) on a run's model. */
export async function attackCommand(
  options: AttackOptions,
  context: CommandContext,
): Promise<number> {
  const run = await reloadRun(options.run, options.checkpoint);
  const attack = {
    epsilons: options.epsilons ?? run.config.attack?.epsilons ?? [0.25, 0.5, 1, 2],
    adversaries: options.adversaries ?? run.config.attack?.adversaries ?? ['fgm', 'random'],
    surfaces: options.surfaces ?? run.config.attack?.surfaces ?? null,
  };
  const evaluation = {
    ...run.config.evaluation,
    ...(options.protocol ? { protocol: options.protocol } : {}),
  };
  const bar = context.progress.bar('robustness sweep', 1);
  const report = await attackModel(
    run.model,
    run.data,
    evaluation,
    attack,
    options.seed ?? 0,
    run.config.training.threads,
  );
  bar.finish();
  const file = join(options.run, 'robustness.json');
  await writeText(file, toJson({ checkpoint: run.checkpoint, ...report }));
  const metricKey = `ndcg@${evaluation.cutoffs[Math.min(1, evaluation.cutoffs.length - 1)]}`;
  const sections = robustnessSections([{ name: run.model.modelName, report }], metricKey, 'attack');
  await writeReport(join(options.run, 'attack'), {
    title: `advrec attack: ${run.model.modelName} (${run.checkpoint})`,
    facts: [
      ['checkpoint', run.checkpoint],
      ['data set fingerprint', run.data.fingerprint],
      [
        'protocol',
        evaluation.protocol === 'full'
          ? 'full ranking, training and validation items excluded'
          : `sampled, ${evaluation.negatives} negatives`,
      ],
      ['machine', machineLine()],
    ],
    sections,
  });
  const epsilons = [...new Set(report.points.map((p) => p.epsilon))];
  emit(context, { file, ...report }, () =>
    [
      textTable(
        ['adversary', `clean ${metricKey}`, ...epsilons.map((e) => `eps ${e}`)],
        attack.adversaries.map((a) => [
          a,
          report.clean[metricKey] ?? Number.NaN,
          ...epsilons.map((e) =>
            percent(
              report.points.find((p) => p.adversary === a && p.epsilon === e)?.relativeChange[
                metricKey
              ] ?? Number.NaN,
            ),
          ),
        ]),
      ),
      `surfaces: ${report.surfaces.join(', ')}; written: ${file} and ${join(options.run, 'attack', 'report.html')}`,
    ].join('\n'),
  );
  return 0;
}

/** Options of `advrec recommend`. */
export interface RecommendOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly users: string[];
  readonly k: number;
  readonly format: 'json' | 'csv';
  readonly includeSeen?: boolean;
}

/** Top-K items per user, excluding every item the user interacted with in the data set. */
export function recommend(
  model: Model,
  seen: readonly { indptr: Int32Array; indices: Int32Array }[],
  users: Int32Array,
  k: number,
): { items: Int32Array; scores: Float64Array }[] {
  const n = model.numItems;
  const scores = model.scoreAll(users);
  return Array.from(users, (_, row) => {
    const s = scores.subarray(row * n, (row + 1) * n);
    const excluded = new Uint8Array(n);
    for (const m of seen)
      for (let p = m.indptr[users[row]!]!; p < m.indptr[users[row]! + 1]!; p++)
        excluded[m.indices[p]!] = 1;
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (!excluded[i] && Number.isFinite(s[i]!)) order.push(i);
    // Ties broken by item id, as in the evaluator.
    order.sort((a, b) => s[b]! - s[a]! || a - b);
    const top = order.slice(0, k);
    return { items: Int32Array.from(top), scores: Float64Array.from(top, (i) => s[i]!) };
  });
}

/** `advrec recommend`: top-K for given users (source ids) as JSON or CSV. */
export async function recommendCommand(
  options: RecommendOptions,
  context: CommandContext,
): Promise<number> {
  if (!(Number.isInteger(options.k) && options.k >= 1))
    throw new ConfigError([{ path: '--k', message: `must be an integer >= 1, got ${options.k}` }]);
  const run = await reloadRun(options.run, options.checkpoint);
  const { dataset } = run.data;
  const unknown = options.users.filter((u) => !dataset.userIdMap.has(u));
  if (unknown.length > 0)
    throw new DataError(
      `unknown user id${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 10).join(', ')} (data set ${dataset.name} has ${dataset.numUsers} users)`,
    );
  const users = Int32Array.from(options.users, (u) => dataset.userIdMap.toDense(u));
  const seen = options.includeSeen
    ? []
    : [dataset.train, dataset.validation, dataset.test].filter((m) => m !== null);
  const lists = recommend(run.model, seen, users, options.k);
  const out = options.users.map((user, row) => ({
    user,
    items: Array.from(lists[row]!.items, (i, rank) => ({
      item: dataset.itemIdMap.toSource(i),
      rank: rank + 1,
      score: lists[row]!.scores[rank]!,
    })),
  }));
  if (options.format === 'csv' && !context.json) {
    context.stdout.write('user,rank,item,score\n');
    for (const u of out)
      for (const r of u.items) context.stdout.write(`${u.user},${r.rank},${r.item},${r.score}\n`);
  } else
    context.stdout.write(
      toJson({
        checkpoint: run.checkpoint,
        k: options.k,
        excludeSeen: !options.includeSeen,
        recommendations: out,
      }),
    );
  return 0;
}
