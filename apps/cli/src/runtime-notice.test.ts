import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { onnxRuntimeWarning } from './runtime-notice.js';

function sink(): NodeJS.WritableStream & { text: string } {
  const stream = { text: '', write: (s: string) => ((stream.text += s), true) };
  return stream as unknown as NodeJS.WritableStream & { text: string };
}

describe('onnxruntime-node present or loudly absent', () => {
  it('says nothing when onnxruntime-node loads (it is installed in this workspace)', async () => {
    expect(await onnxRuntimeWarning()).toBeNull();
  });

  it('without it, train prints one warning line with the slowdown and how to install it, and still trains', async () => {
    process.env.ADVREC_DISABLE_ONNXRUNTIME = '1';
    try {
      const stderr = sink();
      const code = await runCli(
        [
          'train',
          '--data',
          'synthetic',
          '--set',
          'training.epochs=2',
          '--set',
          'attack.epsilons=[]',
          '--out',
          join(mkdtempSync(join(tmpdir(), 'advrec-notice-')), 'run'),
        ],
        { stdout: sink(), stderr },
      );
      expect(code, stderr.text).toBe(0);
      const warnings = stderr.text.split('\n').filter((l) => l.includes('warning:'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /disabled by ADVREC_DISABLE_ONNXRUNTIME=1: full-ranking evaluation runs on the plain-JS fallback, about 17x slower .*ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install onnxruntime-node/,
      );
    } finally {
      delete process.env.ADVREC_DISABLE_ONNXRUNTIME;
    }
  });
});
