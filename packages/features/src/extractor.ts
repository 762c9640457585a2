import { createHash } from 'node:crypto';
import { open, readFile, rm, truncate } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { dirname, resolve } from 'node:path';
import {
  ConfigError,
  DataFormatError,
  WriteError,
  removeStaleTemporaries,
  writeFileAtomic,
  writeNpy,
} from '@advrec/data';
import type { ConfigIssue } from '@advrec/data';
import { OnnxModelError, exposeTensor, inspectOnnxModel, requireOnnxRuntime } from '@advrec/onnx';
import type { OnnxRuntimeModule, OnnxSession, OnnxTensor } from '@advrec/onnx';
import { identifyExtractor } from './extractors.js';
import { preprocessImage, resolvePreprocessing, tensorSize } from './preprocess.js';
import type { Preprocessing } from './preprocess.js';

/** One image to extract: the item it belongs to and its file. */
export interface ImageEntry {
  readonly itemId: string;
  readonly file: string;
}

/** Progress of an extraction. */
export interface ExtractionProgress {
  /** Images handled so far (extracted or failed), resumed ones included. */
  readonly done: number;
  readonly total: number;
  readonly failed: number;
  /** Images per second in this run. */
  readonly imagesPerSecond: number;
}

/** Options of {@link extractFeatures}. */
export interface ExtractionOptions {
  /** The ONNX CNN file (the user supplies it; nothing is downloaded). */
  readonly model: string;
  readonly images: readonly ImageEntry[];
  /** The `.npy` matrix to write (rows = extracted images, in `images` order). */
  readonly output: string;
  /** Model input name (default: the graph's first input). */
  readonly inputName?: string;
  /**
   * The feature tensor: a graph output or any intermediate tensor (exposed as an extra
   * output). Default: a known extractor's feature tensor (`KNOWN_EXTRACTORS`: ResNet-50
   * v1's pooled `resnetv17_pool1_fwd`, not its logits; MobileNetV2's `627`), else the
   * graph's first output. A rank-4 tensor `[N, C, H, W]` is averaged
   * over `H x W` (global average pooling), giving `C` features per image.
   */
  readonly tensor?: string;
  readonly preprocessing?: Partial<Preprocessing>;
  /** Images per inference batch (default 32). */
  readonly batchSize?: number;
  /** Element type of the output file (default float32). */
  readonly dtype?: 'float32' | 'float16';
  /** Images decoded concurrently (default 8). */
  readonly decodeConcurrency?: number;
  /** onnxruntime intra-op threads (default: all cores). */
  readonly threads?: number;
  readonly onProgress?: (progress: ExtractionProgress) => void;
  /** Stops after the current batch; the partial work is kept for a resume. */
  readonly signal?: AbortSignal;
}

/** An image that could not be used, and why (recorded in the manifest, never zero-filled). */
export interface FailedImage {
  readonly itemId: string;
  readonly file: string;
  readonly reason: string;
}

/** The manifest written beside the matrix (`<output>.manifest.json`). */
export interface FeatureManifest {
  readonly format: 'advrec-features/1';
  /** Item ids in row order. */
  readonly itemIds: readonly string[];
  readonly rows: number;
  readonly dimension: number;
  readonly dtype: 'float32' | 'float16';
  readonly model: { readonly file: string; readonly sha256: string };
  readonly inputName: string;
  readonly tensor: string;
  /** `mean over HxW` when the tensor was rank 4, else `none`. */
  readonly pooling: string;
  readonly preprocessing: Preprocessing;
  readonly failed: readonly FailedImage[];
  readonly images: number;
}

/** What {@link extractFeatures} returns. */
export interface ExtractionResult {
  readonly manifest: FeatureManifest;
  readonly manifestFile: string;
  /** Images handled by this call (not counting resumed ones). */
  readonly processedNow: number;
  readonly resumedFrom: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
}

interface PartialState {
  fingerprint: string;
  done: number;
  rows: number;
  dimension: number;
  itemIds: string[];
  failed: FailedImage[];
  /**
   * One entry per batch appended to the `.partial` file: images handled, rows and failures
   * so far (cumulative) and the SHA-256 of the batch's bytes. A resume keeps the batches
   * that still match; the final matrix is assembled only from verified bytes.
   */
  batches: PartialBatch[];
}

