import { describe, expect, it } from 'vitest';
import { ConfigError, DataError, generateCycleSequences } from '@advrec/data';
import { parseCheckpoint, serializeCheckpoint } from '@advrec/models';
import type { SequentialModel, Tfjs } from '@advrec/models';
import { loadTfjs } from './backend.js';
import { markovModel } from './test-support/markov-model.js';
import { fgm, getAdversary, randomNoise } from '@advrec/adversary';
import type { Adversary } from '@advrec/adversary';
import { encodeSequences } from './sequence-pass.js';
import { trainSequentialModel } from './sequential.js';
import { craftSequencePerturbation } from './sequential-attack.js';
import { evaluateSequential, sequenceCandidates } from './sequential-evaluation.js';
import type { SequenceEvaluationSet } from './sequential-evaluation.js';
import {
  sequenceTrainStateFromCheckpoint,
  sequenceTrainStateToCheckpoint,
} from './sequential-state.js';

const { tf } = await loadTfjs('cpu');

/** HR@10 and NDCG@10 under the sampled protocol (the metrics package's evaluator). */
async function atTen(
  model: SequentialModel,
  set: SequenceEvaluationSet,
  perturbation?: Float32Array,
): Promise<{ hitRate: number; ndcg: number }> {
  const r = await evaluateSequential(tf as Tfjs, model, set, {
    ...(perturbation ? { perturbation } : {}),
  });
  return { hitRate: r.metrics['hr@10']!, ndcg: r.metrics['ndcg@10']! };
}

