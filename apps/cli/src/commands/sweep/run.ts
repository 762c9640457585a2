import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError } from '@advrec/data';
import {
  dataLoading,
  emit,
  lockRunFolder,
  textTable,
  timeStamp,
} from '../../run-folder/context.js';
import { loadData } from '../../catalog/load.js';
import type { ResolvedRunConfig } from '../../config.js';
import { loadSequences } from '../../run-folder/sequential.js';
import type { SequentialRunConfig } from '../../run-folder/sequential.js';
import type { CommandContext } from '../../run-folder/context.js';
import { formatSeconds } from '../../progress.js';
import { writeReport } from '../../run-folder/report.js';
import { pluginsOf } from '../../plugins.js';
import { loadPlugins, machineLine, toJson, writeText } from '../../run-folder/runs.js';
import {
  aggregateSweep,
  checkQueue,
  expandSweep,
  headlineTestMetric,
  readSweepFile,
  runLocalPool,
  runOnQueue,
} from '@advrec/sweep';
import type {
  JobEvents,
  JobFailedError,
  SweepPlan as GenericSweepPlan,
  SweepRun as GenericSweepRun,
  SweepRunResult,
} from '@advrec/sweep';
import { isSequentialRunConfig, sweepConfigHooks } from '../../sweep/config-hooks.js';
import type { SweepRunConfig } from '../../sweep/config-hooks.js';
import { readSweepRunResult } from '../../sweep/run-results.js';
import { sweepJobRunnerModule } from '../../sweep/jobs.js';
import type { JobResult, TrainJob } from '../../sweep/jobs.js';
import { sweepSections } from '../../sweep/sections.js';

type SweepPlan = GenericSweepPlan<SweepRunConfig>;
type SweepRun = GenericSweepRun<SweepRunConfig>;

/** Options of `advrec sweep`. */
export interface SweepOptions {
  readonly out?: string;
  /** Runs at once in the in-process pool (default 1). */
  readonly workers?: number;
  /** A Redis URL: run on `advrec worker` processes instead of the in-process pool. */
  readonly queue?: string;
  readonly queueName?: string;
  /** Tries per run on the queue (default 3). */
  readonly attempts?: number;
  /** Seconds a Redis server that stopped answering is waited for (default 30). */
  readonly queueWait?: number;
  readonly force?: boolean;
}

/** One run's execution, for the report and `execution.json`. */
interface RunExecution {
  status: 'waiting' | 'running' | 'trained' | 'resumed' | 'reused' | 'failed';
  seconds: number | null;
  error: string | null;
}

interface SweepItem {
  readonly id: string;
  readonly key: string;
  readonly run: SweepRun;
  readonly job: TrainJob;
}

/**
 * The sweep folder's record of its plan (`sweep.json`): a folder holding another sweep is
 * refused unless `force`.
 */
/**
 * A folder that holds files but no sweep (`sweep.json`) is a user's: refused unless `--force`,
 * as `advrec train` refuses one, so that a sweep never writes over a report or a result.
 */
async function refuseForeignFolder(folder: string, force: boolean): Promise<void> {
  if (force || !existsSync(folder) || existsSync(join(folder, 'sweep.json'))) return;
  let entries: string[];
  try {
    entries = await readdir(folder);
  } catch (error) {
    throw new ConfigError([
      { path: '--out', message: `${folder} is not a folder (${(error as Error).message})` },
    ]);
  }
  if (entries.some((name) => name !== '.advrec.lock'))
    throw new ConfigError([
      {
        path: '--out',
        message: `${folder} is not empty and holds no sweep (sweep.json); choose another --out, or pass --force to write into it`,
      },
    ]);
}

