import { createTable } from '@advrec/models';
import type { ParameterTable, SparseRows } from '@advrec/models';
import type { ConfigIssue } from '@advrec/data';

/**
 * The optimisers, in one module: row-sparse Adagrad, SGD and lazy Adam for the pairwise
 * models (only the rows a batch touches change; APR/AMR: mini-batch Adagrad), and dense Adam
 * for the sequential models (SASRec's TF1 Adam: every row's moments decay at every step; its
 * WebAssembly SIMD twin, `WasmAdamArrays`, computes the same numbers bit for bit).
 */

/** Row-sparse optimisers. Only the rows a batch touches change (APR/AMR: mini-batch Adagrad). */
export type OptimizerName = 'adagrad' | 'sgd' | 'lazy-adam';

/** Optimiser configuration. */
export interface OptimizerConfig {
  /** Default `adagrad`, as both papers. */
  readonly name?: OptimizerName;
  /**
   * eta (default 0.05, the APR code's Adagrad rate).
   * @exclusiveMinimum 0
   * @default 0.05
   */
  readonly learningRate?: number;
  /**
   * Adagrad's initial accumulator (default 0.1, TensorFlow's and so the official code's).
   * @exclusiveMinimum 0
   * @default 0.1
   */
  readonly initialAccumulator?: number;
  /** Lazy Adam's beta1 (default 0.9). */
  readonly beta1?: number;
  /** Lazy Adam's beta2 (default 0.999). */
  readonly beta2?: number;
  /** Lazy Adam's epsilon (default 1e-8). */
  readonly adamEpsilon?: number;
}

/** A fully resolved optimiser configuration. */
export interface ResolvedOptimizerConfig {
  readonly name: OptimizerName;
  readonly learningRate: number;
  readonly initialAccumulator: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly adamEpsilon: number;
}

/** Fills defaults and reports every invalid field under `path`. */
export function resolveOptimizerConfig(
  config: OptimizerConfig | undefined,
  issues: ConfigIssue[],
  path = 'optimizer',
): ResolvedOptimizerConfig {
  const resolved: ResolvedOptimizerConfig = {
    name: config?.name ?? 'adagrad',
    learningRate: config?.learningRate ?? 0.05,
    initialAccumulator: config?.initialAccumulator ?? 0.1,
    beta1: config?.beta1 ?? 0.9,
    beta2: config?.beta2 ?? 0.999,
    adamEpsilon: config?.adamEpsilon ?? 1e-8,
  };
  if (!['adagrad', 'sgd', 'lazy-adam'].includes(resolved.name))
    issues.push({
      path: `${path}.name`,
      message: `must be adagrad, sgd or lazy-adam, got ${String(resolved.name)}`,
    });
  const positive = (field: keyof ResolvedOptimizerConfig, value: number): void => {
    if (!(Number.isFinite(value) && value > 0))
      issues.push({
        path: `${path}.${field}`,
        message: `must be a finite positive number, got ${value}`,
      });
  };
  positive('learningRate', resolved.learningRate);
  positive('initialAccumulator', resolved.initialAccumulator);
  positive('adamEpsilon', resolved.adamEpsilon);
  for (const field of ['beta1', 'beta2'] as const)
    if (!(resolved[field] >= 0 && resolved[field] < 1))
      issues.push({
        path: `${path}.${field}`,
        message: `must be in [0, 1), got ${resolved[field]}`,
      });
  return resolved;
}

/** The optimiser state of one parameter table: zero, one or two tables shaped like it. */
export interface OptimizerState {
  readonly table: string;
  /** Adagrad accumulator or Adam first moment. */
  readonly state1: ParameterTable | null;
  /** Adam second moment. */
  readonly state2: ParameterTable | null;
}

/** Allocates (shared) optimiser state for a table, Adagrad accumulators at their initial value. */
export function createOptimizerState(
  config: ResolvedOptimizerConfig,
  table: ParameterTable,
): OptimizerState {
  if (config.name === 'sgd') return { table: table.name, state1: null, state2: null };
  if (config.name === 'adagrad') {
    const acc = createTable(`adagrad.${table.name}`, table.side, table.rows, table.dimension);
    acc.values.fill(config.initialAccumulator);
    return { table: table.name, state1: acc, state2: null };
  }
  return {
    table: table.name,
    state1: createTable(`adam.m.${table.name}`, table.side, table.rows, table.dimension),
    state2: createTable(`adam.v.${table.name}`, table.side, table.rows, table.dimension),
  };
}

