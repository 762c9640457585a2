/**
 * The training configuration: every default and every check lives here
 * ({@link resolveTrainConfig}); the CLI derives its run-config types and JSON schema from
 * these types and calls this function.
 */
import { availableParallelism } from 'node:os';
import { ConfigError } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';
import { getAdversary } from '@advrec/adversary';
import { METRIC_KEY_FORMAT, parseMetricKey } from '@advrec/metrics';
import type { Model } from '@advrec/models';
import { resolveOptimizerConfig } from './optimizer.js';

/**
 * The most threads a run may ask for: 4 x this machine's cores (at least 8). More threads
 * than cores only adds contention (100 threads took a toy epoch from 0.1 s to 56 s).
 */
export function maxThreads(): number {
  return Math.max(8, 4 * availableParallelism());
}

import type { OptimizerConfig, ResolvedOptimizerConfig } from './optimizer.js';

/** The adversarial part of APR (Eq. 4-5). */
export interface AdversarialConfig {
  /** Registered adversary (default `fgm`, the paper's). */
  readonly adversary?: string;
  /**
   * epsilon, the perturbation norm bound per row (default 0.5, the paper's).
   * @minimum 0
   * @default 0.5
   */
  readonly epsilon?: number;
  /**
   * lambda, the weight of the adversarial regulariser (default 1, the paper's).
   * @minimum 0
   * @default 1
   */
  readonly adversarialWeight?: number;
  /**
   * Surfaces to perturb (default: every surface of the model; MF: both embeddings). The
   * `advrec` CLI, for VBPR with no surfaces named, perturbs `itemFeatures` only (AMR) and
   * reads `epsilon` relative to the prepared features' mean row norm.
   */
  readonly surfaces?: readonly string[];
}

/** Validation and early stopping. */
export interface ValidationConfig {
  /**
   * Validate every N epochs (default 10).
   * @minimum 1
   * @default 10
   */
  readonly every?: number;
  /** Split to validate on (default `validation`; the dataset must have one). */
  readonly split?: 'validation' | 'test';
  /** Metric driving early stopping and the best checkpoint, `name@K` (default `ndcg@100`, the APR tuning metric). */
  readonly metric?: string;
  /** Other cutoffs to report (default the metric's). */
  readonly cutoffs?: readonly number[];
  /**
   * Validations without improvement before stopping (default: never stop early).
   * @minimum 1
   */
  readonly patience?: number;
  /**
   * Evaluation threads (default: all cores).
   * @minimum 1
   */
  readonly threads?: number;
  /**
   * Validate on a fixed random sample of this many users (those with items in the split,
   * drawn once from the seed) instead of all of them: early stopping that costs little on
   * large data sets (default: all users).
   * @minimum 1
   */
  readonly users?: number;
}

/** Everything about how a model is trained. Every field has the papers' default. */
export interface TrainConfig {
  /**
   * Seed of the sampler and of random adversaries (default 0).
   * @minimum 0
   * @default 0
   */
  readonly seed?: number;
  /**
   * Triples per mini-batch (default 512).
   * @minimum 1
   * @default 512
   */
  readonly batchSize?: number;
  /**
   * lambda_Theta, L2 on the batch's rows (default 0, the APR code's).
   * @minimum 0
   * @default 0
   */
  readonly l2?: number;
  readonly optimizer?: OptimizerConfig;
  /**
   * Per-table learning rate and L2, by the model's table name, over `optimizer.learningRate`
   * and `l2` (VBPR's separate regularisers: lambda_Theta for the embeddings, lambda_E for the
   * feature projection). E.g. `{ featureProjection: { learningRate: 0.01, l2: 0.001 } }`.
   * The generic engine applies them; the fused MF kernel has one rate and one L2, so it
   * refuses a config that sets any.
   */
  readonly tables?: Readonly<Record<string, TableTrainConfig>>;
  readonly adversarial?: AdversarialConfig;
  /** `shuffle` (each interaction once per epoch, the papers' code) or `with-replacement`. */
  readonly sampling?: 'shuffle' | 'with-replacement';
  /**
   * Threads for the fused MF kernel (default: all cores).
   * @minimum 1
   */
  readonly threads?: number;
  /** `deterministic` (default, bit-identical for any thread count) or `hogwild` (opt-in, faster, not reproducible). */
  readonly mode?: 'deterministic' | 'hogwild';
  /**
   * `minibatch` (default) or `sgd-triples`: classic per-triple SGD BPR (Cornac's algorithm:
   * positives drawn with replacement whatever `sampling` says, each thread sampling its own
   * triples, Hogwild; `l2` is Cornac's `lambda_reg`, each update adding `-l2 * row`). BPR
   * epochs only, optimizer `sgd` only.
   */
  readonly algorithm?: 'minibatch' | 'sgd-triples';
  /**
   * `auto` (default: the first registered engine provider, in priority order, that supports
   * the model, adversary and config: the fused MF kernel, then the generic engine) or a
   * provider's name (`fused-mf`, `generic`, or a plugin's).
   */
  readonly engine?: string;
  readonly validation?: ValidationConfig;
}