async function claimSweepFolder(
  folder: string,
  plan: SweepPlan,
  file: string,
  force: boolean,
): Promise<void> {
  const record = join(folder, 'sweep.json');
  if (existsSync(record) && !force) {
    let previous: { fingerprint?: string } = {};
    try {
      previous = JSON.parse(await readFile(record, 'utf8')) as { fingerprint?: string };
    } catch {
      previous = {};
    }
    if (previous.fingerprint !== plan.fingerprint)
      throw new ConfigError([
        {
          path: '--out',
          message: `${folder} holds another sweep (sweep.json); choose another --out, or pass --force`,
        },
      ]);
  }
  await writeText(
    record,
    toJson({
      format: 'advrec-sweep/1',
      file: resolve(file),
      fingerprint: plan.fingerprint,
      metric: plan.metric,
      axes: plan.spec.axes,
      seeds: plan.spec.seeds,
      set: plan.spec.set,
      runs: plan.runs.map((r) => ({
        id: r.id,
        point: r.point,
        seed: r.seed,
        folder: `runs/${r.id}`,
      })),
    }),
  );
}

/** A sweep's run bookkeeping: statuses, results, failures, the progress bar and `progress.json`. */
interface SweepTracker {
  readonly events: JobEvents<SweepItem>;
  readonly execution: Map<string, RunExecution>;
  readonly results: Map<string, SweepRunResult>;
  readonly failures: JobFailedError[];
  readonly bar: ReturnType<CommandContext['progress']['bar']>;
  readonly started: number;
  counts(): { done: number; running: number; failed: number; waiting: number };
  /** Resolves once every pending result read and progress write is done. */
  settled(): Promise<void>;
}

function sweepTracker(
  items: readonly SweepItem[],
  folder: string,
  metric: string,
  context: CommandContext,
): SweepTracker {
  const execution = new Map<string, RunExecution>(
    items.map((i) => [i.id, { status: 'waiting', seconds: null, error: null }]),
  );
  const results = new Map<string, SweepRunResult>();
  const failures: JobFailedError[] = [];
  const bar = context.progress.bar('sweep runs', items.length);
  const counts = (): { done: number; running: number; failed: number; waiting: number } => {
    const all = [...execution.values()];
    return {
      done: all.filter((e) => ['trained', 'resumed', 'reused'].includes(e.status)).length,
      running: all.filter((e) => e.status === 'running').length,
      failed: all.filter((e) => e.status === 'failed').length,
      waiting: all.filter((e) => e.status === 'waiting').length,
    };
  };
  const t0 = performance.now();
  const writeProgress = async (): Promise<void> => {
    const c = counts();
    const elapsed = (performance.now() - t0) / 1000;
    const finished = c.done + c.failed;
    const eta =
      finished > 0 && finished < items.length
        ? (elapsed / finished) * (items.length - finished)
        : null;
    bar.update(
      finished,
      `${c.running} running, ${c.failed} failed${eta !== null ? `, eta ${formatSeconds(eta)}` : ''}`,
    );
    await writeText(
      join(folder, 'progress.json'),
      toJson({
        ...c,
        total: items.length,
        elapsedSeconds: elapsed,
        etaSeconds: eta,
        updated: new Date(),
      }),
    );
  };
  let writing: Promise<void> = Promise.resolve();
  const progressChanged = (): void => {
    writing = writing.then(writeProgress, writeProgress);
  };
  const events: JobEvents<SweepItem> = {
    onStart: (item) => {
      execution.get(item.id)!.status = 'running';
      progressChanged();
    },
    onDone: (item, result: JobResult) => {
      // Each run is collected once, whatever its job reported before.
      if (results.has(item.id) || result.kind !== 'train') return;
      const entry = execution.get(item.id)!;
      entry.status = result.status;
      entry.seconds = result.seconds;
      writing = writing.then(async () => {
        try {
          results.set(item.id, await readSweepRunResult(item.run, item.job.folder, metric));
        } catch (error) {
          entry.status = 'failed';
          entry.error = (error as Error).message;
        }
        await writeProgress();
      });
    },
    onFail: (item, error) => {
      const entry = execution.get(item.id)!;
      entry.status = 'failed';
      entry.error = error.message;
      failures.push(error);
      context.progress.log(`run ${item.id} failed: ${error.message}`);
      progressChanged();
    },
  };
  return {
    events,
    execution,
    results,
    failures,
    bar,
    started: t0,
    counts,
    settled: () => writing,
  };
}

