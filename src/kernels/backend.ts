// The contract every backend implements. Storages are flat, contiguous, row-major.
// Ops here are the primitives; everything else in src/autograd is composed of them.

export type DType = "float32" | "float64";
export type Data = Float32Array | Float64Array;

export { BINARY_OPS, type BinaryOp, type ReduceOp, UNARY_OPS, type UnaryOp } from "./ops.ts";
import type { BinaryOp, ReduceOp, UnaryOp } from "./ops.ts";

export interface ConvParams {
  N: number; Cin: number; H: number; W: number;
  Cout: number; KH: number; KW: number;
  stride: number; pad: number; groups: number;
  OH: number; OW: number;
  /** Set on a forward whose weight gradient may follow: a backend may keep work it can reuse for it. */
  weightGradFollows?: boolean;
}

export interface StridedSpec {
  inShape: readonly number[];
  outShape: readonly number[];
  /** For each output dim, the input dim it walks. */
  map: readonly number[];
  /** For each output dim, input coordinate at output index 0 and its step. */
  start: readonly number[];
  step: readonly number[];
  /** Value written where the input coordinate falls outside the input (padding). */
  padValue: number;
}

export interface MatmulSpec {
  batchA: number; batchB: number; M: number; K: number; N: number;
  transA: boolean; transB: boolean;
}

/** One parameter of a fused moment update: its values, gradient and two moments, n elements each. */
export interface MomentItem<S = unknown> {
  p: S; g: S; m: S; v: S; n: number;
}

/**
 * One Adam or Adamax update of a parameter (Kingma & Ba 2015), the arithmetic of src/nn/optim.ts's
 * composed form in the same order, each step rounded to the storage's precision:
 *   g' = g + wd p (when wd != 0); m' = b1 m + omb1 g';
 *   adam: v' = b2 v + omb2 g'^2, p' = p - m' / (sqrt(v' invC2) + eps) lrc;
 *   adamax: v' = max(b2 v, |g'|), p' = p - m' / (v' + eps) lrc.
 * omb1 and omb2 are given (1 - b1 rounded once, as the composed form rounds it).
 */
export interface MomentUpdate {
  kind: "adam" | "adamax";
  b1: number; omb1: number; b2: number; omb2: number; invC2: number; eps: number; lrc: number; wd: number;
}

/** The activation a fused convolution applies after its bias (Backend.conv2dBias). */
export type ConvAct = "none" | "relu" | "silu";
/** An activation whose derivative a convolution's input gradient can apply (Backend.conv2dInputGradTimes). */
export type DerivAct = Exclude<ConvAct, "none">;

