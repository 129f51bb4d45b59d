// The one place where the model-comparison, training-dynamics and novelty-analysis code
// (compare.ts, dynamics.ts, novelty_report.ts) computes gradient features, per-input NLLs and the
// full-FIM norm. Each function wraps today's feature path (pipeline.ts setFeatures, fim_method.ts
// fitFim / fimSetScores), so when that path changes (one batching loop with an explicit objective)
// only this file changes.
import * as T from "../autograd/index.ts";
import { type ImageSet, range } from "../data/dataset.ts";
import { type GenerativeModel, LN2 } from "../models/model.ts";
import { noiseFor } from "./features.ts";
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

/**
 * Each image's NLL in bits/dim (no gradient), batched; images at their bin centres (no
 * dequantisation) and, for a model that samples (the VAE), per-image noise seeded by the image's
 * key (e.g. its index in the training split), so an image's value does not depend on its batch.
 */
export async function lossesOf(model: GenerativeModel, set: ImageSet, keys: ArrayLike<number>, o: { batch: number; seed: number; onProgress?: (done: number) => void }): Promise<Float64Array> {
  if (keys.length !== set.n) throw new Error(`losses: ${keys.length} keys for ${set.n} images`);
  const out = new Float64Array(set.n);
  for (let i = 0; i < set.n; i += o.batch) {
    const idx = range(i, Math.min(set.n, i + o.batch));
    const noise = model.noiseShape(1) ? T.concat(idx.map((j) => noiseFor(model, 1, new T.Generator((o.seed * 1_000_003 + keys[j] * 7 + 12_345) >>> 0))!), 0) : undefined;
    const v = T.tidy(() => T.noGrad(() => model.nll(model.input(set, idx), { noise })));
    noise?.dispose();
    const d = await v.data();
    v.dispose();
    for (let j = 0; j < idx.length; j++) out[i + j] = d[j] / (model.dims * LN2);
    o.onProgress?.(idx.length);
  }
  return out;
}
