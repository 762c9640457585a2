/**
 * Sequential recommendation on the command line: `advrec train` with `model: sasrec | gru4rec`
 * and `advrec reproduce atsrec`. A user is the sequence of their items (by timestamp, else in
 * file order); the split is the SASRec paper's (last item test, the one before validation);
 * each target is ranked against sampled negatives (HR@10, NDCG@10).
 */
import { shorthandOverrides } from '../../shorthands.js';
import { join } from 'node:path';
import {
  ConfigError,
  generateCycleSequences,
  leaveLastOut,
  readDelimited,
  sequencesFromLog,
} from '@advrec/data';
import type { ConfigIssue, SequenceSplit } from '@advrec/data';
import { meanPairwiseCosine, meanRowNorm, pairedTTest } from '@advrec/metrics';
import {
  SEQUENCE_ITEM_TABLE,
  cloneTable,
  getSequentialModelFactory,
  writeCheckpoint,
} from '@advrec/models';
import type { JsonObject, SequentialModel } from '@advrec/models';
import {
  evaluateSequential,
  loadTfjs,
  sequenceCandidates,
  sequenceFgmPerturbation,
  trainSequentialModel,
} from '@advrec/trainer';
import type {
  SequenceEvaluation,
  SequenceOptimizerState,
  SequenceTrainResult,
} from '@advrec/trainer';
import { applyOverrides } from '../../config.js';
import { claimRunFolder, emit, pValue, percent, textTable } from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';
import { loadPlugins, MODEL_PACKAGES, SEQUENTIAL_MODELS } from '../../plugins.js';
import { machineLine, toJson, writeText } from '../../run-folder/runs.js';
import { writeReport } from '../../run-folder/report.js';
import type { ReportSection } from '../../run-folder/report.js';

/** A sequential run's configuration (what `config.json` records). */
export interface SequentialRunConfig {
  readonly data: { readonly source: string };
  readonly model: JsonObject & { readonly name: string };
  readonly training: {
    readonly epochs: number;
    readonly adversarialEpochs: number;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly seed: number;
    readonly validateEvery: number;
    readonly patience: number;
    readonly adversarial: {
      /** Relative to the mean item-row norm at the start of adversarial training. */
      readonly epsilon: number;
      readonly adversarialWeight: number;
    };
  };
  readonly evaluation: {
    readonly negatives: number;
    /** FGM on the item embeddings at test time, relative to the mean item-row norm. */
    readonly attackEpsilons: readonly number[];
  };
  readonly plugins: readonly string[];
}

const TRAINING_KEYS = [
  'epochs',
  'adversarialEpochs',
  'batchSize',
  'learningRate',
  'seed',
  'validateEvery',
  'patience',
  'adversarial',
] as const;

