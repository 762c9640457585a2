/**
 * A sweep run's result, read from its run folder: `@advrec/sweep`'s reader for pairwise run
 * folders (`metrics.json`, `history.json`), and the sequential run folder's `results.json`
 * (its last arm: the model the run ends with).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataFormatError } from '@advrec/data';
import { readRunResult } from '@advrec/sweep';
import type { SweepRun, SweepRunResult } from '@advrec/sweep';
import { isSequentialRunConfig } from './config-hooks.js';
import type { SweepRunConfig } from './config-hooks.js';

/** What a sequential run folder's `results.json` says about each arm (the fields read here). */
interface SequentialArmRecord {
  readonly label?: unknown;
  readonly hitRate10?: unknown;
  readonly ndcg10?: unknown;
  readonly validation?: { readonly hitRate10?: unknown; readonly ndcg10?: unknown };
  readonly bestEpoch?: unknown;
  readonly fgmOnItemEmbeddings?: readonly { relativeEpsilon?: unknown; ndcgChange?: unknown }[];
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

async function readSequentialRunResult(
  run: SweepRun<SweepRunConfig>,
  folder: string,
): Promise<SweepRunResult> {
  const file = join(folder, 'results.json');
  let arms: readonly SequentialArmRecord[] | undefined;
  try {
    arms = (JSON.parse(await readFile(file, 'utf8')) as { arms?: SequentialArmRecord[] }).arms;
  } catch (error) {
    throw new DataFormatError(
      { file },
      'the results of a sequential run',
      (error as Error).message,
    );
  }
  const arm = arms?.at(-1);
  if (
    !arm ||
    !finite(arm.hitRate10) ||
    !finite(arm.ndcg10) ||
    !finite(arm.validation?.ndcg10) ||
    !finite(arm.validation?.hitRate10)
  )
    throw new DataFormatError(
      { file },
      'an arm with test and validation HR@10 and NDCG@10',
      JSON.stringify(arm ?? null).slice(0, 120),
    );
  const robustness: Record<string, Record<string, number>> = {};
  for (const point of arm.fgmOnItemEmbeddings ?? [])
    if (finite(point.relativeEpsilon) && finite(point.ndcgChange))
      robustness[`fgm@${point.relativeEpsilon}`] = { 'ndcg@10': point.ndcgChange };
  return {
    id: run.id,
    point: run.point,
    seed: run.seed,
    validation: arm.validation.ndcg10,
    validationEpoch: finite(arm.bestEpoch) ? arm.bestEpoch : 0,
    test: { 'hr@10': arm.hitRate10, 'ndcg@10': arm.ndcg10 },
    robustness,
  };
}

/** Reads one finished run of a sweep, pairwise or sequential, for its aggregate. */
export async function readSweepRunResult(
  run: SweepRun<SweepRunConfig>,
  folder: string,
  metric: string,
): Promise<SweepRunResult> {
  return isSequentialRunConfig(run.resolved)
    ? readSequentialRunResult(run, folder)
    : readRunResult(run, folder, metric);
}
