import { describe, expect, it } from 'vitest';
import { ConfigError, DataError, generateCycleSequences } from '@advrec/data';
import {
  SEQUENCE_ITEM_TABLE,
  createTable,
  initializeGlorotUniform,
  parseCheckpoint,
  serializeCheckpoint,
} from '@advrec/models';
import type { SequentialModel, Tfjs } from '@advrec/models';
import { loadTfjs } from './backend.js';
import { createGemm } from '@advrec/onnx';
import {
  encodeSequences,
  evaluateSequential,
  evaluateSequentialFullRanking,
  sequenceCandidates,
  sequenceFgmPerturbation,
  trainSequentialModel,
} from './sequential.js';
import {
  sequenceTrainStateFromCheckpoint,
  sequenceTrainStateToCheckpoint,
} from './sequential-state.js';

const { tf } = await loadTfjs('cpu');

/**
 * A minimal sequential plugin model: the hidden state is `tanh(x_t W)` of the last item only
 * (a first-order Markov model), so the trainer is tested without the model packages.
 */
function markovModel(numItems: number, d = 8, seed = 1): SequentialModel {
  const items = createTable(SEQUENCE_ITEM_TABLE, 'item', numItems, d);
  const weights = createTable('transition', 'dense', d, d);
  initializeGlorotUniform(items, seed, 0);
  initializeGlorotUniform(weights, seed, 1);
  return {
    kind: 'sequential',
    specificationVersion: 'v2',
    modelName: 'test-markov',
    config: { d },
    numUsers: 0,
    numItems,
    maxLength: 5,
    dimension: d,
    tables: [items, weights],
    trainableTables: [SEQUENCE_ITEM_TABLE, 'transition'],
    surfaces: [{ name: SEQUENCE_ITEM_TABLE, side: 'item', rows: numItems, dimension: d }],
    encode: (t: Tfjs, x) =>
      t.reshape(
        t.tanh(t.matMul(t.reshape(x.itemRows, [x.size * x.length, d]), x.dense.transition!)),
        [x.size, x.length, d],
      ),
  };
}

