/**
 * onnxruntime-node is optional (its install script downloads CUDA libraries that these
 * machines cannot fetch; the CPU binaries ship in the package). This module is the one
 * place that loads it, with one meaning: {@link loadOnnxRuntime} never throws, it returns
 * a typed result that callers turn into a warning (fall back to plain JS) or an error
 * ({@link requireOnnxRuntime}).
 *
 * The types below describe the part of onnxruntime-node advrec uses, so that no public
 * declaration imports the optional package (a consumer's `tsc` works without it).
 */

/** An output tensor of a session run. */
export interface OnnxTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

/** Options advrec passes when it creates a session. */
export interface OnnxSessionOptions {
  readonly executionProviders?: readonly string[];
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Threads inside one operator (0: onnxruntime's default, every core). */
  readonly intraOpNumThreads?: number;
  readonly interOpNumThreads?: number;
}

/** A loaded model. */
export interface OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(
    feeds: Readonly<Record<string, unknown>>,
    fetches?: readonly string[],
  ): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}

/** The part of the `onnxruntime-node` module advrec uses. */
export interface OnnxRuntimeModule {
  readonly InferenceSession: {
    create(model: Uint8Array, options?: OnnxSessionOptions): Promise<OnnxSession>;
  };
  readonly Tensor: new (
    type: 'float32' | 'int64',
    data: Float32Array | BigInt64Array,
    dims: readonly number[],
  ) => unknown;
}

/** What {@link loadOnnxRuntime} found. */
export type OnnxRuntimeLoad =
  | { readonly available: true; readonly runtime: OnnxRuntimeModule }
  | {
      readonly available: false;
      /** Why it could not be loaded (not installed, or its native library failed). */
      readonly reason: string;
    };

/** How to install onnxruntime-node on a machine without the CUDA download. */
export const ONNXRUNTIME_INSTALL_HINT =
  'install it with its CUDA download skipped: ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install onnxruntime-node (the CPU binaries ship in the package)';

/** Environment variable that hides onnxruntime-node (tests of the plain-JS fallbacks, comparisons). */
export const ONNXRUNTIME_DISABLE_ENV = 'ADVREC_DISABLE_ONNXRUNTIME';

const MARKER = Symbol.for('advrec.error.OnnxRuntimeMissingError');

/** Thrown by {@link requireOnnxRuntime} when onnxruntime-node cannot be loaded. */
export class OnnxRuntimeMissingError extends Error {
  readonly [MARKER] = true;
  /** Why it could not be loaded. */
  readonly reason: string;

  constructor(purpose: string, reason: string) {
    super(
      `${purpose} needs onnxruntime-node, which is not available (${reason}); ${ONNXRUNTIME_INSTALL_HINT}`,
    );
    this.name = 'OnnxRuntimeMissingError';
    this.reason = reason;
  }

  /** True for an instance from any copy of this package. */
  static isInstance(value: unknown): value is OnnxRuntimeMissingError {
    return typeof value === 'object' && value !== null && MARKER in value;
  }
}

let loading: Promise<OnnxRuntimeLoad> | undefined;

/**
 * Imports onnxruntime-node once per process. Never throws: `{ available: false, reason }`
 * when the package is missing, its native library fails to load, or
 * `ADVREC_DISABLE_ONNXRUNTIME=1` hides it.
 */
export function loadOnnxRuntime(): Promise<OnnxRuntimeLoad> {
  if (process.env[ONNXRUNTIME_DISABLE_ENV] === '1')
    return Promise.resolve({
      available: false,
      reason: `disabled by ${ONNXRUNTIME_DISABLE_ENV}=1`,
    });
  loading ??= import('onnxruntime-node').then(
    (module): OnnxRuntimeLoad => {
      const m = module as unknown as OnnxRuntimeModule & { default?: OnnxRuntimeModule };
      return { available: true, runtime: m.default ?? m };
    },
    (error: unknown): OnnxRuntimeLoad => {
      const code = (error as { code?: string }).code;
      return {
        available: false,
        reason:
          code === 'ERR_MODULE_NOT_FOUND'
            ? 'onnxruntime-node is not installed'
            : `onnxruntime-node failed to load: ${(error as Error).message ?? String(error)}`,
      };
    },
  );
  return loading;
}

/**
 * The onnxruntime-node module, or an {@link OnnxRuntimeMissingError} naming `purpose` and
 * how to install it.
 */
export async function requireOnnxRuntime(purpose: string): Promise<OnnxRuntimeModule> {
  const load = await loadOnnxRuntime();
  if (!load.available) throw new OnnxRuntimeMissingError(purpose, load.reason);
  return load.runtime;
}
