/**
 * Index of the first NaN or infinite value of `values`, or -1. The common all-finite case
 * costs one multiply-add per value (NaN propagates through the sum); only then is the
 * culprit searched for.
 */
export function firstNonFinite(values: Float32Array | Float64Array): number {
  let probe = 0;
  for (let x = 0; x < values.length; x++) probe += values[x]! * 0;
  if (probe === 0) return -1;
  for (let x = 0; x < values.length; x++) if (!Number.isFinite(values[x])) return x;
  return -1;
}
