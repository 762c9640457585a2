import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  holdOutValidation,
  leaveOneOut,
  readMovieLens100K,
  toImplicit,
} from '@advrec/data';
import type { Dataset } from '@advrec/data';
import {
  MatrixFactorization,
  TfjsModel,
  VisualBPR,
  mfReferenceScore,
  readCheckpoint,
  restoreModel,
} from '@advrec/models';
import type { Model } from '@advrec/models';
import { sharedDataFiles } from '@advrec/testing';
import { loadTfjs } from './backend.js';
import { getAdversary } from '@advrec/adversary';
import { resolveTrainConfig } from './config.js';
import { getEngineProvider, selectEngineProvider } from './engine.js';
import type { TrainConfig } from './config.js';
import { Trainer, TrainingDivergedError } from './trainer.js';
import type { PhaseProgress } from './trainer.js';

let dataset: Dataset;
let directory: string;

beforeAll(async () => {
  const log = await readMovieLens100K(sharedDataFiles().movielens100k);
  dataset = holdOutValidation(leaveOneOut(toImplicit(log)));
  directory = await mkdtemp(join(tmpdir(), 'advrec-trainer-'));
  // Generous: on a loaded 2-core machine, reading ML-100K has taken over 10 s.
}, 60_000);
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function mf(seed = 1, k = 16): MatrixFactorization {
  return new MatrixFactorization(dataset, { embeddingSize: k, seed });
}

async function trainTables(
  config: TrainConfig,
  phases: boolean[],
  model: Model = mf(),
): Promise<Float32Array[]> {
  const trainer = await Trainer.create(model, dataset, config);
  try {
    for (const adversarial of phases)
      await trainer.runPhase({ epochs: 1, adversarial, validate: false });
  } finally {
    await trainer.close();
  }
  return model.tables.map((t) => t.values.slice());
}