interface PartialBatch {
  done: number;
  rows: number;
  failed: number;
  sha256: string;
}

function emptyState(fingerprint: string): PartialState {
  return { fingerprint, done: 0, rows: 0, dimension: 0, itemIds: [], failed: [], batches: [] };
}

/**
 * The longest prefix of `state`'s batches whose bytes in `partial` still match their
 * checksums, and the state cut back to it.
 */
function verifiedPrefix(
  state: PartialState,
  partial: Buffer,
): { state: PartialState; intact: boolean } {
  const rowBytes = state.dimension * 4;
  let kept = 0;
  let offset = 0;
  for (const batch of state.batches) {
    const end = batch.rows * rowBytes;
    if (end > partial.length) break;
    const hash = createHash('sha256').update(partial.subarray(offset, end)).digest('hex');
    if (hash !== batch.sha256) break;
    offset = end;
    kept++;
  }
  if (kept === state.batches.length && offset === state.rows * rowBytes)
    return { state, intact: true };
  const last = kept > 0 ? state.batches[kept - 1]! : null;
  return {
    intact: false,
    state: {
      ...state,
      done: last?.done ?? 0,
      rows: last?.rows ?? 0,
      itemIds: state.itemIds.slice(0, last?.rows ?? 0),
      failed: state.failed.slice(0, last?.failed ?? 0),
      batches: state.batches.slice(0, kept),
    },
  };
}

/**
 * The model's graph, with `OnnxModelError` (from `@advrec/onnx`) reported as this
 * package's `DataFormatError` naming the file.
 */
function graphOf<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (cause) {
    if (!OnnxModelError.isInstance(cause)) throw cause;
    throw new DataFormatError({ file }, cause.expected, cause.found, { cause });
  }
}

/** A CNN session that turns preprocessed image tensors into pooled feature vectors. */
export class FeatureSession {
  readonly inputName: string;
  readonly tensor: string;
  readonly preprocessing: Preprocessing;
  private readonly ort: OnnxRuntimeModule;
  private readonly session: OnnxSession;
  private readonly file: string;
  /** Feature width, known after the first batch. */
  dimension = 0;
  pooling = 'none';

  private constructor(
    ort: OnnxRuntimeModule,
    session: OnnxSession,
    file: string,
    inputName: string,
    tensor: string,
    p: Preprocessing,
  ) {
    this.ort = ort;
    this.session = session;
    this.file = file;
    this.inputName = inputName;
    this.tensor = tensor;
    this.preprocessing = p;
  }

  /** Opens `model` with `tensor` exposed as an output. */
  static async open(
    modelBytes: Uint8Array,
    file: string,
    options: {
      inputName?: string;
      tensor?: string;
      preprocessing?: Partial<Preprocessing>;
      threads?: number;
    },
  ): Promise<FeatureSession> {
    const p = resolvePreprocessing(options.preprocessing);
    const info = graphOf(file, () => inspectOnnxModel(modelBytes, file));
    const inputName = options.inputName ?? info.inputs[0];
    if (!inputName || !info.inputs.includes(inputName))
      throw new DataFormatError(
        { file },
        `an input named "${options.inputName}" (inputs: ${info.inputs.join(', ')})`,
        'none',
      );
    // Default: a known extractor's feature tensor (ResNet-50's pooled layer, not its logits),
    // else the model's first output.
    const known = options.tensor
      ? null
      : identifyExtractor(createHash('sha256').update(modelBytes).digest('hex'), info.nodeOutputs);
    const tensor = options.tensor ?? known?.tensor ?? info.outputs[0]!;
    const bytes = graphOf(file, () => exposeTensor(modelBytes, tensor, file));
    const ort = await requireOnnxRuntime('feature extraction');
    let session: OnnxSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: options.threads ?? availableParallelism(),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (cause) {
      throw new DataFormatError(
        { file },
        'an ONNX model onnxruntime can load',
        (cause as Error).message,
        { cause },
      );
    }
    return new FeatureSession(ort, session, file, inputName, tensor, p);
  }