/** Resolves a raw run config for a sequential model; every problem is named at once. */
export function resolveSequentialConfig(
  raw: Record<string, unknown>,
  defaults: { adversarialEpochs: number },
): SequentialRunConfig {
  const issues: ConfigIssue[] = [];
  const object = (path: string, v: unknown): Record<string, unknown> => {
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      issues.push({ path, message: 'must be an object' });
      return {};
    }
    return v as Record<string, unknown>;
  };
  const unknownKeys = (path: string, v: Record<string, unknown>, allowed: readonly string[]) => {
    for (const key of Object.keys(v))
      if (!allowed.includes(key))
        issues.push({
          path: path ? `${path}.${key}` : key,
          message: `unknown field for a sequential model; allowed: ${allowed.join(', ')}`,
        });
  };
  unknownKeys('', raw, ['data', 'model', 'training', 'evaluation', 'plugins']);
  const data = object('data', raw.data);
  unknownKeys('data', data, ['source']);
  const model = object('model', raw.model);
  const training = object('training', raw.training);
  unknownKeys('training', training, TRAINING_KEYS);
  const adversarial = object('training.adversarial', training.adversarial);
  unknownKeys('training.adversarial', adversarial, ['epsilon', 'adversarialWeight']);
  const evaluation = object('evaluation', raw.evaluation);
  unknownKeys('evaluation', evaluation, ['negatives', 'attackEpsilons']);
  const integer = (path: string, v: unknown, fallback: number, min: number): number => {
    const value = v ?? fallback;
    if (!(typeof value === 'number' && Number.isInteger(value) && value >= min))
      issues.push({ path, message: `must be an integer >= ${min}, got ${JSON.stringify(value)}` });
    return value as number;
  };
  const positive = (path: string, v: unknown, fallback: number, allowZero = false): number => {
    const value = v ?? fallback;
    if (!(
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (allowZero ? value >= 0 : value > 0)
    ))
      issues.push({
        path,
        message: `must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${JSON.stringify(value)}`,
      });
    return value as number;
  };
  const name = model.name ?? 'sasrec';
  if (typeof name !== 'string' || !SEQUENTIAL_MODELS.includes(name))
    issues.push({
      path: 'model.name',
      message: `must be one of ${SEQUENTIAL_MODELS.join(', ')} here, got ${JSON.stringify(name)}`,
    });
  const source = data.source ?? 'synthetic';
  if (typeof source !== 'string' || source === '')
    issues.push({ path: 'data.source', message: 'must be a file path or "synthetic"' });
  const attack = evaluation.attackEpsilons ?? [0.25, 0.5, 1];
  if (!Array.isArray(attack) || attack.some((e) => !(typeof e === 'number' && e >= 0)))
    issues.push({
      path: 'evaluation.attackEpsilons',
      message: `must be a list of numbers >= 0, got ${JSON.stringify(attack)}`,
    });
  const config: SequentialRunConfig = {
    data: { source: source as string },
    model: { ...(model as JsonObject), name: name as string },
    training: {
      epochs: integer('training.epochs', training.epochs, 200, 0),
      adversarialEpochs: integer(
        'training.adversarialEpochs',
        training.adversarialEpochs,
        defaults.adversarialEpochs,
        0,
      ),
      batchSize: integer('training.batchSize', training.batchSize, 128, 1),
      learningRate: positive('training.learningRate', training.learningRate, 0.001),
      seed: integer('training.seed', training.seed, 2024, 0),
      validateEvery: integer('training.validateEvery', training.validateEvery, 5, 1),
      patience: integer('training.patience', training.patience, 3, 1),
      adversarial: {
        // 0.1 x the mean item-row norm: chosen on validation over {0.1, 0.5} on Amazon Games (quality-deep).
        epsilon: positive('training.adversarial.epsilon', adversarial.epsilon, 0.1, true),
        adversarialWeight: positive(
          'training.adversarial.adversarialWeight',
          adversarial.adversarialWeight,
          1,
          true,
        ),
      },
    },
    evaluation: {
      negatives: integer('evaluation.negatives', evaluation.negatives, 100, 1),
      attackEpsilons: attack as number[],
    },
    plugins: [MODEL_PACKAGES[name as string] ?? String(name)],
  };
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}

/** Loads the sequences of `data.source`: a `user item [timestamp]` file, or `synthetic`. */
export async function loadSequences(source: string, seed: number): Promise<SequenceSplit> {
  if (source === 'synthetic')
    return generateCycleSequences({ numUsers: 600, numItems: 300, seed, maxLength: 12 });
  return leaveLastOut(sequencesFromLog(await readDelimited(source)));
}

function itemTable(model: SequentialModel) {
  return model.tables.find((t) => t.name === SEQUENCE_ITEM_TABLE)!;
}

function meanItemNorm(model: SequentialModel): number {
  const items = itemTable(model);
  return meanRowNorm(items.values, items.rows, items.dimension);
}

function itemCosine(model: SequentialModel): number {
  const items = itemTable(model);
  return meanPairwiseCosine(items.values, items.rows, items.dimension).meanCosine;
}

/** One trained arm of a sequential run. */
interface Arm {
  readonly label: string;
  readonly test: SequenceEvaluation;
  readonly itemEmbeddingMeanCosine: number;
  readonly robustness: readonly {
    relativeEpsilon: number;
    epsilon: number;
    ndcg10: number;
    ndcgChange: number;
  }[];
  readonly training: SequenceTrainResult;
}

/** What both commands share: folder, data, model, the pre-training phase. */
async function startSequentialRun(
  config: SequentialRunConfig,
  kind: string,
  options: { readonly out?: string; readonly force?: boolean },
  context: CommandContext,
) {
  await loadPlugins(config.plugins);
  const split = await loadSequences(config.data.source, config.training.seed);
  const { tf, backend } = await loadTfjs();
  const factory = getSequentialModelFactory(config.model.name);
  const { name: _name, ...modelOptions } = config.model;
  const model = factory.create(
    { numItems: split.numItems, seed: config.training.seed },
    modelOptions,
  );
  const validation = sequenceCandidates(split, 'validation', {
    negatives: config.evaluation.negatives,
    seed: config.training.seed + 1,
  });
  const test = sequenceCandidates(split, 'test', {
    negatives: config.evaluation.negatives,
    seed: config.training.seed + 2,
  });
  const { folder, release } = await claimRunFolder(options.out, kind, config, context.progress, {
    force: options.force ?? false,
  });
  context.progress.log(
    `${config.model.name} on ${split.source}: ${split.numUsers} users, ${split.numItems} items, ${validation.users.length} validation and ${test.users.length} test targets against ${config.evaluation.negatives} sampled negatives; tfjs ${backend}`,
  );
  await writeText(join(folder, 'config.json'), toJson(config));
  return { split, tf, backend, model, validation, test, folder, release };
}