/** The tables of a state list, for checkpoints. */
export function optimizerTables(states: readonly OptimizerState[]): ParameterTable[] {
  return states.flatMap((s) => [s.state1, s.state2].filter((t): t is ParameterTable => t !== null));
}

/**
 * Applies one row-sparse update to `table` from `gradient`'s rows, with the same
 * formulas as the fused kernel:
 * - Adagrad (TensorFlow): `acc += g^2; theta -= eta * g / sqrt(acc)`;
 * - SGD: `theta -= eta * g`;
 * - lazy Adam: Adam's moments and update on the touched rows only, bias correction by the
 *   global `step` (so it is not Adam: untouched rows keep stale moments).
 */
export function applySparseUpdate(
  config: ResolvedOptimizerConfig,
  table: ParameterTable,
  state: OptimizerState,
  gradient: SparseRows,
  step: number,
): void {
  const k = table.dimension;
  const values = table.values;
  const rows = gradient.rows;
  const g = gradient.values;
  const lr = config.learningRate;
  // One loop per optimiser (the branch hoisted out of the per-element loop).
  if (config.name === 'adagrad') {
    const acc = state.state1!.values;
    for (let r = 0; r < rows.length; r++) {
      const base = rows[r]! * k;
      const o = r * k;
      for (let f = 0; f < k; f++) {
        const gf = g[o + f]!;
        const a = acc[base + f]! + gf * gf;
        acc[base + f] = a;
        values[base + f] = values[base + f]! - (lr * gf) / Math.sqrt(a);
      }
    }
  } else if (config.name === 'sgd') {
    for (let r = 0; r < rows.length; r++) {
      const base = rows[r]! * k;
      const o = r * k;
      for (let f = 0; f < k; f++) values[base + f] = values[base + f]! - lr * g[o + f]!;
    }
  } else {
    const lrt = adamRate(lr, config.beta1, config.beta2, step);
    const { beta1, beta2, adamEpsilon } = config;
    const m1 = state.state1!.values;
    const m2 = state.state2!.values;
    for (let r = 0; r < rows.length; r++) {
      const base = rows[r]! * k;
      const o = r * k;
      for (let f = 0; f < k; f++) {
        const gf = g[o + f]!;
        const m = beta1 * m1[base + f]! + (1 - beta1) * gf;
        const v = beta2 * m2[base + f]! + (1 - beta2) * gf * gf;
        m1[base + f] = m;
        m2[base + f] = v;
        values[base + f] = values[base + f]! - (lrt * m) / (Math.sqrt(v) + adamEpsilon);
      }
    }
  }
}

/** Dense Adam's settings (SASRec's: learning rate 0.001, beta1 0.9, beta2 0.98, epsilon 1e-8). */
export interface DenseAdamConfig {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/** SASRec's Adam settings, the sequential models' default. */
export const DEFAULT_DENSE_ADAM: DenseAdamConfig = {
  learningRate: 0.001,
  beta1: 0.9,
  beta2: 0.98,
  epsilon: 1e-8,
};

/**
 * Adam's step size at `step` (1-based) with both bias corrections folded in:
 * `eta * sqrt(1 - beta2^t) / (1 - beta1^t)` (what lazy and dense Adam multiply `m / (sqrt(v) + eps)` by).
 */
export function adamRate(learningRate: number, beta1: number, beta2: number, step: number): number {
  return (learningRate * Math.sqrt(1 - Math.pow(beta2, step))) / (1 - Math.pow(beta1, step));
}

/** One dense Adam step (bias correction folded into `rate`); a function of its own so V8 keeps it monomorphic. The plain loop {@link WasmAdamArrays.step} equals bit for bit. @internal */
export function adamStep(
  values: Float32Array,
  gradient: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  beta2: number,
  rate: number,
  epsilon: number,
): void {
  const a1 = 1 - beta1;
  const a2 = 1 - beta2;
  for (let k = 0; k < values.length; k++) {
    const g = gradient[k]!;
    const mk = beta1 * m[k]! + a1 * g;
    const vk = beta2 * v[k]! + a2 * g * g;
    m[k] = mk;
    v[k] = vk;
    values[k] = values[k]! - (rate * mk) / (Math.sqrt(vk) + epsilon);
  }
}
