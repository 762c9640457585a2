import { DataError, IssueCollector } from './errors.js';
import { IdMap } from './id-map.js';
import type { InteractionLog } from './interaction-log.js';
import { InteractionMatrix } from './interaction-matrix.js';
import { dedupe, groupByUser } from './preprocess.js';
import { Random } from './random.js';

/** What to do with test (or validation) items that never occur in train. */
export type ColdStartPolicy = 'keep' | 'drop';

/** How a data set was split: carried by every {@link Dataset} so results can state their protocol. */
export interface SplitProtocol {
  /** `leave-one-out`, `ratio` (per-user fraction) or `given` (train/test files). */
  readonly kind: 'leave-one-out' | 'ratio' | 'given';
  /** Which interactions were held out: the latest by timestamp, or at random. */
  readonly order: 'latest' | 'random' | 'given';
  /** Seed of the random choices (ties, random hold-out, validation). */
  readonly seed: number;
  /** Fraction of each user's interactions held out (ratio split only). */
  readonly testFraction?: number;
  /** Cold-start policy applied to the test (and validation) interactions. */
  readonly coldStartItems: ColdStartPolicy;
  /** Test interactions dropped because their item is cold (policy `drop`). */
  readonly droppedColdStartInteractions: number;
  /** Duplicate (user, item) interactions merged before splitting (earliest kept). */
  readonly mergedDuplicates: number;
  /** Given splits: test interactions also present in train, removed from test. */
  readonly droppedTrainTestOverlap: number;
  /** With a given validation file: its interactions dropped because they also occur in train. */
  readonly droppedTrainValidationOverlap?: number;
  /** The validation hold-out, when one was taken from train. */
  readonly validation: {
    readonly order: 'latest' | 'random' | 'given';
    readonly seed: number;
    /** Held out from a sample of this many users only ({@link ValidationOptions.users}). */
    readonly users?: number;
  } | null;
}

/**
 * The Dataset contract: users and items as dense 0-based ids with the maps back to the
 * source ids, and train / validation / test interactions in CSR form.
 */
export interface Dataset {
  /** A human-readable name (e.g. the source path). */
  readonly name: string;
  /** Source user id <-> dense user id. */
  readonly userIdMap: IdMap;
  /** Source item id <-> dense item id. */
  readonly itemIdMap: IdMap;
  /** Number of users (rows of every split). */
  readonly numUsers: number;
  /** Number of items (columns of every split). */
  readonly numItems: number;
  /** Training interactions. */
  readonly train: InteractionMatrix;
  /** Validation interactions (one per user taken from train), or `null`. */
  readonly validation: InteractionMatrix | null;
  /** Test interactions. */
  readonly test: InteractionMatrix;
  /** Items with no training interaction that occur in validation or test, ascending. */
  readonly coldStartItems: Int32Array;
  /** How the split was made. */
  readonly protocol: SplitProtocol;
}

/** Options shared by the splits. */
export interface SplitOptions {
  /** Seed for every random choice (default 0). */
  readonly seed?: number;
  /** Keep (default) or drop test interactions whose item never occurs in train. */
  readonly coldStartItems?: ColdStartPolicy;
}

/** Options of {@link leaveOneOut}. */
export interface LeaveOneOutOptions extends SplitOptions {
  /**
   * `latest` (default when the log has timestamps): each user's latest interaction, ties
   * broken at random; `random`: one at random (the default without timestamps).
   */
  readonly order?: 'latest' | 'random';
}

/**
 * Leave-one-out: holds out one interaction per user (with at least two) for test, the
 * latest by timestamp (ties at random, seeded) as in the APR paper for Yelp/Gowalla and
 * the usual MovieLens protocol, or a random one (Pinterest; AMR). Duplicates are merged
 * first (earliest kept).
 */
