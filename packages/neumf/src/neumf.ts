import { ConfigError, DataError, Random } from '@advrec/data';
import {
  MODEL_SPECIFICATION_VERSION,
  SparseRows,
  createTable,
  initializeTruncatedNormal,
} from '@advrec/models';
import { createGemm } from '@advrec/onnx';
import type { Gemm, GemmBackendName } from '@advrec/onnx';
import type {
  JsonObject,
  Model,
  ModelDimensions,
  ModelState,
  PairBatchForward,
  ParameterTable,
  PerturbableSurface,
  ReferenceScore,
  SparseRowsByName,
} from '@advrec/models';

/** Registered name of {@link NeuralMatrixFactorization}. */
export const NEUMF_MODEL_NAME = 'neumf';

/** Table (and surface) names, after the NCF paper's P^G, Q^G, P^M, Q^M, W_x, b_x and h. */
export const GMF_USER_EMBEDDINGS = 'gmfUserEmbeddings';
export const GMF_ITEM_EMBEDDINGS = 'gmfItemEmbeddings';
export const MLP_USER_EMBEDDINGS = 'mlpUserEmbeddings';
export const MLP_ITEM_EMBEDDINGS = 'mlpItemEmbeddings';
/** `mlpWeights1`, `mlpWeights2`, ...: layer x's weights W_x (`in x out`). */
export const mlpWeights = (layer: number): string => `mlpWeights${layer}`;
/** `mlpBias1`, ...: layer x's bias b_x (`1 x out`). */
export const mlpBias = (layer: number): string => `mlpBias${layer}`;
/** h, the prediction layer's weights (`(K + last layer) x 1`). */
export const PREDICTION_WEIGHTS = 'predictionWeights';

/** Configuration of {@link NeuralMatrixFactorization}. */
export interface NeuMFConfig {
  /**
   * K, the GMF embedding size and the size of the MLP's last layer: the NCF paper's
   * "predictive factors" (default 8; the paper reports 8, 16, 32 and 64).
   */
  readonly embeddingSize?: number;
  /**
   * The MLP tower's hidden layer sizes, ReLU each (default `[4K, 2K, K]`: the NCF paper's
   * three-layer tower, e.g. 32 -> 16 -> 8 for K = 8). The last must equal K.
   */
  readonly mlpLayers?: readonly number[];
  /** The MLP tower's user and item embedding size (default `mlpLayers[0]`: input `2 x` that). */
  readonly mlpEmbeddingSize?: number;
  /** Std of the truncated-normal initialisation of the embeddings (default 0.01, NCF's code). */
  readonly initStd?: number;
  /** Seed of every initialisation (default 0). */
  readonly seed?: number;
}

/** The resolved NeuMF configuration (what checkpoints store). */
export interface ResolvedNeuMFConfig {
  readonly embeddingSize: number;
  readonly mlpLayers: readonly number[];
  readonly mlpEmbeddingSize: number;
  readonly initStd: number;
  readonly seed: number;
}

const OPTIONS = ['embeddingSize', 'mlpLayers', 'mlpEmbeddingSize', 'initStd', 'seed'] as const;

/** Validates and fills in a NeuMF configuration; every problem is reported at once. */
export function resolveNeuMFConfig(config: NeuMFConfig = {}): ResolvedNeuMFConfig {
  const issues: { path: string; message: string }[] = [];
  for (const key of Object.keys(config))
    if (!(OPTIONS as readonly string[]).includes(key))
      issues.push({
        path: key,
        message: `unknown option of neumf; it takes ${OPTIONS.join(', ')}`,
      });
  const k = config.embeddingSize ?? 8;
  if (!Number.isInteger(k) || k < 1)
    issues.push({ path: 'embeddingSize', message: `must be a positive integer, got ${String(k)}` });
  const layers = config.mlpLayers ?? [4 * k, 2 * k, k];
  if (
    !Array.isArray(layers) ||
    layers.length === 0 ||
    layers.some((n) => !Number.isInteger(n) || n < 1)
  )
    issues.push({
      path: 'mlpLayers',
      message: `must be a non-empty list of positive integers, got ${JSON.stringify(layers)}`,
    });
  else if (layers.at(-1) !== k)
    issues.push({
      path: 'mlpLayers',
      message: `the last layer must have K = ${k} units (NeuMF's predictive factors), got ${layers.at(-1)}`,
    });
  const m = config.mlpEmbeddingSize ?? (Array.isArray(layers) ? layers[0]! : 4 * k);
  if (!Number.isInteger(m) || m < 1)
    issues.push({
      path: 'mlpEmbeddingSize',
      message: `must be a positive integer, got ${String(m)}`,
    });
  const initStd = config.initStd ?? 0.01;
  if (!Number.isFinite(initStd) || initStd < 0)
    issues.push({
      path: 'initStd',
      message: `must be a finite number >= 0, got ${String(initStd)}`,
    });
  const seed = config.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0)
    issues.push({ path: 'seed', message: `must be an integer >= 0, got ${String(seed)}` });
  if (issues.length > 0) throw new ConfigError(issues);
  return { embeddingSize: k, mlpLayers: [...layers], mlpEmbeddingSize: m, initStd, seed };
}

