// Layer-wise gradient features (Dauncey et al., TMLR 2024): for an input, or a group of B inputs,
// back-propagate the summed NLL and take, per parameter tensor l, f_l = ||grad_l||^2 (no division
// by size). Two ways: the reference loop (one backward per group) and the batched pass (one
// forward and one backward for the whole batch, src/nn/per_group.ts). Models run in eval mode.
import * as T from "../autograd/index.ts";
import type { GenerativeModel } from "../models/model.ts";
import { perGroupPass, perGroupSquaredNorms } from "../nn/per_group.ts";

export interface GradFeatures {
  /** Parameter tensor names, in the model's order. */
  names: string[];
  /** Squared gradient norms, G rows of L = names.length. */
  sq: Float64Array;
  /** Summed NLL of each group, nats. */
  nll: Float64Array;
  groups: number;
}

/** Per-example standard-normal noise for models whose NLL estimate samples (the VAE), seeded. */
export function noiseFor(model: GenerativeModel, n: number, gen: T.Generator): T.Tensor | undefined {
  const shape = model.noiseShape(n);
  return shape ? T.randn(gen, shape, { backend: model.backend, dtype: model.dtype }) : undefined;
}

function checkGroups(n: number, B: number): number {
  if (!(B >= 1) || n % B) throw new Error(`features: ${n} inputs do not split into groups of ${B}`);
  return n / B;
}

/** The reference: one backward pass per group of B consecutive inputs. */
export async function featuresLoop(model: GenerativeModel, x: T.Tensor, B: number, noise?: T.Tensor): Promise<GradFeatures> {
  const G = checkGroups(x.shape[0], B);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const rows: T.Tensor[] = [];
  for (let g = 0; g < G; g++) {
    rows.push(T.tidy(() => {
      const sl = (t: T.Tensor) => T.slice(t, [g * B], [(g + 1) * B]);
      const nll = T.sum(model.nll(sl(x), { noise: noise && sl(noise) }));
      const grads = T.grad(nll, params);
      return T.concat([T.reshape(nll, [1]), ...grads.map((gr) => T.reshape(T.sumSquares(gr!), [1]))], 0);
    }));
  }
  return await collect(rows.length ? T.tidy(() => T.concat(rows.map((r) => T.reshape(r, [1, -1])), 0)) : null, named.map(([n]) => n), G, rows);
}

/**
 * Batched: one forward and one backward for all G groups (a per-group pass, src/nn/per_group.ts),
 * norms only: products with a parameter give their norms by the Gram form.
 */
export async function featuresBatched(model: GenerativeModel, x: T.Tensor, B: number, noise?: T.Tensor): Promise<GradFeatures> {
  const G = checkGroups(x.shape[0], B);
  const named = model.namedParameters();
  const out = T.tidy(() => {
    const pass = perGroupPass(model, { groups: G, normsOnly: true }, [x, noise], (xg, ng) => model.nll(xg!, { noise: ng }));
    const norms = perGroupSquaredNorms(pass, named.map(([, p]) => p));
    return T.concat([T.reshape(pass.loss, [G, 1]), ...norms.map((n) => T.reshape(n, [G, 1]))], 1);
  });
  return await collect(out, named.map(([n]) => n), G, []);
}

async function collect(table: T.Tensor | null, names: string[], G: number, extra: T.Tensor[]): Promise<GradFeatures> {
  const L = names.length;
  const d = table ? await table.data() : new Float32Array(0);
  table?.dispose();
  extra.forEach((t) => t.dispose());
  const sq = new Float64Array(G * L), nll = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    nll[g] = d[g * (L + 1)];
    for (let l = 0; l < L; l++) sq[g * L + l] = d[g * (L + 1) + 1 + l];
  }
  return { names, sq, nll, groups: G };
}
