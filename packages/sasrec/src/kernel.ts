import { Random } from '@advrec/data';
import { applyDropout, columnSums, nextItemLoss, tableReader } from '@advrec/models';
import type {
  JsonObject,
  SequenceGradientKernel,
  SequencePass,
  SequencePassGradients,
} from '@advrec/models';
import type { Gemm } from '@advrec/onnx';
import type { ResolvedSASRecConfig } from './sasrec.js';

/**
 * SASRec's forward and backward pass written out by hand (the same math as
 * `sasrecEncoder` in tfjs, which is this kernel's test oracle): the dense products (the
 * projections, the feed-forward layers, attention's per-sequence products and every weight
 * gradient) go to a {@link Gemm} (onnxruntime's MLAS when installed), and the element-wise
 * work (layer norms, the causal softmax, ReLU, dropout, residuals, the loss) runs in plain
 * loops over Float32Arrays. Dropout masks come from the pass's seed, so a pass is a
 * function of its inputs and seed.
 */

/** A masked key's additive logit: its weight underflows to exactly 0. */
const MASKED = -1e9;

/** LN's `1e-8` under the square root, as SASRec's `normalize`. */
const NORM_EPSILON = 1e-8;

interface NormCache {
  readonly xhat: Float32Array;
  readonly rstd: Float32Array;
}

/** `y = xhat * gamma + beta` per row of width d, `xhat = (x - mean) / sqrt(var + 1e-8)`. */
function layerNormForward(
  x: Float32Array,
  rows: number,
  d: number,
  gamma: Float32Array,
  beta: Float32Array,
): { y: Float32Array; cache: NormCache } {
  const y = new Float32Array(rows * d);
  const xhat = new Float32Array(rows * d);
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const at = r * d;
    let mean = 0;
    for (let c = 0; c < d; c++) mean += x[at + c]!;
    mean /= d;
    let variance = 0;
    for (let c = 0; c < d; c++) {
      const z = x[at + c]! - mean;
      variance += z * z;
    }
    variance /= d;
    const s = 1 / Math.sqrt(variance + NORM_EPSILON);
    rstd[r] = s;
    for (let c = 0; c < d; c++) {
      const h = (x[at + c]! - mean) * s;
      xhat[at + c] = h;
      y[at + c] = h * gamma[c]! + beta[c]!;
    }
  }
  return { y, cache: { xhat, rstd } };
}

/**
 * Layer norm's backward: adds `dL/dx` into `dx` (when given; else returns a new array) and
 * `dL/dgamma`, `dL/dbeta` into their accumulators. Rows whose `dy` is zero add nothing.
 */
function layerNormBackward(
  dy: Float32Array,
  cache: NormCache,
  rows: number,
  d: number,
  gamma: Float32Array,
  dGamma: Float64Array,
  dBeta: Float64Array,
  dx: Float32Array,
): void {
  const { xhat, rstd } = cache;
  for (let r = 0; r < rows; r++) {
    const at = r * d;
    let meanD = 0;
    let meanDX = 0;
    let any = false;
    for (let c = 0; c < d; c++) {
      const g = dy[at + c]!;
      if (g !== 0) any = true;
      dGamma[c]! += g * xhat[at + c]!;
      dBeta[c]! += g;
      const dh = g * gamma[c]!;
      meanD += dh;
      meanDX += dh * xhat[at + c]!;
    }
    if (!any) continue;
    meanD /= d;
    meanDX /= d;
    const s = rstd[r]!;
    for (let c = 0; c < d; c++) {
      const dh = dy[at + c]! * gamma[c]!;
      dx[at + c] = dx[at + c]! + s * (dh - meanD - xhat[at + c]! * meanDX);
    }
  }
}

function multiplyInPlace(x: Float32Array, mask: Float32Array | null): void {
  if (!mask) return;
  for (let k = 0; k < x.length; k++) x[k] = x[k]! * mask[k]!;
}

function addBias(y: Float32Array, rows: number, d: number, bias: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < d; c++) y[r * d + c] = y[r * d + c]! + bias[c]!;
  return y;
}

