/**
 * End-to-end tests: the built `advrec` binary run as a user runs it (a child process), on
 * real data from ../shared/data. `pnpm test` builds every package first.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '@advrec/models';
import { readNpy } from '@advrec/data';
import { chromiumPath, sharedDataDir, sharedDataFiles } from '@advrec/testing';
import { advrecBin as bin, advrecRunner, cliRoot as root } from './test-support/run-advrec.js';
import { writeGamesHead } from './test-support/games-head.js';

const shared = sharedDataDir();
const work = mkdtempSync(join(tmpdir(), 'advrec-e2e-'));
/** Debian's chromium (or CHROMIUM_PATH) drives the HTML report test; it is skipped without one. */
const chromium = chromiumPath();

const advrec = advrecRunner({
  cwd: root,
  env: { ADVREC_SHARED_DATA: shared, ADVREC_DATA_DIR: join(work, 'datasets') },
});

beforeAll(() => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first (pnpm build)`);
});

describe('advrec on ML-100K: train, evaluate, attack, recommend', () => {
  const run = join(work, 'ml100k-run');
  const config = join(work, 'ml100k.yaml');

  beforeAll(() => {
    writeFileSync(
      config,
      [
        'data:',
        `  source: ${sharedDataFiles().movielens100k}`,
        'model:',
        '  name: mf',
        '  embeddingSize: 32',
        'training:',
        '  epochs: 30',
        '  adversarialEpochs: 10',
        '  threads: 2',
        '  validation: { every: 10, metric: ndcg@50 }',
        'evaluation:',
        '  cutoffs: [10, 50]',
        '  metrics: [hr, ndcg]',
        'attack:',
        '  epsilons: [0.5, 1]',
        '',
      ].join('\n'),
    );
  });

  it('train writes a complete run folder and prints the test metrics', async () => {
    const r = await advrec([
      'train',
      '-c',
      config,
      '--set',
      'training.adversarial.epsilon=0.5',
      '--out',
      run,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hr@10\s+hr@50\s+ndcg@10\s+ndcg@50/);
    expect(r.stdout).toMatch(
      /protocol: full ranking on test; .*excluded: train, validation; .*943 users/,
    );
    expect(r.stderr).toMatch(/engine: fused MF kernel/);
    for (const file of [
      'config.json',
      'dataset.json',
      'history.json',
      'metrics.json',
      'robustness.json',
      'run.json',
      'report.md',
      'report.html',
    ])
      expect(existsSync(join(run, file)), file).toBe(true);
    expect(readdirSync(join(run, 'checkpoints')).sort()).toEqual([
      'adversarial-best.ckpt',
      'bpr-best.ckpt',
      'last.ckpt',
      'model.ckpt',
    ]);
    const resolved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(resolved.training).toMatchObject({
      epochs: 30,
      adversarialEpochs: 10,
      batchSize: 512,
      adversarial: { epsilon: 0.5 },
    });
    const history = JSON.parse(readFileSync(join(run, 'history.json'), 'utf8')) as {
      epoch: number;
      phase: string;
      loss: number;
      validation: unknown;
    }[];
    expect(history).toHaveLength(40);
    // Epochs count from 1 in history.json, as in the progress bar, the report and run.json.
    expect(history.map((h) => h.epoch)).toEqual(Array.from({ length: 40 }, (_, k) => k + 1));
    const status = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    const best = history.find((h) => h.epoch === status.bestEpoch.bpr);
    expect(best?.phase).toBe('bpr');
    expect(best?.validation).not.toBeNull();
    expect(history.filter((h) => h.phase === 'apr')).toHaveLength(10);
    expect(history.filter((h) => h.validation !== null)).toHaveLength(4);
    expect(history[29]!.loss).toBeLessThan(history[0]!.loss);
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    // Measured: MF-BPR on ML-100K leave-one-out reaches HR@50 ~0.34 after 30 epochs (ItemPop: ~0.24).
    expect(metrics.metrics['hr@50']).toBeGreaterThan(0.28);
    expect(metrics.protocol).toMatchObject({ kind: 'full', split: 'test', usersEvaluated: 943 });
    const dataset = JSON.parse(readFileSync(join(run, 'dataset.json'), 'utf8'));
    expect(dataset.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const checkpoint = await readCheckpoint(join(run, 'checkpoints', 'model.ckpt'));
    expect(checkpoint.model.modelName).toBe('mf');
    expect(checkpoint.metadata.datasetFingerprint).toBe(dataset.fingerprint);
    const report = readFileSync(join(run, 'report.md'), 'utf8');
    expect(report).toMatch(/## Test results/);
    expect(report).toMatch(/## Robustness: relative change of ndcg@50 under perturbation/);
    expect(report).toMatch(/!\[Training loss per epoch\]\(plots\/training-loss\.svg\)/);
  });

  it('training.pretraining: BPR epochs by per-triple SGD (item bias), then APR in mini-batch Adagrad from the best of them', async () => {
    const out = join(work, 'ml100k-fast');
    const r = await advrec([
      'train',
      '-c',
      config,
      '--set',
      'model.options.itemBias=true',
      '--set',
      'training.epochs=60',
      '--set',
      'training.adversarialEpochs=4',
      '--set',
      'training.pretraining.algorithm=sgd-triples',
      '--set',
      'training.pretraining.optimizer.name=sgd',
      '--set',
      'training.pretraining.l2=0.001',
      '--set',
      'training.pretraining.validation.every=20',
      '--set',
      'attack.epsilons=[]',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.pretrainingEngine.description).toMatch(/per-triple SGD kernel.*item bias/);
    expect(record.engine.description).not.toMatch(/per-triple/);
    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as {
      epoch: number;
      phase: string;
      validation: Record<string, number> | null;
    }[];
    // BPR validated every 20 epochs (its own schedule), APR every 10 (the run's); epochs
    // continue across the two trainers, from the best BPR epoch.
    const validated = history.filter((row) => row.validation !== null);
    expect(validated.filter((row) => row.phase === 'bpr').map((row) => row.epoch)).toEqual([
      20, 40, 60,
    ]);
    expect(history.filter((row) => row.phase === 'apr').map((row) => row.epoch)).toEqual([
      61, 62, 63, 64,
    ]);
    const resolved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(resolved.training.pretraining).toMatchObject({
      algorithm: 'sgd-triples',
      optimizer: { name: 'sgd', learningRate: 0.05 },
      l2: 0.001,
      validation: { every: 20, metric: 'ndcg@50' },
    });
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(
      /\*\*pre-training\*\*: the BPR epochs on their own config: sgd-triples, sgd lr 0\.05, l2 0\.001/,
    );
    // A good model in 60 fast epochs: measured NDCG@50 0.118 (quality-ml100k's MF-BPR after
    // 170 Adagrad epochs: 0.121).
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.metrics['ndcg@50']).toBeGreaterThan(0.1);
  }, 120_000);

  it('evaluate re-scores the run under the sampled protocol', async () => {
    const r = await advrec([
      '--json',
      'evaluate',
      '--run',
      run,
      '--protocol',
      'sampled',
      '--negatives',
      '99',
      '--cutoffs',
      '5,10',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.protocol).toMatchObject({
      kind: 'sampled',
      negativesPerCase: 99,
      usersEvaluated: 943,
    });
    expect(Object.keys(out.metrics)).toEqual(['hr@5', 'hr@10', 'ndcg@5', 'ndcg@10']);
    // With 99 negatives HR@10 is far above full ranking's (measured ~0.6 vs ~0.12).
    expect(out.metrics['hr@10']).toBeGreaterThan(0.45);
    // Each evaluation writes its own file: nothing earlier is replaced.
    const written = () =>
      readdirSync(run).filter((f) => /^evaluation-sampled-test-\d{8}-\d{6}-\d{3}.*\.json$/.test(f));
    expect(written()).toHaveLength(1);
  });

  it('attack sweeps FGM against random noise; FGM hurts more; the evaluation-side attack, the exact bounds, intervals and no warning on the synthetic default', async () => {
    const r = await advrec(['--json', 'attack', '--run', run, '--epsilons', '0.5,1,2']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      clean: Record<string, number>;
      points: {
        adversary: string;
        attack: string;
        epsilon: number;
        metrics: Record<string, number>;
        relativeChange: Record<string, number>;
        intervals: Record<string, { low: number; high: number; coversZero: boolean }>;
      }[];
      bounds: { surface: string; kind: string; epsilon: number; metrics: Record<string, number> }[];
      warnings: { code: string; message: string }[];
    };
    // fgm on the training loss and on the evaluated ranking, random noise (averaged draws).
    expect(report.points.map((p) => `${p.adversary}/${p.attack}`)).toEqual([
      ...Array(3).fill('fgm/training-loss'),
      ...Array(3).fill('fgm/evaluation'),
      ...Array(3).fill('random/training-loss'),
    ]);
    for (const epsilon of [0.5, 1, 2]) {
      const drop = (a: string): number =>
        report.points.find((p) => p.adversary === a && p.epsilon === epsilon)!.relativeChange[
          'ndcg@50'
        ]!;
      expect(drop('fgm')).toBeLessThan(drop('random'));
    }
    for (const p of report.points) {
      expect(p.intervals['ndcg@50']!.low).toBeLessThanOrEqual(p.relativeChange['ndcg@50']!);
      if (p.attack === 'evaluation')
        for (const [key, value] of Object.entries(p.metrics))
          expect(value).toBeLessThanOrEqual(report.clean[key]!);
    }
    expect(report.bounds.map((b) => `${b.surface}/${b.kind}`)).toEqual([
      ...Array(3).fill('userEmbeddings/certified'),
      ...Array(3).fill('itemEmbeddings/exact'),
    ]);
    expect(report.warnings).toEqual([]);
    // Its own file and report folder; train's robustness.json is untouched.
    const attacks = readdirSync(run).filter((f) => /^attack-\d{8}-\d{6}-\d{3}.*\.json$/.test(f));
    expect(attacks).toHaveLength(1);
    expect(existsSync(join(run, attacks[0]!.replace(/\.json$/, ''), 'report.html'))).toBe(true);
  });

  it('run folders: a folder of another run or other files is refused, a busy one too; --force writes anyway', async () => {
    const before = readFileSync(join(run, 'config.json'), 'utf8');
    const other = await advrec([
      'train',
      '-c',
      config,
      '--set',
      'model.embeddingSize=8',
      '--epochs',
      '1',
      '--out',
      run,
    ]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /--out: .* is not empty and holds a run of another config .*pass --force/,
    );
    expect(readFileSync(join(run, 'config.json'), 'utf8')).toBe(before);
    const mine = join(work, 'my-files');
    mkdirSync(mine, { recursive: true });
    writeFileSync(join(mine, 'report.md'), 'my notes');
    const notRun = await advrec(['train', '--epochs', '1', '--out', mine]);
    expect(notRun.code).toBe(2);
    expect(notRun.stderr).toMatch(/is not empty and is not an advrec run folder \(report\.md\)/);
    expect(readFileSync(join(mine, 'report.md'), 'utf8')).toBe('my notes');
    // A live lock (this test's own process holds it) refuses; a stale one is taken over.
    const busy = join(work, 'busy');
    mkdirSync(busy, { recursive: true });
    writeFileSync(join(busy, '.advrec.lock'), `${process.pid}\n`);
    const refused = await advrec(['train', '--epochs', '1', '--out', busy]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      new RegExp(`in use by another advrec command \\(process ${process.pid}; lock file .*busy`),
    );
    writeFileSync(join(busy, '.advrec.lock'), '2147483646\n');
    // A small, fast run.
    const tiny = [
      'train',
      '--epochs',
      '1',
      '--set',
      'data.synthetic.users=200',
      '--set',
      'data.synthetic.items=150',
    ];
    const taken = await advrec([...tiny, '--out', busy]);
    expect(taken.code, taken.stderr).toBe(0);
    expect(existsSync(join(busy, '.advrec.lock'))).toBe(false);
    // Another run's checkpoint (other data) is refused by evaluate, naming the checkpoint.
    const foreign = await advrec([
      'evaluate',
      '-r',
      run,
      '--checkpoint',
      join(busy, 'checkpoints', 'model.ckpt'),
    ]);
    expect(foreign.code).toBe(3);
    expect(foreign.stderr).toMatch(
      /model\.ckpt: expected a checkpoint trained on this run's data set .*another data set/,
    );
    // A corrupt config.json is a data error naming the file, not a stack trace.
    const broken = join(work, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'config.json'), '{"data": ');
    const corrupt = await advrec(['evaluate', '-r', broken]);
    expect(corrupt.code).toBe(3);
    expect(corrupt.stderr).toMatch(
      /broken.config\.json: expected the run config advrec wrote \(JSON\)/,
    );
    expect(corrupt.stderr).not.toMatch(/at .*\.js:\d+/);
    const forced = await advrec([
      ...tiny,
      '--set',
      'model.embeddingSize=4',
      '--out',
      mine,
      '--force',
    ]);
    expect(forced.code, forced.stderr).toBe(0);
  }, 120_000);

  it('recommend lists top-K unseen items for source user ids, as CSV or JSON', async () => {
    const csv = await advrec([
      'recommend',
      '--run',
      run,
      '--users',
      '1,42',
      '-k',
      '5',
      '--format',
      'csv',
    ]);
    expect(csv.code, csv.stderr).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('user,rank,item,score');
    expect(lines).toHaveLength(11);
    const seen = new Set(
      readFileSync(sharedDataFiles().movielens100k, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('1\t') || l.startsWith('42\t'))
        .map((l) => `${l.split('\t')[0]},${l.split('\t')[1]}`),
    );
    for (const line of lines.slice(1)) {
      const [user, , item] = line.split(',');
      expect(seen.has(`${user},${item}`)).toBe(false);
    }
    const scores = lines.slice(1, 6).map((l) => Number(l.split(',')[3]));
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    const json = await advrec(['recommend', '--run', run, '--users', '7', '-k', '3']);
    expect(JSON.parse(json.stdout).recommendations[0].items).toHaveLength(3);
    const unknown = await advrec(['recommend', '--run', run, '--users', '7,99999']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/unknown user id 99999/);
  });

  it('export writes the run model as safetensors, which every command reads back', async () => {
    const file = join(work, 'exported.safetensors');
    const exported = await advrec(['export', '--from', run, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/safetensors, mf/);
    const header = readFileSync(file);
    const n = Number(header.readBigUInt64LE(0));
    expect(JSON.parse(header.subarray(8, 8 + n).toString('utf8')).__metadata__.format).toBe(
      'advrec',
    );
    const args = ['recommend', '--run', run, '--users', '7', '-k', '5'];
    const original = JSON.parse((await advrec(args)).stdout).recommendations;
    const fromSafetensors = JSON.parse(
      (await advrec([...args, '--checkpoint', file])).stdout,
    ).recommendations;
    expect(fromSafetensors).toEqual(original);
    const missing = await advrec(['export', '--from', join(work, 'nope'), '--out', file]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/nope: no such checkpoint/);
  });
});

describe('advrec reproduce amr and train --model vbpr on the embedded default', () => {
  it('runs the AMR chain with the visual defaults and reports warm and cold-start cases', async () => {
    const out = join(work, 'amr');
    const r = await advrec([
      'reproduce',
      'amr',
      '--out',
      out,
      '--epochs',
      '2',
      '--adversarial-epochs',
      '1',
      '--epsilons',
      '0.5',
      '--threads',
      '2',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(Object.keys(metrics.metrics)).toEqual([
      'ItemPop',
      'MF-BPR',
      'VBPR',
      'VBPR continued',
      'AMR (eps 0.1)',
    ]);
    // The leave-one-out split leaves a few test items without a training interaction.
    expect(Object.keys(metrics.coldStart)).toContain('AMR (eps 0.1) (cold)');
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/## Warm and cold-start test cases/);
    expect(report).toMatch(/item-ID dropout 0\.2/);
    // How strongly each visual model answers its features (the quantity AMR's term penalises).
    expect(report).toMatch(/## The visual part/);
    const visual = metrics.visualPart as Record<
      string,
      { projectionNorm: number; meanUserSensitivity: number }
    >;
    expect(Object.keys(visual)).toEqual(['VBPR', 'VBPR continued', 'AMR']);
    for (const entry of Object.values(visual)) {
      expect(entry.projectionNorm).toBeGreaterThan(0);
      expect(entry.meanUserSensitivity).toBeGreaterThan(0);
      expect(Number.isFinite(entry.meanUserSensitivity)).toBe(true);
    }
    // Sweep sizes in units of the prepared features' row norm, on the features only.
    const robustness = JSON.parse(readFileSync(join(out, 'robustness.json'), 'utf8'));
    const amr = robustness['AMR (eps 0.1)'];
    expect(amr.surfaces).toEqual(['itemFeatures']);
    expect(
      amr.points.map((p: { adversary: string; attack: string; epsilon: number }) =>
        [p.adversary, p.attack, p.epsilon].join('/'),
      ),
    ).toEqual(['fgm/training-loss/0.5', 'fgm/evaluation/0.5', 'random/training-loss/0.5']);
    // The exact worst case on the features (VBPR's score is affine in them), never above FGM.
    const points = amr.points as { metrics: Record<string, number> }[];
    expect(amr.bounds).toHaveLength(1);
    expect(amr.bounds[0].kind).toBe('exact');
    for (const [key, value] of Object.entries(amr.bounds[0].metrics as Record<string, number>))
      for (const p of points) expect(value).toBeLessThanOrEqual(p.metrics[key]! + 1e-12);
    // About a minute on 2 quiet cores (four stages, five evaluations, four attack points).
  }, 420_000);

  it("reproduce amr --tune chooses epsilon and lambda on validation from the paper's grid and reports every arm", async () => {
    const out = join(work, 'amr-tuned');
    // 999 sampled negatives cannot be drawn from 200 items: refused before any training.
    const small = await advrec([
      'reproduce',
      'amr',
      '--set',
      'data.synthetic.users=300',
      '--set',
      'data.synthetic.items=200',
      '--out',
      join(work, 'amr-too-small'),
    ]);
    expect(small.code).toBe(2);
    expect(small.stderr).toMatch(
      /evaluation\.negatives: 999 sampled negatives per test case, but user \S+ of .* has only \d+ items in no split/,
    );
    expect(small.stderr).not.toMatch(/epochs/);
    expect(existsSync(join(work, 'amr-too-small'))).toBe(false);
    const r = await advrec([
      'reproduce',
      'amr',
      '--tune',
      '--set',
      'data.synthetic.users=300',
      '--set',
      'data.synthetic.items=200',
      '--set',
      'evaluation.negatives=99',
      '--epochs',
      '2',
      '--adversarial-epochs',
      '1',
      '--epsilons',
      '0.5',
      '--threads',
      '2',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const tuning = metrics.amrTuning as {
      epsilon: number;
      adversarialWeight: number;
      bestValidation: number;
      chosen: boolean;
    }[];
    // Epsilon 0.01 / 0.1 / 1 / 10 at lambda 1 first, then lambdas at the best epsilon.
    expect(tuning.slice(0, 4).map((a) => [a.epsilon, a.adversarialWeight])).toEqual([
      [0.01, 1],
      [0.1, 1],
      [1, 1],
      [10, 1],
    ]);
    expect(tuning.length).toBeGreaterThanOrEqual(7);
    expect(tuning.length).toBeLessThanOrEqual(9);
    const chosen = tuning.filter((a) => a.chosen);
    expect(chosen).toHaveLength(1);
    expect(chosen[0]!.bestValidation).toBe(Math.max(...tuning.map((a) => a.bestValidation)));
    const name = Object.keys(metrics.metrics).at(-1)!;
    expect(name).toBe(
      `AMR (eps ${chosen[0]!.epsilon}${chosen[0]!.adversarialWeight !== 1 ? `, lambda ${chosen[0]!.adversarialWeight}` : ''})`,
    );
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/## AMR tuned on validation/);
    expect(report).toMatch(/both chosen on validation from the AMR paper's grid over \d+ runs/);
  }, 300_000);

  it('train --model vbpr runs AMR on the item features with a relative epsilon', async () => {
    const out = join(work, 'vbpr-train');
    const r = await advrec([
      'train',
      '--model',
      'vbpr',
      '--set',
      'data.synthetic.featureDimension=16',
      '--set',
      'training.mfEpochs=5',
      '--epochs',
      '2',
      '--adversarial-epochs',
      '1',
      '--epsilon',
      '0.2',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(
      /fgm on the item features, epsilon 0\.2 of the prepared features' mean row norm/,
    );
    // The recipe's choices are recorded with the model.
    const checkpoint = await readCheckpoint(join(out, 'checkpoints', 'model.ckpt'));
    expect(checkpoint.model.config).toMatchObject({
      itemIdDropout: 0.2,
      featureNormalization: 'centred',
      featureNorm: 0.25,
    });
  });
});

describe('advrec train --model vbpr starts from an MF-BPR (AMR Algorithm 1)', () => {
  it('trains MF first and copies its best ID embeddings into VBPR; training.mfEpochs 0 starts from random', async () => {
    const out = join(work, 'vbpr-warm');
    const r = await advrec([
      'train',
      '--model',
      'vbpr',
      '--set',
      'data.synthetic.featureDimension=16',
      '--set',
      'training.mfEpochs=15',
      '--set',
      'training.validation.every=5',
      '--epochs',
      '0',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.mfWarmStart).toMatchObject({ epochsRun: 15, metric: 'ndcg@100' });
    // With no VBPR epochs, the model is VBPR right after the warm start: MF's best tables.
    const mf = await readCheckpoint(join(out, 'checkpoints', 'mf-best.ckpt'));
    const vbpr = await readCheckpoint(join(out, 'checkpoints', 'model.ckpt'));
    const table = (c: typeof mf, name: string): Float32Array =>
      c.model.tables.find((t) => t.name === name)!.values;
    expect(table(vbpr, 'userEmbeddings')).toEqual(table(mf, 'userEmbeddings'));
    const mfItems = table(mf, 'itemEmbeddings');
    const vbprItems = table(vbpr, 'itemEmbeddings');
    // Equal rows, except items without a training interaction: their ID embedding is zero.
    const k = vbpr.model.config['embeddingSize'] as number;
    const zeroed: number[] = [];
    for (let i = 0; i < mfItems.length / k; i++) {
      const row = (t: Float32Array): number[] => Array.from(t.subarray(i * k, (i + 1) * k));
      if (row(vbprItems).join() === row(mfItems).join()) continue;
      expect(row(vbprItems).every((v) => v === 0)).toBe(true);
      zeroed.push(i);
    }
    expect(zeroed.length).toBeLessThan(5);
    // The visual part as the model left it: E's norm is the checkpoint's.
    const e = table(vbpr, 'featureProjection');
    expect(record.visualPart.projectionNorm).toBeCloseTo(
      Math.sqrt(e.reduce((sum, v) => sum + v * v, 0)),
      4,
    );
    expect(record.visualPart.meanUserSensitivity).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(
      /MF warm start\*\*: VBPR started from an MF-BPR's ID embeddings and optimiser state \(AMR Algorithm 1\): 15 MF epochs/,
    );
    const scratch = await advrec([
      'train',
      '--model',
      'vbpr',
      '--set',
      'data.synthetic.featureDimension=16',
      '--set',
      'training.mfEpochs=0',
      '--epochs',
      '0',
      '--out',
      join(work, 'vbpr-scratch'),
    ]);
    expect(scratch.code, scratch.stderr).toBe(0);
    expect(existsSync(join(work, 'vbpr-scratch', 'checkpoints', 'mf-best.ckpt'))).toBe(false);
    expect(
      JSON.parse(readFileSync(join(work, 'vbpr-scratch', 'run.json'), 'utf8')),
    ).not.toHaveProperty('mfWarmStart');
  });
});

describe('advrec train --model vbpr with principal components and a per-table L2', () => {
  it('records both, and evaluate on the run folder restores the same model', async () => {
    const out = join(work, 'vbpr-pca');
    const r = await advrec([
      'train',
      '--model',
      'vbpr',
      '--set',
      'data.synthetic.featureDimension=16',
      '--set',
      'model.options.featureComponents=8',
      '--set',
      'training.tables.featureProjection.l2=0.01',
      '--set',
      'training.mfEpochs=5',
      '--epochs',
      '2',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const checkpoint = await readCheckpoint(join(out, 'checkpoints', 'model.ckpt'));
    expect(checkpoint.model.config).toMatchObject({ featureComponents: 8 });
    expect(checkpoint.model.tables.find((t) => t.name === 'featureBasis')).toMatchObject({
      rows: 16,
      dimension: 8,
    });
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.training.tables).toEqual({
      featureProjection: { learningRate: 0.05, l2: 0.01, keepNorm: false },
    });
    const trained = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    const again = await advrec(['evaluate', '--run', out]);
    expect(again.code, again.stderr).toBe(0);
    const written = again.stdout.match(/written: (\S+\.json)/)![1]!;
    const evaluated = JSON.parse(readFileSync(written, 'utf8'));
    expect(evaluated.metrics['ndcg@20']).toBeCloseTo(trained.metrics['ndcg@20'], 10);
    // A table the model does not have is named in the error.
    const bad = await advrec([
      'train',
      '--set',
      'training.tables.featureProjection.l2=0.01',
      '--epochs',
      '1',
      '--out',
      join(work, 'mf-bad-table'),
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(
      /tables\.featureProjection: model mf has no trainable table "featureProjection"/,
    );
  });
});

describe('advrec train --model neumf: a model package as a plugin, no change to the core', () => {
  it('trains NeuMF with BPR then APR on its four embedding tables, and evaluate reloads the package from the run', async () => {
    const out = join(work, 'neumf-run');
    const r = await advrec([
      'train',
      '--data',
      join(shared, 'movielens-100k', 'u.data'),
      '--model',
      'neumf',
      '--set',
      'model.embeddingSize=4',
      '--epochs',
      '2',
      '--adversarial-epochs',
      '1',
      '--epsilon',
      '0.05',
      '--set',
      'evaluation.protocol=sampled',
      '--set',
      'evaluation.negatives=100',
      '--set',
      'evaluation.cutoffs=[10]',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/engine: generic/);
    expect(r.stdout).toMatch(/neumf \+ APR/);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.plugins).toEqual(['@advrec/neumf']);
    const checkpoint = await readCheckpoint(join(out, 'checkpoints', 'model.ckpt'));
    expect(checkpoint.model.modelName).toBe('neumf');
    expect(checkpoint.model.config).toMatchObject({ embeddingSize: 4, mlpLayers: [16, 8, 4] });
    const trained = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    // Better than chance among 101 candidates (HR@10 0.099), after 3 epochs.
    expect(trained.metrics['hr@10']).toBeGreaterThan(0.2);
    const again = await advrec(['evaluate', '--run', out]);
    expect(again.code, again.stderr).toBe(0);
    const written = again.stdout.match(/written: (\S+\.json)/)![1]!;
    expect(JSON.parse(readFileSync(written, 'utf8')).metrics['ndcg@10']).toBeCloseTo(
      trained.metrics['ndcg@10'],
      10,
    );
  });
});

describe('advrec reproduce apr on the embedded default', () => {
  it('finishes in under 2 minutes with the comparison and the robustness table in its report', async () => {
    const out = join(work, 'apr');
    const r = await advrec(['reproduce', 'apr', '--out', out, '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.seconds).toBeLessThan(120);
    expect(r.stdout).toMatch(/ItemPop[\s\S]*MF-BPR[\s\S]*BPR continued[\s\S]*AMF \(eps 0\.5\)/);
    expect(r.stdout).toMatch(/AMF \(eps 0\.5\) vs BPR continued: .*ndcg@50 [+-]\d+\.\d%/);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toMatch(/## Test results[\s\S]*\| AMF \(eps 0\.5\) vs BPR continued \|/);
    expect(report).toMatch(
      /## Robustness: relative change of ndcg@50 under perturbation[\s\S]*\| BPR continued \| fgm \|/,
    );
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    // Measured on the synthetic default: MF-BPR NDCG@50 ~0.31, ItemPop ~0.06; AMF above BPR continued.
    expect(metrics.metrics['MF-BPR']['ndcg@50']).toBeGreaterThan(0.25);
    expect(metrics.metrics['AMF (eps 0.5)']['ndcg@50']).toBeGreaterThan(
      metrics.metrics['BPR continued']['ndcg@50'],
    );
    const robustness = JSON.parse(readFileSync(join(out, 'robustness.json'), 'utf8'));
    const drop = (arm: string): number =>
      robustness[arm].points.find(
        (p: { adversary: string; epsilon: number }) => p.adversary === 'fgm' && p.epsilon === 1,
      ).relativeChange['ndcg@50'];
    expect(drop('AMF (eps 0.5)')).toBeGreaterThan(drop('BPR continued'));
    // The same tables as the main before the engine seam (recorded there, f5f310b).
    const golden = JSON.parse(
      readFileSync(new URL('./test-support/golden-reproduce-apr.json', import.meta.url), 'utf8'),
    );
    expectNumbersClose(metrics.metrics, golden.metrics, 'metrics');
    expectNumbersClose(metrics.comparisons, golden.comparisons, 'comparisons');
    for (const arm of Object.keys(golden.robustness)) {
      expectNumbersClose(robustness[arm].clean, golden.robustness[arm].clean, `${arm} clean`);
      // The papers' attack (the golden's fields; random noise is the mean of its draws).
      const papers = robustness[arm].points
        .filter((p: { attack: string }) => p.attack === 'training-loss')
        .map((p: Record<string, unknown>) =>
          Object.fromEntries(
            ['adversary', 'epsilon', 'metrics', 'relativeChange', 'trainAccuracy'].map((k) => [
              k,
              p[k],
            ]),
          ),
        );
      expectNumbersClose(papers, golden.robustness[arm].points, `${arm} points`);
      // The synthetic default gives the warnings nothing to say.
      expect(robustness[arm].warnings, arm).toEqual([]);
    }
  }, 150_000);

  it.skipIf(chromium === null)(
    `renders its HTML report in headless Chromium (${chromium ?? 'no chromium found: set CHROMIUM_PATH'}); screenshot in artifacts/`,
    async () => {
      const { chromium: playwright } = await import('playwright-core');
      const browser = await playwright.launch({
        executablePath: chromium!,
        args: ['--no-sandbox'],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const errors: string[] = [];
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(message.text());
        });
        page.on('pageerror', (error) => errors.push(error.message));
        await page.goto(pathToFileURL(join(work, 'apr', 'report.html')).href);
        // At 1280 px no table is cut off: each fits, or scrolls in its own box.
        const clipped = (await page.evaluate(`[...document.querySelectorAll('table')]
          .filter((t) => {
            const box = t.parentElement;
            const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
            return !scrolls && t.getBoundingClientRect().right > window.innerWidth;
          })
          .map((t) => t.innerText.slice(0, 60))`)) as string[];
        expect(clipped).toEqual([]);
        expect(await page.title()).toMatch(/advrec reproduce apr/);
        // Three plots (loss, validation curve, robustness curve), each with its series drawn.
        const figures = page.locator('figure svg');
        expect(await figures.count()).toBe(3);
        for (let k = 0; k < 3; k++) {
          const box = await figures.nth(k).boundingBox();
          expect(box!.width).toBeGreaterThan(400);
          expect(box!.height).toBeGreaterThan(200);
          expect(await figures.nth(k).locator('path.series').count()).toBeGreaterThanOrEqual(3);
        }
        const tables = page.locator('table');
        expect(await tables.count()).toBe(2);
        expect(await tables.nth(0).locator('tbody tr').count()).toBe(7);
        // Per model: FGM on the training loss and on the evaluated ranking, random noise, and
        // the bounds of the two embedding surfaces.
        expect(await tables.nth(1).locator('tbody tr').count()).toBe(10);
        expect(await tables.nth(1).innerText()).toMatch(/AMF \(eps 0\.5\)\s+fgm/);
        const artifacts = join(root, '..', '..', 'artifacts');
        mkdirSync(artifacts, { recursive: true });
        await page.screenshot({
          path: join(artifacts, 'reproduce-apr-report.png'),
          fullPage: true,
        });
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});

describe('advrec datasets', () => {
  it('lists, describes and splits a data set; a written split reads back as the same given split', async () => {
    const list = await advrec(['--json', 'datasets', 'list']);
    expect(list.code, list.stderr).toBe(0);
    const entries = JSON.parse(list.stdout).datasets as { name: string; location: string }[];
    expect(entries.map((e) => e.name)).toEqual([
      'synthetic',
      'ml-100k',
      'ml-1m',
      'gowalla',
      'yelp2018',
      'pinterest-20',
    ]);
    expect(entries.find((e) => e.name === 'ml-100k')!.location).toBe(
      join(shared, 'movielens-100k'),
    );
    // describe reads what train reads: a validation split by default.
    const described = await advrec(['datasets', 'describe', 'ml-100k']);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/users 943, items 1,682, interactions 100,000/);
    expect(described.stdout).toMatch(
      /split: leave-one-out, order latest, seed 42; validation: latest/,
    );
    const without = await advrec(['datasets', 'describe', 'ml-100k', '--no-validation']);
    expect(without.stdout).not.toMatch(/validation/);
    // A given split with valid.txt: describe counts its users as train does, and the run's
    // report says where its validation came from.
    const given = join(work, 'given-valid');
    mkdirSync(given, { recursive: true });
    const lines = (rows: number[][]) => rows.map((r) => r.join(' ')).join('\n') + '\n';
    const users = Array.from({ length: 30 }, (_, u) => u);
    writeFileSync(
      join(given, 'train.txt'),
      lines(users.map((u) => [u, ...[0, 1, 2, 3].map((k) => (u + k) % 20)])),
    );
    writeFileSync(join(given, 'test.txt'), lines(users.map((u) => [u, (u + 5) % 20])));
    writeFileSync(
      join(given, 'valid.txt'),
      lines([...users.map((u) => [u, (u + 4) % 20]), [30, 7]]),
    );
    const describedGiven = JSON.parse(
      (await advrec(['--json', 'datasets', 'describe', given])).stdout,
    );
    expect(describedGiven.users).toBe(31);
    const givenRun = join(work, 'given-valid-run');
    const trained = await advrec([
      '--quiet',
      'train',
      '--data',
      given,
      '--epochs',
      '1',
      '--set',
      'model.embeddingSize=4',
      '-o',
      givenRun,
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(givenRun, 'dataset.json'), 'utf8')).fingerprint).toBe(
      describedGiven.fingerprint,
    );
    expect(readFileSync(join(givenRun, 'report.md'), 'utf8')).toMatch(
      /validation from the given validation file/,
    );
    const out = join(work, 'split');
    const split = await advrec([
      'datasets',
      'split',
      'ml-100k',
      '--order',
      'random',
      '--seed',
      '3',
      '--out',
      out,
    ]);
    expect(split.code, split.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['split.json', 'test.txt', 'train.txt']);
    expect(readFileSync(join(out, 'test.txt'), 'utf8').trim().split('\n')).toHaveLength(943);
    const fingerprint = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')).fingerprint;
    const again = await advrec([
      '--json',
      'datasets',
      'describe',
      out,
      '--format',
      'user-item-lists',
      '--no-validation',
    ]);
    const description = JSON.parse(again.stdout);
    expect(description.protocol.kind).toBe('given');
    expect([description.train.interactions, description.test.interactions]).toEqual([99_057, 943]);
    // Written with source ids in dense order, the split reads back as the very same data set.
    expect(description.fingerprint).toBe(fingerprint);
    // Splitting the written split into its own folder would overwrite its source: refused.
    const onto = await advrec(['datasets', 'split', out, '--format', 'user-item-lists', '-o', out]);
    expect(onto.code).toBe(2);
    expect(onto.stderr).toMatch(/train\.txt is a file this split was read from/);
    expect(JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')).fingerprint).toBe(fingerprint);
    // An existing split elsewhere is replaced only with --force.
    const twice = await advrec([
      'datasets',
      'split',
      'ml-100k',
      '-o',
      out.replace(/split$/, 'split2'),
    ]);
    expect(twice.code, twice.stderr).toBe(0);
    const refused = await advrec([
      'datasets',
      'split',
      'ml-100k',
      '-o',
      out.replace(/split$/, 'split2'),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already holds train\.txt, test\.txt, split\.json; .*--force/);
  });
});

describe('advrec features, plugins, errors and exit codes', () => {
  it('extracts MobileNetV2 features for a few shared posters (a known extractor by name)', async () => {
    const model = join(shared, '..', 'models', 'mobilenetv2-12-int8', 'mobilenetv2-12-int8.onnx');
    const output = join(work, 'features', 'posters.npy');
    const r = await advrec([
      'features',
      '-m',
      model,
      '-i',
      join(shared, 'ml-1m', 'posters'),
      '--extractor',
      'mobilenetv2-12-int8',
      '--id-offset',
      '-1',
      '--limit',
      '6',
      '-o',
      output,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const matrix = await readNpy(output);
    expect([matrix.rows, matrix.dimension]).toEqual([6, 1280]);
    const manifest = JSON.parse(readFileSync(`${output}.manifest.json`, 'utf8'));
    expect(manifest.itemIds).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(manifest.tensor).toBe('627');
  });

  it('loads a plugin adversary (PGD) for training and attacks', async () => {
    const run = join(work, 'pgd-run');
    const train = await advrec([
      '--plugin',
      '@advrec/example-plugin-pgd',
      '--quiet',
      'train',
      '--data',
      sharedDataFiles().movielens100k,
      '--epochs',
      '5',
      '--adversarial-epochs',
      '2',
      '--adversary',
      'example-pgd',
      '--set',
      'model.embeddingSize=16',
      '--set',
      'evaluation.cutoffs=[50]',
      '--out',
      run,
    ]);
    expect(train.code, train.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).plugins).toEqual([
      '@advrec/example-plugin-pgd',
    ]);
    // The run folder remembers its plugins: attack reloads them.
    const attack = await advrec([
      '--json',
      'attack',
      '--run',
      run,
      '--adversaries',
      'fgm,example-pgd,pgd',
      '--epsilons',
      '1',
    ]);
    expect(attack.code, attack.stderr).toBe(0);
    const report = JSON.parse(attack.stdout) as {
      points: { adversary: string; attack: string; relativeChange: Record<string, number> }[];
    };
    // The plugin's adversary beside the built-in pgd, each also aimed at the evaluated ranking.
    expect(report.points.map((p) => `${p.adversary}/${p.attack}`)).toEqual(
      ['fgm', 'example-pgd', 'pgd'].flatMap((a) => [`${a}/training-loss`, `${a}/evaluation`]),
    );
    const missing = await advrec(['train', '--adversary', 'example-pgd', '--epochs', '1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /unknown adversary "example-pgd"; registered: fgm, fgsm, none, pgd, pgd-linf, random/,
    );
  });

  it('reports five config mistakes at once with their paths (exit 2)', async () => {
    const file = join(work, 'five.yaml');
    writeFileSync(
      file,
      'data:\n  source: synthetic\n  format: parquet\nmodel:\n  name: mf\n  embeddingSize: -3\ntraining:\n  batchSize: big\n  optimiser: adam\n  adversarial:\n    epsilon: -1\n',
    );
    const r = await advrec(['train', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/5 invalid options/);
    for (const path of [
      'data.format',
      'model.embeddingSize',
      'training.batchSize',
      'training.optimiser',
      'training.adversarial.epsilon',
    ])
      expect(r.stderr).toContain(`  - ${path}: `);
  });

  it('names the registered models for an unknown one, and the path of a missing data file', async () => {
    const unknown = await advrec(['train', '--model', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /model\.name: unknown model "nope"; known: gru4rec, item-pop, mf, neumf, sasrec, vbpr/,
    );
    // Typos get the name they meant: a model, a named data set.
    const typo = await advrec(['train', '--model', 'itempop']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown model "itempop" \(did you mean "item-pop"\?\)/);
    const dataTypo = await advrec(['train', '--data', 'ml100k', '--out', join(work, 'never')]);
    expect(dataTypo.code).toBe(3);
    expect(dataTypo.stderr).toMatch(/did you mean the named data set ml-100k: --data ml-100k\?/);
    const missing = await advrec([
      'train',
      '--data',
      join(work, 'nowhere', 'u.data'),
      '--out',
      join(work, 'never'),
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(join(work, 'nowhere', 'u.data'));
    expect(existsSync(join(work, 'never'))).toBe(false);
    const noFeatures = await advrec([
      'train',
      '--model',
      'vbpr',
      '--data',
      sharedDataFiles().movielens100k,
      '--out',
      join(work, 'never-vbpr'),
    ]);
    expect(noFeatures.code).toBe(2);
    expect(noFeatures.stderr).toMatch(/data\.features: VBPR needs an item feature matrix/);
    expect(existsSync(join(work, 'never-vbpr'))).toBe(false);
    const noSurface = await advrec([
      'train',
      '--set',
      'training.adversarial.surfaces=[itemFeatures]',
      '--out',
      join(work, 'never-surface'),
    ]);
    expect(noSurface.code).toBe(2);
    expect(noSurface.stderr).toMatch(
      /training\.adversarial\.surfaces\[0\]: model mf has no surface "itemFeatures"/,
    );
    expect(existsSync(join(work, 'never-surface'))).toBe(false);
    const notRun = await advrec(['evaluate', '--run', work]);
    expect(notRun.code).toBe(3);
    expect(notRun.stderr).toMatch(/config\.json: expected a run folder written by advrec train/);
  });

  it('exits 0 for --help and --version, 2 for usage errors', async () => {
    const help = await advrec(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {4}success/);
    for (const command of [
      'train',
      'evaluate',
      'attack',
      'recommend',
      'features',
      'datasets download',
      'reproduce apr',
    ]) {
      const r = await advrec([...command.split(' '), '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toMatch(/^Usage: advrec /);
    }
    expect((await advrec(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const typo = await advrec(['trian']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'trian'[\s\S]*Did you mean train\?/);
    expect((await advrec(['evaluate'])).code).toBe(2); // missing --run
    expect((await advrec(['attack', '--run', work, '--epsilons', 'a,b'])).code).toBe(2);
    // Counts below their minimum are refused, not ignored.
    for (const args of [
      ['reproduce', 'apr', '--threads', '0'],
      ['features', '-m', 'm.onnx', '-i', work, '-o', 'f.npy', '--limit', '-5'],
      ['recommend', '--run', work, '--users', '1', '--k', '0'],
    ]) {
      const r = await advrec(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/must be an integer >= [01], got "-?\d+"/);
    }
    // K set twice (model.options would silently replace model.embeddingSize) is refused.
    const twice = await advrec([
      'train',
      '--set',
      'model.options.embeddingSize=4',
      '-o',
      join(work, 't'),
    ]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/model\.options\.embeddingSize: set model\.embeddingSize instead/);
    const unknown = await advrec([
      'train',
      '--set',
      'model.options.initstd=0.1',
      '-o',
      join(work, 't'),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/model\.options\.initstd: unknown option of mf/);
    // --set cannot reach a prototype.
    const polluted = await advrec([
      'train',
      '--set',
      '__proto__.polluted=yes',
      '-o',
      join(work, 'p'),
    ]);
    expect(polluted.code).toBe(2);
    expect(polluted.stderr).toMatch(/__proto__.polluted: "__proto__" is not a config field/);
  });

  it('Ctrl-C stops training after the current epoch with exit 130 and an intact last checkpoint', async () => {
    const run = join(work, 'interrupted');
    let sent = false;
    const r = await advrec(
      [
        'train',
        '--data',
        sharedDataFiles().movielens100k,
        '--epochs',
        '100000',
        '--set',
        'training.checkpointEvery=0',
        '--out',
        run,
      ],
      {
        onStderr: (text, child) => {
          if (!sent && /BPR epochs \d+\/100000/.test(text)) {
            sent = true;
            child.kill('SIGINT');
          }
        },
      },
    );
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted after epoch \d+; saving checkpoints\/last\.ckpt/);
    const checkpoint = await readCheckpoint(join(run, 'checkpoints', 'last.ckpt'));
    expect(checkpoint.metadata.interrupted).toBe(true);
    expect(checkpoint.model.tables.map((t) => t.name)).toEqual([
      'userEmbeddings',
      'itemEmbeddings',
    ]);
    expect(readdirSync(join(run, 'checkpoints')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).status).toBe('interrupted');
  });

  it('Ctrl-C during the post-training robustness sweep stops it: exit 130, status interrupted, metrics kept', async () => {
    const run = join(work, 'interrupted-sweep');
    let sent = false;
    const r = await advrec(
      [
        'train',
        '--data',
        sharedDataFiles().movielens100k,
        '--epochs',
        '2',
        '--set',
        'attack.epsilons=[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1,1.5,2,3,4]',
        '--out',
        run,
      ],
      {
        onStderr: (text, child) => {
          // The evaluation's line is printed as the sweep starts (progress is not a TTY here).
          if (!sent && /evaluating on test 1\/1/.test(text)) {
            sent = true;
            child.kill('SIGINT');
          }
        },
      },
    );
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(
      /interrupted during the robustness sweep: the trained model is .*model\.ckpt/,
    );
    const status = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'));
    expect(status).toMatchObject({ status: 'interrupted', stage: 'the robustness sweep' });
    expect(existsSync(join(run, 'metrics.json'))).toBe(true);
    expect(existsSync(join(run, 'robustness.json'))).toBe(false);
    expect(existsSync(join(run, 'checkpoints', 'model.ckpt'))).toBe(true);
  });
});

/** Every number in `actual` equals `expected`'s to 1e-12 relative (same keys, same shape). */
function expectNumbersClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, path).toBe('number');
    const tolerance = 1e-12 * Math.max(1, Math.abs(expected));
    expect(Math.abs((actual as number) - expected), path).toBeLessThanOrEqual(tolerance);
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual), path).toBe(true);
    expect((actual as unknown[]).length, path).toBe(expected.length);
    expected.forEach((e, k) => expectNumbersClose((actual as unknown[])[k], e, `${path}[${k}]`));
  } else if (expected !== null && typeof expected === 'object') {
    const a = actual as Record<string, unknown>;
    expect(Object.keys(a).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [key, e] of Object.entries(expected))
      expectNumbersClose(a[key], e, `${path}.${key}`);
  } else expect(actual, path).toEqual(expected);
}

describe('sequential models on the command line (SASRec, GRU4Rec, ATSRec), as plugins', () => {
  const games = writeGamesHead(shared, work);

  it('reproduce atsrec: the model, then ATSRec vs the model continued, diversity and FGM drops, checkpoints that restore', async () => {
    const out = join(work, 'atsrec-run');
    const r = await advrec([
      'reproduce',
      'atsrec',
      '--data',
      games,
      '--epochs',
      '2',
      '--adversarial-epochs',
      '1',
      '--epsilons',
      '0.5',
      '--set',
      'model.dimension=16',
      '--set',
      'evaluation.negatives=50',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sasrec continued/);
    expect(r.stdout).toMatch(/sasrec \+ ATSRec/);
    expect(r.stdout).toMatch(/ATSRec vs continued: HR@10 [+-]\d+\.\d%/);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    // The model both arms start from, then the two arms.
    expect(results.arms.map((a: { label: string }) => a.label)).toEqual([
      'sasrec',
      'sasrec continued',
      'sasrec + ATSRec',
    ]);
    for (const arm of results.arms) {
      expect(arm.hitRate10).toBeGreaterThan(0);
      // Two epochs on 320 users: the drop's size (even its sign) is not settled yet.
      expect(Number.isFinite(arm.fgmOnItemEmbeddings[0].ndcgChange)).toBe(true);
      expect(arm.itemEmbeddingMeanCosine).toBeGreaterThan(-1);
    }
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).plugins).toEqual([
      '@advrec/sasrec',
    ]);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(
      /ATSRec against the model continued/,
    );
    const checkpoint = await readCheckpoint(join(out, 'checkpoints', 'atsrec.ckpt'));
    expect(checkpoint.model.modelName).toBe('sasrec');
    expect(checkpoint.model.config).toMatchObject({ dimension: 16, maxLength: 50 });
  });

  it('train --model gru4rec from a config file; a field a sequential run does not take is named', async () => {
    const out = join(work, 'gru4rec-run');
    const config = join(work, 'gru4rec.yaml');
    writeFileSync(
      config,
      [
        `data: { source: ${JSON.stringify(games)} }`,
        'model: { name: gru4rec, dimension: 8, hiddenSize: 8 }',
        'training: { epochs: 2, batchSize: 64 }',
        'evaluation: { negatives: 20, attackEpsilons: [0.5] }',
        '',
      ].join('\n'),
    );
    const r = await advrec(['train', '--config', config, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/gru4rec/);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.arms[0].label).toBe('gru4rec');
    expect(results.negatives).toBe(20);
    const checkpoint = await readCheckpoint(join(out, 'checkpoints', 'model.ckpt'));
    expect(checkpoint.model.modelName).toBe('gru4rec');
    // evaluate takes the sequential run folder; a finished run has nothing to resume.
    const evaluated = await advrec(['--json', 'evaluate', '--run', out]);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout).metrics['ndcg@10']).toBeCloseTo(results.arms[0].ndcg10, 10);
    const finished = await advrec(['train', '--resume', out]);
    expect(finished.code, finished.stderr).toBe(2);
    expect(finished.stderr).toMatch(/holds a finished run/);
    const bad = await advrec(['train', '--config', config, '--set', 'training.threads=2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/training\.threads: unknown field for a sequential model/);
  });
});