/**
 * The reference definition in tfjs-core (NCF, He et al., WWW 2017, Eq. 9-12):
 * `phi_GMF = p^G_u (.) q^G_i`, `phi_MLP = a_L(W_L^T (... a_1(W_1^T [p^M_u; q^M_i] + b_1) ...) + b_L)`
 * with ReLU, `y_ui = h^T [phi_GMF; phi_MLP]` (the ranking score; BPR needs no sigmoid).
 */
export const neumfReferenceScore: ReferenceScore = (tf, users, items, dense) => {
  const pG = users[GMF_USER_EMBEDDINGS];
  const qG = items[GMF_ITEM_EMBEDDINGS];
  const pM = users[MLP_USER_EMBEDDINGS];
  const qM = items[MLP_ITEM_EMBEDDINGS];
  const h = dense[PREDICTION_WEIGHTS];
  if (!pG || !qG || !pM || !qM || !h) throw new Error('NeuMF reference: a table is missing');
  const gmf = tf.mul(pG, qG);
  let x = tf.concat([pM, qM], 1);
  for (let layer = 1; dense[mlpWeights(layer)]; layer++)
    x = tf.relu(
      tf.add(tf.matMul(x, dense[mlpWeights(layer)]!), dense[mlpBias(layer)]!),
    ) as typeof x;
  return tf.reshape(tf.matMul(tf.concat([gmf, x], 1), h), [-1]) as ReturnType<ReferenceScore>;
};

/** Glorot-uniform initial weights (Keras' default, as the NCF code), seeded. */
function glorot(table: ParameterTable, fanIn: number, fanOut: number, random: Random): void {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  for (let k = 0; k < table.values.length; k++)
    table.values[k] = (2 * random.nextFloat() - 1) * limit;
}

/** `output = relu(input W + b)` for one pair, in float64 (`W` is `nIn x nOut`, row-major). */
function reluLayer(
  input: Float64Array,
  output: Float64Array,
  w: Float32Array,
  b: Float32Array,
  nIn: number,
  nOut: number,
): void {
  for (let o = 0; o < nOut; o++) output[o] = b[o]!;
  for (let j = 0; j < nIn; j++) {
    const a = input[j]!;
    if (a === 0) continue;
    const row = j * nOut;
    for (let o = 0; o < nOut; o++) output[o]! += a * w[row + o]!;
  }
  for (let o = 0; o < nOut; o++) if (!(output[o]! > 0)) output[o] = 0;
}

function checkIds(ids: Int32Array, count: number, bound: number, what: string): void {
  for (let t = 0; t < count; t++) {
    const id = ids[t]!;
    if (!(id >= 0 && id < bound))
      throw new DataError(`${what} id ${id} at position ${t} is outside [0, ${bound})`);
  }
}

/**
 * NeuMF: a GMF tower (`p^G_u (.) q^G_i`) and an MLP tower over `[p^M_u; q^M_i]` fused by the
 * prediction layer h. Four perturbable surfaces (the towers' user and item embeddings, APR
 * on NeuMF); the MLP weights and h are dense tables. Forward and backward are plain-JS loops
 * over the pairs in float64, checked against the tfjs reference by the contract suite.
 */
export class NeuralMatrixFactorization implements Model {
  readonly specificationVersion = MODEL_SPECIFICATION_VERSION;
  readonly modelName = NEUMF_MODEL_NAME;
  readonly config: JsonObject;
  readonly resolved: ResolvedNeuMFConfig;
  readonly numUsers: number;
  readonly numItems: number;
  readonly tables: readonly ParameterTable[];
  readonly trainableTables: readonly string[];
  readonly surfaces: readonly PerturbableSurface[];
  readonly reference = neumfReferenceScore;
  private readonly byName: ReadonlyMap<string, ParameterTable>;
  /** Layer sizes with the input first: `[2M, l_1, ..., l_L]`. */
  private readonly sizes: readonly number[];

