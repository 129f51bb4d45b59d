// conv2d NCHW with stride, zero padding and groups, and its two backward ops.
// The three are bilinear and each one's gradients are the other two, so grad-of-grad works.
import type { ConvAct, ConvParams, DerivAct } from "../../kernels/backend.ts";
import { fmt } from "../shape.ts";
import { assertSameBackend, isGradEnabled, ProductGrad, result, type Tensor } from "../tensor.ts";
import { batch, folded, groupsOf, unbatch, unfolded } from "../batched.ts";
import { broadcastTo, permute, reshape } from "./movement.ts";
import { add, reluMask, unary, unaryOf } from "./elementwise.ts";
import { sumTo } from "./reduce.ts";

export type { ConvAct };

export interface ConvOptions {
  stride?: number;
  padding?: number;
  groups?: number;
}

function params(x: readonly number[], w: readonly number[], o: ConvOptions): ConvParams {
  const stride = o.stride ?? 1, pad = o.padding ?? 0, groups = o.groups ?? 1;
  const [N, Cin, H, W] = x;
  const [Cout, cg, KH, KW] = w;
  const bad = (why: string) => new Error(`conv2d: input ${fmt(x)} and weight ${fmt(w)} (stride ${stride}, padding ${pad}, groups ${groups}): ${why}`);
  if (x.length !== 4 || w.length !== 4) throw bad("both must be rank 4 (NCHW and OIHW)");
  if (Cin % groups || Cout % groups) throw bad("channels not divisible by groups");
  if (cg * groups !== Cin) throw bad(`weight expects ${cg * groups} input channels`);
  if (!(stride >= 1) || !(pad >= 0)) throw bad("stride must be >= 1 and padding >= 0");
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1, OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  if (OH < 1 || OW < 1) throw bad("kernel larger than padded input");
  return { N, Cin, H, W, Cout, KH, KW, stride, pad, groups, OH, OW };
}

const outShape = (p: ConvParams) => [p.N, p.Cout, p.OH, p.OW];
const optsOf = (p: ConvParams): ConvOptions => ({ stride: p.stride, padding: p.pad, groups: p.groups });

export function conv2d(x: Tensor, w: Tensor, o: ConvOptions = {}): Tensor {
  assertSameBackend("conv2d", [x, w]);
  const p = params(x.shape, w.shape, o);
  if (x.groups || w.groups) return batchedConv2d(x, w, o);
  const s = x.backend.conv2d(x.storage("conv2d"), w.storage("conv2d"), { ...p, weightGradFollows: isGradEnabled() && w.requiresGrad }, x.dtype);
  return result("conv2d", [x, w], s, outShape(p), (g, needs) => [
    needs[0] ? inputGradOf(g, w, x, p) : null,
    needs[1] ? conv2dWeightGrad(x, g, w.shape, optsOf(p)) : null,
  ], x);
}

/**
 * A convolution node's input gradient, given to the engine uncomputed (ProductGrad): it computes
 * conv2dInputGrad, or, where the input is an activation's output that needs its gradient for
 * nothing else, the activation's node takes it times its derivative in one op (conv2dInputGradTimes).
 */
function inputGradOf(g: Tensor, w: Tensor, x: Tensor, p: ConvParams): ProductGrad {
  return new ProductGrad(() => conv2dInputGrad(g, w, x.shape, optsOf(p)), (act, z) => conv2dInputGradTimes(g, w, x.shape, optsOf(p), act, z), [g]);
}

/**
 * act(conv2d(x, w) + b), b [Cout] one bias per output channel, in one op where the backend fuses
 * them (Backend.conv2dBias: the bias and activation in the convolution's copy out, where the
 * composed ops made two more passes over its result): one node for the convolution and its bias,
 * whose derivatives are the composed pair's ops (the convolution's two gradients, the bias's sum
 * over images and positions), then the activation's own node (a ReLU whose backend kept only its
 * output: one node for all three, reluNode); values and derivatives of every order are the
 * composed ops' bit for bit. The per-group pass's case (one image per group, the
 * weight and bias per-group copies) is sharedConv2dBias; other per-group operands, and backends
 * without the op, compose.
 */
