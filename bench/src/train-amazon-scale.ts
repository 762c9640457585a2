/**
 * `pnpm bench train-amazon-scale`: the Amazon-scale part of `pnpm bench train` alone (VBPR
 * and AMR over 83,337 users, 299,555 items and 2048-d features: batch times scaled to an
 * epoch, and the peak RSS against an 8 GiB budget), for when the throughput variants of
 * `train` cannot run on a quiet machine.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from './context.js';
import { measureAmazonScale } from './train.js';

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const figures = measureAmazonScale(root, sharedData);
  log(JSON.stringify(figures));
  return Promise.resolve(figures);
}
