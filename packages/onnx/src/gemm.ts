/**
 * Dense float32 products `op(A) . op(B)` for the training-time math of models with dense
 * parts (VBPR's `C E`, `C^T G`, `G E^T`): onnxruntime (MLAS, the fastest GEMM on these
 * machines, see ENGINE.md) when installed, plain JS otherwise.
 */
import { buildBatchedMatMulModel, buildBatchedSoftmaxModel, buildGemmModel } from './graphs.js';
import { loadOnnxRuntime } from './runtime.js';
import type { OnnxRuntimeModule, OnnxSession } from './runtime.js';

/** Which implementation runs the products. */
export type GemmBackendName = 'onnxruntime' | 'js';

/**
 * A dense product provider. `multiply` may answer synchronously (plain JS) or with a
 * Promise (onnxruntime's `run` is asynchronous); callers that must stay synchronous ask
 * for the `js` backend.
 */
export interface Gemm {
  readonly backend: GemmBackendName;
  /**
   * `op(A) . op(B)` for row-major `A` (`aRows x aCols`) and `B` (`bRows x bCols`), with `op`
   * the transpose when asked (the arguments of {@link multiplyJs}); the row-major float32
   * product.
   */
  multiply(...args: GemmArguments): Float32Array | Promise<Float32Array>;
  /**
   * `A_i . B_i` for every `i < batch`: row-major `a` (`batch x m x k`) and `b`
   * (`batch x k x n`); the row-major `batch x m x n` products (the arguments of
   * {@link multiplyBatchedJs}). Attention's per-sequence products.
   */
  multiplyBatched(...args: BatchedGemmArguments): Float32Array | Promise<Float32Array>;
  /**
   * Attention's weights: the row softmax of `A_i . B_i * scale + bias_i` for every `i < batch`
   * (`bias` is `batch x m x n`; a large negative entry such as `-1e9` masks a key to an
   * exact 0). The arguments of {@link softmaxBatchedJs}.
   */
  softmaxBatched(...args: SoftmaxBatchedArguments): Float32Array | Promise<Float32Array>;
  /** Releases native sessions (a no-op for plain JS). */
  release(): Promise<void>;
}

/** `a, aRows, aCols, b, bRows, bCols, transA?, transB?`: the arguments of every product. */
export type GemmArguments = Parameters<typeof multiplyJs>;

/** `a, b, batch, m, k, n`: the arguments of every batched product. */
export type BatchedGemmArguments = Parameters<typeof multiplyBatchedJs>;

/** `a, b, bias, batch, m, k, n, scale`: the arguments of every batched softmax. */
export type SoftmaxBatchedArguments = Parameters<typeof softmaxBatchedJs>;

/** Rows and columns of `op(A) . op(B)`, or a RangeError when the inner sizes differ. */
function productShape(
  aRows: number,
  aCols: number,
  bRows: number,
  bCols: number,
  transA: boolean,
  transB: boolean,
): { m: number; k: number; n: number } {
  const k = transA ? aRows : aCols;
  if (k !== (transB ? bCols : bRows))
    throw new RangeError(
      `cannot multiply ${aRows}x${aCols}${transA ? 'ᵀ' : ''} by ${bRows}x${bCols}${transB ? 'ᵀ' : ''}`,
    );
  return { m: transA ? aCols : aRows, k, n: transB ? bRows : bCols };
}

/**
 * The plain-JS product: each entry summed in float64 in order of the inner index (zero
 * entries of `op(A)` skipped), then rounded once to float32. The fallback without
 * onnxruntime, and the exact oracle of its tests.
 */
export function multiplyJs(
  a: Float32Array,
  aRows: number,
  aCols: number,
  b: Float32Array,
  bRows: number,
  bCols: number,
  transA = false,
  transB = false,
): Float32Array {
  const { m, k, n } = productShape(aRows, aCols, bRows, bCols, transA, transB);
  const out = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let r = 0; r < m; r++) {
    row.fill(0);
    for (let x = 0; x < k; x++) {
      const av = transA ? a[x * aCols + r]! : a[r * aCols + x]!;
      if (av === 0) continue;
      if (transB) for (let c = 0; c < n; c++) row[c]! += av * b[c * bCols + x]!;
      else {
        const at = x * bCols;
        for (let c = 0; c < n; c++) row[c]! += av * b[at + c]!;
      }
    }
    out.set(row, r * n);
  }
  return out;
}

