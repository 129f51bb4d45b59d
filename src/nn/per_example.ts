// Per-group parameters: inside withPerGroup(G, Bg, f), layers use a private copy of each parameter
// per group of Bg consecutive examples ([G, ...shape] leaves). The gradient of the summed loss with
// respect to those copies is the per-group gradient, in one backward pass, exactly, including terms
// that do not depend on the data (ActNorm and 1x1-conv log-determinants appear once per group).
import * as T from "../autograd/index.ts";

export interface PerGroup {
  groups: number;
  groupSize: number;
  /** Parameter -> its per-group copy, in first-use order. */
  leaves: Map<T.Tensor, T.Tensor>;
  /**
   * Set by callers that need only each group's squared gradient norm: linear layers then use
   * their shared weight and record their input and output here instead of taking copies, and the
   * norms come from the Gram form (gramNorms), without a [G, in, out] gradient.
   */
  gram?: GramSite[];
}

/** A linear layer y = a W (+ b) seen in a norms-only pass: rows [G*Bg, in] and [G*Bg, out]. */
export interface GramSite {
  weight: T.Tensor;
  bias: T.Tensor | null;
  input: T.Tensor;
  output: T.Tensor;
}

let current: PerGroup | null = null;

export function perGroup(): PerGroup | null {
  return current;
}

export function withPerGroup<R>(groups: number, groupSize: number, f: (ctx: PerGroup) => R, o: { normsOnly?: boolean } = {}): R {
  if (current) throw new Error("withPerGroup: already inside a per-group pass");
  const ctx: PerGroup = { groups, groupSize, leaves: new Map(), gram: o.normsOnly ? [] : undefined };
  current = ctx;
  try {
    return f(ctx);
  } finally {
    current = null;
  }
}

/** The per-group copy [G, ...shape] of a parameter (a fresh leaf that requires grad). */
export function expanded(p: T.Tensor): T.Tensor {
  const c = current!;
  let e = c.leaves.get(p);
  if (!e) {
    e = T.noGrad(() => T.broadcastTo(T.reshape(p, [1, ...p.shape]), [c.groups, ...p.shape])).requireGrad();
    e.name = p.name;
    c.leaves.set(p, e);
  }
  return e;
}

/**
 * Per-group squared norms [G] of a linear layer's weight and bias gradients from its input a and
 * output gradient g (rows [G*Bg, ...]): the weight gradient of group k is A_k^T G_k, so its squared
 * norm is sum_{t,s} (a_t.a_s)(g_t.g_s) over the group's rows (|a|^2 |g|^2 for one row), and the
 * bias gradient is the sum of the group's g rows.
 */
export function gramNorms(a: T.Tensor, g: T.Tensor, c: PerGroup): { weight: T.Tensor; bias: T.Tensor } {
  const ag = byGroup(a, c), gg = byGroup(g, c);
  const weight = c.groupSize === 1
    ? T.mul(T.sumSquares(ag, [1, 2]), T.sumSquares(gg, [1, 2]))
    : T.sum(T.mul(T.mm(ag, ag, false, true), T.mm(gg, gg, false, true)), [1, 2]);
  return { weight, bias: T.sumSquares(T.sum(gg, 1), 1) };
}

/** [G*Bg, ...] -> [G, Bg, ...] (a view). */
export const byGroup = (x: T.Tensor, c: PerGroup) => T.reshape(x, [c.groups, c.groupSize, ...x.shape.slice(1)]);

/** A per-example [G] quantity repeated over each group's examples: [G*Bg]. */
export function perExample(v: T.Tensor, c: PerGroup): T.Tensor {
  return T.reshape(T.broadcastTo(T.reshape(v, [c.groups, 1]), [c.groups, c.groupSize]), [c.groups * c.groupSize]);
}

/**
 * conv2d with a different weight per group: W [G, Cout, Cin/groups, k, k], x [G*Bg, Cin, H, W].
 * The groups become channel groups of one convolution (images of a group side by side).
 */
export function groupedConv(x: T.Tensor, w: T.Tensor, o: T.ConvOptions, c: PerGroup): T.Tensor {
  const [N, Cin, H, W] = x.shape;
  const [G, Cout, cg, kh, kw] = w.shape;
  const Bg = c.groupSize;
  if (N !== G * Bg) throw new Error(`groupedConv: ${N} examples are not ${G} groups of ${Bg}`);
  const xg = Bg === 1
    ? T.reshape(x, [1, G * Cin, H, W])
    : T.reshape(T.permute(T.reshape(x, [G, Bg, Cin, H, W]), [1, 0, 2, 3, 4]), [Bg, G * Cin, H, W]);
  const y = T.conv2d(xg, T.reshape(w, [G * Cout, cg, kh, kw]), { ...o, groups: G * (o.groups ?? 1) });
  const [, , OH, OW] = y.shape;
  return Bg === 1
    ? T.reshape(y, [G, Cout, OH, OW])
    : T.reshape(T.permute(T.reshape(y, [Bg, G, Cout, OH, OW]), [1, 0, 2, 3, 4]), [G * Bg, Cout, OH, OW]);
}
