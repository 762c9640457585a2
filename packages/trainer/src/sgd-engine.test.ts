import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  holdOutValidation,
  leaveOneOut,
  readMovieLens100K,
  toImplicit,
  TripleSampler,
} from '@advrec/data';
import type { Dataset, InteractionMatrix } from '@advrec/data';
import { MatrixFactorization } from '@advrec/models';
import { sharedDataFiles } from '@advrec/testing';
import type { WasmApi } from './mf-kernel.js';
import { SgdTriplesEngine } from './sgd-engine.js';
import { sgdStreamState } from './sgd-kernel.js';
import { getAdversary } from '@advrec/adversary';
import { resolveTrainConfig } from './config.js';
import { selectEngineProvider } from './engine.js';
import { Trainer } from './trainer.js';
import { SGD_KERNEL_WASM_BASE64 } from './wasm/sgd-kernel-bytes.js';
import { MF_KERNEL_WASM_BASE64 } from './wasm/mf-kernel-bytes.js';
import { ADAM_KERNEL_WASM_BASE64 } from './wasm/adam-kernel-bytes.js';
// @ts-expect-error: a plain ESM script without types (the build step of the kernels).
import { KERNELS, compileWat } from '../scripts/build-wasm.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The kernel's own exp(-a) and log1p, exported for the tests. */
function mathKernels(): { expNeg(a: number): number; log1p(e: number): number } {
  const memory = new WASM.Memory({ initial: 1, maximum: 1, shared: true });
  const module = new WASM.Module(Buffer.from(SGD_KERNEL_WASM_BASE64, 'base64'));
  return new WASM.Instance(module, { env: { memory } }).exports as ReturnType<typeof mathKernels>;
}

let dataset: Dataset;
beforeAll(async () => {
  const log = await readMovieLens100K(sharedDataFiles().movielens100k);
  dataset = holdOutValidation(leaveOneOut(toImplicit(log)));
}, 60_000);

describe('the WebAssembly kernels', () => {
  it('the embedded bytes are the compiled .wat sources', async () => {
    const embedded: Record<string, string> = {
      MF_KERNEL_WASM_BASE64,
      SGD_KERNEL_WASM_BASE64,
      ADAM_KERNEL_WASM_BASE64,
    };
    for (const kernel of KERNELS as { wat: string; constant: string }[]) {
      const bytes = (await compileWat(
        readFileSync(join(here, 'wasm', kernel.wat), 'utf8'),
        kernel.wat,
      )) as Buffer;
      expect(bytes.toString('base64'), kernel.wat).toBe(embedded[kernel.constant]);
    }
  });

  it('computes exp(-a) and log1p(e) to double precision without leaving WebAssembly', () => {
    const k = mathKernels();
    let worstExp = 0;
    for (let a = 0; a <= 60; a += 0.0137) {
      worstExp = Math.max(worstExp, Math.abs(k.expNeg(a) / Math.exp(-a) - 1));
    }
    expect(worstExp).toBeLessThan(1e-12);
    expect(k.expNeg(701)).toBe(0);
    expect(k.expNeg(0)).toBe(1);
    let worstLog = 0;
    for (let e = 1e-9; e <= 1; e += 0.00071)
      worstLog = Math.max(worstLog, Math.abs(k.log1p(e) / Math.log1p(e) - 1));
    expect(worstLog).toBeLessThan(1e-12);
    expect(k.log1p(0)).toBe(0);
  });
});

/**
 * The per-triple SGD algorithm in plain JS, float32 rounding after every operation as the
 * kernel's f32x4 lanes do it: the oracle for one thread.
 */
function referenceSgdEpoch(
  train: InteractionMatrix,
  candidates: Int32Array,
  P: Float32Array,
  Q: Float32Array,
  k: number,
  lr: number,
  reg: number,
  state: number,
  exp: (a: number) => number,
  log1p: (e: number) => number,
  bias: Float32Array | null,
): { loss: number; correct: number; triples: number } {
  const f = Math.fround;
  const entryUsers = train.entryUsers();
  let s = state >>> 0;
  const next = (n: number): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    // The kernel maps the xorshift32* output (the state times an odd constant) to [0, n).
    return Number((BigInt(Math.imul(s, 0x2545f491) >>> 0) * BigInt(n)) >> 32n);
  };
  const stride = Math.ceil(k / 4) * 4;
  const keep = f(1 - f(f(lr) * f(reg)));
  let loss = 0;
  let correct = 0;
  let triples = 0;
  for (let t = 0; t < train.nnz; t++) {
    const e = next(train.nnz);
    const u = entryUsers[e]!;
    const i = train.indices[e]!;
    let j = -1;
    for (let tries = 0; tries < 64; tries++) {
      const c = candidates[next(candidates.length)]!;
      const row = train.indices.subarray(train.indptr[u], train.indptr[u + 1]);
      if (!row.includes(c)) {
        j = c;
        break;
      }
    }
    if (j < 0) continue;
    const lanes = [0, 0, 0, 0];
    for (let d = 0; d < stride; d++) {
      const p = d < k ? P[u * k + d]! : 0;
      const a = d < k ? Q[i * k + d]! : 0;
      const b = d < k ? Q[j * k + d]! : 0;
      lanes[d % 4] = f(lanes[d % 4]! + f(p * f(a - b)));
    }
    let x = lanes[0]! + lanes[1]! + (lanes[2]! + lanes[3]!);
    const bi = bias ? bias[i]! : 0;
    const bj = bias ? bias[j]! : 0;
    if (bias) x += f(bi - bj);
    const ex = exp(Math.abs(x));
    const z = x > 0 ? ex / (1 + ex) : 1 / (1 + ex);
    loss += x > 0 ? log1p(ex) : log1p(ex) - x;
    if (x > 0) correct++;
    triples++;
    const z4 = f(f(lr) * f(z));
    if (bias) {
      bias[i] = f(f(keep * bi) + z4);
      bias[j] = f(f(keep * bj) - z4);
    }
    for (let d = 0; d < k; d++) {
      const p = P[u * k + d]!;
      const a = Q[i * k + d]!;
      const b = Q[j * k + d]!;
      const dp = f(z4 * p);
      P[u * k + d] = f(f(keep * p) + f(z4 * f(a - b)));
      Q[i * k + d] = f(f(keep * a) + dp);
      Q[j * k + d] = f(f(keep * b) - dp);
    }
  }
  return { loss, correct, triples };
}