export function conv2dBias(x: Tensor, w: Tensor, b: Tensor, o: ConvOptions & { act?: ConvAct } = {}): Tensor {
  assertSameBackend("conv2dBias", [x, w, b]);
  const act = o.act ?? "none", Cout = w.shape[0];
  if (b.shape.length !== 1 || b.shape[0] !== Cout) throw new Error(`conv2dBias: bias ${fmt(b.shape)} for weight ${fmt(w.shape)} (allowed: [${Cout}], one per output channel)`);
  if (x.groups || w.groups || b.groups) return sharedConv2dBias(x, w, b, o, act) ?? composedConv2dBias(x, w, b, o, act);
  const p = params(x.shape, w.shape, o);
  const r = x.backend.conv2dBias?.(x.storage("conv2dBias"), w.storage("conv2dBias"), b.storage("conv2dBias"), { ...p, weightGradFollows: isGradEnabled() && w.requiresGrad }, act, x.dtype);
  if (!r) return composedConv2dBias(x, w, b, o, act);
  // the composed pair's derivatives from the gradient at pre
  const grads = (g: Tensor, needs: boolean[]) => [
    needs[0] ? inputGradOf(g, w, x, p) : null,
    needs[1] ? conv2dWeightGrad(x, g, w.shape, optsOf(p)) : null,
    needs[2] ? reshape(sumTo(g, [1, Cout, 1, 1]), [Cout]) : null,
  ];
  if (r.pre === null) return reluNode("conv2dBiasRelu", [x, w, b], r.y, outShape(p), grads, x, act);
  const pre = result("conv2dBias", [x, w, b], r.pre, outShape(p), grads, x);
  return activated(pre, r.y, act, x);
}

/**
 * relu(pre) where the backend kept only y, not pre (Backend.conv2dBias for "relu"): one node for
 * the convolution, its bias and the ReLU, whose derivatives are the composed ops': the gradient
 * at pre is the ReLU's backward, reluMask(g, y) (y > 0 exactly where pre > 0: the values of
 * reluMask(g, pre) bit for bit), then `grads` (the pair's). Like the ReLU's own node, it takes a
 * convolution's input gradient uncomputed with its derivative (conv2dInputGradTimes at z = y).
 */
function reluNode(op: string, inputs: Tensor[], s: unknown, shape: number[], grads: (g: Tensor, needs: boolean[]) => (Tensor | ProductGrad | null)[], like: Tensor, act: ConvAct): Tensor {
  if (act !== "relu") throw new Error(`conv2dBias: the ${like.backend.name} backend returned no pre-activation for ${act} (its contract: pre for every activation but "relu")`);
  if (s === null) throw new Error(`conv2dBias: the ${like.backend.name} backend returned no relu values (its contract: y for every activation but "none")`);
  const y: Tensor = result(op, inputs, s, shape, (g, needs) => grads(reluMask(g, y), needs), like);
  if (y.node) {
    y.node.takes = (d) => {
      const gp = d.times("relu", y);
      return gp && grads(gp, inputs.map((t) => t.requiresGrad));
    };
  }
  return y;
}

function composedConv2dBias(x: Tensor, w: Tensor, b: Tensor, o: ConvOptions, act: ConvAct): Tensor {
  const pre = add(conv2d(x, w, o), reshape(b, [1, w.shape[0], 1, 1]));
  return act === "none" ? pre : unary(act, pre);
}

/** The activation's own node over pre, its values y from the fused op (none: pre itself). */
function activated(pre: Tensor, y: unknown, act: ConvAct, x: Tensor): Tensor {
  if (act === "none") return pre;
  if (y === null) throw new Error(`conv2dBias: the ${x.backend.name} backend returned no ${act} values (its contract: y for every activation but "none")`);
  return pre.groups ? batch(unaryOf(act, unbatch(pre), y)) : unaryOf(act, pre, y);
}

