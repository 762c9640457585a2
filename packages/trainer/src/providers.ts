/**
 * The built-in engine providers: the fused MF kernel (priority 100) and the generic engine
 * over the Model contract (priority 0). Each declares what it trains; the trainer asks
 * them in priority order ({@link selectEngineProvider}).
 */
import { getAdversary } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { ITEM_BIAS, ITEM_EMBEDDINGS, MF_MODEL_NAME, USER_EMBEDDINGS } from '@advrec/models';
import type { Model, ParameterTable } from '@advrec/models';
import { getEngineProvider, registerEngineProvider } from './engine.js';
import type { EngineProvider, EngineSupport } from './engine.js';
import { GenericEngine } from './generic-engine.js';
import { MfEngine, planLayout } from './mf-engine.js';
import { SgdTriplesEngine } from './sgd-engine.js';
import type { MfTables } from './mf-engine.js';

/** The adversaries the fused kernel implements natively (its declaration). */
export const FUSED_MF_ADVERSARIES = ['none', 'fgm', 'fgsm', 'random'] as const;

/** The most bytes one WebAssembly (wasm32) memory holds: 65,536 pages of 64 KiB. */
export const MAX_WASM_MEMORY_BYTES = 65536 * 65536;

const refuse = (reason: string): EngineSupport => ({ supported: false, reason });
const SUPPORTED: EngineSupport = { supported: true };

/** The model's MF tables when it is MF (`y = p_u . q_i`, both tables trained), else a reason. */
function mfTables(model: Model): MfTables | string {
  if (model.modelName !== MF_MODEL_NAME)
    return `trains ${MF_MODEL_NAME} (y = p_u . q_i) only, not ${model.modelName}`;
  const table = (name: string): ParameterTable | undefined =>
    model.tables.find((t) => t.name === name);
  const p = table(USER_EMBEDDINGS);
  const q = table(ITEM_EMBEDDINGS);
  const b = table(ITEM_BIAS);
  const trainable = [...model.trainableTables].sort().join(',');
  const expected = [...(b ? [ITEM_BIAS] : []), ITEM_EMBEDDINGS, USER_EMBEDDINGS].join(',');
  if (!p || !q || p.dimension !== q.dimension || trainable !== expected)
    return `needs exactly the trainable tables ${USER_EMBEDDINGS} and ${ITEM_EMBEDDINGS} of one dimension (and ${ITEM_BIAS})`;
  return {
    numUsers: model.numUsers,
    numItems: model.numItems,
    embeddingSize: p.dimension,
    userEmbeddings: p,
    itemEmbeddings: q,
    ...(b ? { itemBias: b } : {}),
  };
}

/** Whether `adversary` is the registered built-in the kernel re-implements. */
function isFusedAdversary(adversary: Adversary): boolean {
  return (
    (FUSED_MF_ADVERSARIES as readonly string[]).includes(adversary.adversaryName) &&
    getAdversary(adversary.adversaryName) === adversary
  );
}

/**
 * The fused WebAssembly SIMD kernel: MF with the single-step adversaries (fgm, fgsm, random, none), mini-batch
 * (deterministic or Hogwild) or classic per-triple SGD, over worker threads.
 */