export function leaveOneOut(log: InteractionLog, options: LeaveOneOutOptions = {}): Dataset {
  const issues = new IssueCollector();
  const seed = checkCommon(issues, options);
  const order = options.order ?? (log.timestamps ? 'latest' : 'random');
  issues.oneOf('order', order, ['latest', 'random']);
  if (order === 'latest' && !log.timestamps) {
    issues.add('order', `"latest" needs timestamps, and ${log.source} has none`);
  }
  issues.throwIfAny();
  const merged = dedupe(log);
  const isTest = new Uint8Array(merged.length);
  const groups = groupByUser(merged);
  for (let u = 0; u < merged.userIdMap.size; u++) {
    const start = groups.indptr[u]!;
    const end = groups.indptr[u + 1]!;
    if (end - start < 2) continue;
    const random = Random.stream(seed, 1, u);
    isTest[pickHeldOut(groups.entries, start, end, merged.timestamps, order, random)] = 1;
  }
  return assemble(merged, isTest, {
    kind: 'leave-one-out',
    order,
    seed,
    coldStartItems: options.coldStartItems ?? 'keep',
    mergedDuplicates: log.length - merged.length,
  });
}

/** Options of {@link ratioSplit}. */
export interface RatioSplitOptions extends SplitOptions {
  /** Fraction of each user's interactions held out for test, in (0, 1) (default 0.2). */
  readonly testFraction?: number;
  /** `random` (default) or `temporal` (each user's latest interactions go to test). */
  readonly order?: 'random' | 'temporal';
}

/**
 * Per-user ratio split: `round(testFraction * n_u)` of each user's interactions go to
 * test, at least one when the user has two or more, always leaving one in train. Random
 * (seeded, per user) or temporal (latest by timestamp, ties at random).
 */
export function ratioSplit(log: InteractionLog, options: RatioSplitOptions = {}): Dataset {
  const issues = new IssueCollector();
  const seed = checkCommon(issues, options);
  const testFraction = options.testFraction ?? 0.2;
  issues.number('testFraction', testFraction, 0, 1, true);
  const order = options.order ?? 'random';
  issues.oneOf('order', order, ['random', 'temporal']);
  if (order === 'temporal' && !log.timestamps) {
    issues.add('order', `"temporal" needs timestamps, and ${log.source} has none`);
  }
  issues.throwIfAny();
  const merged = dedupe(log);
  const isTest = new Uint8Array(merged.length);
  const groups = groupByUser(merged);
  const times = merged.timestamps;
  for (let u = 0; u < merged.userIdMap.size; u++) {
    const start = groups.indptr[u]!;
    const end = groups.indptr[u + 1]!;
    const n = end - start;
    if (n < 2) continue;
    const nTest = Math.min(n - 1, Math.max(1, Math.round(testFraction * n)));
    const random = Random.stream(seed, 2, u);
    const entries = Array.from(groups.entries.subarray(start, end));
    random.shuffle(entries); // random order; also breaks timestamp ties at random
    if (order === 'temporal') {
      const rank = new Map(entries.map((e, r) => [e, r]));
      entries.sort((a, b) => times![b]! - times![a]! || rank.get(a)! - rank.get(b)!);
    }
    for (let t = 0; t < nTest; t++) isTest[entries[t]!] = 1;
  }
  return assemble(merged, isTest, {
    kind: 'ratio',
    order: order === 'temporal' ? 'latest' : 'random',
    seed,
    testFraction,
    coldStartItems: options.coldStartItems ?? 'keep',
    mergedDuplicates: log.length - merged.length,
  });
}

/** Options of {@link givenSplit}. */
export interface GivenSplitOptions {
  /** Keep (default) or drop test interactions whose item never occurs in train. */
  readonly coldStartItems?: ColdStartPolicy;
  /** Extra item source ids that belong to the catalogue without any interaction (e.g. sampled negatives). */
  readonly extraItems?: Iterable<string>;
  /** A name for the data set (default: the train log's source). */
  readonly name?: string;
  /**
   * A given validation split (a published `valid.txt`): its interactions that also occur in
   * train are removed from it, as for test. Default: none (carve one with
   * {@link holdOutValidation}).
   */
  readonly validation?: InteractionLog;
}

/**
 * A split given as two files (Gowalla's `train.txt`/`test.txt`, NCF's `.train.rating`/
 * `.test.rating`, AMR's `pos.txt`/`neg.txt`). Users and items are the union of both logs,
 * with one id map; duplicates within each log are merged; test interactions that also
 * occur in train are removed from test (and counted in the protocol). A given validation
 * log (train/valid/test as NGCF, LightGCN and MMRec publish them) is kept as the
 * validation split the same way.
 */