  constructor(
    dimensions: ModelDimensions,
    config: NeuMFConfig = {},
    tables?: readonly ParameterTable[],
  ) {
    const r = resolveNeuMFConfig(config);
    this.resolved = r;
    this.config = {
      embeddingSize: r.embeddingSize,
      mlpLayers: [...r.mlpLayers],
      mlpEmbeddingSize: r.mlpEmbeddingSize,
      initStd: r.initStd,
      seed: r.seed,
    };
    this.numUsers = dimensions.numUsers;
    this.numItems = dimensions.numItems;
    const k = r.embeddingSize;
    const m = r.mlpEmbeddingSize;
    this.sizes = [2 * m, ...r.mlpLayers];
    const L = r.mlpLayers.length;
    const specs: [string, 'user' | 'item' | 'dense', number, number][] = [
      [GMF_USER_EMBEDDINGS, 'user', this.numUsers, k],
      [GMF_ITEM_EMBEDDINGS, 'item', this.numItems, k],
      [MLP_USER_EMBEDDINGS, 'user', this.numUsers, m],
      [MLP_ITEM_EMBEDDINGS, 'item', this.numItems, m],
    ];
    for (let l = 1; l <= L; l++) {
      specs.push([mlpWeights(l), 'dense', this.sizes[l - 1]!, this.sizes[l]!]);
      specs.push([mlpBias(l), 'dense', 1, this.sizes[l]!]);
    }
    specs.push([PREDICTION_WEIGHTS, 'dense', k + this.sizes[L]!, 1]);
    if (tables) {
      this.tables = specs.map(([name, side, rows, dimension]) => {
        const t = tables.find((x) => x.name === name);
        if (!t || t.rows !== rows || t.dimension !== dimension || t.side !== side)
          throw new DataError(
            `neumf: table ${name} must be ${side} ${rows} x ${dimension}, got ${t ? `${t.side} ${t.rows} x ${t.dimension}` : 'none'}`,
          );
        return t;
      });
    } else {
      this.tables = specs.map(([name, side, rows, dimension]) =>
        createTable(name, side, rows, dimension),
      );
      const random = Random.stream(r.seed, 0x6e65756d);
      this.tables.forEach((t, index) => {
        if (t.side !== 'dense') initializeTruncatedNormal(t, r.seed, 0x4e4d0000 + index, r.initStd);
        else if (t.name.startsWith('mlpBias')) t.values.fill(0);
        else glorot(t, t.rows, t.dimension, random);
      });
    }
    this.byName = new Map(this.tables.map((t) => [t.name, t]));
    this.trainableTables = this.tables.map((t) => t.name);
    this.surfaces = [
      { name: GMF_USER_EMBEDDINGS, side: 'user', rows: this.numUsers, dimension: k },
      { name: GMF_ITEM_EMBEDDINGS, side: 'item', rows: this.numItems, dimension: k },
      { name: MLP_USER_EMBEDDINGS, side: 'user', rows: this.numUsers, dimension: m },
      { name: MLP_ITEM_EMBEDDINGS, side: 'item', rows: this.numItems, dimension: m },
    ];
  }

  /** The checkpointed state. */
  state(): ModelState {
    return {
      modelName: this.modelName,
      specificationVersion: this.specificationVersion,
      config: this.config,
      numUsers: this.numUsers,
      numItems: this.numItems,
      tables: this.tables,
    };
  }

  /** Refuses a pair count that does not fit, and ids outside the model. */
  private checkBatch(users: Int32Array, items: Int32Array, count: number): void {
    if (!Number.isInteger(count) || count < 0 || count > users.length || count > items.length)
      throw new DataError(
        `pair count ${count} does not fit users (${users.length}) and items (${items.length})`,
      );
    checkIds(users, count, this.numUsers, 'user');
    checkIds(items, count, this.numItems, 'item');
  }

