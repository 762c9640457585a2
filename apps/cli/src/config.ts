import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, DataFormatError, didYouMean } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';
import { listAdversaries } from '@advrec/adversary';
import { DEFAULT_MODEL_SEED, listModels, sequentialModelNames } from '@advrec/models';
// The config module alone: resolving a run config does not load the training engines.
import { resolveTrainConfig } from '@advrec/trainer/config';
import type { ResolvedTrainConfig, TrainConfig } from '@advrec/trainer/config';
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { parse as parseYaml, parseDocument } from 'yaml';
import type { PairwiseRunConfig, PretrainingSection, TrainingSection } from './config-types.js';
import { MODEL_PACKAGES } from './plugins.js';

const require = createRequire(import.meta.url);

/**
 * The JSON schema of `RunConfig` (a pairwise or a sequential run config), generated from its
 * TypeScript types.
 */
export const runConfigSchema = require('../schema/run-config.schema.json') as Record<
  string,
  unknown
>;

// verbose: errors carry their schema, so an unknown field's message can name the closest known one.
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
// A pairwise run is validated against its own branch, so that each problem is named by its
// field rather than as a mismatch of the union.
const validateSchema = ajv.compile({ ...runConfigSchema, $ref: '#/definitions/PairwiseRunConfig' });

/** Every default of a run, filled in (what the run folder records as `config.json`). */
export interface ResolvedRunConfig {
  readonly data: {
    readonly source: string;
    readonly format: NonNullable<PairwiseRunConfig['data']['format']>;
    readonly testPath: string | null;
    readonly validationPath: string | null;
    readonly encoding: 'utf-8' | 'latin1';
    readonly split: {
      readonly protocol: 'auto' | 'leave-one-out' | 'ratio' | 'given';
      readonly order: 'auto' | 'latest' | 'random' | 'temporal';
      readonly testFraction: number;
      readonly seed: number;
    };
    readonly validation: boolean;
    readonly features: string | null;
    readonly synthetic: {
      readonly users: number;
      readonly items: number;
      readonly featureDimension: number;
      readonly seed: number;
    };
  };
  readonly model: {
    readonly name: string;
    readonly embeddingSize: number;
    readonly seed: number;
    readonly options: Readonly<Record<string, string | number | boolean | null>>;
  };
  /**
   * The library's resolved training config (`resolveTrainConfig` of `@advrec/trainer`: the
   * one place its defaults live), with the perturbed surfaces and the patience left `null`
   * when not given (every surface of the model; never stop early), plus the run's schedule.
   */
  readonly training: Omit<ResolvedTrainConfig, 'adversarial' | 'validation'> & {
    readonly adversarial: Omit<ResolvedTrainConfig['adversarial'], 'surfaces'> & {
      readonly surfaces: readonly string[] | null;
    };
    readonly validation: Omit<ResolvedTrainConfig['validation'], 'patience'> & {
      readonly patience: number | null;
    };
    readonly epochs: number;
    readonly adversarialEpochs: number;
    readonly checkpointEvery: number;
    /** VBPR's MF-BPR warm start (0: none; always 0 for other models). */
    readonly mfEpochs: number;
    /**
     * The BPR epochs' own config (`training.pretraining` merged over the rest), or `null`
     * when they train as the adversarial epochs do.
     */
    readonly pretraining: ResolvedPretraining | null;
  };
  readonly evaluation: {
    readonly protocol: 'full' | 'sampled';
    readonly negatives: number;
    readonly cutoffs: readonly number[];
    readonly metrics: readonly ('hr' | 'recall' | 'precision' | 'ndcg' | 'mrr' | 'map' | 'auc')[];
  };
  readonly attack: {
    readonly epsilons: readonly number[];
    readonly adversaries: readonly string[];
    readonly surfaces: readonly string[] | null;
  } | null;
  readonly plugins: readonly string[];
}

