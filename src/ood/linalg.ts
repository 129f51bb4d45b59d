// Dense linear algebra on the host in float64, row-major: what the densities (density.ts) and the
// full-FIM method (woodbury.ts) solve with. One Cholesky for both.

/** Lower Cholesky factor of a symmetric positive definite n x n matrix (row-major). */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let p = 0; p < j; p++) s -= c[ri + p] * c[rj + p];
      if (i === j) {
        if (!(s > 0)) throw new Error(`cholesky: matrix is not positive definite (pivot ${i}: ${s})`);
        c[ri + i] = Math.sqrt(s);
      } else c[ri + j] = s / c[rj + j];
    }
  }
  return c;
}

/**
 * Inverse of a lower-triangular n x n matrix (row-major; lower triangular too), column by column:
 * forward substitution L x = e_j reads rows of L and x contiguously (2.5x the row-times-column
 * order at n = 1000, same result).
 */
export function lowerInverse(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n), x = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      const ri = i * n;
      let s = i === j ? 1 : 0;
      for (let p = j; p < i; p++) s -= l[ri + p] * x[p];
      x[i] = s / l[ri + i];
    }
    for (let i = j; i < n; i++) inv[i * n + j] = x[i];
  }
  return inv;
}

/** m + v I for an n x n matrix (a copy). */
export function addDiagonal(m: ArrayLike<number>, n: number, v: number): Float64Array {
  const out = Float64Array.from(m);
  for (let i = 0; i < n; i++) out[i * n + i] += v;
  return out;
}

/** y = L^{-1} b by forward substitution (L lower-triangular n x n, row-major). */
export function forwardSubstitute(l: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let p = 0; p < i; p++) s -= l[i * n + p] * y[p];
    y[i] = s / l[i * n + i];
  }
  return y;
}
