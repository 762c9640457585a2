/**
 * Sweep files: a base run config and axes (any config field: epsilon, lambda, learning rate,
 * L2, model, data set) plus seeds, expanded into the runs of a grid. Every run is checked
 * (resolved like `advrec train` would) before any of them starts.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';
import { applyOverrides, readConfigFile, resolveRunConfig } from '../config.js';
import type { ResolvedRunConfig } from '../config.js';
import { pluginsOf } from '../plugins.js';
import { toJson } from '../run-folder/runs.js';

/** A scalar of a run config. */
export type AxisScalar = string | number | boolean;
/**
 * A value an axis takes: what a `--set path=value` override may hold, a scalar or a list of
 * scalars (e.g. `training.adversarial.surfaces: [[itemFeatures], [userEmbeddings, itemEmbeddings]]`).
 */
export type AxisValue = AxisScalar | readonly AxisScalar[];

/** One axis of a sweep: a run-config field and the values it takes. */
export interface SweepAxis {
  /** Dotted run-config path, e.g. `training.adversarial.epsilon`. */
  readonly path: string;
  /** Short name for tables and folder names (the path's last segment, unless that is ambiguous). */
  readonly name: string;
  readonly values: readonly AxisValue[];
}

/** A sweep file, read and checked. */
export interface SweepSpec {
  /** The base run config (the `base` file's content, or the inline `config`), raw. */
  readonly base: Readonly<Record<string, unknown>>;
  /** Overrides applied to the base before the axes (`set: [training.epochs=20]`). */
  readonly set: readonly string[];
  readonly axes: readonly SweepAxis[];
  /**
   * Seeds: every grid point is run once per seed (the seed goes to `model.seed` and
   * `training.seed`; the data split keeps its own seed, so every run is tested on the same
   * users and items). Empty: once, with the base config's seeds.
   */
  readonly seeds: readonly number[];
}

/** One run of a sweep. */
export interface SweepRun {
  /** Stable name, also its folder under `<sweep>/runs/`: `epsilon=0.5_adversarialWeight=1_seed=2`. */
  readonly id: string;
  /** The grid point (axis name -> value), without the seed. */
  readonly point: Readonly<Record<string, AxisValue>>;
  /** The grid point's key: the same for every seed of one configuration. */
  readonly configuration: string;
  readonly seed: number | null;
  /** The raw run config (base + set + the point + the seed), with paths made absolute. */
  readonly config: Readonly<Record<string, unknown>>;
  /** What `advrec train` resolves it to (every default filled in). */
  readonly resolved: ResolvedRunConfig;
}

/** A sweep expanded: its runs, in grid order, and a fingerprint of all of them. */
export interface SweepPlan {
  readonly spec: SweepSpec;
  readonly runs: readonly SweepRun[];
  /** SHA-256 of the runs' resolved configs: the same sweep has the same fingerprint anywhere. */
  readonly fingerprint: string;
  /**
   * The validation metric the best configuration is chosen on: the runs' own
   * `training.validation.metric` (early stopping and selection agree), the same for every run.
   */
  readonly metric: string;
}

const TOP_LEVEL = new Set(['base', 'config', 'set', 'axes', 'seeds']);
/** More runs than this is almost certainly a mistake in the file (a list where a value was meant). */
export const MAX_SWEEP_RUNS = 10_000;

/**
 * Reads and checks a sweep file (YAML or JSON). `base` is a run-config file, relative to the
 * sweep file; `config` an inline run config; one of the two is required. Every problem is
 * reported with its field path.
 */
