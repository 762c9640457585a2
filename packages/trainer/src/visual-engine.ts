import { Random } from '@advrec/data';
import type { TripleSampler } from '@advrec/data';
import type { Adversary } from '@advrec/adversary';
import { bprLoss } from '@advrec/losses';
import { OnnxGemm } from '@advrec/metrics';
import { ITEM_EMBEDDINGS, ITEM_FEATURES, SparseRows, USER_EMBEDDINGS } from '@advrec/models';
import { fgm, fgsm, noAdversary } from '@advrec/adversary';
import type { ParameterTable, PerturbableSurface, VisualBPR } from '@advrec/models';
import type { GenericEngineOptions } from './generic-engine.js';
import type { EpochStats } from './mf-engine.js';
import { applySparseUpdate } from './optimizer.js';
import type { OptimizerState } from './optimizer.js';

/** Options of {@link VisualEngine}: the generic engine's, plus where the dense products run. */
export interface VisualEngineOptions extends GenericEngineOptions {
  /** onnxruntime intra-op threads for the dense products (default: all cores). */
  readonly threads?: number;
  /** `auto` (default: onnxruntime when installed, else plain JS) or `js`. */
  readonly dense?: 'auto' | 'js';
}

type Gemm = (
  a: Float32Array,
  aRows: number,
  aCols: number,
  b: Float32Array,
  bRows: number,
  bCols: number,
  transA?: boolean,
  transB?: boolean,
) => Promise<Float32Array> | Float32Array;

/** Plain-JS product, the fallback without onnxruntime (slow, exact float64 sums). */
function jsGemm(
  a: Float32Array,
  aRows: number,
  aCols: number,
  b: Float32Array,
  bRows: number,
  bCols: number,
  transA = false,
  transB = false,
): Float32Array {
  const m = transA ? aCols : aRows;
  const k = transA ? aRows : aCols;
  const n = transB ? bRows : bCols;
  const out = new Float32Array(m * n);
  for (let r = 0; r < m; r++)
    for (let x = 0; x < k; x++) {
      const av = transA ? a[x * aCols + r]! : a[r * aCols + x]!;
      if (av === 0) continue;
      for (let c = 0; c < n; c++)
        out[r * n + c]! += av * (transB ? b[c * bCols + x]! : b[x * bCols + c]!);
    }
  return out;
}

/**
 * Trains VBPR and AMR (`VisualBPR`, Eq. 2 or 4 of the AMR paper) by mini-batches: the
 * batch's unique items' features are gathered once and the products with E (`C E`,
 * `C^T G`, `G E^T`) run as dense GEMMs on onnxruntime (plain JS without it); the rest
 * (margins, row gradients, perturbations, row-sparse Adagrad on P, Q, theta, dense on E)
 * is JS on the calling thread. APR/AMR epochs follow AMR Algorithm 1 in mini-batch form:
 * Gamma = the clean BPR gradient w.r.t. each perturbed surface's rows (for `itemFeatures`,
 * w.r.t. `c_i`, summed over the batch), Delta from the adversary (FGM: per item, norm
 * epsilon, Eq. 11-12), then `BPR(clean) + lambda BPR(perturbed)`.
 */
export class VisualEngine {
  private readonly model: VisualBPR;
  private readonly sampler: TripleSampler;
  private readonly options: VisualEngineOptions;
  private readonly gemm: Gemm;
  private readonly release: () => Promise<void>;
  private readonly stateOf: Map<string, OptimizerState>;
  /** Which engine does the dense products. */
  readonly denseBackend: 'onnxruntime' | 'js';
  /** The last batch's feature perturbation (unique items in batch order, `items x D`), for tests and audits. */
  lastFeaturePerturbation: { items: number[]; values: Float32Array } | null = null;
  step: number;

