// Neural-network ops composed of primitives (their gradients come for free).
import { fmt } from "../shape.ts";
import { keep, type Tensor } from "../tensor.ts";
import type { Backend, ConvAct, DType } from "../../kernels/backend.ts";
import { add, exp, mul, sub, tensor, unary } from "./elementwise.ts";
import { matmul } from "./linalg.ts";
import { broadcastTo, permute, reshape } from "./movement.ts";
import { conv2dInputGrad } from "./conv.ts";
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
 * conv2d(upsampleNearest(x, 2), w) + b, then an activation, for a 3x3 w (stride 1, padding 1),
 * without the upsampled image: output pixel (2i+a, 2j+c) sees only x's rows i-1, i (a = 0) or
 * i, i+1 (a = 1) and the same of its columns, each row once with the sum of the 3x3 taps that
 * land on it. That is the transposed convolution of x (stride 2, padding 1) with a 4x4 kernel
 * whose taps are those sums, (w2, w1+w2, w0+w1, w0) along each axis: 16 multiply-adds per output
 * pixel and input channel where the upsampled convolution takes 36 (4/9 of its products), and
 * the 4x-larger upsampled image is never made. The kernel is a product of w with a fixed [9, 16]
 * matrix, so every derivative follows from the ops; the values are the upsampled convolution's
 * up to rounding (each tap sum is added before it multiplies).
 */
export function upsampleConv3x3(x: Tensor, w: Tensor, b: Tensor | null, act: ConvAct = "none"): Tensor {
  const [N, C, H, W] = x.shape, Co = w.shape[0];
  if (x.rank !== 4 || w.rank !== 4 || w.shape[1] !== C || w.shape[2] !== 3 || w.shape[3] !== 3 || (b && (b.rank !== 1 || b.shape[0] !== Co))) {
    throw new Error(`upsampleConv3x3: input ${fmt(x.shape)}, weight ${fmt(w.shape)}${b ? `, bias ${fmt(b.shape)}` : ""} (allowed: NCHW, a [Cout, C, 3, 3] weight, a [Cout] bias)`);
  }
  const k4 = permute(reshape(matmul(reshape(w, [Co * C, 9]), tapSums(x.backend, x.dtype)), [Co, C, 4, 4]), [1, 0, 2, 3]);
  let y = conv2dInputGrad(x, k4, [N, Co, 2 * H, 2 * W], { stride: 2, padding: 1 });
  if (b) y = add(y, reshape(b, [1, Co, 1, 1]));
  return act === "none" ? y : unary(act, y);
}

/** [9, 16]: 3x3 tap (ky, kx) -> 4x4 tap (ty, tx), 1 where the tap sums of upsampleConv3x3 take it. */
function tapSums(backend: Backend, dtype: DType): Tensor {
  let byType = TAP_SUMS.get(backend);
  if (!byType) TAP_SUMS.set(backend, byType = new Map());
  let t = byType.get(dtype);
  if (!t || t.disposed) {
    const A = [[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]]; // 4x4 tap t along an axis <- 3x3 taps k
    const m = new Float64Array(144);
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
      for (let ty = 0; ty < 4; ty++) for (let tx = 0; tx < 4; tx++) m[(ky * 3 + kx) * 16 + ty * 4 + tx] = A[ty][ky] * A[tx][kx];
    }
    byType.set(dtype, t = keep(tensor(m, [9, 16], { backend, dtype })));
  }
  return t;
}
const TAP_SUMS = new WeakMap<Backend, Map<DType, Tensor>>();

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

