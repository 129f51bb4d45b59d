// A small study of the Fisher information metric F = E_{x ~ p_theta}[g g^T], g = grad_theta log p(x):
// estimated from model samples for a few random weights in two parameter tensors, to see how much
// of F lives in the layer-diagonal blocks (the method's per-layer approximation keeps only those).
import * as T from "../autograd/index.ts";
import { makeSet, range } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { perGroupGradients, perGroupPass } from "../nn/per_group.ts";
import { inputNoise } from "./loop.ts";

export interface FimStudy {
  layers: [string, string];
  weights: number;
  samples: number;
  /** F restricted to the chosen weights: (2k) x (2k), layer A's k first. */
  fim: Float64Array;
  meanAbsWithin: number;
  meanAbsAcross: number;
  meanAbsDiagonal: number;
  /**
   * The same comparison free of each weight's scale: mean |F_ab| / sqrt(F_aa F_bb) (the gradient
   * components' correlation under the model) within a layer and across the two.
   */
  meanAbsCorrWithin: number;
  meanAbsCorrAcross: number;
  /** The largest share of trace(F) that one sample contributes (heavy tails make the raw means unstable). */
  maxSampleShare: number;
}

export async function fimStudy(model: GenerativeModel, o: { samples: number; perLayer: number; layers?: [string, string]; batch?: number; seed?: number; objective?: string }): Promise<FimStudy> {
  const gen = new T.Generator(o.seed ?? 0);
  // F = E_{x ~ p}[g g^T] with g the gradient of log p(x): the NLL, not a surrogate objective.
  const objective = model.objective(o.objective ?? "nll");
  const named = model.namedParameters();
  const pick = o.layers ?? (() => {
    const big = named.filter(([, p]) => p.size >= o.perLayer);
    return [big[0][0], big[big.length - 1][0]] as [string, string];
  })();
  const chosen = pick.map((n) => {
    const e = named.find(([k]) => k === n);
    if (!e) throw new Error(`fim: no parameter tensor '${n}' (have ${named.map(([k]) => k).join(", ")})`);
    if (e[1].size < o.perLayer) throw new Error(`fim: '${n}' has ${e[1].size} weights, fewer than ${o.perLayer}`);
    const idx = [...gen.permutation(e[1].size).subarray(0, o.perLayer)];
    return { name: n, p: e[1], idx };
  });
  const k = 2 * o.perLayer;
  const fim = new Float64Array(k * k);
  const [C, H, W] = model.imageShape;
  const images = await model.sample(o.samples, gen);
  const set = makeSet("samples", images, new Uint8Array(o.samples), C, H, W);
  const batch = o.batch ?? 32;
  let maxSample = 0;
  for (let i = 0; i < o.samples; i += batch) {
    const idx = range(i, Math.min(o.samples, i + batch));
    const x = model.input(set, idx, gen);
    const noise = inputNoise(model, objective, set, idx, o.seed ?? 0);
    const G = idx.length;
    const rows = T.tidy(() => {
      const params = chosen.map((c) => c.p);
      const pass = perGroupPass(model, { groups: G, params }, [x, noise], (xg, ng) => objective.value(xg!, ng));
      return perGroupGradients(pass, params).map((g) => T.reshape(g, [G, -1]));
    });
    const vals = await Promise.all(rows.map((r) => r.data()));
    rows.forEach((r) => r.dispose());
    x.dispose();
    noise?.dispose();
    for (let g = 0; g < G; g++) {
      // g is the gradient of the NLL; F uses grad log p = -g, and the sign cancels in g g^T.
      const v = chosen.flatMap((c, j) => c.idx.map((e) => vals[j][g * c.p.size + e]));
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) fim[a * k + b] += (v[a] * v[b]) / o.samples;
      maxSample = Math.max(maxSample, v.reduce((s, x) => s + x * x, 0) / o.samples);
    }
  }
  let within = 0, nw = 0, across = 0, na = 0, diag = 0, cWithin = 0, ncw = 0, cAcross = 0, nca = 0;
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
    const v = Math.abs(fim[a * k + b]);
    const den = Math.sqrt(fim[a * k + a] * fim[b * k + b]);
    const same = (a < o.perLayer) === (b < o.perLayer);
    if (a === b) diag += v / k;
    else if (same) { within += v; nw++; }
    else { across += v; na++; }
    // Masked weights (zero gradient) have no correlation to count.
    if (a !== b && den > 0) {
      if (same) { cWithin += v / den; ncw++; }
      else { cAcross += v / den; nca++; }
    }
  }
  return {
    layers: pick, weights: o.perLayer, samples: o.samples, fim, meanAbsWithin: within / nw, meanAbsAcross: across / na, meanAbsDiagonal: diag,
    meanAbsCorrWithin: cWithin / ncw, meanAbsCorrAcross: cAcross / nca, maxSampleShare: diag > 0 ? maxSample / (diag * k) : 0,
  };
}
