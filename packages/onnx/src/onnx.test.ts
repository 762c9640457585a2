import { afterEach, describe, expect, it } from 'vitest';
import {
  ONNXRUNTIME_DISABLE_ENV,
  OnnxGemm,
  OnnxModelError,
  OnnxRuntimeMissingError,
  OnnxTopKScorer,
  ProtoWriter,
  buildGemmModel,
  buildTopKScoringModel,
  createGemm,
  exposeTensor,
  inspectOnnxModel,
  loadOnnxRuntime,
  multiplyJs,
  readFields,
  requireOnnxRuntime,
  text,
} from './index.js';

/** A small seeded generator (this package depends on nothing of ours). */
function gaussians(seed: number, length: number): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return Float32Array.from(
    { length },
    () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()),
  );
}

/** float64 `op(A) op(B)`, `op(A)` m x k, `op(B)` k x n. */
function reference(
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  n: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let r = 0; r < m; r++)
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let x = 0; x < k; x++)
        s += (transA ? a[x * m + r]! : a[r * k + x]!) * (transB ? b[c * k + x]! : b[x * n + c]!);
      out[r * n + c] = s;
    }
  return out;
}

afterEach(() => {
  delete process.env[ONNXRUNTIME_DISABLE_ENV];
});

describe('dense products', () => {
  const [m, k, n] = [37, 130, 9];
  for (const backend of ['onnxruntime', 'js'] as const)
    it(`${backend}: every transposition equals a float64 reference (1e-4)`, async () => {
      const gemm =
        backend === 'js'
          ? await createGemm({ backend: 'js' })
          : await OnnxGemm.create({ threads: 1 });
      expect(gemm).not.toBeNull();
      expect(gemm!.backend).toBe(backend);
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const a = gaussians(1 + Number(transA), m * k);
          const b = gaussians(3 + Number(transB), k * n);
          const y = await gemm!.multiply(
            a,
            transA ? k : m,
            transA ? m : k,
            b,
            transB ? n : k,
            transB ? k : n,
            transA,
            transB,
          );
          const expected = reference(a, m, k, b, n, transA, transB);
          expect(y.length).toBe(m * n);
          for (let i = 0; i < y.length; i++)
            expect(Math.abs(y[i]! - expected[i]!)).toBeLessThan(1e-4);
        }
      await gemm!.release();
    });

  it('refuses mismatched inner sizes, naming both shapes', async () => {
    expect(() => multiplyJs(new Float32Array(6), 2, 3, new Float32Array(8), 4, 2)).toThrow(
      /cannot multiply 2x3 by 4x2/,
    );
    const onnx = await OnnxGemm.create({ threads: 1 });
    await expect(
      onnx!.multiply(new Float32Array(6), 2, 3, new Float32Array(8), 4, 2),
    ).rejects.toThrow(/cannot multiply 2x3 by 4x2/);
    await onnx!.release();
  });

  it('takes views of shared memory (copied for onnxruntime)', async () => {
    const shared = new Float32Array(new SharedArrayBuffer(4 * 4)).fill(1);
    const onnx = await OnnxGemm.create({ threads: 1 });
    const y = await onnx!.multiply(shared, 2, 2, Float32Array.of(1, 2, 3, 4), 2, 2);
    expect(Array.from(y)).toEqual([4, 6, 4, 6]);
    await onnx!.release();
  });
});

