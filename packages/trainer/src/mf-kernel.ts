/**
 * The fused MF training kernel (BPR and APR steps with a row-sparse optimiser): the same
 * code runs in-process (one thread) and in the engine's worker threads
 * (`mf-kernel-worker.ts`).
 *
 * The row arithmetic (margins, gradient accumulation, optimiser updates) runs in a small
 * WebAssembly SIMD module (`wasm/mf-kernel.wat`) over a shared `WebAssembly.Memory` that
 * holds the embeddings, the optimiser state and the per-row scratch, rows padded to a
 * multiple of 4 floats. The orchestration (batch index, phases, perturbations) is JS.
 *
 * Determinism: a mini-batch is processed in phases; a phase starts when every chunk of the
 * one before it is done. Per-triple work (scores, loss derivatives) is split into chunks of
 * triples; per-row work (gradients, perturbations, optimiser updates) into chunks of the
 * batch's unique rows, and every row's gradient is summed over its occurrences in triple
 * order. Workers claim chunks dynamically (a worker the scheduler pauses does not hold the
 * others up for long), and no sum depends on which worker computes it, so the tables are
 * bit-identical for any number of workers.
 *
 * @internal
 */

/** Byte offsets of the regions of the kernel's memory (-1 when absent). @internal */
export interface MfMemoryLayout {
  /** Floats per row: the embedding size rounded up to a multiple of 4. */
  readonly stride: number;
  readonly userEmbeddings: number;
  readonly itemEmbeddings: number;
  readonly userState1: number;
  readonly itemState1: number;
  readonly userState2: number;
  readonly itemState2: number;
  /** MF's item bias, one 16-byte row per item (the bias in lane 0), and its optimiser state; -1 when absent. */
  readonly itemBias: number;
  readonly itemBiasState1: number;
  readonly itemBiasState2: number;
  /** Per scratch region (one, or one per Hogwild worker): gradient, gamma and delta rows. */
  readonly scratch: readonly MfScratchLayout[];
  readonly bytes: number;
}

/** Byte offsets of one scratch region. @internal */
export interface MfScratchLayout {
  readonly userGradient: number;
  readonly itemGradient: number;
  readonly userGamma: number;
  readonly itemGamma: number;
  readonly userDelta: number;
  readonly itemDelta: number;
  /** The item bias gradients of the batch's unique items (16-byte rows), or -1. */
  readonly itemBiasGradient: number;
}

/** A compiled WebAssembly module (typed locally: the Node and ES libs have no WebAssembly types). @internal */
export type WasmModuleHandle = object;
/** A (shared) WebAssembly memory. @internal */
export interface WasmMemoryHandle {
  readonly buffer: ArrayBufferLike;
}
/** The parts of the WebAssembly API the kernel uses. @internal */
export interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModuleHandle;
  Memory: new (descriptor: {
    initial: number;
    maximum: number;
    shared: boolean;
  }) => WasmMemoryHandle;
  Instance: new (module: WasmModuleHandle, imports: object) => { exports: object };
}

/** Shared buffers the kernel reads and writes. @internal */
export interface MfKernelBuffers {
  readonly numUsers: number;
  readonly numItems: number;
  readonly dimension: number;
  /** The optimiser's code (as {@link MfKernelParams.optimizer}). */
  readonly optimizer: number;
  readonly batchSize: number;
  readonly ringSlots: number;
  readonly memory: WasmMemoryHandle;
  readonly module: WasmModuleHandle;
  readonly layout: MfMemoryLayout;
  /** ringSlots x batchSize each. */
  readonly ringUsers: Int32Array;
  readonly ringPositives: Int32Array;
  readonly ringNegatives: Int32Array;
  /**
   * ringSlots x SLOT_FIELDS: seq (batch number + 1, 0 = free), size, epoch, index, adversarial,
   * step, chunks claimed, chunks done, workers done with the batch.
   */
  readonly slotMeta: Int32Array;
  /** [unused, unused, stop, error]. */
  readonly control: Int32Array;
  /** Per-triple scratch (batchSize each, per scratch region): dL/dx clean and adversarial, margins. */
  readonly tripleClean: Float64Array;
  readonly tripleAdversarial: Float64Array;
  readonly tripleLoss: Float64Array;
  readonly tripleAdversarialLoss: Float64Array;
  /** Epoch totals per scratch region: [clean loss, lambda * adversarial loss, correct, triples, adversarial correct]. */
  readonly stats: Float64Array;
}

