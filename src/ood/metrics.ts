// Detection metrics. Convention: higher score = more in-distribution; in-distribution is the
// positive class for AUROC, AUPR-in and FPR@95%TPR; AUPR-out takes OOD as positive (scores negated).
import { Generator } from "../autograd/random.ts";

/** P(score_in > score_out) + 0.5 P(tie), by ranks with ties averaged. */
export function auroc(inScores: ArrayLike<number>, outScores: ArrayLike<number>): number {
  const n1 = inScores.length, n0 = outScores.length;
  if (!n1 || !n0) throw new Error(`auroc: need both classes (${n1} in, ${n0} out)`);
  const all = [...Array.from(inScores, (s) => [s, 1] as const), ...Array.from(outScores, (s) => [s, 0] as const)];
  for (const [s] of all) if (Number.isNaN(s)) throw new Error("auroc: NaN score");
  all.sort((a, b) => a[0] - b[0]);
  let rankSumIn = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j][0] === all[i][0]) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j
    for (let k = i; k < j; k++) if (all[k][1] === 1) rankSumIn += avgRank;
    i = j;
  }
  return (rankSumIn - (n1 * (n1 + 1)) / 2) / (n1 * n0);
}

/** Cumulative (true, false) positive counts at each distinct threshold, from the highest score down. */
function sweep(pos: ArrayLike<number>, neg: ArrayLike<number>): [number, number][] {
  const all = [...Array.from(pos, (s) => [s, 1] as const), ...Array.from(neg, (s) => [s, 0] as const)].sort((a, b) => b[0] - a[0]);
  const out: [number, number][] = [];
  let tp = 0, fp = 0;
  for (let i = 0; i < all.length;) {
    const s = all[i][0];
    for (; i < all.length && all[i][0] === s; i++) {
      if (all[i][1]) tp++;
      else fp++;
    }
    out.push([tp, fp]);
  }
  return out;
}

/** Average precision (area under the precision-recall step curve), ties taken as one threshold. */
export function averagePrecision(pos: ArrayLike<number>, neg: ArrayLike<number>): number {
  let prevRecall = 0, ap = 0;
  for (const [tp, fp] of sweep(pos, neg)) {
    const recall = tp / pos.length;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

/** FPR at the threshold where at least `tpr` of in-distribution scores are >= threshold. */
export function fprAtTpr(inScores: ArrayLike<number>, outScores: ArrayLike<number>, tpr = 0.95): number {
  const s = Array.from(inScores).sort((a, b) => b - a);
  const thr = s[Math.max(0, Math.ceil(tpr * s.length) - 1)];
  let fp = 0;
  for (let i = 0; i < outScores.length; i++) if (outScores[i] >= thr) fp++;
  return fp / outScores.length;
}

/** Percentile bootstrap interval for AUROC (resampling each class with replacement, seeded). */
export function aurocBootstrap(inScores: ArrayLike<number>, outScores: ArrayLike<number>, reps = 500, level = 0.95, seed = 0): [number, number] {
  const g = new Generator(seed);
  // Resampled from the sorted scores, so the interval depends on the sets of scores, not on the inputs' order.
  const [ins, outs] = [inScores, outScores].map((a) => Float64Array.from(a).sort());
  const draw = (a: Float64Array) => Array.from({ length: a.length }, () => a[g.int(a.length)]);
  const vals = Array.from({ length: reps }, () => auroc(draw(ins), draw(outs))).sort((a, b) => a - b);
  const lo = vals[Math.floor(((1 - level) / 2) * reps)], hi = vals[Math.min(reps - 1, Math.ceil(((1 + level) / 2) * reps) - 1)];
  return [lo, hi];
}

export interface Metrics {
  auroc: number;
  aurocCI: [number, number];
  auprIn: number;
  auprOut: number;
  fpr95: number;
}

export function allMetrics(inScores: ArrayLike<number>, outScores: ArrayLike<number>, seed = 0): Metrics {
  return {
    auroc: auroc(inScores, outScores),
    aurocCI: aurocBootstrap(inScores, outScores, 500, 0.95, seed),
    auprIn: averagePrecision(inScores, outScores),
    auprOut: averagePrecision(Array.from(outScores, (s) => -s), Array.from(inScores, (s) => -s)),
    fpr95: fprAtTpr(inScores, outScores),
  };
}

/** ROC curve points (FPR, TPR), thresholds from high to low. */
export function rocCurve(inScores: ArrayLike<number>, outScores: ArrayLike<number>): [number, number][] {
  return [[0, 0], ...sweep(inScores, outScores).map(([tp, fp]) => [fp / outScores.length, tp / inScores.length] as [number, number])];
}
