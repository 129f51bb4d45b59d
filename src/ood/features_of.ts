// The one place where the model-comparison, training-dynamics and novelty-analysis code
// (compare.ts, dynamics.ts, novelty_report.ts) computes gradient features, per-input NLLs and the
// full-FIM norm, through the library's one loop (loop.ts) with each model's default objective
// (its NLL; a diffusion model's L1 eps-loss at t = 1) and each input's draws from its pixels.
import * as T from "../autograd/index.ts";
import { type ImageSet, range } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { forEachGradientBatch, inputNoise, type LoopOptions, type SetFeatures, setFeatures, setGradients } from "./loop.ts";
import { WoodburyFim } from "./woodbury.ts";

export type { SetFeatures };

/** Groups of B, the pass size, the draws' seed; progress as inputs done since the last call. */
export interface FeatureOptions {
  groupSize: number;
  batch: number;
  seed?: number;
  onProgress?: (done: number) => void;
}

/** The loop's options from these (its progress is cumulative per set; these callers count increments). */
function loopOptions(o: FeatureOptions): LoopOptions {
  let last = 0;
  return {
    groupSize: o.groupSize, batch: o.batch, seed: o.seed,
    onProgress: (done) => {
      if (done < last) last = 0;
      o.onProgress?.(done - last);
      last = done;
    },
  };
}

/** log f_l (per parameter tensor) and the mean value per input (bits/dim for an NLL) of every group of o.groupSize consecutive images of a set. */
export async function featuresOf(model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<SetFeatures> {
  return await setFeatures(model, model.objective(), set, loopOptions(o));
}

/** F_N = lambda I + (1/N) sum s s^T from the per-group gradients of a fit set (full version only; lambdaScale scales lambda's rule). */
export async function fimOf(model: GenerativeModel, fit: ImageSet, o: FeatureOptions & { lambdaScale?: number }): Promise<WoodburyFim> {
  return await WoodburyFim.fit(await setGradients(model, model.objective(), fit, loopOptions(o)), { lambdaScale: o.lambdaScale, block: false });
}

/** The full-FIM norm q = g^T F_N^{-1} g of every group of a set (higher = more novel). */
export async function fimNormsOf(fim: WoodburyFim, model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<number[]> {
  const q: number[] = [];
  await forEachGradientBatch(model, model.objective(), set, loopOptions(o), async (g) => {
    q.push(...(await fim.score(g, { block: false })).full);
  });
  return q;
}

/**
 * Each image's NLL in bits/dim (no gradient), batched; images at their bin centres (no
 * dequantisation) and, for a model that samples (the VAE), each image's draws from its pixels and
 * the seed (the loop's rule), so an image's value does not depend on its batch. `keys` (e.g. each
 * image's index in the training split) are checked against the set's size.
 */
export async function lossesOf(model: GenerativeModel, set: ImageSet, keys: ArrayLike<number>, o: { batch: number; seed: number; onProgress?: (done: number) => void }): Promise<Float64Array> {
  if (keys.length !== set.n) throw new Error(`losses: ${keys.length} keys for ${set.n} images`);
  const out = new Float64Array(set.n);
  for (let i = 0; i < set.n; i += o.batch) {
    const idx = range(i, Math.min(set.n, i + o.batch));
    const nll = model.objective("nll"), noise = inputNoise(model, nll, set, idx, o.seed);
    const v = T.tidy(() => T.noGrad(() => nll.value(model.input(set, idx), noise)));
    noise?.dispose();
    const d = await v.data();
    v.dispose();
    for (let j = 0; j < idx.length; j++) out[i + j] = nll.report(d[j]);
    o.onProgress?.(idx.length);
  }
  return out;
}
