/**
 * Classic per-triple SGD BPR (Cornac's and implicit's algorithm) on the WebAssembly SIMD
 * kernel `wasm/sgd-kernel.wat`: every thread samples its own triples and updates the shared
 * tables right after each one (Hogwild), so no thread waits for another and none samples
 * for the others. Positives are drawn uniformly with replacement from the training pairs,
 * negatives uniformly from the candidate items, drawn again while they are the user's
 * training items.
 */
import type { Worker } from 'node:worker_threads';
import type { TripleSampler } from '@advrec/data';
import { EpochTotals } from './engine.js';
import { builtModule, startKernelWorkers } from '@advrec/models';
import type { Engine, EngineInfo, EpochStats } from './engine.js';
import { copyRows } from './mf-engine.js';
import type { MfTables } from './mf-engine.js';
import type { WasmApi, WasmModuleHandle } from './mf-kernel.js';
import { runSgdShare } from './sgd-kernel.js';
import type { SgdJob, SgdKernel, SgdMemoryLayout } from './sgd-kernel.js';
import { SGD_KERNEL_WASM_BASE64 } from './wasm/sgd-kernel-bytes.js';

/** How {@link SgdTriplesEngine} runs. */
export interface SgdTriplesEngineOptions {
  /** Threads (1: the calling thread; more: that many worker threads, Hogwild). */
  readonly threads: number;
  readonly learningRate: number;
  /** Cornac's `lambda_reg`: each update adds `-l2 * row` to the row's gradient step. */
  readonly l2: number;
  readonly seed: number;
}

const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
let compiled: WasmModuleHandle | null = null;
function sgdModule(): WasmModuleHandle {
  compiled ??= new WASM.Module(Buffer.from(SGD_KERNEL_WASM_BASE64, 'base64'));
  return compiled;
}

/** Plans the kernel memory, 16-byte aligned. @internal */
export function planSgdLayout(
  numUsers: number,
  numItems: number,
  dimension: number,
  nnz: number,
  numCandidates: number,
  threads: number,
  itemBias = false,
): SgdMemoryLayout {
  const row = Math.ceil(dimension / 4) * 16;
  let offset = 0;
  const take = (bytes: number): number => {
    const at = offset;
    offset += Math.ceil(bytes / 16) * 16;
    return at;
  };
  return {
    row,
    userEmbeddings: take(numUsers * row),
    itemEmbeddings: take(numItems * row),
    entryUsers: take(nnz * 4),
    rowPointers: take((numUsers + 1) * 4),
    items: take(nnz * 4),
    candidates: take(numCandidates * 4),
    itemBias: itemBias ? take(numItems * 4) : -1,
    itemBiasLength: itemBias ? Math.ceil(numItems / 4) * 4 : 0,
    states: take(threads * 16),
    stats: take(threads * 32),
    // Evaluated last: the total after every region above.
    bytes: offset,
  };
}

/**
 * The per-triple SGD engine. The tables are copied into the kernel's memory at the start of
 * each epoch and back into the model's tables (the source of truth) at its end.
 */
export class SgdTriplesEngine implements Engine {
  readonly info: EngineInfo;
  step: number;
  private readonly model: MfTables;
  private readonly job: SgdJob;
  /** The kernel on the calling thread (it trains there with one thread). */
  private readonly kernel: SgdKernel;
  private readonly workers: Worker[] = [];
  private workerError: string | null = null;
  private readonly batchesPerEpoch: number;

  private constructor(
    model: MfTables,
    sampler: TripleSampler,
    options: SgdTriplesEngineOptions,
    step: number,
  ) {
    this.model = model;
    this.step = step;
    this.batchesPerEpoch = sampler.batchesPerEpoch;
    const train = sampler.train;
    const candidates = sampler.negatives.candidates;
    const threads = options.threads;
    const layout = planSgdLayout(
      model.numUsers,
      model.numItems,
      model.embeddingSize,
      train.nnz,
      candidates.length,
      threads,
      !!model.itemBias,
    );
    const pages = Math.max(1, Math.ceil(layout.bytes / 65536));
    const memory = new WASM.Memory({ initial: pages, maximum: pages, shared: true });
    const i32 = (at: number, n: number): Int32Array => new Int32Array(memory.buffer, at, n);
    i32(layout.entryUsers, train.nnz).set(train.entryUsers());
    i32(layout.rowPointers, model.numUsers + 1).set(train.indptr);
    i32(layout.items, train.nnz).set(train.indices);
    i32(layout.candidates, candidates.length).set(candidates);
    this.job = {
      memory,
      module: sgdModule(),
      control: new Int32Array(new SharedArrayBuffer(8 * 4)),
      layout,
      nnz: train.nnz,
      numCandidates: candidates.length,
      learningRate: options.learningRate,
      l2: options.l2,
      seed: options.seed,
      threads,
    };
    this.kernel = new WASM.Instance(this.job.module, { env: { memory } })
      .exports as unknown as SgdKernel;
    this.info = {
      name: 'fused-mf',
      description: `per-triple SGD kernel (WebAssembly SIMD, sampling in each thread), ${threads} thread(s), hogwild, sgd-triples, sgd${model.itemBias ? ', item bias' : ''}`,
      threads,
      details: { mode: 'hogwild', algorithm: 'sgd-triples', optimizer: 'sgd', adversary: 'none' },
    };
  }

