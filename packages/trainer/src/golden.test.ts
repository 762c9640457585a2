/**
 * Behaviour that must not change when the engines are reshaped: outputs recorded at the
 * main of 2026-11-29 (commit f5f310b, before the engine seam) and compared here.
 *
 * - Fused MF kernel: BPR and APR tables (and Adagrad state) after 2 epochs on ML-100K with
 *   a fixed seed, bit for bit (SHA-256 of the float32 bytes).
 * - VBPR and AMR: every table after 3 mini-batches of 512 on a synthetic data set with
 *   item features, within 1e-6.
 *
 * `ADVREC_RECORD_GOLDENS=1` rewrites `test-support/goldens.json` (only ever at a commit
 * whose behaviour is the reference).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  generateSynthetic,
  holdOutValidation,
  leaveOneOut,
  readMovieLens100K,
  toImplicit,
} from '@advrec/data';
import type { Dataset } from '@advrec/data';
import { MatrixFactorization, VisualBPR } from '@advrec/models';
import type { Model } from '@advrec/models';
import { sharedDataFiles } from '@advrec/testing';
import type { TrainConfig } from './config.js';
import { Trainer } from './trainer.js';

const FILE = new URL('./test-support/goldens.json', import.meta.url);
const RECORD = process.env.ADVREC_RECORD_GOLDENS === '1';

interface Goldens {
  readonly fused: Record<string, Record<string, string>>;
  readonly visual: Record<string, Record<string, number[]>>;
}

const recorded: Goldens = RECORD
  ? { fused: {}, visual: {} }
  : (JSON.parse(readFileSync(FILE, 'utf8')) as Goldens);

afterAll(() => {
  if (RECORD) writeFileSync(FILE, JSON.stringify(recorded) + '\n');
});

function sha256(values: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex');
}

async function train(
  model: Model,
  dataset: Dataset,
  config: TrainConfig,
  epochs: number,
  adversarial: boolean,
): Promise<Trainer> {
  const trainer = await Trainer.create(model, dataset, config);
  try {
    await trainer.runPhase({ epochs, adversarial, validate: false });
  } finally {
    await trainer.close();
  }
  return trainer;
}

describe('golden outputs recorded before the engine seam', () => {
  it('fused MF kernel: BPR and APR tables after 2 epochs on ML-100K are bit-identical', async () => {
    const log = await readMovieLens100K(sharedDataFiles().movielens100k);
    const dataset = holdOutValidation(leaveOneOut(toImplicit(log)));
    for (const adversarial of [false, true]) {
      const model = new MatrixFactorization(dataset, { embeddingSize: 64, seed: 3 });
      const trainer = await train(
        model,
        dataset,
        { seed: 7, l2: 0.001, threads: 2, adversarial: { epsilon: 0.5, adversarialWeight: 1 } },
        2,
        adversarial,
      );
      const hashes: Record<string, string> = {};
      for (const table of model.tables) hashes[table.name] = sha256(table.values);
      for (const state of trainer.optimizerStates)
        if (state.state1) hashes[state.state1.name] = sha256(state.state1.values);
      const key = adversarial ? 'apr' : 'bpr';
      if (RECORD) recorded.fused[key] = hashes;
      else expect(hashes, key).toEqual(recorded.fused[key]);
    }
  }, 120_000);

  it('VBPR and AMR: every table after 3 mini-batches of 512 within 1e-6', async () => {
    // 3 batches of 512 per epoch: a synthetic set with 1,536 training interactions.
    const synthetic = generateSynthetic({
      users: 80,
      items: 120,
      meanPerUser: 20,
      minPerUser: 6,
      featureDimension: 24,
      seed: 4,
    });
    const full = leaveOneOut(toImplicit(synthetic.log));
    const dataset = full;
    const features = {
      data: synthetic.itemFeatures!.slice(0, dataset.numItems * 24),
      dimension: 24,
    };
    const batches = Math.ceil(dataset.train.nnz / 512);
    const cases: [string, boolean, TrainConfig, object][] = [
      ['vbpr', false, {}, {}],
      ['vbpr-separate-bias', false, { l2: 0.01 }, { userVisual: 'separate', visualBias: true }],
      [
        'amr-features',
        true,
        { adversarial: { epsilon: 0.3, adversarialWeight: 1, surfaces: ['itemFeatures'] } },
        {},
      ],
      ['amr-all-surfaces', true, { l2: 0.01, adversarial: { epsilon: 0.2 } }, {}],
    ];
    for (const [key, adversarial, config, vbprConfig] of cases) {
      const model = new VisualBPR(
        dataset,
        features,
        {
          embeddingSize: 16,
          seed: 2,
          initStd: 0.1,
          projectionInitStd: 0.1,
          // The goldens were recorded on the features as given (before feature preparation).
          featureNormalization: 'none',
          // ... and without item-ID dropout (default 0.2 since), the papers' VBPR.
          itemIdDropout: 0,
          ...vbprConfig,
        },
        { train: dataset.train },
      );
      // Epochs of `batches` batches; the golden covers 3 batches in all.
      expect(batches).toBe(3);
      await train(model, dataset, { seed: 5, threads: 2, ...config }, 1, adversarial);
      const tables: Record<string, number[]> = {};
      for (const table of model.tables)
        if (table.name !== 'itemFeatures') tables[table.name] = Array.from(table.values);
      if (RECORD) recorded.visual[key] = tables;
      else {
        const expected = recorded.visual[key]!;
        expect(Object.keys(tables).sort(), key).toEqual(Object.keys(expected).sort());
        for (const [name, values] of Object.entries(tables)) {
          let worst = 0;
          values.forEach((v, x) => (worst = Math.max(worst, Math.abs(v - expected[name]![x]!))));
          expect(worst, `${key} ${name}`).toBeLessThanOrEqual(1e-6);
        }
      }
    }
  }, 120_000);
});