describe('trainSequentialModel', () => {
  const split = generateCycleSequences({ numUsers: 200, numItems: 40, seed: 3, maxLength: 8 });
  const test = sequenceCandidates(split, 'test', { negatives: 30, seed: 1 });
  const validation = sequenceCandidates(split, 'validation', { negatives: 30, seed: 1 });

  it('learns a planted next-item rule and keeps the best validation epoch', async () => {
    const model = markovModel(40);
    const before = await atTen(model, test);
    const result = await trainSequentialModel(tf, model, split, {
      epochs: 30,
      batchSize: 32,
      seed: 5,
      adam: { learningRate: 0.02 },
      validateEvery: 5,
      validation,
    });
    const after = await atTen(model, test);
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
    const again = await atTen(model, { ...validation, candidates: swapped });
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

  it("positionWeighting: 'epoch' weighs each batch by its positions over the epoch's mean, 'batch' by none", async () => {
    const run = async (positionWeighting: 'batch' | 'epoch', batchSize: number) => {
      const model = markovModel(40);
      const result = await trainSequentialModel(tf, model, split, {
        epochs: 3,
        batchSize,
        seed: 9,
        positionWeighting,
      });
      return { tables: Array.from(model.tables[0]!.values), loss: result.epochs[0]!.loss };
    };
    // One batch per epoch holds every position: its weight is 1 either way.
    expect(await run('epoch', 400)).toEqual(await run('batch', 400));
    // Batches grouped by length hold different numbers of positions: the weights differ.
    const [epoch, batch] = [await run('epoch', 16), await run('batch', 16)];
    expect(epoch.tables).not.toEqual(batch.tables);
    expect(epoch.loss).not.toBeCloseTo(batch.loss, 6);
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
    const delta = await craftSequencePerturbation(tf, model, split, {
      adversary: fgm,
      epsilon: 0.5,
    });
    for (let i = 0; i < 40; i++) {
      const norm = Math.hypot(...delta.subarray(i * 8, (i + 1) * 8));
      expect(norm).toBeCloseTo(0.5, 5);
    }
    const clean = await atTen(model, test);
    const attacked = await atTen(model, test, delta);
    expect(attacked.ndcg).toBeLessThan(clean.ndcg);
    // Random noise of the same norm on every row, through the same registered adversaries.
    const noise = await craftSequencePerturbation(tf, model, split, {
      adversary: randomNoise,
      epsilon: 0.5,
      seed: 3,
    });
    for (let i = 0; i < 40; i++)
      expect(Math.hypot(...noise.subarray(i * 8, (i + 1) * 8))).toBeCloseTo(0.5, 5);
    expect((await atTen(model, test, noise)).ndcg).toBeGreaterThan(attacked.ndcg);
  });

  it('a multi-step adversary gets the gradient at its previous step (PGD-like, through perturbSteps)', async () => {
    const model = markovModel(40);
    await trainSequentialModel(tf, model, split, { epochs: 5, batchSize: 32, seed: 5 });
    const seen: { step: number; rows: number }[] = [];
    const twoStep: Adversary = {
      ...fgm,
      adversaryName: 'two-step',
      steps: 2,
      perturb(gradient, epsilon, context) {
        seen.push({ step: context.step ?? 0, rows: gradient.size });
        return fgm.perturb(gradient, epsilon, context);
      },
    };
    const one = await craftSequencePerturbation(tf, model, split, { adversary: fgm, epsilon: 0.5 });
    const two = await craftSequencePerturbation(tf, model, split, {
      adversary: twoStep,
      epsilon: 0.5,
    });
    expect(seen.map((s) => s.step)).toEqual([0, 1]);
    expect(seen[0]!.rows).toBe(40);
    // The second step's gradient is taken at the first step's point: another direction.
    expect(Array.from(two)).not.toEqual(Array.from(one));
  });

  it('ATSRec takes any registered adversary on the item embeddings, and names an unknown one', async () => {
    const train = async (adversary?: string) => {
      const model = markovModel(40);
      const result = await trainSequentialModel(tf, model, split, {
        epochs: 2,
        batchSize: 32,
        seed: 5,
        adversarial: { epsilon: 0.1, adversarialWeight: 1, ...(adversary ? { adversary } : {}) },
      });
      return { values: Array.from(model.tables[0]!.values), result };
    };
    const byDefault = await train();
    const named = await train('fgm');
    const signs = await train('fgsm');
    expect(named.values).toEqual(byDefault.values);
    expect(signs.values).not.toEqual(byDefault.values);
    expect(signs.result.epochs[0]!.adversarialLoss).toBeGreaterThan(0);
    expect(getAdversary('fgsm').adversaryName).toBe('fgsm');
    await expect(train('pgdd')).rejects.toThrow(/adversarial\.adversary: unknown adversary "pgdd"/);
  });

  it('full ranking: the target among every item outside the history, as a brute-force count says', async () => {
    const model = markovModel(40);
    await trainSequentialModel(tf, model, split, { epochs: 3, batchSize: 32, seed: 5 });
    const result = await evaluateSequential(tf, model, test, {
      protocol: 'full',
      cutoffs: [1, 5],
      engine: 'js',
    });
    expect(result.protocol.kind).toBe('full');
    expect(Array.from(result.users)).toEqual(Array.from(test.users));
    const items = model.tables[0]!.values;
    const expected = Array.from(test.users, (_, k) => {
      const history = test.histories[k]!;
      const inputs = Int32Array.from(history.slice(-model.maxLength));
      const h = encodeSequences(tf, model, inputs, 1, inputs.length);
      const last = h.subarray((inputs.length - 1) * 8, inputs.length * 8);
      const score = (i: number) => {
        let s = 0;
        for (let c = 0; c < 8; c++) s += last[c]! * items[i * 8 + c]!;
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
    // The evaluator ranks by the float64 dot product, as this brute-force count does.
    expect(result.metrics['hr@5']).toBe(hr5);
    expect(result.metrics['hr@1']).toBe(expected.filter((r) => r === 1).length / expected.length);
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

  it('ranks ties pessimistically', async () => {
    const model = markovModel(40);
    model.tables[0]!.values.fill(0);
    expect((await atTen(model, test)).hitRate).toBe(0);
  });

  it('names bad configs and refuses unknown items', async () => {
    const model = markovModel(40);
    try {
      await trainSequentialModel(tf, model, split, {
        epochs: -1,
        adversarial: { epsilon: Number.NaN, adversarialWeight: 1 },
        validateEvery: 2,
        positionWeighting: 'sum' as 'epoch',
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path).sort()).toEqual([
        'adversarial.epsilon',
        'epochs',
        'positionWeighting',
        'validation',
      ]);
    }
    const bad = { ...test, candidates: Int32Array.from(test.candidates) };
    bad.candidates[5] = 40;
    await expect(evaluateSequential(tf, model, bad)).rejects.toThrow(DataError);
    await expect(evaluateSequential(tf, model, bad)).rejects.toThrow(/item id 40/);
    await expect(trainSequentialModel(tf, markovModel(41), split, { epochs: 1 })).rejects.toThrow(
      /40 items, the model 41/,
    );
  });
});
