/** VBPR's parameter tables and its start from a trained MF (AMR Algorithm 1). */
import { ConfigError } from '@advrec/data';
import type { InteractionMatrix } from '@advrec/data';
import { ITEM_EMBEDDINGS, USER_EMBEDDINGS } from '../mf.js';
import { createTable, initializeTruncatedNormal } from '../tables.js';
import type { ParameterTable } from '../tables.js';
import { FEATURE_PROJECTION, USER_VISUAL_EMBEDDINGS, VISUAL_BIAS } from './config.js';
import type { IdEmbeddingSource, ResolvedVisualBPRConfig } from './config.js';

/** A given table of this name and shape (a restore), null when none; a wrong shape is refused. */
export type TableLookup = (
  name: string,
  side: ParameterTable['side'],
  rows: number,
  dimension: number,
) => ParameterTable | null;

/** Looks tables up by name in `given`, refusing one of the wrong shape. @internal */
export function tableLookup(given: ReadonlyMap<string, ParameterTable>): TableLookup {
  return (name, _side, rows, dimension) => {
    const t = given.get(name);
    if (!t) return null;
    if (t.rows !== rows || t.dimension !== dimension)
      throw new ConfigError([
        {
          path: `tables.${name}`,
          message: `expected ${rows} x ${dimension}, found ${t.rows} x ${t.dimension}`,
        },
      ]);
    return t;
  };
}

/** VBPR's trainable tables. @internal */
export interface VbprTrainableTables {
  readonly userEmbeddings: ParameterTable;
  readonly itemEmbeddings: ParameterTable;
  readonly userVisualEmbeddings: ParameterTable | null;
  readonly featureProjection: ParameterTable;
  readonly visualBias: ParameterTable | null;
}

/** Zeroes the ID embedding of every item without a training interaction (cold start). */
export function zeroColdItemEmbeddings(
  itemEmbeddings: ParameterTable,
  train: InteractionMatrix,
): void {
  const degrees = train.itemDegrees();
  const k = itemEmbeddings.dimension;
  for (let i = 0; i < itemEmbeddings.rows; i++)
    if (degrees[i] === 0) itemEmbeddings.values.fill(0, i * k, (i + 1) * k);
}

/**
 * The trainable tables: the given ones (restore), else truncated-normal initialised from the
 * config's seed (one stream per table); with `train`, cold-start items' Q rows zeroed.
 * @internal
 */
export function vbprParameterTables(
  shape: { numUsers: number; numItems: number; featureSize: number; shared: boolean },
  r: ResolvedVisualBPRConfig,
  take: TableLookup,
  train?: InteractionMatrix,
): VbprTrainableTables {
  const { numUsers, numItems, featureSize: d, shared } = shape;
  const k = r.embeddingSize;
  const init = (t: ParameterTable, key: number, std: number): ParameterTable => {
    initializeTruncatedNormal(t, r.seed, key, std);
    return t;
  };
  const itemEmbeddings =
    take(ITEM_EMBEDDINGS, 'item', numItems, k) ??
    init(createTable(ITEM_EMBEDDINGS, 'item', numItems, k), 2, r.initStd);
  const tables: VbprTrainableTables = {
    userEmbeddings:
      take(USER_EMBEDDINGS, 'user', numUsers, k) ??
      init(createTable(USER_EMBEDDINGS, 'user', numUsers, k), 1, r.initStd),
    itemEmbeddings,
    userVisualEmbeddings: shared
      ? null
      : (take(USER_VISUAL_EMBEDDINGS, 'user', numUsers, k) ??
        init(createTable(USER_VISUAL_EMBEDDINGS, 'user', numUsers, k), 3, r.initStd)),
    featureProjection:
      take(FEATURE_PROJECTION, 'dense', d, k) ??
      init(createTable(FEATURE_PROJECTION, 'dense', d, k), 4, r.projectionInitStd),
    visualBias: r.visualBias
      ? (take(VISUAL_BIAS, 'dense', d, 1) ?? createTable(VISUAL_BIAS, 'dense', d, 1))
      : null,
  };
  if (train) zeroColdItemEmbeddings(itemEmbeddings, train);
  return tables;
}

/**
 * Copies a trained MF's user and item embeddings into a VBPR's P and Q; with `train`, items
 * without a training interaction get a zero Q row, as cold-start items are scored. @internal
 */
export function copyIdEmbeddings(
  target: {
    readonly numUsers: number;
    readonly numItems: number;
    readonly embeddingSize: number;
    readonly userEmbeddings: ParameterTable;
    readonly itemEmbeddings: ParameterTable;
  },
  mf: IdEmbeddingSource,
  train?: InteractionMatrix,
): void {
  if (
    mf.numUsers !== target.numUsers ||
    mf.numItems !== target.numItems ||
    mf.embeddingSize !== target.embeddingSize
  )
    throw new ConfigError([
      {
        path: 'mf',
        message: `an MF of ${mf.numUsers} users x ${mf.numItems} items, K = ${mf.embeddingSize}, cannot start a VBPR of ${target.numUsers} x ${target.numItems}, K = ${target.embeddingSize}`,
      },
    ]);
  target.userEmbeddings.values.set(mf.userEmbeddings.values);
  target.itemEmbeddings.values.set(mf.itemEmbeddings.values);
  if (train) zeroColdItemEmbeddings(target.itemEmbeddings, train);
}
