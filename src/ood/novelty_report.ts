// What a novelty record (train --record-novelty, src/models/novelty.ts) shows: which training
// images were most and least novel when first seen, how novelty moves with the training step, and
// whether an image's novelty at first exposure predicts its loss at the end of training.
//
// n(x) is measured against Adam's v_hat at that step, which shrinks and grows over training, so raw
// novelty is mostly a function of the step. Each recorded step holds a whole batch (64 images seen
// at the same moment, under the same model and v_hat), so the comparison that removes the step is
// within the batch: an image's relative novelty is log n(x) minus the median log n of its batch.
// Strips rank by relative novelty; correlations are given for both.
import type { ImageSet } from "../data/dataset.ts";
import { imageGridPng } from "../io/png.ts";
import type { NoveltyRecord } from "../models/novelty.ts";
import { bootstrap, correlation, type Estimate, partialCorrelation, quantileSorted, spearman } from "./stats.ts";

/** Per row: the value minus the median of its step's rows. */
export function withinStep(rec: NoveltyRecord, value: (i: number) => number): Float64Array {
  const byStep = new Map<number, number[]>();
  rec.rows.forEach((r, i) => {
    if (!byStep.has(r.step)) byStep.set(r.step, []);
    byStep.get(r.step)!.push(i);
  });
  const out = new Float64Array(rec.rows.length);
  for (const idx of byStep.values()) {
    const med = quantileSorted(idx.map(value).sort((a, b) => a - b), 0.5);
    for (const i of idx) out[i] = value(i) - med;
  }
  return out;
}

export interface NoveltyCorrelation {
  what: string;
  spearman: Estimate;
}

export interface NoveltyAnalysis {
  rows: number;
  steps: number;
  /** log n(x) minus its batch's median. */
  relative: Float64Array;
  correlations: NoveltyCorrelation[];
  /** Per class: Spearman of relative novelty against the final loss within the class. */
  perClass: { label: number; n: number; spearman: number }[];
}

const logSumExp = (v: ArrayLike<number>) => {
  let m = -Infinity, s = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, v[i]);
  for (let i = 0; i < v.length; i++) s += Math.exp(v[i] - m);
  return m + Math.log(s);
};

/** The correlations of the header, each with a 95% bootstrap interval (rows resampled). */
export function analyseNovelty(rec: NoveltyRecord, finalLoss: ArrayLike<number>, o: { reps?: number; seed?: number } = {}): NoveltyAnalysis {
  const R = rec.rows;
  if (finalLoss.length !== R.length) throw new Error(`novelty: ${finalLoss.length} final losses for ${R.length} rows`);
  const logN = Float64Array.from(R, (r) => Math.log(r.novelty)), loss0 = Float64Array.from(R, (r) => r.loss);
  const logF = Float64Array.from(R, (r) => logSumExp(r.logF)), fin = Float64Array.from(finalLoss);
  const relN = withinStep(rec, (i) => logN[i]), relL = withinStep(rec, (i) => loss0[i]), relF = withinStep(rec, (i) => logF[i]);
  const step = Float64Array.from(R, (r) => r.step);
  const c = (x: Float64Array, y: Float64Array) => correlation(x, y, "spearman", o);
  const sub = (x: Float64Array, idx: Uint32Array) => Float64Array.from(idx, (i) => x[i]);
  const correlations: NoveltyCorrelation[] = [
    { what: "log n(x) at first exposure vs final loss", spearman: c(logN, fin) },
    { what: "relative novelty (log n minus its batch's median) vs final loss", spearman: c(relN, fin) },
    { what: "loss at first exposure vs final loss", spearman: c(loss0, fin) },
    { what: "relative loss at first exposure vs final loss", spearman: c(relL, fin) },
    { what: "relative novelty vs final loss, given the relative first loss (partial)", spearman: bootstrap(R.length, (idx) => partialCorrelation(sub(relN, idx), sub(fin, idx), sub(relL, idx)), o) },
    { what: "relative novelty vs relative loss at first exposure", spearman: c(relN, relL) },
    { what: "relative plain gradient norm (log sum_l f_l) vs final loss", spearman: c(relF, fin) },
    { what: "relative novelty vs relative plain gradient norm", spearman: c(relN, relF) },
    { what: "log n(x) vs step", spearman: c(logN, step) },
  ];
  const labels = [...new Set(R.map((r) => r.label))].sort((a, b) => a - b);
  const perClass = labels.map((label) => {
    const idx = R.map((r, i) => (r.label === label ? i : -1)).filter((i) => i >= 0);
    return { label, n: idx.length, spearman: idx.length > 2 ? spearman(idx.map((i) => relN[i]), idx.map((i) => fin[i])) : NaN };
  });
  return { rows: R.length, steps: new Set(R.map((r) => r.step)).size, relative: relN, correlations, perClass };
}

/**
 * Two PNG grids, one row per class (in label order), `top` images each: the most novel images of
 * each class by relative novelty, most novel first, and the least novel, least novel first.
 */
export function noveltyStrips(rec: NoveltyRecord, relative: ArrayLike<number>, train: ImageSet, top: number): { most: Uint8Array; least: Uint8Array; picks: { label: number; most: number[]; least: number[] }[] } {
  const d = train.c * train.h * train.w, labels = [...new Set(rec.rows.map((r) => r.label))].sort((a, b) => a - b);
  const picks = labels.map((label) => {
    const idx = rec.rows.map((r, i) => (r.label === label ? i : -1)).filter((i) => i >= 0).sort((a, b) => relative[b] - relative[a] || a - b);
    const k = Math.min(top, idx.length);
    return { label, most: idx.slice(0, k).map((i) => rec.rows[i].index), least: idx.slice(-k).reverse().map((i) => rec.rows[i].index) };
  });
  const grid = (which: "most" | "least") => {
    const images = new Uint8Array(labels.length * top * d).fill(255);
    picks.forEach((p, row) => p[which].forEach((ti, col) => images.set(train.images.subarray(ti * d, (ti + 1) * d), (row * top + col) * d)));
    return imageGridPng(images, labels.length * top, train.c, train.h, train.w, top);
  };
  return { most: grid("most"), least: grid("least"), picks };
}

/**
 * n(x) against what v_hat ~ diag(F) / b predicts: if the mean gradient were negligible, each of the
 * P parameters would contribute about b to n(x) on average, so E[n] ~ b P. Per range of steps, the
 * median and mean of n(x) / (b P) over the images recorded in it.
 */
export function noveltyScale(rec: NoveltyRecord, parameters: number, edges: number[]): { from: number; to: number; images: number; median: number; mean: number }[] {
  const bP = rec.header.batch * parameters;
  return edges.slice(0, -1).map((from, k) => {
    const to = edges[k + 1], v = rec.rows.filter((r) => r.step >= from && r.step < to).map((r) => r.novelty / bP).sort((a, b) => a - b);
    return { from, to, images: v.length, median: quantileSorted(v, 0.5), mean: v.reduce((s, x) => s + x, 0) / v.length };
  });
}
