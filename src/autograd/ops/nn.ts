// Neural-network ops composed of primitives (their gradients come for free).
import { fmt } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import type { ConvAct } from "../../kernels/backend.ts";
import { add, exp, mul, sub, tensor, unary } from "./elementwise.ts";
import { matmul } from "./linalg.ts";
import { broadcastTo, reshape } from "./movement.ts";
import { logsumexp, mean } from "./reduce.ts";
import { affineGroupNorm, normalizeGroups } from "./groupnorm.ts";

/** Average pooling with a k x k window and stride k (NCHW; H and W divisible by k). */
export function avgPool2d(x: Tensor, k = 2): Tensor {
  const [N, C, H, W] = x.shape;
  if (x.rank !== 4 || H % k || W % k) throw new Error(`avgPool2d: input ${fmt(x.shape)} must be NCHW with H, W divisible by ${k}`);
  return mean(reshape(x, [N, C, H / k, k, W / k, k]), [3, 5]);
}

/** Nearest-neighbour upsampling by an integer factor (default 2), NCHW. */
export function upsampleNearest(x: Tensor, factor = 2): Tensor {
  const [N, C, H, W] = x.shape;
  if (x.rank !== 4) throw new Error(`upsampleNearest: input ${fmt(x.shape)} must be NCHW`);
  const b = broadcastTo(reshape(x, [N, C, H, 1, W, 1]), [N, C, H, factor, W, factor]);
  return reshape(b, [N, C, H * factor, W * factor]);
}

/**
 * Group normalisation over (C/groups, H, W) per example (one fused op, groupnorm.ts), with optional
 * per-channel affine and an activation after it (act: the U-Net's SiLU). With both weight and
 * bias, one op where the backend fuses the three (affineGroupNorm), the same values and
 * derivatives as the composed ops.
 */
export function groupNorm(x: Tensor, groups: number, weight?: Tensor, bias?: Tensor, eps = 1e-5, act: ConvAct = "none"): Tensor {
  const C = x.shape[1];
  if (x.rank < 2 || C % groups) throw new Error(`groupNorm: ${C} channels of ${fmt(x.shape)} not divisible into ${groups} groups`);
  const fused = weight && bias ? affineGroupNorm(x, groups, weight, bias, eps, act) : null;
  if (fused) return fused;
  let y = normalizeGroups(x, groups, eps);
  const cshape = [1, C, ...x.shape.slice(2).map(() => 1)];
  if (weight) y = mul(y, reshape(weight, cshape));
  if (bias) y = add(y, reshape(bias, cshape));
  return act === "none" ? y : unary(act, y);
}

/**
 * Softmax over one axis (default the last): exp(x - logsumexp(x)). Composed of differentiable ops
 * (logsumexp shifts by a detached max), so its gradient y (g - sum(g y)) and every higher
 * derivative follow; used by the U-Net's attention over [B, N, N] scores.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return exp(sub(x, logsumexp(x, axis, true)));
}

/** One-hot rows for integer labels: [labels.length, n]. */
export function oneHot(labels: ArrayLike<number>, n: number, like: Tensor): Tensor {
  const data = new Float64Array(labels.length * n);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= n) throw new Error(`oneHot: label ${c} at ${i} outside [0, ${n})`);
    data[i * n + c] = 1;
  }
  return tensor(data, [labels.length, n], { backend: like.backend, dtype: like.dtype });
}

/** Rows of a [R, D] tensor picked by index, as a one-hot product (so it is differentiable). */
export function gatherRows(x: Tensor, idx: ArrayLike<number>): Tensor {
  if (x.rank !== 2) throw new Error(`gatherRows: expects [R, D], got ${fmt(x.shape)}`);
  return matmul(oneHot(idx, x.shape[0], x), x);
}

