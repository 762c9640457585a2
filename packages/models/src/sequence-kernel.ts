import { Worker } from 'node:worker_threads';
import { deriveSeed } from '@advrec/data';
import type { Random } from '@advrec/data';
import type { Gemm } from '@advrec/onnx';
import type { JsonObject } from './model.js';
import { SEQUENCE_ITEM_TABLE } from './sequential.js';
import type { SequenceGradientKernel, SequencePass, SequencePassGradients } from './sequential.js';
import { builtModule } from './workers.js';

/**
 * Sequences per chunk (default): a pass is cut into chunks of this many sequences whatever
 * the thread count, each chunk's gradients computed alone (its own dropout seed) and the
 * chunks summed in order, so a run is the same on 1 thread as on 8.
 */
export const KERNEL_CHUNK_SEQUENCES = 64;

/**
 * What a model's kernel module exports for {@link ChunkedSequenceKernel}'s worker threads:
 * the single-thread kernel of a model with this config over these tables (by name, the
 * dense tables only; the worker refreshes their values before every chunk).
 */
export type CreatePassKernel = (
  config: JsonObject,
  values: ReadonlyMap<string, Float32Array>,
  gemm: Gemm,
) => SequenceGradientKernel;

/** What a kernel worker thread is started with. @internal */
export interface KernelWorkerData {
  /** URL of the module exporting `createPassKernel` ({@link CreatePassKernel}). */
  readonly module: string;
  readonly config: JsonObject;
}

/** Numerically stable `log(1 + e^x)`. */
const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number): number =>
  x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));

/**
 * The trainer's next-item loss of a pass from its hidden states (`size x length x d`), for
 * kernel authors: `sum_t w_t (softplus(-h_t . e_pos) + softplus(h_t . e_neg)) / targets`, and
 * its gradients at the states and at the positive and negative rows.
 */
export function nextItemLoss(
  states: Float32Array,
  pass: SequencePass,
  d: number,
): {
  loss: number;
  dStates: Float32Array;
  dPositive: Float32Array;
  dNegative: Float32Array;
} {
  const N = pass.size * pass.length;
  const targets = Math.max(1, pass.targets);
  let loss = 0;
  const dStates = new Float32Array(N * d);
  const dPositive = new Float32Array(N * d);
  const dNegative = new Float32Array(N * d);
  for (let n = 0; n < N; n++) {
    const w = pass.targetMask[n]!;
    if (w === 0) continue;
    const at = n * d;
    let pos = 0;
    let neg = 0;
    for (let c = 0; c < d; c++) {
      pos += states[at + c]! * pass.positiveRows[at + c]!;
      neg += states[at + c]! * pass.negativeRows[at + c]!;
    }
    loss += w * (softplus(-pos) + softplus(neg));
    const gPos = (-w * sigmoid(-pos)) / targets;
    const gNeg = (w * sigmoid(neg)) / targets;
    for (let c = 0; c < d; c++) {
      dStates[at + c] = gPos * pass.positiveRows[at + c]! + gNeg * pass.negativeRows[at + c]!;
      dPositive[at + c] = gPos * states[at + c]!;
      dNegative[at + c] = gNeg * states[at + c]!;
    }
  }
  return { loss: loss / targets, dStates, dPositive, dNegative };
}

/**
 * Dropout applied to `x` in place (for kernel authors); returns its mask (`1 / keep` with probability `keep`, else
 * 0) for the backward pass, or null without dropout. Each 32-bit draw of the pass's stream
 * decides two entries (16 bits each: the rate is honoured to 1/65536).
 */
export function applyDropout(random: Random, x: Float32Array, rate: number): Float32Array | null {
  if (rate <= 0) return null;
  const n = x.length;
  const mask = new Float32Array(n);
  const keep = 1 / (1 - rate);
  const threshold = Math.round(rate * 65536);
  // xoshiro128** inlined (Random.nextUint32, the same stream), state carried back after.
  let [a, b, c, d] = random.getState();
  for (let k = 0; k < n; k += 2) {
    const r = Math.imul(b, 5);
    const result = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    if ((result & 0xffff) >= threshold) {
      mask[k] = keep;
      x[k] = x[k]! * keep;
    } else x[k] = 0;
    if (k + 1 < n) {
      if (result >>> 16 >= threshold) {
        mask[k + 1] = keep;
        x[k + 1] = x[k + 1]! * keep;
      } else x[k + 1] = 0;
    }
  }
  random.setState([a, b, c, d]);
  return mask;
}

/** A kernel's reader of a model's tables by name (for kernel authors); a missing table is named. */
export function tableReader(
  values: ReadonlyMap<string, Float32Array>,
  kernel: string,
): (name: string) => Float32Array {
  return (name) => {
    const table = values.get(name);
    if (!table) throw new Error(`${kernel} kernel: no table "${name}"`);
    return table;
  };
}