function checkBatchedShape(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
): void {
  for (const [name, value] of Object.entries({ batch, m, k, n }))
    if (!(Number.isInteger(value) && value >= 0))
      throw new RangeError(`batched product: ${name} must be a non-negative integer, got ${value}`);
  if (a.length < batch * m * k || b.length < batch * k * n)
    throw new RangeError(
      `batched product: a has ${a.length} values (needs ${batch} x ${m} x ${k}), b ${b.length} (needs ${batch} x ${k} x ${n})`,
    );
}

/**
 * The plain-JS batched product: `A_i . B_i` for each of `batch` pairs, each entry summed in
 * float64 in order of the inner index, rounded once to float32.
 */
export function multiplyBatchedJs(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
): Float32Array {
  checkBatchedShape(a, b, batch, m, k, n);
  const out = new Float32Array(batch * m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < batch; i++)
    for (let r = 0; r < m; r++) {
      row.fill(0);
      for (let x = 0; x < k; x++) {
        const av = a[(i * m + r) * k + x]!;
        if (av === 0) continue;
        const at = (i * k + x) * n;
        for (let c = 0; c < n; c++) row[c]! += av * b[at + c]!;
      }
      out.set(row, (i * m + r) * n);
    }
  return out;
}

/** The plain-JS batched softmax (see {@link Gemm.softmaxBatched}), each row in float64. */
export function softmaxBatchedJs(
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  scale: number,
): Float32Array {
  if (bias.length < batch * m * n)
    throw new RangeError(
      `batched softmax: bias has ${bias.length} values, needs ${batch} x ${m} x ${n}`,
    );
  const out = multiplyBatchedJs(a, b, batch, m, k, n);
  const row = new Float64Array(n);
  for (let r = 0; r < batch * m; r++) {
    let max = -Infinity;
    for (let c = 0; c < n; c++) {
      row[c] = out[r * n + c]! * scale + bias[r * n + c]!;
      max = Math.max(max, row[c]!);
    }
    let sum = 0;
    for (let c = 0; c < n; c++) {
      row[c] = Math.exp(row[c]! - max);
      sum += row[c]!;
    }
    for (let c = 0; c < n; c++) out[r * n + c] = row[c]! / sum;
  }
  return out;
}

/** The plain-JS {@link Gemm}. */
export const jsGemm: Gemm = {
  backend: 'js',
  multiply: multiplyJs,
  multiplyBatched: multiplyBatchedJs,
  softmaxBatched: softmaxBatchedJs,
  release: async () => {},
};

/** Dense products on onnxruntime: one session per transposition. */
export class OnnxGemm implements Gemm {
  readonly backend = 'onnxruntime' as const;

  private constructor(
    private readonly ort: OnnxRuntimeModule,
    private readonly sessions: Map<string, OnnxSession>,
    private readonly threads: number,
  ) {}

  /** Sessions for every transposition; `null` when onnxruntime-node is not available. */
  static async create(options: { threads?: number } = {}): Promise<OnnxGemm | null> {
    const load = await loadOnnxRuntime();
    if (!load.available) return null;
    const sessions = new Map<string, OnnxSession>();
    for (const transA of [false, true])
      for (const transB of [false, true])
        sessions.set(
          `${transA}${transB}`,
          await load.runtime.InferenceSession.create(buildGemmModel(transA, transB), {
            executionProviders: ['cpu'],
            graphOptimizationLevel: 'all',
            intraOpNumThreads: options.threads ?? 0,
            interOpNumThreads: 1,
          }),
        );
    sessions.set(
      'batched',
      await load.runtime.InferenceSession.create(buildBatchedMatMulModel(), {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: options.threads ?? 0,
        interOpNumThreads: 1,
      }),
    );
    return new OnnxGemm(load.runtime, sessions, options.threads ?? 0);
  }

