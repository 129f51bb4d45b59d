// Shape and movement ops. Reshape shares storage; the rest are one strided-copy kernel
// (output dim -> input dim, start, step, out-of-range reads give padValue).
import type { StridedSpec } from "../../kernels/backend.ts";
import { fmt, type Shape, sameShape, sizeOf } from "../shape.ts";
import { assertSameBackend, BoxGrad, noGrad, passesProducts, result, type Tensor } from "../tensor.ts";
import { sumTo } from "./reduce.ts";
import { aligned, batch, folded, groupsOf, onCopies, unbatch, unfolded } from "../batched.ts";

// Batching rules: a batched operand's group axis leads; where the op leaves the first axis alone,
// the groups fold into it, so the kernel runs at the rank of an ordinary batch.

export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== free));
    s[free] = rest === 0 ? 0 : x.size / rest;
  }
  if (!s.every((d) => Number.isInteger(d) && d >= 0) || sizeOf(s) !== x.size) {
    throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  }
  if (x.groups) {
    // Each group's storage is contiguous: the batched result is a view of x's (a copy's reads go through unbatch).
    if (x.groupCopy) return onCopies([x], ([v]) => reshape(v, s), ([v]) => batch(unbatch(v), v.groups, s))!;
  }
  return passesProducts(result("reshape", [x], null, s, (g) => [reshape(g, x.shape)], x, x, x.groups), (g) => reshape(g, x.shape), (z) => reshape(z, s));
}

function strided(op: string, x: Tensor, spec: Omit<StridedSpec, "inShape">, backward: (g: Tensor) => Tensor | BoxGrad): Tensor {
  const full: StridedSpec = { inShape: x.shape, ...spec };
  const s = x.backend.strided(x.storage(op), full, x.dtype);
  return result(op, [x], s, spec.outShape, (g) => [backward(g)], x);
}

const ident = (r: number) => [...Array(r).keys()];

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const r = x.rank;
  if (perm.length !== r || !ident(r).every((i) => perm.includes(i))) {
    throw new Error(`permute: ${JSON.stringify(perm)} is not a permutation of the axes of ${fmt(x.shape)}`);
  }
  if (x.groups) {
    const batched = ([v]: Tensor[]) => perm[0] === 0 ? unfolded(permute(folded(v), perm), v.groups) : batch(permute(unbatch(v), [0, ...perm.map((p) => p + 1)]));
    return onCopies([x], ([v]) => permute(v, perm), batched) ?? batched([x]);
  }
  const inv = new Array<number>(r);
  perm.forEach((p, i) => (inv[p] = i));
  return strided("permute", x, {
    outShape: perm.map((p) => x.shape[p]), map: perm, start: perm.map(() => 0), step: perm.map(() => 1), padValue: 0,
  }, (g) => permute(g, inv));
}

/** Swap two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const r = x.rank;
  const aa = a < 0 ? a + r : a, bb = b < 0 ? b + r : b;
  if (aa < 0 || aa >= r || bb < 0 || bb >= r) throw new Error(`transpose: axes ${a},${b} out of range for ${fmt(x.shape)}`);
  const perm = ident(r);
  perm[aa] = bb;
  perm[bb] = aa;
  return permute(x, perm);
}

/** x[begin:end] per axis (step 1). Missing entries mean the whole axis; negatives count from the end. */
export function slice(x: Tensor, begin: readonly number[], end?: readonly number[]): Tensor {
  const r = x.rank;
  const b0 = ident(r).map((i) => {
    const v = begin[i] ?? 0;
    return v < 0 ? v + x.shape[i] : v;
  });
  const e0 = ident(r).map((i) => {
    const v = end?.[i] ?? x.shape[i];
    return v < 0 ? v + x.shape[i] : v;
  });
  for (let i = 0; i < r; i++) {
    if (b0[i] < 0 || e0[i] > x.shape[i] || b0[i] > e0[i]) {
      throw new Error(`slice: range [${begin}]..[${end ?? ""}] out of bounds for ${fmt(x.shape)} at axis ${i}`);
    }
  }
  const outShape = ident(r).map((i) => e0[i] - b0[i]);
  // the gradient: g in the slice's box of x, zero around it (the engine joins the boxes of x's slices)
  const box = (g: Tensor) => new BoxGrad(g, b0, () => pad(g, ident(r).map((i) => [b0[i], x.shape[i] - e0[i]] as [number, number])));
  if (x.groups) {
    if (b0[0] !== 0 || e0[0] !== x.shape[0]) return batch(slice(unbatch(x), [0, ...b0], [x.groups, ...e0]));
    // the groups folded into the first axis for the copy; the node on x itself, so that the boxes
    // of x's slices meet (through a folded view of their own, each would be padded alone)
    const flat = noGrad(() => slice(folded(x), [0, ...b0.slice(1)], [x.groups * x.shape[0], ...e0.slice(1)]));
    return result("slice", [x], null, outShape, (g) => [box(g)], flat, flat, x.groups);
  }
  return strided("slice", x, { outShape, map: ident(r), start: b0, step: outShape.map(() => 1), padValue: 0 }, box);
}

