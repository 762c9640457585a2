/**
 * A worker thread of `ChunkedSequenceKernel`: runs chunks of a model's passes with the
 * model's `createPassKernel` and its own single-threaded onnxruntime products, on copies of
 * the dense tables sent with each chunk.
 * @internal
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createGemm } from '@advrec/onnx';
import type { SequencePassGradients } from './sequential.js';
import type {
  CreatePassKernel,
  KernelWorkerData,
  KernelWorkerRequest,
  KernelWorkerResponse,
} from './sequence-kernel.js';

const { module, config } = workerData as KernelWorkerData;
const values = new Map<string, Float32Array>();
const kernel = Promise.all([
  import(module) as Promise<{ createPassKernel: CreatePassKernel }>,
  createGemm({ threads: 1 }),
]).then(([m, gemm]) => m.createPassKernel(config, values, gemm));

parentPort!.on('message', (request: KernelWorkerRequest) => {
  void (async () => {
    let response: KernelWorkerResponse;
    const transfer: ArrayBuffer[] = [];
    try {
      for (const [name, table] of request.dense) values.set(name, table);
      const gradients: SequencePassGradients = await (await kernel).lossAndGradients(request.pass);
      response = { id: request.id, gradients };
      transfer.push(
        gradients.inputRows.buffer as ArrayBuffer,
        gradients.positiveRows.buffer as ArrayBuffer,
        gradients.negativeRows.buffer as ArrayBuffer,
        ...[...gradients.dense.values()].map((g) => g.buffer as ArrayBuffer),
      );
    } catch (error) {
      response = {
        id: request.id,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      };
    }
    parentPort!.postMessage(response, transfer);
  })();
});
