/**
 * The engine seam. An {@link Engine} trains epochs of one model; an
 * {@link EngineProvider} says whether it can train a (model, adversary, config) and, if
 * not, why. The trainer asks the registered providers in priority order (the fused MF
 * kernel, then the generic engine over the Model contract) and takes the first that
 * accepts; when none does, the error lists every provider's reason (as onnxruntime-common's
 * `resolveBackend` does). Plugins register providers of their own.
 */
import { ConfigError, globalRegistry } from '@advrec/data';
import type { TripleSampler } from '@advrec/data';
import type { Adversary } from '@advrec/adversary';
import type { JsonObject, Model } from '@advrec/models';
import type { OptimizerState } from './optimizer.js';
import type { ResolvedTrainConfig } from './config.js';

/** Totals of one epoch. */
export interface EpochStats {
  /** Sum of the clean BPR loss over the epoch's triples (before each update). */
  readonly loss: number;
  /** Sum of lambda * the adversarial BPR loss (0 in BPR epochs). */
  readonly adversarialLoss: number;
  /** Fraction of triples with y_ui > y_uj (clean), before each update. */
  readonly trainAccuracy: number;
  /** Fraction of triples with y_ui > y_uj under the adversary's perturbation (APR epochs; NaN otherwise). */
  readonly adversarialAccuracy: number;
  readonly triples: number;
  readonly seconds: number;
  readonly triplesPerSecond: number;
  /** Of `seconds`, the time spent copying tables into and out of a kernel's memory (fused engines). */
  readonly copySeconds?: number;
  /** Sum of squares of the trainable tables after the epoch, when the engine computed it (else the trainer does). */
  readonly parameterNorm?: number;
}

/** What one batch (or one worker's share of an epoch) adds to the epoch's totals. */
export interface BatchTotals {
  readonly loss: number;
  readonly adversarialLoss: number;
  /** Triples with a positive clean margin. */
  readonly correct: number;
  /** Triples with a positive margin under the perturbation. */
  readonly adversarialCorrect: number;
  readonly triples: number;
}

/** The one accumulator of an epoch's totals, shared by every engine. */
export class EpochTotals {
  private readonly started = performance.now();
  private loss = 0;
  private adversarialLoss = 0;
  private correct = 0;
  private adversarialCorrect = 0;
  private triples = 0;

  constructor(private readonly adversarial: boolean) {}

  add(batch: BatchTotals): void {
    this.loss += batch.loss;
    this.adversarialLoss += batch.adversarialLoss;
    this.correct += batch.correct;
    this.adversarialCorrect += batch.adversarialCorrect;
    this.triples += batch.triples;
  }

  /** The epoch's {@link EpochStats}, timed from this accumulator's creation. */
  finish(copySeconds?: number): EpochStats {
    const seconds = (performance.now() - this.started) / 1000;
    const t = this.triples;
    return {
      ...(copySeconds === undefined ? {} : { copySeconds }),
      loss: this.loss,
      adversarialLoss: this.adversarialLoss,
      trainAccuracy: t > 0 ? this.correct / t : 0,
      adversarialAccuracy: this.adversarial && t > 0 ? this.adversarialCorrect / t : Number.NaN,
      triples: t,
      seconds,
      triplesPerSecond: t / seconds,
    };
  }
}

/** What the run record says about the engine in use (a structured field, not a log line). */
export interface EngineInfo {
  /** The provider's name (`fused-mf`, `generic`, or a plugin's). */
  readonly name: string;
  /** One line for logs and reports. */
  readonly description: string;
  /** Threads it trains with. */
  readonly threads: number;
  /** Provider-specific facts (mode, algorithm, dense-product backend, ...). */
  readonly details: JsonObject;
}

/** Trains epochs of one model. */
export interface Engine {
  readonly info: EngineInfo;
  /** Optimiser steps taken (Adam's bias correction counts them). */
  readonly step: number;
  /**
   * One epoch (every batch of `epoch`), BPR or APR. An engine checks `signal` between
   * batches where it can and then stops with the signal's reason.
   */
  trainEpoch(
    epoch: number,
    adversarial: boolean,
    signal?: AbortSignal,
  ): EpochStats | Promise<EpochStats>;
  /** Stops worker threads and releases native resources. */
  close(): Promise<void>;
}

/** Everything a provider needs to build an engine. */
export interface EngineContext {
  readonly model: Model;
  readonly sampler: TripleSampler;
  readonly config: ResolvedTrainConfig;
  readonly adversary: Adversary;
  /** Optimiser state per trainable table, in `model.trainableTables` order. */
  readonly states: readonly OptimizerState[];
  /** The optimiser step to continue from (resumed runs). */
  readonly step: number;
}

/** A provider's answer to "can you train this?". */
export type EngineSupport =
  { readonly supported: true } | { readonly supported: false; readonly reason: string };

/** Builds engines for the (model, adversary, config) combinations it declares. */
export interface EngineProvider {
  /** Name used in `engine: <name>` configs and in the run record. */
  readonly name: string;
  /** Higher is tried first (fused MF kernel 100, generic 0). */
  readonly priority: number;
  readonly description: string;
  supports(model: Model, adversary: Adversary, config: ResolvedTrainConfig): EngineSupport;
  create(context: EngineContext): Promise<Engine>;
}

/** Shared by every installed copy of this package (`Symbol.for('advrec.registry.engine')`). */
const providers = globalRegistry<EngineProvider>('engine');

/** Registers an engine provider (a different one under a taken name throws). */
export function registerEngineProvider(provider: EngineProvider): void {
  const existing = providers.get(provider.name);
  if (existing && existing !== provider)
    throw new ConfigError([
      {
        path: 'engine',
        message: `an engine provider named "${provider.name}" is already registered`,
      },
    ]);
  providers.set(provider.name, provider);
}

/** The provider registered under `name`, if any. */
export function getEngineProvider(name: string): EngineProvider | undefined {
  return providers.get(name);
}

/** The registered providers, highest priority first. */
export function listEngineProviders(): EngineProvider[] {
  return [...providers.values()].sort(
    (a, b) => b.priority - a.priority || a.name.localeCompare(b.name),
  );
}

/**
 * The provider that trains `model` with `adversary` under `config`: the one `config.engine`
 * names, or with `auto` the first in priority order that supports it. Throws a
 * {@link ConfigError} at `engine` listing every provider's reason when none does.
 */
export function selectEngineProvider(
  model: Model,
  adversary: Adversary,
  config: ResolvedTrainConfig,
): EngineProvider {
  const all = listEngineProviders();
  if (config.engine !== 'auto') {
    const provider = providers.get(config.engine);
    if (!provider)
      throw new ConfigError([
        {
          path: 'engine',
          message: `unknown engine "${config.engine}"; registered: auto, ${all.map((p) => p.name).join(', ')}`,
        },
      ]);
    const support = provider.supports(model, adversary, config);
    if (!support.supported)
      throw new ConfigError([
        { path: 'engine', message: `engine ${provider.name}: ${support.reason}` },
      ]);
    return provider;
  }
  const refusals: string[] = [];
  for (const provider of all) {
    const support = provider.supports(model, adversary, config);
    if (support.supported) return provider;
    refusals.push(`${provider.name}: ${support.reason}`);
  }
  throw new ConfigError([
    {
      path: 'engine',
      message: `no engine trains ${model.modelName} with adversary ${adversary.adversaryName} under this config (${refusals.join('; ')})`,
    },
  ]);
}
