// The optimisers' fused ops (the backend contract's optional momentUpdate, sumSquaresAll and
// scaleAll): every parameter's new values and moments in one op, and gradient clipping's joint
// sum of squares and scaling in one op each, or null / the composed ops where the backend has no
// such kernel (src/nn/optim.ts). Their values are the composed ops' bit for bit. Not
// differentiable (an update and its clipping, not functions of the graph).
import type { MomentUpdate } from "../../kernels/backend.ts";
import { assertSameBackend, noGrad, result, type Tensor } from "../tensor.ts";
import { add, mul } from "./elementwise.ts";
import { sumSquares } from "./reduce.ts";

export type { MomentUpdate };

/** One parameter's update: its values, gradient and two moments (one shape). */
export interface MomentState { p: Tensor; g: Tensor; m: Tensor; v: Tensor }

/** New values and moments of every parameter in `items`, in one op; null where the backend has no fused update (or a tensor is batched). */
export function momentUpdate(items: readonly MomentState[], u: MomentUpdate): { p: Tensor; m: Tensor; v: Tensor }[] | null {
  if (!items.length) return [];
  const b = items[0].p.backend, dtype = items[0].p.dtype;
  if (!b.momentUpdate || items.some(({ p, g }) => p.groups || g.groups || p.dtype !== dtype)) return null;
  for (const { p, g, m, v } of items) {
    assertSameBackend("momentUpdate", [items[0].p, p, g, m, v]);
    for (const t of [g, m, v]) if (t.shape.join() !== p.shape.join()) throw new Error(`momentUpdate: ${t} does not match the parameter's shape [${p.shape}]`);
  }
  const r = b.momentUpdate(items.map(({ p, g, m, v }) => ({ p: p.storage("momentUpdate"), g: g.storage("momentUpdate"), m: m.storage("momentUpdate"), v: v.storage("momentUpdate"), n: p.size })), u, dtype);
  if (!r) return null;
  return noGrad(() => r.map((s, i) => {
    const p = items[i].p;
    return { p: result("momentUpdate", [], s.p, p.shape, null, p), m: result("momentUpdate", [], s.m, p.shape, null, p), v: result("momentUpdate", [], s.v, p.shape, null, p) };
  }));
}

/**
 * sum_i sumSquares(xs[i]) as a scalar, the tensors' sums added in order: one op where the backend
 * fuses it (Backend.sumSquaresAll), else those ops. Not differentiable.
 */
export function sumSquaresAll(xs: readonly Tensor[]): Tensor {
  if (!xs.length) throw new Error("sumSquaresAll: no tensors");
  const b = xs[0].backend, dtype = xs[0].dtype;
  assertSameBackend("sumSquaresAll", [...xs]);
  const fusable = b.sumSquaresAll && xs.every((x) => !x.groups && x.dtype === dtype);
  const s = fusable ? b.sumSquaresAll!(xs.map((x) => x.storage("sumSquaresAll")), xs.map((x) => x.size), dtype) : null;
  if (s) return result("sumSquaresAll", [], s, [], null, xs[0]);
  return noGrad(() => {
    let sq = sumSquares(xs[0]);
    for (const x of xs.slice(1)) sq = add(sq, sumSquares(x));
    return sq;
  });
}

/** Each of xs times the scalar s: one op where the backend fuses it (Backend.scaleAll), else one multiply each. Not differentiable. */
export function scaleAll(xs: readonly Tensor[], s: Tensor): Tensor[] {
  if (!xs.length) return [];
  const b = xs[0].backend, dtype = xs[0].dtype;
  assertSameBackend("scaleAll", [...xs, s]);
  if (s.size !== 1 || s.rank !== 0) throw new Error(`scaleAll: the scale ${s} is not a scalar`);
  const fusable = b.scaleAll && !s.groups && s.dtype === dtype && xs.every((x) => !x.groups && x.dtype === dtype);
  const r = fusable ? b.scaleAll!(xs.map((x) => x.storage("scaleAll")), xs.map((x) => x.size), s.storage("scaleAll"), dtype) : null;
  if (r) return r.map((o, i) => result("scaleAll", [], o, xs[i].shape, null, xs[i]));
  return noGrad(() => xs.map((x) => mul(x, s)));
}
