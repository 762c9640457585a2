import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ConfigError, InteractionMatrix } from '@advrec/data';
import { describeModelContract } from './contract.js';
import {
  ItemPop,
  MatrixFactorization,
  VisualBPR,
  defaultFeatureNorm,
  getModelFactory,
  listModels,
  parseCheckpoint,
  serializeCheckpoint,
} from './index.js';

await tf.setBackend('cpu');

describeModelContract({
  name: 'MF',
  create: () =>
    new MatrixFactorization(
      { numUsers: 23, numItems: 31 },
      { embeddingSize: 8, initStd: 0.5, seed: 4 },
    ),
  tf,
});

describeModelContract({
  name: 'MF with item bias',
  create: () => {
    const model = new MatrixFactorization(
      { numUsers: 23, numItems: 31 },
      { embeddingSize: 8, initStd: 0.5, seed: 4, itemBias: true },
    );
    // The bias starts at 0: give it values so every check sees it.
    model.itemBias!.values.forEach((_, i, b) => (b[i] = Math.sin(i) * 0.7));
    return model;
  },
  tf,
});

const train = InteractionMatrix.fromPairs(
  5,
  7,
  Int32Array.of(0, 0, 1, 2, 3, 4, 4),
  Int32Array.of(1, 2, 2, 2, 6, 2, 6),
);
describeModelContract({ name: 'ItemPop', create: () => new ItemPop(train), tf });

/** A VBPR rebuilt from a copy of its state, as a checkpoint round trip gives it. */
function restoredCopy(model: VisualBPR): VisualBPR {
  return VisualBPR.restore({
    modelName: model.modelName,
    specificationVersion: model.specificationVersion,
    config: JSON.parse(JSON.stringify(model.config)),
    numUsers: model.numUsers,
    numItems: model.numItems,
    tables: model.tables.map((t) => ({ ...t, values: Float32Array.from(t.values) })),
  });
}

