/**
 * `pnpm bench train-overheads`: the trainer-overhead part of `pnpm bench train` alone: the
 * deterministic mode's rate with a CPU-bound process competing for the cores (interleaved
 * with idle runs; target 0.67 of idle), and the trainer end to end with validation every 10
 * epochs against its engine's rate (target 0.9), on Gowalla.
 */
import type { BenchContext } from './context.js';
import { gowalla, measureTrainerOverheads } from './train.js';

export async function run({ sharedData, log }: BenchContext): Promise<Record<string, unknown>> {
  return measureTrainerOverheads(await gowalla(sharedData), log);
}
