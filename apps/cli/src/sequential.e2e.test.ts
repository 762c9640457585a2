/**
 * Sequential run folders through every command, as a user runs them: train, Ctrl-C and
 * SIGTERM mid-run (exit 130, last.ckpt, run.json interrupted), --resume (the history of an
 * uninterrupted run, to the bit), evaluate under both protocols, attack, recommend.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
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

describe('a sequential run folder through every command', () => {
  const whole = join(work, 'whole');
  beforeAll(async () => {
    const r = await advrec([...TRAIN, '--out', whole]);
    expect(r.code, r.stderr).toBe(0);
  }, 240_000);

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
      expect(Number.isFinite(point.relativeChange['ndcg@10'])).toBe(true);
      // Absolute epsilon = relative epsilon x the mean item-row norm, the same for each point.
      expect(point.epsilon / point.relativeEpsilon).toBeCloseTo(
        report.points[0].epsilon / report.points[0].relativeEpsilon,
        10,
      );
    }
    const refused = await advrec(['attack', '--run', whole, '--adversaries', 'pgd']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--adversaries: a sequential model is attacked with fgm or random/,
    );
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
});
