import { Random } from '@advrec/data';
import { applyDropout, columnSums, nextItemLoss, tableReader } from '@advrec/models';
import type {
  JsonObject,
  SequenceGradientKernel,
  SequencePass,
  SequencePassGradients,
} from '@advrec/models';
import type { Gemm } from '@advrec/onnx';
import {
  GRU_INPUT_BIAS,
  GRU_INPUT_WEIGHTS,
  GRU_RECURRENT_BIAS,
  GRU_RECURRENT_WEIGHTS,
  OUTPUT_BIAS,
  OUTPUT_WEIGHTS,
} from './gru4rec.js';
import type { ResolvedGRU4RecConfig } from './gru4rec.js';

const sigmoid = (x: number): number =>
  x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));

function addRowBias(y: Float32Array, rows: number, width: number, bias: Float32Array): void {
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < width; c++) y[r * width + c] = y[r * width + c]! + bias[c]!;
}

/**
 * GRU4Rec's forward and backward pass written out by hand (the same math as
 * `gru4recEncoder` in tfjs, its test oracle): the input projection of every position, each
 * step's recurrent product, the output projection and every weight gradient are dense
 * products on a {@link Gemm} (onnxruntime's MLAS when installed); the gates, backpropagation
 * through time and the loss run in plain loops. Dropout masks come from the pass's seed.
 */
export class GRU4RecGradientKernel implements SequenceGradientKernel {
  readonly name: string;
  private readonly table: (name: string) => Float32Array;

  /** `values`: the model's tables by name (read at every pass). */
  constructor(
    values: ReadonlyMap<string, Float32Array>,
    private readonly config: ResolvedGRU4RecConfig,
    private readonly gemm: Gemm,
  ) {
    this.name = `gru4rec-fused (${gemm.backend} products)`;
    this.table = tableReader(values, 'GRU4Rec');
  }