/** A learning rate and L2 for one parameter table (`TrainConfig.tables`). */
export interface TableTrainConfig {
  /**
   * This table's learning rate (default `optimizer.learningRate`).
   * @exclusiveMinimum 0
   */
  readonly learningRate?: number;
  /**
   * This table's L2 (default `l2`).
   * @minimum 0
   */
  readonly l2?: number;
  /**
   * After every update, rescale the whole table to the Frobenius norm it had when the
   * `Trainer` was created, through all its phases (default false). Made for AMR's feature
   * projection E: FGM on the item features reaches the scores only through `E delta`, so a
   * free E defends by shrinking and AMR turns back into MF-BPR. Measured
   * (`bench/results/amr-diagnosis.json`): at relative epsilon 0.1 a held norm keeps the
   * visual part's share of the scores at the same accuracy; at epsilon 1 E turns towards
   * directions the users' vectors ignore instead, so it is no fix there.
   */
  readonly keepNorm?: boolean;
}

/** A fully resolved training config (what run folders and checkpoints record). */
export interface ResolvedTrainConfig {
  readonly seed: number;
  readonly batchSize: number;
  readonly l2: number;
  readonly optimizer: ResolvedOptimizerConfig;
  /** Only the tables given, each with both fields filled from the global ones. */
  readonly tables: Readonly<
    Record<
      string,
      { readonly learningRate: number; readonly l2: number; readonly keepNorm: boolean }
    >
  >;
  readonly adversarial: {
    readonly adversary: string;
    readonly epsilon: number;
    readonly adversarialWeight: number;
    readonly surfaces: readonly string[];
  };
  readonly sampling: 'shuffle' | 'with-replacement';
  readonly threads: number;
  readonly mode: 'deterministic' | 'hogwild';
  readonly algorithm: 'minibatch' | 'sgd-triples';
  /** `auto` or the provider asked for; the one in use is {@link EngineInfo} in the run record. */
  readonly engine: string;
  readonly validation: {
    readonly every: number;
    readonly split: 'validation' | 'test';
    readonly metric: string;
    readonly cutoffs: readonly number[];
    readonly patience: number;
    readonly threads: number;
    /** Users sampled for validation; null: all. */
    readonly users: number | null;
  };
}

/** Per-table learning rates, L2 and norm projection (defaults: the optimiser's and `l2`). */
function resolveTables(
  config: TrainConfig,
  learningRate: number,
  l2: number,
  model: Model | undefined,
  issues: ConfigIssue[],
): Record<string, { learningRate: number; l2: number; keepNorm: boolean }> {
  const optimizer = { learningRate };
  const tables: Record<string, { learningRate: number; l2: number; keepNorm: boolean }> = {};
  if (config.tables !== undefined && (typeof config.tables !== 'object' || config.tables === null))
    issues.push({ path: 'tables', message: 'must be an object of table names' });
  else
    for (const [name, table] of Object.entries(config.tables ?? {})) {
      const path = `tables.${name}`;
      if (model && !model.trainableTables.includes(name)) {
        issues.push({
          path,
          message: `model ${model.modelName} has no trainable table "${name}"; it has ${model.trainableTables.join(', ')}`,
        });
        continue;
      }
      const unknown = Object.keys(table ?? {}).filter(
        (k) => k !== 'learningRate' && k !== 'l2' && k !== 'keepNorm',
      );
      if (unknown.length > 0)
        issues.push({
          path: `${path}.${unknown[0]}`,
          message: 'unknown field (learningRate, l2, keepNorm)',
        });
      const resolved = {
        learningRate: table?.learningRate ?? optimizer.learningRate,
        l2: table?.l2 ?? l2,
        keepNorm: table?.keepNorm ?? false,
      };
      if (typeof resolved.keepNorm !== 'boolean')
        issues.push({
          path: `${path}.keepNorm`,
          message: `must be true or false, got ${String(resolved.keepNorm)}`,
        });
      if (!(Number.isFinite(resolved.learningRate) && resolved.learningRate > 0))
        issues.push({
          path: `${path}.learningRate`,
          message: `must be a finite positive number, got ${resolved.learningRate}`,
        });
      if (!(Number.isFinite(resolved.l2) && resolved.l2 >= 0))
        issues.push({
          path: `${path}.l2`,
          message: `must be a finite number >= 0, got ${resolved.l2}`,
        });
      tables[name] = resolved;
    }
  return tables;
}