describe('MF', () => {
  it('scores p_u . q_i with the seeded truncated-normal initialisation', () => {
    const a = new MatrixFactorization({ numUsers: 4, numItems: 5 }, { embeddingSize: 3, seed: 9 });
    const b = new MatrixFactorization({ numUsers: 4, numItems: 5 }, { embeddingSize: 3, seed: 9 });
    expect(a.userEmbeddings.values).toEqual(b.userEmbeddings.values);
    expect(a.config).toEqual({ embeddingSize: 3, initStd: 0.01, seed: 9 });
    for (const v of a.itemEmbeddings.values) expect(Math.abs(v)).toBeLessThanOrEqual(0.02);
    const p = a.userEmbeddings.values;
    const q = a.itemEmbeddings.values;
    const expected = p[3]! * q[6]! + p[4]! * q[7]! + p[5]! * q[8]!;
    expect(a.score(Int32Array.of(1), Int32Array.of(2))[0]).toBeCloseTo(expected, 15);
    expect(a.tables[0]!.values.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('adds a learned item bias when asked (Cornac-style BPR), recorded in its config and checkpoint', () => {
    const a = new MatrixFactorization(
      { numUsers: 4, numItems: 5 },
      { embeddingSize: 3, seed: 9, itemBias: true },
    );
    expect(a.config).toEqual({ embeddingSize: 3, initStd: 0.01, seed: 9, itemBias: true });
    expect(a.trainableTables).toEqual(['userEmbeddings', 'itemEmbeddings', 'itemBias']);
    expect(a.surfaces.map((s) => s.name)).toEqual(['userEmbeddings', 'itemEmbeddings']);
    expect([...a.itemBias!.values]).toEqual([0, 0, 0, 0, 0]);
    a.itemBias!.values.set([0.5, -1, 2, 0.25, 3]);
    const p = a.userEmbeddings.values;
    const q = a.itemEmbeddings.values;
    const expected = p[3]! * q[6]! + p[4]! * q[7]! + p[5]! * q[8]! + 2;
    expect(a.score(Int32Array.of(1), Int32Array.of(2))[0]).toBeCloseTo(expected, 12);
    expect(a.scoreAll(Int32Array.of(1))[2]).toBeCloseTo(expected, 12);
    expect(a.factors().itemBias).toBe(a.itemBias!.values);
    const restored = getModelFactory('mf').restore(
      parseCheckpoint(Buffer.concat(serializeCheckpoint(a))).model,
    ) as MatrixFactorization;
    expect([...restored.itemBias!.values]).toEqual([0.5, -1, 2, 0.25, 3]);
    expect(new MatrixFactorization({ numUsers: 4, numItems: 5 }).itemBias).toBeNull();
    expect(
      () =>
        new MatrixFactorization(
          { numUsers: 4, numItems: 5 },
          { itemBias: 1 as unknown as boolean },
        ),
    ).toThrow(/itemBias/);
  });

  it('reports every bad config field at once', () => {
    let error: unknown;
    try {
      new MatrixFactorization(
        { numUsers: 0, numItems: 3 },
        { embeddingSize: 0, initStd: -1, seed: 1.5 },
      );
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'embeddingSize',
      'initStd',
      'seed',
    ]);
  });
});

describe('ItemPop', () => {
  it('ranks by training popularity for every user', () => {
    const model = new ItemPop(train);
    expect(Array.from(model.scoreAll(Int32Array.of(3)))).toEqual([0, 1, 4, 0, 0, 0, 2]);
    expect(model.surfaces).toEqual([]);
  });
});

describe('registry', () => {
  it('lists the built-in models and names them in unknown-model errors', () => {
    expect(listModels().map((m) => m.modelName)).toEqual(
      expect.arrayContaining(['mf', 'item-pop']),
    );
    expect(() => getModelFactory('bpr-mf')).toThrow(
      /unknown model "bpr-mf"; registered: item-pop, mf/,
    );
  });
});

const visualTrain = InteractionMatrix.fromPairs(
  9,
  12,
  Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 8),
  Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
);
function features(
  items: number,
  d: number,
  seed: number,
): { data: Float32Array; dimension: number } {
  let x = seed;
  const data = Float32Array.from({ length: items * d }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x / 2147483648) * 2;
  });
  return { data, dimension: d };
}
for (const [userVisual, visualBias] of [
  ['shared', false],
  ['separate', true],
] as const) {
  describeModelContract({
    name: `VBPR (${userVisual}${visualBias ? ', visual bias' : ''})`,
    create: () =>
      new VisualBPR({ numUsers: 9, numItems: 12 }, features(12, 7, 3), {
        embeddingSize: 5,
        userVisual,
        visualBias,
        initStd: 0.5,
        projectionInitStd: 0.3,
        // The model's definition; item-ID dropout (a training transform) is tested below.
        itemIdDropout: 0,
        seed: 2,
      }),
    tf,
  });
}

