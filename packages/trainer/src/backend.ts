import type { Tfjs } from '@advrec/models';

/** The tfjs namespace in use and which backend runs it. */
export interface TfjsRuntime {
  readonly tf: Tfjs;
  /** `tensorflow` (tfjs-node / tfjs-node-gpu), `wasm` or `cpu`. */
  readonly backend: string;
  /** The package that provided it. */
  readonly source: string;
}

let cached: Promise<TfjsRuntime> | null = null;

async function tryImport(name: string): Promise<Record<string, unknown> | null> {
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * Loads tfjs with gradients registered, best backend first: `@tensorflow/tfjs-node-gpu`,
 * then `@tensorflow/tfjs-node` (optional: loaded only when installed), else
 * `@tensorflow/tfjs` on the wasm backend (SIMD), else its cpu backend. `prefer` forces
 * one backend among those available. The result is cached per process.
 */
export function loadTfjs(prefer?: 'tensorflow' | 'wasm' | 'cpu'): Promise<TfjsRuntime> {
  if (cached && prefer === undefined) return cached;
  const loading = (async (): Promise<TfjsRuntime> => {
    if (prefer === undefined || prefer === 'tensorflow') {
      for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
        const module = await tryImport(name);
        if (module) {
          const tf = ((module as { default?: unknown }).default ?? module) as Tfjs;
          await tf.ready();
          return { tf, backend: tf.getBackend(), source: name };
        }
      }
      if (prefer === 'tensorflow')
        throw new Error('neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
    }
    const module = (await import('@tensorflow/tfjs')) as unknown as Tfjs & { default?: Tfjs };
    const tf = (module.default ?? module) as Tfjs;
    if (prefer !== 'cpu') {
      const wasm = await tryImport('@tensorflow/tfjs-backend-wasm');
      if (wasm) {
        try {
          if (await tf.setBackend('wasm')) {
            await tf.ready();
            return {
              tf,
              backend: 'wasm',
              source: '@tensorflow/tfjs + @tensorflow/tfjs-backend-wasm',
            };
          }
        } catch {
          // fall through to cpu
        }
      }
      if (prefer === 'wasm') throw new Error('the tfjs wasm backend could not start');
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return { tf, backend: 'cpu', source: '@tensorflow/tfjs' };
  })();
  if (prefer === undefined) cached = loading;
  return loading;
}
