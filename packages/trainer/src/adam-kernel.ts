import type { WasmApi, WasmMemoryHandle, WasmModuleHandle } from './mf-kernel.js';
import { ADAM_KERNEL_WASM_BASE64 } from './wasm/adam-kernel-bytes.js';

/** Largest memory one WebAssembly instance addresses (4 GiB, less one 64 KiB page). */
const MAX_BYTES = 65535 * 65536;

let compiled: WasmModuleHandle | null = null;

type AdamExport = (
  values: number,
  gradient: number,
  m: number,
  v: number,
  count: number,
  beta1: number,
  beta2: number,
  rate: number,
  epsilon: number,
) => void;

/**
 * Float32 arrays laid out in one WebAssembly memory and stepped by a SIMD dense Adam kernel
 * (`wasm/adam-kernel.wat`): the same arithmetic as the plain loop, bit for bit, two entries
 * per instruction. The sequential trainer keeps the item table, its moments and gradients
 * here while it trains. @internal
 */
export class WasmAdamArrays {
  private constructor(
    /** The arrays, in the order asked for. */
    readonly arrays: readonly Float32Array[],
    private readonly kernel: AdamExport,
    private readonly memory: WasmMemoryHandle,
  ) {}

  /** Arrays of the given lengths, zeroed; null when together they pass 4 GiB. */
  static create(lengths: readonly number[]): WasmAdamArrays | null {
    // 16-byte aligned starts.
    const starts: number[] = [];
    let bytes = 0;
    for (const length of lengths) {
      starts.push(bytes);
      bytes += Math.ceil((length * 4) / 16) * 16;
    }
    if (bytes > MAX_BYTES) return null;
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    compiled ??= new api.Module(Buffer.from(ADAM_KERNEL_WASM_BASE64, 'base64'));
    const pages = Math.max(1, Math.ceil(bytes / 65536));
    const memory = new api.Memory({ initial: pages, maximum: pages, shared: false });
    const instance = new api.Instance(compiled, { env: { memory } });
    const arrays = lengths.map((length, k) => new Float32Array(memory.buffer, starts[k], length));
    return new WasmAdamArrays(arrays, (instance.exports as { adam: AdamExport }).adam, memory);
  }

  /**
   * Adam on entries `[from, to)` of `values`, its `gradient` and moments `m`, `v` (each one of
   * {@link arrays}); bias correction folded into `rate`.
   */
  step(
    values: Float32Array,
    gradient: Float32Array,
    m: Float32Array,
    v: Float32Array,
    from: number,
    to: number,
    beta1: number,
    beta2: number,
    rate: number,
    epsilon: number,
  ): void {
    for (const a of [values, gradient, m, v])
      if (a.buffer !== this.memory.buffer)
        throw new Error('WasmAdamArrays.step: an array outside its memory');
    const offset = from * 4;
    this.kernel(
      values.byteOffset + offset,
      gradient.byteOffset + offset,
      m.byteOffset + offset,
      v.byteOffset + offset,
      to - from,
      beta1,
      beta2,
      rate,
      epsilon,
    );
  }
}
