import type { Dataset } from '@advrec/data';
import { MatrixFactorization, VisualBPR, cloneTable } from '@advrec/models';
import type { VisualBPRConfig } from '@advrec/models';
import { Trainer } from './trainer.js';
import type { TrainConfig } from './config.js';
import type { PhaseResult, TrainCallbacks } from './trainer.js';

/** Options of {@link trainAmrChain}; every default is the AMR paper's. */
export interface AmrChainOptions {
  /** Item features aligned to the dataset's dense item ids (`numItems x D`). */
  readonly features: { readonly data: Float32Array; readonly dimension: number };
  /** K (default 64). */
  readonly embeddingSize?: number;
  /** Training config shared by the three stages (default: Adagrad lr 0.05, batch 512). */
  readonly train?: TrainConfig;
  readonly mfEpochs?: number;
  readonly vbprEpochs?: number;
  readonly amrEpochs?: number;
  /** Perturbation size on the image features (default 0.1, the paper's best on Pinterest; tune on validation). */
  readonly epsilon?: number;
  /** lambda (default 1). */
  readonly adversarialWeight?: number;
  /** VBPR variant (default the paper's Eq. 4). */
  readonly vbpr?: VisualBPRConfig;
  /** Also continue VBPR for as many epochs as AMR, as the paper's comparison (default true). */
  readonly continueVbpr?: boolean;
  readonly callbacks?: (stage: 'mf' | 'vbpr' | 'vbpr-continued' | 'amr') => TrainCallbacks;
}

/** The three stages' models and training records. */
export interface AmrChainResult {
  readonly mf: MatrixFactorization;
  readonly vbpr: VisualBPR;
  readonly vbprContinued: VisualBPR | null;
  readonly amr: VisualBPR;
  readonly phases: {
    readonly mf: PhaseResult;
    readonly vbpr: PhaseResult;
    readonly vbprContinued: PhaseResult | null;
    readonly amr: PhaseResult;
  };
}

/**
 * AMR Algorithm 1 as a chain: MF-BPR, then VBPR initialised from MF's embeddings, then AMR
 * (BPR + lambda * BPR under FGM perturbations of the image features) initialised from
 * VBPR, with VBPR continued from the same parameters for comparison. Each stage keeps its
 * best validation epoch when the dataset has a validation split.
 */
export async function trainAmrChain(
  dataset: Dataset,
  options: AmrChainOptions,
): Promise<AmrChainResult> {
  const k = options.embeddingSize ?? 64;
  const base = options.train ?? {};
  const run = async (
    stage: 'mf' | 'vbpr' | 'vbpr-continued' | 'amr',
    model: MatrixFactorization | VisualBPR,
    epochs: number,
    adversarial: boolean,
    config: TrainConfig,
  ): Promise<PhaseResult> => {
    const trainer = await Trainer.create(model, dataset, config, options.callbacks?.(stage) ?? {});
    try {
      return await trainer.runPhase({ epochs, adversarial });
    } finally {
      await trainer.close();
    }
  };
  const mf = new MatrixFactorization(dataset, { embeddingSize: k, seed: base.seed ?? 0 });
  const mfPhase = await run('mf', mf, options.mfEpochs ?? 100, false, base);
  const vbpr = VisualBPR.fromMatrixFactorization(
    mf,
    options.features,
    { seed: base.seed ?? 0, ...options.vbpr },
    dataset.train,
  );
  const vbprPhase = await run('vbpr', vbpr, options.vbprEpochs ?? 50, false, base);
  const copy = (): VisualBPR =>
    new VisualBPR(dataset, null, vbpr.config, { tables: vbpr.tables.map(cloneTable) });
  const amrEpochs = options.amrEpochs ?? 50;
  let vbprContinued: VisualBPR | null = null;
  let continuedPhase: PhaseResult | null = null;
  if (options.continueVbpr ?? true) {
    vbprContinued = copy();
    continuedPhase = await run('vbpr-continued', vbprContinued, amrEpochs, false, base);
  }
  const amr = copy();
  const amrPhase = await run('amr', amr, amrEpochs, true, {
    ...base,
    adversarial: {
      adversary: 'fgm',
      epsilon: options.epsilon ?? 0.1,
      adversarialWeight: options.adversarialWeight ?? 1,
      surfaces: ['itemFeatures'],
    },
  });
  return {
    mf,
    vbpr,
    vbprContinued,
    amr,
    phases: { mf: mfPhase, vbpr: vbprPhase, vbprContinued: continuedPhase, amr: amrPhase },
  };
}