/** A row of ones, grown as needed (one per thread). */
let ones = new Float32Array(0);

/** Column sums of `x` (`rows x width`) as one product with a row of ones on `gemm` (a bias gradient). */
export function columnSums(
  gemm: Gemm,
  x: Float32Array,
  rows: number,
  width: number,
): Float32Array | Promise<Float32Array> {
  if (ones.length < rows) ones = new Float32Array(rows).fill(1);
  return gemm.multiply(ones, 1, rows, x, rows, width);
}

/** A chunk's pass, the dense tables' current values with it. @internal */
export interface KernelWorkerRequest {
  readonly id: number;
  readonly pass: SequencePass;
  readonly dense: ReadonlyMap<string, Float32Array>;
}

/** A worker's answer. @internal */
export type KernelWorkerResponse =
  | { readonly id: number; readonly gradients: SequencePassGradients }
  | { readonly id: number; readonly error: string };

/** Rows `[from, to)` of a pass, cut to the chunk's longest real sequence (left padding). */
function chunkOf(pass: SequencePass, from: number, to: number, chunk: number): SequencePass {
  const { length: L } = pass;
  let longest = 1;
  for (let b = from; b < to; b++) {
    let real = 0;
    for (let l = 0; l < L; l++) real += pass.inputMask[b * L + l]! !== 0 ? 1 : 0;
    longest = Math.max(longest, real);
  }
  const size = to - from;
  const skip = L - longest;
  const d = pass.inputRows.length / (pass.size * L);
  const rows = (x: Float32Array) => {
    const out = new Float32Array(size * longest * d);
    for (let b = 0; b < size; b++)
      out.set(x.subarray(((from + b) * L + skip) * d, (from + b + 1) * L * d), b * longest * d);
    return out;
  };
  const positions = (x: Float32Array) => {
    const out = new Float32Array(size * longest);
    for (let b = 0; b < size; b++)
      out.set(x.subarray((from + b) * L + skip, (from + b + 1) * L), b * longest);
    return out;
  };
  return {
    size,
    length: longest,
    positionOffset: pass.positionOffset + skip,
    inputRows: rows(pass.inputRows),
    positiveRows: rows(pass.positiveRows),
    negativeRows: rows(pass.negativeRows),
    inputMask: positions(pass.inputMask),
    targetMask: positions(pass.targetMask),
    targets: pass.targets,
    training: pass.training,
    seed: deriveSeed(pass.seed, chunk),
  };
}

/** Options of {@link ChunkedSequenceKernel}. */
export interface ChunkedSequenceKernelOptions {
  /** The model's tables by name (read at every pass). */
  readonly values: ReadonlyMap<string, Float32Array>;
  /** The model's config, as its kernel module's `createPassKernel` takes it. */
  readonly config: JsonObject;
  /** URL of the model's kernel module ({@link CreatePassKernel}), for worker threads. */
  readonly module: URL;
  /** The same module's `createPassKernel`, for this thread. */
  readonly createPassKernel: CreatePassKernel;
  /** Dense products for this thread. */
  readonly gemm: Gemm;
  /** Worker threads (1: none, the chunks run in this thread). */
  readonly threads: number;
  /** Sequences per chunk (default {@link KERNEL_CHUNK_SEQUENCES}). */
  readonly chunkSequences?: number;
}

/**
 * A model's hand-written pass cut into fixed chunks of sequences (for plugin authors: give it
 * a module exporting `createPassKernel`), the chunks run on `threads` worker threads (each
 * with its own single-threaded onnxruntime products) or in this thread when `threads` is 1.
 * The same result on any thread count: chunks, their seeds and the order they are summed in
 * do not depend on it. Chunks are cut to their longest sequence (left padding).
 */
