import { ConfigError, DataError } from './errors.js';
import { Random } from './random.js';

/** Options of {@link principalComponents}. */
export interface PrincipalComponentsOptions {
  /** How many components to keep (the reduced dimension). */
  readonly components: number;
  /**
   * Fit on at most this many non-zero rows, drawn from `seed` (default 20,000): the
   * covariance costs rows x D^2 / 2 multiply-adds.
   */
  readonly maxRows?: number;
  /** Subspace iterations (default 20). */
  readonly iterations?: number;
  /** Seed of the row sample and of the starting subspace (default 0). */
  readonly seed?: number;
}

/** A fitted PCA: the mean row and the leading principal directions of a feature matrix. */
export interface PrincipalComponents {
  /** The input dimension D. */
  readonly inputDimension: number;
  /** The number of components kept, k. */
  readonly dimension: number;
  /** The mean of the non-zero rows it was fitted on (length D). */
  readonly mean: Float32Array;
  /** The principal directions, `k x D` row-major, unit norm, by decreasing variance. */
  readonly components: Float32Array;
  /** The same directions as columns, `D x k` row-major: what {@link projectRows} takes. */
  readonly basis: Float32Array;
  /** The variance along each direction (length k, decreasing). */
  readonly variances: Float64Array;
  /** The share of the total variance the k directions keep. */
  readonly explainedVarianceRatio: number;
  /** {@link projectRows} with this PCA's mean and basis. */
  project(features: { readonly data: Float32Array; readonly dimension: number }): Float32Array;
}

/**
 * Projects `N x D` feature rows onto a basis (`D x k` row-major, e.g.
 * {@link PrincipalComponents.basis}) after subtracting `mean`: `(c - mean) . w_j`, into a
 * new `N x k` array. Rows of zeros (items without features) stay zero.
 */
export function projectRows(
  features: { readonly data: Float32Array; readonly dimension: number },
  mean: Float32Array,
  basis: Float32Array,
  k: number,
): Float32Array {
  const d = features.dimension;
  if (mean.length !== d || basis.length !== d * k)
    throw new DataError(`the basis was fitted on ${mean.length}-d features, these are ${d}-d`);
  const count = features.data.length / d;
  const out = new Float32Array(count * k);
  const acc = new Float64Array(k);
  for (let i = 0; i < count; i++) {
    if (isZeroRow(features.data, i * d, d)) continue;
    acc.fill(0);
    for (let c = 0; c < d; c++) {
      const x = features.data[i * d + c]! - mean[c]!;
      const w = c * k;
      for (let j = 0; j < k; j++) acc[j]! += x * basis[w + j]!;
    }
    for (let j = 0; j < k; j++) out[i * k + j] = acc[j]!;
  }
  return out;
}

const isZeroRow = (data: Float32Array, offset: number, d: number): boolean => {
  for (let k = 0; k < d; k++) if (data[offset + k] !== 0) return false;
  return true;
};

/**
 * Principal component analysis of item features (e.g. 1280-d or 2048-d CNN features) for
 * models whose cost grows with the feature dimension, such as VBPR, whose feature products
 * cost `batch x D x K` per step. Fits on the non-zero rows (a seeded sample of at most
 * `maxRows`): the covariance in float64, then subspace iteration with Gram-Schmidt and a
 * Rayleigh-Ritz step (Jacobi on the small `k x k` matrix), so the result is deterministic.
 */
