// The OOD evaluation of one model at one group size: every registered score (scores.ts) fitted on
// the fit set's features and compared, in-distribution evaluation set against each OOD set, by
// AUROC and the other metrics; and the full-FIM scores from the sets' gradients (`--fim`).
import type * as T from "../autograd/index.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Measure, Objective } from "../models/objective.ts";
import type { DiagonalGaussian, FullGaussian } from "./density.ts";
import { FullGaussian as Full } from "./density.ts";
import { forEachGradientBatch, type LoopOptions, type SetFeatures } from "./loop.ts";
import { allMetrics, type Metrics, rocCurve } from "./metrics.ts";
import { FEATURE_SCORES, FittedScores } from "./scores.ts";
import { type FimOptions, WoodburyFim } from "./woodbury.ts";

export interface MethodResult {
  method: string;
  metrics: Metrics;
  roc: [number, number][];
}

export interface Evaluation {
  model: string;
  groupSize: number;
  names: string[];
  objective: string;
  measure: Measure;
  /** The sets' features, rows floored by the fit's feature space (density.ts: FeatureSpace). */
  fit: SetFeatures;
  inEval: SetFeatures;
  ood: SetFeatures[];
  /** Per OOD set, per score. */
  results: Record<string, MethodResult[]>;
  fitted: FittedScores;
  scorers: { diag: DiagonalGaussian; full: FullGaussian };
}

const floored = (f: FittedScores, s: SetFeatures): SetFeatures => ({ ...s, logf: s.logf.map((r, i) => f.floor(r, `${s.name} group ${i}`)) });

/**
 * Fits every feature score on `fit` and scores the in-distribution evaluation set against each OOD
 * set; `methods` limits the metrics (and their bootstrap intervals) to those scores.
 */
export function evaluateSets(model: string, B: number, fit: SetFeatures, inEval: SetFeatures, ood: SetFeatures[], seed = 0, methods?: string[]): Evaluation {
  const fitted = FittedScores.fit(fit.names, fit.logf, fit.nll);
  const [fitF, inF, oodF] = [floored(fitted, fit), floored(fitted, inEval), ood.map((o) => floored(fitted, o))];
  const scores = (name: string, s: SetFeatures) => s.logf.map((r, i) => fitted.score(name, r, s.nll[i]));
  const results: Record<string, MethodResult[]> = {};
  for (const o of oodF) {
    results[o.name] = FEATURE_SCORES.filter(({ name }) => !methods || methods.includes(name)).map(({ name }) => {
      const si = scores(name, inF), so = scores(name, o);
      return { method: name, metrics: allMetrics(si, so, seed), roc: rocCurve(si, so) };
    });
  }
  const diag = fitted.diagonal, full = new Full(fitted.params["gradient-fullcov"] as ConstructorParameters<typeof Full>[0] & object);
  return { model, groupSize: B, names: fit.names, objective: fit.objective, measure: fit.measure, fit: fitF, inEval: inF, ood: oodF, results, fitted, scorers: { diag, full } };
}

/** Adds a score's results (higher = more in-distribution) to an evaluation, per OOD set. */
export function addMethod(e: Evaluation, method: string, inScores: number[], oodScores: Record<string, number[]>, seed = 0): void {
  for (const [set, so] of Object.entries(oodScores)) e.results[set].push({ method, metrics: allMetrics(inScores, so, seed), roc: rocCurve(inScores, so) });
}

/**
 * The full-FIM scores (scores.ts GRADIENT_SCORES) of an evaluation, in one pass of the loop over
 * its sets: the fit set's per-group gradients (the same groups and draws as its features) are kept
 * and F_N is fitted on them when the next set starts; every other set's groups are scored batch by
 * batch. Returns F_N (call dispose()).
 */
export async function addFimScores(e: Evaluation, model: GenerativeModel, objective: Objective, sets: { fit: ImageSet; inEval: ImageSet; ood: ImageSet[] }, o: LoopOptions & FimOptions): Promise<WoodburyFim> {
  const all = [sets.fit, sets.inEval, ...sets.ood], fitParts: T.Tensor[][] = [];
  const q = all.map(() => ({ full: [] as number[], block: [] as number[] }));
  let fim: WoodburyFim | null = null;
  await forEachGradientBatch(model, objective, all, o, async (g, k) => {
    if (k === 0) {
      fitParts.push(g);
      return true; // kept for the fit
    }
    fim ??= await WoodburyFim.fit(fitParts, o);
    const s = await fim.score(g);
    q[k].full.push(...s.full);
    q[k].block.push(...s.block);
  });
  const neg = (v: number[]) => v.map((x) => -x);
  addMethod(e, "gradient-fim", neg(q[1].full), Object.fromEntries(e.ood.map((s, i) => [s.name, neg(q[2 + i].full)])), o.seed);
  addMethod(e, "gradient-fim-block", neg(q[1].block), Object.fromEntries(e.ood.map((s, i) => [s.name, neg(q[2 + i].block)])), o.seed);
  return fim!;
}
