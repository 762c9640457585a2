import { Worker } from 'node:worker_threads';
import { deriveSeed } from '@advrec/data';
import { SEQUENCE_ITEM_TABLE } from '@advrec/models';
import type { SequenceGradientKernel, SequencePass, SequencePassGradients } from '@advrec/models';
import type { Gemm } from '@advrec/onnx';
import { SASRecGradientKernel } from './kernel.js';
import type { ResolvedSASRecConfig } from './sasrec.js';

/**
 * Sequences per chunk: a pass is cut into chunks of this many sequences whatever the thread
 * count, each chunk's gradients computed alone (its own dropout seed) and the chunks summed
 * in order, so a run is the same on 1 thread as on 8.
 */
export const SASREC_CHUNK_SEQUENCES = 64;

/** What a kernel worker thread is started with. */
export interface KernelWorkerData {
  readonly config: ResolvedSASRecConfig;
}

/** A chunk's pass, the dense tables' current values with it. */
export interface KernelWorkerRequest {
  readonly id: number;
  readonly pass: SequencePass;
  readonly dense: ReadonlyMap<string, Float32Array>;
}

/** A worker's answer. */
export type KernelWorkerResponse =
  | { readonly id: number; readonly gradients: SequencePassGradients }
  | { readonly id: number; readonly error: string };

/** The worker-thread entry: `kernel-worker.js` beside this module once built. */
function workerEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new URL('../dist/kernel-worker.js', here)
    : new URL('./kernel-worker.js', here);
}

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

/**
 * SASRec's hand-written pass cut into fixed chunks of {@link SASREC_CHUNK_SEQUENCES}
 * sequences, the chunks run on `threads` worker threads (each with its own single-threaded
 * onnxruntime products) or in this thread when `threads` is 1. The same result on any thread
 * count: chunks, their seeds and the order they are summed in do not depend on it.
 */
export class ChunkedSASRecKernel implements SequenceGradientKernel {
  readonly name: string;
  private readonly local: SASRecGradientKernel;
  private workers: Worker[] | null = null;
  private readonly pending = new Map<
    number,
    { resolve: (g: SequencePassGradients) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;

  constructor(
    private readonly values: ReadonlyMap<string, Float32Array>,
    private readonly config: ResolvedSASRecConfig,
    gemm: Gemm,
    private readonly threads: number,
  ) {
    this.local = new SASRecGradientKernel(values, config, gemm);
    this.name =
      threads > 1
        ? `sasrec-fused (${threads} worker threads, onnxruntime products)`
        : `sasrec-fused (${gemm.backend} products)`;
  }

  private startWorkers(): Worker[] {
    if (this.workers) return this.workers;
    const data: KernelWorkerData = { config: this.config };
    this.workers = Array.from({ length: this.threads }, () => {
      const worker = new Worker(workerEntry(), { workerData: data });
      worker.on('message', (m: KernelWorkerResponse) => {
        const waiting = this.pending.get(m.id);
        if (!waiting) return;
        this.pending.delete(m.id);
        if ('error' in m) waiting.reject(new Error(`SASRec kernel worker: ${m.error}`));
        else waiting.resolve(m.gradients);
      });
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.failAll(new Error(`SASRec kernel worker exited with code ${code}`));
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
    worker.ref();
    return new Promise<SequencePassGradients>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(request, [
        pass.inputRows.buffer as ArrayBuffer,
        pass.positiveRows.buffer as ArrayBuffer,
        pass.negativeRows.buffer as ArrayBuffer,
        ...[...dense.values()].map((v) => v.buffer as ArrayBuffer),
      ]);
    }).finally(() => worker.unref());
  }

  async lossAndGradients(pass: SequencePass): Promise<SequencePassGradients> {
    const chunks: SequencePass[] = [];
    for (let from = 0, k = 0; from < pass.size; from += SASREC_CHUNK_SEQUENCES, k++)
      chunks.push(chunkOf(pass, from, Math.min(pass.size, from + SASREC_CHUNK_SEQUENCES), k));
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
    const d = this.config.dimension;
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
    this.failAll(new Error('the SASRec kernel was released'));
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