/** `batch x rows x cols` to `batch x cols x rows`. */
function transposeBatched(
  x: Float32Array,
  batch: number,
  rows: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(batch * rows * cols);
  for (let b = 0; b < batch; b++) {
    const base = b * rows * cols;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) out[base + c * rows + r] = x[base + r * cols + c]!;
  }
  return out;
}

interface BlockCache {
  readonly input: Float32Array;
  readonly queryNorm: NormCache;
  readonly queries: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** Softmax weights before the query mask and dropout. */
  readonly weights: Float32Array;
  /** The weights after the query mask and dropout (what multiplies V). */
  readonly dropped: Float32Array;
  readonly attentionDropout: Float32Array | null;
  readonly feedForwardNorm: NormCache;
  readonly normed: Float32Array;
  readonly preActivation: Float32Array;
  readonly hidden: Float32Array;
  readonly hiddenDropout: Float32Array | null;
  readonly outputDropout: Float32Array | null;
  /** The block's output, `(out + normed) * mask`: the next block's input. */
  readonly output: Float32Array;
}

/** What every step of one pass shares. */
interface PassRun {
  readonly pass: SequencePass;
  readonly B: number;
  readonly L: number;
  readonly N: number;
  readonly d: number;
  readonly mask: Float32Array;
  /** The pass's dropout stream: the embedding's mask first, then each block's in order. */
  readonly random: Random;
  readonly rate: number;
  /** `1 / sqrt(d)`, the attention logits' scale. */
  readonly scale: number;
  readonly attentionBias: Float32Array;
  /** The gradient accumulator of a dense table (created on first use). */
  readonly grad: (name: string, length: number) => Float64Array;
}

/** The causal + key-padding mask as an additive bias, as the tfjs encoder's. */
function attentionBias(mask: ArrayLike<number>, B: number, L: number): Float32Array {
  const bias = new Float32Array(B * L * L);
  for (let b = 0; b < B; b++)
    for (let qi = 0; qi < L; qi++) {
      const row = (b * L + qi) * L;
      for (let ki = 0; ki < L; ki++) if (ki > qi || mask[b * L + ki] === 0) bias[row + ki] = MASKED;
    }
  return bias;
}

/** The SASRec {@link SequenceGradientKernel} over a model's tables. */
export class SASRecGradientKernel implements SequenceGradientKernel {
  readonly name: string;
  private readonly table: (name: string) => Float32Array;

  /** `values`: the model's tables by name (read at every pass: the trainer updates them in place). */
  constructor(
    values: ReadonlyMap<string, Float32Array>,
    private readonly config: ResolvedSASRecConfig,
    private readonly gemm: Gemm,
  ) {
    this.name = `sasrec-fused (${gemm.backend} products)`;
    this.table = tableReader(values, 'SASRec');
  }

  private async linear(
    x: Float32Array,
    rows: number,
    weights: string,
    bias: string,
  ): Promise<Float32Array> {
    const d = this.config.dimension;
    const y = await this.gemm.multiply(x, rows, d, this.table(weights), d, d);
    return addBias(y, rows, d, this.table(bias));
  }

