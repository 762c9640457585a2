import { isSequentialRunFolder } from '../../run-folder/sequential-kind.js';
import { reloadRun, toJson } from '../../run-folder/runs.js';
import { ConfigError, DataError } from '@advrec/data';
import type { Model } from '@advrec/models';
import type { CommandContext } from '../../run-folder/context.js';

/** Options of `advrec recommend`. */
export interface RecommendOptions {
  readonly run: string;
  readonly checkpoint?: string;
  readonly users?: string[];
  /** A sequence of item ids (sequential runs): the next items after it. */
  readonly items?: string[];
  readonly k: number;
  readonly format: 'json' | 'csv';
  readonly includeSeen?: boolean;
}

/** Top-K items per user, excluding every item the user interacted with in the data set. */
export function recommend(
  model: Model,
  seen: readonly { indptr: Int32Array; indices: Int32Array }[],
  users: Int32Array,
  k: number,
): { items: Int32Array; scores: Float64Array }[] {
  const n = model.numItems;
  const scores = model.scoreAll(users);
  return Array.from(users, (_, row) => {
    const s = scores.subarray(row * n, (row + 1) * n);
    const excluded = new Uint8Array(n);
    for (const m of seen)
      for (let p = m.indptr[users[row]!]!; p < m.indptr[users[row]! + 1]!; p++)
        excluded[m.indices[p]!] = 1;
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (!excluded[i] && Number.isFinite(s[i]!)) order.push(i);
    // Ties broken by item id, as in the evaluator.
    order.sort((a, b) => s[b]! - s[a]! || a - b);
    const top = order.slice(0, k);
    return { items: Int32Array.from(top), scores: Float64Array.from(top, (i) => s[i]!) };
  });
}

/** `advrec recommend`: top-K for given users (source ids) as JSON or CSV. */
export async function recommendCommand(
  options: RecommendOptions,
  context: CommandContext,
): Promise<number> {
  if (!(Number.isInteger(options.k) && options.k >= 1))
    throw new ConfigError([{ path: '--k', message: `must be an integer >= 1, got ${options.k}` }]);
  if (await isSequentialRunFolder(options.run))
    return (await import('../../run-folder/sequential-commands.js')).recommendSequential(
      options,
      context,
    );
  if (!options.users || options.users.length === 0)
    throw new ConfigError([{ path: '--users', message: 'give the users to recommend for' }]);
  if (options.items)
    throw new ConfigError([
      { path: '--items', message: 'a sequence of items is recommended after by sequential runs' },
    ]);
  const run = await reloadRun(options.run, options.checkpoint);
  const { dataset } = run.data;
  const requested = options.users;
  const unknown = requested.filter((u) => !dataset.userIdMap.has(u));
  if (unknown.length > 0)
    throw new DataError(
      `unknown user id${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 10).join(', ')} (data set ${dataset.name} has ${dataset.numUsers} users)`,
    );
  const users = Int32Array.from(requested, (u) => dataset.userIdMap.toDense(u));
  const seen = options.includeSeen
    ? []
    : [dataset.train, dataset.validation, dataset.test].filter((m) => m !== null);
  const lists = recommend(run.model, seen, users, options.k);
  const out = requested.map((user, row) => ({
    user,
    items: Array.from(lists[row]!.items, (i, rank) => ({
      item: dataset.itemIdMap.toSource(i),
      rank: rank + 1,
      score: lists[row]!.scores[rank]!,
    })),
  }));
  if (options.format === 'csv' && !context.json) {
    context.stdout.write('user,rank,item,score\n');
    for (const u of out)
      for (const r of u.items) context.stdout.write(`${u.user},${r.rank},${r.item},${r.score}\n`);
  } else
    context.stdout.write(
      toJson({
        checkpoint: run.checkpoint,
        k: options.k,
        excludeSeen: !options.includeSeen,
        recommendations: out,
      }),
    );
  return 0;
}
