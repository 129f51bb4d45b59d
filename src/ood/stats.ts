// Statistics for comparing scores across models and over training: Pearson and Spearman
// correlations (ties get their average rank), partial rank correlation, percentile bootstrap
// intervals over paired samples, and the overlap of two scores' top fractions. Everything in
// float64 on the host; inputs are plain arrays of equal length.
import { Generator } from "../autograd/random.ts";

function checkPaired(x: ArrayLike<number>, y: ArrayLike<number>, what: string): void {
  if (x.length !== y.length) throw new Error(`${what}: ${x.length} and ${y.length} values (need pairs)`);
  for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i]) || Number.isNaN(y[i])) throw new Error(`${what}: NaN at index ${i}`);
}

/**
 * Ranks 1..n, tied values sharing the average of their ranks: a native numeric sort of the values,
 * then each distinct value's average rank (first + 1 + last) / 2 looked up per element.
 */
export function ranks(x: ArrayLike<number>): Float64Array {
  const n = x.length, sorted = Float64Array.from(x).sort(), avg = new Map<number, number>(), r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && sorted[j] === sorted[i]) j++;
    avg.set(sorted[i], (i + 1 + j) / 2);
    i = j;
  }
  for (let i = 0; i < n; i++) r[i] = avg.get(x[i])!;
  return r;
}

/** Pearson's r; NaN when either variable is constant (or n < 2). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPaired(x, y, "pearson");
  const n = x.length;
  if (n < 2) return NaN;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) (mx += x[i]), (my += y[i]);
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** Spearman's rho: Pearson's r of the ranks (ties averaged). */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPaired(x, y, "spearman");
  return pearson(ranks(x), ranks(y));
}

/** Partial correlation of x and y given z from the three pairwise correlations (of the ranks, for spearman). */
export function partialCorrelation(x: ArrayLike<number>, y: ArrayLike<number>, z: ArrayLike<number>, kind: "pearson" | "spearman" = "spearman"): number {
  const c = kind === "spearman" ? spearman : pearson;
  const rxy = c(x, y), rxz = c(x, z), ryz = c(y, z);
  return (rxy - rxz * ryz) / Math.sqrt((1 - rxz * rxz) * (1 - ryz * ryz));
}

/** The q-quantile (0..1) of sorted values, by linear interpolation between order statistics. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (!n) return NaN;
  const h = (n - 1) * Math.min(1, Math.max(0, q)), lo = Math.floor(h), hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export interface Estimate {
  value: number;
  /** Percentile bootstrap interval (level 95% unless stated). */
  ci: [number, number];
}

/**
 * A statistic of n paired observations with a percentile bootstrap interval: `stat(idx)` computes
 * it on the observations at idx (with repeats); the interval resamples the n pairs with
 * replacement `reps` times (seeded). Replicates that come out NaN (a constant resample) are left out.
 */
export function bootstrap(n: number, stat: (idx: Uint32Array) => number, o: { reps?: number; level?: number; seed?: number } = {}): Estimate {
  const reps = o.reps ?? 1000, level = o.level ?? 0.95, g = new Generator(o.seed ?? 0);
  const all = new Uint32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  const value = stat(all), vals: number[] = [], idx = new Uint32Array(n);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) idx[i] = g.int(n);
    const v = stat(idx);
    if (!Number.isNaN(v)) vals.push(v);
  }
  vals.sort((a, b) => a - b);
  return { value, ci: [quantileSorted(vals, (1 - level) / 2), quantileSorted(vals, (1 + level) / 2)] };
}

const pick = (x: ArrayLike<number>, idx: Uint32Array) => Float64Array.from(idx, (i) => x[i]);

/** Pearson's or Spearman's correlation with its bootstrap interval (pairs resampled). */
export function correlation(x: ArrayLike<number>, y: ArrayLike<number>, kind: "pearson" | "spearman", o: { reps?: number; seed?: number } = {}): Estimate {
  checkPaired(x, y, kind);
  const c = kind === "spearman" ? spearman : pearson;
  return bootstrap(x.length, (idx) => c(pick(x, idx), pick(y, idx)), o);
}

/**
 * Indices of the k = ceil(frac * n) largest values (ties broken by the lower index, so the set is
 * fixed by the values alone).
 */
export function topIndices(x: ArrayLike<number>, frac: number): number[] {
  if (!(frac > 0 && frac <= 1)) throw new Error(`topIndices: fraction ${frac} (allowed: > 0 and <= 1)`);
  const k = Math.ceil(frac * x.length);
  return Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b).slice(0, k);
}

/**
 * How many of a's top fraction are also in b's, as a share of the top set's size k; `chance` is
 * the share expected of two independent scores (k / n).
 */
export function topOverlap(a: ArrayLike<number>, b: ArrayLike<number>, frac = 0.05): { overlap: number; k: number; chance: number } {
  checkPaired(a, b, "topOverlap");
  const ta = topIndices(a, frac), tb = new Set(topIndices(b, frac));
  const both = ta.filter((i) => tb.has(i)).length;
  return { overlap: both / ta.length, k: ta.length, chance: ta.length / a.length };
}

/** Cohen's kappa of two binary labellings (agreement beyond chance); NaN when chance agreement is 1. */
export function cohenKappa(a: ArrayLike<boolean>, b: ArrayLike<boolean>): number {
  if (a.length !== b.length || !a.length) throw new Error(`cohenKappa: ${a.length} and ${b.length} labels`);
  const n = a.length;
  let agree = 0, pa = 0, pb = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) agree++;
    if (a[i]) pa++;
    if (b[i]) pb++;
  }
  const po = agree / n, pe = (pa / n) * (pb / n) + (1 - pa / n) * (1 - pb / n);
  return pe === 1 ? NaN : (po - pe) / (1 - pe);
}
