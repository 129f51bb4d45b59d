// Reductions over chosen axes. The backend reduces the middle axis of [outer, R, inner]; each run
// of adjacent axes is one such reduction (no transposing copy, reduceStorage below).
import type { ReduceOp } from "../../kernels/backend.ts";
import { fmt, normAxes, reducedAxesFor, type Shape, sameShape, sizeOf } from "../shape.ts";
import { result, type Tensor } from "../tensor.ts";
import { add, div, eq, exp, log, mul, sub } from "./elementwise.ts";
import { broadcastTo, reshape } from "./movement.ts";
import { noGrad } from "../tensor.ts";
import { batch, folded, onCopies, unbatch, unfolded } from "../batched.ts";

type Reduction = (x: Tensor, axes?: number | number[], keepdims?: boolean) => Tensor;

/** Batching rule of a reduction: over the groups' own axes; folded when the first axis is kept. */
function batchedReduce(f: Reduction, op: string, x: Tensor, axes: number | number[] | undefined, keepdims: boolean): Tensor {
  const ax = normAxes(op, axes, x.rank);
  const batched = ([v]: Tensor[]) => v.rank > 0 && !ax.includes(0) ? unfolded(f(folded(v), ax, keepdims), v.groups) : batch(f(unbatch(v), ax.map((a) => a + 1), keepdims));
  return onCopies([x], ([s]) => f(s, axes, keepdims), batched) ?? batched([x]);
}

function keptShape(shape: Shape, axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** A reduction's axes, its shape with the axes kept as 1, and its result shape. */
function reduction(op: string, x: Tensor, axes: number | number[] | undefined, keepdims: boolean) {
  const ax = normAxes(op, axes, x.rank);
  const kept = keptShape(x.shape, ax);
  return { ax, kept, shape: keepdims ? kept : x.shape.filter((_, i) => !ax.includes(i)) };
}

/** Splits sorted axes into runs of adjacent axes. */
function runsOf(axes: number[]): number[][] {
  const runs: number[][] = [];
  for (const a of axes) {
    const r = runs[runs.length - 1];
    if (r && a === r[r.length - 1] + 1) r.push(a);
    else runs.push([a]);
  }
  return runs;
}

/**
 * Reduce over axes: each run of adjacent axes is one [outer, R, inner] reduction, innermost run
 * first (no transposing copy; for max this is exact too, since max of maxes is the max).
 */
function reduceStorage(op: ReduceOp, x: Tensor, axes: number[]): unknown {
  const b = x.backend;
  if (axes.length === 0) return op === "sumsq" ? b.unary("square", x.storage(op), x.size, x.dtype, 0) : b.unary("mulScalar", x.storage(op), x.size, x.dtype, 1);
  let shape = [...x.shape];
  let cur = x.storage(op);
  let owned = false;
  for (const run of runsOf(axes).reverse()) {
    const outer = sizeOf(shape.slice(0, run[0]));
    const R = sizeOf(run.map((a) => shape[a]));
    const inner = sizeOf(shape.slice(run[run.length - 1] + 1));
    // After the first run, partial sums of squares are summed, not squared again.
    const next = b.reduce(owned && op === "sumsq" ? "sum" : op, cur, outer, R, inner, x.dtype);
    if (owned) b.release(cur);
    cur = next;
    owned = true;
    shape = shape.map((d, i) => (run.includes(i) ? 1 : d));
  }
  return cur;
}

export function sum(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  if (x.groups) return batchedReduce(sum, "sum", x, axes, keepdims);
  const { ax, kept, shape } = reduction("sum", x, axes, keepdims);
  return result("sum", [x], reduceStorage("sum", x, ax), shape, (g) => [broadcastTo(reshape(g, kept), x.shape)], x);
}

/** Sum of squares over axes in one pass (no squared copy): the layer-wise norms f_l. */
export function sumSquares(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  if (x.groups) return batchedReduce(sumSquares, "sumSquares", x, axes, keepdims);
  const { ax, kept, shape } = reduction("sumSquares", x, axes, keepdims);
  return result("sumSquares", [x], reduceStorage("sumsq", x, ax), shape, (g) => [mul(broadcastTo(reshape(g, kept), x.shape), mul(x, 2))], x);
}

export function mean(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = normAxes("mean", axes, x.rank);
  const n = sizeOf(ax.map((a) => x.shape[a]));
  return div(sum(x, ax, keepdims), n);
}

/** Max over axes; the gradient is split evenly between tied maxima. */
export function max(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  if (x.groups) return batchedReduce(max, "max", x, axes, keepdims);
  const { ax, kept, shape } = reduction("max", x, axes, keepdims);
  const y: Tensor = result("max", [x], reduceStorage("max", x, ax), shape, (g) => {
    const mask = noGrad(() => eq(x, reshape(y, kept)));
    const count = noGrad(() => sum(mask, ax, true));
    return [mul(broadcastTo(reshape(g, kept), x.shape), div(mask, count))];
  }, x);
  return y;
}

/** log(sum(exp(x))) over axes, shifted by the (constant) max for stability. */
export function logsumexp(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = normAxes("logsumexp", axes, x.rank);
  const m = noGrad(() => max(x, ax, true)).detach();
  const s = add(log(sum(exp(sub(x, m)), ax, true)), m);
  return keepdims ? s : reshape(s, x.shape.filter((_, i) => !ax.includes(i)));
}

/** Sum g down to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const axes = reducedAxesFor(shape, g.shape);
  const s = axes.length ? sum(g, axes, true) : g;
  if (s.size !== sizeOf(shape)) throw new Error(`sumTo: cannot reduce ${fmt(g.shape)} to ${fmt(shape)}`);
  return reshape(s, shape);
}