export async function readSweepFile(file: string): Promise<SweepSpec> {
  const raw = await readConfigFile(file);
  const issues: ConfigIssue[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError([{ path: '(root)', message: `${file}: a sweep must be a mapping` }]);
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input))
    if (!TOP_LEVEL.has(key))
      issues.push({
        path: key,
        message: `unknown field (a sweep has ${[...TOP_LEVEL].join(', ')})`,
      });
  let base: Record<string, unknown> = {};
  if (input.base !== undefined && input.config !== undefined)
    issues.push({
      path: 'base',
      message: 'give either base (a run-config file) or config, not both',
    });
  else if (typeof input.base === 'string') {
    const baseFile = isAbsolute(input.base) ? input.base : join(dirname(resolve(file)), input.base);
    const read = await readConfigFile(baseFile);
    if (typeof read !== 'object' || read === null || Array.isArray(read))
      issues.push({ path: 'base', message: `${baseFile} is not a run config (a mapping)` });
    else base = read as Record<string, unknown>;
  } else if (input.base !== undefined)
    issues.push({ path: 'base', message: 'must be the path of a run-config file' });
  else if (
    typeof input.config === 'object' &&
    input.config !== null &&
    !Array.isArray(input.config)
  )
    base = input.config as Record<string, unknown>;
  else
    issues.push({
      path: input.config === undefined ? 'base' : 'config',
      message:
        input.config === undefined
          ? 'is required (a run-config file), or an inline config'
          : 'must be a run config (a mapping)',
    });
  const set: string[] = [];
  if (input.set !== undefined) {
    if (!Array.isArray(input.set) || input.set.some((s) => typeof s !== 'string'))
      issues.push({ path: 'set', message: 'must be a list of path=value overrides' });
    else set.push(...(input.set as string[]));
  }
  const axes: SweepAxis[] = [];
  if (input.axes !== undefined) {
    if (typeof input.axes !== 'object' || input.axes === null || Array.isArray(input.axes))
      issues.push({
        path: 'axes',
        message:
          'must map config paths to lists of values, e.g. training.adversarial.epsilon: [0.1, 0.5]',
      });
    else
      for (const [path, values] of Object.entries(input.axes as Record<string, unknown>)) {
        const where = `axes.${path}`;
        if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(path))
          issues.push({ path: where, message: 'must be a dotted config path' });
        else if (!Array.isArray(values) || values.length === 0)
          issues.push({ path: where, message: 'must be a non-empty list of values' });
        else if (values.some((v) => !(isScalar(v) || (Array.isArray(v) && v.every(isScalar)))))
          issues.push({
            path: where,
            message: 'values must be numbers, strings, booleans or lists of them',
          });
        else if (new Set(values.map((v) => JSON.stringify(v))).size !== values.length)
          issues.push({ path: where, message: 'lists a value twice' });
        else axes.push({ path, name: path, values: values as AxisValue[] });
      }
  }
  const seeds: number[] = [];
  if (input.seeds !== undefined) {
    if (
      !Array.isArray(input.seeds) ||
      input.seeds.length === 0 ||
      input.seeds.some((s) => !Number.isInteger(s) || (s as number) < 0)
    )
      issues.push({ path: 'seeds', message: 'must be a non-empty list of integers >= 0' });
    else if (new Set(input.seeds).size !== input.seeds.length)
      issues.push({ path: 'seeds', message: 'lists a seed twice' });
    else seeds.push(...(input.seeds as number[]));
    for (const axis of axes)
      if (axis.path === 'model.seed' || axis.path === 'training.seed')
        issues.push({
          path: `axes.${axis.path}`,
          message: 'seeds are given by the seeds list; drop this axis or the list',
        });
  }
  if (issues.length > 0)
    throw new ConfigError(issues.map((i) => ({ ...i, message: `${i.message} (${file})` })));
  return { base, set, axes: shortNames(axes), seeds };
}

