// Matrix products. One primitive, mm(a, b, transA, transB) on [batch, rows, cols] operands,
// so the backward products need no transposed copies.
import { fmt } from "../shape.ts";
import { assertSameBackend, isGradEnabled, result, type Tensor } from "../tensor.ts";
import { reshape } from "./movement.ts";
import { sum } from "./reduce.ts";
import { batch, folded, groupsOf, onCopies, unbatch, unfolded } from "../batched.ts";

function as3(x: Tensor): [number, number, number] {
  if (x.rank === 2) return [1, x.shape[0], x.shape[1]];
  const r = x.rank;
  return [x.shape.slice(0, r - 2).reduce((a, b) => a * b, 1), x.shape[r - 2], x.shape[r - 1]];
}

/** Batched product with optional transposes of the last two axes; batch dims 1 broadcast. */
export function mm(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  assertSameBackend("matmul", [a, b]);
  if (a.rank < 2 || b.rank < 2 || a.rank > 3 || b.rank > 3) {
    throw new Error(`matmul: operands must be rank 2 or 3, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  if (a.groups || b.groups) return batchedMm(a, b, transA, transB);
  const [Ba, ar, ac] = as3(a), [Bb, br, bc] = as3(b);
  const M = transA ? ac : ar, K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  if (K !== Kb || (Ba !== Bb && Ba !== 1 && Bb !== 1)) {
    throw new Error(`matmul: shapes ${fmt(a.shape)}${transA ? "ᵀ" : ""} and ${fmt(b.shape)}${transB ? "ᵀ" : ""} do not match (inner ${K} vs ${Kb}, batch ${Ba} vs ${Bb})`);
  }
  const batch = Math.max(Ba, Bb);
  const outShape = a.rank === 3 || b.rank === 3 ? [batch, M, N] : [M, N];
  const s = a.backend.matmul(a.storage("matmul"), b.storage("matmul"), { batchA: Ba, batchB: Bb, M, K, N, transA, transB }, a.dtype);
  return result("matmul", [a, b], s, outShape, (g, needs) => {
    const ga = !needs[0] ? null : transA ? mm(b, g, transB, true) : mm(g, b, false, !transB);
    const gb = !needs[1] ? null : transB ? mm(g, a, true, transA) : mm(a, g, !transA, false);
    return [ga && reduceBatch(ga, a), gb && reduceBatch(gb, b)];
  }, a);
}

/**
 * Batched operands: once on the shared values where both are per-group copies of matrices
 * (onCopies: its backward's products, a batched gradient against a shared matrix, have rules
 * for rank 2), else mmRule.
 */
function batchedMm(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const batched = ([pa, pb]: Tensor[]) => mmRule(pa, pb, transA, transB);
  return (a.rank === 2 && b.rank === 2 ? onCopies([a, b], ([pa, pb]) => mm(pa, pb, transA, transB), batched) : null) ?? batched([a, b]);
}

/**
 * Batching rule. Rows of a batched a against an ordinary b fold into one product. A per-group copy
 * b (every group holds the same matrix) costs the same product (mmSharedB), or, in a norms-only
 * pass, is a Gram site: the shared matrix itself, with input and output recorded, and no gradient
 * for b at all (the caller forms each group's norm from a and dL/dy). Otherwise: one product per group.
 */
function mmRule(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const G = groupsOf("matmul", [a, b]);
  const copy = b.groupCopy;
  if (a.groups && a.rank === 2 && b.rank === 2 && !transA) {
    if (copy?.gramSites) {
      const input = folded(a);
      const output = mm(input, copy.of.detach(), false, transB);
      // The caller differentiates with respect to the output even where nothing before it needs grad (a first layer).
      if (isGradEnabled() && !output.requiresGrad) output.requireGrad();
      copy.gramSites.push({ copy: b, groups: G, input, output, transposed: transB });
      return unfolded(output, G);
    }
    if (!b.groups) return unfolded(mm(folded(a), b, false, transB), G);
    if (copy) return batch(mmSharedB(unbatch(a), unbatch(b), transB));
  }
  if (a.groups && a.rank === 3 && b.rank === 2 && !transA) {
    // Rows of every batch entry against one matrix per group: as one [Bt*M, K] operand.
    const [Bt, M, K] = a.shape;
    const y = mm(reshape(a, [Bt * M, K]), b, false, transB);
    return reshape(y, [Bt, M, y.shape[1]]);
  }
  if (a.groups && a.rank === 3 && (!b.groups ? b.rank === 2 || b.shape[0] === 1 : b.rank === 3)) {
    return unfolded(mm(folded(a), b.groups ? folded(b) : b, transA, transB), G);
  }
  if (a.rank === 2 && b.rank === 2) return batch(mm(unbatch(a), unbatch(b), transA, transB));
  throw new Error(`matmul: no batching rule for ${a} and ${b}`);
}

/** Sum over the batch when the operand was broadcast along it. */
function reduceBatch(g: Tensor, x: Tensor): Tensor {
  if (g.rank === 3 && (x.rank === 2 || x.shape[0] === 1) && g.shape[0] !== 1) return reshape(sum(g, 0), x.shape);
  return reshape(g, x.shape);
}

export const matmul = (a: Tensor, b: Tensor): Tensor => mm(a, b, false, false);

/**
 * a [G, R, K] times b [G, K, N] (or b[g] transposed, [G, N, K]) where the caller guarantees that
 * every b[g] holds the same values (per-group copies of one parameter, src/autograd/batched.ts).
 * The forward is then one product of all G*R rows with b[0] instead of G thin ones; derivatives are
 * those of the per-group product (the one for a is this op again), so higher orders stay exact.
 */
export function mmSharedB(a: Tensor, b: Tensor, transB = false): Tensor {
  assertSameBackend("mmSharedB", [a, b]);
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0]) {
    throw new Error(`mmSharedB: need [G, R, K] and [G, K, N] operands, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  const [G, R, K] = a.shape;
  const [Kb, N] = transB ? [b.shape[2], b.shape[1]] : [b.shape[1], b.shape[2]];
  if (K !== Kb) throw new Error(`mmSharedB: inner sizes ${K} and ${Kb} differ (${fmt(a.shape)}, ${fmt(b.shape)}${transB ? "ᵀ" : ""})`);
  // b's storage starts with b[0]: read as one [K, N] matrix.
  const s = a.backend.matmul(a.storage("mmSharedB"), b.storage("mmSharedB"), { batchA: 1, batchB: 1, M: G * R, K, N, transA: false, transB }, a.dtype);
  return result("mmSharedB", [a, b], s, [G, R, N], (g, needs) => [
    needs[0] ? mmSharedB(g, b, !transB) : null,
    needs[1] ? (transB ? mm(g, a, true, false) : mm(a, g, true, false)) : null,
  ], a);
}