/** Hyper-parameters of the kernel. @internal */
export interface MfKernelParams {
  /** 0 adagrad, 1 sgd, 2 lazy adam. */
  readonly optimizer: number;
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly adamEpsilon: number;
  /** lambda_Theta. */
  readonly l2: number;
  readonly epsilon: number;
  /** lambda of APR. */
  readonly adversarialWeight: number;
  /** 0 none, 1 fgm, 2 fgsm, 3 random. */
  readonly adversary: number;
  readonly perturbUsers: boolean;
  readonly perturbItems: boolean;
  readonly seed: number;
}

/** Fields per ring slot in `slotMeta`. @internal */
export const SLOT_FIELDS = 9;

/** What a worker thread of the fused MF engine gets (`mf-kernel-worker.ts`). @internal */
export interface MfKernelWorkerData {
  readonly shared: MfKernelBuffers;
  readonly params: MfKernelParams;
  /** This worker's index. */
  readonly worker: number;
  readonly threads: number;
  /** `hogwild`: each worker takes every `threads`-th batch alone; otherwise all share each. */
  readonly mode: string;
}

/** The exports of the wasm module. @internal */
interface RowKernels {
  margin(p: number, a: number, b: number, n: number): number;
  marginPerturbed(
    p: number,
    dp: number,
    a: number,
    da: number,
    b: number,
    db: number,
    n: number,
  ): number;
  axpyDiff(g: number, c: number, a: number, b: number, n: number): void;
  axpyDiffPerturbed(
    g: number,
    c: number,
    a: number,
    da: number,
    b: number,
    db: number,
    n: number,
  ): void;
  axpy(g: number, c: number, a: number, n: number): void;
  axpyPerturbed(g: number, c: number, a: number, da: number, n: number): void;
  initScaled(g: number, src: number, c: number, a: number, n: number): void;
  zero(g: number, n: number): void;
  adagrad(v: number, acc: number, g: number, n: number, lr: number): void;
  sgd(v: number, g: number, n: number, lr: number): void;
  adam(
    v: number,
    m: number,
    s: number,
    g: number,
    n: number,
    lrt: number,
    b1: number,
    b2: number,
    eps: number,
  ): void;
}

