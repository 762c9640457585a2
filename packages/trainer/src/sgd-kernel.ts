/**
 * The per-triple SGD kernel's thread-side code: what one thread runs for its share of an
 * epoch, in-process and in the worker threads (`sgd-kernel-worker.ts`). @internal
 */
import type { WasmMemoryHandle, WasmModuleHandle } from './mf-kernel.js';

/** Byte offsets of the kernel memory's regions. @internal */
export interface SgdMemoryLayout {
  /** Bytes per table row (the embedding size padded to a multiple of 4 floats). */
  readonly row: number;
  readonly userEmbeddings: number;
  readonly itemEmbeddings: number;
  readonly entryUsers: number;
  readonly rowPointers: number;
  /** The training items, row by row, sorted within a row (also each entry's item). */
  readonly items: number;
  readonly candidates: number;
  /** The item bias (f32 per item, padded to a multiple of 4), or -1 without one. */
  readonly itemBias: number;
  /** Floats in the bias region (a multiple of 4). */
  readonly itemBiasLength: number;
  /** One 16-byte generator state per thread. */
  readonly states: number;
  /** Per thread: loss, correct, triples, skipped (f64). */
  readonly stats: number;
  readonly bytes: number;
}

/** The exports of `wasm/sgd-kernel.wat`. @internal */
export interface SgdKernel {
  sgdTriples(
    P: number,
    Q: number,
    row: number,
    entryUsers: number,
    entryItems: number,
    nnz: number,
    rowPtr: number,
    cols: number,
    candidates: number,
    numCandidates: number,
    count: number,
    statePtr: number,
    lr: number,
    reg: number,
    stats: number,
    bias: number,
  ): void;
  sumSquares(p: number, n: number): number;
}

/** What a worker needs (structured-cloned; the memory and control are shared). @internal */
export interface SgdJob {
  readonly memory: WasmMemoryHandle;
  readonly module: WasmModuleHandle;
  readonly control: Int32Array;
  readonly layout: SgdMemoryLayout;
  readonly nnz: number;
  readonly numCandidates: number;
  readonly learningRate: number;
  readonly l2: number;
  readonly seed: number;
  readonly threads: number;
}

/** A non-zero xorshift32 state for (seed, epoch, thread): a splitmix-style hash. @internal */
export function sgdStreamState(seed: number, epoch: number, thread: number): number {
  let x = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) | 0;
  x = (x + Math.imul(thread + 1, 0xc2b2ae3d)) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  x ^= x >>> 16;
  return x === 0 ? 0x6d2b79f5 : x;
}

/**
 * Runs one thread's share of an epoch: `count` triples from the stream of
 * (seed, epoch, thread). @internal
 */
export function runSgdShare(
  kernel: SgdKernel,
  memory: WasmMemoryHandle,
  job: Omit<SgdJob, 'memory' | 'module' | 'control'>,
  epoch: number,
  thread: number,
): void {
  const L = job.layout;
  const share = Math.floor(job.nnz / job.threads) + (thread < job.nnz % job.threads ? 1 : 0);
  const words = new Int32Array(memory.buffer, L.states + thread * 16, 1);
  words[0] = sgdStreamState(job.seed, epoch, thread);
  kernel.sgdTriples(
    L.userEmbeddings,
    L.itemEmbeddings,
    L.row,
    L.entryUsers,
    L.items,
    job.nnz,
    L.rowPointers,
    L.items,
    L.candidates,
    job.numCandidates,
    share,
    L.states + thread * 16,
    job.learningRate,
    job.l2,
    L.stats + thread * 32,
    L.itemBias,
  );
}
