import { mkdir, readdir } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { ConfigError, DataFormatError } from '@advrec/data';
import { extractFeatures, knownExtractor } from '@advrec/features';
import { emit } from '../context.js';
import type { CommandContext } from '../context.js';

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