export function givenSplit(
  train: InteractionLog,
  test: InteractionLog,
  options: GivenSplitOptions = {},
): Dataset {
  const issues = new IssueCollector();
  if (options.coldStartItems !== undefined)
    issues.oneOf('coldStartItems', options.coldStartItems, ['keep', 'drop']);
  issues.throwIfAny();
  const trainLog = dedupe(train);
  const testLog = dedupe(test);
  const validationLog = options.validation ? dedupe(options.validation) : null;
  const userIdMap = IdMap.fromSourceIds([
    ...trainLog.userIdMap.toArray(),
    ...(validationLog?.userIdMap.toArray() ?? []),
    ...testLog.userIdMap.toArray(),
  ]);
  const itemIdMap = IdMap.fromSourceIds([
    ...trainLog.itemIdMap.toArray(),
    ...(validationLog?.itemIdMap.toArray() ?? []),
    ...testLog.itemIdMap.toArray(),
    ...(options.extraItems ?? []),
  ]);
  const remap = (from: IdMap, to: IdMap): Int32Array =>
    Int32Array.from(from.toArray(), (id) => to.get(id)!);
  const combine = (
    log: InteractionLog,
    users: Int32Array,
    items: Int32Array,
  ): [Int32Array, Int32Array] => {
    const u = new Int32Array(log.length);
    const i = new Int32Array(log.length);
    for (let k = 0; k < log.length; k++) {
      u[k] = users[log.users[k]!]!;
      i[k] = items[log.items[k]!]!;
    }
    return [u, i];
  };
  const [trainUsers, trainItems] = combine(
    trainLog,
    remap(trainLog.userIdMap, userIdMap),
    remap(trainLog.itemIdMap, itemIdMap),
  );
  const [testUsers, testItems] = combine(
    testLog,
    remap(testLog.userIdMap, userIdMap),
    remap(testLog.itemIdMap, itemIdMap),
  );
  const trainMatrix = InteractionMatrix.fromPairs(
    userIdMap.size,
    itemIdMap.size,
    trainUsers,
    trainItems,
    trainLog.timestamps,
  );
  const keep = new Uint8Array(testLog.length);
  let overlap = 0;
  for (let k = 0; k < testLog.length; k++) {
    if (trainMatrix.has(testUsers[k]!, testItems[k]!)) overlap++;
    else keep[k] = 1;
  }
  const policy = options.coldStartItems ?? 'keep';
  const trainDegrees = trainMatrix.itemDegrees();
  let droppedCold = 0;
  if (policy === 'drop') {
    for (let k = 0; k < testLog.length; k++) {
      if (keep[k] && trainDegrees[testItems[k]!] === 0) {
        keep[k] = 0;
        droppedCold++;
      }
    }
  }
  const pick = <T extends Int32Array | Float64Array>(array: T): T =>
    array.filter((_, k) => keep[k] === 1) as T;
  const testMatrix = InteractionMatrix.fromPairs(
    userIdMap.size,
    itemIdMap.size,
    pick(testUsers),
    pick(testItems),
    testLog.timestamps ? pick(testLog.timestamps) : null,
  );
  // A given validation split: interactions already in train are dropped, as for test.
  let validationMatrix: InteractionMatrix | null = null;
  let validationOverlap = 0;
  if (validationLog) {
    const [users, items] = combine(
      validationLog,
      remap(validationLog.userIdMap, userIdMap),
      remap(validationLog.itemIdMap, itemIdMap),
    );
    const kept = new Uint8Array(validationLog.length);
    for (let k = 0; k < validationLog.length; k++) {
      if (trainMatrix.has(users[k]!, items[k]!)) validationOverlap++;
      else kept[k] = 1;
    }
    const take = <T extends Int32Array | Float64Array>(array: T): T =>
      array.filter((_, k) => kept[k] === 1) as T;
    validationMatrix = InteractionMatrix.fromPairs(
      userIdMap.size,
      itemIdMap.size,
      take(users),
      take(items),
      validationLog.timestamps ? take(validationLog.timestamps) : null,
    );
  }
  return {
    name: options.name ?? train.source,
    userIdMap,
    itemIdMap,
    numUsers: userIdMap.size,
    numItems: itemIdMap.size,
    train: trainMatrix,
    validation: validationMatrix,
    test: testMatrix,
    coldStartItems: findColdStartItems(
      trainDegrees,
      validationMatrix ? [validationMatrix, testMatrix] : [testMatrix],
    ),
    protocol: {
      kind: 'given',
      order: 'given',
      seed: 0,
      coldStartItems: policy,
      droppedColdStartInteractions: droppedCold,
      mergedDuplicates:
        train.length -
        trainLog.length +
        test.length -
        testLog.length +
        (validationLog ? options.validation!.length - validationLog.length : 0),
      droppedTrainTestOverlap: overlap,
      ...(validationLog ? { droppedTrainValidationOverlap: validationOverlap } : {}),
      validation: validationLog ? { order: 'given', seed: 0 } : null,
    },
  };
}

