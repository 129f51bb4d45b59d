// Per-group gradients in one forward and one backward: vmap(grad(f)) over groups of consecutive
// examples. The inputs are split into G batched groups (src/autograd/batched.ts), each parameter
// is replaced by a per-group copy (a batched leaf) for the duration of the call (withParameters),
// and f runs unchanged: every op meets batched operands through its batching rule. The gradient of
// the summed loss with respect to a copy is then every group's own gradient, exactly, including
// terms that do not depend on the data (a log-determinant of a parameter counts once per example
// of each group, as in that group's own loss). Layers know nothing of this.
import * as T from "../autograd/index.ts";
import { type Module, withParameters } from "./module.ts";

export interface PerGroupOptions {
  groups: number;
  /** The parameters that get per-group copies (default: all of the module's); the others stay shared. */
  params?: T.Tensor[];
  /**
   * Only each group's squared gradient norm will be asked for (perGroupSquaredNorms): products
   * with a copy then use the shared matrix and record Gram sites, and their [G, in, out]
   * gradients are never made.
   */
  normsOnly?: boolean;
}

export interface PerGroupPass {
  groups: number;
  /** Each group's loss (f's result summed within the group): an ordinary [G] tensor. */
  loss: T.Tensor;
  /** Parameter -> its per-group copy. */
  copies: Map<T.Tensor, T.Tensor>;
  gramSites: T.GramSite[];
}

/**
 * Runs f on G groups at once: each input [G*Bg, ...] is split into groups of Bg consecutive
 * examples (f sees [Bg, ...], as if it ran on one group) and the module computes with per-group
 * copies of its parameters.
 */
export function perGroupPass(module: Module, o: PerGroupOptions, inputs: readonly (T.Tensor | undefined)[], f: (...xs: (T.Tensor | undefined)[]) => T.Tensor): PerGroupPass {
  const G = o.groups;
  if (!(Number.isInteger(G) && G >= 1)) throw new Error(`perGroupPass: groups must be a positive integer, got ${G}`);
  const xs = inputs.map((x) => {
    if (!x) return undefined;
    if (x.rank < 1 || x.shape[0] % G) throw new Error(`perGroupPass: input ${T.fmt(x.shape)} does not split into ${G} groups`);
    return T.batch(T.reshape(x, [G, x.shape[0] / G, ...x.shape.slice(1)]));
  });
  const gramSites: T.GramSite[] = [];
  const copies = new Map((o.params ?? module.parameters()).map((p) => [p, T.groupCopy(p, G, o.normsOnly ? gramSites : undefined)]));
  const out = withParameters(module, copies, () => f(...xs));
  if (out.groups !== G) throw new Error(`perGroupPass: the loss ${out} is not batched over the ${G} groups`);
  const loss = T.sum(T.reshape(T.unbatch(out), [G, -1]), 1);
  return { groups: G, loss, copies, gramSites };
}

const nameOf = (p: T.Tensor) => p.name || `#${p.id}`;

/** Each group's gradient of its loss, [G, ...p.shape] per parameter (all must have copies). */
export function perGroupGradients(pass: PerGroupPass, params: readonly T.Tensor[]): T.Tensor[] {
  if (pass.gramSites.length) throw new Error("perGroupGradients: a norms-only pass has no per-group gradients of its Gram sites");
  const grads = T.grad(T.sum(pass.loss), params.map((p) => copyOf(pass, p)));
  return grads.map((g, i) => {
    if (!g) throw new Error(`perGroupGradients: parameter ${nameOf(params[i])} does not reach the loss`);
    return T.unbatch(g);
  });
}

/**
 * Each group's gradient of a parameter as a norms-only pass gives it: materialised ([G, ...p.shape]),
 * or, for a Gram site y = a W (or a W^T), its rows a with dL/dy (group g's gradient is A_g^T Y'_g, never formed).
 */
export type GroupGradient = { dense: T.Tensor } | { a: T.Tensor; dy: T.Tensor; transposed: boolean };

/**
 * Each group's gradient of every parameter, by one backward of a (norms-only) pass, in the form
 * groupSquaredNorm takes. A parameter that reaches the loss through a Gram site and any other way
 * (a shared weight) is refused: its norm is not the sum of its uses' norms.
 */