describe('trainSequentialModel', () => {
  const split = generateCycleSequences({ numUsers: 200, numItems: 40, seed: 3, maxLength: 8 });
  const test = sequenceCandidates(split, 'test', { negatives: 30, seed: 1 });
  const validation = sequenceCandidates(split, 'validation', { negatives: 30, seed: 1 });

  it('learns a planted next-item rule and keeps the best validation epoch', async () => {
    const model = markovModel(40);
    const before = evaluateSequential(tf, model, test);
    const result = await trainSequentialModel(tf, model, split, {
      epochs: 30,
      batchSize: 32,
      seed: 5,
      adam: { learningRate: 0.02 },
      validateEvery: 5,
      validation,
    });
    const after = evaluateSequential(tf, model, test);
    expect(before.ndcg).toBeLessThan(0.5);
    expect(after.hitRate).toBeGreaterThan(0.95);
    expect(after.ndcg).toBeGreaterThan(0.8);
    expect(result.epochs.at(-1)!.loss).toBeLessThan(result.epochs[0]!.loss);
    // The returned Adam state is the kept epoch's: its step count is that epoch's.
    expect(result.optimizer.step).toBe((result.bestEpoch + 1) * Math.ceil(200 / 32));
    expect(result.bestValidation!.ndcg).toBe(
      Math.max(...result.epochs.filter((e) => e.validation).map((e) => e.validation!.ndcg)),
    );
  });

  it("keeps the best validation epoch's tables and Adam state, not the last epoch's", async () => {
    // Targets swapped with a negative: the better the model learns the rule, the worse this
    // validation gets, so the first validated epoch is the best.
    const swapped = Int32Array.from(validation.candidates);
    for (let u = 0; u < validation.users.length; u++) {
      const at = u * validation.width;
      [swapped[at], swapped[at + 1]] = [swapped[at + 1]!, swapped[at]!];
    }
    const model = markovModel(40);
    const result = await trainSequentialModel(tf, model, split, {
      epochs: 6,
      batchSize: 32,
      seed: 5,
      adam: { learningRate: 0.02 },
      validateEvery: 1,
      validation: { ...validation, candidates: swapped },
    });
    expect(result.bestEpoch).toBe(0);
    expect(result.epochs).toHaveLength(6);
    expect(result.optimizer.step).toBe(Math.ceil(200 / 32));
    // The kept tables are epoch 1's: validating them again gives the best value.
    const again = evaluateSequential(tf, model, { ...validation, candidates: swapped });
    expect(again.ndcg).toBe(result.bestValidation!.ndcg);
  });

  it('is deterministic for a seed', async () => {
    const run = async () => {
      const model = markovModel(40);
      await trainSequentialModel(tf, model, split, { epochs: 2, batchSize: 32, seed: 9 });
      return Array.from(model.tables[0]!.values);
    };
    expect(await run()).toEqual(await run());
  });

  it('stops after the current batch when aborted, and the returned state continues the run exactly', async () => {
    const config = {
      epochs: 8,
      batchSize: 32,
      seed: 4,
      adam: { learningRate: 0.02 },
      validateEvery: 2,
      patience: 10,
      validation,
    };
    const whole = markovModel(40);
    const uninterrupted = await trainSequentialModel(tf, whole, split, config);
    // Aborted in the middle of the fourth epoch: the signal is read after every batch (7 an
    // epoch) and at the end of every epoch.
    let reads = 0;
    const signal = {
      get aborted() {
        return ++reads > 3 * 8 + 2;
      },
    } as AbortSignal;
    const parted = markovModel(40);
    const first = await trainSequentialModel(tf, parted, split, { ...config, signal });
    expect(first.interrupted).toBe(true);
    expect(first.epochs).toHaveLength(3);
    expect(first.state.epochs).toHaveLength(first.epochs.length);
    // Through a checkpoint's bytes, as last.ckpt carries it.
    const { extraTables, metadata } = sequenceTrainStateToCheckpoint(first.state, parted.tables);
    const bytes = Buffer.concat(serializeCheckpoint(parted, extraTables, metadata));
    const checkpoint = parseCheckpoint(bytes, 'last.ckpt');
    const resumed = markovModel(40);
    for (const [k, table] of checkpoint.model.tables.entries())
      resumed.tables[k]!.values.set(table.values);
    const state = sequenceTrainStateFromCheckpoint(
      checkpoint.extraTables,
      checkpoint.metadata,
      resumed.tables,
      'last.ckpt',
    );
    const rest = await trainSequentialModel(tf, resumed, split, { ...config, resume: state });
    expect(rest.interrupted).toBe(false);
    expect(rest.epochs.map((e) => [e.loss, e.validation?.ndcg])).toEqual(
      uninterrupted.epochs.map((e) => [e.loss, e.validation?.ndcg]),
    );
    expect(rest.bestEpoch).toBe(uninterrupted.bestEpoch);
    for (const [k, table] of whole.tables.entries())
      expect(Array.from(resumed.tables[k]!.values)).toEqual(Array.from(table.values));
  });

  it('ATSRec: the FGM perturbation raises the loss it is trained on, and continuing from Adam state works', async () => {
    const model = markovModel(40);
    const first = await trainSequentialModel(tf, model, split, {
      epochs: 3,
      batchSize: 32,
      seed: 2,
    });
    const adversarial = await trainSequentialModel(tf, model, split, {
      epochs: 3,
      batchSize: 32,
      seed: 2,
      startEpoch: 3,
      optimizer: first.optimizer,
      adversarial: { epsilon: 0.1, adversarialWeight: 1 },
    });
    for (const e of adversarial.epochs) expect(e.adversarialLoss!).toBeGreaterThan(e.loss);
    expect(adversarial.optimizer.step).toBe(first.optimizer.step * 2);
  });

  it('FGM on the item embeddings has norm epsilon on every touched row and lowers NDCG', async () => {
    const model = markovModel(40);
    await trainSequentialModel(tf, model, split, {
      epochs: 20,
      batchSize: 32,
      seed: 5,
      adam: { learningRate: 0.02 },
    });
    const delta = sequenceFgmPerturbation(tf, model, split, 0.5);
    for (let i = 0; i < 40; i++) {
      const norm = Math.hypot(...delta.subarray(i * 8, (i + 1) * 8));
      expect(norm).toBeCloseTo(0.5, 5);
    }
    const clean = evaluateSequential(tf, model, test);
    const attacked = evaluateSequential(tf, model, test, { perturbation: delta });
    expect(attacked.ndcg).toBeLessThan(clean.ndcg);
  });

  it('full ranking: the target among every item outside the history, as a brute-force count says', async () => {
    const model = markovModel(40);
    await trainSequentialModel(tf, model, split, { epochs: 3, batchSize: 32, seed: 5 });
    const result = await evaluateSequentialFullRanking(tf, model, test, {
      cutoffs: [1, 5],
      blockSize: 64,
      gemm: await createGemm({ backend: 'js' }),
    });
    const items = model.tables[0]!.values;
    const expected = Array.from(test.users, (_, k) => {
      const history = test.histories[k]!;
      const inputs = Int32Array.from(history.slice(-model.maxLength));
      const h = encodeSequences(tf, model, inputs, 1, inputs.length);
      const last = h.subarray((inputs.length - 1) * 8, inputs.length * 8);
      const score = (i: number) => {
        let s = 0;
        for (let c = 0; c < 8; c++) s += Math.fround(last[c]! * items[i * 8 + c]!);
        return s;
      };
      const target = test.candidates[k * test.width]!;
      const seen = new Set(history);
      seen.delete(target);
      let above = 0;
      for (let i = 0; i < 40; i++)
        if (i !== target && !seen.has(i) && score(i) >= score(target)) above++;
      return above + 1;
    });
    const hr5 = expected.filter((r) => r <= 5).length / expected.length;
    expect(result.metrics['hr@5']).toBeCloseTo(hr5, 1);
    expect(result.perUser['hr@1']!.length).toBe(test.users.length);
    expect(result.metrics['hr@1']).toBeLessThanOrEqual(result.metrics['hr@5']!);
  });

  it('names the file and the user that leaves no negative to sample', () => {
    const all = {
      source: 'seq.txt',
      numUsers: 1,
      numItems: 3,
      train: [Int32Array.of(0)],
      validation: Int32Array.of(1),
      test: Int32Array.of(2),
    };
    expect(() => sequenceCandidates(all, 'test')).toThrow(
      /seq\.txt: user 0 has interacted with every one of the 3 items/,
    );
  });

  it('ranks ties pessimistically', () => {
    const model = markovModel(40);
    model.tables[0]!.values.fill(0);
    const result = evaluateSequential(tf, model, test);
    expect(result.hitRate).toBe(0);
  });

  it('names bad configs and refuses unknown items', async () => {
    const model = markovModel(40);
    try {
      await trainSequentialModel(tf, model, split, {
        epochs: -1,
        adversarial: { epsilon: Number.NaN, adversarialWeight: 1 },
        validateEvery: 2,
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path).sort()).toEqual([
        'adversarial.epsilon',
        'epochs',
        'validation',
      ]);
    }
    const bad = { ...test, candidates: Int32Array.from(test.candidates) };
    bad.candidates[5] = 40;
    expect(() => evaluateSequential(tf, model, bad)).toThrow(DataError);
    expect(() => evaluateSequential(tf, model, bad)).toThrow(/item id 40/);
    await expect(trainSequentialModel(tf, markovModel(41), split, { epochs: 1 })).rejects.toThrow(
      /40 items, the model 41/,
    );
  });
});
