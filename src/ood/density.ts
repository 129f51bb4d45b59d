// Densities fitted on in-distribution features; each scores a row (higher = more in-distribution).
// Rows are per input (or group): the L layer features log f_l, floored and restricted to the kept
// features by a FeatureSpace first (the rule for degenerate features). The scores built on these,
// their names, fits and detector-file forms, are registered in scores.ts.
import { cholesky, forwardSubstitute } from "./linalg.ts";

export interface Scorer {
  readonly name: string;
  score(row: ArrayLike<number>): number;
}

const LOG2PI = Math.log(2 * Math.PI);

function meanVar(rows: ArrayLike<number>[], L: number): { mean: Float64Array; variance: Float64Array } {
  const n = rows.length, mean = new Float64Array(L), variance = new Float64Array(L);
  for (const r of rows) for (let l = 0; l < L; l++) mean[l] += r[l] / n;
  for (const r of rows) for (let l = 0; l < L; l++) variance[l] += (r[l] - mean[l]) ** 2 / n;
  return { mean, variance };
}

/** How far below the fit's median a feature's floor lies: 10^-6 of the median f_l (6 decades). */
export const FLOOR_DECADES = 6;

/** A feature left out of every score, and why (recorded in detector files and reports). */
export interface DroppedFeature {
  feature: number;
  reason: string;
}

/**
 * The rule for degenerate features. A squared gradient norm f_l can be exactly 0 for some inputs
 * (the diffusion model's output bias under the L1 eps-loss: the mean of the residual signs, 0 when
 * they balance), so log f_l = -inf. Each feature gets a floor relative to the fit's own scale,
 * floor_l = median over the fit of log f_l - 6 ln 10 (f_l at 10^-6 of its median), and every row,
 * fit or scored, is clamped below at it: never -inf, so never a NaN variance or a -inf score. A
 * feature constant on the (floored) fit rows carries no information and is dropped, with the
 * reason recorded. NaN or +inf in a row is an error (the model's gradient overflowed), never scored.
 */
export class FeatureSpace {
  constructor(readonly floor: Float64Array, readonly kept: number[], readonly dropped: DroppedFeature[]) {}

  static fit(rows: ArrayLike<number>[], names: readonly string[]): FeatureSpace {
    const L = names.length;
    if (rows.length < 2) throw new Error(`features: need at least 2 fit rows, got ${rows.length}`);
    rows.forEach((r, i) => checkRow(r, names, `fit row ${i}`));
    const floor = new Float64Array(L);
    for (let l = 0; l < L; l++) {
      const finite = rows.map((r) => r[l]).filter((v) => v > -Infinity).sort((a, b) => a - b);
      // Every fit row at 0: the floor is a fixed tiny value, and the feature is dropped below as constant.
      floor[l] = finite.length ? finite[Math.floor((finite.length - 1) / 2)] - FLOOR_DECADES * Math.LN10 : Math.log(Number.MIN_VALUE);
    }
    const space = new FeatureSpace(floor, [], []);
    const floored = rows.map((r) => space.apply(r));
    const kept: number[] = [], dropped: DroppedFeature[] = [];
    for (let l = 0; l < L; l++) {
      let mean = 0, v = 0;
      for (const r of floored) mean += r[l] / floored.length;
      for (const r of floored) v += (r[l] - mean) ** 2 / floored.length;
      if (v > 1e-12 * Math.max(1, mean * mean)) kept.push(l);
      else dropped.push({ feature: l, reason: `constant on the ${floored.length} fit rows (log f = ${mean.toPrecision(6)})` });
    }
    return new FeatureSpace(floor, kept, dropped);
  }

  /** A row clamped below at the floors (a copy; throws on NaN or +inf). */
  apply(row: ArrayLike<number>, what = "row", names?: readonly string[]): Float64Array {
    if (names) checkRow(row, names, what);
    const out = new Float64Array(this.floor.length);
    for (let l = 0; l < out.length; l++) {
      const v = row[l];
      if (Number.isNaN(v) || v === Infinity) throw new Error(`features: ${what} has log f = ${v} for feature ${l} (a non-finite gradient norm)`);
      out[l] = v > this.floor[l] ? v : this.floor[l];
    }
    return out;
  }
}