/** The adversary, epsilon, lambda and surfaces (default: every surface of the model). */
function resolveAdversarial(config: TrainConfig, model: Model | undefined, issues: ConfigIssue[]) {
  const adversary = config.adversarial?.adversary ?? 'fgm';
  const epsilon = config.adversarial?.epsilon ?? 0.5;
  const adversarialWeight = config.adversarial?.adversarialWeight ?? 1;
  if (!(Number.isFinite(epsilon) && epsilon >= 0))
    issues.push({
      path: 'adversarial.epsilon',
      message: `must be a finite number >= 0, got ${epsilon}`,
    });
  if (!(Number.isFinite(adversarialWeight) && adversarialWeight >= 0))
    issues.push({
      path: 'adversarial.adversarialWeight',
      message: `must be a finite number >= 0, got ${adversarialWeight}`,
    });
  try {
    getAdversary(adversary);
  } catch (error) {
    if (ConfigError.isInstance(error))
      issues.push({ path: 'adversarial.adversary', message: error.issues[0]!.message });
    else throw error;
  }
  const surfaces = config.adversarial?.surfaces ?? model?.surfaces.map((s) => s.name) ?? [];
  if (model)
    surfaces.forEach((name, index) => {
      if (!model.surfaces.some((s) => s.name === name))
        issues.push({
          path: `adversarial.surfaces[${index}]`,
          message: `model ${model.modelName} has no surface "${name}"; it has ${model.surfaces.map((s) => s.name).join(', ') || 'none'}`,
        });
    });
  return { adversary, epsilon, adversarialWeight, surfaces };
}

/** Validation cadence, split, metric, patience, threads and sampled users. */
function resolveValidation(
  config: TrainConfig,
  int: (path: string, value: number, min: number, max?: number) => void,
  issues: ConfigIssue[],
) {
  const v = config.validation ?? {};
  const metric = v.metric ?? 'ndcg@100';
  const parsed = parseMetricKey(metric);
  if (!parsed)
    issues.push({
      path: 'validation.metric',
      message: `must be ${METRIC_KEY_FORMAT}, got ${JSON.stringify(metric)}`,
    });
  const validation = {
    every: v.every ?? 10,
    split: v.split ?? 'validation',
    metric,
    cutoffs: v.cutoffs ?? [parsed?.cutoff ?? 100],
    patience: v.patience ?? Number.POSITIVE_INFINITY,
    threads: v.threads ?? availableParallelism(),
    users: v.users ?? null,
  } as const;
  int('validation.every', validation.every, 1);
  if (validation.users !== null) int('validation.users', validation.users, 1);
  int('validation.threads', validation.threads, 1, maxThreads());
  if (validation.split !== 'validation' && validation.split !== 'test')
    issues.push({
      path: 'validation.split',
      message: `must be validation or test, got ${String(validation.split)}`,
    });
  if (!(validation.patience >= 1))
    issues.push({
      path: 'validation.patience',
      message: `must be >= 1, got ${validation.patience}`,
    });
  return validation;
}

/** Validates and fills every default; reports every problem with its field path at once. */
export function resolveTrainConfig(config: TrainConfig = {}, model?: Model): ResolvedTrainConfig {
  const issues: ConfigIssue[] = [];
  const int = (path: string, value: number, min: number, max = Infinity): void => {
    if (!Number.isInteger(value) || value < min)
      issues.push({ path, message: `must be an integer >= ${min}, got ${value}` });
    else if (value > max)
      issues.push({
        path,
        message: `must be at most ${max} (this machine has ${availableParallelism()} cores), got ${value}`,
      });
  };
  const seed = config.seed ?? 0;
  const batchSize = config.batchSize ?? 512;
  const l2 = config.l2 ?? 0;
  int('seed', seed, 0);
  int('batchSize', batchSize, 1);
  if (!(Number.isFinite(l2) && l2 >= 0))
    issues.push({ path: 'l2', message: `must be a finite number >= 0, got ${l2}` });
  const optimizer = resolveOptimizerConfig(config.optimizer, issues);
  const tables = resolveTables(config, optimizer.learningRate, l2, model, issues);
  const adversarial = resolveAdversarial(config, model, issues);
  const sampling = config.sampling ?? 'shuffle';
  if (sampling !== 'shuffle' && sampling !== 'with-replacement')
    issues.push({
      path: 'sampling',
      message: `must be shuffle or with-replacement, got ${String(sampling)}`,
    });
  const threads = config.threads ?? availableParallelism();
  int('threads', threads, 1, maxThreads());
  const mode = config.mode ?? 'deterministic';
  if (mode !== 'deterministic' && mode !== 'hogwild')
    issues.push({ path: 'mode', message: `must be deterministic or hogwild, got ${String(mode)}` });
  const algorithm = config.algorithm ?? 'minibatch';
  if (algorithm !== 'minibatch' && algorithm !== 'sgd-triples')
    issues.push({
      path: 'algorithm',
      message: `must be minibatch or sgd-triples, got ${String(algorithm)}`,
    });
  if (algorithm === 'sgd-triples' && optimizer.name !== 'sgd')
    issues.push({
      path: 'algorithm',
      message: 'sgd-triples (classic per-triple SGD) needs optimizer.name = sgd',
    });
  const engine = config.engine ?? 'auto';
  if (typeof engine !== 'string' || engine.length === 0)
    issues.push({
      path: 'engine',
      message: `must be auto or an engine provider's name, got ${String(engine)}`,
    });
  const validation = resolveValidation(config, int, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    seed,
    batchSize,
    l2,
    optimizer,
    tables,
    adversarial,
    sampling,
    threads,
    mode: algorithm === 'sgd-triples' ? 'hogwild' : mode,
    algorithm,
    engine,
    validation,
  };
}