  private constructor(
    model: VisualBPR,
    sampler: TripleSampler,
    options: VisualEngineOptions,
    step: number,
    onnx: OnnxGemm | null,
  ) {
    this.model = model;
    this.sampler = sampler;
    this.options = options;
    this.step = step;
    this.stateOf = new Map(options.states.map((s) => [s.table, s]));
    this.denseBackend = onnx ? 'onnxruntime' : 'js';
    this.gemm = onnx ? onnx.multiply.bind(onnx) : jsGemm;
    this.release = onnx ? () => onnx.release() : async () => {};
  }

  static async create(
    model: VisualBPR,
    sampler: TripleSampler,
    options: VisualEngineOptions,
    step = 0,
  ): Promise<VisualEngine> {
    const onnx =
      options.dense === 'js' ? null : await OnnxGemm.create({ threads: options.threads });
    return new VisualEngine(model, sampler, options, step, onnx);
  }

  async trainEpoch(epoch: number, adversarial: boolean): Promise<EpochStats> {
    const started = performance.now();
    const buffers = this.sampler.allocate();
    let loss = 0;
    let adversarialLoss = 0;
    let correct = 0;
    let adversarialCorrect = 0;
    let triples = 0;
    for (let b = 0; b < this.sampler.batchesPerEpoch; b++) {
      const batch = this.sampler.batch(epoch, b, buffers);
      const r = await this.step_(
        batch,
        adversarial,
        Random.stream(this.options.seed, 0xa3, epoch, b),
      );
      loss += r.loss;
      adversarialLoss += r.adversarialLoss;
      correct += r.correct;
      adversarialCorrect += r.adversarialCorrect;
      triples += batch.size;
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      loss,
      adversarialLoss,
      trainAccuracy: triples > 0 ? correct / triples : 0,
      adversarialAccuracy: adversarial && triples > 0 ? adversarialCorrect / triples : Number.NaN,
      triples,
      seconds,
      triplesPerSecond: triples / seconds,
    };
  }