export function principalComponents(
  features: { readonly data: Float32Array; readonly dimension: number },
  options: PrincipalComponentsOptions,
): PrincipalComponents {
  const d = features.dimension;
  const k = options.components;
  const maxRows = options.maxRows ?? 20_000;
  const iterations = options.iterations ?? 20;
  const seed = options.seed ?? 0;
  const issues = [];
  if (!(Number.isInteger(k) && k >= 1 && k <= d))
    issues.push({
      path: 'components',
      message: `must be an integer from 1 to the feature dimension ${d}, got ${k}`,
    });
  if (!(Number.isInteger(maxRows) && maxRows >= 2))
    issues.push({ path: 'maxRows', message: `must be an integer >= 2, got ${maxRows}` });
  if (!(Number.isInteger(iterations) && iterations >= 1))
    issues.push({ path: 'iterations', message: `must be an integer >= 1, got ${iterations}` });
  if (issues.length > 0) throw new ConfigError(issues);
  if (d < 1 || features.data.length % d !== 0)
    throw new DataError(
      `the features hold ${features.data.length} values, not a whole number of ${d}-d rows`,
    );
  const rows: number[] = [];
  for (let i = 0; i < features.data.length / d; i++)
    if (!isZeroRow(features.data, i * d, d)) rows.push(i);
  if (rows.length < 2)
    throw new DataError(`PCA needs two or more non-zero feature rows, found ${rows.length}`);
  const random = new Random(seed);
  if (rows.length > maxRows) {
    // A partial Fisher-Yates: the first maxRows of a seeded shuffle, in row order.
    for (let i = 0; i < maxRows; i++) {
      const j = i + random.nextInt(rows.length - i);
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    rows.length = maxRows;
    rows.sort((a, b) => a - b);
  }
  const n = rows.length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let c = 0; c < d; c++) mean[c]! += features.data[r * d + c]!;
  for (let c = 0; c < d; c++) mean[c]! /= n;
  // Covariance (upper triangle accumulated four rows at a time, then mirrored).
  const cov = new Float64Array(d * d);
  const x = new Float64Array(4 * d);
  for (let r0 = 0; r0 < n; r0 += 4) {
    x.fill(0);
    for (let t = 0; t < 4 && r0 + t < n; t++) {
      const r = rows[r0 + t]!;
      for (let c = 0; c < d; c++) x[t * d + c] = features.data[r * d + c]! - mean[c]!;
    }
    const d2 = 2 * d;
    const d3 = 3 * d;
    for (let a = 0; a < d; a++) {
      const x0 = x[a]!;
      const x1 = x[d + a]!;
      const x2 = x[d2 + a]!;
      const x3 = x[d3 + a]!;
      const row = a * d;
      for (let b = a; b < d; b++)
        cov[row + b]! += x0 * x[b]! + x1 * x[d + b]! + x2 * x[d2 + b]! + x3 * x[d3 + b]!;
    }
  }
  let trace = 0;
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
    trace += cov[a * d + a]!;
  }
  // Subspace iteration on p = k + oversampling directions, stored p x D.
  const p = Math.min(d, k + Math.max(8, Math.ceil(k / 10)));
  let q = new Float64Array(p * d);
  for (let v = 0; v < q.length; v++) q[v] = random.nextGaussian();
  orthonormalize(q, p, d);
  let next = new Float64Array(p * d);
  for (let it = 0; it < iterations; it++) {
    multiplyRows(cov, q, next, p, d);
    [q, next] = [next, q];
    orthonormalize(q, p, d);
  }
  // Rayleigh-Ritz: B = Q C Q^T (p x p), its eigenvectors rotate Q.
  multiplyRows(cov, q, next, p, d);
  const b = new Float64Array(p * p);
  for (let i = 0; i < p; i++)
    for (let j = i; j < p; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += q[i * d + c]! * next[j * d + c]!;
      b[i * p + j] = s;
      b[j * p + i] = s;
    }
  const { values, vectors } = jacobiEigen(b, p);
  const order = Array.from({ length: p }, (_, i) => i).sort((i, j) => values[j]! - values[i]!);
  const components = new Float32Array(k * d);
  const variances = new Float64Array(k);
  let kept = 0;
  for (let j = 0; j < k; j++) {
    const e = order[j]!;
    variances[j] = Math.max(0, values[e]!);
    kept += variances[j]!;
    for (let c = 0; c < d; c++) {
      let s = 0;
      for (let i = 0; i < p; i++) s += vectors[i * p + e]! * q[i * d + c]!;
      components[j * d + c] = s;
    }
  }
  const meanF = Float32Array.from(mean);
  const basis = new Float32Array(d * k);
  for (let j = 0; j < k; j++) for (let c = 0; c < d; c++) basis[c * k + j] = components[j * d + c]!;
  return {
    inputDimension: d,
    dimension: k,
    mean: meanF,
    components,
    basis,
    variances,
    explainedVarianceRatio: trace > 0 ? Math.min(1, kept / trace) : 0,
    project(input) {
      if (input.dimension !== d)
        throw new DataError(
          `the PCA was fitted on ${d}-d features, these are ${input.dimension}-d`,
        );
      return projectRows(input, meanF, basis, k);
    },
  };
}