  /** Creates the engine and starts its workers. */
  static async create(
    model: MfTables,
    sampler: TripleSampler,
    options: SgdTriplesEngineOptions,
    step = 0,
  ): Promise<SgdTriplesEngine> {
    if (sampler.train.numUsers !== model.numUsers || sampler.train.numItems > model.numItems)
      throw new RangeError('the training matrix does not match the model size');
    const engine = new SgdTriplesEngine(model, sampler, options, step);
    if (options.threads > 1) await engine.startWorkers();
    return engine;
  }

  private async startWorkers(): Promise<void> {
    const control = this.job.control;
    const started = await startKernelWorkers(
      builtModule(import.meta.url, 'sgd-kernel-worker.js'),
      this.job.threads,
      (thread) => ({ job: this.job, thread }),
      (message) => {
        this.workerError = message;
        Atomics.store(control, 3, 1);
        Atomics.notify(control, 1);
      },
    );
    this.workers.push(...started);
  }

  /** Trains one epoch of per-triple SGD (as many triples as training pairs). */
  trainEpoch(epoch: number, adversarial: boolean): EpochStats {
    if (adversarial)
      throw new RangeError(
        'per-triple SGD trains BPR epochs only (adversarial epochs run mini-batches)',
      );
    const totals = new EpochTotals(false);
    const { job, model } = this;
    const L = job.layout;
    const memory = new Float32Array(job.memory.buffer);
    const stride = L.row / 4;
    const k = model.embeddingSize;
    const stats = new Float64Array(job.memory.buffer, L.stats, job.threads * 4);
    const copy = (toKernel: boolean): number => {
      const started = performance.now();
      for (const [at, table, rows] of [
        [L.userEmbeddings, model.userEmbeddings.values, model.numUsers],
        [L.itemEmbeddings, model.itemEmbeddings.values, model.numItems],
      ] as const)
        copyRows(memory, at, stride, table, rows, k, toKernel);
      if (model.itemBias)
        copyRows(memory, L.itemBias, 1, model.itemBias.values, model.numItems, 1, toKernel);
      return performance.now() - started;
    };
    let copyMilliseconds = copy(true);
    stats.fill(0);
    try {
      if (job.threads === 1) runSgdShare(this.kernel, job.memory, job, epoch, 0);
      else this.runThreads(epoch);
    } finally {
      copyMilliseconds += copy(false);
    }
    // The padding lanes are zero: summing whole rows is the tables' sum of squares.
    const parameterNorm =
      this.kernel.sumSquares(L.userEmbeddings, model.numUsers * stride) +
      this.kernel.sumSquares(L.itemEmbeddings, model.numItems * stride) +
      (L.itemBias >= 0 ? this.kernel.sumSquares(L.itemBias, L.itemBiasLength) : 0);
    for (let t = 0; t < job.threads; t++)
      totals.add({
        loss: stats[4 * t]!,
        adversarialLoss: 0,
        correct: stats[4 * t + 1]!,
        adversarialCorrect: 0,
        triples: stats[4 * t + 2]!,
      });
    // Counted in batches of the configured size, as the mini-batch engines count steps.
    this.step += this.batchesPerEpoch;
    return { ...totals.finish(copyMilliseconds / 1000), parameterNorm };
  }

  private runThreads(epoch: number): void {
    const control = this.job.control;
    Atomics.store(control, 1, 0);
    Atomics.store(control, 4, epoch);
    Atomics.add(control, 0, 1);
    Atomics.notify(control, 0);
    for (;;) {
      const done = Atomics.load(control, 1);
      if (done === this.job.threads) return;
      if (Atomics.load(control, 3) === 1 || this.workerError)
        throw new Error(`training worker failed: ${this.workerError ?? 'see worker error'}`);
      Atomics.wait(control, 1, done, 100);
    }
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    Atomics.store(this.job.control, 2, 1);
    Atomics.add(this.job.control, 0, 1);
    Atomics.notify(this.job.control, 0);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
