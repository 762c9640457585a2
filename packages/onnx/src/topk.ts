import { buildTopKScoringModel, topKScoringUsers } from './graphs.js';
import type { TopKScoringModelSpec } from './graphs.js';
import { loadOnnxRuntime } from './runtime.js';
import type { OnnxRuntimeModule, OnnxSession } from './runtime.js';

/** A running onnxruntime session of the top-k scoring graph ({@link buildTopKScoringModel}). */
export class OnnxTopKScorer {
  /** The users with their bias column, block by block (grown when needed). */
  private scratch = new Float32Array(0);

  private constructor(
    private readonly ort: OnnxRuntimeModule,
    private readonly session: OnnxSession,
    readonly numItems: number,
    readonly dimension: number,
    private readonly withBias: boolean,
  ) {}

  /** A session for the given item side; `null` when onnxruntime-node is not available. */
  static async create(
    spec: TopKScoringModelSpec,
    options: { threads?: number } = {},
  ): Promise<OnnxTopKScorer | null> {
    const load = await loadOnnxRuntime();
    if (!load.available) return null;
    const session = await load.runtime.InferenceSession.create(buildTopKScoringModel(spec), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
    });
    return new OnnxTopKScorer(
      load.runtime,
      session,
      spec.numItems,
      spec.dimension,
      spec.itemBias !== undefined,
    );
  }

  /**
   * The k best items of each user of a block (`1 <= k <= numItems`): `users` is
   * `rows x dimension` user factors. Float32 scores (descending per row) and item ids,
   * `rows x k` each.
   */
  async topK(
    users: Float32Array,
    rows: number,
    k: number,
  ): Promise<{ values: Float32Array; indices: Int32Array }> {
    const { values, indexWords } = await this.topKWords(users, rows, k);
    const indices = new Int32Array(values.length);
    for (let t = 0; t < indices.length; t++) indices[t] = indexWords[2 * t]!;
    return { values, indices };
  }

  /**
   * As {@link OnnxTopKScorer.topK}, without converting the int64 indices: `indexWords[2 * t]`
   * is the index of entry `t` (the low word; item ids are below 2^31), which avoids a BigInt
   * per entry on the hot path.
   */
  async topKWords(
    users: Float32Array,
    rows: number,
    k: number,
  ): Promise<{ values: Float32Array; indexWords: Int32Array }> {
    if (!(Number.isInteger(k) && k >= 1 && k <= this.numItems))
      throw new RangeError(`k must be an integer in [1, ${this.numItems}], got ${k}`);
    const width = this.withBias ? this.dimension + 1 : this.dimension;
    if (this.withBias && this.scratch.length < rows * width)
      this.scratch = new Float32Array(rows * width);
    const input = topKScoringUsers(users, rows, this.dimension, this.withBias, this.scratch);
    const output = await this.session.run({
      users: new this.ort.Tensor('float32', input, [rows, width]),
      k: new this.ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]),
    });
    const values = output['values']!.data as Float32Array;
    const indices64 = output['indices']!.data as BigInt64Array;
    const indexWords = new Int32Array(indices64.buffer, indices64.byteOffset, indices64.length * 2);
    return { values, indexWords };
  }

  /** Releases the native session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