  private async step_(
    batch: { size: number; users: Int32Array; positives: Int32Array; negatives: Int32Array },
    adversarial: boolean,
    random: Random,
    onGamma?: (
      users: number[],
      items: number[],
      gammaP: Float64Array,
      gammaQ: Float64Array,
      gammaC: Float32Array,
      correct: number,
    ) => void,
  ): Promise<{
    loss: number;
    adversarialLoss: number;
    correct: number;
    adversarialCorrect: number;
  }> {
    const m = this.model;
    const o = this.options;
    const k = m.embeddingSize;
    const d = m.featureSize;
    const size = batch.size;
    // Unique rows in order of first appearance.
    const userSlot = new Map<number, number>();
    const itemSlot = new Map<number, number>();
    const users: number[] = [];
    const items: number[] = [];
    const su = new Int32Array(size);
    const si = new Int32Array(size);
    const sj = new Int32Array(size);
    for (let t = 0; t < size; t++) {
      const slotOf = (map: Map<number, number>, list: number[], id: number): number => {
        let s = map.get(id);
        if (s === undefined) {
          s = list.length;
          map.set(id, s);
          list.push(id);
        }
        return s;
      };
      su[t] = slotOf(userSlot, users, batch.users[t]!);
      si[t] = slotOf(itemSlot, items, batch.positives[t]!);
      sj[t] = slotOf(itemSlot, items, batch.negatives[t]!);
    }
    const nU = users.length;
    const nI = items.length;
    const P = m.userEmbeddings.values;
    const Q = m.itemEmbeddings.values;
    const H = m.userVisualEmbeddings?.values ?? null;
    const E = m.featureProjection.values;
    const beta = m.visualBias?.values ?? null;
    const features = m.itemFeatures.values;
    const C = new Float32Array(nI * d);
    for (let s = 0; s < nI; s++) C.set(features.subarray(items[s]! * d, items[s]! * d + d), s * d);

    // Gradient accumulators per unique row (float64).
    const gP = new Float64Array(nU * k);
    const gH = H ? new Float64Array(nU * k) : null;
    const gQ = new Float64Array(nI * k);
    const gE = new Float64Array(d * k);
    const gBeta = beta ? new Float64Array(d) : null;

    /** One BPR pass at (possibly perturbed) parameters; adds weight x its gradients. */
    const pass = async (
      weight: number,
      deltaP: Float32Array | null,
      deltaQ: Float32Array | null,
      deltaC: Float32Array | null,
      wantFeatureGradient: boolean,
    ): Promise<{
      loss: number;
      correct: number;
      gammaP: Float64Array;
      gammaQ: Float64Array;
      gammaC: Float32Array | null;
    }> => {
      let features = C;
      if (deltaC) {
        features = new Float32Array(C.length);
        for (let x = 0; x < C.length; x++) features[x] = C[x]! + deltaC[x]!;
      }
      const V = await this.gemm(features, nI, d, E, d, k);
      const bias = new Float64Array(nI);
      if (beta)
        for (let s = 0; s < nI; s++) {
          let acc = 0;
          for (let j = 0; j < d; j++) acc += features[s * d + j]! * beta[j]!;
          bias[s] = acc;
        }
      const pRow = (s: number, f: number): number =>
        P[users[s]! * k + f]! + (deltaP ? deltaP[s * k + f]! : 0);
      const qRow = (s: number, f: number): number =>
        Q[items[s]! * k + f]! + (deltaQ ? deltaQ[s * k + f]! : 0);
      // d loss / d score per triple.
      const gammaP = new Float64Array(nU * k);
      const gammaQ = new Float64Array(nI * k);
      const gV = new Float32Array(nI * k);
      const gB = new Float64Array(nI);
      let lossSum = 0;
      let right = 0;
      for (let t = 0; t < size; t++) {
        const u = su[t]!;
        const a = si[t]!;
        const b = sj[t]!;
        const uh = batch.users[t]! * k;
        let x = bias[a]! - bias[b]!;
        for (let f = 0; f < k; f++) {
          const p = pRow(u, f);
          const h = H ? H[uh + f]! : p;
          x += p * (qRow(a, f) - qRow(b, f)) + h * (V[a * k + f]! - V[b * k + f]!);
        }
        lossSum += bprLoss(x);
        if (x > 0) right++;
        const c = (-weight * 1) / (1 + Math.exp(x)); // -weight * sigma(-x)
        for (let f = 0; f < k; f++) {
          const p = pRow(u, f);
          const h = H ? H[uh + f]! : p;
          const dv = V[a * k + f]! - V[b * k + f]!;
          const dq = qRow(a, f) - qRow(b, f);
          gammaP[u * k + f]! += c * (H ? dq : dq + dv);
          if (gH) gH[u * k + f]! += c * dv;
          gammaQ[a * k + f]! += c * p;
          gammaQ[b * k + f]! -= c * p;
          gV[a * k + f]! += c * h;
          gV[b * k + f]! -= c * h;
        }
        gB[a]! += c;
        gB[b]! -= c;
      }
      for (let x = 0; x < gammaP.length; x++) gP[x]! += gammaP[x]!;
      for (let x = 0; x < gammaQ.length; x++) gQ[x]! += gammaQ[x]!;
      const dE = await this.gemm(features, nI, d, gV, nI, k, true, false);
      for (let x = 0; x < dE.length; x++) gE[x]! += dE[x]!;
      if (gBeta)
        for (let s = 0; s < nI; s++)
          for (let j = 0; j < d; j++) gBeta[j]! += gB[s]! * features[s * d + j]!;
      let gammaC: Float32Array | null = null;
      if (wantFeatureGradient) {
        gammaC = Float32Array.from(await this.gemm(gV, nI, k, E, d, k, false, true));
        if (beta)
          for (let s = 0; s < nI; s++)
            for (let j = 0; j < d; j++) gammaC[s * d + j]! += gB[s]! * beta[j]!;
      }
      return { loss: weight * lossSum, correct: right, gammaP, gammaQ, gammaC };
    };

    const perturbFeatures = adversarial && o.surfaces.includes(ITEM_FEATURES);
    const clean = await pass(
      1,
      null,
      null,
      null,
      (perturbFeatures && o.adversary.usesGradient) || onGamma !== undefined,
    );
    if (onGamma) {
      // Attack mode: report the clean gradient of the surfaces, change nothing.
      onGamma(users, items, clean.gammaP, clean.gammaQ, clean.gammaC!, clean.correct);
      return {
        loss: clean.loss,
        adversarialLoss: 0,
        correct: clean.correct,
        adversarialCorrect: 0,
      };
    }
    let adversarialLoss = 0;
    let adversarialCorrect = 0;
    if (adversarial) {
      const surface = (name: string): PerturbableSurface =>
        m.surfaces.find((s) => s.name === name)!;
      const perturb = (
        name: string,
        gamma: Float64Array | Float32Array,
        ids: number[],
        dimension: number,
      ): Float32Array | null => {
        if (!o.surfaces.includes(name)) return null;
        const kind = o.adversary.adversaryName;
        const builtIn = o.adversary === fgm || o.adversary === fgsm || o.adversary === noAdversary;
        if (builtIn) {
          // Built-in adversaries straight into a float32 buffer (same formulas as theirs).
          const out = new Float32Array(ids.length * dimension);
          for (let s = 0; s < ids.length; s++) {
            const base = s * dimension;
            if (kind === 'fgm') {
              let n = 0;
              for (let f = 0; f < dimension; f++) n += gamma[base + f]! * gamma[base + f]!;
              if (n === 0) continue;
              const scale = o.epsilon / Math.sqrt(n);
              for (let f = 0; f < dimension; f++) out[base + f] = gamma[base + f]! * scale;
            } else if (kind === 'fgsm') {
              for (let f = 0; f < dimension; f++) {
                const g = gamma[base + f]!;
                out[base + f] = g > 0 ? o.epsilon : g < 0 ? -o.epsilon : 0;
              }
            }
          }
          return out;
        }
        const rows = new SparseRows(dimension, ids.length);
        for (let s = 0; s < ids.length; s++) {
          const at = rows.ensure(ids[s]!);
          rows.values.set(gamma.subarray(s * dimension, (s + 1) * dimension), at);
        }
        const delta = o.adversary.perturb(rows, o.epsilon, { surface: surface(name), random });
        return Float32Array.from(delta.values);
      };
      const deltaP = perturb(USER_EMBEDDINGS, clean.gammaP, users, k);
      const deltaQ = perturb(ITEM_EMBEDDINGS, clean.gammaQ, items, k);
      const deltaC = perturb(ITEM_FEATURES, clean.gammaC ?? new Float32Array(nI * d), items, d);
      this.lastFeaturePerturbation = deltaC ? { items, values: deltaC } : null;
      const adv = await pass(o.adversarialWeight, deltaP, deltaQ, deltaC, false);
      adversarialLoss = adv.loss;
      adversarialCorrect = adv.correct;
    }

    // L2 on the batch's rows (per occurrence) and on the dense tables (once).
    if (o.l2 !== 0) {
      const l2x2 = 2 * o.l2;
      for (let t = 0; t < size; t++) {
        const u = su[t]!;
        for (let f = 0; f < k; f++) {
          gP[u * k + f]! += l2x2 * P[batch.users[t]! * k + f]!;
          if (gH) gH[u * k + f]! += l2x2 * H![batch.users[t]! * k + f]!;
          gQ[si[t]! * k + f]! += l2x2 * Q[batch.positives[t]! * k + f]!;
          gQ[sj[t]! * k + f]! += l2x2 * Q[batch.negatives[t]! * k + f]!;
        }
      }
      for (let x = 0; x < gE.length; x++) gE[x]! += l2x2 * E[x]!;
      if (gBeta) for (let x = 0; x < gBeta.length; x++) gBeta[x]! += l2x2 * beta![x]!;
    }

    this.step++;
    const apply = (
      table: ParameterTable | null,
      ids: number[] | null,
      gradient: Float64Array | null,
    ): void => {
      if (!table || !gradient) return;
      const rows = new SparseRows(table.dimension, ids ? ids.length : table.rows);
      const count = ids ? ids.length : table.rows;
      for (let s = 0; s < count; s++) {
        const at = rows.ensure(ids ? ids[s]! : s);
        rows.values.set(gradient.subarray(s * table.dimension, (s + 1) * table.dimension), at);
      }
      applySparseUpdate(o.optimizer, table, this.stateOf.get(table.name)!, rows, this.step);
    };
    apply(m.userEmbeddings, users, gP);
    apply(m.userVisualEmbeddings, users, gH);
    // Cold-start items never appear in batches, so their zero ID embedding stays zero.
    apply(m.itemEmbeddings, items, gQ);
    apply(m.featureProjection, null, gE);
    apply(m.visualBias, null, gBeta);
    return { loss: clean.loss, adversarialLoss, correct: clean.correct, adversarialCorrect };
  }