export class ChunkedSequenceKernel implements SequenceGradientKernel {
  readonly name: string;
  private readonly local: SequenceGradientKernel;
  private readonly values: ReadonlyMap<string, Float32Array>;
  private readonly threads: number;
  private readonly chunkSequences: number;
  private workers: Worker[] | null = null;
  /** Chunks out per worker: a worker holds the process open while it has one. */
  private readonly outstanding = new Map<Worker, number>();
  private readonly pending = new Map<
    number,
    { resolve: (g: SequencePassGradients) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;

  constructor(private readonly options: ChunkedSequenceKernelOptions) {
    this.values = options.values;
    this.threads = Math.max(1, Math.floor(options.threads));
    this.chunkSequences = options.chunkSequences ?? KERNEL_CHUNK_SEQUENCES;
    this.local = options.createPassKernel(options.config, options.values, options.gemm);
    this.name =
      this.threads > 1
        ? `${this.local.name}, chunks of ${this.chunkSequences} sequences on ${this.threads} worker threads`
        : `${this.local.name}, chunks of ${this.chunkSequences} sequences`;
  }

  private startWorkers(): Worker[] {
    if (this.workers) return this.workers;
    const data: KernelWorkerData = {
      module: this.options.module.href,
      config: this.options.config,
    };
    this.workers = Array.from({ length: this.threads }, () => {
      const worker = new Worker(builtModule(import.meta.url, 'sequence-kernel-worker.js'), {
        workerData: data,
      });
      worker.on('message', (m: KernelWorkerResponse) => {
        const waiting = this.pending.get(m.id);
        if (!waiting) return;
        this.pending.delete(m.id);
        if ('error' in m) waiting.reject(new Error(`sequence kernel worker: ${m.error}`));
        else waiting.resolve(m.gradients);
      });
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.failAll(new Error(`sequence kernel worker exited with code ${code}`));
      });
      // Referenced only while a chunk is out: an idle kernel does not hold the process open.
      worker.unref();
      return worker;
    });
    return this.workers;
  }

  private failAll(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  private runOnWorker(worker: Worker, pass: SequencePass): Promise<SequencePassGradients> {
    const id = this.nextId++;
    const dense = new Map<string, Float32Array>();
    for (const [name, values] of this.values)
      if (name !== SEQUENCE_ITEM_TABLE) dense.set(name, Float32Array.from(values));
    const request: KernelWorkerRequest = { id, pass, dense };
    const out = this.outstanding.get(worker) ?? 0;
    if (out === 0) worker.ref();
    this.outstanding.set(worker, out + 1);
    return new Promise<SequencePassGradients>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(request, [
        pass.inputRows.buffer as ArrayBuffer,
        pass.positiveRows.buffer as ArrayBuffer,
        pass.negativeRows.buffer as ArrayBuffer,
        ...[...dense.values()].map((v) => v.buffer as ArrayBuffer),
      ]);
    }).finally(() => {
      const left = this.outstanding.get(worker)! - 1;
      this.outstanding.set(worker, left);
      if (left === 0) worker.unref();
    });
  }

  async lossAndGradients(pass: SequencePass): Promise<SequencePassGradients> {
    const chunks: SequencePass[] = [];
    const step = this.chunkSequences;
    for (let from = 0, k = 0; from < pass.size; from += step, k++)
      chunks.push(chunkOf(pass, from, Math.min(pass.size, from + step), k));
    let results: SequencePassGradients[];
    if (this.threads <= 1) {
      results = [];
      for (const chunk of chunks) results.push(await this.local.lossAndGradients(chunk));
    } else {
      const workers = this.startWorkers();
      results = await Promise.all(
        chunks.map((chunk, k) => this.runOnWorker(workers[k % workers.length]!, chunk)),
      );
    }
    return this.merge(pass, chunks, results);
  }

  /** The chunks' losses and dense gradients summed in chunk order, row gradients put back in place. */
  private merge(
    pass: SequencePass,
    chunks: readonly SequencePass[],
    results: readonly SequencePassGradients[],
  ): SequencePassGradients {
    const L = pass.length;
    const d = pass.inputRows.length / Math.max(1, pass.size * L);
    const inputRows = new Float32Array(pass.size * L * d);
    const positiveRows = new Float32Array(pass.size * L * d);
    const negativeRows = new Float32Array(pass.size * L * d);
    const dense = new Map<string, Float32Array>();
    let loss = 0;
    let from = 0;
    results.forEach((result, k) => {
      const chunk = chunks[k]!;
      const skip = L - chunk.length;
      loss += result.loss;
      for (let b = 0; b < chunk.size; b++) {
        const to = ((from + b) * L + skip) * d;
        const at = b * chunk.length * d;
        const span = chunk.length * d;
        inputRows.set(result.inputRows.subarray(at, at + span), to);
        positiveRows.set(result.positiveRows.subarray(at, at + span), to);
        negativeRows.set(result.negativeRows.subarray(at, at + span), to);
      }
      for (const [name, g] of result.dense) {
        const total = dense.get(name);
        if (!total) dense.set(name, Float32Array.from(g));
        else for (let x = 0; x < g.length; x++) total[x] = total[x]! + g[x]!;
      }
      from += chunk.size;
    });
    return { loss, inputRows, positiveRows, negativeRows, dense };
  }

  async release(): Promise<void> {
    const workers = this.workers ?? [];
    this.workers = null;
    this.failAll(new Error('the sequence kernel was released'));
    await Promise.all(workers.map((w) => w.terminate()));
    await this.local.release();
  }
}
