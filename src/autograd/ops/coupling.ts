// The affine coupling's elementwise part (Glow: Kingma & Dhariwal 2018; RealNVP: Dinh et al. 2017):
// from the half xb it transforms and the network's output o = [shift; raw] (channels, [B, 2h, ...]),
//   s = sigmoid(raw + offset), yb = (xb + shift) * s, ls = log s = logSigmoid(raw + offset)
// (ls summed is the coupling's log-determinant). One op each way where the backend fuses them
// (Backend.affineCoupling, affineCouplingGrad: the composed ops' values bit for bit, eleven ops
// forward and about fifteen backward in one pass each), else the composed ops themselves.
import { fmt } from "../shape.ts";
import { assertSameBackend, isGradEnabled, result, type Tensor } from "../tensor.ts";
import { folded, groupsOf, unfolded } from "../batched.ts";
import { add, addScalar, div, logSigmoid, mul, mulUnary, neg, sigmoid, sub } from "./elementwise.ts";
import { concat, slice } from "./movement.ts";

/** The coupling's yb and ls (each [B, h, ...]) from xb [B, h, ...] and o [B, 2h, ...]. */
export function affineCoupling(xb: Tensor, o: Tensor, offset: number): { yb: Tensor; ls: Tensor } {
  const [B, h, ...rest] = xb.shape;
  if (xb.rank < 2 || o.rank !== xb.rank || o.shape[0] !== B || o.shape[1] !== 2 * h || rest.some((d, i) => o.shape[i + 2] !== d)) {
    throw new Error(`affineCoupling: xb ${fmt(xb.shape)} and o ${fmt(o.shape)} (allowed: o with twice xb's channels, the other axes alike)`);
  }
  assertSameBackend("affineCoupling", [xb, o]);
  const Y = fused(xb, o, offset);
  if (!Y) return composed(xb, o, offset);
  const [yb, ls] = split(Y);
  return { yb, ls };
}

/** The inverse: xb = yb / sigmoid(raw + offset) - shift, from yb [B, h, ...] and o [B, 2h, ...] (composed ops). */
export function affineCouplingInverse(yb: Tensor, o: Tensor, offset: number): Tensor {
  const { shift, raw } = halves(o, offset);
  return sub(div(yb, sigmoid(raw)), shift);
}

/** The composed ops (every backend without the fused op, float64). */
function composed(xb: Tensor, o: Tensor, offset: number): { yb: Tensor; ls: Tensor } {
  const { shift, raw } = halves(o, offset);
  return { yb: mul(add(xb, shift), sigmoid(raw)), ls: logSigmoid(raw) };
}

/** t [B, 2h, ...] as its two halves along the channels. */
function split(t: Tensor): [Tensor, Tensor] {
  const [B, h2, ...rest] = t.shape, h = h2 / 2;
  const at = (c: number) => [0, c, ...rest.map(() => 0)], to = (c: number) => [B, c, ...rest];
  return [slice(t, at(0), to(h)), slice(t, at(h), to(2 * h))];
}
function halves(o: Tensor, offset: number): { shift: Tensor; raw: Tensor } {
  const [shift, r] = split(o);
  return { shift, raw: addScalar(r, offset) };
}

/**
 * [yb; ls] ([B, 2h, ...]) by the backend's fused op, or null. Batched operands (the per-group
 * pass) fold their groups into the images. Its backward: the fused backward op while no graph is
 * recorded, else the composed ops' backward rules written out (so higher orders follow).
 */
function fused(xb: Tensor, o: Tensor, offset: number): Tensor | null {
  const be = xb.backend;
  // the kernels add the offset as a float32; the composed addScalar on short arrays adds it in
  // double, so an offset that is not a float32 composes (Glow's 2 is one)
  if (!be.affineCoupling || !be.affineCouplingGrad || Math.fround(offset) !== offset) return null;
  if (xb.groups || o.groups) {
    const G = groupsOf("affineCoupling", [xb, o]);
    if (!xb.groups || !o.groups || xb.groupCopy || o.groupCopy) return null;
    const Y = fused(folded(xb), folded(o), offset);
    return Y && unfolded(Y, G);
  }
  const [n, h] = xb.shape, half = xb.size / n;
  const s = be.affineCoupling(xb.storage("affineCoupling"), o.storage("affineCoupling"), n, half, offset, xb.dtype);
  if (!s) return null;
  return result("affineCoupling", [xb, o], s, [n, 2 * h, ...xb.shape.slice(2)], (g, needs) => {
    if (!isGradEnabled()) {
      const r = be.affineCouplingGrad!(g.storage("affineCouplingGrad"), xb.storage("affineCouplingGrad"), o.storage("affineCouplingGrad"), n, half, offset, xb.dtype);
      if (r) {
        const dxb = result("affineCouplingGrad", [], r.dxb, xb.shape, null, xb), dO = result("affineCouplingGrad", [], r.do, o.shape, null, o);
        if (!needs[0]) dxb.dispose();
        if (!needs[1]) dO.dispose();
        return [needs[0] ? dxb : null, needs[1] ? dO : null];
      }
    }
    return composedGrad(g, xb, o, offset);
  }, xb);
}

/**
 * The composed ops' backward rules from g = [gyb; gls], written out: mul's, add's, sigmoid's, and
 * logSigmoid's (neg, softplus as mulUnary(g, sigmoid, x), neg), in their order.
 */
function composedGrad(g: Tensor, xb: Tensor, o: Tensor, offset: number): [Tensor, Tensor] {
  const { shift, raw } = halves(o, offset);
  const [gyb, gls] = split(g);
  const s = sigmoid(raw), u = add(xb, shift);
  const du = mul(gyb, s);
  const draw = add(mul(mul(gyb, u), mul(s, addScalar(neg(s), 1))), neg(mulUnary(neg(gls), "sigmoid", neg(raw))));
  return [du, concat([du, draw], 1)];
}
