import { Worker } from 'node:worker_threads';
import type { TripleSampler } from '@advrec/data';
import type { MatrixFactorization } from '@advrec/models';
import { SLOT_FIELDS, createMfKernel } from './mf-kernel.js';
import type { MfKernelBuffers, MfKernelParams } from './mf-kernel.js';
import type { OptimizerState, ResolvedOptimizerConfig } from './optimizer.js';

/** Totals of one epoch. */
export interface EpochStats {
  /** Sum of the clean BPR loss over the epoch's triples (before each update). */
  readonly loss: number;
  /** Sum of lambda * the adversarial BPR loss (0 in BPR epochs). */
  readonly adversarialLoss: number;
  /** Fraction of triples with y_ui > y_uj (clean), before each update. */
  readonly trainAccuracy: number;
  /** Fraction of triples with y_ui > y_uj under the adversary's perturbation (APR epochs). */
  readonly adversarialAccuracy: number;
  readonly triples: number;
  readonly seconds: number;
  readonly triplesPerSecond: number;
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
  /** `minibatch` (APR/AMR) or `sgd-triples` (classic per-triple SGD BPR, Cornac/implicit). */
  readonly algorithm: 'minibatch' | 'sgd-triples';
  readonly optimizer: ResolvedOptimizerConfig;
  readonly userState: OptimizerState;
  readonly itemState: OptimizerState;
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

function scratch(dimension: number, batchSize: number, shared: boolean) {
  const f64 = shared ? sharedF64 : (n: number) => new Float64Array(n);
  return {
    tripleClean: f64(batchSize),
    tripleAdversarial: f64(batchSize),
    tripleLoss: f64(batchSize),
    tripleAdversarialLoss: f64(batchSize),
    userGradient: f64(batchSize * dimension),
    itemGradient: f64(2 * batchSize * dimension),
    userGamma: f64(batchSize * dimension),
    itemGamma: f64(2 * batchSize * dimension),
    userDelta: f64(batchSize * dimension),
    itemDelta: f64(2 * batchSize * dimension),
  };
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

/** Allocates the kernel's buffers (shared when `threaded`). @internal */
export function createKernelBuffers(
  model: MatrixFactorization,
  options: Pick<MfEngineOptions, 'userState' | 'itemState' | 'threads'>,
  b: number,
  ringSlots: number,
  threaded: boolean,
): MfKernelBuffers & { workerStats: Float64Array; ringSlots: number } {
  const k = model.embeddingSize;
  const i32 = threaded ? sharedI32 : (n: number) => new Int32Array(n);
  return {
    numUsers: model.numUsers,
    numItems: model.numItems,
    dimension: k,
    batchSize: b,
    ringSlots,
    userEmbeddings: model.userEmbeddings.values,
    itemEmbeddings: model.itemEmbeddings.values,
    userState1: options.userState.state1?.values ?? null,
    itemState1: options.itemState.state1?.values ?? null,
    userState2: options.userState.state2?.values ?? null,
    itemState2: options.itemState.state2?.values ?? null,
    ringUsers: i32(ringSlots * b),
    ringPositives: i32(ringSlots * b),
    ringNegatives: i32(ringSlots * b),
    slotMeta: i32(ringSlots * SLOT_FIELDS),
    control: i32(4),
    ...scratch(k, b, threaded),
    stats: threaded ? sharedF64(5) : new Float64Array(5),
    workerStats: threaded ? sharedF64(5 * options.threads) : new Float64Array(5),
  };
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const createMfKernel = ${createMfKernel.toString()};
const { shared, params, worker, threads, mode, algorithm, dimension, batchSize } = workerData;
function f64(n) { return new Float64Array(Math.max(1, n)); }
let buffers = shared;
if (mode === 'hogwild') {
  buffers = Object.assign({}, shared, {
    tripleClean: f64(batchSize), tripleAdversarial: f64(batchSize), tripleLoss: f64(batchSize),
    tripleAdversarialLoss: f64(batchSize), userGradient: f64(batchSize * dimension),
    itemGradient: f64(2 * batchSize * dimension), userGamma: f64(batchSize * dimension),
    itemGamma: f64(2 * batchSize * dimension), userDelta: f64(batchSize * dimension),
    itemDelta: f64(2 * batchSize * dimension), stats: shared.workerStats.subarray(worker * 5, worker * 5 + 5),
  });
}
const kernel = createMfKernel(buffers, params);
const T = mode === 'hogwild' ? 1 : threads;
const w = mode === 'hogwild' ? 0 : worker;
const barrier = kernel.makeBarrier(T);
const meta = shared.slotMeta;
const control = shared.control;
const R = shared.ringSlots;
const F = ${SLOT_FIELDS};
try {
  parentPort.postMessage({ ready: true });
  let n = mode === 'hogwild' ? worker : 0;
  const stride = mode === 'hogwild' ? threads : 1;
  for (;;) {
    const slot = n % R;
    const at = slot * F;
    let spins = 0;
    while (Atomics.load(meta, at) !== n + 1) {
      if (Atomics.load(control, 2) === 1) { process.exit(0); }
      if (++spins > 4000) Atomics.wait(meta, at, Atomics.load(meta, at), 20);
    }
    if (algorithm === 'sgd-triples') kernel.runSgdTriples(slot);
    else kernel.runBatch(slot, w, T, barrier);
    if (mode === 'hogwild' || w === 0) { Atomics.store(meta, at, 0); Atomics.notify(meta, at); }
    n += stride;
  }
} catch (error) {
  Atomics.store(control, 3, 1);
  Atomics.notify(meta, 0);
  parentPort.postMessage({ error: String((error && error.stack) || error) });
}
`;

/**
 * Trains MF with the fused kernel: the calling thread samples batches into a ring of
 * shared slots while worker threads consume them (or, with one thread, samples and trains
 * in turn). Tables are the model's own shared tables, updated in place.
 */
export class MfEngine {
  private readonly model: MatrixFactorization;
  private readonly sampler: TripleSampler;
  private readonly options: MfEngineOptions;
  private readonly buffers: MfKernelBuffers & { workerStats: Float64Array; ringSlots: number };
  private readonly workers: Worker[] = [];
  private readonly local: ReturnType<typeof createMfKernel> | null;
  private sequence = 0;
  private workerError: string | null = null;
  /** Batches processed since the optimiser state was created (Adam's step). */
  step: number;

  private constructor(model: MatrixFactorization, sampler: TripleSampler, options: MfEngineOptions, step: number) {
    this.model = model;
    this.sampler = sampler;
    this.options = options;
    this.step = step;
    const k = model.embeddingSize;
    const b = sampler.batchSize;
    const threaded = options.threads > 1;
    const ringSlots = threaded ? (options.ringSlots ?? 128) : 1;
    this.buffers = createKernelBuffers(model, options, b, ringSlots, threaded);
    this.local = threaded ? null : createMfKernel(this.buffers, kernelParams(options));
  }

  private params(): MfKernelParams {
    return kernelParams(this.options);
  }

  /** Creates the engine and starts its workers. */
  static async create(
    model: MatrixFactorization,
    sampler: TripleSampler,
    options: MfEngineOptions,
    step = 0,
  ): Promise<MfEngine> {
    const engine = new MfEngine(model, sampler, options, step);
    if (options.threads > 1) await engine.startWorkers();
    return engine;
  }

  private async startWorkers(): Promise<void> {
    const { threads, mode, algorithm } = this.options;
    const ready: Promise<void>[] = [];
    for (let w = 0; w < threads; w++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          shared: this.buffers,
          params: this.params(),
          worker: w,
          threads,
          mode,
          algorithm,
          dimension: this.model.embeddingSize,
          batchSize: this.sampler.batchSize,
        },
      });
      ready.push(
        new Promise((resolve, reject) => {
          worker.once('message', (m: { ready?: boolean; error?: string }) =>
            m.ready ? resolve() : reject(new Error(m.error)),
          );
          worker.once('error', reject);
        }),
      );
      worker.on('message', (m: { error?: string }) => {
        if (m.error) this.workerError = m.error;
      });
      worker.on('error', (e) => {
        this.workerError = String(e.stack ?? e);
        Atomics.store(this.buffers.control, 3, 1);
      });
      this.workers.push(worker);
    }
    await Promise.all(ready);
  }

  /**
   * Trains one epoch (all batches of `epoch`), BPR or APR. Blocks the calling thread until
   * the epoch is done.
   */
  trainEpoch(epoch: number, adversarial: boolean): EpochStats {
    const started = performance.now();
    const { buffers, sampler } = this;
    const R = buffers.ringSlots;
    const B = sampler.batchSize;
    const meta = buffers.slotMeta;
    buffers.stats.fill(0);
    buffers.workerStats.fill(0);
    const batches = sampler.batchesPerEpoch;
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
      if (this.local) {
        if (this.options.algorithm === 'sgd-triples') this.local.runSgdTriples(slot);
        else this.local.runBatch(slot, 0, 1, noBarrier);
      } else {
        Atomics.store(meta, at, n + 1);
        Atomics.notify(meta, at);
      }
    }
    if (this.local === null)
      for (let s = 0; s < R; s++) this.waitFor(() => Atomics.load(meta, s * SLOT_FIELDS) === 0, meta, s * SLOT_FIELDS);
    const stats = buffers.stats;
    if (this.options.mode === 'hogwild' || this.options.algorithm === 'sgd-triples') {
      if (this.local === null) {
        stats.fill(0);
        for (let w = 0; w < this.options.threads; w++)
          for (let f = 0; f < 5; f++) stats[f]! += buffers.workerStats[w * 5 + f]!;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const triples = stats[3]!;
    return {
      loss: stats[0]!,
      adversarialLoss: stats[1]!,
      trainAccuracy: triples > 0 ? stats[2]! / triples : 0,
      adversarialAccuracy: adversarial && triples > 0 ? stats[4]! / triples : Number.NaN,
      triples,
      seconds,
      triplesPerSecond: triples / seconds,
    };
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
    for (let s = 0; s < this.buffers.ringSlots; s++) Atomics.notify(this.buffers.slotMeta, s * SLOT_FIELDS);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

function noBarrier(): void {}