/**
 * The per-group pass's case (each group one image, weight and bias per-group copies): one fused
 * op over all groups' images with the shared weight and bias (every group holds their values), as
 * convSharedW does for the weight, whose derivatives are the composed ops' (convSharedW's two, and
 * per group the bias's sum over positions, as the folded bias add's); the composed ops' values bit
 * for bit. null where it does not apply (several images per group, ordinary operands, a backend
 * without the op), and the ops compose.
 */
function sharedConv2dBias(x: Tensor, w: Tensor, b: Tensor, o: ConvOptions, act: ConvAct): Tensor | null {
  if (!x.groups || !w.groupCopy || !w.groups || !b.groupCopy || !b.groups || x.shape[0] !== 1 || !x.backend.conv2dBias) return null;
  const G = groupsOf("conv2dBias", [x, w, b]), Cout = w.shape[0];
  const xf = folded(x);
  const p = params(xf.shape, w.shape, o);
  const r = x.backend.conv2dBias(xf.storage("conv2dBias"), w.groupCopy.of.storage("conv2dBias"), b.groupCopy.of.storage("conv2dBias"), { ...p, weightGradFollows: isGradEnabled() && w.requiresGrad }, act, x.dtype);
  if (!r) return null;
  const grads = (g: Tensor, needs: boolean[]) => [
    needs[0] ? sharedInputGradOf(g, w, xf, p) : null,
    needs[1] ? perGroupWeightGrad(xf, g, w, optsOf(p)) : null,
    needs[2] ? batch(reshape(sumTo(g, [G, Cout, 1, 1]), [G, Cout]), G, [Cout]) : null,
  ];
  if (r.pre === null) return unfolded(reluNode("conv2dBiasReluSharedW", [xf, w, b], r.y, outShape(p), grads, xf, act), G);
  const pre = result("conv2dBiasSharedW", [xf, w, b], r.pre, outShape(p), grads, xf);
  return activated(unfolded(pre, G), r.y, act, x);
}

/**
 * Batching rule. An ordinary weight: the groups' images are one batch. A batched weight (one per
 * group): the groups become channel groups of one convolution, each group's images side by side.
 */
function batchedConv2d(x: Tensor, w: Tensor, o: ConvOptions): Tensor {
  const G = groupsOf("conv2d", [x, w]);
  if (!w.groups) return unfolded(conv2d(folded(x), w, o), G);
  // A per-group copy (every group holds the same weight): one convolution of all the groups'
  // images with the shared weight (packed once), the copy's gradient per group.
  if (w.groupCopy && x.groups) return unfolded(convSharedW(folded(x), w, o), G);
  return channelGroups(everyGroup(x, G), w, o, (xs, ws, og) => conv2d(xs, ws, og));
}

/** x batched over G groups as it is, or an ordinary x as every group's. */
function everyGroup(x: Tensor, G: number): Tensor {
  return x.groups ? x : batch(broadcastTo(reshape(x, [1, ...x.shape]), [G, ...x.shape]));
}

/**
 * A convolution (`run`: conv2d or conv2dInputGrad) of batched images xb [G | B, C, H, W] with a
 * batched weight w [G | ...]: the groups as channel groups of one grouped op, each group's images
 * side by side, the result batched back.
 */
function channelGroups(xb: Tensor, w: Tensor, o: ConvOptions, run: (xs: Tensor, ws: Tensor, o: ConvOptions) => Tensor): Tensor {
  const G = xb.groups, [Bg, C, H, W] = xb.shape, [wc, cg, kh, kw] = w.shape;
  const xs = Bg === 1 ? unbatch(xb, [1, G * C, H, W]) : reshape(permute(unbatch(xb), [1, 0, 2, 3, 4]), [Bg, G * C, H, W]);
  const y = run(xs, unbatch(w, [G * wc, cg, kh, kw]), { ...o, groups: G * (o.groups ?? 1) });
  const [, GC, OH, OW] = y.shape, Co = GC / G;
  return Bg === 1 ? batch(y, G, [1, Co, OH, OW]) : batch(permute(reshape(y, [Bg, G, Co, OH, OW]), [1, 0, 2, 3, 4]));
}