  async lossAndGradients(pass: SequencePass): Promise<SequencePassGradients> {
    const d = this.config.dimension;
    const { size: B, length: L } = pass;
    const N = B * L;
    const grads = new Map<string, Float64Array>();
    const run: PassRun = {
      pass,
      B,
      L,
      N,
      d,
      mask: pass.inputMask,
      random: new Random(pass.seed >>> 0),
      rate: pass.training ? this.config.dropout : 0,
      scale: 1 / Math.sqrt(d),
      attentionBias: attentionBias(pass.inputMask, B, L),
      grad: (name, length) => {
        let g = grads.get(name);
        if (!g) {
          g = new Float64Array(length);
          grads.set(name, g);
        }
        return g;
      },
    };
    const { seq: embedded, embeddingDropout } = this.embed(run);
    let seq = embedded;
    const caches: BlockCache[] = [];
    for (let block = 0; block < this.config.blocks; block++) {
      const cache = await this.blockForward(run, block, seq);
      caches.push(cache);
      seq = cache.output;
    }
    const outGamma = this.table('outputNorm.gamma');
    const { y: states, cache: outputNorm } = layerNormForward(
      seq,
      N,
      d,
      outGamma,
      this.table('outputNorm.beta'),
    );

    // Loss and its gradient at the hidden states and the target rows.
    const { loss, dStates, dPositive, dNegative } = nextItemLoss(states, pass, d);

    let dSeq: Float32Array = new Float32Array(N * d);
    layerNormBackward(
      dStates,
      outputNorm,
      N,
      d,
      outGamma,
      run.grad('outputNorm.gamma', d),
      run.grad('outputNorm.beta', d),
      dSeq,
    );
    for (let block = this.config.blocks - 1; block >= 0; block--)
      dSeq = await this.blockBackward(run, block, caches[block]!, dSeq);
    const dense = new Map<string, Float32Array>();
    const inputRows = this.embedBackward(run, dSeq, embeddingDropout);
    for (const [name, g] of grads) dense.set(name, Float32Array.from(g));
    return { loss, inputRows, positiveRows: dPositive, negativeRows: dNegative, dense };
  }

  /** The encoder's input: `dropout(E_input * sqrt(d) + P)`, padding zeroed. */
  private embed(run: PassRun): { seq: Float32Array; embeddingDropout: Float32Array | null } {
    const { pass, B, L, N, d, mask } = run;
    const positions = this.table('positionEmbeddings');
    const root = Math.sqrt(d);
    const seq = new Float32Array(N * d);
    for (let b = 0; b < B; b++)
      for (let l = 0; l < L; l++) {
        const at = (b * L + l) * d;
        const p = (pass.positionOffset + l) * d;
        for (let c = 0; c < d; c++)
          seq[at + c] = pass.inputRows[at + c]! * root + positions[p + c]!;
      }
    const embeddingDropout = applyDropout(run.random, seq, run.rate);
    for (let n = 0; n < N; n++) if (mask[n] === 0) seq.fill(0, n * d, (n + 1) * d);
    return { seq, embeddingDropout };
  }

  /** The input rows' and position embeddings' gradient from the first block's input gradient. */
  private embedBackward(
    run: PassRun,
    dSeq: Float32Array,
    embeddingDropout: Float32Array | null,
  ): Float32Array {
    const { pass, B, L, N, d, mask } = run;
    const root = Math.sqrt(d);
    // seq_0 = dropout(E * sqrt(d) + P) * mask
    for (let n = 0; n < N; n++) if (mask[n] === 0) dSeq.fill(0, n * d, (n + 1) * d);
    multiplyInPlace(dSeq, embeddingDropout);
    const dPositions = run.grad('positionEmbeddings', this.config.maxLength * d);
    const dInputRows = new Float32Array(N * d);
    for (let b = 0; b < B; b++)
      for (let l = 0; l < L; l++) {
        const at = (b * L + l) * d;
        const p = (pass.positionOffset + l) * d;
        for (let c = 0; c < d; c++) {
          dPositions[p + c]! += dSeq[at + c]!;
          dInputRows[at + c] = dSeq[at + c]! * root;
        }
      }
    return dInputRows;
  }

