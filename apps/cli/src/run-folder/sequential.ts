/**
 * A sequential run folder (`model: sasrec | gru4rec` or a plugin's sequential model): its
 * config, its sequences and split, the model from a checkpoint, the evaluation sets. What
 * `train`, `train --resume`, `evaluate`, `attack` and `recommend` share.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError,
  DataFormatError,
  generateCycleSequences,
  leaveLastOut,
  readSequenceLog,
  sequencesFromLog,
} from '@advrec/data';
import type { ConfigIssue, SequenceSplit } from '@advrec/data';
import { getSequentialModelFactory, readCheckpoint, sequentialModelNames } from '@advrec/models';
import type { JsonObject, SequentialModel, SequentialModelFactory } from '@advrec/models';
import { SEQUENCE_ENGINES, loadTfjs, sequenceCandidates } from '@advrec/trainer';
import type { SequenceEngineName } from '@advrec/trainer';
import { readJsonFile } from '../catalog/load.js';
import { loadPlugins, MODEL_PACKAGES, pluginsOf } from '../plugins.js';
import { toJson } from './runs.js';

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
    /** What runs the passes (`auto`: the model's own kernel when it has one). */
    readonly engine: SequenceEngineName;
    /** Batches of sequences of similar length, each cut to its longest row. */
    readonly bucketByLength: boolean;
    /** How a batch's loss weighs its positions (the trainer's `positionWeighting`). */
    readonly positionWeighting: 'batch' | 'epoch';
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

/**
 * The validation metric a sequential run is chosen on (a sweep's best configuration): NDCG@10
 * of the final model under the SASRec protocol (`results.json`, each arm's `validation`).
 */
export const SEQUENTIAL_VALIDATION_METRIC = 'ndcg@10';

const TRAINING_KEYS = [
  'epochs',
  'adversarialEpochs',
  'batchSize',
  'learningRate',
  'seed',
  'validateEvery',
  'patience',
  'engine',
  'bucketByLength',
  'positionWeighting',
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
  const plugins = Array.isArray(raw.plugins)
    ? raw.plugins.filter((p): p is string => typeof p === 'string')
    : [];
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
  if (typeof name !== 'string' || !sequentialModelNames().includes(name))
    issues.push({
      path: 'model.name',
      message: `must be a registered sequential model (${sequentialModelNames().join(', ')}), got ${JSON.stringify(name)}`,
    });
  const source = data.source ?? 'synthetic';
  if (typeof source !== 'string' || source === '')
    issues.push({ path: 'data.source', message: 'must be a file path or "synthetic"' });
  const engine = training.engine ?? 'auto';
  if (!SEQUENCE_ENGINES.includes(engine as SequenceEngineName))
    issues.push({
      path: 'training.engine',
      message: `must be one of ${SEQUENCE_ENGINES.join(', ')}, got ${JSON.stringify(engine)}`,
    });
  const weighting = training.positionWeighting ?? 'epoch';
  if (weighting !== 'batch' && weighting !== 'epoch')
    issues.push({
      path: 'training.positionWeighting',
      message: `must be "batch" or "epoch", got ${JSON.stringify(weighting)}`,
    });
  const bucketByLength = training.bucketByLength ?? true;
  if (typeof bucketByLength !== 'boolean')
    issues.push({
      path: 'training.bucketByLength',
      message: `must be true or false, got ${JSON.stringify(bucketByLength)}`,
    });
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
      engine: engine as SequenceEngineName,
      bucketByLength: bucketByLength as boolean,
      positionWeighting: weighting as 'batch' | 'epoch',
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
    plugins: [
      ...new Set([
        ...(Object.hasOwn(MODEL_PACKAGES, name as string) ? [MODEL_PACKAGES[name as string]!] : []),
        ...plugins,
      ]),
    ],
  };
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}

/**
 * {@link resolveSequentialConfig} after loading the packages of the model it names (sasrec
 * when it names none) and its plugins, so that the registry knows the model.
 */