describe('VBPR', () => {
  it('reports its feature sensitivity: the norm of E and the mean over users of the largest score change per unit feature change', () => {
    for (const userVisual of ['shared', 'separate'] as const) {
      const model = new VisualBPR({ numUsers: 9, numItems: 12 }, features(12, 7, 3), {
        embeddingSize: 4,
        userVisual,
        initStd: 0.5,
        projectionInitStd: 0.3,
        featureNormalization: 'none',
        seed: 6,
      });
      const d = 7;
      const e = model.featureProjection.values;
      // Brute force: the score is linear in item 0's features, so its changes when each
      // coordinate moves by one are the entries of E^T v_u, whose norm is the largest change
      // per unit norm.
      let sum = 0;
      for (let u = 0; u < 9; u++) {
        const base = new Float32Array(model.itemFeatures.values);
        const scoreOf = () => model.score(Int32Array.of(u), Int32Array.of(0))[0]!;
        const clean = scoreOf();
        let squares = 0;
        for (let f = 0; f < d; f++) {
          model.itemFeatures.values[f] = base[f]! + 1;
          squares += (scoreOf() - clean) ** 2;
          model.itemFeatures.values[f] = base[f]!;
        }
        sum += Math.sqrt(squares);
      }
      const sensitivity = model.featureSensitivity();
      expect(sensitivity.meanUserSensitivity).toBeCloseTo(sum / 9, 4);
      expect(sensitivity.projectionNorm).toBeCloseTo(
        Math.sqrt(e.reduce((s, x) => s + x * x, 0)),
        5,
      );
      // A zero E answers nothing.
      model.featureProjection.values.fill(0);
      expect(model.featureSensitivity().meanUserSensitivity).toBe(0);
    }
  });

  it('drops item ID embeddings in training steps only, per batch, deterministically, at the configured rate', async () => {
    const create = (rate: number) =>
      new VisualBPR({ numUsers: 9, numItems: 12 }, features(12, 7, 3), {
        embeddingSize: 4,
        initStd: 0.5,
        projectionInitStd: 0.3,
        itemIdDropout: rate,
        seed: 4,
      });
    const dropping = create(0.5);
    const plain = create(0);
    const zeroQ = create(0);
    zeroQ.itemEmbeddings.values.fill(0);
    const users = Int32Array.from({ length: 60 }, (_, t) => t % 9);
    const items = Int32Array.from({ length: 60 }, (_, t) => (t * 7) % 12);
    const training = { training: true };
    const pass = await dropping.forwardPairs(users, items, 60, undefined, training);
    const again = await dropping.forwardPairs(users, items, 60, undefined, training);
    // Not a training step (attacks, sweeps): the whole model.
    const scoring = await dropping.forwardPairs(users, items, 60);
    expect(Array.from(scoring.scores).map((v) => Number(v.toFixed(6)))).toEqual(
      Array.from(plain.score(users, items)).map((v) => Number(v.toFixed(6))),
    );
    expect(Array.from(again.scores)).toEqual(Array.from(pass.scores));
    const full = plain.score(users, items);
    const visualOnly = zeroQ.score(users, items);
    // Each pair's score is either the full score or the features-only one, same per item.
    const droppedItems = new Set<number>();
    const keptItems = new Set<number>();
    for (let t = 0; t < 60; t++) {
      const dropped = Math.abs(pass.scores[t]! - visualOnly[t]!) < 1e-6;
      if (!dropped) expect(pass.scores[t]!).toBeCloseTo(full[t]!, 6);
      (dropped ? droppedItems : keptItems).add(items[t]!);
    }
    expect(droppedItems.size).toBeGreaterThan(0);
    expect(keptItems.size).toBeGreaterThan(0);
    for (const i of droppedItems) expect(keptItems.has(i)).toBe(false);
    // No gradient reaches a dropped item's ID embedding.
    const gradients = new Map();
    await pass.backward(new Float64Array(60).fill(1), gradients);
    const gq = gradients.get('itemEmbeddings');
    for (const i of droppedItems) {
      const o = gq.offsetOf(i);
      if (o >= 0) for (let f = 0; f < 4; f++) expect(gq.values[o + f]).toBe(0);
    }
    // Another batch, another mask; scoring never drops; the rate holds over many batches.
    let dropped = 0;
    let total = 0;
    for (let b = 0; b < 200; b++) {
      const u = Int32Array.from({ length: 12 }, (_, t) => (t + b) % 9);
      const i = Int32Array.from({ length: 12 }, (_, t) => t);
      const s = (await dropping.forwardPairs(u, i, 12, undefined, training)).scores;
      const visual = zeroQ.score(u, i);
      for (let t = 0; t < 12; t++) {
        total++;
        if (Math.abs(s[t]! - visual[t]!) < 1e-6) dropped++;
      }
    }
    expect(dropped / total).toBeGreaterThan(0.4);
    expect(dropped / total).toBeLessThan(0.6);
    expect(Array.from(dropping.score(users, items))).toEqual(Array.from(full));
    expect(() => create(1)).toThrow(/itemIdDropout/);
  });

  it('zeroes the ID embedding of cold-start items, which are scored by their features alone', () => {
    const model = new VisualBPR(
      { numUsers: 9, numItems: 12 },
      features(12, 7, 5),
      { embeddingSize: 4, initStd: 0.5 },
      { train: visualTrain },
    );
    expect(model.itemEmbeddings.values.subarray(10 * 4, 12 * 4).every((v) => v === 0)).toBe(true);
    expect(model.itemEmbeddings.values.subarray(0, 4).some((v) => v !== 0)).toBe(true);
    const s = model.score(Int32Array.of(0), Int32Array.of(11))[0]!;
    expect(s).not.toBe(0);
  });

  it('prepares features as configured: centred rows of mean norm 1/sqrt(D) by default, recorded and reapplied', () => {
    const raw = features(12, 7, 5);
    raw.data.fill(0, 3 * 7, 4 * 7); // item 3 has no image
    const model = new VisualBPR({ numUsers: 9, numItems: 12 }, raw, { embeddingSize: 4 });
    expect(model.config.featureNormalization).toBe('centred');
    const c = model.itemFeatures.values;
    const rows = Array.from({ length: 12 }, (_, i) => c.subarray(i * 7, (i + 1) * 7));
    expect(rows[3]!.every((v) => v === 0)).toBe(true);
    const present = rows.filter((_, i) => i !== 3);
    for (let k = 0; k < 7; k++)
      expect(present.reduce((sum, r) => sum + r[k]!, 0) / present.length).toBeCloseTo(0, 5);
    const norms = present.map((r) => Math.hypot(...r));
    expect(norms.reduce((a, b) => a + b, 0) / norms.length).toBeCloseTo(defaultFeatureNorm(7), 6);
    expect(model.config.featureNorm).toBeCloseTo(1 / Math.sqrt(7), 12);
    // Restored from its state, the model keeps the transform and applies it to new rows.
    const restored = restoredCopy(model);
    expect(restored.featureTransform.scale).toBeCloseTo(model.featureTransform.scale, 6);
    const again = restored.prepareFeatures(raw);
    again.forEach((v, k) => expect(v).toBeCloseTo(c[k]!, 5));
    const unit = new VisualBPR({ numUsers: 9, numItems: 12 }, raw, {
      embeddingSize: 4,
      featureNormalization: 'unit',
      featureNorm: 1,
    });
    expect(Math.hypot(...unit.itemFeatures.values.subarray(0, 7))).toBeCloseTo(1, 6);
    const none = new VisualBPR({ numUsers: 9, numItems: 12 }, raw, {
      embeddingSize: 4,
      featureNormalization: 'none',
    });
    expect(Array.from(none.itemFeatures.values)).toEqual(Array.from(raw.data));
    expect(
      () =>
        new VisualBPR({ numUsers: 9, numItems: 12 }, raw, {
          featureNormalization: 'whiten' as 'none',
        }),
    ).toThrow(/featureNormalization: must be centred, unit or none/);
  });

  it('reduces features to principal components when asked: a fixed basis saved with the model and applied to new rows', async () => {
    const raw = features(12, 7, 5);
    raw.data.fill(0, 3 * 7, 4 * 7); // item 3 has no image
    const model = new VisualBPR({ numUsers: 9, numItems: 12 }, raw, {
      embeddingSize: 4,
      featureComponents: 3,
    });
    expect(model.featureSize).toBe(3);
    expect(model.itemFeatures.dimension).toBe(3);
    expect(model.featureProjection.rows).toBe(3);
    expect(model.featureBasis?.rows).toBe(7);
    expect(model.trainableTables).not.toContain('featureBasis');
    expect(model.config.featureComponents).toBe(3);
    expect(model.itemFeatures.values.subarray(9, 12).every((v) => v === 0)).toBe(true);
    // The reduced rows are centred with mean norm 1/sqrt(3), as any prepared features.
    const norms = Array.from({ length: 12 }, (_, i) =>
      Math.hypot(...model.itemFeatures.values.subarray(i * 3, i * 3 + 3)),
    ).filter((_, i) => i !== 3);
    expect(norms.reduce((a, b) => a + b, 0) / norms.length).toBeCloseTo(defaultFeatureNorm(3), 6);
    // The basis columns are orthonormal directions of the raw features.
    const b = model.featureBasis!.values;
    for (let j = 0; j < 3; j++)
      for (let l = 0; l < 3; l++) {
        let dot = 0;
        for (let c = 0; c < 7; c++) dot += b[c * 3 + j]! * b[c * 3 + l]!;
        expect(dot).toBeCloseTo(j === l ? 1 : 0, 5);
      }
    // Saved and restored (checkpoint state), it prepares raw rows exactly as at training.
    const restored = restoredCopy(model);
    const again = restored.prepareFeatures(raw);
    again.forEach((v, k) => expect(v).toBeCloseTo(model.itemFeatures.values[k]!, 5));
    expect(() => restored.prepareFeatures(features(2, 5, 1))).toThrow(
      /reduced from 7-d raw features/,
    );
    expect(
      () => new VisualBPR({ numUsers: 9, numItems: 12 }, raw, { featureComponents: 0 }),
    ).toThrow(/featureComponents: must be a positive integer/);
    // As many components as dimensions (or more): the features are kept as they are.
    const whole = new VisualBPR({ numUsers: 9, numItems: 12 }, raw, { featureComponents: 7 });
    expect(whole.featureBasis).toBeNull();
    expect(whole.featureSize).toBe(7);
  });

  it('refuses features of the wrong size or with NaN', () => {
    expect(
      () =>
        new VisualBPR({ numUsers: 3, numItems: 4 }, { data: new Float32Array(10), dimension: 3 }),
    ).toThrow(/4 items x 3/);
    const bad = features(4, 3, 1);
    bad.data[5] = Number.NaN;
    expect(() => new VisualBPR({ numUsers: 3, numItems: 4 }, bad)).toThrow(
      /item feature 2 of item 1 is NaN/,
    );
  });
});

