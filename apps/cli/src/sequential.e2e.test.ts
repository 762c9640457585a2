/**
 * Sequential run folders through every command, as a user runs them: train, Ctrl-C and
 * SIGTERM mid-run (exit 130, last.ckpt, run.json interrupted), --resume (the history of an
 * uninterrupted run, to the bit), evaluate under both protocols, attack, recommend, export and
 * a two-point sweep; then the same for a plugin's sequential model (the example package).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { sharedDataDir } from '@advrec/testing';
import { advrecRunner } from './test-support/run-advrec.js';
import { writeGamesHead } from './test-support/games-head.js';

const shared = sharedDataDir();
const work = mkdtempSync(join(tmpdir(), 'advrec-sequential-e2e-'));
const advrec = advrecRunner({ cwd: work });
afterAll(() => rmSync(work, { recursive: true, force: true }));

const games = writeGamesHead(shared, work);

const TRAIN = [
  'train',
  '--model',
  'sasrec',
  '--data',
  games,
  '--epochs',
  '12',
  '--adversarial-epochs',
  '6',
  '--set',
  'model.dimension=16',
  '--set',
  'training.validateEvery=2',
  '--set',
  'training.patience=100',
  '--set',
  'evaluation.negatives=50',
  '--set',
  'evaluation.attackEpsilons=[0.5]',
];

/** history.json without the timings. */
function historyOf(folder: string): unknown {
  const history = JSON.parse(readFileSync(join(folder, 'history.json'), 'utf8')) as Record<
    string,
    { epoch: number; loss: number; adversarialLoss: number | null; validation: unknown }[]
  >;
  return Object.fromEntries(
    Object.entries(history).map(([arm, epochs]) => [
      arm,
      epochs.map((e) => [e.epoch, e.loss, e.adversarialLoss, e.validation]),
    ]),
  );
}

/** The JSON header of a safetensors file (what `safetensors.numpy.load_file` reads first). */
function safetensorsHeader(file: string): Record<string, { dtype: string; shape: number[] }> & {
  __metadata__?: Record<string, string>;
} {
  const bytes = readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
}

