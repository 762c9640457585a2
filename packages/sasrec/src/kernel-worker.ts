/**
 * A worker thread of `ChunkedSASRecKernel`: runs chunks of SASRec passes with its own
 * single-threaded onnxruntime products, on copies of the dense tables sent with each chunk.
 * @internal
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createGemm } from '@advrec/onnx';
import type { SequencePassGradients } from '@advrec/models';
import { SASRecGradientKernel } from './kernel.js';
import type {
  KernelWorkerData,
  KernelWorkerRequest,
  KernelWorkerResponse,
} from './parallel-kernel.js';

const { config } = workerData as KernelWorkerData;
const values = new Map<string, Float32Array>();
const kernel = createGemm({ threads: 1 }).then(
  (gemm) => new SASRecGradientKernel(values, config, gemm),
);

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