/** `out[i] = C q[i]` for each of the `p` rows of `q` (C symmetric, `d x d`). */
function multiplyRows(
  cov: Float64Array,
  q: Float64Array,
  out: Float64Array,
  p: number,
  d: number,
): void {
  // Four rows of C against each row of q: C is read a quarter as often.
  for (let a = 0; a < d; a += 4) {
    const rows = Math.min(4, d - a);
    const r0 = a * d;
    const r1 = rows > 1 ? r0 + d : r0;
    const r2 = rows > 2 ? r0 + 2 * d : r0;
    const r3 = rows > 3 ? r0 + 3 * d : r0;
    for (let i = 0; i < p; i++) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      const qi = i * d;
      for (let c = 0; c < d; c++) {
        const v = q[qi + c]!;
        s0 += cov[r0 + c]! * v;
        s1 += cov[r1 + c]! * v;
        s2 += cov[r2 + c]! * v;
        s3 += cov[r3 + c]! * v;
      }
      out[qi + a] = s0;
      if (rows > 1) out[qi + a + 1] = s1;
      if (rows > 2) out[qi + a + 2] = s2;
      if (rows > 3) out[qi + a + 3] = s3;
    }
  }
}

/** Modified Gram-Schmidt on the `p` rows of `q` (a row that vanishes is re-drawn as a unit axis). */
function orthonormalize(q: Float64Array, p: number, d: number): void {
  for (let i = 0; i < p; i++) {
    const qi = i * d;
    for (let pass = 0; pass < 2; pass++)
      for (let j = 0; j < i; j++) {
        const qj = j * d;
        let s = 0;
        for (let c = 0; c < d; c++) s += q[qi + c]! * q[qj + c]!;
        for (let c = 0; c < d; c++) q[qi + c]! -= s * q[qj + c]!;
      }
    let norm = 0;
    for (let c = 0; c < d; c++) norm += q[qi + c]! * q[qi + c]!;
    norm = Math.sqrt(norm);
    if (norm < 1e-300) {
      q.fill(0, qi, qi + d);
      q[qi + (i % d)] = 1;
      i--;
      continue;
    }
    for (let c = 0; c < d; c++) q[qi + c]! /= norm;
  }
}

/** Cyclic Jacobi eigen-decomposition of a symmetric `n x n` matrix (eigenvectors as columns). */
function jacobiEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += m[i * n + i]! ** 2;
      for (let j = i + 1; j < n; j++) off += m[i * n + j]! ** 2;
    }
    if (off <= 1e-22 * diag || off === 0) break;
    for (let pI = 0; pI < n; pI++)
      for (let qI = pI + 1; qI < n; qI++) {
        const apq = m[pI * n + qI]!;
        if (apq === 0) continue;
        const app = m[pI * n + pI]!;
        const aqq = m[qI * n + qI]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < n; r++) {
          const mrp = m[r * n + pI]!;
          const mrq = m[r * n + qI]!;
          m[r * n + pI] = c * mrp - s * mrq;
          m[r * n + qI] = s * mrp + c * mrq;
        }
        for (let r = 0; r < n; r++) {
          const mpr = m[pI * n + r]!;
          const mqr = m[qI * n + r]!;
          m[pI * n + r] = c * mpr - s * mqr;
          m[qI * n + r] = s * mpr + c * mqr;
        }
        for (let r = 0; r < n; r++) {
          const vrp = v[r * n + pI]!;
          const vrq = v[r * n + qI]!;
          v[r * n + pI] = c * vrp - s * vrq;
          v[r * n + qI] = s * vrp + c * vrq;
        }
      }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i]!;
  return { values, vectors: v };
}
