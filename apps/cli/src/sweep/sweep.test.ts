import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderHeatmapSvg } from '../run-folder/report.js';
import { aggregateSweep, expandSweep as expand, readSweepFile as read } from '@advrec/sweep';
import type { SweepRunResult, SweepSpec } from '@advrec/sweep';
import type { ResolvedRunConfig } from '../config.js';
import { sweepConfigHooks } from './config-hooks.js';
import { sweepSections } from './sections.js';

const readSweepFile = (file: string): Promise<SweepSpec> => read(file, sweepConfigHooks);
const expandSweep = (spec: SweepSpec, cwd?: string) => expand(spec, sweepConfigHooks, cwd);

const dir = mkdtempSync(join(tmpdir(), 'advrec-sweep-spec-'));

function sweepFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('sweep files', () => {
  it('reads a base config relative to the sweep file and expands axes x seeds in grid order', async () => {
    writeFileSync(
      join(dir, 'base.yaml'),
      'data: { source: synthetic, validation: true }\nmodel: { name: mf, embeddingSize: 8 }\ntraining: { epochs: 2 }\n',
    );
    const spec = await readSweepFile(
      sweepFile(
        'grid.yaml',
        'base: base.yaml\nset: [training.adversarialEpochs=1]\naxes:\n  training.adversarial.epsilon: [0.1, 1]\n  training.l2: [0, 0.001]\n  model.name: [mf]\nseeds: [3, 4]\n',
      ),
    );
    expect(spec.axes.map((a) => a.name)).toEqual(['epsilon', 'l2', 'name']);
    const plan = expandSweep(spec, dir);
    expect(plan.runs.map((r) => r.id)).toEqual([
      'epsilon=0.1_l2=0_name=mf_seed=3',
      'epsilon=0.1_l2=0_name=mf_seed=4',
      'epsilon=0.1_l2=0.001_name=mf_seed=3',
      'epsilon=0.1_l2=0.001_name=mf_seed=4',
      'epsilon=1_l2=0_name=mf_seed=3',
      'epsilon=1_l2=0_name=mf_seed=4',
      'epsilon=1_l2=0.001_name=mf_seed=3',
      'epsilon=1_l2=0.001_name=mf_seed=4',
    ]);
    const last = plan.runs.at(-1)!.resolved as ResolvedRunConfig;
    expect(last.training.adversarial.epsilon).toBe(1);
    expect(last.training.l2).toBe(0.001);
    expect(last.training.adversarialEpochs).toBe(1);
    expect(last.model.seed).toBe(4);
    expect(last.training.seed).toBe(4);
    // The split keeps its own seed: every run is tested on the same held-out interactions.
    expect(
      new Set(plan.runs.map((r) => (r.resolved as ResolvedRunConfig).data.split.seed)).size,
    ).toBe(1);
    expect(plan.runs[0]!.configuration).toBe(plan.runs[1]!.configuration);
    expect(plan.runs[0]!.configuration).not.toBe(plan.runs[2]!.configuration);
    expect(plan.metric).toBe(last.training.validation.metric);
    // Same sweep, same fingerprint; another value, another one.
    expect(expandSweep(spec, dir).fingerprint).toBe(plan.fingerprint);
    const other = expandSweep({ ...spec, seeds: [3] }, dir);
    expect(other.fingerprint).not.toBe(plan.fingerprint);
  });

  it('takes lists as axis values (the perturbed surfaces), in run names, configs and heat-map labels', async () => {
    const spec = await readSweepFile(
      sweepFile(
        'surfaces.yaml',
        'config: { data: { source: synthetic, validation: true }, model: { name: vbpr } }\naxes:\n  training.adversarial.surfaces: [[itemFeatures], [userEmbeddings, itemEmbeddings]]\n',
      ),
    );
    const plan = expandSweep(spec, dir);
    expect(plan.runs.map((r) => r.id)).toEqual([
      'surfaces=itemFeatures',
      'surfaces=userEmbeddings-itemEmbeddings',
    ]);
    expect((plan.runs[1]!.resolved as ResolvedRunConfig).training.adversarial.surfaces).toEqual([
      'userEmbeddings',
      'itemEmbeddings',
    ]);
  });

  it('makes relative data paths absolute, so that workers started elsewhere read the same files', async () => {
    writeFileSync(join(dir, 'u.data'), '1\t1\t5\t1\n');
    const spec = await readSweepFile(
      sweepFile(
        'paths.yaml',
        'config: { data: { source: u.data, validation: true }, model: { name: mf } }\n',
      ),
    );
    const plan = expandSweep(spec, dir);
    expect(plan.runs).toHaveLength(1);
    expect(plan.runs[0]!.id).toBe('run');
    expect((plan.runs[0]!.config.data as { source: string }).source).toBe(join(dir, 'u.data'));
  });

  it('names every problem of a sweep file with its field', async () => {
    await expect(
      readSweepFile(
        sweepFile(
          'bad.yaml',
          'config: { model: { name: mf } }\nbase: x.yaml\nextra: 1\naxes:\n  "bad path": [1]\n  training.l2: []\n  training.seed: [1]\n  training.epochs: [{ a: 1 }]\nseeds: [1, -2]\n',
        ),
      ),
    ).rejects.toThrow(
      /extra: unknown field.*base: give either base.*axes\.bad path: must be a dotted config path.*axes\.training\.l2: must be a non-empty list.*axes\.training\.epochs: values must be numbers, strings, booleans or lists of them.*seeds: must be a non-empty list of integers >= 0/s,
    );
    const seedAxis = await readSweepFile(
      sweepFile('seed-axis.yaml', 'config: {}\naxes: { model.seed: [1, 2] }\nseeds: [1]\n'),
    ).catch((e: Error) => e);
    expect(String(seedAxis)).toMatch(/axes\.model\.seed: seeds are given by the seeds list/);
    // A seed written in the sweep file beside the seeds list would be dropped: refused.
    const seedSet = await readSweepFile(
      sweepFile(
        'seed-set.yaml',
        'config: { model: { seed: 3 } }\nset: [training.seed=7, training.l2=0]\nseeds: [1, 2]\n',
      ),
    ).catch((e: Error) => e);
    expect(String(seedSet)).toMatch(/set\[0\]: training\.seed is set by the seeds list/);
    expect(String(seedSet)).toMatch(/config\.model\.seed: is set by the seeds list/);
    expect(String(seedSet)).not.toMatch(/set\[1\]/);
    // A value the run config refuses is reported with its run.
    const spec = await readSweepFile(
      sweepFile(
        'bad-value.yaml',
        'config: { data: { source: synthetic, validation: true }, model: { name: mf } }\naxes: { training.optimizer.learningRate: [0.05, -1] }\n',
      ),
    );
    expect(() => expandSweep(spec, dir)).toThrow(
      /training\.optimizer\.learningRate: .*\(run learningRate=-1\)/,
    );
    const huge = await readSweepFile(
      sweepFile(
        'huge.yaml',
        `config: {}\naxes:\n  training.l2: [${Array.from({ length: 101 }, (_, k) => k).join(', ')}]\n  training.epochs: [${Array.from({ length: 100 }, (_, k) => k + 1).join(', ')}]\n`,
      ),
    );
    expect(() => expandSweep(huge, dir)).toThrow(/expands to 10100 runs, more than 10000/);
  });
});