function checkRow(r: ArrayLike<number>, names: readonly string[], what: string): void {
  if (r.length !== names.length) throw new Error(`features: ${what} has ${r.length} values, expected ${names.length} (one per feature)`);
  for (let l = 0; l < r.length; l++) {
    if (Number.isNaN(r[l]) || r[l] === Infinity) throw new Error(`features: ${what} has log f = ${r[l]} for ${names[l]} (a non-finite gradient norm)`);
  }
}

/** The parameters of a fitted DiagonalGaussian (saved in detector files). */
export interface DiagonalParams {
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  kept: number[];
}

/**
 * The method's density: an independent Gaussian per feature (log f_l), fitted by maximum
 * likelihood; features with zero variance on the fit data are dropped. Built from fit rows, or
 * from saved parameters (`DiagonalGaussian.fromParams`).
 */
export class DiagonalGaussian implements Scorer {
  readonly name = "gradient";
  readonly mean: Float64Array;
  readonly variance: Float64Array;
  readonly kept: number[];
  /** `kept`: the features to score (a FeatureSpace's); default those with non-zero variance. */
  constructor(rows: ArrayLike<number>[], L: number, kept?: number[]) {
    if (rows.length < 2) throw new Error(`DiagonalGaussian: need at least 2 fit rows, got ${rows.length}`);
    ({ mean: this.mean, variance: this.variance } = meanVar(rows, L));
    this.kept = kept ? [...kept] : [...Array(L).keys()].filter((l) => this.variance[l] > 1e-12 * Math.max(1, this.mean[l] ** 2));
  }
  static fromParams(p: DiagonalParams): DiagonalGaussian {
    const d = Object.create(DiagonalGaussian.prototype) as DiagonalGaussian;
    Object.assign(d, { name: "gradient", mean: Float64Array.from(p.mean), variance: Float64Array.from(p.variance), kept: [...p.kept] });
    return d;
  }
  params(): DiagonalParams {
    return { mean: Array.from(this.mean), variance: Array.from(this.variance), kept: [...this.kept] };
  }
  /** z-score of feature l: (row[l] - mean) / sd. */
  z(row: ArrayLike<number>, l: number): number {
    return (row[l] - this.mean[l]) / Math.sqrt(this.variance[l]);
  }
  score(row: ArrayLike<number>): number {
    let s = 0;
    for (const l of this.kept) s += -0.5 * (LOG2PI + Math.log(this.variance[l]) + (row[l] - this.mean[l]) ** 2 / this.variance[l]);
    return s;
  }
}

/** The parameters of a fitted FullGaussian: mean, kept features and the k x k covariance over them (row-major, as used). */
export interface FullParams {
  mean: ArrayLike<number>;
  kept: number[];
  cov: ArrayLike<number>;
  /** How the covariance was regularised: the ridge, or Ledoit-Wolf's shrinkage intensity toward the diagonal. */
  shrinkage: { kind: "ridge" | "ledoit-wolf"; value: number };
}

export interface FullOptions {
  /**
   * "ridge" (default): the sample covariance plus `ridge` times its mean variance on the diagonal.
   * "ledoit-wolf": the sample correlation shrunk toward the identity (so the covariance toward
   * its own diagonal, the method's diagonal Gaussian) with the Ledoit-Wolf (2004) intensity,
   * estimated from the fit rows (at least 1e-3); for a fit set that is small for the number of features.
   */
  shrink?: "ridge" | "ledoit-wolf";
  ridge?: number;
  /** The features to use (a FeatureSpace's); default those with non-zero variance. */
  kept?: number[];
}

/**
 * Ledoit-Wolf shrinkage intensity rho in [0, 1] for the sample covariance S of the rows z (already
 * centred, n x k), target mu I with mu = tr(S)/k: rho = min(1, b2 / d2) with d2 = ||S - mu I||^2 and
 * b2 = (1/n^2) sum_i ||z_i z_i^T - S||^2 (Frobenius norms; the 1/k factors of the paper cancel).
 */
