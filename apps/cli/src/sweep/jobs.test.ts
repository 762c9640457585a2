import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedDataDir } from '@advrec/testing';
import { asWorkerJob, runJob } from './jobs.js';
import type { FeatureShardJob } from './jobs.js';

const model = join(
  sharedDataDir(),
  '..',
  'models',
  'mobilenetv2-12-int8',
  'mobilenetv2-12-int8.onnx',
);
const posters = join(sharedDataDir(), 'ml-1m', 'posters');

describe('feature shard jobs', () => {
  it('reuse a leftover shard only when its record vouches for it: a flipped byte, a swapped shard or another image folder is extracted again', async () => {
    const work = mkdtempSync(join(tmpdir(), 'advrec-shards-'));
    const images = (folder: string, ids: number[]) =>
      ids.map((id) => ({ itemId: String(id), file: join(folder, `${id}.jpg`) }));
    const job = (shard: number, output: string, list = images(posters, [1, 2, 3, 4])) =>
      ({
        kind: 'features-shard',
        shard,
        output: join(work, output),
        model,
        images: list,
        batchSize: 2,
        threads: 1,
      }) satisfies FeatureShardJob;
    const first = await runJob(job(0, 'shard-0000.npy'));
    expect(first).toMatchObject({ status: 'extracted', rows: 4 });
    const bytes = readFileSync(join(work, 'shard-0000.npy'));
    expect(await runJob(job(0, 'shard-0000.npy'))).toMatchObject({ status: 'reused' });

    // A flipped byte in the leftover: extracted again, to the same bytes as the first time.
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 0x01;
    writeFileSync(join(work, 'shard-0000.npy'), flipped);
    expect(await runJob(job(0, 'shard-0000.npy'))).toMatchObject({ status: 'extracted' });
    expect(readFileSync(join(work, 'shard-0000.npy'))).toEqual(bytes);

    // Shard 1's job finding shard 0's files (two shards swapped): not reused.
    for (const suffix of ['', '.manifest.json', '.shard.json'])
      copyFileSync(join(work, `shard-0000.npy${suffix}`), join(work, `shard-0001.npy${suffix}`));
    const second = await runJob(job(1, 'shard-0001.npy', images(posters, [5, 6])));
    expect(second).toMatchObject({ status: 'extracted', rows: 2 });

    // The same file names in another image folder: not the same shard.
    const other = join(work, 'other-posters');
    mkdirSync(other);
    for (const id of [1, 2, 3, 4])
      copyFileSync(join(posters, `${id + 10}.jpg`), join(other, `${id}.jpg`));
    expect(await runJob(job(0, 'shard-0000.npy', images(other, [1, 2, 3, 4])))).toMatchObject({
      status: 'extracted',
    });
    expect(readFileSync(join(work, 'shard-0000.npy'))).not.toEqual(bytes);
  }, 60_000);
});

describe('jobs write only where their sweep writes', () => {
  const where = 'queue advrec, job sweep-1-0';
  const train = (over: Record<string, unknown>) => ({
    kind: 'train',
    sweep: '/data/sweeps/grid',
    runId: 'eps=0.5.seed=1',
    folder: '/data/sweeps/grid/runs/eps=0.5.seed=1',
    config: {},
    ...over,
  });
  const shard = (output: string) => ({
    kind: 'features-shard',
    shard: 0,
    output,
    model: '/m.onnx',
    images: [],
    batchSize: 8,
  });

  it('a run folder inside its sweep folder, and a shard in an <output>.shards folder, pass', () => {
    expect(asWorkerJob(train({}), where).kind).toBe('train');
    expect(asWorkerJob(shard('/out/features.npy.shards/shard-0003.npy'), where).kind).toBe(
      'features-shard',
    );
  });

  it.each([
    [
      { folder: '/etc/cron.d' },
      /its run folder "\/etc\/cron\.d" is not \/data\/sweeps\/grid\/runs\/eps=0\.5\.seed=1/,
    ],
    [
      { runId: '../../elsewhere', folder: '/data/sweeps/elsewhere' },
      /its run id "\.\.\/\.\.\/elsewhere" is not a plain folder name/,
    ],
    [
      { sweep: 'relative/grid', folder: 'relative/grid/runs/eps=0.5.seed=1' },
      /not an absolute path/,
    ],
  ])('a train job that would write elsewhere is refused, naming the job (%o)', (over, message) => {
    expect(() => asWorkerJob(train(over), where)).toThrow(message);
    expect(() => asWorkerJob(train(over), where)).toThrow(/queue advrec, job sweep-1-0/);
  });

  it('a shard job that would write elsewhere is refused', () => {
    for (const output of ['/home/user/.bashrc', 'features.npy.shards/shard-0001.npy'])
      expect(() => asWorkerJob(shard(output), where)).toThrow(
        /is not an absolute <output>\.shards\/shard-<n>\.npy/,
      );
  });
});
