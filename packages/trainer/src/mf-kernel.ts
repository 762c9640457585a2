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
export function createMfKernel(buffers: MfKernelBuffers, params: MfKernelParams, region = 0) {
  const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const wasm = new api.Instance(buffers.module, { env: { memory: buffers.memory } })
    .exports as RowKernels;
  const K = buffers.dimension;
  const B = buffers.batchSize;
  const L = buffers.layout;
  const S = L.stride;
  const ROW = S * 4;
  const F32 = new Float32Array(buffers.memory.buffer);
  const P = L.userEmbeddings;
  const Q = L.itemEmbeddings;
  const scratchLayout = L.scratch[region]!;
  const gU = scratchLayout.userGradient;
  const gI = scratchLayout.itemGradient;
  const gamU = scratchLayout.userGamma;
  const gamI = scratchLayout.itemGamma;
  const dU = scratchLayout.userDelta;
  const dI = scratchLayout.itemDelta;
  // MF's item bias (lane 0 of 16-byte rows), or none.
  const BIAS = L.itemBias;
  const B32 = BIAS >> 2;
  const gB = scratchLayout.itemBiasGradient;
  const biasOf = (item: number): number => (BIAS >= 0 ? F32[B32 + item * 4]! : 0);
  const cx = buffers.tripleClean.subarray(region * B, region * B + B);
  const ca = buffers.tripleAdversarial.subarray(region * B, region * B + B);
  const lossT = buffers.tripleLoss.subarray(region * B, region * B + B);
  const advLossT = buffers.tripleAdversarialLoss.subarray(region * B, region * B + B);
  const stats = buffers.stats.subarray(region * 5, region * 5 + 5);
  const meta = buffers.slotMeta;
  const control = buffers.control;
  const FIELDS = SLOT_FIELDS;

  // Thread-local index of the batch's unique rows (every worker builds the same one).
  const userSlot = new Int32Array(buffers.numUsers).fill(-1);
  const itemSlot = new Int32Array(buffers.numItems).fill(-1);
  const uniqueUsers = new Int32Array(B);
  const uniqueItems = new Int32Array(2 * B);
  const occUserStart = new Int32Array(B + 1);
  const occUser = new Int32Array(B);
  const occItemStart = new Int32Array(2 * B + 1);
  const occItem = new Int32Array(2 * B);
  const fill = new Int32Array(2 * B + 1);
  // Row-chunk boundaries of the gradient phases (grown to the chunk count on first use).
  let rowBounds = new Int32Array(1);
  const noise = new Float64Array(K);
  let nU = 0;
  let nI = 0;

  const lr = params.learningRate;
  const l2x2 = 2 * params.l2;
  const eps = params.epsilon;
  const lambda = params.adversarialWeight;

  function softplus(x: number): number {
    return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
  }
  function sigmoid(x: number): number {
    if (x >= 0) return 1 / (1 + Math.exp(-x));
    const e = Math.exp(x);
    return e / (1 + e);
  }

  function buildIndex(
    users: Int32Array,
    pos: Int32Array,
    neg: Int32Array,
    base: number,
    size: number,
  ): void {
    nU = 0;
    nI = 0;
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

  function clearIndex(): void {
    for (let s = 0; s < nU; s++) userSlot[uniqueUsers[s]!] = -1;
    for (let s = 0; s < nI; s++) itemSlot[uniqueItems[s]!] = -1;
  }

  // A counter-based Gaussian for random noise: independent of which worker draws it.
  function hash(a: number, b: number, c: number, d: number): number {
    let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ c, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ d, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }
  function gaussian(a: number, b: number, c: number, d: number): number {
    const u1 = (hash(a, b, c, 2 * d) + 1) / 4294967297;
    const u2 = hash(a, b, c, 2 * d + 1) / 4294967296;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Gamma (gradient of the clean BPR loss, no L2) of unique user row r into `out`. */
  function userGamma(
    r: number,
    users: Int32Array,
    pos: Int32Array,
    neg: Int32Array,
    base: number,
    out: number,
  ): void {
    const g = out + r * ROW;
    wasm.zero(g, S);
    for (let e = occUserStart[r]!; e < occUserStart[r + 1]!; e++) {
      const t = occUser[e]!;
      wasm.axpyDiff(g, cx[t]!, Q + pos[base + t]! * ROW, Q + neg[base + t]! * ROW, S);
    }
  }
  function itemGamma(s: number, users: Int32Array, base: number, out: number): void {
    const g = out + s * ROW;
    wasm.zero(g, S);
    for (let e = occItemStart[s]!; e < occItemStart[s + 1]!; e++) {
      const code = occItem[e]!;
      const t = code >> 1;
      wasm.axpy(g, code & 1 ? -cx[t]! : cx[t]!, P + users[base + t]! * ROW, S);
    }
  }

  /**
   * The item bias gradient of unique item `s` into lane 0 of its scratch row: the clean BPR
   * term (+1 for a positive, -1 for a negative occurrence, times dL/dx), the adversarial
   * term when `adversarial`, and L2 per occurrence.
   */
  function biasGradient(s: number, adversarial: boolean): void {
    let g = 0;
    for (let e = occItemStart[s]!; e < occItemStart[s + 1]!; e++) {
      const code = occItem[e]!;
      const t = code >> 1;
      const d = adversarial ? cx[t]! + ca[t]! : cx[t]!;
      g += code & 1 ? -d : d;
    }
    const n = occItemStart[s + 1]! - occItemStart[s]!;
    F32[(gB >> 2) + s * 4] = g + l2x2 * n * biasOf(uniqueItems[s]!);
  }

  /** The adversary's perturbation of one row from its gamma (padding stays zero). */
  function perturb(
    gamma: number,
    delta: number,
    side: number,
    row: number,
    epoch: number,
    index: number,
  ): void {
    const g = gamma >> 2;
    const d = delta >> 2;
    const kind = params.adversary;
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
      const z = noise;
      for (let f = 0; f < K; f++) {
        z[f] = gaussian(params.seed, key, row * 2 + side, f);
        n += z[f]! * z[f]!;
      }
      const scale = n > 0 ? eps / Math.sqrt(n) : 0;
      for (let f = 0; f < S; f++) F32[d + f] = f < K ? z[f]! * scale : 0;
    } else {
      for (let f = 0; f < S; f++) F32[d + f] = 0;
    }
  }

  /** The optimiser on one row (`n` floats, `rowBytes` apart: an embedding row, or a bias row of 4). */
  function applyRow(
    table: number,
    state1: number,
    state2: number,
    row: number,
    g: number,
    step: number,
    n = S,
    rowBytes = ROW,
  ): void {
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

  /** Work units of unique row r in the gradient phases (a user occurrence reads two item rows). */
  function rowWork(r: number): number {
    return r < nU
      ? 1 + 3 * (occUserStart[r + 1]! - occUserStart[r]!)
      : 1 + (occItemStart[r - nU + 1]! - occItemStart[r - nU]!);
  }

  /**
   * Runs chunks `from .. from + count - 1` of the batch in ring slot `m / FIELDS`. With one
   * worker, in order. With several, each worker claims the next unclaimed chunk from the
   * slot's claim counter until none is left: a worker the scheduler has paused holds up at
   * most the one chunk it is computing, and the others take the rest. Chunks write disjoint
   * outputs, so no result depends on which worker computes a chunk.
   */
  function claimChunks(
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
  function awaitChunks(m: number, T: number, end: number): void {
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

  /**
   * Runs batch `slot` as one of `T` workers (T = 1: the whole batch in order). The batch runs
   * in phases (margins; gradients; with APR, gamma and Delta, perturbed margins, perturbed
   * gradients; the optimiser), each split into chunks that the workers claim
   * ({@link claimChunks}); a phase starts when every chunk of the one before it is done.
   * Worker-local work (the row index) is repeated by every worker.
   */
  function runBatch(slot: number, T: number): void {
    const m = slot * FIELDS;
    const size = meta[m + 1]!;
    const epoch = meta[m + 2]!;
    const index = meta[m + 3]!;
    const adversarial = meta[m + 4]! === 1;
    const step = meta[m + 5]!;
    const base = slot * B;
    const users = buffers.ringUsers;
    const pos = buffers.ringPositives;
    const neg = buffers.ringNegatives;
    // Chunks per phase: a paused worker strands at most 1/N of a phase.
    const N = T === 1 ? 1 : 8 * T;
    if (rowBounds.length < N + 1) rowBounds = new Int32Array(N + 1);
    let end = 0;

    // Phase A: clean margins, by ranges of triples.
    claimChunks(m, T, end, N, (c) => {
      const t1 = Math.floor(((c + 1) * size) / N);
      for (let t = Math.floor((c * size) / N); t < t1; t++) {
        const x = wasm.margin(
          P + users[base + t]! * ROW,
          Q + pos[base + t]! * ROW,
          Q + neg[base + t]! * ROW,
          S,
        );
        const xb = BIAS >= 0 ? x + (biasOf(pos[base + t]!) - biasOf(neg[base + t]!)) : x;
        lossT[t] = xb;
        cx[t] = -sigmoid(-xb);
      }
    });
    end += N;
    buildIndex(users, pos, neg, base, size);
    // Row chunks for the gradient phases, balanced by work; for the optimiser, by count.
    const total = nU + nI;
    rowBounds[0] = 0;
    if (N > 1) {
      // Sum of rowWork over all rows: one unit per row, 3 per user occurrence (one per
      // triple), 1 per item occurrence (two per triple).
      const work = total + 5 * size;
      let acc = 0;
      let c = 1;
      for (let r = 0; r < total && c < N; r++) {
        while (c < N && acc >= (c * work) / N) rowBounds[c++] = r;
        acc += rowWork(r);
      }
      while (c < N) rowBounds[c++] = total;
    }
    rowBounds[N] = total;
    awaitChunks(m, T, end);

    if (!adversarial) {
      // Phase B: gradients of unique rows (clean BPR + L2 per occurrence).
      claimChunks(m, T, end, N, (c) => {
        for (let r = rowBounds[c]!; r < rowBounds[c + 1]!; r++) {
          if (r < nU) {
            userGamma(r, users, pos, neg, base, gU);
            if (l2x2 !== 0) {
              const n = occUserStart[r + 1]! - occUserStart[r]!;
              wasm.axpy(gU + r * ROW, l2x2 * n, P + uniqueUsers[r]! * ROW, S);
            }
          } else {
            const s = r - nU;
            itemGamma(s, users, base, gI);
            if (l2x2 !== 0) {
              const n = occItemStart[s + 1]! - occItemStart[s]!;
              wasm.axpy(gI + s * ROW, l2x2 * n, Q + uniqueItems[s]! * ROW, S);
            }
            if (BIAS >= 0) biasGradient(s, false);
          }
        }
      });
      end += N;
      awaitChunks(m, T, end);
    } else {
      // Phase B1: gamma (the clean gradient w.r.t. Delta at 0, APR Eq. 8) and Delta per row.
      claimChunks(m, T, end, N, (c) => {
        for (let r = rowBounds[c]!; r < rowBounds[c + 1]!; r++) {
          if (r < nU) {
            userGamma(r, users, pos, neg, base, gamU);
            if (params.perturbUsers)
              perturb(gamU + r * ROW, dU + r * ROW, 0, uniqueUsers[r]!, epoch, index);
            else wasm.zero(dU + r * ROW, S);
          } else {
            const s = r - nU;
            itemGamma(s, users, base, gamI);
            if (params.perturbItems)
              perturb(gamI + s * ROW, dI + s * ROW, 1, uniqueItems[s]!, epoch, index);
            else wasm.zero(dI + s * ROW, S);
          }
        }
      });
      end += N;
      awaitChunks(m, T, end);
      // Phase A2: perturbed margins (APR Eq. 12), by ranges of triples.
      claimChunks(m, T, end, N, (c) => {
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
          const x = BIAS >= 0 ? xp + (biasOf(i) - biasOf(j)) : xp;
          advLossT[t] = x;
          ca[t] = -lambda * sigmoid(-x);
        }
      });
      end += N;
      awaitChunks(m, T, end);
      // Phase B2: gamma + L2 + lambda * the perturbed gradient (APR Eq. 10).
      claimChunks(m, T, end, N, (c) => {
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
            if (BIAS >= 0) biasGradient(s, true);
          }
        }
      });
      end += N;
      awaitChunks(m, T, end);
    }
    // Phase C: the optimiser, by ranges of rows; one more chunk adds the batch's totals to
    // `stats` (in triple order, so the sums do not depend on the workers either).
    claimChunks(m, T, end, N + 1, (c) => {
      if (c === N) {
        addStats(size, adversarial);
        return;
      }
      const r1 = Math.floor(((c + 1) * total) / N);
      for (let r = Math.floor((c * total) / N); r < r1; r++) {
        if (r < nU) applyRow(P, L.userState1, L.userState2, uniqueUsers[r]!, gU + r * ROW, step);
        else {
          applyRow(Q, L.itemState1, L.itemState2, uniqueItems[r - nU]!, gI + (r - nU) * ROW, step);
          if (BIAS >= 0) {
            const s = r - nU;
            applyRow(
              BIAS,
              L.itemBiasState1,
              L.itemBiasState2,
              uniqueItems[s]!,
              gB + s * 16,
              step,
              4,
              16,
            );
          }
        }
      }
    });
    end += N + 1;
    clearIndex();
    awaitChunks(m, T, end);
  }

  function addStats(size: number, adversarial: boolean): void {
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
    stats[1]! += lambda * advLoss;
    stats[2]! += correct;
    stats[3]! += size;
    stats[4]! += advCorrect;
  }

  return { runBatch };
}
