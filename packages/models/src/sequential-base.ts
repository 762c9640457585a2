import { ConfigError } from '@advrec/data';
import type { JsonObject, ModelSpecificationVersion, PerturbableSurface } from './model.js';
import {
  SEQUENCE_ITEM_TABLE,
  SEQUENTIAL_MODEL_SPECIFICATION_VERSION,
  restoreTables,
} from './sequential.js';
import type {
  SequenceEncoder,
  SequenceGradientKernel,
  SequenceKernelContext,
  SequentialModel,
} from './sequential.js';
import { ChunkedSequenceKernel } from './sequence-kernel.js';
import type { CreatePassKernel } from './sequence-kernel.js';
import type { ParameterTable } from './tables.js';

/** What every sequential model's resolved config has. */
export interface SequentialModelBaseConfig {
  readonly maxLength: number;
  readonly dimension: number;
}

/** What a {@link SequentialModelBase} is built from. */
export interface SequentialModelParts<C extends SequentialModelBaseConfig> {
  readonly modelName: string;
  /** The model's name in errors (`SASRec`). */
  readonly label: string;
  readonly numItems: number;
  /** The resolved config (`config` is a JSON copy of it). */
  readonly resolved: C;
  /** The model's tables, freshly created (`itemEmbeddings` among them). */
  readonly tables: readonly ParameterTable[];
  /** Initialises fresh tables (not called when `restore` is given). */
  initialize(tables: readonly ParameterTable[]): void;
  /** A checkpoint's tables to restore instead. */
  readonly restore?: readonly ParameterTable[] | undefined;
  readonly encode: SequenceEncoder;
  /**
   * The model's hand-written pass (its built module and `createPassKernel`): the model then
   * offers {@link SequentialModel.createGradientKernel}, chunked over worker threads.
   */
  readonly kernel?: { readonly module: URL; readonly createPassKernel: CreatePassKernel };
}

/**
 * What SASRec, GRU4Rec and plugin sequential models share: the contract's fields from a
 * resolved config and a table list, the `numItems` check, restoring or initialising the
 * tables, the item table as the one surface, and a hand-written kernel run chunked on worker
 * threads ({@link ChunkedSequenceKernel}) when the model has one.
 */
export class SequentialModelBase<C extends SequentialModelBaseConfig> implements SequentialModel {
  readonly kind = 'sequential' as const;
  readonly specificationVersion: ModelSpecificationVersion = SEQUENTIAL_MODEL_SPECIFICATION_VERSION;
  readonly modelName: string;
  readonly config: JsonObject;
  readonly numUsers = 0;
  readonly numItems: number;
  readonly maxLength: number;
  readonly dimension: number;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[];
  readonly surfaces: readonly PerturbableSurface[];
  readonly encode: SequenceEncoder;
  readonly resolved: C;
  /**
   * Present only for a model given a hand-written pass: its forward and backward, dense
   * products on the context's Gemm, passes cut into fixed chunks run on `threads` worker
   * threads ({@link ChunkedSequenceKernel}), the same loss and gradients as differentiating
   * {@link encode}, identical on any thread count. Without it the trainer differentiates the
   * encoder and records that the model brings no kernel.
   */
  readonly createGradientKernel?: (context: SequenceKernelContext) => SequenceGradientKernel;

  constructor(parts: SequentialModelParts<C>) {
    const { numItems, resolved } = parts;
    if (!(Number.isInteger(numItems) && numItems >= 1))
      throw new ConfigError([
        { path: 'numItems', message: `must be a positive integer, got ${numItems}` },
      ]);
    this.modelName = parts.modelName;
    this.resolved = resolved;
    this.config = { ...resolved } as unknown as JsonObject;
    this.numItems = numItems;
    this.maxLength = resolved.maxLength;
    this.dimension = resolved.dimension;
    if (parts.restore) restoreTables(parts.label, parts.tables, parts.restore);
    else parts.initialize(parts.tables);
    this.tables = parts.tables;
    this.trainableTables = parts.tables.map((t) => t.name);
    this.surfaces = [
      { name: SEQUENCE_ITEM_TABLE, side: 'item', rows: numItems, dimension: resolved.dimension },
    ];
    this.encode = parts.encode;
    const kernel = parts.kernel;
    if (kernel)
      this.createGradientKernel = (context) =>
        new ChunkedSequenceKernel({
          values: new Map(this.tables.map((t) => [t.name, t.values])),
          config: { ...this.resolved } as unknown as JsonObject,
          module: kernel.module,
          createPassKernel: kernel.createPassKernel,
          gemm: context.gemm,
          threads: context.threads,
        });
  }
}