  /** One self-attention block forward, kept for its backward pass. */
  private async blockForward(
    run: PassRun,
    block: number,
    input: Float32Array,
  ): Promise<BlockCache> {
    const { B, L, N, d, mask, random, rate } = run;
    const t = (part: string) => this.table(`block${block}.${part}`);
    const name = (part: string) => `block${block}.${part}`;
    const { y: queries, cache: queryNorm } = layerNormForward(
      input,
      N,
      d,
      t('attentionNorm.gamma'),
      t('attentionNorm.beta'),
    );
    const q = await this.linear(queries, N, name('query.weights'), name('query.bias'));
    const k = await this.linear(input, N, name('key.weights'), name('key.bias'));
    const v = await this.linear(input, N, name('value.weights'), name('value.bias'));
    // Causal softmax over the real keys k <= q of each query (masked keys: an exact 0).
    const weights = await this.gemm.softmaxBatched(
      q,
      transposeBatched(k, B, L, d),
      run.attentionBias,
      B,
      L,
      d,
      L,
      run.scale,
    );
    // Padded queries attend to nothing.
    for (let n = 0; n < N; n++) if (mask[n] === 0) weights.fill(0, n * L, (n + 1) * L);
    const dropped = rate > 0 ? Float32Array.from(weights) : weights;
    const attentionDropout = applyDropout(random, dropped, rate);
    const attended = await this.gemm.multiplyBatched(dropped, v, B, L, L, d);
    for (let x = 0; x < N * d; x++) attended[x] = attended[x]! + queries[x]!;
    const { y: normed, cache: feedForwardNorm } = layerNormForward(
      attended,
      N,
      d,
      t('feedForwardNorm.gamma'),
      t('feedForwardNorm.beta'),
    );
    const preActivation = await this.linear(
      normed,
      N,
      name('feedForward1.weights'),
      name('feedForward1.bias'),
    );
    const hidden = new Float32Array(N * d);
    for (let x = 0; x < N * d; x++) if (preActivation[x]! > 0) hidden[x] = preActivation[x]!;
    const hiddenDropout = applyDropout(random, hidden, rate);
    const out = await this.linear(
      hidden,
      N,
      name('feedForward2.weights'),
      name('feedForward2.bias'),
    );
    const outputDropout = applyDropout(random, out, rate);
    const output = new Float32Array(N * d);
    for (let n = 0; n < N; n++)
      if (mask[n] !== 0)
        for (let c = 0; c < d; c++) output[n * d + c] = out[n * d + c]! + normed[n * d + c]!;
    return {
      input,
      queryNorm,
      queries,
      q,
      k,
      v,
      weights,
      dropped,
      attentionDropout,
      feedForwardNorm,
      normed,
      preActivation,
      hidden,
      hiddenDropout,
      outputDropout,
      output,
    };
  }

  /** One block backward: adds its weights' gradients, returns the gradient at its input. */
  private async blockBackward(
    run: PassRun,
    block: number,
    c: BlockCache,
    dSeq: Float32Array,
  ): Promise<Float32Array> {
    const { N, d, mask, grad } = run;
    const t = (part: string) => this.table(`block${block}.${part}`);
    const name = (part: string) => `block${block}.${part}`;
    // seq_out = (out + normed) * mask
    for (let n = 0; n < N; n++) if (mask[n] === 0) dSeq.fill(0, n * d, (n + 1) * d);
    const dOut = Float32Array.from(dSeq);
    multiplyInPlace(dOut, c.outputDropout);
    await this.weightGradient(c.hidden, dOut, N, name('feedForward2'), grad);
    const dHidden = await this.backThrough(dOut, N, t('feedForward2.weights'));
    multiplyInPlace(dHidden, c.hiddenDropout);
    for (let x = 0; x < N * d; x++) if (!(c.preActivation[x]! > 0)) dHidden[x] = 0;
    await this.weightGradient(c.normed, dHidden, N, name('feedForward1'), grad);
    const dNormed = await this.backThrough(dHidden, N, t('feedForward1.weights'));
    for (let x = 0; x < N * d; x++) dNormed[x] = dNormed[x]! + dSeq[x]!;
    const dAttended = new Float32Array(N * d);
    layerNormBackward(
      dNormed,
      c.feedForwardNorm,
      N,
      d,
      t('feedForwardNorm.gamma'),
      grad(name('feedForwardNorm.gamma'), d),
      grad(name('feedForwardNorm.beta'), d),
      dAttended,
    );
    const { dQueries, dQ, dK, dV } = await this.attentionBackward(run, c, dAttended);
    await this.weightGradient(c.queries, dQ, N, name('query'), grad);
    const fromQ = await this.backThrough(dQ, N, t('query.weights'));
    for (let x = 0; x < N * d; x++) dQueries[x] = dQueries[x]! + fromQ[x]!;
    await this.weightGradient(c.input, dK, N, name('key'), grad);
    await this.weightGradient(c.input, dV, N, name('value'), grad);
    const dInput = await this.backThrough(dK, N, t('key.weights'));
    const fromV = await this.backThrough(dV, N, t('value.weights'));
    for (let x = 0; x < N * d; x++) dInput[x] = dInput[x]! + fromV[x]!;
    layerNormBackward(
      dQueries,
      c.queryNorm,
      N,
      d,
      t('attentionNorm.gamma'),
      grad(name('attentionNorm.gamma'), d),
      grad(name('attentionNorm.beta'), d),
      dInput,
    );
    return dInput;
  }

