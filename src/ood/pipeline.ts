// The OOD evaluation: features for the fit, in-distribution evaluation and OOD sets; the method's
// density and its variants; the likelihood and typicality baselines; metrics per OOD set.
import * as T from "../autograd/index.ts";
import { type ImageSet, range } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { LN2 } from "../models/model.ts";
import { ChiSquarePerLayer, DiagonalGaussian, FullGaussian, NaiveTotalNorm, type Scorer } from "./density.ts";
import { featuresBatched, featuresLoop, noiseFor } from "./features.ts";
import { allMetrics, type Metrics, rocCurve } from "./metrics.ts";

export interface SetFeatures {
  name: string;
  /** Group rows of log f_l. */
  logf: Float64Array[];
  /** Mean NLL per input of each group, bits/dim. */
  nll: Float64Array;
}

export interface FeatureOptions {
  groupSize: number;
  batch: number;
  loop?: boolean;
  seed?: number;
  onProgress?: (done: number) => void;
}

/** Features of every group of `groupSize` consecutive images of a set (a multiple of groupSize of them). */
export async function setFeatures(model: GenerativeModel, set: ImageSet, o: FeatureOptions): Promise<SetFeatures & { names: string[] }> {
  const B = o.groupSize;
  const [C, H, W] = model.imageShape;
  if (set.c !== C || set.h !== H || set.w !== W) throw new Error(`features: set ${set.name} has ${set.c}x${set.h}x${set.w} images, the model takes ${C}x${H}x${W}`);
  const n = set.n - (set.n % B);
  const per = Math.max(B, o.batch - (o.batch % B));
  const logf: Float64Array[] = [], nll: number[] = [];
  let names: string[] = [];
  const gen = new T.Generator((o.seed ?? 0) * 7 + 3);
  for (let i = 0; i < n; i += per) {
    const idx = range(i, Math.min(n, i + per));
    const x = model.input(set, idx);
    const noise = noiseFor(model, idx.length, gen);
    const f = await (o.loop ? featuresLoop : featuresBatched)(model, x, B, noise);
    x.dispose();
    noise?.dispose();
    names = f.names;
    const L = f.names.length;
    for (let g = 0; g < f.groups; g++) {
      logf.push(Float64Array.from({ length: L }, (_, l) => Math.log(f.sq[g * L + l])));
      nll.push(f.nll[g] / B / (model.dims * LN2));
    }
    o.onProgress?.(idx.length);
  }
  return { name: set.name, logf, nll: Float64Array.from(nll), names };
}

export interface MethodResult {
  method: string;
  metrics: Metrics;
  roc: [number, number][];
}

export interface Evaluation {
  model: string;
  groupSize: number;
  names: string[];
  fit: SetFeatures;
  inEval: SetFeatures;
  ood: SetFeatures[];
  /** Per OOD set, per method. */
  results: Record<string, MethodResult[]>;
  scorers: { diag: DiagonalGaussian; full: FullGaussian };
}

export const METHODS = ["likelihood", "typicality", "gradient", "gradient-fullcov", "gradient-fullcov-lw", "gradient-naive", "gradient-chi2"] as const;

/** Fit on `fit`, score in-distribution evaluation vs each OOD set. */
export function evaluateSets(model: string, B: number, names: string[], fit: SetFeatures, inEval: SetFeatures, ood: SetFeatures[], seed = 0): Evaluation {
  const L = names.length;
  const diag = new DiagonalGaussian(fit.logf, L), full = new FullGaussian(fit.logf, L);
  const scorers: Scorer[] = [diag, full, new FullGaussian(fit.logf, L, { shrink: "ledoit-wolf" }), new NaiveTotalNorm(), new ChiSquarePerLayer(fit.logf, L)];
  const fitMean = fit.nll.reduce((s, v) => s + v, 0) / fit.nll.length;
  const score = (method: string, s: SetFeatures): number[] => {
    if (method === "likelihood") return Array.from(s.nll, (v) => -v);
    if (method === "typicality") return Array.from(s.nll, (v) => -Math.abs(v - fitMean));
    const sc = scorers.find((x) => x.name === method)!;
    return s.logf.map((r) => sc.score(r));
  };
  const results: Record<string, MethodResult[]> = {};
  for (const o of ood) {
    results[o.name] = METHODS.map((m) => {
      const si = score(m, inEval), so = score(m, o);
      return { method: m, metrics: allMetrics(si, so, seed), roc: rocCurve(si, so) };
    });
  }
  return { model, groupSize: B, names, fit, inEval, ood, results, scorers: { diag, full } };
}
