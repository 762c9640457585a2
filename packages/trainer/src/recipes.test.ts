import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSynthetic, holdOutValidation, leaveOneOut } from '@advrec/data';
import { evaluateFullRanking } from '@advrec/metrics';
import { VisualBPR, readCheckpoint } from '@advrec/models';
import { trainAmrChain } from './recipes.js';

describe('the AMR chain (MF-BPR -> VBPR -> AMR) on synthetic data with informative features', () => {
  it('initialises each stage from the previous one, trains AMR adversarially, and the features help', async () => {
    const synthetic = generateSynthetic({ users: 400, items: 300, seed: 5, featureDimension: 24 });
    const dataset = holdOutValidation(leaveOneOut(synthetic.log, { seed: 5 }));
    // Features are aligned by source id: synthetic item "i" has feature row i.
    const d = 24;
    const data = new Float32Array(dataset.numItems * d);
    for (let i = 0; i < dataset.numItems; i++) {
      const row = Number(dataset.itemIdMap.toSource(i));
      data.set(synthetic.itemFeatures!.subarray(row * d, row * d + d), i * d);
    }
    const stages: string[] = [];
    const result = await trainAmrChain(dataset, {
      features: { data, dimension: d },
      embeddingSize: 16,
      train: { seed: 1, threads: 1, validation: { every: 5, metric: 'ndcg@20' } },
      mfEpochs: 20,
      vbprEpochs: 10,
      amrEpochs: 5,
      epsilon: 0.5,
      callbacks: (stage) => ({ onEpochEnd: (e) => void stages.push(`${stage}:${e.phase}`) }),
    });
    expect(stages.filter((s) => s.startsWith('amr')).every((s) => s === 'amr:apr')).toBe(true);
    expect(stages.filter((s) => s === 'vbpr-continued:bpr')).toHaveLength(5);
    expect(result.phases.amr.epochs[0]!.adversarialLoss).toBeGreaterThan(0);
    expect(result.amr).toBeInstanceOf(VisualBPR);
    const ndcg = async (m: Parameters<typeof evaluateFullRanking>[0]) =>
      (await evaluateFullRanking(m, dataset, { cutoffs: [20], metrics: ['ndcg'] })).metrics[
        'ndcg@20'
      ]!;
    const mf = await ndcg(result.mf);
    const vbpr = await ndcg(result.vbpr);
    const amr = await ndcg(result.amr);
    // Measured: MF 0.355, VBPR 0.375, AMR 0.365: features that are a noisy image of the item
    // factors help both visual models.
    expect(vbpr).toBeGreaterThan(mf);
    expect(amr).toBeGreaterThan(mf);
  }, 180_000);

  it('carries the Adagrad state from stage to stage by default (fresh on request)', async () => {
    const synthetic = generateSynthetic({ users: 200, items: 150, seed: 6, featureDimension: 8 });
    const dataset = leaveOneOut(synthetic.log, { seed: 6 });
    const data = new Float32Array(dataset.numItems * 8);
    for (let i = 0; i < dataset.numItems; i++) {
      const row = Number(dataset.itemIdMap.toSource(i).slice(1));
      data.set(synthetic.itemFeatures!.subarray(row * 8, row * 8 + 8), i * 8);
    }
    const accumulators = async (optimizerState: 'carry' | 'fresh') => {
      const checkpoints = mkdtempSync(join(tmpdir(), 'advrec-chain-'));
      await trainAmrChain(dataset, {
        features: { data, dimension: 8 },
        embeddingSize: 8,
        train: { seed: 1, threads: 1 },
        mfEpochs: 3,
        // No epochs after MF: each later stage's state is exactly what it started from.
        vbprEpochs: 0,
        amrEpochs: 0,
        checkpoints,
        optimizerState,
      });
      const acc = async (stage: string): Promise<Float32Array> =>
        (await readCheckpoint(join(checkpoints, `${stage}.ckpt`))).extraTables.find(
          (t) => t.name === 'adagrad.userEmbeddings',
        )!.values;
      return {
        mf: await acc('mf-bpr'),
        vbpr: await acc('vbpr'),
        continued: await acc('vbpr-continued'),
      };
    };
    const carried = await accumulators('carry');
    expect(carried.mf.some((v) => v > 0.1)).toBe(true);
    expect(Array.from(carried.vbpr)).toEqual(Array.from(carried.mf));
    expect(Array.from(carried.continued)).toEqual(Array.from(carried.mf));
    const fresh = await accumulators('fresh');
    // Adagrad's initial accumulator (0.1) everywhere: the optimiser restarted.
    expect(fresh.vbpr.every((v) => Math.abs(v - 0.1) < 1e-7)).toBe(true);
    expect(fresh.continued.every((v) => Math.abs(v - 0.1) < 1e-7)).toBe(true);
  }, 120_000);

  it('tries a grid of AMR epsilons from the same VBPR state and keeps the best on validation', async () => {
    const synthetic = generateSynthetic({ users: 200, items: 150, seed: 7, featureDimension: 8 });
    const dataset = holdOutValidation(leaveOneOut(synthetic.log, { seed: 7 }));
    const data = new Float32Array(dataset.numItems * 8);
    for (let i = 0; i < dataset.numItems; i++) {
      const row = Number(dataset.itemIdMap.toSource(i).slice(1));
      data.set(synthetic.itemFeatures!.subarray(row * 8, row * 8 + 8), i * 8);
    }
    const stages = new Set<string>();
    const options = {
      features: { data, dimension: 8 },
      embeddingSize: 8,
      train: { seed: 1, threads: 1, validation: { every: 1, metric: 'ndcg@10' } },
      mfEpochs: 3,
      vbprEpochs: 1,
      amrEpochs: 2,
      callbacks: (stage: string) => ({ onEpochEnd: () => void stages.add(stage) }),
    };
    const result = await trainAmrChain(dataset, { ...options, epsilons: [0.05, 2] });
    expect([...stages].filter((s) => s.startsWith('amr'))).toEqual(['amr-eps0.05', 'amr-eps2']);
    expect(result.amrRuns.map((r) => r.epsilon)).toEqual([0.05, 2]);
    const best = result.amrRuns.reduce((a, b) => (b.phase.bestValue > a.phase.bestValue ? b : a));
    expect(result.chosenEpsilon).toBe(best.epsilon);
    expect(result.amr).toBe(best.model);
    // Two values tried: the chosen one is at an edge of what was tried, and the result says so.
    expect(result.tuningWarnings.map((w) => w.code)).toEqual(['grid-edge']);
    expect(result.tuningWarnings[0]!.message).toMatch(
      new RegExp(
        `tuned AMR epsilon ${best.epsilon} is the (smallest|largest) value tried \\(0.05, 2\\)`,
      ),
    );
    // The fixed feature table is shared by every arm, never copied.
    for (const r of result.amrRuns) expect(r.model.itemFeatures).toBe(result.vbpr.itemFeatures);
    await expect(trainAmrChain(dataset, { ...options, epsilons: [] })).rejects.toThrow(/epsilons/);

    // lambdas at the chosen epsilon; a pair already trained is not trained again.
    stages.clear();
    const weighted = await trainAmrChain(dataset, {
      ...options,
      epsilons: [0.1],
      adversarialWeights: [0.1, 1],
    });
    expect([...stages].filter((s) => s.startsWith('amr'))).toEqual([
      'amr-eps0.1-lambda1',
      'amr-eps0.1-lambda0.1',
    ]);
    expect(weighted.amrRuns.map((r) => r.adversarialWeight)).toEqual([1, 0.1]);
    await expect(
      trainAmrChain(dataset, { ...options, adversarialWeights: [Number.NaN] }),
    ).rejects.toThrow(/adversarialWeights/);

    // The paper's grid: epsilon in {0.01, 0.1, 1, 10} at lambda 1, then lambda in the same
    // grid at the best epsilon, a best boundary value extended one step.
    stages.clear();
    const paper = await trainAmrChain(dataset, { ...options, grid: 'paper' });
    const atOne = paper.amrRuns.filter((r) => r.adversarialWeight === 1);
    expect(atOne.slice(0, 4).map((r) => r.epsilon)).toEqual([0.01, 0.1, 1, 10]);
    const bestOf = <T extends { phase: { bestValue: number } }>(runs: readonly T[]): T =>
      runs.reduce((a, b) => (b.phase.bestValue > a.phase.bestValue ? b : a));
    const first = bestOf(atOne.slice(0, 4)).epsilon;
    // Extended one step down; never up beyond AMR_GRID_LIMITS (epsilon 10), and then said so.
    if (first === 0.01) expect(atOne[4]!.epsilon).toBe(0.001);
    else expect(atOne).toHaveLength(4);
    if (first === 10)
      expect(paper.tuningWarnings[0]!.message).toMatch(/stops at its documented limit 10/);
    for (const w of paper.tuningWarnings) expect(w.code).toBe('grid-edge');
    const epsilon = bestOf(atOne).epsilon;
    const lambdas = paper.amrRuns
      .filter((r) => r.epsilon === epsilon)
      .map((r) => r.adversarialWeight);
    expect(lambdas.slice(0, 4).sort((a, b) => a - b)).toEqual([0.01, 0.1, 1, 10]);
    const pairs = paper.amrRuns.map((r) => `${r.epsilon}/${r.adversarialWeight}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    const chosen = bestOf(paper.amrRuns);
    expect([paper.chosenEpsilon, paper.chosenAdversarialWeight]).toEqual([
      chosen.epsilon,
      chosen.adversarialWeight,
    ]);
    expect(paper.amr).toBe(chosen.model);
  }, 240_000);

  it('VBPR from MF copies the embeddings and zeroes cold-start items', () => {
    const synthetic = generateSynthetic({ users: 50, items: 40, seed: 2, featureDimension: 4 });
    const dataset = leaveOneOut(synthetic.log, { seed: 2 });
    const mf = {
      numUsers: dataset.numUsers,
      numItems: dataset.numItems,
      embeddingSize: 3,
    } as const;
    const tables = {
      userEmbeddings: {
        name: 'userEmbeddings',
        side: 'user',
        rows: mf.numUsers,
        dimension: 3,
        values: Float32Array.from({ length: mf.numUsers * 3 }, (_, k) => k),
      },
      itemEmbeddings: {
        name: 'itemEmbeddings',
        side: 'item',
        rows: mf.numItems,
        dimension: 3,
        values: Float32Array.from({ length: mf.numItems * 3 }, (_, k) => k + 0.5),
      },
    } as const;
    const features = { data: new Float32Array(dataset.numItems * 4).fill(1), dimension: 4 };
    const v = VisualBPR.fromMatrixFactorization({ ...mf, ...tables }, features, {}, dataset.train);
    expect(v.userEmbeddings.values).toEqual(tables.userEmbeddings.values);
    const degrees = dataset.train.itemDegrees();
    for (let i = 0; i < dataset.numItems; i++)
      if (degrees[i] === 0)
        expect(v.itemEmbeddings.values.subarray(i * 3, i * 3 + 3).every((x) => x === 0)).toBe(true);
      else expect(v.itemEmbeddings.values[i * 3]).toBe(i * 3 + 0.5);
    expect(() =>
      VisualBPR.fromMatrixFactorization({ ...mf, ...tables }, features, { embeddingSize: 8 }),
    ).toThrow(/must match/);
  });
});