export async function resolveSequentialRun(
  raw: Record<string, unknown>,
  defaults: { adversarialEpochs: number },
): Promise<SequentialRunConfig> {
  const model = (raw.model ?? {}) as { name?: unknown };
  await loadPlugins(pluginsOf({ ...raw, model: { ...model, name: model.name ?? 'sasrec' } }));
  return resolveSequentialConfig(raw, defaults);
}

/**
 * Loads the sequences of `data.source`: a `user item` file (in its order), `user item
 * timestamp` or `user item rating timestamp` (ordered by time), or `synthetic`.
 */
export async function loadSequences(source: string, seed: number): Promise<SequenceSplit> {
  if (source === 'synthetic')
    return generateCycleSequences({ numUsers: 600, numItems: 300, seed, maxLength: 12 });
  return leaveLastOut(sequencesFromLog(await readSequenceLog(source)));
}

/** A new model from the run's config; its option errors name the run config's field (`model.dimension`). */
function createSequentialModel(
  factory: SequentialModelFactory,
  numItems: number,
  config: SequentialRunConfig,
  modelOptions: JsonObject,
): SequentialModel {
  try {
    return factory.create({ numItems, seed: config.training.seed }, modelOptions);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(
      error.issues.map((issue) => ({
        ...issue,
        path: issue.path.startsWith('model.') ? issue.path : `model.${issue.path}`,
      })),
    );
  }
}

/** A sequential run's data, backend, model and evaluation sets (what every command needs). */
export async function openSequentialRun(config: SequentialRunConfig, model?: SequentialModel) {
  await loadPlugins(config.plugins);
  const split = await loadSequences(config.data.source, config.training.seed);
  const { tf, backend } = await loadTfjs();
  const factory = getSequentialModelFactory(config.model.name);
  const { name: _name, ...modelOptions } = config.model;
  if (model && model.numItems !== split.numItems)
    throw new ConfigError([
      {
        path: 'data.source',
        message: `${split.source} now has ${split.numItems} items; the run's model was trained on ${model.numItems}`,
      },
    ]);
  if (config.evaluation.negatives >= split.numItems)
    throw new ConfigError([
      {
        path: 'evaluation.negatives',
        message: `must be below the ${split.numItems} items of ${split.source}, got ${config.evaluation.negatives}`,
      },
    ]);
  const validation = sequenceCandidates(split, 'validation', {
    negatives: config.evaluation.negatives,
    seed: config.training.seed + 1,
  });
  const test = sequenceCandidates(split, 'test', {
    negatives: config.evaluation.negatives,
    seed: config.training.seed + 2,
  });
  return {
    split,
    tf,
    backend,
    model: model ?? createSequentialModel(factory, split.numItems, config, modelOptions),
    validation,
    test,
  };
}

/** A sequential run folder's config and its model from a checkpoint. */
export async function reloadSequentialRun(folder: string, checkpointFile?: string) {
  const raw = (await readJsonFile(
    join(folder, 'config.json'),
    'the run config advrec wrote',
  )) as Record<string, unknown>;
  const config = await resolveSequentialRun(raw, { adversarialEpochs: 0 });
  const file = checkpointFile ?? join(folder, 'checkpoints', 'model.ckpt');
  if (!existsSync(file))
    throw new DataFormatError(
      { file },
      'a checkpoint of the run',
      'no such file (the run has not finished: advrec train --resume continues it)',
    );
  const checkpoint = await readCheckpoint(file);
  if (checkpoint.model.modelName !== config.model.name)
    throw new DataFormatError(
      { file },
      `a ${config.model.name} checkpoint`,
      checkpoint.model.modelName,
    );
  const model = getSequentialModelFactory(config.model.name).restore({
    config: checkpoint.model.config,
    numItems: checkpoint.model.numItems,
    tables: checkpoint.model.tables,
  });
  return { config, checkpoint, model, file };
}

/** A value as the JSON object it serialises to. */
export function toJsonObject(value: unknown): JsonObject {
  return JSON.parse(toJson(value)) as JsonObject;
}
