/**
 * Embedding diversity, the measure ATSRec uses to explain why adversarial training helps
 * sequential recommenders: the mean cosine similarity over all pairs of distinct rows
 * (lower = more diverse; degraded, collapsed item embeddings approach 1). Exact and linear
 * in the rows: with unit rows `n_i`, `sum_{i != j} n_i . n_j = ||sum_i n_i||^2 - N`.
 * Rows with zero norm are skipped (they have no direction).
 */
export function meanPairwiseCosine(
  values: Float32Array,
  rows: number,
  dimension: number,
): { readonly meanCosine: number; readonly rowsUsed: number } {
  if (values.length !== rows * dimension)
    throw new RangeError(`${values.length} values are not ${rows} rows x ${dimension}`);
  const sum = new Float64Array(dimension);
  let used = 0;
  for (let r = 0; r < rows; r++) {
    const at = r * dimension;
    let norm = 0;
    for (let c = 0; c < dimension; c++) norm += values[at + c]! * values[at + c]!;
    if (!(norm > 0)) continue;
    if (!Number.isFinite(norm)) throw new RangeError(`row ${r} is not finite`);
    const inv = 1 / Math.sqrt(norm);
    for (let c = 0; c < dimension; c++) sum[c] = sum[c]! + values[at + c]! * inv;
    used++;
  }
  if (used < 2) return { meanCosine: Number.NaN, rowsUsed: used };
  let squared = 0;
  for (let c = 0; c < dimension; c++) squared += sum[c]! * sum[c]!;
  return { meanCosine: (squared - used) / (used * (used - 1)), rowsUsed: used };
}

/**
 * The mean L2 norm of a table's rows: the scale an embedding perturbation is measured against
 * (ATSRec's and the attack's epsilons are multiples of it for sequential models).
 */
export function meanRowNorm(values: Float32Array, rows: number, dimension: number): number {
  if (values.length !== rows * dimension)
    throw new RangeError(`${values.length} values are not ${rows} rows x ${dimension}`);
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let c = 0; c < dimension; c++) norm += values[r * dimension + c]! ** 2;
    sum += Math.sqrt(norm);
  }
  return rows > 0 ? sum / rows : Number.NaN;
}
