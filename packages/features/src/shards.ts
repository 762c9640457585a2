/**
 * Sharded extraction: an image list cut into contiguous shards (each a whole number of
 * inference batches, so every batch holds the same images as in a single run), extracted
 * anywhere, then merged into the `.npy` and manifest a single {@link extractFeatures} call
 * writes, byte for byte.
 */
import { readFile } from 'node:fs/promises';
import { DataFormatError, readNpy, writeFileAtomic, writeNpy } from '@advrec/data';
import type { ExtractionOptions, FeatureManifest } from './extractor.js';

/** One shard of an image list: images `[start, end)`. */
export interface FeatureShard {
  readonly index: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Cuts `images` images into at most `shards` contiguous shards of whole batches of
 * `batchSize` (the last may be shorter), as even as whole batches allow. Extracting each shard
 * with the same batch size and merging them gives the bytes of one extraction of the list.
 */
export function planFeatureShards(images: number, shards: number, batchSize = 32): FeatureShard[] {
  if (!Number.isInteger(images) || images < 1)
    throw new RangeError(`planFeatureShards: images must be a positive integer, got ${images}`);
  if (!Number.isInteger(shards) || shards < 1)
    throw new RangeError(`planFeatureShards: shards must be a positive integer, got ${shards}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(
      `planFeatureShards: batchSize must be a positive integer, got ${batchSize}`,
    );
  const batches = Math.ceil(images / batchSize);
  const count = Math.min(shards, batches);
  const plan: FeatureShard[] = [];
  let batch = 0;
  for (let index = 0; index < count; index++) {
    const take = Math.floor(batches / count) + (index < batches % count ? 1 : 0);
    const start = batch * batchSize;
    batch += take;
    plan.push({ index, start, end: Math.min(images, batch * batchSize) });
  }
  return plan;
}

/** The fields of two shard manifests that must agree for their rows to be one matrix. */
const SAME = ['format', 'dimension', 'dtype', 'inputName', 'tensor', 'pooling'] as const;

/**
 * Merges shard outputs (float32 `.npy` files written by {@link extractFeatures}, each with
 * its `.manifest.json`, given in shard order) into `output` and its manifest: rows, item ids
 * and failed images concatenated, stored as `dtype`. The result has the bytes of a single
 * extraction of all the shards' images with the same model, tensor and batch size. Shards of
 * another model, tensor, preprocessing or dimension are refused, naming the shard.
 */
export async function mergeFeatureShards(
  shardFiles: readonly string[],
  output: string,
  options: { readonly dtype?: ExtractionOptions['dtype'] } = {},
): Promise<{ readonly manifest: FeatureManifest; readonly manifestFile: string }> {
  if (shardFiles.length === 0) throw new RangeError('mergeFeatureShards: no shards');
  if (!output.endsWith('.npy'))
    throw new RangeError(`mergeFeatureShards: output must end with .npy, got ${output}`);
  const manifests: FeatureManifest[] = [];
  for (const file of shardFiles) {
    const manifestFile = `${file}.manifest.json`;
    let manifest: FeatureManifest;
    try {
      manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as FeatureManifest;
    } catch (error) {
      throw new DataFormatError(
        { file: manifestFile },
        'the manifest of a finished feature shard',
        (error as Error).message,
      );
    }
    const first = manifests[0];
    const differs = first
      ? [
          ...SAME.filter((key) => manifest[key] !== first[key]),
          ...(manifest.model?.sha256 !== first.model.sha256 ? ['model.sha256'] : []),
          ...(JSON.stringify(manifest.preprocessing) !== JSON.stringify(first.preprocessing)
            ? ['preprocessing']
            : []),
        ]
      : manifest.format !== 'advrec-features/1' || manifest.dtype !== 'float32'
        ? ['format or dtype (shards are float32 advrec-features/1)']
        : [];
    if (differs.length > 0)
      throw new DataFormatError(
        { file: manifestFile },
        first ? `a shard of the same extraction as ${shardFiles[0]}` : 'a float32 feature shard',
        `a different ${differs.join(', ')}`,
      );
    manifests.push(manifest);
  }
  const first = manifests[0]!;
  const rows = manifests.reduce((n, m) => n + m.rows, 0);
  const matrix = new Float32Array(rows * first.dimension);
  let offset = 0;
  for (let k = 0; k < shardFiles.length; k++) {
    const shard = await readNpy(shardFiles[k]!);
    if (shard.rows !== manifests[k]!.rows || shard.dimension !== first.dimension)
      throw new DataFormatError(
        { file: shardFiles[k]! },
        `${manifests[k]!.rows} x ${first.dimension} features (its manifest)`,
        `${shard.rows} x ${shard.dimension}`,
      );
    matrix.set(shard.data, offset);
    offset += shard.data.length;
  }
  const dtype = options.dtype ?? 'float32';
  await writeNpy(output, matrix, rows, first.dimension, { dtype });
  // The same fields in the same order as extractFeatures writes them.
  const manifest: FeatureManifest = {
    format: 'advrec-features/1',
    itemIds: manifests.flatMap((m) => m.itemIds),
    rows,
    dimension: first.dimension,
    dtype,
    model: first.model,
    inputName: first.inputName,
    tensor: first.tensor,
    pooling: first.pooling,
    preprocessing: first.preprocessing,
    failed: manifests.flatMap((m) => m.failed),
    images: manifests.reduce((n, m) => n + m.images, 0),
  };
  const manifestFile = `${output}.manifest.json`;
  await writeFileAtomic(manifestFile, () => [JSON.stringify(manifest, null, 2) + '\n']);
  return { manifest, manifestFile };
}