/**
 * conv2d of x [G*B, ...] (B images per group) with a per-group copy w of one weight (G groups, each
 * holding the same values): the forward reads the copied weight itself, so it is an ordinary
 * convolution of the G*B images; the derivatives are those of the per-group convolution (w's is
 * each group's weight gradient, the input's is convSharedWInputGrad, whose own derivatives are
 * this op again and the per-group weight gradient), so higher orders stay exact.
 */
export function convSharedW(x: Tensor, w: Tensor, o: ConvOptions): Tensor {
  const c = sharedCopy("convSharedW", w);
  const p = params(x.shape, w.shape, o);
  const s = x.backend.conv2d(x.storage("convSharedW"), c.storage("convSharedW"), { ...p, weightGradFollows: isGradEnabled() && w.requiresGrad }, x.dtype);
  return result("convSharedW", [x, w], s, outShape(p), (g, needs) => [
    needs[0] ? sharedInputGradOf(g, w, x, p) : null,
    needs[1] ? perGroupWeightGrad(x, g, w, optsOf(p)) : null,
  ], x);
}

/** inputGradOf for a per-group copy w: convSharedWInputGrad, or the product with the weight the copy holds times the derivative. */
function sharedInputGradOf(g: Tensor, w: Tensor, x: Tensor, p: ConvParams): ProductGrad {
  return new ProductGrad(() => convSharedWInputGrad(g, w, x.shape, optsOf(p)), (act, z) => conv2dInputGradTimes(g, sharedCopy("convSharedW", w), x.shape, optsOf(p), act, z), [g]);
}

/** d(convSharedW)/dx applied to gy: the transposed convolution with the shared weight. */
export function convSharedWInputGrad(gy: Tensor, w: Tensor, xShape: readonly number[], o: ConvOptions): Tensor {
  const c = sharedCopy("convSharedWInputGrad", w);
  const p = params(xShape, w.shape, o);
  if (gy.shape.join() !== outShape(p).join()) throw new Error(`convSharedWInputGrad: gradient ${fmt(gy.shape)} but conv output is ${fmt(outShape(p))}`);
  const s = gy.backend.conv2dInputGrad(gy.storage("convSharedWInputGrad"), c.storage("convSharedWInputGrad"), p, gy.dtype);
  return result("convSharedWInputGrad", [gy, w], s, xShape, (h, needs) => [
    needs[0] ? convSharedW(h, w, o) : null,
    needs[1] ? perGroupWeightGrad(h, gy, w, o) : null,
  ], gy);
}

/** The weight a per-group copy holds (its groups' common values). */
function sharedCopy(op: string, w: Tensor): Tensor {
  if (!w.groupCopy || !w.groups) throw new Error(`${op}: ${w} is not a per-group copy`);
  return w.groupCopy.of;
}

/**
 * Each group's weight gradient, batched [G | ...w.shape], of images x [G*B, ...] and output
 * gradients gy [G*B, ...]: the groups as channel groups of one weight-gradient convolution.
 */
function perGroupWeightGrad(x: Tensor, gy: Tensor, w: Tensor, o: ConvOptions): Tensor {
  const G = w.groups, B = x.shape[0] / G;
  const asGroups = (t: Tensor) => {
    const [, C, H, W] = t.shape;
    return B === 1 ? reshape(t, [1, G * C, H, W]) : reshape(permute(reshape(t, [G, B, C, H, W]), [1, 0, 2, 3, 4]), [B, G * C, H, W]);
  };
  const [Cout, cg, kh, kw] = w.shape;
  const dw = conv2dWeightGrad(asGroups(x), asGroups(gy), [G * Cout, cg, kh, kw], { ...o, groups: G * (o.groups ?? 1) });
  return batch(dw, G, w.shape);
}