  async lossAndGradients(pass: SequencePass): Promise<SequencePassGradients> {
    const { dimension: d, hiddenSize: h, dropout } = this.config;
    const G = 3 * h;
    const { size: B, length: L } = pass;
    const N = B * L;
    const mask = pass.inputMask;
    const random = new Random(pass.seed >>> 0);
    const W = this.table(GRU_INPUT_WEIGHTS);
    const U = this.table(GRU_RECURRENT_WEIGHTS);
    const Wo = this.table(OUTPUT_WEIGHTS);

    // inputs = dropout(item rows) * mask; X = inputs W + b_W for every position at once.
    const inputs = Float32Array.from(pass.inputRows);
    const inputDropout = applyDropout(random, inputs, pass.training ? dropout : 0);
    for (let n = 0; n < N; n++) if (mask[n] === 0) inputs.fill(0, n * d, (n + 1) * d);
    const X = await this.gemm.multiply(inputs, N, d, W, d, G);
    addRowBias(X, N, G, this.table(GRU_INPUT_BIAS));

    // The recurrence, step by step; the gates kept for the backward pass.
    const recurrentBias = this.table(GRU_RECURRENT_BIAS);
    const update = new Float32Array(N * h);
    const reset = new Float32Array(N * h);
    const candidate = new Float32Array(N * h);
    const recurrentCandidate = new Float32Array(N * h);
    const previous = new Float32Array(N * h);
    const states = new Float32Array(N * h);
    let state = new Float32Array(B * h);
    for (let t = 0; t < L; t++) {
      const H = await this.gemm.multiply(state, B, h, U, h, G);
      addRowBias(H, B, G, recurrentBias);
      const next = new Float32Array(B * h);
      for (let b = 0; b < B; b++) {
        const n = b * L + t;
        const real = mask[n] !== 0;
        for (let j = 0; j < h; j++) {
          const p = state[b * h + j]!;
          const at = n * h + j;
          previous[at] = p;
          const z = sigmoid(X[n * G + j]! + H[b * G + j]!);
          const r = sigmoid(X[n * G + h + j]! + H[b * G + h + j]!);
          const hn = H[b * G + 2 * h + j]!;
          const c = Math.tanh(X[n * G + 2 * h + j]! + r * hn);
          update[at] = z;
          reset[at] = r;
          candidate[at] = c;
          recurrentCandidate[at] = hn;
          const value = real ? (1 - z) * c + z * p : p;
          next[b * h + j] = value;
          states[at] = value;
        }
      }
      state = next;
    }
    const out = await this.gemm.multiply(states, N, h, Wo, h, d);
    addRowBias(out, N, d, this.table(OUTPUT_BIAS));
    const { loss, dStates, dPositive, dNegative } = nextItemLoss(out, pass, d);

    // Output projection.
    const dWo = await this.gemm.multiply(states, N, h, dStates, N, d, true, false);
    const dbo = await columnSums(this.gemm, dStates, N, d);
    const dS = await this.gemm.multiply(dStates, N, d, Wo, h, d, false, true);

    // Backpropagation through time.
    const dX = new Float32Array(N * G);
    const dH = new Float32Array(N * G);
    let carry = new Float32Array(B * h);
    for (let t = L - 1; t >= 0; t--) {
      const step = new Float32Array(B * G);
      const nextCarry = new Float32Array(B * h);
      for (let b = 0; b < B; b++) {
        const n = b * L + t;
        const real = mask[n] !== 0;
        for (let j = 0; j < h; j++) {
          const at = n * h + j;
          const g = dS[at]! + carry[b * h + j]!;
          if (!real) {
            nextCarry[b * h + j] = g; // the state passes through padding unchanged
            continue;
          }
          const z = update[at]!;
          const r = reset[at]!;
          const c = candidate[at]!;
          const dc = g * (1 - z) * (1 - c * c);
          const dz = g * (previous[at]! - c) * z * (1 - z);
          const dr = dc * recurrentCandidate[at]! * r * (1 - r);
          nextCarry[b * h + j] = g * z;
          dX[n * G + j] = dz;
          dX[n * G + h + j] = dr;
          dX[n * G + 2 * h + j] = dc;
          step[b * G + j] = dz;
          step[b * G + h + j] = dr;
          step[b * G + 2 * h + j] = dc * r;
        }
      }
      for (let b = 0; b < B; b++) dH.set(step.subarray(b * G, (b + 1) * G), (b * L + t) * G);
      const fromU = await this.gemm.multiply(step, B, G, U, h, G, false, true);
      for (let x = 0; x < B * h; x++) nextCarry[x] = nextCarry[x]! + fromU[x]!;
      carry = nextCarry;
    }
    const dU = await this.gemm.multiply(previous, N, h, dH, N, G, true, false);
    const dbU = await columnSums(this.gemm, dH, N, G);
    const dW = await this.gemm.multiply(inputs, N, d, dX, N, G, true, false);
    const dbW = await columnSums(this.gemm, dX, N, G);
    const dInputs = await this.gemm.multiply(dX, N, G, W, d, G, false, true);
    for (let n = 0; n < N; n++) if (mask[n] === 0) dInputs.fill(0, n * d, (n + 1) * d);
    if (inputDropout) for (let x = 0; x < N * d; x++) dInputs[x] = dInputs[x]! * inputDropout[x]!;
    const copy = (x: Float32Array) => Float32Array.from(x);
    return {
      loss,
      inputRows: copy(dInputs),
      positiveRows: dPositive,
      negativeRows: dNegative,
      dense: new Map([
        [GRU_INPUT_WEIGHTS, copy(dW)],
        [GRU_RECURRENT_WEIGHTS, copy(dU)],
        [GRU_INPUT_BIAS, copy(dbW)],
        [GRU_RECURRENT_BIAS, copy(dbU)],
        [OUTPUT_WEIGHTS, copy(dWo)],
        [OUTPUT_BIAS, copy(dbo)],
      ]),
    };
  }

  async release(): Promise<void> {
    // The Gemm belongs to the caller.
  }
}

/**
 * The kernel module's entry for `ChunkedSequenceKernel` (this thread and its worker
 * threads): GRU4Rec's pass with the resolved config `config` over `values`.
 */
export function createPassKernel(
  config: JsonObject,
  values: ReadonlyMap<string, Float32Array>,
  gemm: Gemm,
): SequenceGradientKernel {
  return new GRU4RecGradientKernel(values, config as unknown as ResolvedGRU4RecConfig, gemm);
}
