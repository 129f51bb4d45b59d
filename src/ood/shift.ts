// Where does an OOD set's shift lie? The per-layer log-norms of in-distribution inputs can share one
// strong common factor (an input with large gradients has them in every layer). A set shifted along
// that factor differs from the fit data in "overall gradient size" only; a per-layer (diagonal)
// density scores it by how far each coordinate moves, a directional score (total norm) by which
// way. The diagnostics below split the features into that factor (PC1 of the fit z-scores) and
// the rest, and say how each part separates the set.
import { DiagonalGaussian, type FullGaussian } from "./density.ts";
import { auroc } from "./metrics.ts";

/** Rows of log f_l and the mean NLL (bits/dim) of each row's input or group. */
export interface FeatureRows {
  rows: ArrayLike<number>[];
  nll: ArrayLike<number>;
}

export interface ShiftDiagnostic {
  set: string;
  /** Kept features (k) and the share of the fit's correlation (trace k) on its first principal component. */
  k: number;
  pc1Share: number;
  /** Mean correlation between two different features on the fit data (the paper finds it weak). */
  meanCorrelation: number;
  /** Correlation of the PC1 score with the NLL on the fit data (is the common factor the likelihood?). */
  pc1NllCorrelation: number;
  /** |mean z-shift| of the set from the fit mean, in per-feature fit SDs (Euclidean over features). */
  shiftNorm: number;
  /** Share of the squared mean shift that lies along PC1. */
  shiftAlongPc1: number;
  /** Mean shift along PC1 in PC1 SDs; PC1 is oriented so that positive = larger gradients. */
  shiftPc1Sd: number;
  /**
   * AUROC (in-distribution evaluation vs the set) of PC1 alone, one-sided (larger gradients = OOD),
   * and of the diagonal Gaussian refitted on the z-scores with PC1 projected out.
   */
  aurocPc1: number;
  aurocResidual: number;
  /** Medians of the squared Mahalanobis distance (full covariance) and of the diagonal sum of z^2. */
  mahalanobis2: { fit: number; inEval: number; ood: number };
  diagZ2: { fit: number; inEval: number; ood: number };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function zRows(rows: ArrayLike<number>[], d: DiagonalGaussian): Float64Array[] {
  return rows.map((r) => Float64Array.from(d.kept, (l) => (r[l] - d.mean[l]) / Math.sqrt(d.variance[l])));
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) (ma += a[i] / n), (mb += b[i] / n);
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) (sab += (a[i] - ma) * (b[i] - mb)), (saa += (a[i] - ma) ** 2), (sbb += (b[i] - mb) ** 2);
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/** Leading eigenpair of a symmetric positive semi-definite k x k matrix by power iteration. */
export function leadingEigen(m: Float64Array, k: number, iters = 500): { value: number; vector: Float64Array } {
  let v = new Float64Array(k).fill(1 / Math.sqrt(k)), value = 0;
  for (let it = 0; it < iters; it++) {
    const w = new Float64Array(k);
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) w[i] += m[i * k + j] * v[j];
    const n = Math.hypot(...w);
    if (n === 0) return { value: 0, vector: v };
    const next = w.map((x) => x / n);
    const delta = Math.hypot(...next.map((x, i) => x - v[i]));
    v = next;
    value = n;
    if (delta < 1e-12) break;
  }
  return { value, vector: v };
}

/** The fit data's common factor: PC1 of the z-scores (oriented: positive = larger gradients), and a row's score on it. */
export function commonFactor(d: DiagonalGaussian, fitRows: ArrayLike<number>[]) {
  const zf = zRows(fitRows, d), k = d.kept.length, n = zf.length;
  const corr = new Float64Array(k * k);
  for (const z of zf) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) corr[i * k + j] += (z[i] * z[j]) / n;
  const { value, vector } = leadingEigen(corr, k);
  if (vector.reduce((s, x) => s + x, 0) < 0) vector.forEach((x, i) => (vector[i] = -x));
  const pc1 = (z: Float64Array) => z.reduce((s, x, i) => s + x * vector[i], 0);
  return { zf, corr, value, vector, pc1, score: (row: ArrayLike<number>) => pc1(zRows([row], d)[0]) };
}

export function shiftDiagnostic(d: DiagonalGaussian, full: FullGaussian, fit: FeatureRows, inEval: FeatureRows, ood: FeatureRows & { name: string }): ShiftDiagnostic {
  const k = d.kept.length;
  const { zf, corr, value, vector, pc1 } = commonFactor(d, fit.rows);
  let off = 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) if (i !== j) off += corr[i * k + j];
  const residual = (z: Float64Array) => {
    const p = pc1(z);
    return z.map((x, i) => x - p * vector[i]);
  };
  const ze = zRows(inEval.rows, d), zo = zRows(ood.rows, d);
  const delta = new Float64Array(k);
  for (const z of zo) for (let i = 0; i < k; i++) delta[i] += z[i] / zo.length;
  const norm2 = delta.reduce((s, x) => s + x * x, 0);
  const along = pc1(delta);
  const res = new DiagonalGaussian(zf.map(residual), k);
  const z2 = (zs: Float64Array[]) => median(zs.map((z) => z.reduce((s, x) => s + x * x, 0)));
  const m2 = (rows: ArrayLike<number>[]) => median(rows.map((r) => full.mahalanobis2(r)));
  return {
    set: ood.name, k, pc1Share: value / k, meanCorrelation: k > 1 ? off / (k * (k - 1)) : 0,
    pc1NllCorrelation: correlation(zf.map(pc1), fit.nll),
    shiftNorm: Math.sqrt(norm2), shiftAlongPc1: norm2 > 0 ? (along * along) / norm2 : 0, shiftPc1Sd: value > 0 ? along / Math.sqrt(value) : 0,
    aurocPc1: auroc(ze.map((z) => -pc1(z)), zo.map((z) => -pc1(z))),
    aurocResidual: auroc(ze.map((z) => res.score(residual(z))), zo.map((z) => res.score(residual(z)))),
    mahalanobis2: { fit: m2(fit.rows), inEval: m2(inEval.rows), ood: m2(ood.rows) },
    diagZ2: { fit: z2(zf), inEval: z2(ze), ood: z2(zo) },
  };
}
