/**
 * Sweep files and their expansion: a base run config, overrides, axes (config paths and the
 * values they take) and seeds; expanded into runs in grid order, each resolved by the
 * application's own config rules ({@link SweepConfigHooks}) so a bad value on any axis is
 * reported, with its run, before anything runs.
 */
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';

/**
 * What a sweep needs from the application whose runs it expands (the `advrec` CLI gives its
 * run config's): reading a config file, `--set` overrides, and resolving one run.
 */
export interface SweepConfigHooks<R> {
  /** Reads a config file (YAML or JSON), with errors naming the file. */
  readConfigFile(file: string): Promise<unknown>;
  /** `path=value` overrides applied to a raw config. */
  applyOverrides(base: Readonly<Record<string, unknown>>, overrides: readonly string[]): unknown;
  /**
   * One run's raw config made ready to run anywhere (file paths made absolute against `cwd`,
   * plugins recorded) and resolved; a bad value throws a `ConfigError`.
   */
  prepareRun(
    config: Record<string, unknown>,
    cwd: string,
  ): { readonly config: Record<string, unknown>; readonly resolved: R };
  /**
   * The validation metric a run chooses on, or an issue when the run does not validate (a
   * sweep chooses its best configuration on validation, never on test).
   */
  validationMetric(resolved: R): string | ConfigIssue;
  /** The resolved config as canonical JSON (the sweep's fingerprint hashes it). */
  toJson(resolved: R): string;
  /** The config paths a sweep's seed goes to (default `model.seed` and `training.seed`). */
  readonly seedPaths?: readonly string[];
}

const DEFAULT_SEED_PATHS = ['model.seed', 'training.seed'];

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
export interface SweepRun<R = unknown> {
  /** Stable name, also its folder under `<sweep>/runs/`: `epsilon=0.5_adversarialWeight=1_seed=2`. */
  readonly id: string;
  /** The grid point (axis name -> value), without the seed. */
  readonly point: Readonly<Record<string, AxisValue>>;
  /** The grid point's key: the same for every seed of one configuration. */
  readonly configuration: string;
  readonly seed: number | null;
  /** The raw run config (base + set + the point + the seed), with paths made absolute. */
  readonly config: Readonly<Record<string, unknown>>;
  /** What the application resolves it to (every default filled in). */
  readonly resolved: R;
}

/** A sweep expanded: its runs, in grid order, and a fingerprint of all of them. */
export interface SweepPlan<R = unknown> {
  readonly spec: SweepSpec;
  readonly runs: readonly SweepRun<R>[];
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
export async function readSweepFile(
  file: string,
  hooks: Pick<SweepConfigHooks<unknown>, 'readConfigFile' | 'seedPaths'>,
): Promise<SweepSpec> {
  const { readConfigFile } = hooks;
  const seedPaths = hooks.seedPaths ?? DEFAULT_SEED_PATHS;
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
      if (seedPaths.includes(axis.path))
        issues.push({
          path: `axes.${axis.path}`,
          message: 'seeds are given by the seeds list; drop this axis or the list',
        });
    // A seed written in the sweep file itself would be silently replaced: refused. (A base
    // run-config file's seeds are replaced by the list, as documented.)
    set.forEach((override, index) => {
      const path = override.slice(0, Math.max(0, override.indexOf('='))).trim();
      if (seedPaths.includes(path))
        issues.push({
          path: `set[${index}]`,
          message: `${path} is set by the seeds list; drop this override or the list`,
        });
    });
    if (input.config !== undefined)
      for (const path of seedPaths) {
        const value = path
          .split('.')
          .reduce<unknown>(
            (node, key) =>
              typeof node === 'object' && node !== null
                ? (node as Record<string, unknown>)[key]
                : undefined,
            base,
          );
        if (value !== undefined)
          issues.push({
            path: `config.${path}`,
            message: 'is set by the seeds list; drop it here or drop the list',
          });
      }
  }
  if (issues.length > 0)
    throw new ConfigError(issues.map((i) => ({ ...i, message: `${i.message} (${file})` })));
  return { base, set, axes: shortNames(axes), seeds };
}

/**
 * Most bytes of a run's folder name: file systems refuse names over 255 bytes
 * (`ENAMETOOLONG`); a longer label keeps its first bytes and a hash of the whole.
 */
export const MAX_RUN_NAME_BYTES = 200;

function folderName(label: string): string {
  if (Buffer.byteLength(label) <= MAX_RUN_NAME_BYTES) return label;
  const hash = createHash('sha256').update(label).digest('hex').slice(0, 12);
  let head = label;
  while (Buffer.byteLength(head) > MAX_RUN_NAME_BYTES - 13) head = head.slice(0, -1);
  return `${head}~${hash}`;
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
 * Expands a sweep into its runs: the Cartesian product of the axes (first axis slowest),
 * times the seeds. Each run's config is resolved as `advrec train` would, so a bad value on
 * any axis is reported (with the run it belongs to) before anything runs. The runs must
 * validate (`data.validation: true` or a validation file): the best configuration is chosen
 * on validation, never on test.
 */
export function expandSweep<R>(
  spec: SweepSpec,
  hooks: SweepConfigHooks<R>,
  cwd = process.cwd(),
): SweepPlan<R> {
  const seedPaths = hooks.seedPaths ?? DEFAULT_SEED_PATHS;
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
  const base = hooks.applyOverrides(spec.base, spec.set) as Record<string, unknown>;
  const runs: SweepRun<R>[] = [];
  const metrics: string[] = [];
  const issues: ConfigIssue[] = [];
  const used = new Set<string>();
  for (const point of points)
    for (const seed of spec.seeds.length > 0 ? spec.seeds : [null]) {
      const overrides = Object.entries(point).map(([path, v]) => `${path}=${JSON.stringify(v)}`);
      if (seed !== null) overrides.push(...seedPaths.map((path) => `${path}=${seed}`));
      const named = Object.fromEntries(
        spec.axes.map((axis) => [axis.name, point[axis.path]!] as const),
      );
      const label = [
        ...Object.entries(named).map(([name, v]) => `${name}=${folderSafe(v)}`),
        ...(seed !== null ? [`seed=${seed}`] : []),
      ].join('_');
      const stem = folderName(label || 'run');
      let id = stem;
      for (let k = 2; used.has(id); k++) id = `${stem}-${k}`;
      used.add(id);
      const merged = hooks.applyOverrides(base, overrides) as Record<string, unknown>;
      try {
        const { config, resolved } = hooks.prepareRun(merged, cwd);
        const metric = hooks.validationMetric(resolved);
        if (typeof metric !== 'string') issues.push(metric);
        else metrics.push(metric);
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
  const metric = metrics[0]!;
  const other = metrics.findIndex((m) => m !== metric);
  if (other >= 0)
    throw new ConfigError([
      {
        path: 'axes',
        message: `every run must validate on the same metric to be compared (run ${runs[0]!.id}: ${metric}, run ${runs[other]!.id}: ${metrics[other]})`,
      },
    ]);
  const fingerprint = createHash('sha256')
    .update(runs.map((r) => `${r.id}\n${hooks.toJson(r.resolved)}`).join('\n'))
    .digest('hex');
  return { spec, runs, fingerprint, metric };
}
