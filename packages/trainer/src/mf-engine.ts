import type { Worker } from 'node:worker_threads';
import type { TripleSampler } from '@advrec/data';
import { builtModule, startKernelWorkers } from '@advrec/models';
import type { ParameterTable } from '@advrec/models';
import { EpochTotals } from './engine.js';
import type { Engine, EngineInfo, EpochStats } from './engine.js';
import { SLOT_FIELDS, createMfKernel } from './mf-kernel.js';
import type {
  MfKernelWorkerData,
  MfKernelBuffers,
  MfKernelParams,
  MfMemoryLayout,
  MfScratchLayout,
  WasmApi,
  WasmModuleHandle,
} from './mf-kernel.js';
import { MF_KERNEL_WASM_BASE64 } from './wasm/mf-kernel-bytes.js';
import type { OptimizerState, ResolvedOptimizerConfig } from './optimizer.js';

/** The tables the fused kernel trains: MF's `y = p_u . q_i` (`MfTables` has them). */
export interface MfTables {
  readonly numUsers: number;
  readonly numItems: number;
  readonly embeddingSize: number;
  readonly userEmbeddings: ParameterTable;
  readonly itemEmbeddings: ParameterTable;
  /** MF's optional item bias (`y = p_u . q_i + b_i`); only per-triple SGD trains it. */
  readonly itemBias?: ParameterTable | null;
}

/** How the fused MF engine runs. */
export interface MfEngineOptions {
  /** Worker threads (1: everything in the calling thread). */
  readonly threads: number;
  /**
   * `deterministic` (default): each mini-batch is split over the threads with a fixed-order
   * reduction, bit-identical tables for any thread count. `hogwild`: each thread takes whole
   * batches and updates the shared tables without locks (faster, not reproducible).
   */
  readonly mode: 'deterministic' | 'hogwild';
  readonly optimizer: ResolvedOptimizerConfig;
  readonly userState: OptimizerState;
  readonly itemState: OptimizerState;
  /** The optimiser state of MF's item bias, when the model has one. */
  readonly itemBiasState?: OptimizerState;
  readonly l2: number;
  readonly epsilon: number;
  readonly adversarialWeight: number;
  /** Built-in adversary: none, fgm, fgsm, random. */
  readonly adversary: 'none' | 'fgm' | 'fgsm' | 'random';
  readonly perturbUsers: boolean;
  readonly perturbItems: boolean;
  readonly seed: number;
  /** Batches the sampling thread may run ahead (default 128). */
  readonly ringSlots?: number;
}

const ADVERSARY_CODES = { none: 0, fgm: 1, fgsm: 2, random: 3 } as const;
const OPTIMIZER_CODES = { adagrad: 0, sgd: 1, 'lazy-adam': 2 } as const;

function sharedF64(length: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(8, length * 8)), 0, length);
}
function sharedI32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(4, length * 4)), 0, length);
}

const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
let compiledKernel: WasmModuleHandle | null = null;

/** The compiled SIMD row kernels (compiled once per process). @internal */
export function kernelModule(): WasmModuleHandle {
  compiledKernel ??= new WASM.Module(Buffer.from(MF_KERNEL_WASM_BASE64, 'base64'));
  return compiledKernel;
}