/** d(conv2d)/dx applied to gy: the transposed convolution. */
export function conv2dInputGrad(gy: Tensor, w: Tensor, xShape: readonly number[], o: ConvOptions): Tensor {
  if (gy.groups || w.groups) return batchedConv2dInputGrad(gy, w, xShape, o);
  const p = params(xShape, w.shape, o);
  if (gy.shape.join() !== outShape(p).join()) throw new Error(`conv2dInputGrad: gradient ${fmt(gy.shape)} but conv output is ${fmt(outShape(p))}`);
  const s = gy.backend.conv2dInputGrad(gy.storage("conv2dInputGrad"), w.storage("conv2dInputGrad"), p, gy.dtype);
  return result("conv2dInputGrad", [gy, w], s, xShape, (h, needs) => [
    needs[0] ? conv2d(h, w, o) : null,
    needs[1] ? conv2dWeightGrad(h, gy, w.shape, o) : null,
  ], gy);
}

/**
 * Batching rule (a transposed convolution in a per-group pass: upsampleConv3x3), as conv2d's. An
 * ordinary weight: the groups' gradients are one batch. A per-group copy: convSharedWInputGrad
 * over all groups' images, the copy's gradient per group. Any other batched weight: the groups as
 * channel groups of one grouped transposed convolution. xShape is what one group sees.
 */
function batchedConv2dInputGrad(gy: Tensor, w: Tensor, xShape: readonly number[], o: ConvOptions): Tensor {
  const G = groupsOf("conv2dInputGrad", [gy, w]);
  const all = [G * xShape[0], ...xShape.slice(1)];
  if (!w.groups) return unfolded(conv2dInputGrad(folded(gy), w, all, o), G);
  const gb = everyGroup(gy, G);
  if (w.groupCopy) return unfolded(convSharedWInputGrad(folded(gb), w, all, o), G);
  const [Bg, Cx, XH, XW] = [gb.shape[0], ...xShape.slice(1)];
  return channelGroups(gb, w, o, (gs, ws, og) => conv2dInputGrad(gs, ws, [Bg, G * Cx, XH, XW], og));
}

/**
 * conv2dInputGrad(gy, w) times an activation's derivative at z (its input, shaped as the
 * convolution's input) in one op, where the backend fuses it into the product's copy out
 * (Backend.conv2dInputGradTimes): reluMask(dx, z) or mulUnary(dx, siluGrad, z) bit for bit. Not
 * differentiable: null while a graph is recorded (the engine composes then), for batched
 * operands, and where the backend composes.
 */
export function conv2dInputGradTimes(gy: Tensor, w: Tensor, xShape: readonly number[], o: ConvOptions, act: DerivAct, z: Tensor): Tensor | null {
  if (isGradEnabled() || !gy.backend.conv2dInputGradTimes || gy.groups || w.groups || z.groups) return null;
  assertSameBackend("conv2dInputGradTimes", [gy, w, z]);
  const p = params(xShape, w.shape, o);
  if (gy.shape.join() !== outShape(p).join() || z.shape.join() !== xShape.join() || z.dtype !== gy.dtype) {
    throw new Error(`conv2dInputGradTimes: gradient ${fmt(gy.shape)} and activation input ${fmt(z.shape)} for a convolution of ${fmt(xShape)} to ${fmt(outShape(p))}`);
  }
  const s = gy.backend.conv2dInputGradTimes(gy.storage("conv2dInputGradTimes"), w.storage("conv2dInputGradTimes"), p, act, z.storage("conv2dInputGradTimes"), gy.dtype);
  return s ? result("conv2dInputGradTimes", [gy, w, z], s, xShape, null, gy) : null;
}

/** d(conv2d)/dw applied to gy: correlation of input and output gradient. */
export function conv2dWeightGrad(x: Tensor, gy: Tensor, wShape: readonly number[], o: ConvOptions): Tensor {
  const p = params(x.shape, wShape, o);
  if (gy.shape.join() !== outShape(p).join()) throw new Error(`conv2dWeightGrad: gradient ${fmt(gy.shape)} but conv output is ${fmt(outShape(p))}`);
  const s = x.backend.conv2dWeightGrad(x.storage("conv2dWeightGrad"), gy.storage("conv2dWeightGrad"), p, x.dtype);
  return result("conv2dWeightGrad", [x, gy], s, wShape, (h, needs) => [
    needs[0] ? conv2dInputGrad(gy, h, x.shape, o) : null,
    needs[1] ? conv2d(x, h, o) : null,
  ], x);
}
