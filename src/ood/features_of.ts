// The one place where the model-comparison, training-dynamics and novelty-analysis code
// (compare.ts, dynamics.ts, novelty_report.ts) computes gradient features, per-input NLLs and the
// full-FIM norm. Each function wraps today's feature path (pipeline.ts setFeatures, fim_method.ts
// fitFim / fimSetScores), so when that path changes (one batching loop with an explicit objective)
// only this file changes.
import type { ImageSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { fimSetScores, fitFim } from "./fim_method.ts";
import { type FeatureOptions, type SetFeatures, setFeatures } from "./pipeline.ts";
import type { WoodburyFim } from "./woodbury.ts";

export type { FeatureOptions, SetFeatures };

/** log f_l (per parameter tensor) and the mean NLL in bits/dim of every group of o.groupSize consecutive images of a set. */
export async function featuresOf(model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<SetFeatures & { names: string[] }> {
  return await setFeatures(model, set, o);
}

/** F_N = lambda I + (1/N) sum s s^T from the per-group gradients of a fit set (full version only; lambdaScale scales lambda's rule). */
export async function fimOf(model: GenerativeModel, fit: ImageSet, o: FeatureOptions & { lambdaScale?: number }): Promise<WoodburyFim> {
  return await fitFim(model, fit, { ...o, block: false });
}

/** The full-FIM norm q = g^T F_N^{-1} g of every group of a set (higher = more novel). */
export async function fimNormsOf(fim: WoodburyFim, model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<number[]> {
  return (await fimSetScores(fim, model, set, o)).full;
}
