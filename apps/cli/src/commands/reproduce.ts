import { join } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { EvaluationResult } from '@advrec/metrics';
import { ItemPop, MatrixFactorization, cloneTable, writeCheckpoint } from '@advrec/models';
import type { Model } from '@advrec/models';
import { Trainer, trainAmrChain } from '@advrec/trainer';
import type {
  EpochEvent,
  RobustnessReport,
  TrainCallbacks,
  ValidationEvent,
} from '@advrec/trainer';
import { applyOverrides, resolveRunConfig } from '../config.js';
import type { ResolvedRunConfig } from '../config.js';
import { emit, openRunFolder, percent, textTable } from '../context.js';
import type { CommandContext } from '../context.js';
import { loadData } from '../datasets.js';
import type { LoadedData } from '../datasets.js';
import {
  attackModel,
  compareMetric,
  evaluateModel,
  machineLine,
  phaseSummary,
  protocolLine,
  robustnessSections,
  toJson,
  trainConfigOf,
  writeText,
} from '../pipeline.js';
import type { HistoryRow } from '../pipeline.js';
import { writeReport } from '../report.js';
import type { ReportSection } from '../report.js';
import { historySections } from './run.js';

/** Options of `advrec reproduce apr|amr`. */
export interface ReproduceOptions {
  readonly data?: string;
  readonly features?: string;
  readonly out?: string;
  readonly epochs?: number;
  readonly adversarialEpochs?: number;
  readonly epsilon?: number;
  readonly lambda?: number;
  readonly epsilons?: number[];
  readonly protocol?: 'full' | 'sampled';
  readonly threads?: number;
  readonly set?: readonly string[];
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

function comparisonSection(
  title: string,
  rows: readonly (readonly [string, EvaluationResult])[],
  candidate: string,
  baseline: string,
  keys: readonly string[],
): { section: ReportSection; comparisons: Record<string, ReturnType<typeof compareMetric>> } {
  const a = rows.find(([n]) => n === candidate)![1];
  const b = rows.find(([n]) => n === baseline)![1];
  const comparisons = Object.fromEntries(keys.map((k) => [k, compareMetric(a, b, k)]));
  return {
    comparisons,
    section: {
      kind: 'table',
      title,
      caption: `Protocol: ${protocolLine(a)}. Last rows: ${candidate} vs ${baseline}, relative change and paired t-test / Wilcoxon p-values over per-user values.`,
      columns: ['model', ...keys],
      rows: [
        ...rows.map(([name, r]) => [name, ...keys.map((k) => r.metrics[k]!)]),
        [`${candidate} vs ${baseline}`, ...keys.map((k) => percent(comparisons[k]!.relative))],
        ['paired t-test p', ...keys.map((k) => comparisons[k]!.tTestP.toExponential(2))],
        ['Wilcoxon p', ...keys.map((k) => comparisons[k]!.wilcoxonP.toExponential(2))],
      ],
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
      split: amr ? { protocol: 'leave-one-out', order: 'random' } : { protocol: 'auto' },
    },
    model: { name: amr ? 'vbpr' : 'mf', embeddingSize: 64 },
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
      epsilons: options.epsilons ?? (amr ? [0.05, 0.1, 0.2, 0.5, 1] : [0.25, 0.5, 1, 2]),
      adversaries: ['fgm', 'random'],
    },
  };
  return resolveRunConfig(applyOverrides(raw, options.set ?? []));
}

/**
 * `advrec reproduce apr`: APR's pipeline (Algorithm 1) on a data set: ItemPop, MF-BPR with
 * early stopping, then AMF (APR on MF) versus BPR continued from the same checkpoint for as
 * many epochs, significance tests, and the robustness of both (APR Figure 1, Table 2).
 */
