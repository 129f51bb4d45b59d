// GroupNorm's normalisation as one fused op (backend.groupNorm) with a fused gradient
// (backend.groupNormGrad), each one kernel where the composed form ran about ten forward and
// more backward (bench/README.md). Grad-of-grad still works: the forward's backward is
// groupNormGrad, whose own backward is composed of differentiable ops (and groupNormGrad again),
// and rstd is an output with its own (composed) backward, so every derivative order follows.
import { fmt, sizeOf } from "../shape.ts";
import { result, type Tensor } from "../tensor.ts";
import { batch, folded, groupsOf, unfolded } from "../batched.ts";
import type { ConvAct } from "../../kernels/backend.ts";
import { add, mul, neg, square, sub, unaryOf } from "./elementwise.ts";
import { reshape } from "./movement.ts";
import { mean, sum, sumTo } from "./reduce.ts";

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
  return normalized(x, rows, M, x.backend.groupNorm(x.storage("normalizeGroups"), rows, M, eps, x.dtype));
}

/** normalizeGroups' nodes (y, and rstd for y's own backward) over a backend's {y, rstd} for x seen as [rows, M]. */
function normalized(x: Tensor, rows: number, M: number, s: { y: unknown; rstd: unknown }): Tensor {
  // d rstd / dx = -rstd^3 (x - mean) / M = -(rstd^2 / M) y.
  const rstd: Tensor = result("groupNormRstd", [x], s.rstd, [rows, 1], (g) => [reshape(mul(yRows, mul(g, mul(square(rstd), -1 / M))), x.shape)], x);
  const y: Tensor = result("normalizeGroups", [x], s.y, x.shape, (g) => [reshape(groupNormGrad(reshape(g, [rows, M]), yRows, rstd), x.shape)], x);
  const yRows = reshape(y, [rows, M]);
  // Without a recorded graph nothing reads rstd: free it now rather than at the scope's end.
  if (!y.requiresGrad) rstd.dispose();
  return y;
}

/**
 * act(normalizeGroups(x) * weight + bias), weight and bias [C] per channel, in one op where the
 * backend fuses them (Backend.groupNormAffine: the affine and the activation applied to each
 * range of rows right after their normalisation, where the composed ops made three more passes
 * over the tensor): normalizeGroups' own nodes, one node for the affine (its derivatives the
 * composed multiply's and add's: g w, the sums of g y and of g over images and positions), then
 * the activation's own node; values and derivatives of every order the composed ops' bit for bit.
 * In a per-group pass (each group one image, the weight and bias per-group copies) all groups'
 * images are one batch with the shared weight and bias, the affine's derivatives per group. null
 * where it does not apply (other per-group operands, other shapes or dtypes, a backend without
 * the op): the caller composes.
 */
export function affineGroupNorm(x: Tensor, channelGroups: number, weight: Tensor, bias: Tensor, eps: number, act: ConvAct): Tensor | null {
  const C = x.shape[1];
  if (!x.backend.groupNormAffine || x.rank < 2 || C % channelGroups || weight.rank !== 1 || weight.shape[0] !== C || bias.rank !== 1 || bias.shape[0] !== C) return null;
  if (weight.backend !== x.backend || bias.backend !== x.backend || weight.dtype !== x.dtype || bias.dtype !== x.dtype) return null;
  // the per-group pass's case (each group one image, weight and bias per-group copies): all
  // groups' images as one batch with the shared weight and bias (every group holds their values)
  const shared = x.groups && x.shape[0] === 1 && weight.groups && weight.groupCopy && bias.groups && bias.groupCopy;
  if (!shared && (x.groups || weight.groups || bias.groups)) return null;
  const G = shared ? groupsOf("groupNorm", [x, weight, bias]) : 0, xf = shared ? folded(x) : x;
  const w = shared ? weight.groupCopy!.of : weight, b = shared ? bias.groupCopy!.of : bias;
  const N = xf.shape[0], HW = N * C ? sizeOf(xf.shape) / (N * C) : 0, rows = N * channelGroups, M = C / channelGroups * HW;
  const s = x.backend.groupNormAffine(xf.storage("groupNormAffine"), N, C, HW, channelGroups, eps, w.storage("groupNormAffine"), b.storage("groupNormAffine"), act, x.dtype);
  if (!s) return null;
  const y = normalized(xf, rows, M, s);
  const unit = xf.shape.slice(2).map(() => 1), cshape = [1, C, ...unit];
  // t summed over images and positions to one value per channel: [C], or per group [G | C] where
  // the weight and bias are per-group copies (each group one image)
  const perChannel = (t: Tensor) => shared ? batch(reshape(sumTo(t, [G, C, ...unit]), [G, C]), G, [C]) : reshape(sumTo(t, cshape), [C]);
  // the composed ops' derivatives: the multiply's (g w; the sum of g y) and the add's (the sum of g)
  const pre = result(shared ? "groupNormAffineSharedW" : "groupNormAffine", [y, weight, bias], s.pre, xf.shape, (g, needs) => [
    needs[0] ? mul(g, shared ? folded(reshape(weight, cshape)) : reshape(weight, cshape)) : null,
    needs[1] ? perChannel(mul(g, y)) : null,
    needs[2] ? perChannel(g) : null,
  ], xf);
  if (act !== "none" && s.out === null) throw new Error(`groupNormAffine: the ${x.backend.name} backend returned no ${act} values (its contract: out for every activation but "none")`);
  const out = act === "none" ? pre : unaryOf(act, pre, s.out);
  return shared ? unfolded(out, G) : out;
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