/** Reads a YAML or JSON config file; syntax errors name the file and line. */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataFormatError(
      { file },
      'a readable config file',
      String((error as Error).message),
      {
        cause: error,
      },
    );
  }
  if (/\.json$/i.test(file)) {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      const m = /position (\d+)/.exec((error as Error).message);
      const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
      throw new DataFormatError({ file, line }, 'valid JSON', (error as Error).message);
    }
  }
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    const first = document.errors[0]!;
    throw new DataFormatError(
      { file, line: first.linePos?.[0].line },
      'valid YAML',
      first.message.split('\n')[0],
    );
  }
  try {
    // yaml caps alias expansion (maxAliasCount): a "billion laughs" file stops here.
    return document.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (error) {
    throw new DataFormatError(
      { file },
      'a YAML config without excessive aliases (at most 100 expansions)',
      (error as Error).message,
      { cause: error },
    );
  }
}

/** Path segments that would reach an object's prototype. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/**
 * Applies `path=value` overrides (`training.adversarial.epsilon=0.5`, `evaluation.cutoffs=[10,20]`);
 * the value is read as YAML, so numbers, booleans and lists keep their types.
 */
export function applyOverrides(config: unknown, overrides: readonly string[]): unknown {
  const root = (
    typeof config === 'object' && config !== null ? structuredClone(config) : {}
  ) as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  for (const override of overrides) {
    const eq = override.indexOf('=');
    if (eq <= 0) {
      issues.push({ path: override, message: 'an override must look like path=value' });
      continue;
    }
    const path = override.slice(0, eq).trim().split('.');
    // Never walk into an object's prototype (`--set __proto__.x=1` would pollute the process).
    const forbidden = path.find((part) => FORBIDDEN_KEYS.has(part) || part === '');
    if (forbidden !== undefined) {
      issues.push({
        path: override.slice(0, eq).trim(),
        message:
          forbidden === ''
            ? 'an empty path segment'
            : `"${forbidden}" is not a config field (it would reach an object's prototype)`,
      });
      continue;
    }
    let value: unknown;
    try {
      value = parseYaml(override.slice(eq + 1)) as unknown;
    } catch {
      value = override.slice(eq + 1);
    }
    let node = root;
    for (const key of path.slice(0, -1)) {
      const next = Object.hasOwn(node, key) ? node[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return root;
}

function pathOf(error: ErrorObject): string {
  const base = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce(
      (path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part),
      '',
    );
  if (error.keyword === 'additionalProperties') {
    const extra = String((error.params as { additionalProperty: string }).additionalProperty);
    return base ? `${base}.${extra}` : extra;
  }
  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty: string }).missingProperty);
    return base ? `${base}.${missing}` : missing;
  }
  return base || '(root)';
}

function messageOf(error: ErrorObject, data: unknown): string {
  const found = error.instancePath
    .split('/')
    .slice(1)
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], data);
  const shown = JSON.stringify(found);
  switch (error.keyword) {
    case 'additionalProperties': {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys(
        (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ??
          {},
      );
      return `unknown field${didYouMean(extra, allowed)}`;
    }
    case 'required':
      return 'is required';
    case 'enum':
      return `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}, got ${shown}`;
    case 'type':
      return `must be ${(error.params as { type: string }).type}, got ${shown}`;
    default:
      return `${error.message ?? 'is invalid'}, got ${shown}`;
  }
}