describe('Trainer on MovieLens-100K', () => {
  it('the same seed gives bit-identical tables on 1, 2 and 3 threads (BPR then APR epochs)', async () => {
    const config = { seed: 5, l2: 0.001, adversarial: { epsilon: 0.5 } } as const;
    const one = await trainTables({ ...config, threads: 1 }, [false, true]);
    const two = await trainTables({ ...config, threads: 2 }, [false, true]);
    const three = await trainTables({ ...config, threads: 3 }, [false, true]);
    for (let t = 0; t < one.length; t++) {
      expect(Buffer.from(two[t]!.buffer).equals(Buffer.from(one[t]!.buffer))).toBe(true);
      expect(Buffer.from(three[t]!.buffer).equals(Buffer.from(one[t]!.buffer))).toBe(true);
    }
    // And training did move them.
    expect(one[0]).not.toEqual(mf().userEmbeddings.values);
  });

  it('the generic engine (model contract, any adversary) matches the fused kernel', async () => {
    const config = { seed: 2, l2: 0.001, threads: 1 } as const;
    const fused = await trainTables({ ...config, engine: 'fused-mf' }, [false, true]);
    const generic = await trainTables({ ...config, engine: 'generic' }, [false, true]);
    for (let t = 0; t < fused.length; t++) {
      let m = 0;
      fused[t]!.forEach((v, k) => (m = Math.max(m, Math.abs(v - generic[t]![k]!))));
      expect(m).toBeLessThan(1e-4);
    }
  });

  it('per-table learning rates and L2 (tables): the same values as the global ones change nothing, others change only their table, and the fused kernel refuses them', async () => {
    const config = { seed: 2, l2: 0.001, engine: 'generic' } as const;
    const plain = await trainTables(config, [false]);
    const same = await trainTables(
      { ...config, tables: { itemEmbeddings: { learningRate: 0.05, l2: 0.001 } } },
      [false],
    );
    same.forEach((values, t) => expect(values).toEqual(plain[t]));
    // A learning rate of ~0 freezes the item embeddings at their initial values.
    const initial = mf().tables.map((t) => t.values.slice());
    const frozen = await trainTables(
      { ...config, tables: { itemEmbeddings: { learningRate: 1e-30 } } },
      [false],
    );
    const item = mf().tables.findIndex((t) => t.name === 'itemEmbeddings');
    const user = mf().tables.findIndex((t) => t.name === 'userEmbeddings');
    let moved = 0;
    frozen[item]!.forEach((v, k) => (moved = Math.max(moved, Math.abs(v - initial[item]![k]!))));
    expect(moved).toBeLessThan(1e-12);
    expect(frozen[user]).not.toEqual(initial[user]);
    // A heavy L2 on the item embeddings shrinks them, and only them, against plain training.
    const norm = (v: Float32Array): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    const shrunk = await trainTables({ ...config, tables: { itemEmbeddings: { l2: 0.5 } } }, [
      false,
    ]);
    expect(norm(shrunk[item]!)).toBeLessThan(0.8 * norm(plain[item]!));
    const resolved = resolveTrainConfig({ tables: { itemEmbeddings: { l2: 0.5 } } }, mf());
    expect(resolved.tables).toEqual({
      itemEmbeddings: { learningRate: 0.05, l2: 0.5, keepNorm: false },
    });
    // keepNorm holds a table's Frobenius norm through training.
    const kept = await trainTables({ ...config, tables: { itemEmbeddings: { keepNorm: true } } }, [
      false,
    ]);
    expect(norm(kept[item]!) / norm(initial[item]!)).toBeCloseTo(1, 4);
    expect(norm(plain[item]!) / norm(initial[item]!)).not.toBeCloseTo(1, 1);
    expect(kept[item]).not.toEqual(initial[item]);
    const support = getEngineProvider('fused-mf')!.supports(mf(), getAdversary('fgm'), resolved);
    expect(support.supported).toBe(false);
    expect(support.supported ? '' : support.reason).toMatch(/generic engine/);
    await expect(
      trainTables({ seed: 2, engine: 'fused-mf', tables: { itemEmbeddings: { l2: 0.5 } } }, [
        false,
      ]),
    ).rejects.toThrow(/per-table/);
  });

  it('MF with an item bias: the fused kernel matches the generic engine and is bit-identical on 1 and 2 threads', async () => {
    const biased = () =>
      new MatrixFactorization(dataset, { embeddingSize: 16, seed: 1, itemBias: true });
    for (const optimizer of [
      { name: 'adagrad' },
      { name: 'lazy-adam', learningRate: 0.01 },
    ] as const) {
      const config = { seed: 2, l2: 0.001, threads: 1, optimizer } as const;
      const fused = await trainTables({ ...config, engine: 'fused-mf' }, [false, true], biased());
      const generic = await trainTables({ ...config, engine: 'generic' }, [false, true], biased());
      const twoThreads = await trainTables({ ...config, threads: 2 }, [false, true], biased());
      expect(fused.length).toBe(3);
      expect(fused[2]!.some((b) => b !== 0)).toBe(true); // the bias learned
      for (let t = 0; t < fused.length; t++) {
        let m = 0;
        fused[t]!.forEach((v, k) => (m = Math.max(m, Math.abs(v - generic[t]![k]!))));
        expect(m, `${optimizer.name} table ${t}`).toBeLessThan(1e-4);
        expect(Buffer.from(twoThreads[t]!.buffer).equals(Buffer.from(fused[t]!.buffer))).toBe(true);
      }
    }
  }, 120_000);

  it('a tfjs-defined MF (the plugin path, tfjs autodiff on the gathered rows) trains like the built-in MF', async () => {
    const { tf, backend } = await loadTfjs();
    expect(['wasm', 'cpu', 'tensorflow']).toContain(backend);
    const definition = {
      modelName: 'tfjs-mf-test',
      description: 'MF through tfjs',
      tables: [
        { name: 'userEmbeddings', side: 'user', dimension: 16 },
        { name: 'itemEmbeddings', side: 'item', dimension: 16 },
      ],
      score: mfReferenceScore,
    } as const;
    const builtIn = mf(3);
    const plugin = new TfjsModel(tf, definition, dataset, {
      tables: builtIn.tables.map((t) => ({ ...t, values: t.values.slice() })),
    });
    // One shared batch through both models' backward passes.
    const users = Int32Array.from({ length: 64 }, (_, t) => (t * 7) % dataset.numUsers);
    const items = Int32Array.from({ length: 64 }, (_, t) => (t * 13) % dataset.numItems);
    const d = Float64Array.from({ length: 64 }, (_, t) => Math.sin(t));
    const a = new Map();
    const b = new Map();
    builtIn.pairBackward(users, items, 64, d, a);
    plugin.pairBackward(users, items, 64, d, b);
    for (const name of ['userEmbeddings', 'itemEmbeddings']) {
      const x = a.get(name)!;
      const y = b.get(name)!;
      expect([...y.rows].sort()).toEqual([...x.rows].sort());
      for (const row of x.rows)
        for (let f = 0; f < 16; f++)
          expect(
            Math.abs(x.values[x.offsetOf(row) + f] - y.values[y.offsetOf(row) + f]),
          ).toBeLessThan(1e-5);
    }
    const config = { seed: 4, threads: 1, engine: 'generic' } as const;
    const viaTfjs = await trainTables(config, [false, true], plugin);
    const viaMf = await trainTables(config, [false, true], builtIn);
    for (let t = 0; t < viaMf.length; t++) {
      let m = 0;
      viaMf[t]!.forEach((v, k) => (m = Math.max(m, Math.abs(v - viaTfjs[t]![k]!))));
      expect(m).toBeLessThan(1e-4);
    }
  }, 300_000);

  it('learns: BPR raises validation NDCG well above the untrained model; APR epochs report an adversarial loss', async () => {
    const model = mf(9, 32);
    const events: number[] = [];
    const trainer = await Trainer.create(
      model,
      dataset,
      { seed: 1, validation: { every: 5, metric: 'ndcg@100' } },
      {
        onEpochEnd: (e) => {
          events.push(e.loss);
        },
      },
    );
    const untrained = (await trainer.evaluate()).metrics['ndcg@100']!;
    const bpr = await trainer.runPhase({ epochs: 15, adversarial: false });
    const apr = await trainer.runPhase({ epochs: 2, adversarial: true, restoreBest: false });
    await trainer.close();
    expect(bpr.bestValue).toBeGreaterThan(untrained * 1.5);
    expect(bpr.bestValue).toBeGreaterThan(0.09); // measured 0.11-0.12; ItemPop gives about 0.08
    expect(events[14]!).toBeLessThan(events[0]! * 0.6);
    expect(apr.epochs[0]!.adversarialLoss).toBeGreaterThan(0);
    expect(apr.epochs[0]!.phase).toBe('apr');
    expect(apr.epochs[0]!.epoch).toBe(15);
  }, 120_000);

  it('early stopping stops after `patience` validations without improvement and restores the best tables', async () => {
    const model = mf(11);
    const trainer = await Trainer.create(model, dataset, {
      seed: 1,
      threads: 1,
      optimizer: { learningRate: 2 }, // far too large: validation gets worse quickly
      validation: { every: 1, patience: 2, metric: 'ndcg@20' },
    });
    const result = await trainer.runPhase({
      epochs: 30,
      adversarial: false,
      checkpoint: join(directory, 'best.ckpt'),
    });
    const restored = (await trainer.evaluate()).metrics['ndcg@20']!;
    await trainer.close();
    expect(result.stoppedEarly).toBe(true);
    expect(result.epochs.length).toBe(result.bestEpoch + 3);
    expect(restored).toBeCloseTo(result.bestValue, 12);
    const checkpoint = await readCheckpoint(join(directory, 'best.ckpt'));
    expect(checkpoint.metadata.bestEpoch).toBe(result.bestEpoch);
    const reloaded = restoreModel(checkpoint.model);
    expect(reloaded.tables[0]!.values).toEqual(model.userEmbeddings.values);
    expect((await readdir(directory)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 120_000);

  it('validates on a fixed sample of users when asked, and says where the phase time went', async () => {
    const seen: Int32Array[] = [];
    const model = mf(4);
    const trainer = await Trainer.create(
      model,
      dataset,
      { seed: 3, threads: 1, validation: { every: 2, users: 100, metric: 'ndcg@20' } },
      { onValidation: (_v, result) => void seen.push(result.users.slice()) },
    );
    const result = await trainer.runPhase({
      epochs: 4,
      adversarial: false,
      checkpoint: join(directory, 'sampled.ckpt'),
    });
    await trainer.close();
    expect(seen.length).toBe(2);
    expect(seen[0]!.length).toBe(100);
    expect(seen[1]).toEqual(seen[0]); // the same users at every validation
    const withItems = seen[0]!.every(
      (u) => dataset.validation!.indptr[u + 1]! > dataset.validation!.indptr[u]!,
    );
    expect(withItems).toBe(true);
    const t = result.timings;
    for (const part of [
      'training',
      'copy',
      'checks',
      'callbacks',
      'validation',
      'checkpoints',
    ] as const)
      expect(t[part], part).toBeGreaterThanOrEqual(0);
    expect(t.validation).toBeGreaterThan(0);
    expect(t.copy).toBeGreaterThan(0); // the fused kernel copies tables in and out each epoch
    expect(t.copy).toBeLessThan(t.training);
    const parts = t.training + t.checks + t.callbacks + t.validation + t.checkpoints;
    expect(parts).toBeLessThanOrEqual(t.total + 1e-9);
    expect(t.untilBest).toBeGreaterThan(0);
    expect(t.untilBest).toBeLessThanOrEqual(t.total);
    await expect(Trainer.create(mf(), dataset, { validation: { users: 0 } })).rejects.toThrow(
      /validation\.users/,
    );
  }, 120_000);

  it('resuming from a checkpoint (tables, Adagrad state, epoch, step) continues exactly', async () => {
    const config = { seed: 6, threads: 1 } as const;
    const straight = await trainTables(config, [false, false, true]);
    const model = mf();
    const first = await Trainer.create(model, dataset, config);
    await first.runPhase({ epochs: 2, adversarial: false, validate: false });
    await first.save(join(directory, 'bpr.ckpt'));
    await first.close();
    const checkpoint = await readCheckpoint(join(directory, 'bpr.ckpt'));
    const resumedModel = restoreModel(checkpoint.model);
    const second = await Trainer.create(
      resumedModel,
      dataset,
      config,
      {},
      {
        extraTables: checkpoint.extraTables,
        epoch: Number(checkpoint.metadata.epoch),
        step: Number(checkpoint.metadata.step),
      },
    );
    await second.runPhase({ epochs: 1, adversarial: true, validate: false });
    await second.close();
    resumedModel.tables.forEach((t, k) =>
      expect(Buffer.from(t.values.buffer).equals(Buffer.from(straight[k]!.buffer))).toBe(true),
    );
  });

  it('a phase stopped mid-way resumes from its periodic checkpoint to the same best model and history', async () => {
    const config = {
      seed: 8,
      threads: 1,
      optimizer: { learningRate: 0.5 },
      validation: { every: 2, patience: 3, metric: 'ndcg@20' },
    } as const;
    const straightModel = mf(21);
    const straight = await Trainer.create(straightModel, dataset, config);
    const whole = await straight.runPhase({
      epochs: 9,
      adversarial: false,
      checkpoint: join(directory, 'straight-best.ckpt'),
    });
    await straight.close();

    // Stop after epoch 5 (a validation at 2 and 4 happened), from the periodic checkpoint on.
    const controller = new AbortController();
    const firstModel = mf(21);
    const first = await Trainer.create(firstModel, dataset, config, {
      onEpochEnd: (event) => {
        if (event.epoch === 4) controller.abort();
      },
    });
    await expect(
      first.runPhase({
        epochs: 9,
        adversarial: false,
        checkpoint: join(directory, 'stopped-best.ckpt'),
        periodicCheckpoint: { file: join(directory, 'stopped-last.ckpt'), every: 1 },
        signal: controller.signal,
      }),
    ).rejects.toThrow();
    await first.close();
    const last = await readCheckpoint(join(directory, 'stopped-last.ckpt'));
    const progress = last.metadata.phaseProgress as unknown as PhaseProgress;
    expect(progress).toMatchObject({ phase: 'bpr', epochsDone: 5 });
    const best = await readCheckpoint(join(directory, 'stopped-best.ckpt'));
    const model = restoreModel(last.model);
    const second = await Trainer.create(
      model,
      dataset,
      config,
      {},
      {
        extraTables: last.extraTables,
        epoch: Number(last.metadata.epoch),
        step: Number(last.metadata.step),
      },
    );
    const rest = await second.runPhase({
      epochs: 9,
      adversarial: false,
      resume: { progress, bestTables: restoreModel(best.model).tables },
    });
    await second.close();
    expect(rest.epochs.map((e) => e.epoch)).toEqual([5, 6, 7, 8].slice(0, rest.epochs.length));
    expect(rest.bestEpoch).toBe(whole.bestEpoch);
    expect(rest.bestValue).toBe(whole.bestValue);
    expect(rest.stoppedEarly).toBe(whole.stoppedEarly);
    model.tables.forEach((t, k) =>
      expect(
        Buffer.from(t.values.buffer).equals(Buffer.from(straightModel.tables[k]!.values.buffer)),
      ).toBe(true),
    );
  }, 120_000);

  it('Hogwild and per-triple SGD run and learn (opt-in, not reproducible across thread counts)', async () => {
    for (const config of [
      { mode: 'hogwild', threads: 2 },
      { algorithm: 'sgd-triples', optimizer: { name: 'sgd', learningRate: 0.05 }, threads: 2 },
    ] as const) {
      const model = mf(12);
      const trainer = await Trainer.create(model, dataset, { seed: 1, ...config });
      const r = await trainer.runPhase({ epochs: 3, adversarial: false, validate: false });
      await trainer.close();
      expect(r.epochs[2]!.loss).toBeLessThan(r.epochs[0]!.loss);
      expect(r.epochs[2]!.triples).toBe(dataset.train.nnz);
    }
  });

  it('reports every config problem at once with its field path', () => {
    let error: unknown;
    try {
      resolveTrainConfig(
        {
          batchSize: 0,
          l2: -1,
          optimizer: { name: 'adamw' as 'sgd', learningRate: Number.NaN },
          adversarial: { adversary: 'pgd-l3', epsilon: -0.5, surfaces: ['userEmbedings'] },
          validation: { metric: 'ndcg', every: 0 },
          algorithm: 'sgd-triples',
          tables: {
            itemEmbedings: { l2: 0.1 },
            userEmbeddings: { learningRate: 0, l2: -1 },
            itemEmbeddings: { momentum: 0.9 } as unknown as { l2: number },
          },
        },
        mf(),
      );
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    const paths = (error as ConfigError).issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'batchSize',
        'l2',
        'optimizer.name',
        'optimizer.learningRate',
        'adversarial.adversary',
        'adversarial.epsilon',
        'adversarial.surfaces[0]',
        'validation.metric',
        'validation.every',
        'algorithm',
        'tables.itemEmbedings',
        'tables.userEmbeddings.learningRate',
        'tables.userEmbeddings.l2',
        'tables.itemEmbeddings.momentum',
      ]),
    );
    expect((error as ConfigError).message).toMatch(/no trainable table "itemEmbedings"/);
    expect((error as ConfigError).message).toMatch(
      /registered: fgm, fgsm, none, pgd, pgd-linf, random/,
    );
  });

  it('picks engines through the providers and lists every refusal when none fits', async () => {
    const model = mf();
    const fgm = getAdversary('fgm');
    expect(selectEngineProvider(model, fgm, resolveTrainConfig({}, model)).name).toBe('fused-mf');
    expect(
      selectEngineProvider(model, fgm, resolveTrainConfig({ engine: 'generic' }, model)).name,
    ).toBe('generic');
    // A plugin adversary: the fused kernel declares the built-in ones only.
    const plugin = { ...fgm, adversaryName: 'plugin-fgm' };
    expect(selectEngineProvider(model, plugin, resolveTrainConfig({}, model)).name).toBe('generic');
    // None fits: both reasons, under the config path `engine`.
    let error: unknown;
    try {
      selectEngineProvider(model, plugin, resolveTrainConfig({ mode: 'hogwild' }, model));
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues[0]!.path).toBe('engine');
    expect(String(error)).toMatch(/fused-mf: implements the single-step adversaries.*plugin-fgm/);
    expect(String(error)).toMatch(/generic: runs one thread, deterministically; mode hogwild/);
    // Tables beyond one WebAssembly memory (4 GiB): the fused kernel declines, with the size.
    const huge = {
      modelName: model.modelName,
      trainableTables: model.trainableTables,
      numUsers: 700_000,
      numItems: 500_000,
      tables: model.tables.map((t) => ({ ...t, dimension: 1024 })),
    } as unknown as Model;
    expect(
      getEngineProvider('fused-mf')!.supports(huge, fgm, resolveTrainConfig({}, model)),
    ).toEqual({
      supported: false,
      reason: expect.stringMatching(
        /needs \d+\.\d GiB of WebAssembly memory for 700000 users and 500000 items at embedding size 1024, more than the 4 GiB/,
      ) as unknown as string,
    });
    expect(() =>
      selectEngineProvider(model, fgm, resolveTrainConfig({ engine: 'visual' }, model)),
    ).toThrow(/unknown engine "visual"; registered: auto, fused-mf, generic/);
    await expect(
      Trainer.create(model, dataset, {
        mode: 'hogwild',
        adversarial: { adversary: 'none' },
        engine: 'generic',
      }),
    ).rejects.toThrow(/engine generic: runs one thread/);
    // The engine in use is a structured record.
    const trainer = await Trainer.create(model, dataset, { threads: 1 });
    expect(trainer.engineInfo).toMatchObject({ name: 'fused-mf', threads: 1 });
    expect(trainer.engineInfo.details).toMatchObject({ mode: 'deterministic', adversary: 'fgm' });
    await trainer.close();
  });

  it('an AbortSignal stops a phase between epochs; the tables are those of the epochs done', async () => {
    const controller = new AbortController();
    const model = mf();
    const trainer = await Trainer.create(
      model,
      dataset,
      { threads: 1 },
      { onEpochEnd: (e) => void (e.epoch === 1 && controller.abort(new Error('stop here'))) },
    );
    await expect(
      trainer.runPhase({
        epochs: 5,
        adversarial: false,
        validate: false,
        signal: controller.signal,
      }),
    ).rejects.toThrow(/stop here/);
    expect(trainer.epoch).toBe(2);
    const stopped = model.tables.map((t) => t.values.slice());
    await trainer.close();
    // The same two epochs without a signal give the same tables.
    const straight = mf();
    const again = await Trainer.create(straight, dataset, { threads: 1 });
    await again.runPhase({ epochs: 2, adversarial: false, validate: false });
    await again.close();
    straight.tables.forEach((t, k) => expect(t.values).toEqual(stopped[k]));
  });

  it('refuses a model sized for another dataset and a learning rate that diverges to NaN', async () => {
    const wrong = new MatrixFactorization({ numUsers: 10, numItems: 10 }, { embeddingSize: 4 });
    await expect(Trainer.create(wrong, dataset)).rejects.toThrow(/10 users x 10 items/);
    const trainer = await Trainer.create(mf(), dataset, {
      threads: 1,
      optimizer: { name: 'sgd', learningRate: 1e30 },
    });
    const error = await trainer
      .runPhase({ epochs: 3, adversarial: false, validate: false })
      .catch((e: unknown) => e);
    await trainer.close();
    expect(TrainingDivergedError.isInstance(error)).toBe(true);
    expect((error as TrainingDivergedError).epoch).toBe(0);
    expect(String(error)).toMatch(
      /training diverged at epoch 0: (table \w+ holds (NaN|-?Infinity)|the .*); lower optimizer.learningRate \(now 1e\+30\)/,
    );
  });

  it('huge item features stop a VBPR run with an error naming the cause, not a broken checkpoint', async () => {
    const features = {
      data: new Float32Array(dataset.numItems * 4).fill(3e38),
      dimension: 4,
    };
    // Taken as given (no centring, which would turn identical rows into zeros).
    const vbpr = new VisualBPR(dataset, features, {
      embeddingSize: 4,
      seed: 1,
      featureNormalization: 'none',
    });
    const trainer = await Trainer.create(vbpr, dataset, { threads: 1 });
    const error = await trainer
      .runPhase({ epochs: 2, adversarial: false, validate: false })
      .catch((e: unknown) => e);
    await trainer.close();
    expect(TrainingDivergedError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/scale the item features down/);
  });
});