type Started = Awaited<ReturnType<typeof startSequentialRun>>;

function trainPhase(
  run: Started,
  config: SequentialRunConfig,
  context: CommandContext,
  phase: {
    label: string;
    epochs: number;
    startEpoch: number;
    validate: boolean;
    optimizer?: SequenceOptimizerState;
    adversarial?: { epsilon: number; adversarialWeight: number };
  },
): SequenceTrainResult {
  const bar = context.progress.bar(phase.label, Math.max(1, phase.epochs));
  const result = trainSequentialModel(run.tf, run.model, run.split, {
    epochs: phase.epochs,
    batchSize: config.training.batchSize,
    seed: config.training.seed,
    adam: { learningRate: config.training.learningRate },
    startEpoch: phase.startEpoch,
    ...(phase.optimizer ? { optimizer: phase.optimizer } : {}),
    ...(phase.adversarial ? { adversarial: phase.adversarial } : {}),
    ...(phase.validate
      ? {
          validateEvery: config.training.validateEvery,
          patience: config.training.patience,
          validation: run.validation,
        }
      : {}),
    onEpoch: (e) =>
      bar.update(
        e.epoch - phase.startEpoch + 1,
        `loss ${e.loss.toFixed(4)}${e.validation ? `, valid NDCG@10 ${e.validation.ndcg.toFixed(4)}` : ''}, ${Math.round(e.sequencesPerSecond)} seq/s`,
      ),
  });
  bar.finish(
    result.bestValidation
      ? `best valid NDCG@10 ${result.bestValidation.ndcg.toFixed(4)} after epoch ${result.bestEpoch + 1}${result.stoppedEarly ? ' (stopped early)' : ''}`
      : `${result.epochs.length} epochs`,
    result.epochs.length,
  );
  return result;
}

function evaluateArm(
  run: Started,
  config: SequentialRunConfig,
  label: string,
  training: SequenceTrainResult,
): Arm {
  const test = evaluateSequential(run.tf, run.model, run.test);
  const norm = meanItemNorm(run.model);
  const robustness = config.evaluation.attackEpsilons.map((relativeEpsilon) => {
    const epsilon = relativeEpsilon * norm;
    const perturbation = sequenceFgmPerturbation(run.tf, run.model, run.split, epsilon, {
      seed: config.training.seed,
    });
    const attacked = evaluateSequential(run.tf, run.model, run.test, { perturbation });
    return {
      relativeEpsilon,
      epsilon,
      ndcg10: attacked.ndcg,
      ndcgChange: attacked.ndcg / test.ndcg - 1,
    };
  });
  return { label, test, itemEmbeddingMeanCosine: itemCosine(run.model), robustness, training };
}

function historyOf(arm: Arm) {
  return arm.training.epochs.map((e) => ({
    epoch: e.epoch + 1,
    loss: e.loss,
    adversarialLoss: e.adversarialLoss ?? null,
    seconds: e.seconds,
    sequencesPerSecond: e.sequencesPerSecond,
    validation: e.validation ?? null,
  }));
}

function armRow(arm: Arm): (string | number)[] {
  return [arm.label, arm.test.hitRate, arm.test.ndcg, arm.itemEmbeddingMeanCosine];
}

function robustnessTable(arms: readonly Arm[]): { columns: string[]; rows: (string | number)[][] } {
  const epsilons = arms[0]!.robustness.map((r) => `eps ${r.relativeEpsilon}`);
  return {
    columns: ['model', ...epsilons],
    rows: arms.map((a) => [a.label, ...a.robustness.map((r) => percent(r.ndcgChange))]),
  };
}

const ARM_COLUMNS = ['model', 'HR@10', 'NDCG@10', 'item mean cosine'];

