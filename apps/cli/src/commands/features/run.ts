import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { ConfigError, DataFormatError } from '@advrec/data';
import {
  extractFeatures,
  knownExtractor,
  mergeFeatureShards,
  planFeatureShards,
} from '@advrec/features';
import type { ImageEntry } from '@advrec/features';
import { checkQueue, runLocalPool, runOnQueue } from '@advrec/sweep';
import type { JobEvents, JobFailedError } from '@advrec/sweep';
import { sweepJobRunnerModule } from '../../sweep/jobs.js';
import type { FeatureShardJob } from '../../sweep/jobs.js';
import { emit } from '../../run-folder/context.js';
import type { CommandContext } from '../../run-folder/context.js';

/** Options of `advrec features`. */
export interface FeaturesOptions {
  readonly model: string;
  readonly images: string;
  readonly out: string;
  readonly tensor?: string;
  readonly input?: string;
  readonly extractor?: string;
  readonly batchSize?: number;
  readonly dtype?: 'float32' | 'float16';
  readonly idOffset?: number;
  readonly threads?: number;
  readonly limit?: number;
  /** Cut the images into this many shards (whole batches), extracted by workers, then merged. */
  readonly shards?: number;
  /** Shards at once in the in-process pool (each in its own thread). */
  readonly workers?: number;
  /** A Redis URL: the shards go to `advrec worker` processes. */
  readonly queue?: string;
  readonly queueName?: string;
  /** Seconds a Redis server that stopped answering is waited for (default 30). */
  readonly queueWait?: number;
}

const IMAGE = new Set(['.jpg', '.jpeg', '.png', '.webp']);

/**
 * `advrec features`: CNN features of every image in a folder (item id = file name without
 * extension, shifted by `--id-offset` when numeric), resumable, with a manifest.
 */
