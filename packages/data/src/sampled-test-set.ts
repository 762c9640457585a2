import { DataError, DataFormatError, IssueCollector } from './errors.js';
import type { Dataset } from './dataset.js';
import { readLines } from './lines.js';
import { Random } from './random.js';
import { writeFileAtomic } from './write.js';

/**
 * The sampled-negative evaluation protocol's input: each case is a held-out (user,
 * positive) pair with a fixed list of negatives to rank it against (AMR: 999, NCF: 99).
 */
export interface SampledTestSet {
  /** User of each case. */
  readonly users: Int32Array;
  /** Held-out positive item of each case. */
  readonly positives: Int32Array;
  /** Negatives, case by case: case `c` owns `negatives[c * negativesPerCase .. (c+1) * negativesPerCase)`. */
  readonly negatives: Int32Array;
  /** Negatives per case. */
  readonly negativesPerCase: number;
  /** Number of cases. */
  readonly numCases: number;
  /** Where the negatives come from: `generated (seed S)` or the file path. */
  readonly source: string;
}

/** Options of {@link generateSampledTestSet}. */
export interface SampledTestSetOptions {
  /** Negatives per case (default 999, as AMR; NCF uses 99). */
  readonly negatives?: number;
  /** Seed (default 0). */
  readonly seed?: number;
  /** Which split's interactions become cases (default `test`). */
  readonly split?: 'test' | 'validation';
  /** Exclude cold-start items from the negatives (default false: any item the user never interacted with). */
  readonly excludeColdStartItems?: boolean;
}

/**
 * Draws, for every interaction of the test (or validation) split, `negatives` distinct
 * items the user has no interaction with in any split. Case `c` uses the random stream
 * `(seed, c)`, so the result does not depend on anything but the data and the seed.
 *
 * @throws {@link DataError} when a user has fewer candidate items than `negatives`.
 */
export function generateSampledTestSet(
  dataset: Dataset,
  options: SampledTestSetOptions = {},
): SampledTestSet {
  const issues = new IssueCollector();
  const count = options.negatives ?? 999;
  const seed = options.seed ?? 0;
  const splitName = options.split ?? 'test';
  issues.integer('negatives', count, 1);
  issues.integer('seed', seed, 0);
  issues.oneOf('split', splitName, ['test', 'validation']);
  issues.throwIfAny();
  const split = splitName === 'test' ? dataset.test : dataset.validation;
  if (split === null)
    throw new DataError(`${dataset.name}: the data set has no ${splitName} split`);
  const excluded = new Uint8Array(dataset.numItems);
  if (options.excludeColdStartItems) for (const i of dataset.coldStartItems) excluded[i] = 1;
  let numExcluded = 0;
  for (const x of excluded) numExcluded += x;

  const numCases = split.nnz;
  const users = split.entryUsers().slice();
  const positives = split.indices.slice();
  const negatives = new Int32Array(numCases * count);
  const known = new Set<number>();
  const matrices = [dataset.train, dataset.validation, dataset.test].filter((m) => m !== null);
  let c = 0;
  for (let u = 0; u < dataset.numUsers; u++) {
    const cases = split.degree(u);
    if (cases === 0) continue;
    known.clear();
    for (const m of matrices) for (const i of m.row(u)) known.add(i);
    let excludedKnown = 0;
    for (const i of known) excludedKnown += excluded[i]!;
    const available = dataset.numItems - numExcluded - (known.size - excludedKnown);
    if (available < count) {
      throw new DataError(
        `user ${dataset.userIdMap.toSource(u)} has ${available} items to sample from, fewer than the ${count} negatives asked`,
      );
    }
    const dense = count * 2 > available;
    // Dense case: the user's candidates, built once and copied per case (each case shuffles its copy).
    let userPool: number[] | undefined;
    if (dense) {
      userPool = [];
      for (let i = 0; i < dataset.numItems; i++)
        if (!known.has(i) && !excluded[i]) userPool.push(i);
    }
    for (let k = 0; k < cases; k++, c++) {
      const random = Random.stream(seed, c);
      const out = negatives.subarray(c * count, (c + 1) * count);
      if (dense) {
        const pool = userPool!.slice();
        for (let t = 0; t < count; t++) {
          const r = t + random.nextInt(pool.length - t);
          const tmp = pool[t]!;
          pool[t] = pool[r]!;
          pool[r] = tmp;
          out[t] = pool[t]!;
        }
      } else {
        const chosen = new Set<number>();
        let t = 0;
        while (t < count) {
          const j = random.nextInt(dataset.numItems);
          if (known.has(j) || excluded[j] || chosen.has(j)) continue;
          chosen.add(j);
          out[t++] = j;
        }
      }
    }
  }
  return {
    users,
    positives,
    negatives,
    negativesPerCase: count,
    numCases,
    source: `generated (seed ${seed})`,
  };
}

/** File layouts for sampled negatives. */
export type NegativeFileFormat =
  /** NCF `.test.negative`: `(user,item)<TAB>neg<TAB>neg...`, one line per case. */
  | 'ncf'
  /** AMR `neg.txt`: line `r` is user `r`: `positive neg neg ...`, blank-separated. */
  | 'amr';

/**
 * Writes a sampled test set with source ids, atomically (temporary file, then rename).
 * The AMR layout needs exactly one case per user, users being `0..n-1` in order.
 */