/** Options of {@link holdOutValidation}. */
export interface ValidationOptions {
  /** Seed (default: the split's seed). */
  readonly seed?: number;
  /** `latest` (default when train has timestamps) or `random`. */
  readonly order?: 'latest' | 'random';
  /**
   * Hold out from a seeded sample of this many users only (default: every user). The
   * others keep all their training data, and validation measures the sample. Early stopping
   * on 10,000 of Gowalla's 29,858 users then leaves 20,000 more interactions in train: the
   * carve-out from every user cost 0.003-0.004 test Recall@20 there (`studies/2026-12-07-plateau`).
   */
  readonly users?: number;
}

/**
 * Takes one training interaction per user (with at least two; or per user of a seeded
 * sample, see {@link ValidationOptions.users}) out of train into a validation split, as both
 * papers do to tune hyper-parameters and stop early. The latest by timestamp (ties at
 * random) or a random one, seeded per user.
 */
export function holdOutValidation(dataset: Dataset, options: ValidationOptions = {}): Dataset {
  const issues = new IssueCollector();
  const seed = options.seed ?? dataset.protocol.seed;
  issues.integer('seed', seed, 0);
  const train = dataset.train;
  const order = options.order ?? (train.timestamps ? 'latest' : 'random');
  issues.oneOf('order', order, ['latest', 'random']);
  if (order === 'latest' && !train.timestamps)
    issues.add('order', '"latest" needs train timestamps, and there are none');
  if (dataset.validation !== null)
    issues.add('validation', 'the data set already has a validation split');
  if (options.users !== undefined) issues.integer('users', options.users, 1);
  issues.throwIfAny();
  const sampled = validationSample(train.numUsers, options.users, seed);
  const isValidation = new Uint8Array(train.nnz);
  const positions = Int32Array.from({ length: train.nnz }, (_, p) => p);
  for (let u = 0; u < train.numUsers; u++) {
    if (sampled && !sampled[u]) continue;
    const start = train.indptr[u]!;
    const end = train.indptr[u + 1]!;
    if (end - start < 2) continue;
    isValidation[
      pickHeldOut(positions, start, end, train.timestamps, order, Random.stream(seed, 3, u))
    ] = 1;
  }
  const { kept, held } = partition(train, isValidation);
  const trainDegrees = kept.itemDegrees();
  return {
    ...dataset,
    train: kept,
    validation: held,
    coldStartItems: findColdStartItems(trainDegrees, [held, dataset.test]),
    protocol: {
      ...dataset.protocol,
      validation: { order, seed, ...(sampled ? { users: options.users! } : {}) },
    },
  };
}