export async function reproduceAprCommand(
  options: ReproduceOptions,
  context: CommandContext,
): Promise<number> {
  const config = baseConfig('apr', options);
  const started = new Date();
  const { progress } = context;
  const data = await loadData(config.data);
  const { folder, description } = await openRunFolder(
    options.out,
    'reproduce-apr',
    config,
    data,
    progress,
  );
  const t = config.training;
  const evaluate = (model: Model): Promise<EvaluationResult> =>
    evaluateModel(model, data, config.evaluation, { seed: 7, threads: t.threads });

  const mf = new MatrixFactorization(data.dataset, {
    embeddingSize: config.model.embeddingSize,
    seed: config.model.seed,
  });
  const bprHistory: HistoryRow[] = [];
  let bar = progress.bar('MF-BPR epochs (early stopping)', t.epochs);
  const pre = await Trainer.create(mf, data.dataset, trainConfigOf(config), {
    ...recorder(bprHistory, (e) =>
      bar.update(e.epoch + 1, `loss ${(e.loss / e.triples).toFixed(4)}`),
    ),
    onLog: (m) => progress.log(m),
  });
  const prePhase = await pre.runPhase({
    epochs: t.epochs,
    adversarial: false,
    checkpoint: join(folder, 'checkpoints', 'mf-bpr.ckpt'),
  });
  await pre.close();
  bar.finish(phaseSummary(prePhase, t.validation.metric), prePhase.epochs.length);

  const copy = (): MatrixFactorization =>
    new MatrixFactorization(data.dataset, mf.config, {
      userEmbeddings: cloneTable(mf.userEmbeddings),
      itemEmbeddings: cloneTable(mf.itemEmbeddings),
    });
  const arms: {
    name: string;
    model: MatrixFactorization;
    adversarial: boolean;
    history: HistoryRow[];
  }[] = [
    { name: 'BPR continued', model: copy(), adversarial: false, history: [] },
    { name: `AMF (eps ${t.adversarial.epsilon})`, model: copy(), adversarial: true, history: [] },
  ];
  for (const arm of arms) {
    bar = progress.bar(`${arm.name} epochs`, t.adversarialEpochs);
    const start = prePhase.bestEpoch + 1;
    const trainer = await Trainer.create(
      arm.model,
      data.dataset,
      {
        ...trainConfigOf(config),
        adversarial: {
          adversary: t.adversarial.adversary,
          epsilon: t.adversarial.epsilon,
          adversarialWeight: t.adversarial.adversarialWeight,
        },
        // Validate every epoch-block but never stop early: both arms train as long (Algorithm 1).
        validation: { every: t.validation.every, metric: t.validation.metric, threads: t.threads },
      },
      recorder(arm.history, (e) =>
        bar.update(e.epoch - start + 1, `loss ${(e.loss / e.triples).toFixed(4)}`),
      ),
      { epoch: start },
    );
    await trainer.runPhase({
      epochs: t.adversarialEpochs,
      adversarial: arm.adversarial,
      restoreBest: false,
    });
    await trainer.save(
      join(folder, 'checkpoints', `${arm.adversarial ? 'amf' : 'bpr-continued'}.ckpt`),
    );
    await trainer.close();
    bar.finish();
  }
  bar = progress.bar('evaluating on test', 4);
  const results: [string, EvaluationResult][] = [];
  for (const [name, model] of [
    ['ItemPop', new ItemPop(data.dataset.train)],
    ['MF-BPR', mf],
    [arms[0]!.name, arms[0]!.model],
    [arms[1]!.name, arms[1]!.model],
  ] as const) {
    results.push([name, await evaluate(model)]);
    bar.update(results.length);
  }
  bar.finish();
  const keys = Object.keys(results[0]![1].metrics);
  const { section: comparison, comparisons } = comparisonSection(
    'Test results',
    results,
    arms[1]!.name,
    arms[0]!.name,
    keys,
  );
  bar = progress.bar('robustness sweeps', 2);
  const robustness: { name: string; report: RobustnessReport }[] = [];
  for (const arm of arms) {
    robustness.push({
      name: arm.name,
      report: await attackModel(arm.model, data, config.evaluation, config.attack!, 11, t.threads),
    });
    bar.update(robustness.length);
  }
  bar.finish();
  const metricKey =
    keys.find((k) => k.startsWith('ndcg@') && k.endsWith(`@${config.evaluation.cutoffs.at(-1)}`)) ??
    keys[0]!;
  const sections: ReportSection[] = [
    {
      kind: 'text',
      title: 'What was run',
      text: `APR Algorithm 1: MF-BPR trained with early stopping on validation ${t.validation.metric} (best epoch ${prePhase.bestEpoch}); from its best parameters, AMF (BPR + lambda x BPR under FGM perturbations of both embeddings, epsilon ${t.adversarial.epsilon}, lambda ${t.adversarial.adversarialWeight}) and plain BPR continued for ${t.adversarialEpochs} epochs each with the same sampler seed.\n\nAll numbers below were measured by this run.`,
    },
    comparison,
    ...historySections(
      [
        { name: 'MF-BPR (pre-training)', history: bprHistory },
        { name: arms[0]!.name, history: arms[0]!.history },
        { name: arms[1]!.name, history: arms[1]!.history },
      ],
      t.validation.metric,
    ),
    ...robustnessSections(robustness, metricKey),
  ];
  await writeReport(folder, {
    title: `advrec reproduce apr on ${description.name}`,
    facts: [
      [
        'data',
        `${description.name}: ${description.users} users, ${description.items} items; split ${description.protocol.kind} (${description.protocol.order}, seed ${description.protocol.seed})`,
      ],
      ['data set fingerprint', data.fingerprint],
      [
        'model',
        `MF, K = ${config.model.embeddingSize}; batch ${t.batchSize}, ${t.optimizer.name} lr ${t.optimizer.learningRate}`,
      ],
      ['started', started.toISOString()],
      ['machine', machineLine()],
    ],
    sections,
  });
  return finishReproduction(context, {
    command: 'reproduce apr',
    folder,
    started,
    results,
    comparisons,
    robustness,
    metricKey,
    histories: {
      'MF-BPR': bprHistory,
      [arms[0]!.name]: arms[0]!.history,
      [arms[1]!.name]: arms[1]!.history,
    },
  });
}

