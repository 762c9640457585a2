/**
 * The fused MF training kernel (BPR and APR steps with a row-sparse optimiser), written as
 * one self-contained factory so the same function body runs in-process and, stringified,
 * inside worker threads. No import, no closure over module scope.
 *
 * Determinism: a mini-batch is processed in phases separated by barriers. Per-triple work
 * (scores, loss derivatives) is split by triple ranges; per-row work (gradients,
 * perturbations, optimiser updates) is split by ranges of the batch's unique rows, and
 * every row's gradient is summed over its occurrences in triple order. No sum depends on
 * which worker computes it, so the tables are bit-identical for any number of workers.
 *
 * @internal
 */

/** Shared (or, for Hogwild workers, private) buffers the kernel reads and writes. @internal */
export interface MfKernelBuffers {
  readonly numUsers: number;
  readonly numItems: number;
  readonly dimension: number;
  readonly batchSize: number;
  readonly ringSlots: number;
  readonly userEmbeddings: Float32Array;
  readonly itemEmbeddings: Float32Array;
  /** Adagrad accumulators or Adam first moments (null for SGD). */
  readonly userState1: Float32Array | null;
  readonly itemState1: Float32Array | null;
  /** Adam second moments (null otherwise). */
  readonly userState2: Float32Array | null;
  readonly itemState2: Float32Array | null;
  /** ringSlots x batchSize each. */
  readonly ringUsers: Int32Array;
  readonly ringPositives: Int32Array;
  readonly ringNegatives: Int32Array;
  /** ringSlots x SLOT_FIELDS: seq (batch number + 1, 0 = free), size, epoch, index, adversarial, step. */
  readonly slotMeta: Int32Array;
  /** [barrier count, barrier generation, stop]. */
  readonly control: Int32Array;
  /** Per-triple scratch (batchSize each): clean dL/dx, adversarial dL/dx, clean loss, adversarial loss. */
  readonly tripleClean: Float64Array;
  readonly tripleAdversarial: Float64Array;
  readonly tripleLoss: Float64Array;
  readonly tripleAdversarialLoss: Float64Array;
  /** Per unique row scratch: users batchSize x K, items 2 batchSize x K. */
  readonly userGradient: Float64Array;
  readonly itemGradient: Float64Array;
  readonly userGamma: Float64Array;
  readonly itemGamma: Float64Array;
  readonly userDelta: Float64Array;
  readonly itemDelta: Float64Array;
  /** Epoch totals: [clean loss, adversarial loss, correct pairs, triples, adversarial correct]. */
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
export const SLOT_FIELDS = 6;

/** Builds the kernel. Keep it self-contained: it is stringified for the workers. @internal */
export function createMfKernel(buffers: MfKernelBuffers, params: MfKernelParams) {
  const K = buffers.dimension;
  const B = buffers.batchSize;
  const P = buffers.userEmbeddings;
  const Q = buffers.itemEmbeddings;
  const S1P = buffers.userState1;
  const S1Q = buffers.itemState1;
  const S2P = buffers.userState2;
  const S2Q = buffers.itemState2;
  const cx = buffers.tripleClean;
  const ca = buffers.tripleAdversarial;
  const lossT = buffers.tripleLoss;
  const advLossT = buffers.tripleAdversarialLoss;
  const gU = buffers.userGradient;
  const gI = buffers.itemGradient;
  const gamU = buffers.userGamma;
  const gamI = buffers.itemGamma;
  const dU = buffers.userDelta;
  const dI = buffers.itemDelta;
  const stats = buffers.stats;
  const meta = buffers.slotMeta;
  const control = buffers.control;
  const FIELDS = 6;

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

  function buildIndex(users: Int32Array, pos: Int32Array, neg: Int32Array, base: number, size: number): void {
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

  /** Rows [from, to) of the combined (users then items) unique-row list for worker w of T. */
  function rowRange(w: number, T: number): [number, number] {
    const total = nU + nI;
    return [Math.floor((w * total) / T), Math.floor(((w + 1) * total) / T)];
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

  /** Gradient (gamma, no L2) of the clean BPR loss for unique row s; writes into out. */
  function cleanGradientUser(s: number, users: Int32Array, pos: Int32Array, neg: Int32Array, base: number, out: Float64Array): void {
    const o = s * K;
    for (let f = 0; f < K; f++) out[o + f] = 0;
    for (let e = occUserStart[s]!; e < occUserStart[s + 1]!; e++) {
      const t = occUser[e]!;
      const c = cx[t]!;
      const qi = pos[base + t]! * K;
      const qj = neg[base + t]! * K;
      for (let f = 0; f < K; f++) out[o + f]! += c * (Q[qi + f]! - Q[qj + f]!);
    }
  }
  function cleanGradientItem(s: number, users: Int32Array, base: number, out: Float64Array): void {
    const o = s * K;
    for (let f = 0; f < K; f++) out[o + f] = 0;
    for (let e = occItemStart[s]!; e < occItemStart[s + 1]!; e++) {
      const code = occItem[e]!;
      const t = code >> 1;
      const c = code & 1 ? -cx[t]! : cx[t]!;
      const pu = users[base + t]! * K;
      for (let f = 0; f < K; f++) out[o + f]! += c * P[pu + f]!;
    }
  }

  function perturb(gamma: Float64Array, delta: Float64Array, s: number, side: number, row: number, epoch: number, index: number): void {
    const o = s * K;
    const kind = params.adversary;
    if (kind === 1) {
      let n = 0;
      for (let f = 0; f < K; f++) n += gamma[o + f]! * gamma[o + f]!;
      n = Math.sqrt(n);
      const scale = n > 0 ? eps / n : 0;
      for (let f = 0; f < K; f++) delta[o + f] = gamma[o + f]! * scale;
    } else if (kind === 2) {
      for (let f = 0; f < K; f++) {
        const g = gamma[o + f]!;
        delta[o + f] = g > 0 ? eps : g < 0 ? -eps : 0;
      }
    } else if (kind === 3) {
      let n = 0;
      const key = (epoch * 0x10000 + index) | 0;
      for (let f = 0; f < K; f++) {
        const z = gaussian(params.seed, key, row * 2 + side, f);
        delta[o + f] = z;
        n += z * z;
      }
      const scale = n > 0 ? eps / Math.sqrt(n) : 0;
      for (let f = 0; f < K; f++) delta[o + f] = delta[o + f]! * scale;
    } else {
      for (let f = 0; f < K; f++) delta[o + f] = 0;
    }
  }

  function applyRow(V: Float32Array, S1: Float32Array | null, S2: Float32Array | null, row: number, g: Float64Array, o: number, step: number): void {
    const base = row * K;
    const kind = params.optimizer;
    if (kind === 0) {
      for (let f = 0; f < K; f++) {
        const gf = g[o + f]!;
        const a = S1![base + f]! + gf * gf;
        S1![base + f] = a;
        V[base + f] = V[base + f]! - (lr * gf) / Math.sqrt(a);
      }
    } else if (kind === 1) {
      for (let f = 0; f < K; f++) V[base + f] = V[base + f]! - lr * g[o + f]!;
    } else {
      const b1 = params.beta1;
      const b2 = params.beta2;
      const lrt = (lr * Math.sqrt(1 - Math.pow(b2, step))) / (1 - Math.pow(b1, step));
      for (let f = 0; f < K; f++) {
        const gf = g[o + f]!;
        const m = b1 * S1![base + f]! + (1 - b1) * gf;
        const v = b2 * S2![base + f]! + (1 - b2) * gf * gf;
        S1![base + f] = m;
        S2![base + f] = v;
        V[base + f] = V[base + f]! - (lrt * m) / (Math.sqrt(v) + params.adamEpsilon);
      }
    }
  }

  /**
   * Runs batch `slot` as worker `w` of `T`; `barrier` synchronises the T workers (a no-op
   * when T = 1). Worker 0 adds the batch's totals to `stats`.
   */
  function runBatch(slot: number, w: number, T: number, barrier: () => void): void {
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

    // Phase A: clean margins of this worker's triples.
    const t0 = Math.floor((w * size) / T);
    const t1 = Math.floor(((w + 1) * size) / T);
    for (let t = t0; t < t1; t++) {
      const pu = users[base + t]! * K;
      const qi = pos[base + t]! * K;
      const qj = neg[base + t]! * K;
      let x = 0;
      for (let f = 0; f < K; f++) x += P[pu + f]! * (Q[qi + f]! - Q[qj + f]!);
      lossT[t] = x;
      cx[t] = -sigmoid(-x);
    }
    buildIndex(users, pos, neg, base, size);
    const [r0, r1] = rowRange(w, T);
    barrier();

    if (!adversarial) {
      // Phase B: gradients of this worker's unique rows (clean BPR + L2 per occurrence).
      for (let r = r0; r < r1; r++) {
        if (r < nU) {
          cleanGradientUser(r, users, pos, neg, base, gU);
          const n = occUserStart[r + 1]! - occUserStart[r]!;
          const pu = uniqueUsers[r]! * K;
          const o = r * K;
          if (l2x2 !== 0) for (let f = 0; f < K; f++) gU[o + f]! += l2x2 * n * P[pu + f]!;
        } else {
          const s = r - nU;
          cleanGradientItem(s, users, base, gI);
          const n = occItemStart[s + 1]! - occItemStart[s]!;
          const qi = uniqueItems[s]! * K;
          const o = s * K;
          if (l2x2 !== 0) for (let f = 0; f < K; f++) gI[o + f]! += l2x2 * n * Q[qi + f]!;
        }
      }
    } else {
      // Phase B1: gamma (the clean gradient w.r.t. Delta at 0, APR Eq. 8) and Delta per row.
      const usesGamma = params.adversary === 1 || params.adversary === 2;
      for (let r = r0; r < r1; r++) {
        if (r < nU) {
          cleanGradientUser(r, users, pos, neg, base, gamU);
          if (params.perturbUsers) perturb(usesGamma ? gamU : gamU, dU, r, 0, uniqueUsers[r]!, epoch, index);
          else for (let f = r * K; f < (r + 1) * K; f++) dU[f] = 0;
        } else {
          const s = r - nU;
          cleanGradientItem(s, users, base, gamI);
          if (params.perturbItems) perturb(gamI, dI, s, 1, uniqueItems[s]!, epoch, index);
          else for (let f = s * K; f < (s + 1) * K; f++) dI[f] = 0;
        }
      }
      barrier();
      // Phase A2: perturbed margins (APR Eq. 12) of this worker's triples.
      for (let t = t0; t < t1; t++) {
        const pu = users[base + t]! * K;
        const qi = pos[base + t]! * K;
        const qj = neg[base + t]! * K;
        const du = userSlot[users[base + t]!]! * K;
        const di = itemSlot[pos[base + t]!]! * K;
        const dj = itemSlot[neg[base + t]!]! * K;
        let x = 0;
        for (let f = 0; f < K; f++)
          x += (P[pu + f]! + dU[du + f]!) * (Q[qi + f]! + dI[di + f]! - Q[qj + f]! - dI[dj + f]!);
        advLossT[t] = x;
        ca[t] = -lambda * sigmoid(-x);
      }
      barrier();
      // Phase B2: gamma + L2 + lambda * the perturbed gradient (APR Eq. 10).
      for (let r = r0; r < r1; r++) {
        if (r < nU) {
          const o = r * K;
          const pu = uniqueUsers[r]! * K;
          const n = occUserStart[r + 1]! - occUserStart[r]!;
          for (let f = 0; f < K; f++) gU[o + f] = gamU[o + f]! + l2x2 * n * P[pu + f]!;
          for (let e = occUserStart[r]!; e < occUserStart[r + 1]!; e++) {
            const t = occUser[e]!;
            const c = ca[t]!;
            const qi = pos[base + t]! * K;
            const qj = neg[base + t]! * K;
            const di = itemSlot[pos[base + t]!]! * K;
            const dj = itemSlot[neg[base + t]!]! * K;
            for (let f = 0; f < K; f++) gU[o + f]! += c * (Q[qi + f]! + dI[di + f]! - Q[qj + f]! - dI[dj + f]!);
          }
        } else {
          const s = r - nU;
          const o = s * K;
          const qi = uniqueItems[s]! * K;
          const n = occItemStart[s + 1]! - occItemStart[s]!;
          for (let f = 0; f < K; f++) gI[o + f] = gamI[o + f]! + l2x2 * n * Q[qi + f]!;
          for (let e = occItemStart[s]!; e < occItemStart[s + 1]!; e++) {
            const code = occItem[e]!;
            const t = code >> 1;
            const c = code & 1 ? -ca[t]! : ca[t]!;
            const u = users[base + t]!;
            const pu = u * K;
            const du = userSlot[u]! * K;
            for (let f = 0; f < K; f++) gI[o + f]! += c * (P[pu + f]! + dU[du + f]!);
          }
        }
      }
    }
    barrier();
    // Phase C: the optimiser on this worker's rows.
    for (let r = r0; r < r1; r++) {
      if (r < nU) applyRow(P, S1P, S2P, uniqueUsers[r]!, gU, r * K, step);
      else applyRow(Q, S1Q, S2Q, uniqueItems[r - nU]!, gI, (r - nU) * K, step);
    }
    if (w === 0) {
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
    clearIndex();
    barrier();
  }

  /** Classic per-triple SGD BPR (Cornac, implicit): updates u, i, j right after each triple. */
  function runSgdTriples(slot: number): void {
    const m = slot * FIELDS;
    const size = meta[m + 1]!;
    const base = slot * B;
    const users = buffers.ringUsers;
    const pos = buffers.ringPositives;
    const neg = buffers.ringNegatives;
    const reg = params.l2;
    let loss = 0;
    let correct = 0;
    for (let t = 0; t < size; t++) {
      const pu = users[base + t]! * K;
      const qi = pos[base + t]! * K;
      const qj = neg[base + t]! * K;
      let x = 0;
      for (let f = 0; f < K; f++) x += P[pu + f]! * (Q[qi + f]! - Q[qj + f]!);
      loss += softplus(-x);
      if (x > 0) correct++;
      const z = sigmoid(-x);
      for (let f = 0; f < K; f++) {
        const p = P[pu + f]!;
        const a = Q[qi + f]!;
        const b = Q[qj + f]!;
        P[pu + f] = p + lr * (z * (a - b) - reg * p);
        Q[qi + f] = a + lr * (z * p - reg * a);
        Q[qj + f] = b + lr * (-z * p - reg * b);
      }
    }
    stats[0]! += loss;
    stats[2]! += correct;
    stats[3]! += size;
  }

  /** A spinning barrier over `control[0..1]` for T workers (spins briefly, then sleeps). */
  function makeBarrier(T: number): () => void {
    if (T === 1) return () => {};
    return () => {
      const generation = Atomics.load(control, 1);
      if (Atomics.add(control, 0, 1) === T - 1) {
        Atomics.store(control, 0, 0);
        Atomics.add(control, 1, 1);
        Atomics.notify(control, 1);
      } else {
        let spins = 0;
        while (Atomics.load(control, 1) === generation) {
          if (++spins > 2000) Atomics.wait(control, 1, generation, 50);
        }
      }
    };
  }

  return { runBatch, runSgdTriples, makeBarrier };
}