/** Plans the kernel memory: tables, optimiser state and scratch regions, 16-byte aligned. @internal */
export function planLayout(
  numUsers: number,
  numItems: number,
  dimension: number,
  batchSize: number,
  optimizer: ResolvedOptimizerConfig['name'],
  regions: number,
  itemBias = false,
): MfMemoryLayout {
  const stride = Math.ceil(dimension / 4) * 4;
  const row = stride * 4;
  let offset = 0;
  const take = (rows: number): number => {
    const at = offset;
    offset += rows * row;
    return at;
  };
  const userEmbeddings = take(numUsers);
  const itemEmbeddings = take(numItems);
  const state1 = optimizer !== 'sgd';
  const state2 = optimizer === 'lazy-adam';
  const userState1 = state1 ? take(numUsers) : -1;
  const itemState1 = state1 ? take(numItems) : -1;
  const userState2 = state2 ? take(numUsers) : -1;
  const itemState2 = state2 ? take(numItems) : -1;
  // The item bias: one 16-byte row per item, the bias in lane 0 (so the SIMD optimiser
  // kernels update it with n = 4), and its optimiser state likewise.
  const takeBias = (rows: number): number => {
    const at = offset;
    offset += rows * 16;
    return at;
  };
  const itemBiasAt = itemBias ? takeBias(numItems) : -1;
  const itemBiasState1 = itemBias && state1 ? takeBias(numItems) : -1;
  const itemBiasState2 = itemBias && state2 ? takeBias(numItems) : -1;
  const scratch: MfScratchLayout[] = [];
  for (let r = 0; r < regions; r++)
    scratch.push({
      userGradient: take(batchSize),
      itemGradient: take(2 * batchSize),
      userGamma: take(batchSize),
      itemGamma: take(2 * batchSize),
      userDelta: take(batchSize),
      itemDelta: take(2 * batchSize),
      itemBiasGradient: itemBias ? takeBias(2 * batchSize) : -1,
    });
  return {
    stride,
    userEmbeddings,
    itemEmbeddings,
    userState1,
    itemState1,
    userState2,
    itemState2,
    itemBias: itemBiasAt,
    itemBiasState1,
    itemBiasState2,
    scratch,
    bytes: offset,
  };
}

/** Copies `rows x dimension` values between a dense table and a padded kernel region. @internal */
export function copyRows(
  memory: Float32Array,
  offset: number,
  stride: number,
  table: Float32Array,
  rows: number,
  dimension: number,
  toKernel: boolean,
): void {
  const start = offset >> 2;
  if (stride === dimension) {
    if (toKernel) memory.set(table, start);
    else table.set(memory.subarray(start, start + rows * dimension));
    return;
  }
  for (let r = 0; r < rows; r++) {
    const k = start + r * stride;
    if (toKernel) memory.set(table.subarray(r * dimension, r * dimension + dimension), k);
    else table.set(memory.subarray(k, k + dimension), r * dimension);
  }
}

/** The kernel's hyper-parameters from engine options. @internal */
export function kernelParams(o: MfEngineOptions): MfKernelParams {
  return {
    optimizer: OPTIMIZER_CODES[o.optimizer.name],
    learningRate: o.optimizer.learningRate,
    beta1: o.optimizer.beta1,
    beta2: o.optimizer.beta2,
    adamEpsilon: o.optimizer.adamEpsilon,
    l2: o.l2,
    epsilon: o.epsilon,
    adversarialWeight: o.adversarialWeight,
    adversary: ADVERSARY_CODES[o.adversary],
    perturbUsers: o.perturbUsers,
    perturbItems: o.perturbItems,
    seed: o.seed,
  };
}

/** Allocates the kernel's memory and buffers (shared when `threaded`). @internal */
export function createKernelBuffers(
  model: MfTables,
  options: Pick<MfEngineOptions, 'threads' | 'mode' | 'optimizer'>,
  b: number,
  ringSlots: number,
  threaded: boolean,
): MfKernelBuffers {
  const regions = threaded && options.mode === 'hogwild' ? options.threads : 1;
  const layout = planLayout(
    model.numUsers,
    model.numItems,
    model.embeddingSize,
    b,
    options.optimizer.name,
    regions,
    !!model.itemBias,
  );
  const pages = Math.max(1, Math.ceil(layout.bytes / 65536));
  const memory = new WASM.Memory({ initial: pages, maximum: pages, shared: true });
  const i32 = threaded ? sharedI32 : (n: number) => new Int32Array(n);
  const f64 = threaded ? sharedF64 : (n: number) => new Float64Array(n);
  return {
    numUsers: model.numUsers,
    numItems: model.numItems,
    dimension: model.embeddingSize,
    optimizer: OPTIMIZER_CODES[options.optimizer.name],
    batchSize: b,
    ringSlots,
    memory,
    module: kernelModule(),
    layout,
    ringUsers: i32(ringSlots * b),
    ringPositives: i32(ringSlots * b),
    ringNegatives: i32(ringSlots * b),
    slotMeta: i32(ringSlots * SLOT_FIELDS),
    control: i32(4),
    tripleClean: f64(regions * b),
    tripleAdversarial: f64(regions * b),
    tripleLoss: f64(regions * b),
    tripleAdversarialLoss: f64(regions * b),
    stats: f64(regions * 5),
  };
}