/** `aggregate.json`, `execution.json`, the report and the console summary of a finished sweep. */
async function writeSweepOutputs(
  sweep: {
    readonly folder: string;
    readonly file: string;
    readonly plan: SweepPlan;
    readonly items: readonly SweepItem[];
    readonly where: string;
    readonly started: Date;
    readonly wallSeconds: number;
    readonly tracker: SweepTracker;
  },
  context: CommandContext,
): Promise<void> {
  const { folder, file, plan, items, where, started, wallSeconds, tracker } = sweep;
  const { execution } = tracker;
  const c = tracker.counts();
  const aggregate = aggregateSweep(plan, tracker.results);
  await writeText(join(folder, 'aggregate.json'), toJson(aggregate));
  await writeText(
    join(folder, 'execution.json'),
    toJson({
      where,
      started,
      ended: new Date(),
      wallSeconds,
      runs: Object.fromEntries(execution),
      machine: machineLine(),
    }),
  );
  const executionRows = items.map((i) => {
    const e = execution.get(i.id)!;
    return [i.id, e.status, e.seconds === null ? '-' : Number(e.seconds.toFixed(1)), e.error ?? ''];
  });
  await writeReport(folder, {
    title: `advrec sweep: ${plan.runs.length} runs`,
    facts: [
      ['sweep file', resolve(file)],
      ['fingerprint', plan.fingerprint],
      [
        'axes',
        plan.spec.axes.map((a) => `${a.path} in [${a.values.join(', ')}]`).join('; ') || 'none',
      ],
      ['seeds', plan.spec.seeds.join(', ') || "the base config's"],
      ['selection', `best mean validation ${plan.metric} (test metrics never used to choose)`],
      ['executed on', where],
      [
        'progress',
        `${c.done} of ${items.length} runs done, ${c.failed} failed, ${c.running + c.waiting} not finished; wall time ${formatSeconds(wallSeconds)}`,
      ],
      ['started', started.toISOString()],
      ['machine', machineLine()],
    ],
    sections: [
      ...sweepSections(aggregate),
      {
        kind: 'table',
        title: 'Execution',
        caption:
          'How each run ended (reused: a finished run folder was read, not recomputed; resumed: continued from the checkpoint a stopped attempt left).',
        columns: ['run', 'status', 'seconds', 'error'],
        rows: executionRows,
      },
    ],
  });
  const testKey = headlineTestMetric(aggregate);
  const ranked = [...aggregate.configurations].sort(
    (a, b) => b.validation.mean - a.validation.mean,
  );
  emit(context, { folder, aggregate, wallSeconds, done: c.done, failed: c.failed }, () =>
    [
      ...(ranked.length === 0
        ? []
        : [
            textTable(
              [
                ...aggregate.axes.map((a) => a.name),
                'runs',
                `valid ${plan.metric}`,
                ...(testKey ? [`test ${testKey}`] : []),
              ],
              ranked
                .slice(0, 10)
                .map((cfg) => [
                  ...aggregate.axes.map((a) => String(cfg.point[a.name])),
                  cfg.runs.length,
                  Number(cfg.validation.mean.toFixed(4)),
                  ...(testKey ? [Number(cfg.test[testKey]!.mean.toFixed(4))] : []),
                ]),
            ),
          ]),
      aggregate.best
        ? `best on validation: ${
            Object.entries(aggregate.best.point)
              .map(([k, v]) => `${k}=${String(v)}`)
              .join(', ') || 'the base config'
          }`
        : 'no run finished',
      `${c.done} of ${items.length} runs done, ${c.failed} failed, ${formatSeconds(wallSeconds)}; sweep folder: ${folder} (report.html, aggregate.json, runs/)`,
    ].join('\n'),
  );
}

/**
 * Loads (and so checks) each data set of the grid once, before any run starts: a missing file
 * fails the sweep at once, not every run.
 */
async function checkSweepData(plan: SweepPlan, context: CommandContext): Promise<void> {
  const pairwise = new Map<string, ResolvedRunConfig['data']>();
  const sequential = new Map<string, SequentialRunConfig>();
  for (const { resolved } of plan.runs)
    if (isSequentialRunConfig(resolved)) sequential.set(toJson(resolved.data), resolved);
    else pairwise.set(toJson(resolved.data), resolved.data);
  for (const data of pairwise.values()) await loadData(data, dataLoading(context));
  for (const config of sequential.values())
    await loadSequences(config.data.source, config.training.seed);
}

