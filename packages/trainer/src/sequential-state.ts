/**
 * A sequential run's training state in a checkpoint: Adam's moments and the best epoch's
 * tables as extra tables, the rest as metadata, so that `last.ckpt` continues the run
 * exactly ({@link SequenceTrainConfig.resume}).
 */
import { DataFormatError } from '@advrec/data';
import { createTable } from '@advrec/models';
import type { JsonObject, ParameterTable } from '@advrec/models';
import type {
  SequenceEpochEvent,
  SequenceOptimizerState,
  SequenceTrainState,
} from './sequential.js';

const M = 'adam.m/';
const V = 'adam.v/';
const BEST = 'best/';
const BEST_M = 'best.adam.m/';
const BEST_V = 'best.adam.v/';

function copyOf(name: string, like: ParameterTable, values: Float32Array): ParameterTable {
  const table = createTable(name, like.side, like.rows, like.dimension);
  table.values.set(values);
  return table;
}

function momentTables(
  optimizer: SequenceOptimizerState,
  tables: readonly ParameterTable[],
  prefixes: readonly [string, string],
): ParameterTable[] {
  const out: ParameterTable[] = [];
  for (const table of tables) {
    const moments = optimizer.moments.get(table.name);
    if (!moments) continue;
    out.push(copyOf(prefixes[0] + table.name, table, moments.m));
    out.push(copyOf(prefixes[1] + table.name, table, moments.v));
  }
  return out;
}

/**
 * The extra tables and metadata that record `state` beside a model's tables in a checkpoint
 * (`tables`: the model's, for the shapes).
 */
export function sequenceTrainStateToCheckpoint(
  state: SequenceTrainState,
  tables: readonly ParameterTable[],
): { readonly extraTables: ParameterTable[]; readonly metadata: JsonObject } {
  const extraTables = momentTables(state.optimizer, tables, [M, V]);
  if (state.best) {
    for (const t of state.best.tables) extraTables.push(copyOf(BEST + t.name, t, t.values));
    extraTables.push(...momentTables(state.best.optimizer, tables, [BEST_M, BEST_V]));
  }
  const metadata = {
    startEpoch: state.startEpoch,
    step: state.optimizer.step,
    sinceBest: state.sinceBest,
    epochs: state.epochs.map((e) => ({ ...e })),
    best: state.best
      ? {
          epoch: state.best.epoch,
          hitRate: state.best.hitRate,
          ndcg: state.best.ndcg,
          step: state.best.optimizer.step,
        }
      : null,
  };
  return { extraTables, metadata: JSON.parse(JSON.stringify(metadata)) as JsonObject };
}

/**
 * The state {@link sequenceTrainStateToCheckpoint} recorded, from a checkpoint's extra tables
 * and metadata; `file` names the checkpoint in errors.
 */
export function sequenceTrainStateFromCheckpoint(
  extraTables: readonly ParameterTable[],
  metadata: JsonObject,
  tables: readonly ParameterTable[],
  file: string,
): SequenceTrainState {
  const record = metadata as {
    startEpoch?: unknown;
    step?: unknown;
    sinceBest?: unknown;
    epochs?: unknown;
    best?: { epoch: number; hitRate: number; ndcg: number; step: number } | null;
  };
  const integer = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  if (
    !integer(record.startEpoch) ||
    !integer(record.step) ||
    !integer(record.sinceBest) ||
    !Array.isArray(record.epochs)
  )
    throw new DataFormatError(
      { file },
      'a sequential training state (startEpoch, step, sinceBest, epochs)',
      JSON.stringify(Object.keys(record)),
    );
  const byName = new Map(extraTables.map((t) => [t.name, t]));
  const optimizer = (prefixes: readonly [string, string], step: number): SequenceOptimizerState => {
    const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (const table of tables) {
      const m = byName.get(prefixes[0] + table.name);
      const v = byName.get(prefixes[1] + table.name);
      if (!m || !v) continue;
      moments.set(table.name, { m: Float32Array.from(m.values), v: Float32Array.from(v.values) });
    }
    return { step, moments };
  };
  let best: SequenceTrainState['best'] = null;
  if (record.best) {
    const bestTables = tables.map((t) => {
      const saved = byName.get(BEST + t.name);
      if (!saved)
        throw new DataFormatError({ file }, `the best epoch's table ${t.name}`, 'missing');
      return copyOf(t.name, t, saved.values);
    });
    best = {
      epoch: record.best.epoch,
      hitRate: record.best.hitRate,
      ndcg: record.best.ndcg,
      tables: bestTables,
      optimizer: optimizer([BEST_M, BEST_V], record.best.step),
    };
  }
  return {
    startEpoch: record.startEpoch,
    epochs: record.epochs as SequenceEpochEvent[],
    optimizer: optimizer([M, V], record.step),
    best,
    sinceBest: record.sinceBest,
  };
}