/** Writes a two-point sweep over `axis` on top of a base run config and runs it. */
async function twoPointSweep(
  name: string,
  base: Record<string, unknown>,
  axis: string,
  values: readonly unknown[],
  plugin: readonly string[] = [],
) {
  const baseFile = join(work, `${name}-base.json`);
  const sweepFile = join(work, `${name}-sweep.json`);
  writeFileSync(baseFile, JSON.stringify(base));
  writeFileSync(sweepFile, JSON.stringify({ base: baseFile, axes: { [axis]: values } }));
  const folder = join(work, name);
  const r = await advrec([...plugin, '--quiet', 'sweep', sweepFile, '-o', folder]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(readFileSync(join(folder, 'aggregate.json'), 'utf8')) as {
    metric: string;
    runs: { id: string; validation: number; test: Record<string, number> }[];
    missing: string[];
    best: { point: Record<string, unknown> } | null;
  };
}

describe('a sequential run folder through every command', () => {
  const whole = join(work, 'whole');
  beforeAll(async () => {
    const r = await advrec([...TRAIN, '--out', whole]);
    expect(r.code, r.stderr).toBe(0);
  }, 240_000);

  it("records the engine: SASRec's own kernel on worker threads, in run.json, results.json and the report", () => {
    const run = JSON.parse(readFileSync(join(whole, 'run.json'), 'utf8'));
    expect(run.engine.name).toBe('model-kernel');
    expect(run.engine.description).toMatch(/sasrec-fused \(onnxruntime products\), chunks of 64/);
    const results = JSON.parse(readFileSync(join(whole, 'results.json'), 'utf8'));
    for (const arm of results.arms) expect(arm.engine.name).toBe('model-kernel');
    expect(readFileSync(join(whole, 'report.md'), 'utf8')).toMatch(/engine.*sasrec-fused/);
  });

  for (const [signal, phase, pattern] of [
    ['SIGINT', 'the model', /sasrec epochs\s+[3-9]\//],
    ['SIGTERM', 'ATSRec', /ATSRec epochs\s+[2-4]\//],
  ] as const)
    it(`${signal} during ${phase} stops with exit 130 and last.ckpt; --resume ends with the uninterrupted history`, async () => {
      const folder = join(work, `stopped-${signal}`);
      const stopped = await advrec([...TRAIN, '--out', folder], {
        onStderr: (text, child) => {
          if (pattern.test(text) && !child.killed) child.kill(signal);
        },
      });
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toMatch(/advrec train --resume/);
      expect(JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).status).toBe('interrupted');
      // A config.json edited since the run started is refused, naming the field.
      const configFile = join(folder, 'config.json');
      const original = readFileSync(configFile, 'utf8');
      const edited = JSON.parse(original);
      edited.training.seed += 1;
      writeFileSync(configFile, JSON.stringify(edited));
      const refused = await advrec(['train', '--resume', folder]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--resume: .*another config.*training\.seed/);
      writeFileSync(configFile, original);
      const resumed = await advrec(['train', '--resume', folder]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resuming .* after \d+ epochs/);
      expect(historyOf(folder)).toEqual(historyOf(whole));
      const a = JSON.parse(readFileSync(join(whole, 'results.json'), 'utf8'));
      const b = JSON.parse(readFileSync(join(folder, 'results.json'), 'utf8'));
      expect(b.arms[0].ndcg10).toBe(a.arms[0].ndcg10);
    });

  it("evaluate: the sampled protocol gives the run's own test figures; full ranking ranks every item", async () => {
    const results = JSON.parse(readFileSync(join(whole, 'results.json'), 'utf8'));
    const sampled = await advrec(['--json', 'evaluate', '--run', whole]);
    expect(sampled.code, sampled.stderr).toBe(0);
    expect(JSON.parse(sampled.stdout).metrics['ndcg@10']).toBeCloseTo(results.arms[0].ndcg10, 12);
    const full = await advrec(['--json', 'evaluate', '--run', whole, '--protocol', 'full']);
    expect(full.code, full.stderr).toBe(0);
    const metrics = JSON.parse(full.stdout).metrics;
    expect(metrics['hr@20']).toBeGreaterThanOrEqual(metrics['hr@10']);
    // Among every item instead of 50 sampled ones: harder.
    expect(metrics['hr@10']).toBeLessThan(results.arms[0].hitRate10);
  });

  it('attack: FGM and random noise on the item embeddings, epsilon relative to the mean row norm', async () => {
    const r = await advrec(['--json', 'attack', '--run', whole, '--epsilons', '0.5,2']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.points.map((p: { adversary: string }) => p.adversary)).toEqual([
      'fgm',
      'fgm',
      'random',
      'random',
    ]);
    for (const point of report.points) {
      const change = point.relativeChange['ndcg@10'];
      expect(Number.isFinite(change)).toBe(true);
      // Absolute epsilon = relative epsilon x the mean item-row norm, the same for each point.
      expect(point.absoluteEpsilon / point.epsilon).toBeCloseTo(
        report.points[0].absoluteEpsilon / report.points[0].epsilon,
        10,
      );
      // Every change with its paired interval over users, as the pairwise sweep's.
      const interval = point.intervals['ndcg@10'];
      expect(interval.low).toBeLessThanOrEqual(change + 1e-12);
      expect(interval.high).toBeGreaterThanOrEqual(change - 1e-12);
      expect(interval.coversZero).toBe(interval.low <= 0 && interval.high >= 0);
      expect(point.draws).toBe(point.adversary === 'random' ? 3 : undefined);
    }
    expect(Array.isArray(report.warnings)).toBe(true);
    const refused = await advrec(['attack', '--run', whole, '--adversaries', 'example-pgd']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--adversaries: unknown adversary "example-pgd"; registered: .*fgsm/,
    );
    // The registered adversaries, built-in and plugin, on the item-embedding surface.
    const more = await advrec([
      '--plugin',
      '@advrec/example-plugin-pgd',
      '--json',
      'attack',
      '--run',
      whole,
      '--epsilons',
      '1',
      '--adversaries',
      'fgsm,pgd,example-pgd',
    ]);
    expect(more.code, more.stderr).toBe(0);
    const points = JSON.parse(more.stdout).points;
    expect(points.map((p: { adversary: string }) => p.adversary)).toEqual([
      'fgsm',
      'pgd',
      'example-pgd',
    ]);
    for (const point of points) expect(Number.isFinite(point.relativeChange['ndcg@10'])).toBe(true);
    // FGSM's L-infinity ball beside L2 balls at the same epsilon: said in words.
    const codes = JSON.parse(more.stdout).warnings.map((w: { code: string }) => w.code);
    expect(codes).toContain('norms-differ');
    expect(more.stderr).toMatch(/warning: fgsm \(L-infinity ball\)/);
  });

  it("recommend: after a user's sequence, or after items given on the command line", async () => {
    const firstUser = readFileSync(games, 'utf8').split(/\s+/)[0]!;
    const byUser = await advrec(['recommend', '--run', whole, '-u', firstUser, '-k', '5']);
    expect(byUser.code, byUser.stderr).toBe(0);
    const lists = JSON.parse(byUser.stdout);
    expect(lists[0].user).toBe(firstUser);
    expect(lists[0].items).toHaveLength(5);
    const items = readFileSync(games, 'utf8')
      .split('\n')
      .slice(0, 3)
      .map((line) => line.split(/\s+/)[1]!);
    const after = await advrec([
      'recommend',
      '--run',
      whole,
      '--items',
      items.join(','),
      '-k',
      '3',
    ]);
    expect(after.code, after.stderr).toBe(0);
    const next = JSON.parse(after.stdout)[0];
    expect(next.after).toBe(items.join(' '));
    expect(next.items.map((i: { item: string }) => i.item)).not.toContain(items[0]);
    const unknown = await advrec(['recommend', '--run', whole, '--items', 'no-such-item']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown item id no-such-item/);
  });

  it('export: safetensors with the item table and the run config, readable as numpy reads it', async () => {
    const out = join(work, 'sasrec.safetensors');
    const r = await advrec(['export', '--from', whole, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const header = safetensorsHeader(out);
    const results = JSON.parse(readFileSync(join(whole, 'results.json'), 'utf8'));
    expect(header.itemEmbeddings).toMatchObject({ dtype: 'F32' });
    expect(header.itemEmbeddings!.shape[1]).toBe(16);
    expect(header.itemEmbeddings!.shape[0]).toBeGreaterThanOrEqual(results.items);
    expect(JSON.stringify(header.__metadata__)).toMatch(/sasrec/);
  });

  it('sweep: a two-point grid over a sequential field, chosen on validation NDCG@10', async () => {
    const aggregate = await twoPointSweep(
      'sasrec-sweep',
      {
        data: { source: games },
        model: { name: 'sasrec', dimension: 16 },
        training: { epochs: 2, adversarialEpochs: 1, validateEvery: 1 },
        evaluation: { negatives: 50, attackEpsilons: [0.5] },
      },
      'model.dropout',
      [0.2, 0.5],
    );
    expect(aggregate.metric).toBe('ndcg@10');
    expect(aggregate.missing).toEqual([]);
    expect(aggregate.runs).toHaveLength(2);
    for (const run of aggregate.runs) {
      expect(run.validation).toBeGreaterThan(0);
      expect(Object.keys(run.test).sort()).toEqual(['hr@10', 'ndcg@10']);
    }
    expect(aggregate.best).not.toBeNull();
  });
});

describe('sequential runs refuse bad input by the field or line, before writing a run folder', () => {
  it.each([
    ['model.dimension=100000000', /invalid option model\.dimension: table itemEmbeddings/],
    ['model.maxLength=100000000', /invalid option model\.maxLength: table positionEmbeddings/],
    [
      'evaluation.negatives=5000',
      /invalid option evaluation\.negatives: must be below the \d+ items/,
    ],
  ])('--set %s', async (set, message) => {
    const out = join(work, `refused-${set.split('=')[0]}`);
    const r = await advrec([
      'train',
      '--model',
      'sasrec',
      '--data',
      games,
      '--set',
      set,
      '--out',
      out,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  });

  it('a timestamp that is not a number, with its file and line', async () => {
    const file = join(work, 'timed.txt');
    writeFileSync(file, 'u1 i1 100\nu1 i2 200\nu1 i3 NaN\n');
    const r = await advrec([
      'train',
      '--model',
      'sasrec',
      '--data',
      file,
      '--out',
      join(work, 'timed'),
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${file}:3: expected a numeric timestamp, found "NaN"`);
  });
});

describe("a plugin's sequential model (the example package) through every command", () => {
  const PLUGIN = ['--plugin', '@advrec/example-plugin-sequence-mean'];
  const PLUGIN_TRAIN = [
    'train',
    '--model',
    'sequence-mean',
    '--data',
    games,
    '--epochs',
    '40',
    '--adversarial-epochs',
    '4',
    '--set',
    'model.dimension=16',
    '--set',
    'training.validateEvery=2',
    '--set',
    'training.patience=100',
    '--set',
    'evaluation.negatives=50',
    '--set',
    'evaluation.attackEpsilons=[0.5]',
  ];
  const whole = join(work, 'plugin-whole');
  beforeAll(async () => {
    const r = await advrec([...PLUGIN, ...PLUGIN_TRAIN, '--out', whole]);
    expect(r.code, r.stderr).toBe(0);
  }, 240_000);

  it('records the plugin in the run folder; Ctrl-C and --resume give the uninterrupted history', async () => {
    expect(JSON.parse(readFileSync(join(whole, 'config.json'), 'utf8')).plugins).toEqual([
      '@advrec/example-plugin-sequence-mean',
    ]);
    // It brings no kernel: tfjs autodiff of its encoder trains it, and the record says why.
    const engine = JSON.parse(readFileSync(join(whole, 'run.json'), 'utf8')).engine;
    expect(engine.name).toBe('tfjs');
    expect(engine.details.declined).toEqual([
      'model-kernel: sequence-mean brings no hand-written gradient kernel',
    ]);
    const folder = join(work, 'plugin-stopped');
    const stopped = await advrec([...PLUGIN, ...PLUGIN_TRAIN, '--out', folder], {
      onStderr: (text, child) => {
        if (/sequence-mean epochs\s+(1[0-9]|[5-9])\//.test(text) && !child.killed)
          child.kill('SIGINT');
      },
    });
    expect(stopped.code, stopped.stderr).toBe(130);
    // The run folder names its plugin: --resume needs no --plugin.
    const resumed = await advrec(['train', '--resume', folder]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(historyOf(folder)).toEqual(historyOf(whole));
  });

  it('evaluate, attack, recommend and export take its run folder without --plugin', async () => {
    const evaluated = await advrec(['--json', 'evaluate', '--run', whole, '--protocol', 'full']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const metrics = JSON.parse(evaluated.stdout).metrics;
    expect(metrics['hr@20']).toBeGreaterThanOrEqual(metrics['hr@10']);
    expect(metrics['hr@20']).toBeLessThanOrEqual(1);
    const attacked = await advrec(['--json', 'attack', '--run', whole, '--epsilons', '1']);
    expect(attacked.code, attacked.stderr).toBe(0);
    expect(JSON.parse(attacked.stdout).points).toHaveLength(2);
    const firstUser = readFileSync(games, 'utf8').split(/\s+/)[0]!;
    const recommended = await advrec(['recommend', '--run', whole, '-u', firstUser, '-k', '3']);
    expect(recommended.code, recommended.stderr).toBe(0);
    expect(JSON.parse(recommended.stdout)[0].items).toHaveLength(3);
    const out = join(work, 'sequence-mean.safetensors');
    const exported = await advrec(['export', '--from', whole, '-o', out]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(Object.keys(safetensorsHeader(out))).toEqual(
      expect.arrayContaining(['itemEmbeddings', 'meanWeights', 'meanBias']),
    );
  });

  it('sweeps over its fields', async () => {
    const aggregate = await twoPointSweep(
      'plugin-sweep',
      {
        data: { source: games },
        model: { name: 'sequence-mean', dimension: 16 },
        training: { epochs: 4, validateEvery: 2 },
        evaluation: { negatives: 50, attackEpsilons: [] },
        plugins: ['@advrec/example-plugin-sequence-mean'],
      },
      'model.maxLength',
      [5, 20],
      PLUGIN,
    );
    expect(aggregate.runs.map((r) => r.id).sort()).toEqual(['maxLength=20', 'maxLength=5']);
    expect(aggregate.missing).toEqual([]);
  });
});
