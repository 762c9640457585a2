import { IdInterner, type IdMap } from './id-map.js';

/**
 * A log of (user, item[, rating][, timestamp]) interactions as read from a file, with
 * dense 0-based ids and the maps back to the source ids. Parallel typed arrays, one
 * entry per interaction; duplicates are kept until {@link dedupe} merges them.
 */
export interface InteractionLog {
  /** Where the log came from (a file path or a description). */
  readonly source: string;
  /** Source user id <-> dense user id. */
  readonly userIdMap: IdMap;
  /** Source item id <-> dense item id. */
  readonly itemIdMap: IdMap;
  /** Dense user id of each interaction. */
  readonly users: Int32Array;
  /** Dense item id of each interaction. */
  readonly items: Int32Array;
  /** Rating of each interaction, or `null` when the file has none. */
  readonly ratings: Float32Array | null;
  /** Timestamp of each interaction (seconds or any monotone unit), or `null` when the file has none. */
  readonly timestamps: Float64Array | null;
  /** Number of interactions. */
  readonly length: number;
}

/** Growable Int32/Float arrays used while a file is read. @internal */
class Growable<T extends Int32Array | Float32Array | Float64Array> {
  data: T;
  length = 0;
  constructor(private readonly make: (n: number) => T) {
    this.data = make(1024);
  }
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = this.make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  finish(): T {
    return this.data.slice(0, this.length) as T;
  }
}

/**
 * Builds an {@link InteractionLog} while a file is streamed: interns source ids, stores
 * provisional ids, then sorts the id maps and remaps on `finish()`.
 * @internal
 */
export class InteractionLogBuilder {
  private readonly userInterner = new IdInterner();
  private readonly itemInterner = new IdInterner();
  private readonly users = new Growable((n) => new Int32Array(n));
  private readonly items = new Growable((n) => new Int32Array(n));
  private readonly ratings: Growable<Float32Array> | null;
  private readonly timestamps: Growable<Float64Array> | null;

  constructor(
    private readonly source: string,
    withRatings: boolean,
    withTimestamps: boolean,
  ) {
    this.ratings = withRatings ? new Growable((n) => new Float32Array(n)) : null;
    this.timestamps = withTimestamps ? new Growable((n) => new Float64Array(n)) : null;
  }

  /** Registers a user that may have no interaction (e.g. an empty list line). */
  addUser(sourceUser: string): number {
    return this.userInterner.intern(sourceUser);
  }

  /** Registers an item that may have no interaction. */
  addItem(sourceItem: string): number {
    return this.itemInterner.intern(sourceItem);
  }

  /** Registers a user given as an integer id. */
  addIntegerUser(sourceUser: number): number {
    return this.userInterner.internInteger(sourceUser);
  }

  /** Registers an item given as an integer id. */
  addIntegerItem(sourceItem: number): number {
    return this.itemInterner.internInteger(sourceItem);
  }

  push(user: number, item: number, rating = Number.NaN, timestamp = Number.NaN): void {
    this.users.push(user);
    this.items.push(item);
    this.ratings?.push(rating);
    this.timestamps?.push(timestamp);
  }

  get length(): number {
    return this.users.length;
  }

  finish(): InteractionLog {
    const { map: userIdMap, remap: userRemap } = this.userInterner.finish();
    const { map: itemIdMap, remap: itemRemap } = this.itemInterner.finish();
    const users = this.users.finish();
    const items = this.items.finish();
    for (let k = 0; k < users.length; k++) {
      users[k] = userRemap[users[k]!]!;
      items[k] = itemRemap[items[k]!]!;
    }
    return {
      source: this.source,
      userIdMap,
      itemIdMap,
      users,
      items,
      ratings: this.ratings?.finish() ?? null,
      timestamps: this.timestamps?.finish() ?? null,
      length: users.length,
    };
  }
}