  /** The sizes, every table's values and the perturbation of each surface, by name. */
  private parameters(perturbations: SparseRowsByName | undefined) {
    const L = this.sizes.length - 1;
    return {
      k: this.resolved.embeddingSize,
      m: this.resolved.mlpEmbeddingSize,
      sizes: this.sizes,
      L,
      pG: this.table(GMF_USER_EMBEDDINGS),
      qG: this.table(GMF_ITEM_EMBEDDINGS),
      pM: this.table(MLP_USER_EMBEDDINGS),
      qM: this.table(MLP_ITEM_EMBEDDINGS),
      h: this.table(PREDICTION_WEIGHTS),
      W: Array.from({ length: L }, (_, l) => this.table(mlpWeights(l + 1))),
      B: Array.from({ length: L }, (_, l) => this.table(mlpBias(l + 1))),
      dpG: perturbations?.get(GMF_USER_EMBEDDINGS),
      dqG: perturbations?.get(GMF_ITEM_EMBEDDINGS),
      dpM: perturbations?.get(MLP_USER_EMBEDDINGS),
      dqM: perturbations?.get(MLP_ITEM_EMBEDDINGS),
    };
  }

  private table(name: string): Float32Array {
    return this.byName.get(name)!.values;
  }

  score(users: Int32Array, items: Int32Array): Float64Array {
    if (users.length !== items.length)
      throw new DataError(`${users.length} users but ${items.length} items`);
    return this.pairScores(users, items, users.length);
  }

