/**
 * onnxruntime-node is optional: without it full-ranking evaluation runs on a plain-JS
 * fallback that gives the same numbers much more slowly. Commands that evaluate say so once,
 * with how to install it, instead of silently taking 17 times longer.
 */
import { ONNXRUNTIME_INSTALL_HINT, loadOnnxRuntime } from '@advrec/onnx';
import type { CommandContext } from './run-folder/context.js';

let warned = false;

/** The warning line, or `null` when onnxruntime-node loads. */
export async function onnxRuntimeWarning(): Promise<string | null> {
  const load = await loadOnnxRuntime();
  if (load.available) return null;
  return `warning: ${load.reason}: full-ranking evaluation runs on the plain-JS fallback, about 17x slower (Gowalla: 21.7 s instead of 1.29 s per evaluation in pnpm bench eval); ${ONNXRUNTIME_INSTALL_HINT}`;
}

/** Prints {@link onnxRuntimeWarning} once per process when the run evaluates by full ranking. */
export async function warnIfNoOnnxRuntime(
  context: CommandContext,
  protocol: 'full' | 'sampled',
): Promise<void> {
  if (warned || protocol !== 'full') return;
  const line = await onnxRuntimeWarning();
  if (line === null) return;
  warned = true;
  context.progress.log(line);
}