export async function featuresCommand(
  options: FeaturesOptions,
  context: CommandContext,
): Promise<number> {
  const known = options.extractor ? knownExtractor(options.extractor, '--extractor') : null;
  const tensor = options.tensor ?? known?.tensor;
  const input = options.input ?? known?.inputName;
  const folder = resolve(options.images);
  let names: string[];
  try {
    names = (await readdir(folder))
      .filter((n) => IMAGE.has(extname(n).toLowerCase()))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch (error) {
    throw new DataFormatError(
      { file: folder },
      'a folder of images (--images)',
      (error as Error).message,
    );
  }
  if (options.limit !== undefined) names = names.slice(0, options.limit);
  if (names.length === 0)
    throw new DataFormatError({ file: folder }, 'at least one .jpg/.jpeg/.png/.webp image', 'none');
  const offset = options.idOffset ?? 0;
  const images = names.map((name) => {
    const stem = name.slice(0, name.length - extname(name).length);
    if (offset !== 0 && !/^\d+$/.test(stem))
      throw new ConfigError([
        { path: '--id-offset', message: `needs numeric file names, got ${name}` },
      ]);
    return {
      itemId: offset !== 0 ? String(Number(stem) + offset) : stem,
      file: join(folder, name),
    };
  });
  await mkdir(dirname(resolve(options.out)), { recursive: true });
  if (options.shards !== undefined || options.workers !== undefined || options.queue !== undefined)
    return shardedFeatures(options, images, { tensor, input }, context);
  const bar = context.progress.bar('extracting features (images)', images.length);
  const result = await extractFeatures({
    model: resolve(options.model),
    images,
    output: resolve(options.out),
    ...(tensor ? { tensor } : {}),
    ...(input ? { inputName: input } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.dtype ? { dtype: options.dtype } : {}),
    ...(options.threads ? { threads: options.threads } : {}),
    signal: context.signal,
    onProgress: (p) => bar.update(p.done, `${p.failed} failed`),
  });
  bar.finish(`${result.imagesPerSecond.toFixed(1)} images/s`);
  const m = result.manifest;
  emit(
    context,
    {
      output: resolve(options.out),
      manifestFile: result.manifestFile,
      rows: m.rows,
      dimension: m.dimension,
      failed: m.failed,
      imagesPerSecond: result.imagesPerSecond,
      resumedFrom: result.resumedFrom,
    },
    () =>
      [
        `${m.rows} x ${m.dimension} ${m.dtype} features from tensor ${m.tensor} (${m.pooling}) of ${m.model.file}`,
        `failed: ${m.failed.length}${m.failed.map((f) => `\n  ${f.file}: ${f.reason}`).join('')}`,
        `written: ${resolve(options.out)} and ${result.manifestFile}`,
      ].join('\n'),
  );
  return 0;
}

/**
 * Sharded extraction: the images cut into shards of whole batches, each extracted by a worker
 * (the in-process pool, or \`advrec worker\` processes through a Redis queue) into
 * \`<out>.shards/\`, then merged into the \`.npy\` and manifest a single run writes, byte for
 * byte. Shards already extracted (an earlier, interrupted attempt) are kept.
 */
async function shardedFeatures(
  options: FeaturesOptions,
  images: readonly ImageEntry[],
  names: { tensor: string | undefined; input: string | undefined },
  context: CommandContext,
): Promise<number> {
  if (options.queue !== undefined && options.workers !== undefined)
    throw new ConfigError([
      {
        path: '--workers',
        message:
          'runs shards in the in-process pool; with --queue they go to advrec worker processes',
      },
    ]);
  const batchSize = options.batchSize ?? 32;
  const output = resolve(options.out);
  const model = resolve(options.model);
  const shards = planFeatureShards(
    images.length,
    options.shards ?? (options.queue !== undefined ? 8 : (options.workers ?? 1)),
    batchSize,
  );
  if (options.queue !== undefined) await checkQueue(options.queue);
  const folder = `${output}.shards`;
  await mkdir(folder, { recursive: true });
  const salt = createHash('sha256')
    .update(JSON.stringify([output, model, names, batchSize, options.threads ?? null, images]))
    .digest('hex')
    .slice(0, 16);
  const items = shards.map((shard) => {
    const job: FeatureShardJob = {
      kind: 'features-shard',
      shard: shard.index,
      output: join(folder, `shard-${String(shard.index).padStart(4, '0')}.npy`),
      model,
      images: images.slice(shard.start, shard.end),
      batchSize,
      ...(names.tensor ? { tensor: names.tensor } : {}),
      ...(names.input ? { inputName: names.input } : {}),
      ...(options.threads ? { threads: options.threads } : {}),
    };
    return { id: `shard ${shard.index}`, key: `features-${salt}-${shard.index}`, job };
  });
  const where =
    options.queue !== undefined
      ? `queue ${options.queue}, served by advrec worker processes`
      : `in-process pool, ${options.workers ?? 1} worker(s)`;
  context.progress.log(
    `${images.length} images in ${shards.length} shards of whole batches of ${batchSize}, on the ${where}`,
  );
  const bar = context.progress.bar('feature shards', items.length);
  const failures: JobFailedError[] = [];
  let done = 0;
  const events: JobEvents<(typeof items)[number]> = {
    onDone: () => bar.update(++done),
    onFail: (item, error) => {
      failures.push(error);
      context.progress.log(`${item.id} failed: ${error.message}`);
    },
  };
  const started = performance.now();
  if (options.queue !== undefined) {
    await runOnQueue(options.queue, options.queueName ?? 'advrec', items, events, context.signal, {
      ...(options.queueWait !== undefined ? { lostAfterMs: options.queueWait * 1000 } : {}),
      log: (line) => context.progress.log(line),
    });
  } else
    await runLocalPool(items, {
      workers: options.workers ?? 1,
      runnerModule: sweepJobRunnerModule(),
      events,
      signal: context.signal,
    });
  if (context.signal.aborted) return 130;
  if (failures.length > 0) return failures[0]!.exitCode || 1;
  const { manifest, manifestFile } = await mergeFeatureShards(
    items.map((i) => i.job.output),
    output,
    { dtype: options.dtype ?? 'float32' },
  );
  await rm(folder, { recursive: true, force: true });
  const seconds = (performance.now() - started) / 1000;
  bar.finish(`${(images.length / seconds).toFixed(1)} images/s`);
  emit(
    context,
    {
      output,
      manifestFile,
      rows: manifest.rows,
      dimension: manifest.dimension,
      failed: manifest.failed,
      shards: shards.length,
      imagesPerSecond: images.length / seconds,
    },
    () =>
      [
        `${manifest.rows} x ${manifest.dimension} ${manifest.dtype} features from tensor ${manifest.tensor} (${manifest.pooling}), ${shards.length} shards merged`,
        `failed: ${manifest.failed.length}${manifest.failed.map((f) => `\n  ${f.file}: ${f.reason}`).join('')}`,
        `written: ${output} and ${manifestFile}`,
      ].join('\n'),
  );
  return 0;
}
