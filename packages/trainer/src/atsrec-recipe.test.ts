import { describe, expect, it } from 'vitest';
import { generateCycleSequences } from '@advrec/data';
import { SEQUENCE_ITEM_TABLE } from '@advrec/models';
import { loadTfjs } from './backend.js';
import { runAtsrecExperiment } from './atsrec-recipe.js';
import { trainSequentialModel } from './sequential.js';
import { sequenceCandidates } from './sequential-evaluation.js';
import { markovModel } from './test-support/markov-model.js';

const { tf } = await loadTfjs('cpu');

describe('runAtsrecExperiment', () => {
  const split = generateCycleSequences({ numUsers: 120, numItems: 30, seed: 3, maxLength: 8 });
  const validation = sequenceCandidates(split, 'validation', { negatives: 20, seed: 1 });
  const test = sequenceCandidates(split, 'test', { negatives: 20, seed: 2 });
  const settings = {
    epochs: 6,
    continueEpochs: 2,
    relativeEpsilons: [0.1, 0.5],
    adversarialWeight: 1,
    attackEpsilons: [0.5, 1],
    validation,
    test,
    seed: 5,
    validateEvery: 2,
    patience: 2,
    training: { batchSize: 32, adam: { learningRate: 0.02 } },
  };

  it('trains the base, then the continued model and one ATSRec arm per epsilon from the same tables', async () => {
    const phases: string[] = [];
    const trained: string[] = [];
    const model = markovModel(30);
    const experiment = await runAtsrecExperiment(tf, model, split, {
      ...settings,
      hooks: {
        onPhase: (p) => phases.push(`${p.label} from ${p.startEpoch}`),
        onArmTrained: (arm) => {
          trained.push(arm.kind);
        },
      },
    });
    expect(experiment).not.toBeNull();
    const { base, continued, atsrec, chosen, versusContinued } = experiment!;
    const baseEpochs = base.training.epochs.length;
    expect(phases).toEqual([
      'base from 0',
      `continued from ${baseEpochs}`,
      `atsrec eps 0.1 from ${baseEpochs}`,
      `atsrec eps 0.5 from ${baseEpochs}`,
    ]);
    expect(trained).toEqual(['base', 'continued', 'atsrec', 'atsrec']);
    expect(atsrec.map((a) => a.relativeEpsilon)).toEqual([0.1, 0.5]);
    // Epsilons are relative to the base model's mean item-row norm.
    expect(atsrec[1]!.epsilon).toBeCloseTo(0.5 * base.meanItemNorm, 12);
    // Continued arms list the base phase's epochs, then their own.
    expect(continued.training.epochs.length).toBe(baseEpochs + 2);
    expect(atsrec[0]!.training.epochs.slice(0, baseEpochs)).toEqual(base.training.epochs);
    expect(atsrec[0]!.training.epochs[baseEpochs]!.adversarialLoss).toBeGreaterThan(0);
    expect(continued.training.epochs[baseEpochs]!.adversarialLoss).toBeUndefined();
    expect(chosen.validation.ndcg).toBe(Math.max(...atsrec.map((a) => a.validation.ndcg)));
    expect(versusContinued[0]!.ndcg10.change).toBeCloseTo(
      atsrec[0]!.test.ndcg / continued.test.ndcg - 1,
      12,
    );
    for (const arm of [base, continued, ...atsrec]) {
      expect(arm.robustness.map((r) => r.relativeEpsilon)).toEqual([0.5, 1]);
      // FGM on the item embeddings at epsilon 1 costs this learned rule some NDCG.
      expect(arm.robustness[1]!.ndcgChange).toBeLessThan(0);
    }
  });

  it('the continued arm is the base model continued with its Adam state, as a direct call gives', async () => {
    const experiment = await runAtsrecExperiment(tf, markovModel(30), split, {
      ...settings,
      relativeEpsilons: [0.5],
    });
    const direct = markovModel(30);
    const base = await trainSequentialModel(tf, direct, split, {
      ...settings.training,
      epochs: 6,
      seed: 5,
      validateEvery: 2,
      patience: 2,
      validation,
    });
    const continued = await trainSequentialModel(tf, direct, split, {
      ...settings.training,
      epochs: 2,
      seed: 5,
      startEpoch: base.epochs.length,
      optimizer: base.optimizer,
    });
    expect(experiment!.continued.training.epochs.map((e) => e.loss)).toEqual(
      [...base.epochs, ...continued.epochs].map((e) => e.loss),
    );
    const items = direct.tables.find((t) => t.name === SEQUENCE_ITEM_TABLE)!;
    expect(experiment!.continued.meanItemNorm).toBeGreaterThan(0);
    expect(items.values.every(Number.isFinite)).toBe(true);
  });

  it('returns null when the signal stops a phase', async () => {
    const controller = new AbortController();
    const experiment = await runAtsrecExperiment(tf, markovModel(30), split, {
      ...settings,
      training: { ...settings.training, signal: controller.signal },
      hooks: { onPhase: (p) => p.kind === 'continued' && controller.abort() },
    });
    expect(experiment).toBeNull();
  });
});