describe('loading onnxruntime-node', () => {
  it('is available here, and one typed "not available" result when hidden', async () => {
    expect((await loadOnnxRuntime()).available).toBe(true);
    process.env[ONNXRUNTIME_DISABLE_ENV] = '1';
    const load = await loadOnnxRuntime();
    expect(load).toEqual({ available: false, reason: `disabled by ${ONNXRUNTIME_DISABLE_ENV}=1` });
    // Callers turn it into a fallback ...
    expect(await OnnxGemm.create()).toBeNull();
    expect((await createGemm()).backend).toBe('js');
    expect(
      await OnnxTopKScorer.create({ itemFactors: new Float32Array(4), numItems: 2, dimension: 2 }),
    ).toBeNull();
    // ... or into an error that names the purpose and how to install it.
    const error = await requireOnnxRuntime('feature extraction').catch((e: unknown) => e);
    expect(OnnxRuntimeMissingError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(
      /feature extraction needs onnxruntime-node.*ONNXRUNTIME_NODE_INSTALL_CUDA=skip/,
    );
    await expect(createGemm({ backend: 'onnxruntime' })).rejects.toThrow(/disabled by/);
  });
});

describe('ONNX graphs', () => {
  it('the top-k scoring graph ranks like a brute-force product, bias included', async () => {
    const [items, dimension, users] = [50, 6, 7];
    const itemFactors = gaussians(5, items * dimension);
    const itemBias = gaussians(6, items);
    const scorer = await OnnxTopKScorer.create(
      { itemFactors, numItems: items, dimension, itemBias },
      { threads: 1 },
    );
    const u = gaussians(7, users * dimension);
    const { values, indices } = await scorer!.topK(u, users, 5);
    for (let r = 0; r < users; r++) {
      const scores = Array.from({ length: items }, (_, i) => {
        let s = itemBias[i]!;
        for (let f = 0; f < dimension; f++)
          s += u[r * dimension + f]! * itemFactors[i * dimension + f]!;
        return s;
      });
      const best = scores
        .map((s, i) => [s, i] as const)
        .sort((x, y) => y[0] - x[0])
        .slice(0, 5);
      expect(Array.from(indices.subarray(r * 5, r * 5 + 5))).toEqual(best.map((b) => b[1]));
      best.forEach(([s], t) => expect(values[r * 5 + t]).toBeCloseTo(s, 4));
    }
    await expect(scorer!.topK(u, users, 0)).rejects.toThrow(/k must be an integer in \[1, 50\]/);
    await scorer!.release();
    expect(() => buildTopKScoringModel({ itemFactors, numItems: items, dimension: 5 })).toThrow(
      /expected numItems 50 x dimension 5/,
    );
  });

  it('inspects a graph and exposes an intermediate tensor; bad bytes name the file', () => {
    const info = inspectOnnxModel(buildGemmModel(false, true), 'gemm.onnx');
    expect(info.inputs).toEqual(['a', 'b']);
    expect(info.outputs).toEqual(['y']);
    expect([...info.nodeOutputs]).toEqual(['y']);
    expect(info.nodes).toBe(1);
    const topk = buildTopKScoringModel({
      itemFactors: new Float32Array(6),
      numItems: 3,
      dimension: 2,
    });
    const exposed = inspectOnnxModel(exposeTensor(topk, 'scores', 'topk.onnx'));
    expect(exposed.outputs).toEqual(['values', 'indices', 'scores']);
    expect(exposed.initializers).toEqual(new Set(['items']));
    expect(() => exposeTensor(topk, 'nope', 'topk.onnx')).toThrow(
      /topk\.onnx: expected a tensor named "nope"/,
    );
    let error: unknown;
    try {
      inspectOnnxModel(Uint8Array.of(0x3a, 0x05, 1), 'broken.onnx');
    } catch (e) {
      error = e;
    }
    expect(OnnxModelError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(
      /broken\.onnx: expected an ONNX model \(ModelProto\), found truncated/,
    );
  });

  it('protobuf: what the writer writes, the reader reads back', () => {
    const bytes = new ProtoWriter()
      .int(1, 300)
      .int(2, -1)
      .string(3, 'héllo')
      .message(4, (w) => w.int(1, 7))
      .packedInts(5, [1, 128, 3])
      .float(6, 1.5)
      .finish();
    const fields = readFields(bytes);
    expect(fields.map((f) => [f.field, f.wire])).toEqual([
      [1, 0],
      [2, 0],
      [3, 2],
      [4, 2],
      [5, 2],
      [6, 5],
    ]);
    expect(fields[0]!.value).toBe(300n);
    expect(fields[1]!.value).toBe(2n ** 64n - 1n);
    expect(text(fields[2]!)).toBe('héllo');
    expect(readFields(fields[3]!.bytes!)[0]!.value).toBe(7n);
    expect(Array.from(fields[4]!.bytes!)).toEqual([1, 0x80, 1, 3]);
    expect(
      new DataView(fields[5]!.bytes!.buffer, fields[5]!.bytes!.byteOffset).getFloat32(0, true),
    ).toBe(1.5);
    expect(() => readFields(Uint8Array.of(0x08))).toThrow(/truncated varint/);
  });
});