/** Builds the kernel for scratch region `region`. @internal */
export function createMfKernel(
  buffers: MfKernelBuffers,
  params: MfKernelParams,
  region = 0,
): MfKernel {
  return new MfKernel(buffers, params, region);
}

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** A counter hash for the random-noise adversary: independent of which worker draws it. */
function hash(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ c, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ d, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A counter-based standard Gaussian (Box-Muller on two hashes). */
function gaussian(a: number, b: number, c: number, d: number): number {
  const u1 = (hash(a, b, c, 2 * d) + 1) / 4294967297;
  const u2 = hash(a, b, c, 2 * d + 1) / 4294967296;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Runs chunks `from .. from + count - 1` of the batch in the ring slot whose fields start at
 * `m`. With one worker, in order. With several, each worker claims the next unclaimed chunk
 * from the slot's claim counter until none is left: a worker the scheduler has paused holds
 * up at most the one chunk it is computing, and the others take the rest. Chunks write
 * disjoint outputs, so no result depends on which worker computes a chunk.
 */
function claimChunks(
  meta: Int32Array,
  m: number,
  T: number,
  from: number,
  count: number,
  body: (c: number) => void,
): void {
  const end = from + count;
  if (T === 1) {
    for (let c = 0; c < count; c++) body(c);
    return;
  }
  for (;;) {
    const c = Atomics.load(meta, m + 6);
    if (c >= end) return;
    if (Atomics.compareExchange(meta, m + 6, c, c + 1) !== c) continue;
    body(c - from);
    if (Atomics.add(meta, m + 7, 1) + 1 === end) Atomics.notify(meta, m + 7);
  }
}

/** Waits until every chunk before `end` of the slot's batch is done (spins briefly, then sleeps). */
function awaitChunks(
  meta: Int32Array,
  control: Int32Array,
  m: number,
  T: number,
  end: number,
): void {
  if (T === 1) return;
  let spins = 0;
  for (;;) {
    const done = Atomics.load(meta, m + 7);
    if (done >= end) return;
    if (++spins > 2000) {
      if (Atomics.load(control, 3) === 1) throw new Error('another training worker failed');
      Atomics.wait(meta, m + 7, done, 20);
    }
  }
}

/** Gamma of a user row (the clean BPR loss's gradient, no L2) into row `g`: its occurrences `[start, end)`. */
function userGammaInto(
  wasm: RowKernels,
  g: number,
  S: number,
  ROW: number,
  Q: number,
  cx: Float64Array,
  start: number,
  end: number,
  occUser: Int32Array,
  pos: Int32Array,
  neg: Int32Array,
  base: number,
): void {
  wasm.zero(g, S);
  for (let e = start; e < end; e++) {
    const t = occUser[e]!;
    wasm.axpyDiff(g, cx[t]!, Q + pos[base + t]! * ROW, Q + neg[base + t]! * ROW, S);
  }
}

/** Gamma of an item row into row `g`: its occurrences `[start, end)` (coded `2 t` / `2 t + 1`). */
function itemGammaInto(
  wasm: RowKernels,
  g: number,
  S: number,
  ROW: number,
  P: number,
  cx: Float64Array,
  start: number,
  end: number,
  occItem: Int32Array,
  users: Int32Array,
  base: number,
): void {
  wasm.zero(g, S);
  for (let e = start; e < end; e++) {
    const code = occItem[e]!;
    const t = code >> 1;
    wasm.axpy(g, code & 1 ? -cx[t]! : cx[t]!, P + users[base + t]! * ROW, S);
  }
}

/** The optimiser on one row (`n` floats, `rowBytes` apart: an embedding row, or a bias row of 4). */
function optimiseRow(
  wasm: RowKernels,
  params: MfKernelParams,
  table: number,
  state1: number,
  state2: number,
  row: number,
  g: number,
  step: number,
  n: number,
  rowBytes: number,
): void {
  const lr = params.learningRate;
  const v = table + row * rowBytes;
  const kind = params.optimizer;
  if (kind === 0) wasm.adagrad(v, state1 + row * rowBytes, g, n, lr);
  else if (kind === 1) wasm.sgd(v, g, n, lr);
  else {
    const lrt =
      (lr * Math.sqrt(1 - Math.pow(params.beta2, step))) / (1 - Math.pow(params.beta1, step));
    wasm.adam(
      v,
      state1 + row * rowBytes,
      state2 + row * rowBytes,
      g,
      n,
      lrt,
      params.beta1,
      params.beta2,
      params.adamEpsilon,
    );
  }
}

/**
 * A thread-local index of a batch's unique rows (every worker builds the same one): the
 * unique users, then the unique items, each with its occurrences in triple order.
 */
class BatchIndex {
  readonly userSlot: Int32Array;
  readonly itemSlot: Int32Array;
  readonly uniqueUsers: Int32Array;
  readonly uniqueItems: Int32Array;
  /** Occurrences of unique user r: `occUser[occUserStart[r] .. occUserStart[r + 1]]` (triples). */
  readonly occUserStart: Int32Array;
  readonly occUser: Int32Array;
  /** Occurrences of unique item s, coded `2 t` (positive of triple t) or `2 t + 1` (negative). */
  readonly occItemStart: Int32Array;
  readonly occItem: Int32Array;
  private readonly fill: Int32Array;
  nU = 0;
  nI = 0;

  constructor(numUsers: number, numItems: number, batchSize: number) {
    const B = batchSize;
    this.userSlot = new Int32Array(numUsers).fill(-1);
    this.itemSlot = new Int32Array(numItems).fill(-1);
    this.uniqueUsers = new Int32Array(B);
    this.uniqueItems = new Int32Array(2 * B);
    this.occUserStart = new Int32Array(B + 1);
    this.occUser = new Int32Array(B);
    this.occItemStart = new Int32Array(2 * B + 1);
    this.occItem = new Int32Array(2 * B);
    this.fill = new Int32Array(2 * B + 1);
  }

  build(users: Int32Array, pos: Int32Array, neg: Int32Array, base: number, size: number): void {
    const { userSlot, itemSlot, uniqueUsers, uniqueItems, occUserStart, occItemStart } = this;
    const { occUser, occItem, fill } = this;
    let nU = 0;
    let nI = 0;
    for (let t = 0; t < size; t++) {
      const u = users[base + t]!;
      if (userSlot[u]! < 0) {
        userSlot[u] = nU;
        uniqueUsers[nU++] = u;
      }
      const i = pos[base + t]!;
      if (itemSlot[i]! < 0) {
        itemSlot[i] = nI;
        uniqueItems[nI++] = i;
      }
      const j = neg[base + t]!;
      if (itemSlot[j]! < 0) {
        itemSlot[j] = nI;
        uniqueItems[nI++] = j;
      }
    }
    this.nU = nU;
    this.nI = nI;
    // Occurrences per unique row, in triple order (counting sort).
    occUserStart.fill(0, 0, nU + 1);
    occItemStart.fill(0, 0, nI + 1);
    for (let t = 0; t < size; t++) {
      occUserStart[userSlot[users[base + t]!]! + 1]!++;
      occItemStart[itemSlot[pos[base + t]!]! + 1]!++;
      occItemStart[itemSlot[neg[base + t]!]! + 1]!++;
    }
    for (let s = 0; s < nU; s++) occUserStart[s + 1]! += occUserStart[s]!;
    for (let s = 0; s < nI; s++) occItemStart[s + 1]! += occItemStart[s]!;
    fill.set(occUserStart.subarray(0, nU));
    for (let t = 0; t < size; t++) occUser[fill[userSlot[users[base + t]!]!]!++] = t;
    fill.set(occItemStart.subarray(0, nI));
    for (let t = 0; t < size; t++) {
      occItem[fill[itemSlot[pos[base + t]!]!]!++] = 2 * t;
      occItem[fill[itemSlot[neg[base + t]!]!]!++] = 2 * t + 1;
    }
  }

  clear(): void {
    for (let s = 0; s < this.nU; s++) this.userSlot[this.uniqueUsers[s]!] = -1;
    for (let s = 0; s < this.nI; s++) this.itemSlot[this.uniqueItems[s]!] = -1;
  }

  /** Work units of unique row r in the gradient phases (a user occurrence reads two item rows). */
  rowWork(r: number): number {
    const nU = this.nU;
    return r < nU
      ? 1 + 3 * (this.occUserStart[r + 1]! - this.occUserStart[r]!)
      : 1 + (this.occItemStart[r - nU + 1]! - this.occItemStart[r - nU]!);
  }

  /**
   * Row-chunk boundaries of the gradient phases into `bounds` (N + 1 entries), balanced by
   * work: one unit per row, 3 per user occurrence (one per triple), 1 per item occurrence
   * (two per triple).
   */
  balance(bounds: Int32Array, N: number, size: number): void {
    const total = this.nU + this.nI;
    bounds[0] = 0;
    if (N > 1) {
      const work = total + 5 * size;
      let acc = 0;
      let c = 1;
      for (let r = 0; r < total && c < N; r++) {
        while (c < N && acc >= (c * work) / N) bounds[c++] = r;
        acc += this.rowWork(r);
      }
      while (c < N) bounds[c++] = total;
    }
    bounds[N] = total;
  }
}

/** Where one batch lies in the ring and how its phases are shared. */
interface BatchRun {
  /** The slot's first field in `slotMeta`. */
  readonly m: number;
  /** Workers sharing the batch. */
  readonly T: number;
  /** Chunks per phase. */
  readonly N: number;
  readonly size: number;
  /** The batch's first triple in the ring. */
  readonly base: number;
  readonly epoch: number;
  readonly index: number;
  readonly step: number;
}

/**
 * The fused MF kernel on one scratch region: BPR and APR mini-batch steps over the shared
 * WebAssembly memory. @internal
 */
export class MfKernel {
  private readonly wasm: RowKernels;
  private readonly buffers: MfKernelBuffers;
  private readonly params: MfKernelParams;
  private readonly K: number;
  /** Floats per row, and bytes per row. */
  private readonly S: number;
  private readonly ROW: number;
  private readonly F32: Float32Array;
  private readonly P: number;
  private readonly Q: number;
  private readonly scratch: MfScratchLayout;
  /** MF's item bias (lane 0 of 16-byte rows), or -1. */
  private readonly BIAS: number;
  private readonly cx: Float64Array;
  private readonly ca: Float64Array;
  private readonly lossT: Float64Array;
  private readonly advLossT: Float64Array;
  private readonly stats: Float64Array;
  private readonly index: BatchIndex;
  /** Row-chunk boundaries of the gradient phases (grown to the chunk count on first use). */
  private rowBounds = new Int32Array(1);
  private readonly noise: Float64Array;
  private readonly l2x2: number;

  constructor(buffers: MfKernelBuffers, params: MfKernelParams, region: number) {
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    this.wasm = new api.Instance(buffers.module, { env: { memory: buffers.memory } })
      .exports as RowKernels;
    this.buffers = buffers;
    this.params = params;
    const L = buffers.layout;
    const B = buffers.batchSize;
    this.K = buffers.dimension;
    this.S = L.stride;
    this.ROW = L.stride * 4;
    this.F32 = new Float32Array(buffers.memory.buffer);
    this.P = L.userEmbeddings;
    this.Q = L.itemEmbeddings;
    this.scratch = L.scratch[region]!;
    this.BIAS = L.itemBias;
    this.cx = buffers.tripleClean.subarray(region * B, region * B + B);
    this.ca = buffers.tripleAdversarial.subarray(region * B, region * B + B);
    this.lossT = buffers.tripleLoss.subarray(region * B, region * B + B);
    this.advLossT = buffers.tripleAdversarialLoss.subarray(region * B, region * B + B);
    this.stats = buffers.stats.subarray(region * 5, region * 5 + 5);
    this.index = new BatchIndex(buffers.numUsers, buffers.numItems, B);
    this.noise = new Float64Array(this.K);
    this.l2x2 = 2 * params.l2;
  }

  private biasOf(item: number): number {
    return this.BIAS >= 0 ? this.F32[(this.BIAS >> 2) + item * 4]! : 0;
  }

  /**
   * Runs batch `slot` as one of `T` workers (T = 1: the whole batch in order). The batch runs
   * in phases (margins; gradients; with APR, gamma and Delta, perturbed margins, perturbed
   * gradients; the optimiser), each split into chunks that the workers claim
   * ({@link claimChunks}); a phase starts when every chunk of the one before it is done.
   * Worker-local work (the row index) is repeated by every worker.
   */
  runBatch(slot: number, T: number): void {
    const { buffers } = this;
    const meta = buffers.slotMeta;
    const m = slot * SLOT_FIELDS;
    const adversarial = meta[m + 4]! === 1;
    // Chunks per phase: a paused worker strands at most 1/N of a phase.
    const N = T === 1 ? 1 : 8 * T;
    const run: BatchRun = {
      m,
      T,
      N,
      size: meta[m + 1]!,
      base: slot * buffers.batchSize,
      epoch: meta[m + 2]!,
      index: meta[m + 3]!,
      step: meta[m + 5]!,
    };
    if (this.rowBounds.length < N + 1) this.rowBounds = new Int32Array(N + 1);
    const phases = adversarial
      ? [
          (c: number) => this.gammaAndDelta(run, c),
          (c: number) => this.perturbedMargins(run, c),
          (c: number) => this.perturbedGradients(run, c),
        ]
      : [(c: number) => this.cleanGradients(run, c)];
    let end = 0;
    // Phase A: clean margins, by ranges of triples; then the row index, built by every worker.
    claimChunks(meta, m, T, end, N, (c) => this.cleanMargins(run, c));
    end += N;
    this.index.build(
      buffers.ringUsers,
      buffers.ringPositives,
      buffers.ringNegatives,
      run.base,
      run.size,
    );
    this.index.balance(this.rowBounds, N, run.size);
    awaitChunks(meta, buffers.control, m, T, end);
    // Phases B (BPR) or B1, A2, B2 (APR).
    for (const phase of phases) {
      claimChunks(meta, m, T, end, N, phase);
      end += N;
      awaitChunks(meta, buffers.control, m, T, end);
    }
    // Phase C: the optimiser, by ranges of rows; one more chunk adds the batch's totals to
    // `stats` (in triple order, so the sums do not depend on the workers either).
    claimChunks(meta, m, T, end, N + 1, (c) =>
      c === N ? this.addStats(run.size, adversarial) : this.optimise(run, c),
    );
    end += N + 1;
    this.index.clear();
    awaitChunks(meta, buffers.control, m, T, end);
  }

  /** Phase A, chunk c: clean margins and dL/dx of the chunk's triples. */
  private cleanMargins(run: BatchRun, c: number): void {
    const { wasm, P, Q, ROW, S, BIAS, lossT, cx } = this;
    const { size, N, base } = run;
    const users = this.buffers.ringUsers;
    const pos = this.buffers.ringPositives;
    const neg = this.buffers.ringNegatives;
    const t1 = Math.floor(((c + 1) * size) / N);
    for (let t = Math.floor((c * size) / N); t < t1; t++) {
      const x = wasm.margin(
        P + users[base + t]! * ROW,
        Q + pos[base + t]! * ROW,
        Q + neg[base + t]! * ROW,
        S,
      );
      const xb = BIAS >= 0 ? x + (this.biasOf(pos[base + t]!) - this.biasOf(neg[base + t]!)) : x;
      lossT[t] = xb;
      cx[t] = -sigmoid(-xb);
    }
  }

  /** Phase B (BPR), chunk c: gradients of the chunk's unique rows (clean BPR + L2 per occurrence). */
  private cleanGradients(run: BatchRun, c: number): void {
    const { wasm, P, Q, ROW, S, BIAS, l2x2, cx, index, rowBounds } = this;
    const { userGradient: gU, itemGradient: gI } = this.scratch;
    const { nU, occUserStart, occUser, occItemStart, occItem, uniqueUsers, uniqueItems } = index;
    const { ringUsers: users, ringPositives: pos, ringNegatives: neg } = this.buffers;
    const base = run.base;
    for (let r = rowBounds[c]!; r < rowBounds[c + 1]!; r++) {
      if (r < nU) {
        const start = occUserStart[r]!;
        const end = occUserStart[r + 1]!;
        userGammaInto(wasm, gU + r * ROW, S, ROW, Q, cx, start, end, occUser, pos, neg, base);
        if (l2x2 !== 0) wasm.axpy(gU + r * ROW, l2x2 * (end - start), P + uniqueUsers[r]! * ROW, S);
      } else {
        const s = r - nU;
        const start = occItemStart[s]!;
        const end = occItemStart[s + 1]!;
        itemGammaInto(wasm, gI + s * ROW, S, ROW, P, cx, start, end, occItem, users, base);
        if (l2x2 !== 0) wasm.axpy(gI + s * ROW, l2x2 * (end - start), Q + uniqueItems[s]! * ROW, S);
        if (BIAS >= 0) this.biasGradient(s, false);
      }
    }
  }

  /** Phase B1 (APR), chunk c: gamma (the clean gradient w.r.t. Delta at 0, APR Eq. 8) and Delta per row. */
  private gammaAndDelta(run: BatchRun, c: number): void {
    const { wasm, P, Q, ROW, S, cx, params, index, rowBounds } = this;
    const { userGamma: gamU, itemGamma: gamI, userDelta: dU, itemDelta: dI } = this.scratch;
    const { nU, occUserStart, occUser, occItemStart, occItem, uniqueUsers, uniqueItems } = index;
    const { ringUsers: users, ringPositives: pos, ringNegatives: neg } = this.buffers;
    const base = run.base;
    for (let r = rowBounds[c]!; r < rowBounds[c + 1]!; r++) {
      if (r < nU) {
        const g = gamU + r * ROW;
        userGammaInto(
          wasm,
          g,
          S,
          ROW,
          Q,
          cx,
          occUserStart[r]!,
          occUserStart[r + 1]!,
          occUser,
          pos,
          neg,
          base,
        );
        if (params.perturbUsers)
          this.perturb(g, dU + r * ROW, 0, uniqueUsers[r]!, run.epoch, run.index);
        else wasm.zero(dU + r * ROW, S);
      } else {
        const s = r - nU;
        const g = gamI + s * ROW;
        itemGammaInto(
          wasm,
          g,
          S,
          ROW,
          P,
          cx,
          occItemStart[s]!,
          occItemStart[s + 1]!,
          occItem,
          users,
          base,
        );
        if (params.perturbItems)
          this.perturb(g, dI + s * ROW, 1, uniqueItems[s]!, run.epoch, run.index);
        else wasm.zero(dI + s * ROW, S);
      }
    }
  }

  /** Phase A2 (APR), chunk c: perturbed margins (APR Eq. 12) of the chunk's triples. */
  private perturbedMargins(run: BatchRun, c: number): void {
    const { wasm, P, Q, ROW, S, BIAS, advLossT, ca } = this;
    const { userDelta: dU, itemDelta: dI } = this.scratch;
    const { userSlot, itemSlot } = this.index;
    const { size, N, base } = run;
    const users = this.buffers.ringUsers;
    const pos = this.buffers.ringPositives;
    const neg = this.buffers.ringNegatives;
    const lambda = this.params.adversarialWeight;
    const t1 = Math.floor(((c + 1) * size) / N);
    for (let t = Math.floor((c * size) / N); t < t1; t++) {
      const u = users[base + t]!;
      const i = pos[base + t]!;
      const j = neg[base + t]!;
      const xp = wasm.marginPerturbed(
        P + u * ROW,
        dU + userSlot[u]! * ROW,
        Q + i * ROW,
        dI + itemSlot[i]! * ROW,
        Q + j * ROW,
        dI + itemSlot[j]! * ROW,
        S,
      );
      // The bias is not perturbed: it enters the perturbed margin as it is.
      const x = BIAS >= 0 ? xp + (this.biasOf(i) - this.biasOf(j)) : xp;
      advLossT[t] = x;
      ca[t] = -lambda * sigmoid(-x);
    }
  }

  /** Phase B2 (APR), chunk c: gamma + L2 + lambda * the perturbed gradient (APR Eq. 10) per row. */
  private perturbedGradients(run: BatchRun, c: number): void {
    const { wasm, P, Q, ROW, S, BIAS, l2x2, ca, index, rowBounds } = this;
    const { userGradient: gU, itemGradient: gI, userGamma: gamU, itemGamma: gamI } = this.scratch;
    const { userDelta: dU, itemDelta: dI } = this.scratch;
    const { nU, userSlot, itemSlot, uniqueUsers, uniqueItems } = index;
    const { occUserStart, occUser, occItemStart, occItem } = index;
    const base = run.base;
    const users = this.buffers.ringUsers;
    const pos = this.buffers.ringPositives;
    const neg = this.buffers.ringNegatives;
    for (let r = rowBounds[c]!; r < rowBounds[c + 1]!; r++) {
      if (r < nU) {
        const g = gU + r * ROW;
        const n = occUserStart[r + 1]! - occUserStart[r]!;
        wasm.initScaled(g, gamU + r * ROW, l2x2 * n, P + uniqueUsers[r]! * ROW, S);
        for (let e = occUserStart[r]!; e < occUserStart[r + 1]!; e++) {
          const t = occUser[e]!;
          const i = pos[base + t]!;
          const j = neg[base + t]!;
          wasm.axpyDiffPerturbed(
            g,
            ca[t]!,
            Q + i * ROW,
            dI + itemSlot[i]! * ROW,
            Q + j * ROW,
            dI + itemSlot[j]! * ROW,
            S,
          );
        }
      } else {
        const s = r - nU;
        const g = gI + s * ROW;
        const n = occItemStart[s + 1]! - occItemStart[s]!;
        wasm.initScaled(g, gamI + s * ROW, l2x2 * n, Q + uniqueItems[s]! * ROW, S);
        for (let e = occItemStart[s]!; e < occItemStart[s + 1]!; e++) {
          const code = occItem[e]!;
          const t = code >> 1;
          const u = users[base + t]!;
          wasm.axpyPerturbed(
            g,
            code & 1 ? -ca[t]! : ca[t]!,
            P + u * ROW,
            dU + userSlot[u]! * ROW,
            S,
          );
        }
        if (BIAS >= 0) this.biasGradient(s, true);
      }
    }
  }

  /** Phase C, chunk c: the optimiser on the chunk's unique rows (and their item biases). */
  private optimise(run: BatchRun, c: number): void {
    const { wasm, params, P, Q, S, ROW, BIAS } = this;
    const L = this.buffers.layout;
    const { userGradient: gU, itemGradient: gI, itemBiasGradient: gB } = this.scratch;
    const { nU, nI, uniqueUsers, uniqueItems } = this.index;
    const { N, step } = run;
    const total = nU + nI;
    const r1 = Math.floor(((c + 1) * total) / N);
    for (let r = Math.floor((c * total) / N); r < r1; r++) {
      if (r < nU) {
        const u = uniqueUsers[r]!;
        optimiseRow(wasm, params, P, L.userState1, L.userState2, u, gU + r * ROW, step, S, ROW);
      } else {
        const s = r - nU;
        const i = uniqueItems[s]!;
        optimiseRow(wasm, params, Q, L.itemState1, L.itemState2, i, gI + s * ROW, step, S, ROW);
        if (BIAS >= 0)
          optimiseRow(
            wasm,
            params,
            BIAS,
            L.itemBiasState1,
            L.itemBiasState2,
            i,
            gB + s * 16,
            step,
            4,
            16,
          );
      }
    }
  }

  /**
   * The item bias gradient of unique item `s` into lane 0 of its scratch row: the clean BPR
   * term (+1 for a positive, -1 for a negative occurrence, times dL/dx), the adversarial
   * term when `adversarial`, and L2 per occurrence.
   */
  private biasGradient(s: number, adversarial: boolean): void {
    const { cx, ca } = this;
    const { occItemStart, occItem, uniqueItems } = this.index;
    let g = 0;
    for (let e = occItemStart[s]!; e < occItemStart[s + 1]!; e++) {
      const code = occItem[e]!;
      const t = code >> 1;
      const d = adversarial ? cx[t]! + ca[t]! : cx[t]!;
      g += code & 1 ? -d : d;
    }
    const n = occItemStart[s + 1]! - occItemStart[s]!;
    this.F32[(this.scratch.itemBiasGradient >> 2) + s * 4] =
      g + this.l2x2 * n * this.biasOf(uniqueItems[s]!);
  }

  /** The adversary's perturbation of one row from its gamma (padding stays zero). */
  private perturb(
    gamma: number,
    delta: number,
    side: number,
    row: number,
    epoch: number,
    index: number,
  ): void {
    const { F32, K, S } = this;
    const eps = this.params.epsilon;
    const g = gamma >> 2;
    const d = delta >> 2;
    const kind = this.params.adversary;
    if (kind === 1) {
      let n = 0;
      for (let f = 0; f < K; f++) n += F32[g + f]! * F32[g + f]!;
      n = Math.sqrt(n);
      const scale = n > 0 ? eps / n : 0;
      for (let f = 0; f < S; f++) F32[d + f] = F32[g + f]! * scale;
    } else if (kind === 2) {
      for (let f = 0; f < S; f++) {
        const v = F32[g + f]!;
        F32[d + f] = v > 0 ? eps : v < 0 ? -eps : 0;
      }
    } else if (kind === 3) {
      let n = 0;
      const key = (epoch * 0x10000 + index) | 0;
      const z = this.noise;
      for (let f = 0; f < K; f++) {
        z[f] = gaussian(this.params.seed, key, row * 2 + side, f);
        n += z[f]! * z[f]!;
      }
      const scale = n > 0 ? eps / Math.sqrt(n) : 0;
      for (let f = 0; f < S; f++) F32[d + f] = f < K ? z[f]! * scale : 0;
    } else {
      for (let f = 0; f < S; f++) F32[d + f] = 0;
    }
  }

  private addStats(size: number, adversarial: boolean): void {
    const { lossT, advLossT, stats } = this;
    let loss = 0;
    let correct = 0;
    let advLoss = 0;
    let advCorrect = 0;
    for (let t = 0; t < size; t++) {
      const x = lossT[t]!;
      loss += softplus(-x);
      if (x > 0) correct++;
      if (adversarial) {
        const xa = advLossT[t]!;
        advLoss += softplus(-xa);
        if (xa > 0) advCorrect++;
      }
    }
    stats[0]! += loss;
    stats[1]! += this.params.adversarialWeight * advLoss;
    stats[2]! += correct;
    stats[3]! += size;
    stats[4]! += advCorrect;
  }
}
