// ActNorm's per-channel affine (Glow: Kingma & Dhariwal 2018): y = (x + bias) * scale, x [N, C,
// ...] and bias, scale [C] per channel (ActNorm's scale is exp(logs)). One op each way where the
// backend fuses them (Backend.channelAffine, channelAffineGrad: the composed add's and multiply's
// values and derivatives bit for bit, where those made two passes forward, keeping x + bias, and
// two products and two row sums backward), else the composed ops themselves.
import { fmt, sizeOf } from "../shape.ts";
import { assertSameBackend, isGradEnabled, result, type Tensor } from "../tensor.ts";
import { batch, folded, groupsOf, unfolded } from "../batched.ts";
import { add, mul } from "./elementwise.ts";
import { reshape } from "./movement.ts";
import { sum, sumTo } from "./reduce.ts";

/** (x + bias) * scale with bias and scale [C] broadcast over x [N, C, ...]'s images and positions. */
export function channelAffine(x: Tensor, bias: Tensor, scale: Tensor): Tensor {
  const C = x.shape[1];
  if (x.rank < 2 || bias.rank !== 1 || scale.rank !== 1 || bias.shape[0] !== C || scale.shape[0] !== C) {
    throw new Error(`channelAffine: x ${fmt(x.shape)}, bias ${fmt(bias.shape)} and scale ${fmt(scale.shape)} (allowed: x [N, C, ...], bias and scale [C])`);
  }
  assertSameBackend("channelAffine", [x, bias, scale]);
  return fused(x, bias, scale) ?? mul(add(x, reshape(bias, unit(x))), reshape(scale, unit(x)));
}

/** [1, C, 1, ...]: a per-channel operand's shape against x. */
const unit = (x: Tensor) => [1, x.shape[1], ...x.shape.slice(2).map(() => 1)];

/**
 * The fused op, or null (the caller composes). In a per-group pass (each group one image, bias
 * and scale per-group copies) all groups' images are one batch with the shared values, the
 * derivatives of bias and scale per group. Its backward: the fused backward op while no graph is
 * recorded (dx, and each row's sums, which the composed reductions' last step sums over the
 * images), else the composed ops' backward rules written out (so higher orders follow).
 */
function fused(x: Tensor, bias: Tensor, scale: Tensor): Tensor | null {
  const be = x.backend;
  if (!be.channelAffine || !be.channelAffineGrad || x.rank < 3 || bias.dtype !== x.dtype || scale.dtype !== x.dtype) return null;
  const shared = x.groups && x.shape[0] === 1 && bias.groups && bias.groupCopy && scale.groups && scale.groupCopy;
  if (!shared && (x.groups || bias.groups || scale.groups)) return null;
  const G = shared ? groupsOf("channelAffine", [x, bias, scale]) : 0, xf = shared ? folded(x) : x;
  const b = shared ? bias.groupCopy!.of : bias, s = shared ? scale.groupCopy!.of : scale;
  const [N, C] = xf.shape, HW = sizeOf(xf.shape.slice(2));
  // rows of one position: the composed sums skip that axis (a row's sum would make -0 of +0's kind)
  if (HW < 2) return null;
  const st = (t: Tensor) => t.storage("channelAffine");
  const y = be.channelAffine(st(xf), st(b), st(s), N, C, HW, x.dtype);
  if (!y) return null;
  const cshape = unit(xf), rowShape = [shared ? G : 1, C, ...cshape.slice(2)];
  /** The per-row sums [N, C] summed as the composed sumTo(t, [1, C, 1, ...]) sums them: over the images ([C]), or per group ([G | C]). */
  const perChannel = (rows: Tensor) => {
    const v = shared ? batch(rows, G, [C]) : N > 1 ? sum(rows, 0) : reshape(rows, [C]);
    rows.dispose();
    return v;
  };
  /** The same of a full-size t, by the composed ops (a graph recorded). */
  const perChannelOf = (t: Tensor) => shared ? batch(reshape(sumTo(t, rowShape), [G, C]), G, [C]) : reshape(sumTo(t, cshape), [C]);
  const out = result(shared ? "channelAffineShared" : "channelAffine", [xf, bias, scale], y, xf.shape, (g, needs) => {
    if (!isGradEnabled()) {
      const r = be.channelAffineGrad!(g.storage("channelAffineGrad"), st(xf), st(b), st(s), N, C, HW, x.dtype);
      if (r) {
        const made = (v: unknown, shape: readonly number[]) => result("channelAffineGrad", [], v, shape, null, xf);
        const dx = made(r.dx, xf.shape), sdx = made(r.sumDx, [N, C]), stt = made(r.sumT, [N, C]);
        if (!needs[0]) dx.dispose();
        if (!needs[1]) sdx.dispose();
        if (!needs[2]) stt.dispose();
        return [needs[0] ? dx : null, needs[1] ? perChannel(sdx) : null, needs[2] ? perChannel(stt) : null];
      }
    }
    // the composed multiply's rule (g scale; the sum of g u, u = x + bias) and add's (its g to x and summed to bias)
    const per = (t: Tensor) => shared ? folded(reshape(t, cshape)) : reshape(t, cshape);
    const du = mul(g, per(scale));
    return [needs[0] ? du : null, needs[1] ? perChannelOf(du) : null, needs[2] ? perChannelOf(mul(g, add(xf, per(bias)))) : null];
  }, xf);
  return shared ? unfolded(out, G) : out;
}