  /**
   * Attention backward from `attended = dropped . V + queries`: the gradients at the queries
   * (the residual's share), at Q, K and V.
   */
  private async attentionBackward(
    run: PassRun,
    c: BlockCache,
    dAttended: Float32Array,
  ): Promise<{ dQueries: Float32Array; dQ: Float32Array; dK: Float32Array; dV: Float32Array }> {
    const { B, L, d, mask, scale } = run;
    const dQueries = Float32Array.from(dAttended);
    const dDropped = await this.gemm.multiplyBatched(
      dAttended,
      transposeBatched(c.v, B, L, d),
      B,
      L,
      d,
      L,
    );
    const dV = await this.gemm.multiplyBatched(
      transposeBatched(c.dropped, B, L, L),
      dAttended,
      B,
      L,
      L,
      d,
    );
    // Through dropout, the query mask and the softmax, to the scaled logits.
    multiplyInPlace(dDropped, c.attentionDropout);
    const dLogits = new Float32Array(B * L * L);
    for (let b = 0; b < B; b++)
      for (let qi = 0; qi < L; qi++) {
        if (mask[b * L + qi] === 0) continue;
        const row = (b * L + qi) * L;
        let dot = 0;
        for (let ki = 0; ki <= qi; ki++) dot += dDropped[row + ki]! * c.weights[row + ki]!;
        for (let ki = 0; ki <= qi; ki++)
          dLogits[row + ki] = c.weights[row + ki]! * (dDropped[row + ki]! - dot) * scale;
      }
    const dQ = await this.gemm.multiplyBatched(dLogits, c.k, B, L, L, d);
    const dK = await this.gemm.multiplyBatched(transposeBatched(dLogits, B, L, L), c.q, B, L, L, d);
    return { dQueries, dQ, dK, dV };
  }

  /** `dy W^T`: a linear layer's gradient at its input. */
  private async backThrough(
    dy: Float32Array,
    rows: number,
    weights: Float32Array,
  ): Promise<Float32Array> {
    const d = this.config.dimension;
    return await this.gemm.multiply(dy, rows, d, weights, d, d, false, true);
  }

  /** `dW += x^T dy` and `db += sum(dy)` of the linear layer `prefix` (`.weights`, `.bias`). */
  private async weightGradient(
    x: Float32Array,
    dy: Float32Array,
    rows: number,
    prefix: string,
    grad: (name: string, length: number) => Float64Array,
  ): Promise<void> {
    const d = this.config.dimension;
    const dW = await this.gemm.multiply(x, rows, d, dy, rows, d, true, false);
    const into = grad(`${prefix}.weights`, d * d);
    for (let k = 0; k < d * d; k++) into[k]! += dW[k]!;
    // The bias gradient, the column sums of dy, as one more product: 1^T dy.
    const sums = await columnSums(this.gemm, dy, rows, d);
    const bias = grad(`${prefix}.bias`, d);
    for (let c = 0; c < d; c++) bias[c]! += sums[c]!;
  }

  async release(): Promise<void> {
    // The Gemm belongs to the caller.
  }
}

/**
 * The kernel module's entry for `ChunkedSequenceKernel` (this thread and its worker
 * threads): SASRec's pass with the resolved config `config` over `values`.
 */
export function createPassKernel(
  config: JsonObject,
  values: ReadonlyMap<string, Float32Array>,
  gemm: Gemm,
): SequenceGradientKernel {
  return new SASRecGradientKernel(values, config as unknown as ResolvedSASRecConfig, gemm);
}
