import type { InteractionMatrix } from '@advrec/data';
import { ConfigError, didYouMean, globalRegistry } from '@advrec/data';
import { ItemPop, ITEM_POP_MODEL_NAME } from './item-pop.js';
import { MatrixFactorization, MF_MODEL_NAME } from './mf.js';
import type { MatrixFactorizationConfig } from './mf.js';
import type { JsonObject, Model, ModelState } from './model.js';
import { VBPR_MODEL_NAME, VisualBPR } from './vbpr/index.js';
import type { VisualBPRConfig } from './vbpr/index.js';
import { MODEL_SPECIFICATION_VERSION, SUPPORTED_MODEL_SPECIFICATION_VERSIONS } from './model.js';
import type { ModelSpecificationVersion } from './model.js';

/** What a model factory gets at creation. */
export interface ModelContext {
  readonly numUsers: number;
  readonly numItems: number;
  /** The training interactions (ItemPop counts them; feature-aware models may ignore them). */
  readonly train: InteractionMatrix;
  /** Seed for the initialisation, used when the config has none. */
  readonly seed: number;
  /** Item content features aligned to dense item ids (`numItems x dimension`), for visual models. */
  readonly itemFeatures?: { readonly data: Float32Array; readonly dimension: number };
}

/**
 * A registered model kind: how to create one from a config and restore one from a
 * checkpoint. Plugins register theirs with {@link registerModel}.
 */
export interface ModelFactory {
  readonly specificationVersion: ModelSpecificationVersion;
  readonly modelName: string;
  /** One line for `--help` and error messages. */
  readonly description: string;
  create(context: ModelContext, config: JsonObject): Model;
  restore(state: ModelState): Model;
}

/** Shared by every installed copy of this package (`Symbol.for('advrec.registry.model')`). */
const registry = globalRegistry<ModelFactory>('model');

/**
 * Adds a factory to one of the model registries: its contract version must be one this
 * package implements, and a different factory under a taken name throws.
 * @internal
 */
export function addToRegistry<F extends { specificationVersion: string; modelName: string }>(
  registry: Map<string, F>,
  factory: F,
  kind: string,
): void {
  if (
    !(SUPPORTED_MODEL_SPECIFICATION_VERSIONS as readonly string[]).includes(
      factory.specificationVersion,
    )
  )
    throw new ConfigError([
      {
        path: `models.${factory.modelName}.specificationVersion`,
        message: `unsupported ${String(factory.specificationVersion)}, this advrec implements ${SUPPORTED_MODEL_SPECIFICATION_VERSIONS.join(' and ')}`,
      },
    ]);
  if (registry.has(factory.modelName) && registry.get(factory.modelName) !== factory)
    throw new ConfigError([
      { path: 'model', message: `${kind} named "${factory.modelName}" is already registered` },
    ]);
  registry.set(factory.modelName, factory);
}

/** Registers a model kind under its name (replacing none: a duplicate name throws). */
export function registerModel(factory: ModelFactory): void {
  addToRegistry(registry, factory, 'a model');
}

/** The factory registered under `name`; the error lists what is registered. */
export function getModelFactory(name: string): ModelFactory {
  const factory = registry.get(name);
  if (!factory)
    throw new ConfigError([
      {
        path: 'model',
        message: `unknown model "${name}"${didYouMean(name, registry.keys())}; registered: ${[...registry.keys()].sort().join(', ')}`,
      },
    ]);
  return factory;
}

/** Names and descriptions of the registered models. */
export function listModels(): { modelName: string; description: string }[] {
  return [...registry.values()].map((f) => ({
    modelName: f.modelName,
    description: f.description,
  }));
}

/** Creates a model by registered name. */
export function createModel(name: string, context: ModelContext, config: JsonObject = {}): Model {
  return getModelFactory(name).create(context, config);
}

/** A built-in kind, unless another installed copy of this package registered it first. */
function registerBuiltIn(factory: ModelFactory): void {
  if (!registry.has(factory.modelName)) registerModel(factory);
}

/** Rebuilds a model from a checkpoint state through the registry. */
export function restoreModel(state: ModelState): Model {
  return getModelFactory(state.modelName).restore(state);
}

registerBuiltIn({
  specificationVersion: MODEL_SPECIFICATION_VERSION,
  modelName: MF_MODEL_NAME,
  description:
    'matrix factorisation, y_ui = p_u . q_i (+ b_i with itemBias) (embeddingSize, initStd, seed, itemBias)',
  create: (context, config) =>
    new MatrixFactorization(context, {
      seed: context.seed,
      ...(config as MatrixFactorizationConfig),
    }),
  restore: (state) => MatrixFactorization.restore(state),
});

registerBuiltIn({
  specificationVersion: MODEL_SPECIFICATION_VERSION,
  modelName: ITEM_POP_MODEL_NAME,
  description: 'items ranked by training popularity (non-personalised baseline)',
  create: (context) => new ItemPop(context.train),
  restore: (state) => ItemPop.restore(state),
});

registerBuiltIn({
  specificationVersion: MODEL_SPECIFICATION_VERSION,
  modelName: VBPR_MODEL_NAME,
  description:
    'visually-aware BPR over item features: p_u . (q_i + E c_i) (userVisual shared, AMR Eq. 4) or p_u . q_i + theta_u . E c_i (separate, VBPR)',
  create: (context, config) =>
    new VisualBPR(
      context,
      context.itemFeatures ?? null,
      { seed: context.seed, ...(config as VisualBPRConfig) },
      { train: context.train },
    ),
  restore: (state) => VisualBPR.restore(state),
});
