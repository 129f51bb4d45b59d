// conv2d through im2col + the matmul kernels. Batch b = (image n, group g) of the matmul pairs
// W[g] (A repeats every `groups` batches) with image n's patch block of group g, so outputs land
// in NCHW directly and per-group weights (the per-example OOD pass) cost no transpose.
import type { ConvParams } from "../backend.ts";
import { col2imShader, conv2dSharedShader, im2colShader } from "../../../shaders/conv_gemm.wgsl.ts";
import { SHARED_LANES } from "../../../shaders/matmul.wgsl.ts";
import { MAX_GROUPS_X } from "../../../shaders/preamble.ts";
import { CONV } from "../../../shaders/conv.wgsl.ts";
import type { MatmulVariant } from "../../../shaders/matmul.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";
import { matmulStrided } from "./matmul.ts";
import { reduce } from "./reduce.ts";

/** The CONV params of every conv kernel (conv.ts too); SPLITS only for the uniform weight gradient. */
export function convParams(p: ConvParams, SPLITS = 0): number[] {
  const { N, Cin, H, W, Cout, KH, KW, OH, OW } = p;
  return CONV.pack({ N, Cin, H, W, Cout, KH, KW, S: p.stride, PAD: p.pad, G: p.groups, OH, OW, SPLITS });
}

/** Sizes of the GEMM view: K = patch rows per group, P = output positions, og = output channels per group. */
function dims(p: ConvParams) {
  return { K: (p.Cin / p.groups) * p.KH * p.KW, P: p.OH * p.OW, og: p.Cout / p.groups, G: p.groups };
}

/** A 1x1, stride-1, unpadded conv's patch matrix is its input, in the same layout: no im2col/col2im. */
const pointwise = (p: ConvParams) => p.KH === 1 && p.KW === 1 && p.stride === 1 && p.pad === 0;

function im2col(rt: Runtime, x: GpuStorage, p: ConvParams): GpuStorage {
  if (pointwise(p)) return x;
  const col = rt.alloc(p.N * p.Cin * p.KH * p.KW * p.OH * p.OW);
  rt.dispatch("im2col", im2colShader, convParams(p), [x], col, groups(p.N * p.Cin * p.KH * p.KW * p.OH));
  return col;
}

// A forward whose weight gradient will follow keeps its patch matrix for it (rt.patches,
// patches.ts): one im2col instead of two.
function keepPatches(rt: Runtime, x: GpuStorage, p: ConvParams, col: GpuStorage): boolean {
  return !!p.weightGradFollows && col !== x && rt.patches.keep(x, convParams(p).join(), col);
}

/** The patch matrix of x: kept by the forward (handed over: the caller frees it) or built now. */
function takePatches(rt: Runtime, x: GpuStorage, p: ConvParams): GpuStorage {
  return rt.patches.take(x, convParams(p).join()) ?? im2col(rt, x, p);
}

/** Y[n, g] = W[g] [og, K] x col[n, g] [K, P]. */
export function conv2dGemm(rt: Runtime, x: GpuStorage, w: GpuStorage, p: ConvParams, mm: MatmulVariant = "auto"): GpuStorage {
  const { K, P, og, G } = dims(p);
  const col = im2col(rt, x, p);
  const y = matmulStrided(rt, w, col, p.N * G, og, K, P, { aBatch: og * K, aM: K, aK: 1, bBatch: K * P, bK: P, bN: 1, aWrap: G }, mm);
  if (col !== x && !keepPatches(rt, x, p, col)) rt.free(col);
  return y;
}

/**
 * The forward on shared-memory tiles (conv variant "shared"), an implicit GEMM with the patches
 * gathered while staging: 64 x 64 tiles of Y[n, g] = W[g] x patches(n, g). Past MAX_GROUPS_X
 * (image, group) pairs, the gemm path.
 */
export function conv2dShared(rt: Runtime, x: GpuStorage, w: GpuStorage, p: ConvParams): GpuStorage {
  const { K, P, og, G } = dims(p);
  if (p.N * G > MAX_GROUPS_X) return conv2dGemm(rt, x, w, p, "shared4x4");
  const vecA = K % 4 === 0;
  const out = rt.alloc(p.N * p.Cout * P);
  const side = SHARED_LANES * 4;
  rt.dispatch(`conv2d:shared:${+vecA}`, () => conv2dSharedShader(4, 4, vecA), convParams(p), [x, w], out, [Math.ceil(P / side), Math.ceil(og / side), p.N * G]);
  return out;
}

/** dcol[n, g] = W[g]^T [K, og] x dY[n, g] [og, P], then summed back onto the input grid. */
export function conv2dInputGradGemm(rt: Runtime, gy: GpuStorage, w: GpuStorage, p: ConvParams, mm: MatmulVariant = "auto"): GpuStorage {
  const { K, P, og, G } = dims(p);
  const dcol = matmulStrided(rt, w, gy, p.N * G, K, og, P, { aBatch: og * K, aM: 1, aK: K, bBatch: og * P, bK: P, bN: 1, aWrap: G }, mm);
  if (pointwise(p)) return dcol;
  const dx = rt.alloc(p.N * p.Cin * p.H * p.W);
  rt.dispatch(`col2im:s${p.stride}`, () => col2imShader(p.stride), convParams(p), [dcol], dx, groups(p.N * p.Cin * p.H));
  rt.free(dcol);
  return dx;
}

/** dW[g] = sum over images of dY[n, g] [og, P] x col[n, g]^T [P, K]. */
export function conv2dWeightGradGemm(rt: Runtime, x: GpuStorage, gy: GpuStorage, p: ConvParams, mm: MatmulVariant = "auto"): GpuStorage {
  const { K, P, og, G } = dims(p);
  const col = takePatches(rt, x, p);
  const per = matmulStrided(rt, gy, col, p.N * G, og, P, K, { aBatch: og * P, aM: P, aK: 1, bBatch: K * P, bK: 1, bN: P }, mm);
  if (col !== x) rt.free(col);
  if (p.N === 1) return per;
  const dw = reduce(rt, "sum", per, 1, p.N, p.Cout * K);
  rt.free(per);
  return dw;
}