export function perGroupGradientParts(pass: PerGroupPass, params: readonly T.Tensor[]): GroupGradient[] {
  const siteOf = new Map<T.Tensor, T.GramSite>();
  for (const s of pass.gramSites) {
    const p = s.copy.groupCopy!.of;
    if (siteOf.has(p)) throw new Error(`parameter ${nameOf(p)} enters the loss more than once; its per-group norm needs it once`);
    siteOf.set(p, s);
  }
  const copies = params.map((p) => copyOf(pass, p));
  const sites = [...siteOf.values()];
  const grads = T.grad(T.sum(pass.loss), [...copies, ...sites.map((s) => s.output)]);
  const byParam = new Map<T.Tensor, GroupGradient>();
  sites.forEach((s, i) => {
    const dy = grads[params.length + i];
    if (dy) byParam.set(s.copy.groupCopy!.of, { a: s.input, dy, transposed: s.transposed });
  });
  return params.map((p, i) => {
    const g = grads[i];
    if (g && siteOf.has(p)) throw new Error(`parameter ${nameOf(p)} enters the loss more than once; its per-group norm needs it once`);
    if (g) return { dense: T.reshape(T.unbatch(g), [pass.groups, -1]) };
    const n = byParam.get(p);
    if (!n) throw new Error(`parameter ${nameOf(p)} does not reach the loss`);
    return n;
  });
}

/**
 * Each of G groups' squared gradient norm of one parameter, [G]; with `weight` (p's shape) the
 * weighted sum_i w_i (dL_g/dp_i)^2. For a Gram site with R rows per group, group g's gradient is
 * sum_t a_t^T y'_t, so its weighted norm is sum_{t,s} (a_t * a_s)^T W (y'_t * y'_s) over the group's
 * row pairs (W = weight as [K, N]; R = 1: (a^2)^T W (y'^2)), and without weights the Gram form
 * sum_{t,s} (a_t.a_s)(y'_t.y'_s): no [G, K, N] gradient either way.
 */
export function groupSquaredNorm(part: GroupGradient, G: number, weight?: T.Tensor): T.Tensor {
  if ("dense" in part) return weight ? T.sum(T.mul(T.square(part.dense), T.reshape(weight, [1, -1])), 1) : T.sumSquares(part.dense, 1);
  const { a, dy } = part;
  if (!weight) return gramNorm(a, dy, G);
  const K = a.shape[1], N = dy.shape[1], R = a.shape[0] / G;
  const w = part.transposed ? T.transpose(T.reshape(weight, [N, K])) : T.reshape(weight, [K, N]);
  if (R === 1) return T.sum(T.mul(T.mm(T.square(a), w), T.square(dy)), 1);
  // Row pairs within each group: [G, R, R, K] and [G, R, R, N].
  const pa = T.mul(T.reshape(a, [G, R, 1, K]), T.reshape(a, [G, 1, R, K])), pd = T.mul(T.reshape(dy, [G, R, 1, N]), T.reshape(dy, [G, 1, R, N]));
  return T.sum(T.reshape(T.mul(T.mm(T.reshape(pa, [G * R * R, K]), w), T.reshape(pd, [G * R * R, N])), [G, -1]), 1);
}

/**
 * Each group's squared gradient norm ||dL_g/dp||^2, [G] per parameter. For a Gram site y = a W
 * (rows of a group: R), group g's gradient is A_g^T Y'_g, whose squared norm is
 * sum_{t,s} (a_t.a_s)(y'_t.y'_s) over the group's rows (|a|^2 |y'|^2 when R = 1): no [G, in, out]
 * gradient is made. A parameter that reaches the loss through a Gram site and any other way (a
 * shared weight) is refused: its norm is not the sum of its uses' norms.
 */
export function perGroupSquaredNorms(pass: PerGroupPass, params: readonly T.Tensor[]): T.Tensor[] {
  return perGroupGradientParts(pass, params).map((part) => groupSquaredNorm(part, pass.groups));
}

/** sum_{t,s} (a_t.a_s)(g_t.g_s) within each of G groups of rows: a [G*R, K], g [G*R, N] -> [G]. */
export function gramNorm(a: T.Tensor, g: T.Tensor, G: number): T.Tensor {
  const R = a.shape[0] / G;
  if (R === 1) return T.mul(T.sumSquares(a, 1), T.sumSquares(g, 1));
  const ag = T.reshape(a, [G, R, -1]), gg = T.reshape(g, [G, R, -1]);
  return T.sum(T.mul(T.mm(ag, ag, false, true), T.mm(gg, gg, false, true)), [1, 2]);
}

function copyOf(pass: PerGroupPass, p: T.Tensor): T.Tensor {
  const c = pass.copies.get(p);
  if (!c) throw new Error(`per-group pass: parameter ${nameOf(p)} has no per-group copy`);
  return c;
}