describe('aggregating a sweep', () => {
  it('averages over seeds, picks the best mean validation (never test), lists failed runs and draws heat maps', async () => {
    const spec = await readSweepFile(
      sweepFile(
        'agg.yaml',
        'config: { data: { source: synthetic, validation: true }, model: { name: mf }, training: { validation: { metric: ndcg@20 } } }\naxes:\n  training.adversarial.epsilon: [0.1, 1]\n  training.adversarial.adversarialWeight: [1, 10]\nseeds: [1, 2]\n',
      ),
    );
    const plan = expandSweep(spec, dir);
    const results = new Map<string, SweepRunResult>();
    plan.runs.forEach((run, k) => {
      if (run.id === 'epsilon=1_adversarialWeight=10_seed=2') return; // a failed run
      // Validation favours epsilon 1 / lambda 1; test favours epsilon 0.1 / lambda 10.
      const validation = run.point.epsilon === 1 && run.point.adversarialWeight === 1 ? 0.3 : 0.2;
      const test = run.point.epsilon === 0.1 && run.point.adversarialWeight === 10 ? 0.5 : 0.1;
      results.set(run.id, {
        id: run.id,
        point: run.point,
        seed: run.seed,
        validation: validation + (run.seed === 1 ? 0.01 : -0.01),
        validationEpoch: k,
        test: { 'ndcg@20': test },
        robustness: { 'fgm@0.5': { 'ndcg@20': run.seed === 1 ? -0.1 : -0.3 } },
      });
    });
    const aggregate = aggregateSweep(plan, results);
    expect(aggregate.missing).toEqual(['epsilon=1_adversarialWeight=10_seed=2']);
    expect(aggregate.best!.point).toEqual({ epsilon: 1, adversarialWeight: 1 });
    expect(aggregate.best!.validation.mean).toBeCloseTo(0.3, 12);
    // Sample standard deviation of 0.31 and 0.29.
    expect(aggregate.best!.validation.std).toBeCloseTo(Math.SQRT2 * 0.01, 12);
    const lonely = aggregate.configurations.find(
      (c) => c.point.epsilon === 1 && c.point.adversarialWeight === 10,
    )!;
    expect(lonely.validation.mean).toBeCloseTo(0.21, 12);
    expect(lonely.validation).toMatchObject({ std: 0, n: 1 });
    expect(aggregate.best!.robustness['fgm@0.5']!['ndcg@20']!.mean).toBeCloseTo(-0.2, 12);
    const sections = sweepSections(aggregate);
    const robust = sections.find((s) => s.kind === 'table' && s.title.startsWith('Robustness'));
    expect(robust?.kind === 'table' && robust.rows[0]).toEqual(['1', '1', '-20.0% ± 14.1%']);
    const heat = sections.find((s) => s.kind === 'heatmap' && s.id === 'sweep-validation');
    if (heat?.kind !== 'heatmap') throw new Error('no validation heat map');
    expect(heat.map.yValues).toEqual(['0.1', '1']);
    expect(heat.map.xValues).toEqual(['1', '10']);
    expect(heat.map.highlight).toEqual([1, 0]);
    expect(heat.map.cells[1]![0]).toBeCloseTo(0.3, 12);
    const svg = renderHeatmapSvg(heat.map, heat.title);
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('stroke="#d62728"');
    const runs = sections.find((s) => s.kind === 'table' && s.title === 'Runs');
    expect(runs?.kind === 'table' && runs.rows.at(-1)).toEqual([
      'epsilon=1_adversarialWeight=10_seed=2',
      '-',
      'failed',
      '-',
      '-',
    ]);
  });
});

describe('the example sweeps', () => {
  it('every file in sweeps/ expands into runs that resolve', async () => {
    const folder = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sweeps');
    const names = readdirSync(folder);
    expect(names.length).toBeGreaterThanOrEqual(1);
    for (const name of names) {
      const plan = expandSweep(await readSweepFile(join(folder, name)));
      expect(plan.runs.length, name).toBeGreaterThan(1);
    }
  });
});