async function finish(
  run: Started,
  config: SequentialRunConfig,
  context: CommandContext,
  command: string,
  arms: readonly Arm[],
  comparison: {
    label: string;
    hitRate: { change: number; p: number };
    ndcg: { change: number; p: number };
  } | null,
  started: Date,
): Promise<void> {
  const robustness = robustnessTable(arms);
  const results = {
    command,
    model: config.model.name,
    data: run.split.source,
    users: run.split.numUsers,
    items: run.split.numItems,
    testTargets: run.test.users.length,
    negatives: config.evaluation.negatives,
    arms: arms.map((a) => ({
      label: a.label,
      hitRate10: a.test.hitRate,
      ndcg10: a.test.ndcg,
      itemEmbeddingMeanCosine: a.itemEmbeddingMeanCosine,
      fgmOnItemEmbeddings: a.robustness,
      epochs: a.training.epochs.length,
      bestEpoch: a.training.bestEpoch + 1,
    })),
    ...(comparison ? { comparison } : {}),
  };
  await writeText(join(run.folder, 'results.json'), toJson(results));
  await writeText(
    join(run.folder, 'history.json'),
    toJson(Object.fromEntries(arms.map((a) => [a.label, historyOf(a)]))),
  );
  const protocol = `last item test, second-to-last validation; each target ranked against ${config.evaluation.negatives} sampled items the user never interacted with; HR@10 and NDCG@10, ties pessimistic`;
  const sections: ReportSection[] = [
    {
      kind: 'table',
      title: 'Test',
      caption: `Protocol: ${protocol}.`,
      columns: ARM_COLUMNS,
      rows: arms.map(armRow),
    },
    {
      kind: 'table',
      title: 'Robustness: NDCG@10 change under FGM on the item embeddings',
      caption:
        'Epsilon relative to the mean item-row norm; the perturbation follows the gradient of the training loss, per item row.',
      columns: robustness.columns,
      rows: robustness.rows,
    },
  ];
  if (comparison)
    sections.push({
      kind: 'table',
      title:
        'ATSRec against the model continued for the same epochs (paired t-test over test users)',
      columns: ['metric', 'change', 'p'],
      rows: [
        ['HR@10', percent(comparison.hitRate.change), pValue(comparison.hitRate.p)],
        ['NDCG@10', percent(comparison.ndcg.change), pValue(comparison.ndcg.p)],
      ],
    });
  await writeReport(run.folder, {
    title: `advrec ${command}: ${config.model.name}`,
    facts: [
      ['data', `${run.split.source}: ${run.split.numUsers} users, ${run.split.numItems} items`],
      ['model', `${config.model.name} ${JSON.stringify(run.model.config)}`],
      ['backend', `tfjs ${run.backend}`],
      ['date', started.toISOString()],
      ['machine', machineLine()],
    ],
    sections,
  });
  await writeText(
    join(run.folder, 'run.json'),
    toJson({ command, status: 'done', started, ended: new Date(), backend: run.backend }),
  );
  emit(context, { folder: run.folder, ...results }, () => {
    const lines = [textTable(ARM_COLUMNS, arms.map(armRow))];
    lines.push(
      '',
      'NDCG@10 change under FGM on the item embeddings (epsilon x mean item-row norm):',
    );
    lines.push(textTable(robustness.columns, robustness.rows));
    if (comparison)
      lines.push(
        '',
        `ATSRec vs continued: HR@10 ${percent(comparison.hitRate.change)} (p ${pValue(comparison.hitRate.p)}), NDCG@10 ${percent(comparison.ndcg.change)} (p ${pValue(comparison.ndcg.p)})`,
      );
    lines.push('', `run folder: ${run.folder}`);
    return lines.join('\n');
  });
}

function compare(a: SequenceEvaluation, b: SequenceEvaluation, label: string) {
  return {
    label,
    hitRate: {
      change: a.hitRate / b.hitRate - 1,
      p: pairedTTest(a.perUser.hitRate, b.perUser.hitRate).pValue,
    },
    ndcg: { change: a.ndcg / b.ndcg - 1, p: pairedTTest(a.perUser.ndcg, b.perUser.ndcg).pValue },
  };
}

/**
 * `advrec train` for a sequential model: the model with early stopping on validation, then
 * (with `training.adversarialEpochs`) ATSRec from the best epoch; test metrics, robustness to
 * FGM on the item embeddings, the run folder.
 */
