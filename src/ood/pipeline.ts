// The OOD evaluation of one model at one group size: every registered score (scores.ts) fitted on
// the fit set's features and compared, in-distribution evaluation set against each OOD set, by
// AUROC and the other metrics; and the full-FIM scores from the sets' gradients (`--fim`).
import type { ImageSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Measure, Objective } from "../models/objective.ts";
import type { DiagonalGaussian, FullGaussian } from "./density.ts";
import { FullGaussian as Full } from "./density.ts";
import { forEachGradientBatch, type LoopOptions, type SetFeatures, setGradients } from "./loop.ts";
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

/** q (full) and sum_l q_l (block) of every group of a set under a fitted F_N. */
export async function fimSetScores(fim: WoodburyFim, model: GenerativeModel, objective: Objective, set: ImageSet, o: LoopOptions): Promise<{ full: number[]; block: number[] }> {
  const full: number[] = [], block: number[] = [];
  await forEachGradientBatch(model, objective, set, o, async (g) => {
    const s = await fim.score(g);
    full.push(...s.full);
    block.push(...s.block);
  });
  return { full, block };
}

/**
 * The full-FIM scores (scores.ts GRADIENT_SCORES) of an evaluation: F_N fitted on the fit set's
 * per-group gradients (the same groups and draws as its features), then every other set's groups
 * scored batch by batch. Returns F_N (call dispose()).
 */
export async function addFimScores(e: Evaluation, model: GenerativeModel, objective: Objective, sets: { fit: ImageSet; inEval: ImageSet; ood: ImageSet[] }, o: LoopOptions & FimOptions): Promise<WoodburyFim> {
  const fim = await WoodburyFim.fit(await setGradients(model, objective, sets.fit, o), o);
  const ins = await fimSetScores(fim, model, objective, sets.inEval, o);
  const full: Record<string, number[]> = {}, block: Record<string, number[]> = {};
  for (const [k, s] of sets.ood.entries()) {
    const r = await fimSetScores(fim, model, objective, s, o);
    full[e.ood[k].name] = r.full.map((v) => -v);
    block[e.ood[k].name] = r.block.map((v) => -v);
  }
  addMethod(e, "gradient-fim", ins.full.map((v) => -v), full, o.seed);
  addMethod(e, "gradient-fim-block", ins.block.map((v) => -v), block, o.seed);
  return fim;
}