describe('checkpoint integrity', () => {
  const model = new MatrixFactorization(
    { numUsers: 7, numItems: 9 },
    { embeddingSize: 4, seed: 2 },
  );
  const bytes = (): Buffer => Buffer.concat(serializeCheckpoint(model, [], { epoch: 3 }));

  it('refuses a flipped bit anywhere (header, a table, the digest) and a truncated file, naming the file', () => {
    const good = bytes();
    expect(parseCheckpoint(good, 'good.ckpt').metadata).toEqual({ epoch: 3 });
    for (const at of [12, 40, good.length - 100, good.length - 40, good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at] = bad[at]! ^ 0x10;
      expect(() => parseCheckpoint(bad, 'flipped.ckpt'), `byte ${at}`).toThrow(
        /flipped\.ckpt: expected a checkpoint whose SHA-256 matches its content/,
      );
    }
    expect(() => parseCheckpoint(good.subarray(0, good.length - 5), 'cut.ckpt')).toThrow(
      /cut\.ckpt.*corrupt or truncated/,
    );
  });

  it('reads checkpoints of the earlier format (ADVRECK1, no checksum) only when allowed, with a warning', async () => {
    const good = bytes();
    const v1 = Buffer.from(good.subarray(0, good.length - 32));
    v1.write('ADVRECK1', 0, 'latin1');
    expect(() => parseCheckpoint(v1, 'old.ckpt')).toThrow(
      /old\.ckpt: expected a checkpoint with a checksum .*--allow-unverified-checkpoints.*found "an ADVRECK1 checkpoint without a checksum"/,
    );
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const restored = parseCheckpoint(v1, 'old.ckpt', { allowUnverified: true });
      expect(restored.model.tables[0]!.values).toEqual(model.userEmbeddings.values);
    } finally {
      await new Promise((r) => setImmediate(r));
      process.off('warning', onWarning);
    }
    expect(warnings.join('\n')).toMatch(/old\.ckpt: an ADVRECK1 checkpoint has no checksum/);
  });
});

describe('model options', () => {
  it("an unknown option (a typo, another model's) is an error naming it and the known ones", () => {
    let error: unknown;
    try {
      new MatrixFactorization({ numUsers: 3, numItems: 4 }, {
        embeddingSize: 4,
        embedingSize: 8,
        userVisual: 'shared',
      } as never);
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'embedingSize',
      'userVisual',
    ]);
    expect(String(error)).toMatch(/unknown option of mf; it takes embeddingSize, initStd, seed/);
    expect(
      () =>
        new VisualBPR({ numUsers: 3, numItems: 2 }, { data: new Float32Array(4), dimension: 2 }, {
          initstd: 0.1,
        } as never),
    ).toThrow(/initstd: unknown option of vbpr/);
  });
});