  /** Features of `count` preprocessed images (`count x tensorSize` floats), `count x dimension`. */
  async run(input: Float32Array, count: number): Promise<Float32Array> {
    const p = this.preprocessing;
    const dims =
      p.layout === 'nchw'
        ? [count, p.channels, p.crop, p.crop]
        : [count, p.crop, p.crop, p.channels];
    let result: Record<string, OnnxTensor>;
    try {
      result = await this.session.run(
        {
          [this.inputName]: new this.ort.Tensor(
            'float32',
            input.subarray(0, count * tensorSize(p)),
            dims,
          ),
        },
        [this.tensor],
      );
    } catch (cause) {
      throw new DataFormatError(
        { file: this.file },
        `a model taking ${this.inputName} as float32 [${dims.join(', ')}] (check preprocessing.channels, crop and layout)`,
        (cause as Error).message,
        { cause },
      );
    }
    const out = result[this.tensor]!;
    const [n, c] = out.dims;
    if (n !== count)
      throw new DataFormatError(
        { file: this.file },
        `${count} rows in tensor ${this.tensor}`,
        `${n}`,
      );
    const spatial = out.dims.slice(2).reduce((a, b) => a * b, 1);
    const dimension = out.dims.length <= 2 ? (c ?? 1) : c!;
    if (this.dimension !== 0 && this.dimension !== dimension)
      throw new DataFormatError({ file: this.file }, `${this.dimension} features`, `${dimension}`);
    this.dimension = dimension;
    this.pooling =
      out.dims.length > 2 && spatial > 1 ? `mean over ${out.dims.slice(2).join('x')}` : 'none';
    const features = new Float32Array(count * dimension);
    const data = out.data as Float32Array;
    for (let r = 0; r < count; r++) {
      for (let f = 0; f < dimension; f++) {
        let s = 0;
        const base = (r * dimension + f) * spatial;
        for (let k = 0; k < spatial; k++) s += data[base + k]!;
        features[r * dimension + f] = s / spatial;
      }
    }
    return features;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The options' values with defaults, every problem reported at once with its field. */
function checkedExtractionOptions(options: ExtractionOptions) {
  const issues: ConfigIssue[] = [];
  const batchSize = options.batchSize ?? 32;
  const concurrency = options.decodeConcurrency ?? 8;
  const dtype = options.dtype ?? 'float32';
  if (!Number.isInteger(batchSize) || batchSize < 1)
    issues.push({ path: 'batchSize', message: `must be a positive integer, got ${batchSize}` });
  if (!Number.isInteger(concurrency) || concurrency < 1)
    issues.push({
      path: 'decodeConcurrency',
      message: `must be a positive integer, got ${concurrency}`,
    });
  if (dtype !== 'float32' && dtype !== 'float16')
    issues.push({ path: 'dtype', message: `must be float32 or float16, got ${String(dtype)}` });
  if (!options.output.endsWith('.npy'))
    issues.push({ path: 'output', message: `must end with .npy, got ${options.output}` });
  const seen = new Set<string>();
  options.images.forEach((image, k) => {
    if (seen.has(image.itemId))
      issues.push({ path: `images[${k}].itemId`, message: `duplicate item id ${image.itemId}` });
    seen.add(image.itemId);
  });
  const preprocessing = (() => {
    try {
      return resolvePreprocessing(options.preprocessing);
    } catch (error) {
      if (ConfigError.isInstance(error)) issues.push(...error.issues);
      else throw error;
      return null;
    }
  })();
  if (issues.length > 0 || !preprocessing) throw new ConfigError(issues);
  return { batchSize, concurrency, dtype, preprocessing };
}

/**
 * The progress a previous run with the same fingerprint left, checked: batches whose bytes no
 * longer match their checksum (a flipped byte) are redone, and rows appended after the last
 * saved state (a kill between the two writes) dropped. Empty when none.
 */
async function resumableState(
  fingerprint: string,
  partialFile: string,
  stateFile: string,
  session: FeatureSession,
): Promise<PartialState> {
  let state = emptyState(fingerprint);
  try {
    const saved = JSON.parse(await readFile(stateFile, 'utf8')) as PartialState;
    if (saved.fingerprint === fingerprint && Array.isArray(saved.batches)) {
      // Batches whose bytes no longer match their checksum (a flipped byte) are redone, and
      // rows appended after the last saved state (a kill between the two writes) dropped.
      state = verifiedPrefix(saved, await readFile(partialFile)).state;
      await truncate(partialFile, state.rows * state.dimension * 4);
      if (state.rows > 0) session.dimension = state.dimension;
    }
  } catch {
    state = emptyState(fingerprint);
  }
  return state;
}

/** Decodes images `from .. to - 1`, `concurrency` at a time, compacted to the front in order; the failures with their reason. */
async function decodeImages(
  images: ExtractionOptions['images'],
  from: number,
  to: number,
  preprocessing: ReturnType<typeof resolvePreprocessing>,
  concurrency: number,
): Promise<{ input: Float32Array; ok: number[]; failed: FailedImage[] }> {
  const size = tensorSize(preprocessing);
  const input = new Float32Array((to - from) * size);
  const status = new Array<string | null>(to - from).fill(null);
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const k = next++;
      try {
        await preprocessImage(images[k]!.file, preprocessing, input, (k - from) * size);
      } catch (error) {
        status[k - from] = error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
  const ok: number[] = [];
  const failed: FailedImage[] = [];
  status.forEach((reason, t) => {
    const image = images[from + t]!;
    if (reason === null) ok.push(from + t);
    else failed.push({ itemId: image.itemId, file: image.file, reason });
  });
  // Compact the decoded images to the front, in order.
  ok.forEach((k, t) => {
    if (k - from !== t) input.copyWithin(t * size, (k - from) * size, (k - from + 1) * size);
  });
  return { input, ok, failed };
}

/** Verifies the partial file, writes the `.npy` and its manifest atomically, removes the partial files. */
async function writeExtractionOutputs(
  options: ExtractionOptions,
  run: {
    readonly state: PartialState;
    readonly partialFile: string;
    readonly stateFile: string;
    readonly sha256: string;
    readonly session: FeatureSession;
    readonly preprocessing: ReturnType<typeof resolvePreprocessing>;
    readonly dtype: 'float32' | 'float16';
    readonly total: number;
  },
): Promise<{ manifest: FeatureManifest; manifestFile: string }> {
  const { state, partialFile, stateFile, sha256, session, preprocessing, dtype, total } = run;
  const partial = await readFile(partialFile);
  const checked = verifiedPrefix(state, partial);
  if (!checked.intact) {
    // Something changed the partial file after it was written: keep what still verifies.
    await writeFileAtomic(stateFile, () => [JSON.stringify(checked.state)]);
    throw new DataFormatError(
      { file: partialFile },
      `the features written so far (${state.rows} rows, checksummed per batch)`,
      `bytes that no longer match their checksum after row ${checked.state.rows}; run again to redo the images from there`,
    );
  }
  const data = new Float32Array(
    partial.buffer.slice(partial.byteOffset, partial.byteOffset + partial.byteLength),
  );
  const matrix = new Float32Array(data.buffer, 0, state.rows * state.dimension);
  await writeNpy(options.output, matrix, state.rows, state.dimension, { dtype });
  const manifest: FeatureManifest = {
    format: 'advrec-features/1',
    itemIds: state.itemIds,
    rows: state.rows,
    dimension: state.dimension,
    dtype,
    model: { file: options.model, sha256 },
    inputName: session.inputName,
    tensor: session.tensor,
    pooling: session.pooling,
    preprocessing,
    failed: state.failed,
    images: total,
  };
  const manifestFile = `${options.output}.manifest.json`;
  await writeFileAtomic(manifestFile, () => [JSON.stringify(manifest, null, 2) + '\n']);
  await rm(partialFile, { force: true });
  await rm(stateFile, { force: true });
  return { manifest, manifestFile };
}

/**
 * Extracts CNN features for a list of images: decoding (sharp, several images at once)
 * is pipelined with inference (onnxruntime) one batch ahead. Resumable: rows are appended
 * to `<output>.partial` and progress to `<output>.partial.json` after every batch, so a
 * killed or aborted run continues where it stopped (same options) and produces the same
 * file as an uninterrupted one. The final `.npy` and the manifest are written atomically.
 * Unreadable images are skipped and listed in the manifest with the reason.
 */
export async function extractFeatures(options: ExtractionOptions): Promise<ExtractionResult> {
  const started = performance.now();
  const { batchSize, concurrency, dtype, preprocessing } = checkedExtractionOptions(options);

  let modelBytes: Buffer;
  try {
    modelBytes = await readFile(options.model);
  } catch (cause) {
    throw new DataFormatError(
      { file: options.model },
      'a readable ONNX model file',
      (cause as Error).message,
      { cause },
    );
  }
  const sha256 = createHash('sha256').update(modelBytes).digest('hex');
  const session = await FeatureSession.open(modelBytes, options.model, {
    inputName: options.inputName,
    tensor: options.tensor,
    preprocessing,
    threads: options.threads,
  });
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify([
        sha256,
        session.inputName,
        session.tensor,
        preprocessing,
        options.images,
        batchSize,
      ]),
    )
    .digest('hex');
  await removeStaleTemporaries(dirname(resolve(options.output)));
  const partialFile = `${options.output}.partial`;
  const stateFile = `${options.output}.partial.json`;
  let state = await resumableState(fingerprint, partialFile, stateFile, session);
  const resumedFrom = state.done;
  const handle = await open(partialFile, state.done === 0 ? 'w' : 'a');
  // Images are decoded several at a time: one libvips thread each keeps the CPUs for them
  // and onnxruntime instead of oversubscribing.
  const previousConcurrency = sharp.concurrency();
  sharp.concurrency(1);
  const total = options.images.length;
  const decodeBatch = (from: number) =>
    decodeImages(
      options.images,
      from,
      Math.min(total, from + batchSize),
      preprocessing,
      concurrency,
    );
  let processedNow = 0;
  try {
    let pending = state.done < total ? decodeBatch(state.done) : null;
    while (pending) {
      const batch = await pending;
      const from = state.done;
      const nextFrom = Math.min(total, from + batchSize);
      // Decode the next batch while this one runs through the CNN.
      pending = nextFrom < total && !options.signal?.aborted ? decodeBatch(nextFrom) : null;
      let batchHash = createHash('sha256').digest('hex');
      if (batch.ok.length > 0) {
        const features = await session.run(batch.input, batch.ok.length);
        const bytes = new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
        batchHash = createHash('sha256').update(bytes).digest('hex');
        try {
          const { bytesWritten } = await handle.write(bytes);
          if (bytesWritten !== bytes.byteLength)
            throw Object.assign(
              new Error(`short write (${bytesWritten} of ${bytes.byteLength} bytes)`),
              {
                code: 'ENOSPC',
              },
            );
          await handle.sync();
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          throw new WriteError(partialFile, (error as Error).message, code, { cause: error });
        }
      }
      const rows = state.rows + batch.ok.length;
      const failed = [...state.failed, ...batch.failed];
      state = {
        ...state,
        done: nextFrom,
        rows,
        dimension: session.dimension || state.dimension,
        itemIds: [...state.itemIds, ...batch.ok.map((k) => options.images[k]!.itemId)],
        failed,
        batches: [
          ...state.batches,
          { done: nextFrom, rows, failed: failed.length, sha256: batchHash },
        ],
      };
      await writeFileAtomic(stateFile, () => [JSON.stringify(state)]);
      processedNow += nextFrom - from;
      options.onProgress?.({
        done: state.done,
        total,
        failed: state.failed.length,
        imagesPerSecond: processedNow / ((performance.now() - started) / 1000),
      });
      if (options.signal?.aborted && state.done < total) {
        pending = null;
        throw new DOMException(
          `feature extraction aborted after ${state.done} of ${total} images; run again to resume`,
          'AbortError',
        );
      }
    }
  } finally {
    sharp.concurrency(previousConcurrency);
    await handle.close();
    await session.release();
  }
  if (state.rows === 0)
    throw new DataFormatError(
      { file: options.images[0]?.file ?? options.output },
      'at least one readable image',
      `${state.failed.length} failed`,
    );
  const { manifest, manifestFile } = await writeExtractionOutputs(options, {
    state,
    partialFile,
    stateFile,
    sha256,
    session,
    preprocessing,
    dtype,
    total,
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    manifest,
    manifestFile,
    processedNow,
    resumedFrom,
    seconds,
    imagesPerSecond: processedNow / seconds,
  };
}
