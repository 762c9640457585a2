import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataFormatError } from '@advrec/data';
import { DEFAULT_MODEL_SEED } from '@advrec/models';
import { resolveTrainConfig } from '@advrec/trainer';
import { applyOverrides, readConfigFile, resolveRunConfig, runConfigSchema } from './config.js';
import { pretrainingConfigOf, trainConfigOf } from './training.js';
// @ts-expect-error -- a plain ESM script without types
import { generateSchema } from '../scripts/generate-schema.mjs';

const issuesOf = (input: unknown): { path: string; message: string }[] => {
  try {
    resolveRunConfig(input);
  } catch (error) {
    if (ConfigError.isInstance(error)) return [...error.issues];
    throw error;
  }
  return [];
};

describe('run config', () => {
  it('the committed JSON schema is the one generated from the config types', () => {
    expect(`${JSON.stringify(runConfigSchema, null, 2)}\n`).toBe(
      (generateSchema as () => string)(),
    );
  });

  it('the schema covers sequential run configs too (what a sequential run records), and refuses their typos', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(runConfigSchema);
    const sequential = {
      data: { source: 'games.txt' },
      model: { name: 'sasrec', dimension: 16, maxLength: 50 },
      training: {
        epochs: 200,
        adversarialEpochs: 0,
        batchSize: 128,
        learningRate: 0.001,
        seed: 2024,
        validateEvery: 5,
        patience: 3,
        adversarial: { epsilon: 0.1, adversarialWeight: 1 },
      },
      evaluation: { negatives: 100, attackEpsilons: [0.25, 0.5, 1] },
      plugins: ['@advrec/sasrec'],
    };
    expect(validate(sequential), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...sequential, training: { epochz: 3 } })).toBe(false);
    expect(validate({ ...sequential, evaluation: { negatives: 0 } })).toBe(false);
    expect(
      validate({ data: { source: 'synthetic' }, model: { name: 'mf', embeddingSize: 8 } }),
    ).toBe(true);
  });

  it('reports five mistakes at once, each with its field path', () => {
    const issues = issuesOf({
      data: { source: 'synthetic', format: 'parquet' },
      model: { name: 'mf', embeddingSize: -3 },
      training: { batchSize: 'big', optimiser: 'adam', adversarial: { epsilon: -1 } },
    });
    expect(issues.map((i) => i.path).sort()).toEqual(
      [
        'data.format',
        'model.embeddingSize',
        'training.adversarial.epsilon',
        'training.batchSize',
        'training.optimiser',
      ].sort(),
    );
    expect(issues.find((i) => i.path === 'training.optimiser')!.message).toBe(
      'unknown field (did you mean "optimizer"?)',
    );
    expect(issues.find((i) => i.path === 'data.format')!.message).toMatch(
      /one of .*"movielens-100k".*got "parquet"/,
    );
  });

  it('suggests the name a typo meant: models, adversaries and fields', () => {
    const issues = issuesOf({
      data: { source: 'synthetic' },
      model: { name: 'itempop' },
      training: { adversarial: { adversary: 'fmg' }, optimiser: {} },
    });
    const message = (path: string) => issues.find((i) => i.path === path)!.message;
    expect(message('training.optimiser')).toBe('unknown field (did you mean "optimizer"?)');
    expect(
      issuesOf({ data: { source: 'synthetic' }, model: { name: 'itempop' } })[0]!.message,
    ).toMatch(
      /^unknown model "itempop" \(did you mean "item-pop"\?\); known: gru4rec, item-pop, mf, neumf, sasrec, vbpr/,
    );
    expect(
      issuesOf({
        data: { source: 'synthetic' },
        model: { name: 'mf' },
        training: { adversarial: { adversary: 'fmg' } },
      })[0]!.message,
    ).toMatch(/unknown adversary "fmg" \(did you mean "fgm"\?\)/);
  });

  it('reports a missing required section and names unknown models and adversaries with the registered ones', () => {
    expect(issuesOf({ data: { source: 'synthetic' } })).toEqual([
      { path: 'model', message: 'is required' },
    ]);
    const issues = issuesOf({
      data: { source: 'synthetic' },
      model: { name: 'nope' },
      training: { adversarial: { adversary: 'pgdx' }, validation: { metric: 'ndcg' } },
      evaluation: { cutoffs: [0, 10] },
    });
    expect(issues.map((i) => i.path)).toEqual([
      'model.name',
      'training.adversarial.adversary',
      'training.validation.metric',
      'evaluation.cutoffs[0]',
    ]);
    expect(issues[0]!.message).toMatch(/unknown model "nope"; known: .*mf.*neumf.*sasrec.*vbpr/);
    expect(issues[1]!.message).toMatch(/registered: fgm, fgsm, none, pgd, pgd-linf, random/);
  });

  it('names a sequential model as such (train and reproduce atsrec run it, not the pairwise path)', async () => {
    // Registered by its package, as the CLI loads it for a run config that names it.
    await import('@advrec/sasrec');
    const issues = issuesOf({ data: { source: 'synthetic' }, model: { name: 'sasrec' } });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('model.name');
    expect(issues[0]!.message).toMatch(
      /sasrec is a sequential model: advrec train and advrec reproduce atsrec run it/,
    );
  });

  it("fills every default (the papers': K 64, batch 512, Adagrad 0.05, epsilon 0.5, lambda 1)", () => {
    const config = resolveRunConfig({ data: { source: 'synthetic' }, model: { name: 'mf' } });
    expect(config.model.embeddingSize).toBe(64);
    expect(config.training.batchSize).toBe(512);
    expect(config.training.optimizer).toMatchObject({
      name: 'adagrad',
      learningRate: 0.05,
      initialAccumulator: 0.1,
    });
    // One source of truth: the training section is the library's resolution of it.
    const { epochs, adversarialEpochs, checkpointEvery, mfEpochs, pretraining, ...library } =
      config.training;
    expect([epochs, adversarialEpochs, checkpointEvery, mfEpochs, pretraining]).toEqual([
      100,
      0,
      10,
      0,
      null,
    ]);
    // VBPR starts from 100 MF-BPR epochs (AMR's Algorithm 1) unless told otherwise.
    const vbpr = resolveRunConfig({ data: { source: 'synthetic' }, model: { name: 'vbpr' } });
    expect(vbpr.training.mfEpochs).toBe(100);
    expect(() =>
      resolveRunConfig({
        data: { source: 'synthetic' },
        model: { name: 'mf' },
        training: { mfEpochs: 10 },
      }),
    ).toThrow(/training\.mfEpochs: only VBPR starts from an MF-BPR/);
    const expected = resolveTrainConfig({});
    expect(library).toEqual({
      ...expected,
      adversarial: { ...expected.adversarial, surfaces: null },
      validation: { ...expected.validation, patience: null },
    });
    expect(config.model.seed).toBe(DEFAULT_MODEL_SEED);
    expect(config.training.adversarial).toMatchObject({
      adversary: 'fgm',
      epsilon: 0.5,
      adversarialWeight: 1,
    });
    expect(config.data.split.protocol).toBe('auto');
    expect(config.attack).toBeNull();
  });

  it('reaches every library training option from a config file (engine, sampling, algorithm, validation split)', () => {
    const config = resolveRunConfig({
      data: { source: 'synthetic' },
      model: { name: 'mf' },
      training: {
        engine: 'generic',
        sampling: 'with-replacement',
        algorithm: 'sgd-triples',
        optimizer: { name: 'sgd', learningRate: 0.05 },
        validation: { split: 'test', cutoffs: [5, 10], metric: 'recall@10' },
      },
    });
    expect(config.training).toMatchObject({
      engine: 'generic',
      sampling: 'with-replacement',
      algorithm: 'sgd-triples',
      validation: { split: 'test', cutoffs: [5, 10], metric: 'recall@10' },
    });
    const trainConfig = trainConfigOf(config);
    expect(trainConfig).toMatchObject({ engine: 'generic', algorithm: 'sgd-triples' });
    let error: unknown;
    try {
      resolveRunConfig({
        data: { source: 'synthetic' },
        model: { name: 'mf' },
        training: { algorithm: 'sgd-triples', validation: { metric: 'ndcg' } },
      });
    } catch (e) {
      error = e;
    }
    // The library's checks, under the run config's paths.
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'training.algorithm',
      'training.validation.metric',
    ]); // Per-triple SGD with adversarial epochs would fail after the whole BPR phase: refused up front.
    expect(() =>
      resolveRunConfig({
        data: { source: 'synthetic' },
        model: { name: 'mf', options: { itemBias: true } },
        training: {
          algorithm: 'sgd-triples',
          optimizer: { name: 'sgd' },
          validation: { users: 500 },
          adversarialEpochs: 5,
        },
      }),
    ).toThrow(/training\.adversarialEpochs.*BPR epochs only/);
  });

  it('training.pretraining: the BPR epochs on their own config, merged field by field, checked under its path', () => {
    const config = resolveRunConfig({
      data: { source: 'synthetic' },
      model: { name: 'mf', options: { itemBias: true } },
      training: {
        adversarialEpochs: 5,
        l2: 0,
        validation: { every: 5, metric: 'ndcg@20', patience: 3 },
        adversarial: { epsilon: 0.5 },
        pretraining: {
          algorithm: 'sgd-triples',
          optimizer: { name: 'sgd', learningRate: 0.05 },
          l2: 0.001,
          validation: { every: 50, users: 500 },
        },
      },
    });
    // The adversarial epochs keep the paper's mini-batch Adagrad.
    expect(trainConfigOf(config)).toMatchObject({
      algorithm: 'minibatch',
      optimizer: { name: 'adagrad' },
      l2: 0,
      validation: { every: 5, metric: 'ndcg@20', patience: 3 },
    });
    // The BPR epochs: the pretraining fields over the rest (validation field by field).
    const bpr = pretrainingConfigOf(config)!;
    expect(bpr).toMatchObject({
      algorithm: 'sgd-triples',
      optimizer: { name: 'sgd', learningRate: 0.05 },
      l2: 0.001,
      validation: { every: 50, users: 500, metric: 'ndcg@20', patience: 3 },
    });
    expect(bpr).not.toHaveProperty('adversarial');
    expect(
      pretrainingConfigOf(
        resolveRunConfig({ data: { source: 'synthetic' }, model: { name: 'mf' } }),
      ),
    ).toBeNull();
    // Its own problems are named under training.pretraining; an adversary there is unknown.
    let error: unknown;
    try {
      resolveRunConfig({
        data: { source: 'synthetic' },
        model: { name: 'mf' },
        training: {
          pretraining: { algorithm: 'sgd-triples', optimizer: { name: 'adagrad' } },
        },
      });
    } catch (e) {
      error = e;
    }
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      'training.pretraining.algorithm',
    ]);
    expect(() =>
      resolveRunConfig({
        data: { source: 'synthetic' },
        model: { name: 'mf' },
        training: { pretraining: { adversarial: { epsilon: 1 } } } as never,
      }),
    ).toThrow(/training\.pretraining\.adversarial: unknown field/);
    // The refusal of sgd-triples with adversarial epochs points at training.pretraining.
    expect(() =>
      resolveRunConfig({
        data: { source: 'synthetic' },
        model: { name: 'mf' },
        training: { algorithm: 'sgd-triples', optimizer: { name: 'sgd' }, adversarialEpochs: 5 },
      }),
    ).toThrow(/set training\.pretraining\.algorithm sgd-triples/);
  });

  it('refuses overrides that would reach a prototype, and nothing is polluted', () => {
    for (const path of [
      '__proto__.polluted',
      'training.__proto__.polluted',
      'constructor.prototype.polluted',
      'model..name',
    ])
      expect(() =>
        applyOverrides({ data: { source: 'synthetic' }, model: { name: 'mf' } }, [`${path}=yes`]),
      ).toThrow(ConfigError);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // A config file's own "__proto__" key is an unknown field, not a prototype.
    const parsed = JSON.parse(
      '{"data":{"source":"synthetic"},"model":{"name":"mf"},"__proto__":{"polluted":1}}',
    );
    expect(() => resolveRunConfig(parsed)).toThrow(/__proto__: unknown field/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('records paths absolute and keeps data set names', () => {
    const named = resolveRunConfig({ data: { source: 'ml-100k' }, model: { name: 'mf' } });
    expect(named.data.source).toBe('ml-100k');
    const path = resolveRunConfig({
      data: { source: 'some/u.data', features: 'f.npy' },
      model: { name: 'mf' },
    });
    expect(path.data.source).toBe(resolve('some/u.data'));
    expect(path.data.features).toBe(resolve('f.npy'));
  });

  it('overrides any field with typed values, creating sections as needed', () => {
    const merged = applyOverrides({ data: { source: 'synthetic' }, model: { name: 'mf' } }, [
      'training.adversarial.epsilon=0.25',
      'evaluation.cutoffs=[5, 10]',
      'data.validation=false',
      'model.name=vbpr',
    ]);
    expect(merged).toEqual({
      data: { source: 'synthetic', validation: false },
      model: { name: 'vbpr' },
      training: { adversarial: { epsilon: 0.25 } },
      evaluation: { cutoffs: [5, 10] },
    });
    expect(() => applyOverrides({}, ['no-equals-sign'])).toThrow(/path=value/);
  });

  it('accepts every example config in configs/', async () => {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'configs');
    const names = readdirSync(dir);
    expect(names.length).toBeGreaterThanOrEqual(3);
    for (const name of names) {
      const config = resolveRunConfig(await readConfigFile(join(dir, name)));
      expect(config.model.embeddingSize, name).toBe(64);
    }
  });

  it('names the file and line of a YAML or JSON syntax error', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'advrec-config-'));
    const yaml = join(folder, 'bad.yaml');
    writeFileSync(yaml, 'data:\n  source: synthetic\nmodel: [unclosed\n');
    const error = await readConfigFile(yaml).catch((e: unknown) => e);
    expect(DataFormatError.isInstance(error)).toBe(true);
    expect((error as DataFormatError).file).toBe(yaml);
    expect((error as DataFormatError).line).toBeGreaterThanOrEqual(3);
    const json = join(folder, 'bad.json');
    writeFileSync(json, '{\n  "data": {\n    "source": "synthetic",\n  }\n}\n');
    const jsonError = await readConfigFile(json).catch((e: unknown) => e);
    expect((jsonError as Error).message).toMatch(/bad\.json.*valid JSON/);
    const missing = await readConfigFile(join(folder, 'none.yaml')).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/none\.yaml: expected a readable config file/);
  });
});