/** Writes a reproduction's metrics, history, robustness and status, and prints its summary. */
async function finishReproduction(
  context: CommandContext,
  run: {
    readonly command: string;
    readonly folder: string;
    readonly started: Date;
    readonly results: readonly (readonly [string, EvaluationResult])[];
    readonly comparisons: Record<string, ReturnType<typeof compareMetric>>;
    readonly robustness: readonly { name: string; report: RobustnessReport }[];
    readonly metricKey: string;
    readonly histories: Readonly<Record<string, readonly HistoryRow[]>>;
  },
): Promise<number> {
  const { folder, results, comparisons, robustness } = run;
  const metrics = Object.fromEntries(results.map(([name, r]) => [name, r.metrics]));
  await writeText(
    join(folder, 'metrics.json'),
    toJson({ metrics, comparisons, protocol: results[0]![1].protocol }),
  );
  await writeText(join(folder, 'history.json'), toJson(run.histories));
  await writeText(
    join(folder, 'robustness.json'),
    toJson(Object.fromEntries(robustness.map((r) => [r.name, r.report]))),
  );
  await writeText(
    join(folder, 'run.json'),
    toJson({ command: run.command, status: 'done', started: run.started, ended: new Date() }),
  );
  emit(context, { folder, metrics, comparisons, robustness }, () =>
    summary(results, comparisons, robustness, run.metricKey, folder),
  );
  return 0;
}

function summary(
  results: readonly (readonly [string, EvaluationResult])[],
  comparisons: Record<string, ReturnType<typeof compareMetric>>,
  robustness: readonly { name: string; report: Awaited<ReturnType<typeof attackModel>> }[],
  metricKey: string,
  folder: string,
): string {
  const keys = Object.keys(results[0]![1].metrics);
  const epsilons = [...new Set(robustness[0]!.report.points.map((p) => p.epsilon))];
  return [
    `test (${protocolLine(results[0]![1])})`,
    textTable(
      ['model', ...keys],
      results.map(([n, r]) => [n, ...keys.map((k) => r.metrics[k]!)]),
    ),
    `${results.at(-1)![0]} vs ${results.at(-2)![0]}: ${keys.map((k) => `${k} ${percent(comparisons[k]!.relative)} (p ${comparisons[k]!.tTestP.toExponential(1)})`).join(', ')}`,
    '',
    `robustness: relative change of ${metricKey}`,
    textTable(
      ['model', 'adversary', ...epsilons.map((e) => `eps ${e}`)],
      robustness.flatMap(({ name, report }) =>
        ['fgm', 'random'].map((a) => [
          name,
          a,
          ...epsilons.map((e) =>
            percent(
              report.points.find((p) => p.adversary === a && p.epsilon === e)?.relativeChange[
                metricKey
              ] ?? Number.NaN,
            ),
          ),
        ]),
      ),
    ),
    '',
    `report: ${join(folder, 'report.html')} and report.md`,
  ].join('\n');
}

/**
 * `advrec reproduce amr`: AMR's pipeline (Algorithm 1 of the TKDE paper): MF-BPR, VBPR
 * initialised from it, then AMR (adversarial perturbations of the item features) versus VBPR
 * continued; the sampled protocol (999 negatives) by default, and the feature-robustness
 * table (AMR Table 3).
 */