export async function trainSequentialCommand(
  raw: Record<string, unknown>,
  options: { readonly out?: string; readonly force?: boolean; readonly set?: readonly string[] },
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const config = resolveSequentialConfig(
    applyOverrides(raw, options.set ?? []) as Record<string, unknown>,
    {
      adversarialEpochs: 0,
    },
  );
  const run = await startSequentialRun(config, 'train', options, context);
  try {
    const base = trainPhase(run, config, context, {
      label: `${config.model.name} epochs`,
      epochs: config.training.epochs,
      startEpoch: 0,
      validate: true,
    });
    let training = base;
    let label = config.model.name;
    if (config.training.adversarialEpochs > 0) {
      const epsilon = config.training.adversarial.epsilon * meanItemNorm(run.model);
      training = trainPhase(run, config, context, {
        label: 'ATSRec epochs',
        epochs: config.training.adversarialEpochs,
        startEpoch: base.epochs.length,
        validate: false,
        optimizer: base.optimizer,
        adversarial: { epsilon, adversarialWeight: config.training.adversarial.adversarialWeight },
      });
      label = `${config.model.name} + ATSRec`;
      training = { ...training, epochs: [...base.epochs, ...training.epochs] };
    }
    await writeCheckpoint(join(run.folder, 'checkpoints', 'model.ckpt'), run.model, [], {
      config: toJsonObject(config),
    });
    const arm = evaluateArm(run, config, label, training);
    await finish(run, config, context, 'train', [arm], null, started);
    return 0;
  } finally {
    await run.release();
  }
}

function toJsonObject(value: unknown): JsonObject {
  return JSON.parse(toJson(value)) as JsonObject;
}

/** Options of `advrec reproduce atsrec`. */
export interface ReproduceAtsrecOptions {
  readonly data?: string;
  readonly model?: string;
  readonly out?: string;
  readonly force?: boolean;
  readonly epochs?: number;
  readonly adversarialEpochs?: number;
  readonly epsilon?: number;
  readonly lambda?: number;
  readonly epsilons?: number[];
  readonly set?: readonly string[];
}

/**
 * `advrec reproduce atsrec`: the sequential model with early stopping, then from its best epoch
 * (with its Adam state) the model continued and ATSRec for the same epochs; test metrics, the
 * paired t-test, the item-embedding diversity of both, and both models' drops under FGM on the
 * item embeddings.
 */
export async function reproduceAtsrecCommand(
  options: ReproduceAtsrecOptions,
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const shorthands = shorthandOverrides(options);
  const config = resolveSequentialConfig(
    applyOverrides({}, [...shorthands, ...(options.set ?? [])]) as Record<string, unknown>,
    { adversarialEpochs: 10 },
  );
  if (config.training.adversarialEpochs === 0)
    throw new ConfigError([
      {
        path: 'training.adversarialEpochs',
        message: 'reproduce atsrec needs adversarial epochs (>= 1)',
      },
    ]);
  const run = await startSequentialRun(config, 'reproduce-atsrec', options, context);
  try {
    const base = trainPhase(run, config, context, {
      label: `${config.model.name} epochs`,
      epochs: config.training.epochs,
      startEpoch: 0,
      validate: true,
    });
    await writeCheckpoint(join(run.folder, 'checkpoints', 'pretrained.ckpt'), run.model);
    const pretrained = run.model.tables.map(cloneTable);
    const restore = () => {
      for (const t of pretrained)
        run.model.tables.find((x) => x.name === t.name)!.values.set(t.values);
    };
    const epsilon = config.training.adversarial.epsilon * meanItemNorm(run.model);
    const arms: Arm[] = [];
    for (const adversarial of [false, true]) {
      restore();
      const training = trainPhase(run, config, context, {
        label: adversarial ? 'ATSRec epochs' : `${config.model.name} continued epochs`,
        epochs: config.training.adversarialEpochs,
        startEpoch: base.epochs.length,
        validate: false,
        optimizer: base.optimizer,
        ...(adversarial
          ? {
              adversarial: {
                epsilon,
                adversarialWeight: config.training.adversarial.adversarialWeight,
              },
            }
          : {}),
      });
      const label = adversarial
        ? `${config.model.name} + ATSRec`
        : `${config.model.name} continued`;
      await writeCheckpoint(
        join(run.folder, 'checkpoints', adversarial ? 'atsrec.ckpt' : 'continued.ckpt'),
        run.model,
      );
      arms.push(
        evaluateArm(run, config, label, {
          ...training,
          epochs: [...base.epochs, ...training.epochs],
        }),
      );
    }
    const comparison = compare(
      arms[1]!.test,
      arms[0]!.test,
      `${arms[1]!.label} vs ${arms[0]!.label}`,
    );
    await finish(run, config, context, 'reproduce atsrec', arms, comparison, started);
    return 0;
  } finally {
    await run.release();
  }
}