  async multiply(...args: GemmArguments): Promise<Float32Array> {
    const [a, aRows, aCols, b, bRows, bCols, transA = false, transB = false] = args;
    productShape(aRows, aCols, bRows, bCols, transA, transB);
    const session = this.sessions.get(`${transA}${transB}`)!;
    // onnxruntime-node does not take views of shared memory: copy those.
    const plain = (x: Float32Array, n: number): Float32Array =>
      x.buffer instanceof SharedArrayBuffer ? x.slice(0, n) : x.subarray(0, n);
    const output = await session.run({
      a: new this.ort.Tensor('float32', plain(a, aRows * aCols), [aRows, aCols]),
      b: new this.ort.Tensor('float32', plain(b, bRows * bCols), [bRows, bCols]),
    });
    return output['y']!.data as Float32Array;
  }

  async multiplyBatched(...args: BatchedGemmArguments): Promise<Float32Array> {
    const [a, b, batch, m, k, n] = args;
    checkBatchedShape(a, b, batch, m, k, n);
    if (batch * m * n === 0) return new Float32Array(0);
    const plain = (x: Float32Array, size: number): Float32Array =>
      x.buffer instanceof SharedArrayBuffer ? x.slice(0, size) : x.subarray(0, size);
    const output = await this.sessions.get('batched')!.run({
      a: new this.ort.Tensor('float32', plain(a, batch * m * k), [batch, m, k]),
      b: new this.ort.Tensor('float32', plain(b, batch * k * n), [batch, k, n]),
    });
    return output['y']!.data as Float32Array;
  }

  async softmaxBatched(...args: SoftmaxBatchedArguments): Promise<Float32Array> {
    const [a, b, bias, batch, m, k, n, scale] = args;
    checkBatchedShape(a, b, batch, m, k, n);
    if (bias.length < batch * m * n)
      throw new RangeError(
        `batched softmax: bias has ${bias.length} values, needs ${batch} x ${m} x ${n}`,
      );
    if (batch * m * n === 0) return new Float32Array(0);
    // One session per scale (a model's attention uses one).
    const key = `softmax:${scale}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = await this.ort.InferenceSession.create(buildBatchedSoftmaxModel(scale), {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
      });
      this.sessions.set(key, session);
    }
    const plain = (x: Float32Array, size: number): Float32Array =>
      x.buffer instanceof SharedArrayBuffer ? x.slice(0, size) : x.subarray(0, size);
    const output = await session.run({
      a: new this.ort.Tensor('float32', plain(a, batch * m * k), [batch, m, k]),
      b: new this.ort.Tensor('float32', plain(b, batch * k * n), [batch, k, n]),
      bias: new this.ort.Tensor('float32', plain(bias, batch * m * n), [batch, m, n]),
    });
    return output['y']!.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const session of this.sessions.values()) await session.release();
    this.sessions.clear();
  }
}

/** Options of {@link createGemm}. */
export interface GemmOptions {
  /** `auto` (default: onnxruntime when available, else plain JS), `onnxruntime` or `js`. */
  readonly backend?: 'auto' | GemmBackendName;
  /** onnxruntime intra-op threads (default: every core). */
  readonly threads?: number;
}

/**
 * A {@link Gemm}: onnxruntime when available (or required: `backend: 'onnxruntime'` throws
 * when it is not), else plain JS.
 */
export async function createGemm(options: GemmOptions = {}): Promise<Gemm> {
  const backend = options.backend ?? 'auto';
  if (backend === 'js') return jsGemm;
  const onnx = await OnnxGemm.create(
    options.threads === undefined ? {} : { threads: options.threads },
  );
  if (onnx) return onnx;
  if (backend === 'onnxruntime') {
    const load = await loadOnnxRuntime();
    throw new Error(
      `dense products on onnxruntime were asked for, but ${load.available ? 'it failed' : load.reason}`,
    );
  }
  return jsGemm;
}