/**
 * `advrec sweep`: expands a sweep file into runs, runs them (in-process pool, or a Redis queue
 * served by `advrec worker`), then aggregates the run folders into `aggregate.json` and a
 * report with tables and heat maps; the best configuration is chosen on validation only.
 */
export async function sweepCommand(
  file: string,
  options: SweepOptions,
  context: CommandContext,
): Promise<number> {
  const started = new Date();
  const spec = await readSweepFile(file, sweepConfigHooks);
  // The plugins of the base config and the packages of every model the grid names.
  const modelAxis = spec.axes.find((a) => a.path === 'model.name');
  const plugins = [
    ...pluginsOf(spec.base),
    ...(modelAxis?.values ?? []).flatMap((name) => pluginsOf({ model: { name } })),
  ];
  await loadPlugins([...new Set(plugins)]);
  const plan = expandSweep(spec, sweepConfigHooks);
  const workers = options.workers ?? 1;
  if (options.queue !== undefined && options.workers !== undefined)
    throw new ConfigError([
      {
        path: '--workers',
        message:
          'runs on the in-process pool; with --queue the runs go to `advrec worker` processes',
      },
    ]);
  if (options.queue !== undefined) await checkQueue(options.queue);
  await checkSweepData(plan, context);
  const folder = resolve(options.out ?? join('runs', `sweep-${timeStamp()}`));
  await refuseForeignFolder(folder, options.force ?? false);
  await mkdir(join(folder, 'runs'), { recursive: true });
  const release = await lockRunFolder(folder, '-o');
  try {
    await claimSweepFolder(folder, plan, file, options.force ?? false);
    const where = options.queue
      ? `queue ${options.queue} (${options.queueName ?? 'advrec'}), served by advrec worker processes`
      : `in-process pool, ${workers} worker${workers > 1 ? 's (one thread per run)' : ''}`;
    context.progress.log(
      `sweep: ${plan.runs.length} runs (${plan.spec.axes.map((a) => `${a.name} x ${a.values.length}`).join(', ') || 'base config'}${plan.spec.seeds.length > 0 ? `, ${plan.spec.seeds.length} seeds` : ''}) on the ${where}; folder ${folder}`,
    );
    const salt = createHash('sha256')
      .update(`${plan.fingerprint}\n${folder}`)
      .digest('hex')
      .slice(0, 16);
    const items: SweepItem[] = plan.runs.map((run, k) => ({
      id: run.id,
      key: `sweep-${salt}-${k}`,
      run,
      job: {
        kind: 'train',
        sweep: folder,
        runId: run.id,
        folder: join(folder, 'runs', run.id),
        config: run.config,
      },
    }));
    const tracker = sweepTracker(items, folder, plan.metric, context);
    const { events, failures, counts } = tracker;
    const t0 = tracker.started;
    if (options.queue !== undefined) {
      await runOnQueue(
        options.queue,
        options.queueName ?? 'advrec',
        items,
        events,
        context.signal,
        {
          ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
          ...(options.queueWait !== undefined ? { lostAfterMs: options.queueWait * 1000 } : {}),
          log: (line) => context.progress.log(line),
        },
      );
    } else
      await runLocalPool(items, {
        workers,
        runnerModule: sweepJobRunnerModule(),
        events,
        signal: context.signal,
      });
    await tracker.settled();
    const c = counts();
    tracker.bar.finish(`${c.done} done, ${c.failed} failed`, c.done + c.failed);
    const wallSeconds = (performance.now() - t0) / 1000;
    await writeSweepOutputs(
      { folder, file, plan, items, where, started, wallSeconds, tracker },
      context,
    );
    if (context.signal.aborted) return 130;
    return failures.length > 0 ? failures[0]!.exitCode || 1 : c.done === items.length ? 0 : 1;
  } finally {
    await release();
  }
}
