/**
 * A sweep's results, read from its run folders (the single source of truth, whichever
 * workers ran them): per configuration the mean and spread over seeds of the validation and
 * test metrics, and the best configuration, chosen on validation only.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataFormatError } from '@advrec/data';
import type { AxisValue, SweepPlan, SweepRun } from './spec.js';

/** One finished run of a sweep. */
export interface SweepRunResult {
  readonly id: string;
  readonly point: Readonly<Record<string, AxisValue>>;
  readonly seed: number | null;
  /** The validation metric of the run's final model (the epoch its best checkpoint holds). */
  readonly validation: number;
  readonly validationEpoch: number;
  /** Test metrics of the final model (`metrics.json`). */
  readonly test: Readonly<Record<string, number>>;
  /**
   * Relative change of every test metric under each attack of the run's robustness sweep
   * (\`attack\` in its config), keyed \`<adversary>@<epsilon>\`; empty without one.
   */
  readonly robustness: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** Mean, sample standard deviation (0 for one run) and count. */
export interface Spread {
  readonly mean: number;
  readonly std: number;
  readonly n: number;
}

/** One configuration (grid point) over its seeds. */
export interface ConfigurationSummary {
  readonly point: Readonly<Record<string, AxisValue>>;
  readonly runs: readonly string[];
  readonly validation: Spread;
  readonly test: Readonly<Record<string, Spread>>;
  /** Relative change of each test metric under each attack, over seeds (\`fgm@0.5\` -> metric -> spread). */
  readonly robustness: Readonly<Record<string, Readonly<Record<string, Spread>>>>;
}

/** What `aggregate.json` holds (no timings: two executions of one sweep give equal ones). */
export interface SweepAggregate {
  readonly format: 'advrec-sweep/1';
  readonly fingerprint: string;
  readonly axes: readonly {
    readonly path: string;
    readonly name: string;
    readonly values: readonly AxisValue[];
  }[];
  readonly seeds: readonly number[];
  /** The validation metric the best configuration is chosen on. */
  readonly metric: string;
  readonly runs: readonly SweepRunResult[];
  /** Runs without a result (failed), by id. */
  readonly missing: readonly string[];
  readonly configurations: readonly ConfigurationSummary[];
  /** The configuration with the highest mean validation metric (ties: first in grid order). */
  readonly best: ConfigurationSummary | null;
}

async function readJson(file: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (error) {
    throw new DataFormatError({ file }, what, (error as Error).message);
  }
}

/** Reads one finished run folder: its final model's validation and test metrics. */
export async function readRunResult(
  run: SweepRun,
  folder: string,
  metric: string,
): Promise<SweepRunResult> {
  const status = (await readJson(join(folder, 'run.json'), 'a finished run (run.json)')) as {
    status?: string;
    bestEpoch?: { bpr: number | null; apr: number | null };
  };
  if (status.status !== 'done' || !status.bestEpoch)
    throw new DataFormatError(
      { file: join(folder, 'run.json') },
      'a finished run (status done)',
      `status ${String(status.status)}`,
    );
  const history = (await readJson(join(folder, 'history.json'), 'a run history')) as {
    epoch: number;
    phase: 'bpr' | 'apr';
    validation: Record<string, number> | null;
  }[];
  const metrics = (await readJson(join(folder, 'metrics.json'), 'test metrics')) as {
    metrics: Record<string, number>;
  };
  const robustness: Record<string, Record<string, number>> = {};
  const robustnessFile = join(folder, 'robustness.json');
  if (existsSync(robustnessFile)) {
    const report = (await readJson(robustnessFile, 'a robustness sweep')) as {
      points?: { adversary: string; epsilon: number; relativeChange: Record<string, number> }[];
    };
    for (const point of report.points ?? [])
      robustness[`${point.adversary}@${point.epsilon}`] = point.relativeChange;
  }
  const phase = status.bestEpoch.apr !== null ? 'apr' : 'bpr';
  const epoch = status.bestEpoch.apr ?? status.bestEpoch.bpr;
  const validated = history.filter((row) => row.phase === phase && row.validation);
  const row =
    validated.find((r) => r.epoch === epoch) ??
    validated.reduce<(typeof validated)[number] | undefined>(
      (best, r) =>
        best === undefined ||
        (r.validation![metric] ?? -Infinity) > (best.validation![metric] ?? -Infinity)
          ? r
          : best,
      undefined,
    );
  const value = row?.validation?.[metric];
  if (row === undefined || value === undefined)
    throw new DataFormatError(
      { file: join(folder, 'history.json') },
      `a validation ${metric} in the ${phase} phase`,
      'none (set training.validation.every so that the run validates)',
    );
  return {
    id: run.id,
    point: run.point,
    seed: run.seed,
    validation: value,
    validationEpoch: row.epoch,
    test: metrics.metrics,
    robustness,
  };
}

function spread(values: readonly number[]): Spread {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/** Aggregates the finished runs of a plan (missing ones are listed, not guessed). */
export function aggregateSweep(
  plan: SweepPlan,
  results: ReadonlyMap<string, SweepRunResult>,
): SweepAggregate {
  const runs = plan.runs.flatMap((r) => (results.has(r.id) ? [results.get(r.id)!] : []));
  const groups = new Map<string, SweepRun[]>();
  for (const run of plan.runs)
    groups.set(run.configuration, [...(groups.get(run.configuration) ?? []), run]);
  const configurations: ConfigurationSummary[] = [];
  for (const members of groups.values()) {
    const done = members.flatMap((r) => (results.has(r.id) ? [results.get(r.id)!] : []));
    if (done.length === 0) continue;
    const keys = Object.keys(done[0]!.test).filter((k) => done.every((r) => k in r.test));
    const attacks = Object.keys(done[0]!.robustness).filter((a) =>
      done.every((r) => a in r.robustness),
    );
    configurations.push({
      point: members[0]!.point,
      runs: done.map((r) => r.id),
      validation: spread(done.map((r) => r.validation)),
      test: Object.fromEntries(keys.map((k) => [k, spread(done.map((r) => r.test[k]!))])),
      robustness: Object.fromEntries(
        attacks.map((a) => [
          a,
          Object.fromEntries(
            Object.keys(done[0]!.robustness[a]!)
              .filter((k) => done.every((r) => Number.isFinite(r.robustness[a]![k])))
              .map((k) => [k, spread(done.map((r) => r.robustness[a]![k]!))]),
          ),
        ]),
      ),
    });
  }
  const best = configurations.reduce<ConfigurationSummary | null>(
    (b, c) => (b === null || c.validation.mean > b.validation.mean ? c : b),
    null,
  );
  return {
    format: 'advrec-sweep/1',
    fingerprint: plan.fingerprint,
    axes: plan.spec.axes.map((a) => ({ path: a.path, name: a.name, values: a.values })),
    seeds: plan.spec.seeds,
    metric: plan.metric,
    runs,
    missing: plan.runs.filter((r) => !results.has(r.id)).map((r) => r.id),
    configurations,
    best,
  };
}

/** The test metric shown beside validation: the validation metric's own name when tested. */
export function headlineTestMetric(aggregate: SweepAggregate): string | null {
  const keys = Object.keys(aggregate.configurations[0]?.test ?? {});
  return keys.includes(aggregate.metric) ? aggregate.metric : (keys[0] ?? null);
}