/**
 * Copies the model's tables and the optimiser state into (`toKernel`) or out of the
 * kernel memory. @internal
 */
export function syncKernelMemory(
  buffers: MfKernelBuffers,
  model: MfTables,
  userState: OptimizerState,
  itemState: OptimizerState,
  toKernel: boolean,
  itemBiasState?: OptimizerState,
): void {
  const memory = new Float32Array(buffers.memory.buffer);
  const { layout } = buffers;
  const k = model.embeddingSize;
  const pairs: [number, Float32Array | undefined, number, number, number][] = [
    [layout.userEmbeddings, model.userEmbeddings.values, model.numUsers, layout.stride, k],
    [layout.itemEmbeddings, model.itemEmbeddings.values, model.numItems, layout.stride, k],
    [layout.userState1, userState.state1?.values, model.numUsers, layout.stride, k],
    [layout.itemState1, itemState.state1?.values, model.numItems, layout.stride, k],
    [layout.userState2, userState.state2?.values, model.numUsers, layout.stride, k],
    [layout.itemState2, itemState.state2?.values, model.numItems, layout.stride, k],
    [layout.itemBias, model.itemBias?.values, model.numItems, 4, 1],
    [layout.itemBiasState1, itemBiasState?.state1?.values, model.numItems, 4, 1],
    [layout.itemBiasState2, itemBiasState?.state2?.values, model.numItems, 4, 1],
  ];
  for (const [offset, table, rows, stride, dimension] of pairs)
    if (offset >= 0 && table) copyRows(memory, offset, stride, table, rows, dimension, toKernel);
  // The unused lanes of the bias's Adagrad accumulators stay 1 (0 would divide 0 by 0).
  if (toKernel && layout.itemBiasState1 >= 0 && buffers.optimizer === 0)
    for (let r = 0, at = layout.itemBiasState1 >> 2; r < model.numItems; r++, at += 4)
      memory[at + 1] = memory[at + 2] = memory[at + 3] = 1;
}

/**
 * Trains MF with the fused kernel: the calling thread samples batches into a ring of
 * shared slots while worker threads consume them (or, with one thread, samples and trains
 * in turn). The embeddings and optimiser state are copied into the kernel's memory at the
 * start of each epoch and back into the model's tables (the source of truth) at its end.
 */
export class MfEngine implements Engine {
  private readonly model: MfTables;
  private readonly sampler: TripleSampler;
  private readonly options: MfEngineOptions;
  private readonly buffers: MfKernelBuffers;
  private readonly workers: Worker[] = [];
  private readonly local: ReturnType<typeof createMfKernel> | null;
  private sequence = 0;
  private workerError: string | null = null;
  /** Batches processed since the optimiser state was created (Adam's step). */
  step: number;
  readonly info: EngineInfo;

  private constructor(
    model: MfTables,
    sampler: TripleSampler,
    options: MfEngineOptions,
    step: number,
  ) {
    this.model = model;
    this.sampler = sampler;
    this.options = options;
    this.step = step;
    const threaded = options.threads > 1;
    const ringSlots = threaded ? (options.ringSlots ?? 128) : 1;
    this.buffers = createKernelBuffers(model, options, sampler.batchSize, ringSlots, threaded);
    this.local = threaded ? null : createMfKernel(this.buffers, kernelParams(options));
    this.info = {
      name: 'fused-mf',
      description: `fused MF kernel (WebAssembly SIMD), ${options.threads} thread(s), ${options.mode}, minibatch, ${options.optimizer.name}${model.itemBias ? ', item bias' : ''}`,
      threads: options.threads,
      details: {
        mode: options.mode,
        algorithm: 'minibatch',
        optimizer: options.optimizer.name,
        adversary: options.adversary,
      },
    };
  }