export function ledoitWolfIntensity(z: ArrayLike<number>[], k: number, S: Float64Array): number {
  const n = z.length;
  let mu = 0;
  for (let i = 0; i < k; i++) mu += S[i * k + i] / k;
  let d2 = 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) d2 += (S[i * k + j] - (i === j ? mu : 0)) ** 2;
  let b2 = 0;
  for (const r of z) {
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) b2 += (r[i] * r[j] - S[i * k + j]) ** 2;
  }
  b2 /= n * n;
  return d2 > 0 ? Math.min(1, b2 / d2) : 1;
}

/** A full-covariance Gaussian over the kept features: ridge-regularised (default) or Ledoit-Wolf shrunk. */
export class FullGaussian implements Scorer {
  readonly name: string = "gradient-fullcov";
  readonly mean: Float64Array;
  readonly kept: number[];
  readonly cov: Float64Array;
  readonly shrinkage: FullParams["shrinkage"];
  readonly #chol: Float64Array;
  readonly #logdet: number;
  constructor(rows: ArrayLike<number>[] | FullParams, L = 0, o: FullOptions = {}) {
    if (!Array.isArray(rows)) {
      const p = rows as FullParams;
      this.mean = Float64Array.from(p.mean);
      this.kept = [...p.kept];
      this.cov = Float64Array.from(p.cov);
      this.shrinkage = { ...p.shrinkage };
      if (this.cov.length !== this.kept.length ** 2) throw new Error(`FullGaussian: covariance has ${this.cov.length} entries, expected ${this.kept.length}^2`);
    } else {
      const diag = new DiagonalGaussian(rows, L, o.kept);
      this.kept = diag.kept;
      this.mean = diag.mean;
      const k = this.kept.length, n = rows.length;
      const centred = rows.map((r) => Float64Array.from(this.kept, (l) => r[l] - this.mean[l]));
      const cov = new Float64Array(k * k);
      for (const d of centred) {
        for (let i = 0; i < k; i++) for (let j = 0; j <= i; j++) cov[i * k + j] += (d[i] * d[j]) / n;
      }
      for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) cov[j * k + i] = cov[i * k + j];
      if (o.shrink === "ledoit-wolf") {
        // In correlation units, so the target is the diagonal covariance and every feature counts alike.
        const sd = Float64Array.from({ length: k }, (_, i) => Math.sqrt(cov[i * k + i]));
        const corr = cov.map((v, ij) => v / (sd[Math.floor(ij / k)] * sd[ij % k]));
        // At least 1e-3, so the covariance stays positive definite when there are fewer fit rows than
        // features (the sample covariance is singular there and the estimate can be 0).
        const rho = Math.max(1e-3, ledoitWolfIntensity(centred.map((d) => d.map((v, i) => v / sd[i])), k, corr));
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) if (i !== j) cov[i * k + j] *= 1 - rho;
        this.shrinkage = { kind: "ledoit-wolf", value: rho };
        this.name = "gradient-fullcov-lw";
      } else {
        const ridge = o.ridge ?? 1e-3;
        let avg = 0;
        for (let i = 0; i < k; i++) avg += cov[i * k + i] / k;
        for (let i = 0; i < k; i++) cov[i * k + i] += ridge * avg;
        this.shrinkage = { kind: "ridge", value: ridge };
      }
      this.cov = cov;
    }
    // The lower Cholesky factor; throws when the covariance is not positive definite (a file's, say).
    const k = this.kept.length;
    const c = cholesky(this.cov, k);
    this.#chol = c;
    let ld = 0;
    for (let i = 0; i < k; i++) ld += 2 * Math.log(c[i * k + i]);
    this.#logdet = ld;
  }
  params(): FullParams {
    return { mean: Array.from(this.mean), kept: [...this.kept], cov: Array.from(this.cov), shrinkage: { ...this.shrinkage } };
  }
  /** Squared Mahalanobis distance of a row from the fit mean (forward substitution with the Cholesky factor). */
  mahalanobis2(row: ArrayLike<number>): number {
    const y = forwardSubstitute(this.#chol, this.kept.length, this.kept.map((l) => row[l] - this.mean[l]));
    return y.reduce((q, v) => q + v * v, 0);
  }
  score(row: ArrayLike<number>): number {
    return -0.5 * (this.kept.length * LOG2PI + this.#logdet + this.mahalanobis2(row));
  }
}

/** Baseline: minus the log of the total squared gradient norm (no per-layer density). */
export class NaiveTotalNorm implements Scorer {
  readonly name = "gradient-naive";
  score(logRow: ArrayLike<number>): number {
    let m = -Infinity;
    for (let l = 0; l < logRow.length; l++) m = Math.max(m, logRow[l]);
    let s = 0;
    for (let l = 0; l < logRow.length; l++) s += Math.exp(logRow[l] - m);
    return -(m + Math.log(s));
  }
}

/** Lanczos log-gamma (g = 7), accurate to ~1e-13 for x > 0. */
export function lgamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

export interface ChiSquareParams {
  k: ArrayLike<number>;
  s: ArrayLike<number>;
  kept: number[];
}

/** Per-layer scaled chi-square on f_l itself (moments: mean k s, variance 2 k s^2), log densities summed. */
export class ChiSquarePerLayer implements Scorer {
  readonly name = "gradient-chi2";
  readonly k: Float64Array;
  readonly s: Float64Array;
  readonly kept: number[];
  static fromParams(p: ChiSquareParams): ChiSquarePerLayer {
    const c = Object.create(ChiSquarePerLayer.prototype) as ChiSquarePerLayer;
    Object.assign(c, { name: "gradient-chi2", k: Float64Array.from(p.k), s: Float64Array.from(p.s), kept: [...p.kept] });
    return c;
  }
  params(): ChiSquareParams {
    return { k: Array.from(this.k), s: Array.from(this.s), kept: [...this.kept] };
  }
  constructor(logRows: ArrayLike<number>[], L: number, kept?: number[]) {
    const rows = logRows.map((r) => Float64Array.from({ length: L }, (_, l) => Math.exp(r[l])));
    const { mean, variance } = meanVar(rows, L);
    this.kept = (kept ?? [...Array(L).keys()]).filter((l) => variance[l] > 0 && mean[l] > 0);
    this.k = new Float64Array(L);
    this.s = new Float64Array(L);
    for (const l of this.kept) {
      this.s[l] = variance[l] / (2 * mean[l]);
      this.k[l] = (2 * mean[l] ** 2) / variance[l];
    }
  }
  score(logRow: ArrayLike<number>): number {
    let t = 0;
    for (const l of this.kept) {
      const k = this.k[l], s = this.s[l], y = Math.exp(logRow[l]) / s;
      t += (k / 2 - 1) * Math.log(y) - y / 2 - (k / 2) * Math.LN2 - lgamma(k / 2) - Math.log(s);
    }
    return t;
  }
}

/**
 * log of the two-sided normal tail 2 Phi(-|z|) = erfc(|z| / sqrt 2), accurate in the far tail:
 * Chebyshev fit of erfc (Numerical Recipes' erfcc, fractional error < 1.2e-7 for every argument),
 * taken in logs so that |z| = 40 gives -804, not log 0.
 */
export function logTwoSidedTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2, t = 1 / (1 + 0.5 * x);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
    t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return Math.log(t) - x * x + poly;
}

/**
 * Fisher's method over the layers: each kept feature's two-sided p-value under the diagonal
 * Gaussian, p_l = 2 Phi(-|z_l|), combined as sum_l log p_l (-2 times it is chi-square with 2k
 * degrees of freedom when the features are independent and in-distribution). Higher = more
 * in-distribution. It weighs every layer's surprise alike, where the Gaussian's log density
 * also rewards layers whose fit is narrow.
 */
export class FisherCombined implements Scorer {
  readonly name = "gradient-fisher";
  constructor(readonly d: DiagonalGaussian) {}
  score(row: ArrayLike<number>): number {
    let s = 0;
    for (const l of this.d.kept) s += logTwoSidedTail(this.d.z(row, l));
    return s;
  }
}
