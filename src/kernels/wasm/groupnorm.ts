// GroupNorm's normalisation and its gradient for the wasm backend, fused: one kernel each where
// the composed form ran about ten (mean, deviation, square, mean, add, sqrt, reciprocal, product,
// and their broadcasts; more backward). TypeScript loops over rows of M elements (the work is a
// few passes over memory, no products), two passes each: statistics, then the output.
type F = Float32Array | Float64Array;

/**
 * y = (x - mean) * rstd per row of [rows, M], rstd = 1 / sqrt(var + eps). The statistics in one
 * pass, shifted by the row's first element (so the sum of squares does not cancel for rows far
 * from zero), accumulated in float64.
 */
export function groupNormInto(x: F, rows: number, M: number, eps: number, y: F, rstd: F): void {
  for (let r = 0, o = 0; r < rows; r++, o += M) {
    const x0 = x[o];
    let s = 0, ss = 0;
    for (let i = o, e = o + M; i < e; i++) {
      const d = x[i] - x0;
      s += d;
      ss += d * d;
    }
    const m = s / M, k = 1 / Math.sqrt(Math.max(0, ss / M - m * m) + eps), mu = x0 + m;
    rstd[r] = k;
    for (let i = o, e = o + M; i < e; i++) y[i] = (x[i] - mu) * k;
  }
}

/** dx = rstd * (g - mean(g) - y * mean(g * y)) per row of [rows, M]. */
export function groupNormGradInto(g: F, y: F, rstd: F, rows: number, M: number, dx: F): void {
  for (let r = 0, o = 0; r < rows; r++, o += M) {
    let sg = 0, sgy = 0;
    for (let i = o, e = o + M; i < e; i++) {
      const gi = g[i];
      sg += gi;
      sgy += gi * y[i];
    }
    const k = rstd[r], a = k * sg / M, b = k * sgy / M;
    for (let i = o, e = o + M; i < e; i++) dx[i] = k * g[i] - a - y[i] * b;
  }
}