/** Pad each axis by [before, after] with a constant. */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  const r = x.rank;
  if (pads.length !== r || pads.some(([a, b]) => a < 0 || b < 0 || !Number.isInteger(a) || !Number.isInteger(b))) {
    throw new Error(`pad: need ${r} non-negative [before, after] pairs for ${fmt(x.shape)}, got ${JSON.stringify(pads)}`);
  }
  if (x.groups) {
    if (r > 0 && pads[0][0] === 0 && pads[0][1] === 0) return unfolded(pad(folded(x), pads, value), x.groups);
    return batch(pad(unbatch(x), [[0, 0], ...pads], value));
  }
  const outShape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  return strided("pad", x, { outShape, map: ident(r), start: pads.map((p) => -p[0]), step: outShape.map(() => 1), padValue: value },
    (g) => slice(g, pads.map((p) => p[0]), x.shape.map((d, i) => pads[i][0] + d)));
}

export function flip(x: Tensor, axes: readonly number[]): Tensor {
  const r = x.rank;
  const ax = axes.map((a) => (a < 0 ? a + r : a));
  if (ax.some((a) => a < 0 || a >= r)) throw new Error(`flip: axes ${JSON.stringify(axes)} out of range for ${fmt(x.shape)}`);
  if (x.groups) {
    if (r > 0 && !ax.includes(0)) return unfolded(flip(folded(x), ax), x.groups);
    return batch(flip(unbatch(x), ax.map((a) => a + 1)));
  }
  return strided("flip", x, {
    outShape: x.shape, map: ident(r),
    start: x.shape.map((d, i) => (ax.includes(i) ? d - 1 : 0)),
    step: x.shape.map((_, i) => (ax.includes(i) ? -1 : 1)), padValue: 0,
  }, (g) => flip(g, ax));
}

export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const r = shape.length;
  const ok = x.rank <= r && x.shape.every((d, i) => d === 1 || d === shape[r - x.rank + i]);
  if (!ok) throw new Error(`broadcastTo: cannot broadcast ${fmt(x.shape)} to ${fmt(shape)}`);
  if (x.groups) {
    const G = x.groups;
    if (x.rank === r && r > 0 && x.shape[0] === shape[0]) return unfolded(broadcastTo(folded(x), [G * shape[0], ...shape.slice(1)]), G);
    return batch(broadcastTo(aligned(x, r), [G, ...shape]));
  }
  const xr = x.rank < r ? reshape(x, [...Array(r - x.rank).fill(1), ...x.shape]) : x;
  return strided("broadcastTo", xr, {
    outShape: shape, map: ident(r), start: shape.map(() => 0),
    step: shape.map((d, i) => (xr.shape[i] === 1 && d !== 1 ? 0 : 1)), padValue: 0,
  }, (g) => sumTo(g, xr.shape));
}

export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new Error("concat: no tensors");
  const r = xs[0].rank;
  const a = axis < 0 ? axis + r : axis;
  for (const t of xs) {
    if (t.rank !== r || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new Error(`concat: shapes ${xs.map((t) => fmt(t.shape)).join(", ")} differ off axis ${axis}`);
    }
  }
  if (xs.length === 1) return xs[0];
  const G = groupsOf("concat", xs);
  if (G) {
    // Ordinary operands are the same in every group.
    const bs = xs.map((t) => (t.groups ? t : batch(broadcastTo(reshape(t, [1, ...t.shape]), [G, ...t.shape]))));
    if (a > 0) return unfolded(concat(bs.map((t) => folded(t)), a), G);
    return batch(concat(bs.map((t) => unbatch(t)), a + 1));
  }
  assertSameBackend("concat", [...xs]);
  if (xs.some((t) => t.dtype !== xs[0].dtype)) throw new Error(`concat: dtypes ${xs.map((t) => t.dtype).join(", ")} differ`);
  const outer = sizeOf(xs[0].shape.slice(0, a)), inner = sizeOf(xs[0].shape.slice(a + 1));
  const outShape = xs[0].shape.map((d, i) => (i === a ? xs.reduce((s, t) => s + t.shape[a], 0) : d));
  const s = xs[0].backend.concat(xs.map((t) => t.storage("concat")), xs.map((t) => t.shape[a] * inner), outer, xs[0].dtype);
  const offsets = xs.map((_, i) => xs.slice(0, i).reduce((s, t) => s + t.shape[a], 0));
  return result("concat", [...xs], s, outShape, (g, needs) =>
    xs.map((t, i) => needs[i] ? slice(g, outShape.map((_, d) => (d === a ? offsets[i] : 0)), outShape.map((n, d) => (d === a ? offsets[i] + t.shape[a] : n))) : null), xs[0]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}
