import { DataError } from './errors.js';

/**
 * Source ids (as written in the data files) to dense 0-based ids and back.
 *
 * Dense ids follow the sorted order of the source ids (numeric order when every id is
 * an integer, code-point order otherwise), so they do not depend on the order of the
 * lines in a file. When the source ids are already `0..n-1`, dense id = source id.
 */
export class IdMap {
  private readonly sourceIds: readonly string[];
  private readonly index: Map<string, number>;

  private constructor(sourceIds: readonly string[]) {
    this.sourceIds = sourceIds;
    this.index = new Map();
    for (let i = 0; i < sourceIds.length; i++) this.index.set(sourceIds[i]!, i);
  }

  /** Builds a map over the given distinct source ids, sorted as described above. */
  static fromSourceIds(ids: Iterable<string>): IdMap {
    const unique = [...new Set(ids)];
    return new IdMap(sortSourceIds(unique));
  }

  /** Builds a map that keeps the given order (dense id = position). Ids must be distinct. */
  static inOrder(ids: readonly string[]): IdMap {
    const map = new IdMap([...ids]);
    if (map.index.size !== ids.length)
      throw new DataError('IdMap.inOrder: source ids are not distinct');
    return map;
  }

  /** Number of ids. */
  get size(): number {
    return this.sourceIds.length;
  }

  /** True when every source id is a decimal integer. */
  get numeric(): boolean {
    return this.sourceIds.every((id) => INTEGER.test(id));
  }

  /** Dense id of a source id, or `undefined` when unknown. */
  get(sourceId: string | number): number | undefined {
    return this.index.get(String(sourceId));
  }

  /** Dense id of a source id; throws {@link DataError} naming the id when unknown. */
  toDense(sourceId: string | number, what = 'id'): number {
    const dense = this.index.get(String(sourceId));
    if (dense === undefined)
      throw new DataError(`unknown ${what} ${JSON.stringify(String(sourceId))}`);
    return dense;
  }

  /** Source id of a dense id. */
  toSource(denseId: number): string {
    const id = this.sourceIds[denseId];
    if (id === undefined)
      throw new DataError(`dense id ${denseId} is out of range [0, ${this.size})`);
    return id;
  }

  /** True when the source id is known. */
  has(sourceId: string | number): boolean {
    return this.index.has(String(sourceId));
  }

  /** All source ids in dense order. */
  toArray(): readonly string[] {
    return this.sourceIds;
  }

  /**
   * Keeps only the dense ids for which `keep[d]` is non-zero. Returns the new map and
   * the remapping `old dense id -> new dense id` (-1 for dropped ids).
   */
  filter(keep: ArrayLike<number>): { map: IdMap; remap: Int32Array } {
    const remap = new Int32Array(this.size).fill(-1);
    const kept: string[] = [];
    for (let d = 0; d < this.size; d++) {
      if (keep[d]) {
        remap[d] = kept.length;
        kept.push(this.sourceIds[d]!);
      }
    }
    return { map: new IdMap(kept), remap };
  }
}

const INTEGER = /^-?\d+$/;

function sortSourceIds(ids: string[]): string[] {
  if (ids.every((id) => INTEGER.test(id) && id.length < 16)) {
    return ids.sort((a, b) => Number(a) - Number(b));
  }
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Interns source ids while a file is read: provisional ids in first-seen order, then
 * `finish()` sorts them into an {@link IdMap} and gives the provisional -> dense remap.
 * @internal
 */
export class IdInterner {
  private readonly ids = new Map<string, number>();
  private readonly numericIds = new Map<number, number>();
  private readonly order: string[] = [];

  intern(sourceId: string): number {
    let id = this.ids.get(sourceId);
    if (id === undefined) {
      id = this.order.length;
      this.ids.set(sourceId, id);
      this.order.push(sourceId);
    }
    return id;
  }

  /** Interns an integer id (faster than strings; the source id is its decimal form). */
  internInteger(sourceId: number): number {
    let id = this.numericIds.get(sourceId);
    if (id === undefined) {
      id = this.intern(String(sourceId));
      this.numericIds.set(sourceId, id);
    }
    return id;
  }

  get size(): number {
    return this.order.length;
  }

  finish(): { map: IdMap; remap: Int32Array } {
    const map = IdMap.fromSourceIds(this.order);
    const remap = new Int32Array(this.order.length);
    for (let p = 0; p < this.order.length; p++) remap[p] = map.get(this.order[p]!)!;
    return { map, remap };
  }
}