export async function writeSampledTestSet(
  file: string,
  set: SampledTestSet,
  dataset: Dataset,
  format: NegativeFileFormat = 'ncf',
): Promise<void> {
  const userIds = dataset.userIdMap;
  const itemIds = dataset.itemIdMap;
  const k = set.negativesPerCase;
  if (format === 'amr') {
    for (let c = 0; c < set.numCases; c++) {
      if (userIds.toSource(set.users[c]!) !== String(c)) {
        throw new DataError(
          `the AMR layout needs case ${c} to belong to user "${c}"; use the NCF layout`,
        );
      }
    }
  }
  await writeFileAtomic(file, function* () {
    for (let c = 0; c < set.numCases; c++) {
      const negatives: string[] = [];
      for (let t = 0; t < k; t++) negatives.push(itemIds.toSource(set.negatives[c * k + t]!));
      const positive = itemIds.toSource(set.positives[c]!);
      yield format === 'ncf'
        ? `(${userIds.toSource(set.users[c]!)},${positive})\t${negatives.join('\t')}\n`
        : `${positive} ${negatives.join(' ')}\n`;
    }
  });
}

/** Options of {@link readSampledTestSet}. */
export interface ReadSampledTestSetOptions {
  /** File layout (default: `ncf` when the first line starts with `(`, else `amr`). */
  readonly format?: NegativeFileFormat | 'auto';
  /** The split whose interactions the cases must be (default `test`). */
  readonly split?: 'test' | 'validation';
}

/**
 * Reads sampled negatives (NCF `.test.negative` or AMR `neg.txt`) against a data set.
 * Every case must be a (user, item) of the chosen split; every negative an item the
 * user never interacted with; every line the same number of negatives.
 *
 * @throws {@link DataFormatError} naming the line: malformed line, unknown user or item,
 * a case that is not in the split, a negative that is a known positive, a count that differs.
 */
export async function readSampledTestSet(
  file: string,
  dataset: Dataset,
  options: ReadSampledTestSetOptions = {},
): Promise<SampledTestSet> {
  const splitName = options.split ?? 'test';
  const split = splitName === 'test' ? dataset.test : dataset.validation;
  if (split === null)
    throw new DataError(`${dataset.name}: the data set has no ${splitName} split`);
  let format = options.format ?? 'auto';
  const users: number[] = [];
  const positives: number[] = [];
  let negatives = new Int32Array(1024);
  let perCase = -1;
  let row = -1;
  const item = (token: string, line: number, role: string): number => {
    const i = dataset.itemIdMap.get(token);
    if (i === undefined)
      throw new DataFormatError({ file, line }, `a ${role} item id known to the data set`, token);
    return i;
  };
  await readLines(file, (text, line) => {
    if (text.trim() === '') return;
    row++;
    if (format === 'auto') format = text.trimStart().startsWith('(') ? 'ncf' : 'amr';
    let user: number;
    let positive: number;
    let rest: string[];
    if (format === 'ncf') {
      const match = /^\s*\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)\s*(.*)$/.exec(text);
      if (!match)
        throw new DataFormatError(
          { file, line },
          '"(user,item)" followed by tab-separated negatives',
          text,
        );
      const u = dataset.userIdMap.get(match[1]!);
      if (u === undefined)
        throw new DataFormatError({ file, line }, 'a user id known to the data set', match[1]);
      user = u;
      positive = item(match[2]!, line, 'positive');
      rest = match[3]!.trim() === '' ? [] : match[3]!.trim().split(/\s+/);
    } else {
      const tokens = text.trim().split(/\s+/);
      const u = dataset.userIdMap.get(String(row));
      if (u === undefined)
        throw new DataFormatError(
          { file, line },
          `line ${line} to be a known user (row ${row})`,
          text,
        );
      user = u;
      positive = item(tokens[0]!, line, 'positive');
      rest = tokens.slice(1);
    }
    if (perCase < 0) {
      if (rest.length === 0)
        throw new DataFormatError({ file, line }, 'at least one negative item', text);
      perCase = rest.length;
    } else if (rest.length !== perCase) {
      throw new DataFormatError(
        { file, line },
        `${perCase} negatives, as on the first line`,
        `${rest.length} negatives`,
      );
    }
    if (!split.has(user, positive)) {
      throw new DataFormatError(
        { file, line },
        `a (user, item) pair of the ${splitName} split`,
        `(${dataset.userIdMap.toSource(user)},${dataset.itemIdMap.toSource(positive)})`,
      );
    }
    const c = users.length;
    if ((c + 1) * perCase > negatives.length) {
      const grown = new Int32Array(Math.max(negatives.length * 2, (c + 1) * perCase));
      grown.set(negatives);
      negatives = grown;
    }
    for (let t = 0; t < perCase; t++) {
      const j = item(rest[t]!, line, 'negative');
      if (
        dataset.train.has(user, j) ||
        dataset.test.has(user, j) ||
        dataset.validation?.has(user, j)
      ) {
        throw new DataFormatError(
          { file, line },
          'negatives the user never interacted with',
          rest[t],
        );
      }
      negatives[c * perCase + t] = j;
    }
    users.push(user);
    positives.push(positive);
  });
  if (users.length === 0)
    throw new DataFormatError({ file }, 'at least one case line', 'no case lines');
  return {
    users: Int32Array.from(users),
    positives: Int32Array.from(positives),
    negatives: negatives.slice(0, users.length * perCase),
    negativesPerCase: perCase,
    numCases: users.length,
    source: file,
  };
}