describe('per-triple SGD engine', () => {
  it.each([false, true])(
    'one thread follows the reference algorithm bit for bit (padded rows, sampling, updates; item bias %s)',
    async (itemBias) => {
      const k = 6; // not a multiple of 4: the kernel's rows are padded
      const model = new MatrixFactorization(dataset, {
        embeddingSize: k,
        seed: 3,
        initStd: 0.3,
        itemBias,
      });
      model.itemBias?.values.forEach((_, i, b) => (b[i] = Math.cos(i) * 0.2));
      const B = model.itemBias?.values.slice() ?? null;
      const sampler = new TripleSampler(dataset.train, { seed: 5 });
      const P = model.userEmbeddings.values.slice();
      const Q = model.itemEmbeddings.values.slice();
      const engine = await SgdTriplesEngine.create(model, sampler, {
        threads: 1,
        learningRate: 0.05,
        l2: 0.01,
        seed: 5,
      });
      const stats = engine.trainEpoch(2, false);
      await engine.close();
      const expected = referenceSgdEpoch(
        dataset.train,
        sampler.negatives.candidates,
        P,
        Q,
        k,
        0.05,
        0.01,
        sgdStreamState(5, 2, 0),
        mathKernels().expNeg,
        mathKernels().log1p,
        B,
      );
      expect(stats.triples).toBe(expected.triples);
      expect(stats.trainAccuracy).toBe(expected.correct / expected.triples);
      expect(Buffer.from(model.userEmbeddings.values.buffer).equals(Buffer.from(P.buffer))).toBe(
        true,
      );
      expect(Buffer.from(model.itemEmbeddings.values.buffer).equals(Buffer.from(Q.buffer))).toBe(
        true,
      );
      expect(Math.abs(stats.loss / expected.loss - 1)).toBeLessThan(1e-9);
      if (B)
        expect(Buffer.from(model.itemBias!.values.buffer).equals(Buffer.from(B.buffer))).toBe(true);
      let sumSquares = 0;
      for (const v of [...P, ...Q, ...(B ?? [])]) sumSquares += v * v;
      expect(Math.abs(stats.parameterNorm! / sumSquares - 1)).toBeLessThan(1e-12);
    },
  );

  it('trains through the Trainer: reproducible on one thread, learns on two, BPR epochs only', async () => {
    const config = {
      seed: 2,
      algorithm: 'sgd-triples',
      optimizer: { name: 'sgd', learningRate: 0.05 },
      l2: 0.001,
    } as const;
    const run = async (threads: number) => {
      const model = new MatrixFactorization(dataset, { embeddingSize: 16, seed: 1 });
      const trainer = await Trainer.create(model, dataset, { ...config, threads });
      try {
        const r = await trainer.runPhase({ epochs: 4, adversarial: false, validate: false });
        await expect(
          trainer.runPhase({ epochs: 1, adversarial: true, validate: false }),
        ).rejects.toThrow(/BPR epochs only/);
        return { r, tables: model.tables.map((t) => t.values.slice()) };
      } finally {
        await trainer.close();
      }
    };
    const biased = new MatrixFactorization(dataset, { embeddingSize: 16, itemBias: true });
    const fgm = getAdversary('none');
    expect(selectEngineProvider(biased, fgm, resolveTrainConfig(config, biased)).name).toBe(
      'fused-mf',
    );
    expect(selectEngineProvider(biased, fgm, resolveTrainConfig({}, biased)).name).toBe('fused-mf');
    const a = await run(1);
    const b = await run(1);
    a.tables.forEach((t, k) => expect(t).toEqual(b.tables[k]));
    const two = await run(2);
    for (const { r } of [a, two]) {
      expect(r.epochs[3]!.loss).toBeLessThan(r.epochs[0]!.loss);
      expect(r.epochs[3]!.trainAccuracy).toBeGreaterThan(0.8);
      expect(r.epochs.every((e) => e.triples === dataset.train.nnz)).toBe(true);
    }
  }, 60_000);
});