/** The users {@link holdOutValidation} holds out from (null: every user): a seeded sample. */
function validationSample(
  numUsers: number,
  users: number | undefined,
  seed: number,
): Uint8Array | null {
  if (users === undefined || users >= numUsers) return null;
  const order = Int32Array.from({ length: numUsers }, (_, u) => u);
  const random = Random.stream(seed, 4, 0);
  // A partial Fisher-Yates shuffle: the first `users` entries are a uniform sample.
  for (let k = 0; k < users; k++) {
    const j = k + random.nextInt(numUsers - k);
    const t = order[k]!;
    order[k] = order[j]!;
    order[j] = t;
  }
  const chosen = new Uint8Array(numUsers);
  for (let k = 0; k < users; k++) chosen[order[k]!] = 1;
  return chosen;
}

function checkCommon(issues: IssueCollector, options: SplitOptions): number {
  const seed = options.seed ?? 0;
  issues.integer('seed', seed, 0);
  if (options.coldStartItems !== undefined)
    issues.oneOf('coldStartItems', options.coldStartItems, ['keep', 'drop']);
  return seed;
}

/** Picks the held-out entry among `entries[start..end)`: latest (ties at random) or random. */
function pickHeldOut(
  entries: Int32Array,
  start: number,
  end: number,
  times: Float64Array | null,
  order: 'latest' | 'random',
  random: Random,
): number {
  if (order === 'random') return entries[start + random.nextInt(end - start)]!;
  let best = -Infinity;
  let ties = 0;
  let chosen = -1;
  for (let p = start; p < end; p++) {
    const e = entries[p]!;
    const t = times![e]!;
    if (t > best) {
      best = t;
      ties = 1;
      chosen = e;
    } else if (t === best) {
      ties++;
      if (random.nextInt(ties) === 0) chosen = e; // reservoir: uniform among ties
    }
  }
  return chosen;
}

function assemble(
  log: InteractionLog,
  isTest: Uint8Array,
  protocol: Omit<
    SplitProtocol,
    'droppedColdStartInteractions' | 'droppedTrainTestOverlap' | 'validation'
  >,
): Dataset {
  const numUsers = log.userIdMap.size;
  const numItems = log.itemIdMap.size;
  const trainDegrees = new Int32Array(numItems);
  for (let k = 0; k < log.length; k++) if (!isTest[k]) trainDegrees[log.items[k]!]!++;
  let dropped = 0;
  const inTest = new Uint8Array(log.length);
  for (let k = 0; k < log.length; k++) {
    if (!isTest[k]) continue;
    if (protocol.coldStartItems === 'drop' && trainDegrees[log.items[k]!] === 0) dropped++;
    else inTest[k] = 1;
  }
  const select = (flag: (k: number) => boolean): InteractionMatrix => {
    const idx: number[] = [];
    for (let k = 0; k < log.length; k++) if (flag(k)) idx.push(k);
    return InteractionMatrix.fromPairs(
      numUsers,
      numItems,
      idx.map((k) => log.users[k]!),
      idx.map((k) => log.items[k]!),
      log.timestamps ? idx.map((k) => log.timestamps![k]!) : null,
    );
  };
  const train = select((k) => isTest[k] === 0);
  if (train.nnz === 0)
    throw new DataError(`${log.source}: the split leaves no training interaction`);
  const test = select((k) => inTest[k] === 1);
  return {
    name: log.source,
    userIdMap: log.userIdMap,
    itemIdMap: log.itemIdMap,
    numUsers,
    numItems,
    train,
    validation: null,
    test,
    coldStartItems: findColdStartItems(trainDegrees, [test]),
    protocol: {
      ...protocol,
      droppedColdStartInteractions: dropped,
      droppedTrainTestOverlap: 0,
      validation: null,
    },
  };
}

function partition(
  matrix: InteractionMatrix,
  isHeld: Uint8Array,
): { kept: InteractionMatrix; held: InteractionMatrix } {
  const build = (want: number): InteractionMatrix => {
    const indptr = new Int32Array(matrix.numUsers + 1);
    let n = 0;
    for (let p = 0; p < matrix.nnz; p++) if (isHeld[p] === want) n++;
    const indices = new Int32Array(n);
    const times = matrix.timestamps ? new Float64Array(n) : null;
    let at = 0;
    for (let u = 0; u < matrix.numUsers; u++) {
      for (let p = matrix.indptr[u]!; p < matrix.indptr[u + 1]!; p++) {
        if (isHeld[p] !== want) continue;
        indices[at] = matrix.indices[p]!;
        if (times) times[at] = matrix.timestamps![p]!;
        at++;
      }
      indptr[u + 1] = at;
    }
    return new InteractionMatrix(matrix.numUsers, matrix.numItems, indptr, indices, times);
  };
  return { kept: build(0), held: build(1) };
}