  /**
   * Every item for each user. The first MLP layer splits into a user part and an item part
   * (`[p; q] W_1 = p W_1^top + q W_1^bottom`): the item parts are computed once per call, so
   * each pair pays only the upper layers. Sums in the same order as {@link pairScores}
   * up to float64 rounding (the contract checks agreement to 1e-9).
   */
  scoreAll(users: Int32Array, out?: Float64Array): Float64Array {
    checkIds(users, users.length, this.numUsers, 'user');
    const n = this.numItems;
    const result = out ?? new Float64Array(users.length * n);
    const k = this.resolved.embeddingSize;
    const m = this.resolved.mlpEmbeddingSize;
    const sizes = this.sizes;
    const L = sizes.length - 1;
    const l1 = sizes[1]!;
    const W1 = this.table(mlpWeights(1));
    const b1 = this.table(mlpBias(1));
    const pG = this.table(GMF_USER_EMBEDDINGS);
    const qG = this.table(GMF_ITEM_EMBEDDINGS);
    const pM = this.table(MLP_USER_EMBEDDINGS);
    const qM = this.table(MLP_ITEM_EMBEDDINGS);
    const h = this.table(PREDICTION_WEIGHTS);
    const W = Array.from({ length: L }, (_, l) => this.table(mlpWeights(l + 1)));
    const B = Array.from({ length: L }, (_, l) => this.table(mlpBias(l + 1)));
    const itemPart = new Float64Array(n * l1);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        const a = qM[i * m + j]!;
        const row = (m + j) * l1;
        for (let o = 0; o < l1; o++) itemPart[i * l1 + o]! += a * W1[row + o]!;
      }
    const userPart = new Float64Array(l1);
    const x = sizes.map((size) => new Float64Array(size));
    for (let b = 0; b < users.length; b++) {
      const u = users[b]!;
      userPart.set(b1.subarray(0, l1));
      for (let j = 0; j < m; j++) {
        const a = pM[u * m + j]!;
        for (let o = 0; o < l1; o++) userPart[o]! += a * W1[j * l1 + o]!;
      }
      for (let i = 0; i < n; i++) {
        let y = 0;
        for (let f = 0; f < k; f++) y += h[f]! * pG[u * k + f]! * qG[i * k + f]!;
        const x1 = x[1]!;
        for (let o = 0; o < l1; o++) {
          const z = userPart[o]! + itemPart[i * l1 + o]!;
          x1[o] = z > 0 ? z : 0;
        }
        for (let l = 2; l <= L; l++)
          reluLayer(x[l - 1]!, x[l]!, W[l - 1]!, B[l - 1]!, sizes[l - 1]!, sizes[l]!);
        const last = x[L]!;
        for (let f = 0; f < sizes[L]!; f++) y += h[k + f]! * last[f]!;
        result[b * n + i] = y;
      }
    }
    return result;
  }

  pairScores(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Float64Array {
    return this.run(users, items, count, perturbations, null, null);
  }

  pairBackward(
    users: Int32Array,
    items: Int32Array,
    count: number,
    dScores: Float64Array,
    gradients: SparseRowsByName,
    perturbations?: SparseRowsByName,
  ): void {
    this.run(users, items, count, perturbations, dScores, gradients);
  }

  /** Runs the batch step's dense products on `gemm` (e.g. `createGemm({ backend: 'js' })`). */
  useDenseProducts(gemm: Gemm): void {
    this.gemm = gemm;
  }

  /** The backend of the batch step's dense products once chosen (`onnxruntime` or `js`). */
  get denseProducts(): GemmBackendName | null {
    return this.gemm?.backend ?? null;
  }

  private gemm: Gemm | null = null;
  private gemmLoading: Promise<Gemm> | null = null;

  /**
   * The batch step: the MLP tower runs as dense products over the whole batch (`X W`, and in
   * the backward pass `X^T dZ` and `dZ W^T`), on onnxruntime when it is installed, else in
   * plain JS; the GMF tower and the prediction layer stay per pair in float64.
   */
  async forwardPairs(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations?: SparseRowsByName,
  ): Promise<PairBatchForward> {
    this.checkBatch(users, items, count);
    this.gemmLoading ??= createGemm();
    this.gemm ??= await this.gemmLoading;
    const gemm = this.gemm;
    const { k, m, sizes, L, pG, qG, pM, qM, h, W, B, dpG, dqG, dpM, dqM } =
      this.parameters(perturbations);
    // The (perturbed) GMF rows of each pair, and X_0 = [p^M; q^M].
    const gmfUser = new Float64Array(count * k);
    const gmfItem = new Float64Array(count * k);
    const X: Float32Array[] = [new Float32Array(count * 2 * m)];
    for (let t = 0; t < count; t++) {
      const u = users[t]!;
      const i = items[t]!;
      const a = dpG ? dpG.offsetOf(u) : -1;
      const b = dqG ? dqG.offsetOf(i) : -1;
      for (let f = 0; f < k; f++) {
        gmfUser[t * k + f] = pG[u * k + f]! + (a >= 0 ? dpG!.values[a + f]! : 0);
        gmfItem[t * k + f] = qG[i * k + f]! + (b >= 0 ? dqG!.values[b + f]! : 0);
      }
      const c = dpM ? dpM.offsetOf(u) : -1;
      const d = dqM ? dqM.offsetOf(i) : -1;
      const x0 = X[0]!;
      const row = t * 2 * m;
      for (let f = 0; f < m; f++) {
        x0[row + f] = pM[u * m + f]! + (c >= 0 ? dpM!.values[c + f]! : 0);
        x0[row + m + f] = qM[i * m + f]! + (d >= 0 ? dqM!.values[d + f]! : 0);
      }
    }
    for (let l = 1; l <= L; l++) {
      const nIn = sizes[l - 1]!;
      const nOut = sizes[l]!;
      const z = await gemm.multiply(X[l - 1]!, count, nIn, W[l - 1]!, nIn, nOut);
      const bias = B[l - 1]!;
      for (let t = 0; t < count; t++)
        for (let o = 0; o < nOut; o++) {
          const v = z[t * nOut + o]! + bias[o]!;
          z[t * nOut + o] = v > 0 ? v : 0;
        }
      X.push(z);
    }
    const last = X[L]!;
    const nLast = sizes[L]!;
    const scores = new Float64Array(count);
    for (let t = 0; t < count; t++) {
      let y = 0;
      for (let f = 0; f < k; f++) y += h[f]! * gmfUser[t * k + f]! * gmfItem[t * k + f]!;
      for (let f = 0; f < nLast; f++) y += h[k + f]! * last[t * nLast + f]!;
      scores[t] = y;
    }
    const backward = async (dScores: Float64Array, gradients: SparseRowsByName): Promise<void> => {
      const rows = (name: string, dimension: number): SparseRows => {
        let r = gradients.get(name);
        if (!r) gradients.set(name, (r = new SparseRows(dimension, count)));
        return r;
      };
      const gpG = rows(GMF_USER_EMBEDDINGS, k);
      const gqG = rows(GMF_ITEM_EMBEDDINGS, k);
      const gh = new Float64Array(h.length);
      // The top of the MLP: dZ_L = w h_MLP (.) [X_L > 0].
      let dZ: Float32Array = new Float32Array(count * nLast);
      for (let t = 0; t < count; t++) {
        const w = dScores[t]!;
        const u = users[t]!;
        const i = items[t]!;
        const ou = gpG.ensure(u);
        const oi = gqG.ensure(i);
        for (let f = 0; f < k; f++) {
          const p = gmfUser[t * k + f]!;
          const q = gmfItem[t * k + f]!;
          gh[f]! += w * p * q;
          gpG.values[ou + f]! += w * h[f]! * q;
          gqG.values[oi + f]! += w * h[f]! * p;
        }
        for (let f = 0; f < nLast; f++) {
          const a = last[t * nLast + f]!;
          gh[k + f]! += w * a;
          dZ[t * nLast + f] = a > 0 ? w * h[k + f]! : 0;
        }
      }
      const add = (
        name: string,
        values: ArrayLike<number>,
        rowsOf: number,
        dimension: number,
      ): void => {
        const r = rows(name, dimension);
        for (let row = 0; row < rowsOf; row++) {
          const o = r.ensure(row);
          for (let f = 0; f < dimension; f++) r.values[o + f]! += values[row * dimension + f]!;
        }
      };
      for (let l = L; l >= 1; l--) {
        const nIn = sizes[l - 1]!;
        const nOut = sizes[l]!;
        const input = X[l - 1]!;
        add(
          mlpWeights(l),
          await gemm.multiply(input, count, nIn, dZ, count, nOut, true, false),
          nIn,
          nOut,
        );
        const gb = new Float64Array(nOut);
        for (let t = 0; t < count; t++) for (let o = 0; o < nOut; o++) gb[o]! += dZ[t * nOut + o]!;
        add(mlpBias(l), gb, 1, nOut);
        const dX = await gemm.multiply(dZ, count, nOut, W[l - 1]!, nIn, nOut, false, true);
        // Below the first layer are the embeddings (no ReLU); above, ReLU's gate.
        if (l > 1) for (let j = 0; j < dX.length; j++) if (!(input[j]! > 0)) dX[j] = 0;
        dZ = dX;
      }
      const gpM = rows(MLP_USER_EMBEDDINGS, m);
      const gqM = rows(MLP_ITEM_EMBEDDINGS, m);
      for (let t = 0; t < count; t++) {
        const ou = gpM.ensure(users[t]!);
        const oi = gqM.ensure(items[t]!);
        const row = t * 2 * m;
        for (let f = 0; f < m; f++) {
          gpM.values[ou + f]! += dZ[row + f]!;
          gqM.values[oi + f]! += dZ[row + m + f]!;
        }
      }
      add(PREDICTION_WEIGHTS, gh, k + nLast, 1);
    };
    return { scores, backward };
  }

  /**
   * Scores the pairs; with `dScores`, also adds the gradient of `sum_t dScores[t] y_t` into
   * `gradients` (every table: the pairs' embedding rows, the dense tables whole).
   */
  private run(
    users: Int32Array,
    items: Int32Array,
    count: number,
    perturbations: SparseRowsByName | undefined,
    dScores: Float64Array | null,
    gradients: SparseRowsByName | null,
  ): Float64Array {
    this.checkBatch(users, items, count);
    const { k, m, sizes, L, pG, qG, pM, qM, h, W, B, dpG, dqG, dpM, dqM } =
      this.parameters(perturbations);
    const widest = Math.max(...sizes);
    // Activations of every layer (x_0 = [p^M; q^M], x_l = relu(z_l)), kept for the backward pass.
    const x = sizes.map((n) => new Float64Array(n));
    const gmfUser = new Float64Array(k);
    const gmfItem = new Float64Array(k);
    const scores = new Float64Array(count);
    const backward = dScores !== null && gradients !== null;
    const rows = (name: string, dimension: number): SparseRows => {
      let r = gradients!.get(name);
      if (!r) gradients!.set(name, (r = new SparseRows(dimension, count)));
      return r;
    };
    const gpG = backward ? rows(GMF_USER_EMBEDDINGS, k) : null;
    const gqG = backward ? rows(GMF_ITEM_EMBEDDINGS, k) : null;
    const gpM = backward ? rows(MLP_USER_EMBEDDINGS, m) : null;
    const gqM = backward ? rows(MLP_ITEM_EMBEDDINGS, m) : null;
    // Dense gradients are summed in float64 over the batch, then added once.
    const gW = backward ? W.map((w) => new Float64Array(w.length)) : [];
    const gB = backward ? B.map((b) => new Float64Array(b.length)) : [];
    const gh = backward ? new Float64Array(h.length) : null;
    const dx = backward ? [new Float64Array(widest), new Float64Array(widest)] : [];
    for (let t = 0; t < count; t++) {
      const u = users[t]!;
      const i = items[t]!;
      const oPG = dpG ? dpG.offsetOf(u) : -1;
      const oQG = dqG ? dqG.offsetOf(i) : -1;
      const oPM = dpM ? dpM.offsetOf(u) : -1;
      const oQM = dqM ? dqM.offsetOf(i) : -1;
      let y = 0;
      for (let f = 0; f < k; f++) {
        const p = pG[u * k + f]! + (oPG >= 0 ? dpG!.values[oPG + f]! : 0);
        const q = qG[i * k + f]! + (oQG >= 0 ? dqG!.values[oQG + f]! : 0);
        gmfUser[f] = p;
        gmfItem[f] = q;
        y += h[f]! * p * q;
      }
      const x0 = x[0]!;
      for (let f = 0; f < m; f++) {
        x0[f] = pM[u * m + f]! + (oPM >= 0 ? dpM!.values[oPM + f]! : 0);
        x0[m + f] = qM[i * m + f]! + (oQM >= 0 ? dqM!.values[oQM + f]! : 0);
      }
      for (let l = 1; l <= L; l++)
        reluLayer(x[l - 1]!, x[l]!, W[l - 1]!, B[l - 1]!, sizes[l - 1]!, sizes[l]!);
      const last = x[L]!;
      for (let f = 0; f < sizes[L]!; f++) y += h[k + f]! * last[f]!;
      scores[t] = y;
      if (!backward) continue;
      const w0 = dScores![t]!;
      // Prediction layer and GMF tower.
      const ou = gpG!.ensure(u);
      const oi = gqG!.ensure(i);
      for (let f = 0; f < k; f++) {
        const g = gmfUser[f]! * gmfItem[f]!;
        gh![f]! += w0 * g;
        const c = w0 * h[f]!;
        gpG!.values[ou + f]! += c * gmfItem[f]!;
        gqG!.values[oi + f]! += c * gmfUser[f]!;
      }
      // MLP tower, from the top: dz_l = dx_l (.) [z_l > 0].
      let upper = dx[0]!;
      let lower = dx[1]!;
      for (let f = 0; f < sizes[L]!; f++) {
        gh![k + f]! += w0 * last[f]!;
        upper[f] = last[f]! > 0 ? w0 * h[k + f]! : 0;
      }
      for (let l = L; l >= 1; l--) {
        const nIn = sizes[l - 1]!;
        const nOut = sizes[l]!;
        const input = x[l - 1]!;
        const w = W[l - 1]!;
        const gw = gW[l - 1]!;
        const gb = gB[l - 1]!;
        for (let o = 0; o < nOut; o++) gb[o]! += upper[o]!;
        for (let j = 0; j < nIn; j++) {
          const a = input[j]!;
          const row = j * nOut;
          let back = 0;
          for (let o = 0; o < nOut; o++) {
            const dz = upper[o]!;
            gw[row + o]! += a * dz;
            back += dz * w[row + o]!;
          }
          // Below the first layer are the embeddings (no ReLU); above, ReLU's gate.
          lower[j] = l === 1 || a > 0 ? back : 0;
        }
        [upper, lower] = [lower, upper];
      }
      const ouM = gpM!.ensure(u);
      const oiM = gqM!.ensure(i);
      for (let f = 0; f < m; f++) {
        gpM!.values[ouM + f]! += upper[f]!;
        gqM!.values[oiM + f]! += upper[m + f]!;
      }
    }
    if (backward) {
      const add = (name: string, values: Float64Array, rowsOf: number, dimension: number): void => {
        const r = rows(name, dimension);
        for (let row = 0; row < rowsOf; row++) {
          const o = r.ensure(row);
          for (let f = 0; f < dimension; f++) r.values[o + f]! += values[row * dimension + f]!;
        }
      };
      for (let l = 1; l <= L; l++) {
        add(mlpWeights(l), gW[l - 1]!, sizes[l - 1]!, sizes[l]!);
        add(mlpBias(l), gB[l - 1]!, 1, sizes[l]!);
      }
      add(PREDICTION_WEIGHTS, gh!, k + sizes[L]!, 1);
    }
    return scores;
  }
}