export interface Backend<S = unknown> {
  readonly name: "cpu" | "webgpu" | "gpujs" | "wasm";
  upload(data: ArrayLike<number>, dtype: DType): S;
  read(s: S, size: number, dtype: DType): Promise<Data>;
  release(s: S): void;
  fill(size: number, value: number, dtype: DType): S;
  unary(op: UnaryOp, x: S, size: number, dtype: DType, p: number): S;
  binary(op: BinaryOp, a: S, aShape: readonly number[], b: S, bShape: readonly number[], outShape: readonly number[], dtype: DType): S;
  where(c: S, cShape: readonly number[], a: S, aShape: readonly number[], b: S, bShape: readonly number[], outShape: readonly number[], dtype: DType): S;
  /** Reduce the middle axis of x seen as [outer, R, inner]; result is [outer, inner]. */
  reduce(op: ReduceOp, x: S, outer: number, R: number, inner: number, dtype: DType): S;
  strided(x: S, spec: StridedSpec, dtype: DType): S;
  /** Join parts seen as [outer, blocks[i]] along their second axis: the result is [outer, sum(blocks)]. */
  concat(parts: S[], blocks: readonly number[], outer: number, dtype: DType): S;
  matmul(a: S, b: S, spec: MatmulSpec, dtype: DType): S;
  conv2d(x: S, w: S, p: ConvParams, dtype: DType): S;
  conv2dInputGrad(gy: S, w: S, p: ConvParams, dtype: DType): S;
  conv2dWeightGrad(x: S, gy: S, p: ConvParams, dtype: DType): S;
  /**
   * Optional: conv2dInputGrad(gy, w) times an activation's derivative at z (the activation's
   * input, shaped as the convolution's input): for relu binary reluMask(dx, z), for silu
   * mulUnary(dx, siluGrad, z), bit for bit; null where this backend composes them (backends
   * without it always do).
   */
  conv2dInputGradTimes?(gy: S, w: S, p: ConvParams, act: DerivAct, z: S, dtype: DType): S | null;
  /**
   * Optional: conv2d with a bias per output channel and an activation, one op: pre = conv2d(x, w)
   * + b (b [Cout] broadcast over images and positions) and y = act(pre) (null for "none"), each
   * value the composed ops' (conv2d, binary add, unary act) bit for bit; null where this backend
   * composes them for this dtype (backends without it always do). For "relu" pre may be null (not
   * kept): the ReLU's derivative is then read from y (y > 0 exactly where pre > 0).
   */
  conv2dBias?(x: S, w: S, b: S, p: ConvParams, act: ConvAct, dtype: DType): { pre: S | null; y: S | null } | null;
  /**
   * Optional: g * op(x) for n elements of each (an activation's backward: g times its derivative
   * at x), one op whose values are binary mul(g, unary(op, x)) bit for bit; null where this backend
   * composes them for this op and dtype (backends without it always do).
   */
  mulUnary?(g: S, op: UnaryOp, x: S, n: number, p: number, dtype: DType): S | null;
  /**
   * Normalise each row of x seen as [rows, M]: y = (x - mean) * rstd with
   * rstd = 1 / sqrt(var + eps) (the biased variance); returns y [rows, M] and rstd [rows].
   */
  groupNorm(x: S, rows: number, M: number, eps: number, dtype: DType): { y: S; rstd: S };
  /**
   * The gradient of groupNorm's y w.r.t. x given dL/dy = g, from its outputs: per row,
   * dx = rstd * (g - mean(g) - y * mean(g * y)).
   */
  groupNormGrad(g: S, y: S, rstd: S, rows: number, M: number, dtype: DType): S;
  /**
   * Optional: groupNorm of x [N, C, HW] in `groups` channel groups (rows N * groups of
   * M = C / groups * HW), then the per-channel affine and an activation: y and rstd as groupNorm's,
   * pre = y * w + b (w, b [C] broadcast over images and positions) and out = act(pre) (null for
   * "none"), each value the composed ops' (groupNorm, binary mul, binary add, unary act) bit for
   * bit; null where this backend composes them for this dtype (backends without it always do).
   */
  groupNormAffine?(x: S, N: number, C: number, HW: number, groups: number, eps: number, w: S, b: S, act: ConvAct, dtype: DType): { y: S; rstd: S; pre: S; out: S | null } | null;
  /**
   * Optional: the affine coupling's elementwise part over n images (src/autograd/ops/coupling.ts):
   * from xb [n][half] and o [n][2 half] (shift, raw), the result [n][2 half]: yb = (xb + shift) *
   * sigmoid(raw + offset), then ls = logSigmoid(raw + offset), each value the composed ops' bit for
   * bit; null where this backend composes them.
   */
  affineCoupling?(xb: S, o: S, n: number, half: number, offset: number, dtype: DType): S | null;
  /**
   * Optional: its backward from g [n][2 half] (yb's gradient, then ls's): dxb [n][half] and
   * do [n][2 half] (the shift's gradient, equal to dxb, then raw's), each value the composed ops'
   * backward rules' bit for bit; null where this backend composes them.
   */
  affineCouplingGrad?(g: S, xb: S, o: S, n: number, half: number, offset: number, dtype: DType): { dxb: S; do: S } | null;
  /**
   * Optional: ActNorm's per-channel affine (src/autograd/ops/channel_affine.ts) over x [N][C][HW]:
   * y = (x + bias[c]) * scale[c], bias and scale [C], each value the composed add's and
   * multiply's bit for bit; null where this backend composes them.
   */
  channelAffine?(x: S, bias: S, scale: S, N: number, C: number, HW: number, dtype: DType): S | null;
  /**
   * Optional: its backward from g [N][C][HW]: dx = g * scale[c] (the multiply's gradient of x +
   * bias, which the add passes on), and per row (image, channel) sumDx, the sum of its dx, and
   * sumT, the sum of t = g * (x + bias[c]) (the multiply's gradient of the scale), [N][C] each:
   * the values of those composed ops and of reduce("sum") over each row ([N * C, HW, 1]) bit for
   * bit; null where this backend composes them.
   */
  channelAffineGrad?(g: S, x: S, bias: S, scale: S, N: number, C: number, HW: number, dtype: DType): { dx: S; sumDx: S; sumT: S } | null;
  /**
   * Optional: a fused MomentUpdate of every parameter in `items` (its gradient and two moments, n
   * elements each), all in one op; new storages (backends without it run the composed ops).
   */
  momentUpdate?(items: readonly MomentItem<S>[], u: MomentUpdate, dtype: DType): { p: S; m: S; v: S }[] | null;
  /**
   * Optional: the sum over i of reduce("sumsq", xs[i]) (each over its ns[i] elements), the
   * tensors' sums added in order in the dtype's precision: the composed reduce and add ops'
   * value bit for bit, in one op ([] storage); null where this backend composes them.
   */
  sumSquaresAll?(xs: readonly S[], ns: readonly number[], dtype: DType): S | null;
  /** Optional: each xs[i] (ns[i] elements) times the scalar s ([] storage): binary mul's values, in one op; null where this backend composes them. */
  scaleAll?(xs: readonly S[], ns: readonly number[], s: S, dtype: DType): S[] | null;
  /** Wait for queued work (no-op on CPU). */
  sync(): Promise<void>;
}