function findColdStartItems(
  trainDegrees: Int32Array,
  heldOut: readonly InteractionMatrix[],
): Int32Array {
  const cold = new Uint8Array(trainDegrees.length);
  for (const matrix of heldOut) {
    for (let p = 0; p < matrix.nnz; p++) {
      const i = matrix.indices[p]!;
      if (trainDegrees[i] === 0) cold[i] = 1;
    }
  }
  const out: number[] = [];
  for (let i = 0; i < cold.length; i++) if (cold[i]) out.push(i);
  return Int32Array.from(out);
}

/** Counts of a {@link Dataset}, as returned by {@link describe}. */
export interface DatasetDescription {
  readonly name: string;
  readonly users: number;
  readonly items: number;
  /** Train + validation + test interactions. */
  readonly interactions: number;
  /** interactions / (users x items). */
  readonly density: number;
  readonly train: SplitCounts;
  readonly validation: SplitCounts | null;
  readonly test: SplitCounts;
  /** Items with no training interaction that occur in validation or test. */
  readonly coldStartItems: number;
  /** Test interactions whose item is cold-start. */
  readonly coldStartTestInteractions: number;
  readonly protocol: SplitProtocol;
}

/** Interactions and users with at least one interaction, for one split. */
export interface SplitCounts {
  readonly interactions: number;
  readonly users: number;
  readonly items: number;
}

function splitCounts(matrix: InteractionMatrix): SplitCounts {
  let items = 0;
  for (const d of matrix.itemDegrees()) if (d > 0) items++;
  return { interactions: matrix.nnz, users: matrix.activeUsers(), items };
}

/** Users, items, interactions, density, per-split and cold-start counts of a data set. */
export function describe(dataset: Dataset): DatasetDescription {
  const train = splitCounts(dataset.train);
  const validation = dataset.validation ? splitCounts(dataset.validation) : null;
  const test = splitCounts(dataset.test);
  const interactions = train.interactions + (validation?.interactions ?? 0) + test.interactions;
  const cold = new Uint8Array(dataset.numItems);
  for (const i of dataset.coldStartItems) cold[i] = 1;
  let coldTest = 0;
  for (const i of dataset.test.indices) coldTest += cold[i]!;
  return {
    name: dataset.name,
    users: dataset.numUsers,
    items: dataset.numItems,
    interactions,
    density: interactions / (dataset.numUsers * dataset.numItems),
    train,
    validation,
    test,
    coldStartItems: dataset.coldStartItems.length,
    coldStartTestInteractions: coldTest,
    protocol: dataset.protocol,
  };
}

/** A short multi-line text rendering of {@link describe}'s result. */
export function formatDescription(d: DatasetDescription): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const split = (name: string, s: SplitCounts | null): string =>
    s
      ? `  ${name.padEnd(10)} ${n(s.interactions).padStart(11)} interactions, ${n(s.users)} users, ${n(s.items)} items`
      : '';
  const p = d.protocol;
  return [
    `${d.name}`,
    `  users ${n(d.users)}, items ${n(d.items)}, interactions ${n(d.interactions)}, density ${(d.density * 100).toFixed(4)}%`,
    split('train', d.train),
    split('validation', d.validation),
    split('test', d.test),
    `  cold-start items ${n(d.coldStartItems)} (${n(d.coldStartTestInteractions)} test interactions, policy "${p.coldStartItems}")`,
    `  split: ${p.kind}, order ${p.order}, seed ${p.seed}${p.testFraction === undefined ? '' : `, test fraction ${p.testFraction}`}` +
      (p.validation
        ? p.validation.order === 'given'
          ? '; validation: given'
          : `; validation: ${p.validation.order}, seed ${p.validation.seed}`
        : ''),
  ]
    .filter((line) => line !== '')
    .join('\n');
}
