import { DataError, IssueCollector } from './errors.js';
import type { InteractionLog } from './interaction-log.js';

/**
 * Keeps the interactions whose flag is set, then drops users and items left with no
 * interaction (dense ids are re-compacted; the id maps keep the source ids).
 */
export function selectInteractions(
  log: InteractionLog,
  keep: Uint8Array,
  source = log.source,
): InteractionLog {
  let n = 0;
  for (let k = 0; k < log.length; k++) if (keep[k]) n++;
  const userSeen = new Uint8Array(log.userIdMap.size);
  const itemSeen = new Uint8Array(log.itemIdMap.size);
  for (let k = 0; k < log.length; k++) {
    if (keep[k]) {
      userSeen[log.users[k]!] = 1;
      itemSeen[log.items[k]!] = 1;
    }
  }
  const { map: userIdMap, remap: userRemap } = log.userIdMap.filter(userSeen);
  const { map: itemIdMap, remap: itemRemap } = log.itemIdMap.filter(itemSeen);
  const users = new Int32Array(n);
  const items = new Int32Array(n);
  const ratings = log.ratings ? new Float32Array(n) : null;
  const timestamps = log.timestamps ? new Float64Array(n) : null;
  let at = 0;
  for (let k = 0; k < log.length; k++) {
    if (!keep[k]) continue;
    users[at] = userRemap[log.users[k]!]!;
    items[at] = itemRemap[log.items[k]!]!;
    if (ratings) ratings[at] = log.ratings![k]!;
    if (timestamps) timestamps[at] = log.timestamps![k]!;
    at++;
  }
  return { source, userIdMap, itemIdMap, users, items, ratings, timestamps, length: n };
}

/**
 * Implicit feedback: keeps the interactions with `rating >= threshold` (all of them when
 * no threshold is given). Ratings are kept as they were.
 * @throws {@link DataError} when a threshold is given and the log has no ratings.
 */
export function toImplicit(
  log: InteractionLog,
  options: { threshold?: number } = {},
): InteractionLog {
  if (options.threshold === undefined) return log;
  const issues = new IssueCollector();
  issues.number('threshold', options.threshold, -Infinity, Infinity);
  issues.throwIfAny();
  if (log.ratings === null) {
    throw new DataError(`${log.source}: a rating threshold was given but the log has no ratings`);
  }
  const keep = new Uint8Array(log.length);
  for (let k = 0; k < log.length; k++) keep[k] = log.ratings[k]! >= options.threshold ? 1 : 0;
  return selectInteractions(log, keep);
}

/**
 * Merges duplicate (user, item) interactions into one, keeping the earliest timestamp
 * (with its rating), as the APR paper does for Yelp and Gowalla. Without timestamps the
 * first occurrence in the file is kept.
 */
export function dedupe(log: InteractionLog): InteractionLog {
  const order = groupByUser(log);
  const keep = new Uint8Array(log.length);
  const times = log.timestamps;
  const slice: number[] = [];
  const numUsers = log.userIdMap.size;
  for (let u = 0; u < numUsers; u++) {
    const start = order.indptr[u]!;
    const end = order.indptr[u + 1]!;
    slice.length = 0;
    for (let p = start; p < end; p++) slice.push(order.entries[p]!);
    slice.sort((a, b) => {
      const di = log.items[a]! - log.items[b]!;
      if (di !== 0) return di;
      if (times) {
        const dt = times[a]! - times[b]!;
        if (dt !== 0) return dt;
      }
      return a - b;
    });
    for (let s = 0; s < slice.length; s++) {
      if (s === 0 || log.items[slice[s]!] !== log.items[slice[s - 1]!]) keep[slice[s]!] = 1;
    }
  }
  return selectInteractions(log, keep);
}

/** Options of {@link filterByCount}. */
export interface CountFilterOptions {
  /** Minimum interactions a user must have (default 1). */
  readonly minUserInteractions?: number;
  /** Minimum interactions an item must have (default 1). */
  readonly minItemInteractions?: number;
  /**
   * Repeat until both minimums hold at once (the iterative k-core). When false
   * (default), users are filtered once, then items once, on the original counts.
   */
  readonly iterative?: boolean;
}

/**
 * Drops users and items with too few interactions. With `iterative: true` this is the
 * k-core: users and items are removed repeatedly until every remaining user has at
 * least `minUserInteractions` and every item at least `minItemInteractions`.
 * Count duplicates once: call {@link dedupe} first.
 */
export function filterByCount(log: InteractionLog, options: CountFilterOptions): InteractionLog {
  const minUser = options.minUserInteractions ?? 1;
  const minItem = options.minItemInteractions ?? 1;
  const issues = new IssueCollector();
  issues.integer('minUserInteractions', minUser, 1);
  issues.integer('minItemInteractions', minItem, 1);
  issues.throwIfAny();
  const alive = new Uint8Array(log.length).fill(1);
  const userCount = new Int32Array(log.userIdMap.size);
  const itemCount = new Int32Array(log.itemIdMap.size);
  for (let k = 0; k < log.length; k++) {
    userCount[log.users[k]!]!++;
    itemCount[log.items[k]!]!++;
  }
  if (!options.iterative) {
    for (let k = 0; k < log.length; k++) {
      if (userCount[log.users[k]!]! < minUser || itemCount[log.items[k]!]! < minItem) alive[k] = 0;
    }
    return selectInteractions(log, alive);
  }
  let changed = true;
  while (changed) {
    changed = false;
    for (let k = 0; k < log.length; k++) {
      if (!alive[k]) continue;
      const u = log.users[k]!;
      const i = log.items[k]!;
      if (userCount[u]! < minUser || itemCount[i]! < minItem) {
        alive[k] = 0;
        userCount[u]!--;
        itemCount[i]!--;
        changed = true;
      }
    }
  }
  return selectInteractions(log, alive);
}

/** The iterative k-core: every remaining user and item has at least `k` interactions. */
export function kCore(log: InteractionLog, k: number): InteractionLog {
  return filterByCount(log, { minUserInteractions: k, minItemInteractions: k, iterative: true });
}

/**
 * Groups interaction indices by user (counting sort, stable): entries of user `u` are
 * `entries[indptr[u] .. indptr[u+1])` in file order.
 * @internal
 */
export function groupByUser(log: InteractionLog): { indptr: Int32Array; entries: Int32Array } {
  const numUsers = log.userIdMap.size;
  const indptr = new Int32Array(numUsers + 1);
  for (let k = 0; k < log.length; k++) indptr[log.users[k]! + 1]!++;
  for (let u = 0; u < numUsers; u++) indptr[u + 1]! += indptr[u]!;
  const cursor = indptr.slice(0, numUsers);
  const entries = new Int32Array(log.length);
  for (let k = 0; k < log.length; k++) entries[cursor[log.users[k]!]!++] = k;
  return { indptr, entries };
}