/** Schema validation: every problem, with its field path. */
export function schemaIssues(config: unknown): ConfigIssue[] {
  if (validateSchema(config)) return [];
  const seen = new Set<string>();
  const issues: ConfigIssue[] = [];
  for (const error of validateSchema.errors ?? []) {
    const issue = { path: pathOf(error), message: messageOf(error, config) };
    const key = `${issue.path}\u0000${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push(issue);
    }
  }
  return issues;
}

/** Paths are taken relative to the working folder and recorded absolute, so a run folder can be evaluated from anywhere. */
function absolutePath(path: string): string {
  return isAbsolute(path) ? path : resolve(path);
}

/** The data section with every default filled (a named catalogue source stays a name). */
function resolvedDataConfig(data: PairwiseRunConfig['data']): ResolvedRunConfig['data'] {
  const split = data.split ?? {};
  const named = /^[a-z0-9][a-z0-9-]*$/.test(data.source) && !existsSync(data.source);
  return {
    source: named ? data.source : absolutePath(data.source),
    format: data.format ?? 'auto',
    testPath: data.testPath !== undefined ? absolutePath(data.testPath) : null,
    validationPath: data.validationPath !== undefined ? absolutePath(data.validationPath) : null,
    encoding: data.encoding ?? 'utf-8',
    split: {
      protocol: split.protocol ?? 'auto',
      order: split.order ?? 'auto',
      testFraction: split.testFraction ?? 0.2,
      seed: split.seed ?? 42,
    },
    validation: data.validation ?? true,
    features: data.features !== undefined ? absolutePath(data.features) : null,
    synthetic: {
      users: data.synthetic?.users ?? 2000,
      items: data.synthetic?.items ?? 1500,
      featureDimension: data.synthetic?.featureDimension ?? 0,
      seed: data.synthetic?.seed ?? 42,
    },
  };
}

/** Range and integer checks of the values the schema types only loosely; adversary names through `checkAdversary`. */
function valueIssues(
  config: PairwiseRunConfig,
  checkAdversary: (path: string, name: string) => void,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { epochs, adversarialEpochs, checkpointEvery, mfEpochs } = config.training ?? {};
  const trainConfig = config.training ?? {};
  const e = config.evaluation ?? {};
  (e.cutoffs ?? []).forEach((k, index) => {
    if (!(Number.isInteger(k) && k >= 1))
      issues.push({
        path: `evaluation.cutoffs[${index}]`,
        message: `must be an integer >= 1, got ${k}`,
      });
  });
  const integers: [string, number | undefined][] = [
    ['training.epochs', epochs],
    ['training.adversarialEpochs', adversarialEpochs],
    ['training.checkpointEvery', checkpointEvery],
    ['training.mfEpochs', mfEpochs],
    ['training.validation.patience', trainConfig.validation?.patience],
    ['model.embeddingSize', config.model.embeddingSize],
    ['model.seed', config.model.seed],
    ['data.split.seed', config.data.split?.seed],
    ['evaluation.negatives', e.negatives],
  ];
  for (const [path, value] of integers)
    if (value !== undefined && !Number.isInteger(value))
      issues.push({ path, message: `must be an integer, got ${value}` });
  const a = config.attack;
  if (a) {
    (a.epsilons ?? []).forEach((value, index) => {
      if (!(Number.isFinite(value) && value >= 0))
        issues.push({ path: `attack.epsilons[${index}]`, message: `must be >= 0, got ${value}` });
    });
    (a.adversaries ?? []).forEach((name, index) =>
      checkAdversary(`attack.adversaries[${index}]`, name),
    );
  }
  return issues;
}

/**
 * Validates a parsed config against the schema and the registries (model and adversary
 * names, metric names) and fills every default. Throws one {@link ConfigError} listing every
 * problem with its field path.
 */
export function resolveRunConfig(input: unknown): ResolvedRunConfig {
  const issues = schemaIssues(input);
  if (issues.length > 0) throw new ConfigError(issues);
  const config = input as PairwiseRunConfig;
  const models = listModels().map((m) => m.modelName);
  if (sequentialModelNames().includes(config.model.name))
    issues.push({
      path: 'model.name',
      message: `${config.model.name} is a sequential model: advrec train and advrec reproduce atsrec run it (sweeps and the pairwise commands take ${models.join(', ')})`,
    });
  else if (!models.includes(config.model.name)) {
    // Every name a run may give: registered models and advrec's model packages.
    const known = [...new Set([...models, ...Object.keys(MODEL_PACKAGES)])].sort();
    issues.push({
      path: 'model.name',
      message: `unknown model "${config.model.name}"${didYouMean(config.model.name, known)}; known: ${known.join(', ')} (a plugin package adds its own with --plugin)`,
    });
  }
  const adversaries = listAdversaries()
    .map((a) => a.adversaryName)
    .sort();
  const checkAdversary = (path: string, name: string): void => {
    if (!adversaries.includes(name))
      issues.push({
        path,
        message: `unknown adversary "${name}"${didYouMean(name, adversaries)}; registered: ${adversaries.join(', ')}`,
      });
  };
  const {
    epochs,
    adversarialEpochs,
    checkpointEvery,
    mfEpochs,
    pretraining: pretrainingSection,
    ...trainConfig
  } = config.training ?? {};
  if (mfEpochs !== undefined && mfEpochs > 0 && config.model.name !== 'vbpr')
    issues.push({
      path: 'training.mfEpochs',
      message: `only VBPR starts from an MF-BPR (its ID embeddings); model ${config.model.name} does not (set 0 or drop it)`,
    });
  // The library checks and fills the training config; its issues keep their field paths.
  const resolveAt = (prefix: string, train: TrainConfig): ResolvedTrainConfig | null => {
    try {
      return resolveTrainConfig(train);
    } catch (error) {
      if (!ConfigError.isInstance(error)) throw error;
      for (const issue of error.issues)
        issues.push({ path: `${prefix}.${issue.path}`, message: issue.message });
      return null;
    }
  };
  const training = resolveAt('training', trainConfig);
  const pretrainingConfig = pretrainingSection
    ? mergePretraining(trainConfig, pretrainingSection)
    : null;
  const pretraining = pretrainingConfig
    ? resolveAt('training.pretraining', pretrainingConfig)
    : null;
  if (training?.algorithm === 'sgd-triples' && (adversarialEpochs ?? 0) > 0)
    issues.push({
      path: 'training.adversarialEpochs',
      message:
        'per-triple SGD (training.algorithm sgd-triples) trains BPR epochs only; to pre-train by per-triple SGD and then train adversarially, set training.pretraining.algorithm sgd-triples (with its optimizer and l2 there) and keep training.algorithm minibatch',
    });
  issues.push(...valueIssues(config, checkAdversary));
  const e = config.evaluation ?? {};
  const cutoffs = e.cutoffs ?? [10, 20, 50, 100];
  const a = config.attack;
  if (issues.length > 0 || training === null) throw new ConfigError(issues);
  return {
    data: resolvedDataConfig(config.data),
    model: {
      name: config.model.name,
      embeddingSize: config.model.embeddingSize ?? 64,
      seed: config.model.seed ?? DEFAULT_MODEL_SEED,
      options: config.model.options ?? {},
    },
    training: {
      ...training,
      adversarial: { ...training.adversarial, surfaces: trainConfig.adversarial?.surfaces ?? null },
      validation: { ...training.validation, patience: trainConfig.validation?.patience ?? null },
      epochs: epochs ?? 100,
      adversarialEpochs: adversarialEpochs ?? 0,
      checkpointEvery: checkpointEvery ?? 10,
      mfEpochs: mfEpochs ?? (config.model.name === 'vbpr' ? 100 : 0),
      pretraining:
        pretraining && pretrainingConfig
          ? {
              ...withoutAdversary(pretraining),
              validation: {
                ...pretraining.validation,
                patience: pretrainingConfig.validation?.patience ?? null,
              },
            }
          : null,
    },
    evaluation: {
      protocol: e.protocol ?? 'full',
      negatives: e.negatives ?? 999,
      cutoffs,
      metrics: e.metrics ?? ['hr', 'ndcg', 'recall', 'mrr'],
    },
    attack: a
      ? {
          epsilons: a.epsilons ?? [0.25, 0.5, 1, 2],
          adversaries: a.adversaries ?? ['fgm', 'random'],
          surfaces: a.surfaces ?? null,
        }
      : null,
    plugins: (config.plugins ?? []).map((p) =>
      p.startsWith('.') || isAbsolute(p) ? absolutePath(p) : p,
    ),
  };
}

/** The BPR epochs' resolved config when `training.pretraining` gives one (run.json records it). */
export type ResolvedPretraining = Omit<ResolvedTrainConfig, 'validation' | 'adversarial'> & {
  readonly validation: Omit<ResolvedTrainConfig['validation'], 'patience'> & {
    readonly patience: number | null;
  };
};

/**
 * The BPR epochs' training config: `training.pretraining` field by field over the rest of
 * `training` (`validation` merged field by field too), without the adversary.
 */
export function mergePretraining(
  training: Omit<TrainingSection, 'epochs' | 'adversarialEpochs' | 'checkpointEvery' | 'mfEpochs'>,
  pretraining: PretrainingSection,
): TrainConfig {
  const { adversarial: _adversarial, pretraining: _nested, ...rest } = training;
  return {
    ...rest,
    ...pretraining,
    ...(rest.validation || pretraining.validation
      ? { validation: { ...rest.validation, ...pretraining.validation } }
      : {}),
  };
}

/** A resolved training config without its adversary (the BPR epochs have none). */
function withoutAdversary(config: ResolvedTrainConfig): Omit<ResolvedTrainConfig, 'adversarial'> {
  const { adversarial: _adversarial, ...rest } = config;
  return rest;
}