export const fusedMfEngineProvider: EngineProvider = {
  name: 'fused-mf',
  priority: 100,
  description: `fused WebAssembly SIMD kernel for MF with adversaries ${FUSED_MF_ADVERSARIES.join(', ')}, worker threads`,
  supports(model, adversary, config) {
    const tables = mfTables(model);
    if (typeof tables === 'string') return refuse(tables);
    if (Object.keys(config.tables).length > 0)
      return refuse(
        'has one learning rate and one L2 for every table; per-table ones (tables) run on the generic engine',
      );
    if (!isFusedAdversary(adversary))
      return refuse(
        `implements the single-step adversaries ${FUSED_MF_ADVERSARIES.join(', ')}; ${adversary.adversaryName} is not one of them`,
      );
    // One WebAssembly memory holds at most 4 GiB: the tables, their optimiser state and the
    // batch scratch must fit (per-triple SGD: at least the tables).
    const bytes =
      config.algorithm === 'sgd-triples'
        ? (tables.numUsers + tables.numItems) * Math.ceil(tables.embeddingSize / 4) * 16
        : planLayout(
            tables.numUsers,
            tables.numItems,
            tables.embeddingSize,
            config.batchSize,
            config.optimizer.name,
            config.mode === 'hogwild' ? config.threads : 1,
            !!tables.itemBias,
          ).bytes;
    if (bytes > MAX_WASM_MEMORY_BYTES)
      return refuse(
        `needs ${(bytes / 2 ** 30).toFixed(1)} GiB of WebAssembly memory for ${tables.numUsers} users and ${tables.numItems} items at embedding size ${tables.embeddingSize}, more than the 4 GiB one WebAssembly memory holds`,
      );
    return SUPPORTED;
  },
  async create({ model, sampler, config, states, step }) {
    const tables = mfTables(model) as MfTables;
    if (config.algorithm === 'sgd-triples')
      return SgdTriplesEngine.create(
        tables,
        sampler,
        {
          threads: config.threads,
          learningRate: config.optimizer.learningRate,
          l2: config.l2,
          seed: config.seed,
        },
        step,
      );
    const surfaces = config.adversarial.surfaces;
    return MfEngine.create(
      tables,
      sampler,
      {
        threads: config.threads,
        mode: config.mode,
        optimizer: config.optimizer,
        userState: states[model.trainableTables.indexOf(USER_EMBEDDINGS)]!,
        itemState: states[model.trainableTables.indexOf(ITEM_EMBEDDINGS)]!,
        ...(tables.itemBias
          ? { itemBiasState: states[model.trainableTables.indexOf(ITEM_BIAS)]! }
          : {}),
        l2: config.l2,
        epsilon: config.adversarial.epsilon,
        adversarialWeight: config.adversarial.adversarialWeight,
        adversary: config.adversarial.adversary as (typeof FUSED_MF_ADVERSARIES)[number],
        perturbUsers: surfaces.includes(USER_EMBEDDINGS),
        perturbItems: surfaces.includes(ITEM_EMBEDDINGS),
        seed: config.seed,
      },
      step,
    );
  },
};

/**
 * The generic engine: any model through its contract (its batch step when it has one),
 * any registered adversary (multi-step ones included), one thread, deterministic.
 */
export const genericEngineProvider: EngineProvider = {
  name: 'generic',
  priority: 0,
  description: 'any model through its contract and batch step, any adversary, one thread',
  supports(model, _adversary, config) {
    if (model.trainableTables.length === 0)
      return refuse(`${model.modelName} has nothing to train`);
    if (config.algorithm !== 'minibatch')
      return refuse(
        `runs mini-batches only; algorithm ${config.algorithm} runs on the fused MF kernel`,
      );
    if (config.mode !== 'deterministic')
      return refuse(
        `runs one thread, deterministically; mode ${config.mode} runs on the fused MF kernel`,
      );
    return SUPPORTED;
  },
  async create({ model, sampler, config, adversary, states, step }) {
    return new GenericEngine(
      model,
      sampler,
      {
        optimizer: config.optimizer,
        states,
        l2: config.l2,
        tables: config.tables,
        epsilon: config.adversarial.epsilon,
        adversarialWeight: config.adversarial.adversarialWeight,
        adversary,
        surfaces: config.adversarial.surfaces,
        seed: config.seed,
      },
      step,
    );
  },
};

// Built-ins, unless another installed copy of this package registered its own first.
for (const provider of [fusedMfEngineProvider, genericEngineProvider])
  if (!getEngineProvider(provider.name)) registerEngineProvider(provider);
