import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, readFeatureMatrix } from '@advrec/data';
import { inspectOnnxModel, readFields, text } from '@advrec/onnx';
import { sharedDataDir } from '@advrec/testing';
import {
  KNOWN_EXTRACTORS,
  RESNET50_V1,
  buildResNet50,
  extractFeatures,
  identifyExtractor,
  knownExtractor,
} from './index.js';

const posters = join(sharedDataDir(), 'ml-1m', 'posters');

/** Op types of the graph's nodes, in order. */
function opTypes(bytes: Uint8Array): string[] {
  const graph = readFields(bytes).find((f) => f.field === 7)!;
  return readFields(graph.bytes!)
    .filter((f) => f.field === 1)
    .map((n) => text(readFields(n.bytes!).find((f) => f.field === 4)!));
}

describe('buildResNet50', () => {
  it('has the model zoo graph: 53 convolutions, 16 bottlenecks, the zoo tensor names', () => {
    const bytes = buildResNet50({ baseWidth: 4, classes: 10 });
    const ops = opTypes(bytes);
    const count = (op: string) => ops.filter((o) => o === op).length;
    expect(count('Conv')).toBe(53);
    expect(count('BatchNormalization')).toBe(53);
    expect(count('Add')).toBe(16);
    expect(count('Relu')).toBe(1 + 16 * 3);
    expect(ops.slice(-3)).toEqual(['GlobalAveragePool', 'Flatten', 'Gemm']);
    const info = inspectOnnxModel(bytes);
    expect(info.inputs).toEqual(['data']);
    expect(info.outputs).toEqual([RESNET50_V1.logits]);
    for (const name of [
      RESNET50_V1.pooledTensor,
      'resnetv17_stage1_conv3_fwd',
      'resnetv17_stage4__plus2',
      'resnetv17_stage3_activation5',
    ])
      expect(info.nodeOutputs.has(name)).toBe(true);
    expect(info.nodeOutputs.has('resnetv17_stage3_activation6')).toBe(false);
  });

  it('is deterministic in its seed, and the full width is the zoo file to within 0.2%', () => {
    const small = (seed: number) =>
      createHash('sha256')
        .update(buildResNet50({ baseWidth: 2, classes: 3, seed }))
        .digest('hex');
    expect(small(5)).toBe(small(5));
    expect(small(5)).not.toBe(small(6));
    const full = buildResNet50();
    expect(Math.abs(full.length / RESNET50_V1.source.memberBytes - 1)).toBeLessThan(0.002);
  });

  it('refuses a width or class count that is not a positive integer, naming it', () => {
    expect(() => buildResNet50({ baseWidth: 0 })).toThrow(ConfigError);
    expect(() => buildResNet50({ classes: 1.5 })).toThrow(/classes/);
  });

  it('extracts finite, distinct pooled features of real posters, the pooled layer by default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'advrec-resnet-'));
    try {
      const model = join(dir, 'resnet50.onnx');
      await writeFile(model, buildResNet50({ baseWidth: 8 }));
      const result = await extractFeatures({
        model,
        images: [1, 2, 3].map((k) => ({ itemId: String(k), file: join(posters, `${k}.jpg`) })),
        output: join(dir, 'features.npy'),
        threads: 2,
      });
      expect(result.manifest.dimension).toBe(8 * 32);
      expect(result.manifest.inputName).toBe('data');
      // Recognised as the zoo's ResNet-50 v1: its pooled layer, not the first output (logits).
      expect(result.manifest.tensor).toBe(RESNET50_V1.pooledTensor);
      const matrix = await readFeatureMatrix(join(dir, 'features.npy'));
      expect(matrix.rows).toBe(3);
      let differ = 0;
      for (let k = 0; k < matrix.dimension; k++) {
        expect(Number.isFinite(matrix.data[k])).toBe(true);
        if (matrix.data[k] !== matrix.data[matrix.dimension + k]) differ++;
      }
      expect(differ).toBeGreaterThan(matrix.dimension / 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('known extractors', () => {
  it('pins a source for each and names the known ones for an unknown name', () => {
    for (const e of KNOWN_EXTRACTORS) expect(e.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(knownExtractor('resnet50-v1').dimension).toBe(2048);
    expect(() => knownExtractor('resnet51', '--extractor')).toThrow(
      /--extractor.*resnet50-v1, mobilenetv2-12-int8/,
    );
  });

  it('identifies MobileNetV2 by its SHA-256 and ResNet-50 v1 by its pooled tensor', () => {
    const mobilenet = KNOWN_EXTRACTORS.find((e) => e.name === 'mobilenetv2-12-int8')!;
    expect(identifyExtractor(mobilenet.modelSha256!, new Set())?.name).toBe('mobilenetv2-12-int8');
    expect(identifyExtractor('0'.repeat(64), new Set(['resnetv17_pool1_fwd']))?.name).toBe(
      'resnet50-v1',
    );
    expect(identifyExtractor('0'.repeat(64), new Set(['627']))).toBeNull();
  });
});
