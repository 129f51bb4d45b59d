// Layer-wise gradient features (Dauncey et al., TMLR 2024) of one batch: for an input, or a group
// of B inputs, the gradient of the group's summed objective (the NLL, or what the caller passes:
// src/models/objective.ts) and, per parameter tensor l, f_l = ||grad_l||^2 (no division by size).
// Two ways to the same numbers: the reference loop (one backward per group) and the batched pass
// (one forward and one backward for the whole batch, src/nn/per_group.ts). Also the per-group
// gradient vectors themselves (the full-FIM method needs them, not only their norms). Models run in
// eval mode. The loop over a whole set, with each input's draws, is src/ood/loop.ts.
import * as T from "../autograd/index.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Objective } from "../models/objective.ts";
import { perGroupGradients, perGroupPass, perGroupSquaredNorms } from "../nn/per_group.ts";

export interface GradFeatures {
  /** Parameter tensor names, in the model's order. */
  names: string[];
  /** Squared gradient norms, G rows of L = names.length. */
  sq: Float64Array;
  /** Summed objective of each group (nats for an NLL). */
  value: Float64Array;
  groups: number;
}

function checkGroups(n: number, B: number): number {
  if (!(Number.isInteger(B) && B >= 1) || n % B) throw new Error(`features: ${n} inputs do not split into groups of ${B}`);
  return n / B;
}

/** Group g's rows of a batch tensor. */
const rowsOf = (t: T.Tensor | undefined, g: number, B: number) => t && T.slice(t, [g * B], [(g + 1) * B]);

/** The reference: one backward pass per group of B consecutive inputs. */
export async function featuresLoop(model: GenerativeModel, objective: Objective, x: T.Tensor, B: number, noise?: T.Tensor): Promise<GradFeatures> {
  const G = checkGroups(x.shape[0], B);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const rows: T.Tensor[] = [];
  for (let g = 0; g < G; g++) {
    rows.push(T.tidy(() => {
      const v = T.sum(objective.value(rowsOf(x, g, B)!, rowsOf(noise, g, B)));
      const grads = T.grad(v, params);
      return T.concat([T.reshape(v, [1]), ...grads.map((gr, i) => {
        if (!gr) throw new Error(`features: parameter ${named[i][0]} does not reach the objective ${objective.name}`);
        return T.reshape(T.sumSquares(gr), [1]);
      })], 0);
    }));
  }
  return await collect(rows.length ? T.tidy(() => T.concat(rows.map((r) => T.reshape(r, [1, -1])), 0)) : null, named.map(([n]) => n), G, rows);
}

/**
 * Batched: one forward and one backward for all G groups (a per-group pass, src/nn/per_group.ts),
 * norms only: products with a parameter give their norms by the Gram form.
 */
export async function featuresBatched(model: GenerativeModel, objective: Objective, x: T.Tensor, B: number, noise?: T.Tensor): Promise<GradFeatures> {
  const G = checkGroups(x.shape[0], B);
  const named = model.namedParameters();
  const out = T.tidy(() => {
    const pass = perGroupPass(model, { groups: G, normsOnly: true }, [x, noise], (xg, ng) => objective.value(xg!, ng));
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
  const sq = new Float64Array(G * L), value = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    value[g] = d[g * (L + 1)];
    for (let l = 0; l < L; l++) sq[g * L + l] = d[g * (L + 1) + 1 + l];
  }
  return { names, sq, value, groups: G };
}

/**
 * Per-group gradients of the summed objective, one [G, P_l] matrix per parameter tensor, by one
 * forward and one backward with per-group parameter copies (no norms-only shortcut: the vectors
 * are needed).
 */
export function groupGradients(model: GenerativeModel, objective: Objective, x: T.Tensor, B: number, noise?: T.Tensor): T.Tensor[] {
  const G = checkGroups(x.shape[0], B);
  const params = model.parameters();
  return T.tidy(() => {
    const pass = perGroupPass(model, { groups: G }, [x, noise], (xg, ng) => objective.value(xg!, ng));
    return perGroupGradients(pass, params).map((g) => T.reshape(g, [G, -1]));
  });
}

/** The reference: one backward per group. Same layout as groupGradients. */
export function groupGradientsLoop(model: GenerativeModel, objective: Objective, x: T.Tensor, B: number, noise?: T.Tensor): T.Tensor[] {
  const G = checkGroups(x.shape[0], B);
  const params = model.parameters();
  const rows: T.Tensor[][] = [];
  for (let g = 0; g < G; g++) {
    rows.push(T.tidy(() => T.grad(T.sum(objective.value(rowsOf(x, g, B)!, rowsOf(noise, g, B))), params).map((gr) => T.reshape(gr!, [1, -1]))));
  }
  const out = params.map((_, l) => T.concat(rows.map((r) => r[l]), 0));
  rows.flat().forEach((t) => t.dispose());
  return out;
}
