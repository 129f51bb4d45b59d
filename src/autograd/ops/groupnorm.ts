// GroupNorm's normalisation as one fused op (backend.groupNorm) with a fused gradient
// (backend.groupNormGrad), each one kernel where the composed form ran about ten forward and
// more backward (bench/README.md). Grad-of-grad still works: the forward's backward is
// groupNormGrad, whose own backward is composed of differentiable ops (and groupNormGrad again),
// and rstd is an output with its own (composed) backward, so every derivative order follows.
import { fmt, sizeOf } from "../shape.ts";
import { result, type Tensor } from "../tensor.ts";
import { folded, unfolded } from "../batched.ts";
import { add, mul, neg, square, sub } from "./elementwise.ts";
import { reshape } from "./movement.ts";
import { mean, sum } from "./reduce.ts";

/**
 * x [N, C, ...] normalised over each of its N * channelGroups groups of C / channelGroups
 * channels (and all spatial positions): (x - mean) / sqrt(var + eps), the biased variance. A
 * batched x (x.groups: a per-group pass's groups, src/autograd/batched.ts): those fold into N (the
 * statistics are per example, so the fold is exact).
 */
export function normalizeGroups(x: Tensor, channelGroups: number, eps = 1e-5): Tensor {
  if (x.rank < 2 || !(channelGroups >= 1) || x.shape[1] % channelGroups) throw new Error(`normalizeGroups: ${x.shape[1]} channels of ${fmt(x.shape)} not divisible into ${channelGroups} groups`);
  if (x.groups) return unfolded(normalizeGroups(folded(x), channelGroups, eps), x.groups);
  const rows = x.shape[0] * channelGroups, M = rows ? sizeOf(x.shape) / rows : 0;
  const s = x.backend.groupNorm(x.storage("normalizeGroups"), rows, M, eps, x.dtype);
  // d rstd / dx = -rstd^3 (x - mean) / M = -(rstd^2 / M) y.
  const rstd: Tensor = result("groupNormRstd", [x], s.rstd, [rows, 1], (g) => [reshape(mul(yRows, mul(g, mul(square(rstd), -1 / M))), x.shape)], x);
  const y: Tensor = result("normalizeGroups", [x], s.y, x.shape, (g) => [reshape(groupNormGrad(reshape(g, [rows, M]), yRows, rstd), x.shape)], x);
  const yRows = reshape(y, [rows, M]);
  // Without a recorded graph nothing reads rstd: free it now rather than at the scope's end.
  if (!y.requiresGrad) rstd.dispose();
  return y;
}

/**
 * The gradient of normalizeGroups at its outputs y [rows, M] and rstd [rows, 1] given
 * g = dL/dy [rows, M]: rstd * (g - mean(g) - y * mean(g * y)) per row, one fused kernel.
 */
export function groupNormGrad(g: Tensor, y: Tensor, rstd: Tensor): Tensor {
  const [rows, M] = y.shape;
  if (y.rank !== 2 || g.rank !== 2 || g.shape[0] !== rows || g.shape[1] !== M || rstd.size !== rows) {
    throw new Error(`groupNormGrad: g ${fmt(g.shape)}, y ${fmt(y.shape)}, rstd ${fmt(rstd.shape)} are not [rows, M], [rows, M], [rows, 1]`);
  }
  const b = g.backend;
  const s = b.groupNormGrad(g.storage("groupNormGrad"), y.storage("groupNormGrad"), rstd.storage("groupNormGrad"), rows, M, g.dtype);
  // With dx = r P g, P = I - 11'/M - y y'/M per row (symmetric) and h = dL/d(dx):
  //   dL/dg = r P h (this op again), dL/dy = -r (h mean(g y) + g mean(h y)), dL/dr = sum(h dx) / r.
  const dx: Tensor = result("groupNormGrad", [g, y, rstd], s, [rows, M], (h, needs) => [
    needs[0] ? groupNormGrad(h, y, rstd) : null,
    needs[1] ? mul(neg(rstd), add(mul(h, mean(mul(g, y), 1, true)), mul(g, mean(mul(h, y), 1, true)))) : null,
    needs[2] ? reshape(sum(mul(h, sub(sub(g, mean(g, 1, true)), mul(y, mean(mul(g, y), 1, true)))), 1, true), [...rstd.shape]) : null,
  ], g);
  return dx;
}
