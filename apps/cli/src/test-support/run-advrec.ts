/**
 * The CLI end-to-end harness, once for every e2e file: the built `advrec` binary run as a
 * user runs it (a child process), its exit code, output and time.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (`apps/cli`) and its built binary. */
export const cliRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const advrecBin = join(cliRoot, 'dist', 'bin.js');

/** What a finished `advrec` process left. */
export interface AdvrecRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Options of one call. */
export interface AdvrecCallOptions {
  readonly cwd?: string;
  /** Added to the environment of this call. */
  readonly env?: Readonly<Record<string, string>>;
  /** Called with stderr so far at every chunk (e.g. to signal the child at a given line). */
  readonly onStderr?: (text: string, child: ReturnType<typeof spawn>) => void;
}

/**
 * A function that runs `advrec <args>` in `defaults.cwd` with `defaults.env` added to this
 * process's environment (and `FORCE_COLOR=0`).
 */
export function advrecRunner(defaults: {
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
}): (args: readonly string[], options?: AdvrecCallOptions) => Promise<AdvrecRun> {
  return (args, options = {}) => {
    const started = performance.now();
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [advrecBin, ...args], {
        cwd: options.cwd ?? defaults.cwd,
        env: { ...process.env, ...defaults.env, ...options.env, FORCE_COLOR: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        options.onStderr?.(stderr, child);
      });
      child.on('error', fail);
      child.on('close', (code) =>
        done({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 }),
      );
    });
  };
}
