// The full-FIM method on image sets: per-group gradients of a set (the same groups and VAE noise as
// setFeatures), F_N fitted on the fit set's gradients (woodbury.ts), and scores for other sets,
// batch by batch (only the fit set's gradients are kept). Added to an Evaluation as the methods
// "gradient-fim" (score -q with the full F_N) and "gradient-fim-block" (-sum_l q_l, block-diagonal).
import * as T from "../autograd/index.ts";
import { type ImageSet, range } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { noiseFor } from "./features.ts";
import { allMetrics, rocCurve } from "./metrics.ts";
import type { Evaluation, FeatureOptions } from "./pipeline.ts";
import { groupGradients, WoodburyFim, type FimOptions } from "./woodbury.ts";

/** Calls f with the per-group gradients ([G, P_l] per layer) of each batch of a set; they are freed after unless f returns true (it takes them). */
export async function forEachGradientBatch(model: GenerativeModel, set: ImageSet, o: FeatureOptions, f: (g: T.Tensor[], first: number) => Promise<boolean | void>): Promise<void> {
  const B = o.groupSize, n = set.n - (set.n % B), per = Math.max(B, o.batch - (o.batch % B));
  const gen = new T.Generator((o.seed ?? 0) * 7 + 3);
  for (let i = 0; i < n; i += per) {
    const idx = range(i, Math.min(n, i + per));
    const x = model.input(set, idx);
    const noise = noiseFor(model, idx.length, gen);
    const g = groupGradients(model, x, B, noise);
    x.dispose();
    noise?.dispose();
    let taken = false;
    try {
      taken = (await f(g, i / B)) === true;
    } finally {
      if (!taken) g.forEach((t) => t.dispose());
    }
    o.onProgress?.(idx.length);
  }
}

/** All per-group gradients of a set, per batch a list of [G_b, P_l] tensors (kept: the caller owns them). */
export async function setGradients(model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<T.Tensor[][]> {
  const parts: T.Tensor[][] = [];
  await forEachGradientBatch(model, set, o, (g) => {
    parts.push(g);
    return Promise.resolve(true);
  });
  return parts;
}

/** F_N from a fit set's gradients. */
export async function fitFim(model: GenerativeModel, fit: ImageSet, o: FeatureOptions & FimOptions): Promise<WoodburyFim> {
  return await WoodburyFim.fit(await setGradients(model, fit, o), o);
}

/** q (full) and sum_l q_l (block) of every group of a set. */
export async function fimSetScores(fim: WoodburyFim, model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<{ full: number[]; block: number[] }> {
  const full: number[] = [], block: number[] = [];
  await forEachGradientBatch(model, set, o, async (g) => {
    const s = await fim.score(g);
    full.push(...s.full);
    block.push(...s.block);
  });
  return { full, block };
}

/** Adds a method's results (scores: higher = more in-distribution) to an evaluation, per OOD set. */
export function addMethod(e: Evaluation, method: string, inScores: number[], oodScores: Record<string, number[]>, seed = 0): void {
  for (const [set, so] of Object.entries(oodScores)) {
    e.results[set].push({ method, metrics: allMetrics(inScores, so, seed), roc: rocCurve(inScores, so) });
  }
}

/** The two FIM methods for an evaluation whose fit, in-distribution and OOD image sets are given. */
export async function addFimMethods(e: Evaluation, model: GenerativeModel, sets: { fit: ImageSet; inEval: ImageSet; ood: ImageSet[] }, o: FeatureOptions & FimOptions): Promise<WoodburyFim> {
  const fim = await fitFim(model, sets.fit, o);
  const ins = await fimSetScores(fim, model, sets.inEval, o);
  const full: Record<string, number[]> = {}, block: Record<string, number[]> = {};
  for (const [k, s] of sets.ood.entries()) {
    const r = await fimSetScores(fim, model, s, o);
    full[e.ood[k].name] = r.full.map((v) => -v);
    block[e.ood[k].name] = r.block.map((v) => -v);
  }
  addMethod(e, "gradient-fim", ins.full.map((v) => -v), full, o.seed);
  addMethod(e, "gradient-fim-block", ins.block.map((v) => -v), block, o.seed);
  return fim;
}
