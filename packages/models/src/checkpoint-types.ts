/** The shapes of a checkpoint, apart from the formats that read and write them. */
import type { JsonObject, Model, ModelState } from './model.js';
import type { ParameterTable } from './tables.js';

/**
 * What a checkpoint stores of a model: its name, contract version, config, sizes and tables
 * (a pairwise {@link Model} and a sequential model both have them).
 */
export type CheckpointedModel = Pick<
  Model,
  'modelName' | 'specificationVersion' | 'config' | 'numUsers' | 'numItems' | 'tables'
>;

/** A checkpoint: the model's state plus optional extra tables (optimiser state) and metadata. */
export interface Checkpoint {
  readonly model: ModelState;
  /** Extra tables saved beside the model's (e.g. Adagrad accumulators), by name. */
  readonly extraTables: readonly ParameterTable[];
  /** Free JSON (training config, epoch, metrics, dataset fingerprint). */
  readonly metadata: JsonObject;
}