  /** Creates the engine and starts its workers. */
  static async create(
    model: MfTables,
    sampler: TripleSampler,
    options: MfEngineOptions,
    step = 0,
  ): Promise<MfEngine> {
    const engine = new MfEngine(model, sampler, options, step);
    if (options.threads > 1) await engine.startWorkers();
    return engine;
  }

  private async startWorkers(): Promise<void> {
    const { threads, mode } = this.options;
    const params = kernelParams(this.options);
    const started = await startKernelWorkers(
      builtModule(import.meta.url, 'mf-kernel-worker.js'),
      threads,
      (worker): MfKernelWorkerData => ({ shared: this.buffers, params, worker, threads, mode }),
      (message) => {
        this.workerError = message;
        Atomics.store(this.buffers.control, 3, 1);
      },
    );
    this.workers.push(...started);
  }

  /**
   * Trains one epoch (all batches of `epoch`), BPR or APR. Blocks the calling thread until
   * the epoch is done.
   */
  trainEpoch(epoch: number, adversarial: boolean): EpochStats {
    const totals = new EpochTotals(adversarial);
    const { buffers, sampler, model } = this;
    const { userState, itemState, itemBiasState } = this.options;
    let copyStarted = performance.now();
    syncKernelMemory(buffers, model, userState, itemState, true, itemBiasState);
    let copyMilliseconds = performance.now() - copyStarted;
    const R = buffers.ringSlots;
    const B = sampler.batchSize;
    const meta = buffers.slotMeta;
    buffers.stats.fill(0);
    const batches = sampler.batchesPerEpoch;
    try {
      for (let b = 0; b < batches; b++) {
        const n = this.sequence++;
        const slot = n % R;
        const at = slot * SLOT_FIELDS;
        if (this.local === null) this.waitFor(() => Atomics.load(meta, at) === 0, meta, at);
        const out = {
          users: buffers.ringUsers.subarray(slot * B, slot * B + B),
          positives: buffers.ringPositives.subarray(slot * B, slot * B + B),
          negatives: buffers.ringNegatives.subarray(slot * B, slot * B + B),
        };
        const batch = sampler.batch(epoch, b, out);
        this.step++;
        meta[at + 1] = batch.size;
        meta[at + 2] = epoch;
        meta[at + 3] = b;
        meta[at + 4] = adversarial ? 1 : 0;
        meta[at + 5] = this.step;
        meta[at + 6] = 0;
        meta[at + 7] = 0;
        meta[at + 8] = 0;
        if (this.local) this.local.runBatch(slot, 1);
        else {
          Atomics.store(meta, at, n + 1);
          Atomics.notify(meta, at);
        }
      }
      if (this.local === null)
        for (let s = 0; s < R; s++)
          this.waitFor(() => Atomics.load(meta, s * SLOT_FIELDS) === 0, meta, s * SLOT_FIELDS);
    } finally {
      copyStarted = performance.now();
      syncKernelMemory(buffers, model, userState, itemState, false, itemBiasState);
      copyMilliseconds += performance.now() - copyStarted;
    }
    // Per region: loss, adversarial loss, correct, triples, adversarial correct.
    const stats = buffers.stats;
    for (let r = 0; r < stats.length / 5; r++)
      totals.add({
        loss: stats[r * 5]!,
        adversarialLoss: stats[r * 5 + 1]!,
        correct: stats[r * 5 + 2]!,
        triples: stats[r * 5 + 3]!,
        adversarialCorrect: stats[r * 5 + 4]!,
      });
    return totals.finish(copyMilliseconds / 1000);
  }

  private waitFor(done: () => boolean, array: Int32Array, index: number): void {
    while (!done()) {
      if (Atomics.load(this.buffers.control, 3) === 1 || this.workerError)
        throw new Error(`training worker failed: ${this.workerError ?? 'see worker error'}`);
      Atomics.wait(array, index, Atomics.load(array, index), 100);
    }
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    Atomics.store(this.buffers.control, 2, 1);
    for (let s = 0; s < this.buffers.ringSlots; s++)
      Atomics.notify(this.buffers.slotMeta, s * SLOT_FIELDS);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