export async function reproduceAmrCommand(
  options: ReproduceOptions,
  context: CommandContext,
): Promise<number> {
  const config = baseConfig('amr', options);
  const started = new Date();
  const { progress } = context;
  const data: LoadedData = await loadData(config.data);
  if (!data.itemFeatures)
    throw new ConfigError([
      {
        path: '--features',
        message:
          'AMR needs item features: pass a .npy feature file (advrec features), or use the synthetic default',
      },
    ]);
  const { folder, description } = await openRunFolder(
    options.out,
    'reproduce-amr',
    config,
    data,
    progress,
  );
  const t = config.training;
  const histories: Record<string, HistoryRow[]> = {
    mf: [],
    vbpr: [],
    'vbpr-continued': [],
    amr: [],
  };
  const totals: Record<string, number> = {
    mf: t.epochs,
    vbpr: t.epochs,
    'vbpr-continued': t.adversarialEpochs,
    amr: t.adversarialEpochs,
  };
  let bar = progress.bar('mf epochs', t.epochs);
  let current = '';
  const chain = await trainAmrChain(data.dataset, {
    features: { data: data.itemFeatures.matrix, dimension: data.itemFeatures.dimension },
    embeddingSize: config.model.embeddingSize,
    train: trainConfigOf(config),
    mfEpochs: t.epochs,
    vbprEpochs: t.epochs,
    amrEpochs: t.adversarialEpochs,
    epsilon: t.adversarial.epsilon,
    adversarialWeight: t.adversarial.adversarialWeight,
    callbacks: (stage) => {
      let first = -1;
      return recorder(histories[stage]!, (e) => {
        if (current !== stage) {
          if (current !== '') bar.finish();
          current = stage;
          bar = progress.bar(`${stage} epochs`, totals[stage]!);
        }
        if (first < 0) first = e.epoch;
        bar.update(e.epoch - first + 1, `loss ${(e.loss / e.triples).toFixed(4)}`);
      });
    },
  });
  bar.finish();
  for (const [name, model] of [
    ['mf-bpr', chain.mf],
    ['vbpr', chain.vbpr],
    ['amr', chain.amr],
  ] as const)
    await writeCheckpoint(join(folder, 'checkpoints', `${name}.ckpt`), model, [], {
      datasetFingerprint: data.fingerprint,
    });
  bar = progress.bar('evaluating on test', 5);
  const results: [string, EvaluationResult][] = [];
  for (const [name, model] of [
    ['ItemPop', new ItemPop(data.dataset.train)],
    ['MF-BPR', chain.mf],
    ['VBPR', chain.vbpr],
    ['VBPR continued', chain.vbprContinued!],
    [`AMR (eps ${t.adversarial.epsilon})`, chain.amr],
  ] as const) {
    results.push([
      name,
      await evaluateModel(model, data, config.evaluation, { seed: 7, threads: t.threads }),
    ]);
    bar.update(results.length);
  }
  bar.finish();
  const keys = Object.keys(results[0]![1].metrics);
  const { section: comparison, comparisons } = comparisonSection(
    'Test results',
    results,
    results[4]![0],
    'VBPR continued',
    keys,
  );
  bar = progress.bar('feature robustness sweeps', 2);
  const attack = { ...config.attack!, surfaces: ['itemFeatures'] };
  const robustness: { name: string; report: RobustnessReport }[] = [];
  for (const [name, model] of [
    ['VBPR continued', chain.vbprContinued!],
    [results[4]![0], chain.amr],
  ] as const) {
    robustness.push({
      name,
      report: await attackModel(model, data, config.evaluation, attack, 11, t.threads),
    });
    bar.update(robustness.length);
  }
  bar.finish();
  const metricKey = keys.includes('ndcg@10') ? 'ndcg@10' : keys[0]!;
  await writeReport(folder, {
    title: `advrec reproduce amr on ${description.name}`,
    facts: [
      [
        'data',
        `${description.name}: ${description.users} users, ${description.items} items; split ${description.protocol.kind} (${description.protocol.order}, seed ${description.protocol.seed}); features ${data.itemFeatures.dimension}-d from ${data.itemFeatures.source}`,
      ],
      ['data set fingerprint', data.fingerprint],
      [
        'model',
        `VBPR (AMR Eq. 4: p_u . (q_i + E c_i)), K = ${config.model.embeddingSize}; batch ${t.batchSize}, ${t.optimizer.name} lr ${t.optimizer.learningRate}`,
      ],
      ['started', started.toISOString()],
      ['machine', machineLine()],
    ],
    sections: [
      {
        kind: 'text',
        title: 'What was run',
        text: `AMR Algorithm 1: MF-BPR (${t.epochs} epochs max, early stopping on validation ${t.validation.metric}), VBPR initialised from MF's embeddings, then from VBPR's parameters AMR (BPR + lambda x BPR under FGM perturbations of the item features, epsilon ${t.adversarial.epsilon}, lambda ${t.adversarial.adversarialWeight}) and VBPR continued, ${t.adversarialEpochs} epochs each.\n\nAll numbers below were measured by this run.`,
      },
      comparison,
      ...historySections(
        Object.entries(histories).map(([name, history]) => ({ name, history })),
        t.validation.metric,
      ),
      ...robustnessSections(robustness, metricKey),
    ],
  });
  return finishReproduction(context, {
    command: 'reproduce amr',
    folder,
    started,
    results,
    comparisons,
    robustness,
    metricKey,
    histories,
  });
}