  /**
   * The attack of APR section 2.3 / AMR section 3.2 on the current model: Gamma = the
   * gradient of the BPR loss over one sampled negative per training interaction (epoch
   * `epoch` of the sampler) w.r.t. every row of each surface, then the adversary's
   * perturbation per row (FGM: norm epsilon per item feature vector). Changes nothing.
   */
  async craftPerturbation(options: {
    adversary: Adversary;
    epsilon: number;
    surfaces: readonly string[];
    seed: number;
    epoch?: number;
  }): Promise<{ perturbations: Map<string, SparseRows>; cleanAccuracy: number }> {
    const m = this.model;
    const k = m.embeddingSize;
    const d = m.featureSize;
    const gP = new Float64Array(m.numUsers * k);
    const gQ = new Float64Array(m.numItems * k);
    const gC = new Float64Array(m.numItems * d);
    const touchedUsers = new Uint8Array(m.numUsers);
    const touchedItems = new Uint8Array(m.numItems);
    const buffers = this.sampler.allocate();
    const epoch = options.epoch ?? 0;
    let correct = 0;
    let triples = 0;
    for (let b = 0; b < this.sampler.batchesPerEpoch; b++) {
      const batch = this.sampler.batch(epoch, b, buffers);
      triples += batch.size;
      await this.step_(
        batch,
        false,
        new Random(0),
        (users, items, gammaP, gammaQ, gammaC, right) => {
          correct += right;
          users.forEach((u, s) => {
            touchedUsers[u] = 1;
            for (let f = 0; f < k; f++) gP[u * k + f]! += gammaP[s * k + f]!;
          });
          items.forEach((i, s) => {
            touchedItems[i] = 1;
            for (let f = 0; f < k; f++) gQ[i * k + f]! += gammaQ[s * k + f]!;
            for (let j = 0; j < d; j++) gC[i * d + j]! += gammaC[s * d + j]!;
          });
        },
      );
    }
    const random = Random.stream(options.seed, 0xa77ac);
    const perturbations = new Map<string, SparseRows>();
    for (const name of options.surfaces) {
      const surface = m.surfaces.find((s) => s.name === name);
      if (!surface) throw new RangeError(`model has no surface ${name}`);
      const [gamma, touched] =
        name === USER_EMBEDDINGS
          ? [gP, touchedUsers]
          : name === ITEM_EMBEDDINGS
            ? [gQ, touchedItems]
            : [gC, touchedItems];
      const rows = new SparseRows(surface.dimension, surface.rows);
      for (let r = 0; r < surface.rows; r++) {
        if (!touched[r] && options.adversary.usesGradient) continue;
        const at = rows.ensure(r);
        for (let f = 0; f < surface.dimension; f++)
          rows.values[at + f] = gamma[r * surface.dimension + f]!;
      }
      perturbations.set(
        name,
        options.adversary.perturb(rows, options.epsilon, { surface, random }),
      );
    }
    return { perturbations, cleanAccuracy: triples > 0 ? correct / triples : 0 };
  }

  async close(): Promise<void> {
    await this.release();
  }
}