function isScalar(value: unknown): value is AxisScalar {
  return (
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

/** Axis names: the last path segment, or the whole path where two axes share it. */
function shortNames(axes: readonly SweepAxis[]): SweepAxis[] {
  const last = (path: string): string => path.split('.').at(-1)!;
  return axes.map((axis) => ({
    ...axis,
    name:
      axes.filter((a) => last(a.path) === last(axis.path)).length > 1 ? axis.path : last(axis.path),
  }));
}

/** `0.5` -> `0.5`, `ml-100k` -> `ml-100k`, `/a/b c.txt` -> `-a-b-c.txt`: safe in a folder name. */
function folderSafe(value: AxisValue): string {
  return String(value).replace(/[^A-Za-z0-9.+-]+/g, '-');
}

/**
 * The run-config fields that name files: made absolute against the directory the sweep is
 * expanded in, so that workers started elsewhere (another directory, another machine sharing
 * the file system) read the same files. Data-set names (`ml-100k`) are left alone.
 */
function absolutePaths(config: Record<string, unknown>, cwd: string): Record<string, unknown> {
  const data = config.data as Record<string, unknown> | undefined;
  if (typeof data !== 'object' || data === null) return config;
  const fixed: Record<string, unknown> = { ...data };
  for (const key of ['source', 'testPath', 'validationPath', 'features']) {
    const value = fixed[key];
    if (typeof value === 'string' && !isAbsolute(value) && existsSync(resolve(cwd, value)))
      fixed[key] = resolve(cwd, value);
  }
  const plugins = Array.isArray(config.plugins)
    ? config.plugins.map((p) =>
        typeof p === 'string' && (p.startsWith('./') || p.startsWith('../')) ? resolve(cwd, p) : p,
      )
    : config.plugins;
  return { ...config, data: fixed, ...(plugins !== undefined ? { plugins } : {}) };
}

/**
 * Expands a sweep into its runs: the Cartesian product of the axes (first axis slowest),
 * times the seeds. Each run's config is resolved as `advrec train` would, so a bad value on
 * any axis is reported (with the run it belongs to) before anything runs. The runs must
 * validate (`data.validation: true` or a validation file): the best configuration is chosen
 * on validation, never on test.
 */
export function expandSweep(spec: SweepSpec, cwd = process.cwd()): SweepPlan {
  const total = spec.axes.reduce((n, a) => n * a.values.length, 1) * Math.max(1, spec.seeds.length);
  if (total > MAX_SWEEP_RUNS)
    throw new ConfigError([
      { path: 'axes', message: `expands to ${total} runs, more than ${MAX_SWEEP_RUNS}` },
    ]);
  const points: Record<string, AxisValue>[] = [{}];
  for (const axis of spec.axes) {
    const next: Record<string, AxisValue>[] = [];
    for (const point of points)
      for (const value of axis.values) next.push({ ...point, [axis.path]: value });
    points.splice(0, points.length, ...next);
  }
  const base = applyOverrides(spec.base, spec.set) as Record<string, unknown>;
  const runs: SweepRun[] = [];
  const issues: ConfigIssue[] = [];
  const used = new Set<string>();
  for (const point of points)
    for (const seed of spec.seeds.length > 0 ? spec.seeds : [null]) {
      const overrides = Object.entries(point).map(([path, v]) => `${path}=${JSON.stringify(v)}`);
      if (seed !== null) overrides.push(`model.seed=${seed}`, `training.seed=${seed}`);
      const named = Object.fromEntries(
        spec.axes.map((axis) => [axis.name, point[axis.path]!] as const),
      );
      const label = [
        ...Object.entries(named).map(([name, v]) => `${name}=${folderSafe(v)}`),
        ...(seed !== null ? [`seed=${seed}`] : []),
      ].join('_');
      let id = label || 'run';
      for (let k = 2; used.has(id); k++) id = `${label || 'run'}-${k}`;
      used.add(id);
      const merged = absolutePaths(applyOverrides(base, overrides) as Record<string, unknown>, cwd);
      // A model package the run names (model: neumf) is recorded among its plugins.
      const plugins = pluginsOf(merged);
      const config = plugins.length > 0 ? { ...merged, plugins } : merged;
      try {
        const resolved = resolveRunConfig(config);
        if (!resolved.data.validation && resolved.data.validationPath === null)
          issues.push({
            path: 'base.data.validation',
            message:
              'a sweep chooses its best configuration on validation: set data.validation: true (or give data.validationPath)',
          });
        runs.push({
          id,
          point: named,
          configuration: JSON.stringify(named),
          seed,
          config,
          resolved,
        });
      } catch (error) {
        if (!ConfigError.isInstance(error)) throw error;
        issues.push(
          ...error.issues.map((i) => ({ path: i.path, message: `${i.message} (run ${id})` })),
        );
      }
      if (issues.length >= 20) break;
    }
  if (issues.length > 0)
    throw new ConfigError(
      issues.filter(
        (issue, k) =>
          issues.findIndex((o) => o.path === issue.path && o.message === issue.message) === k,
      ),
    );
  const metric = runs[0]!.resolved.training.validation.metric;
  const other = runs.find((r) => r.resolved.training.validation.metric !== metric);
  if (other)
    throw new ConfigError([
      {
        path: 'axes',
        message: `every run must validate on the same metric to be compared (run ${runs[0]!.id}: ${metric}, run ${other.id}: ${other.resolved.training.validation.metric})`,
      },
    ]);
  const fingerprint = createHash('sha256')
    .update(runs.map((r) => `${r.id}\n${toJson(r.resolved)}`).join('\n'))
    .digest('hex');
  return { spec, runs, fingerprint, metric };
}
