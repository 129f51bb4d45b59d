// Glow's invertible layers (Kingma & Dhariwal 2018). Each maps x -> y with a per-example
// log|det J| ([B], or a scalar when it does not depend on the data) and has an exact inverse.
import * as T from "../autograd/index.ts";
import { Conv2d, type Init, Module, zerosFor } from "../nn/module.ts";
import { invert, luDecompose, permutationMatrix, randomRotation } from "./host_linalg.ts";

export interface FlowOut {
  y: T.Tensor;
  logdet: T.Tensor;
}

/** Space-to-depth 2x2 (the Glow paper's "squeeze"): [B, C, H, W] -> [B, 4C, H/2, W/2]; volume preserving. */
export function spaceToDepth(x: T.Tensor): T.Tensor {
  const [B, C, H, W] = x.shape;
  if (H % 2 || W % 2) throw new Error(`spaceToDepth: ${T.fmt(x.shape)} needs even H and W`);
  return T.reshape(T.permute(T.reshape(x, [B, C, H / 2, 2, W / 2, 2]), [0, 1, 3, 5, 2, 4]), [B, 4 * C, H / 2, W / 2]);
}

/** Its inverse (the Glow paper's "unsqueeze"; not T.unsqueeze, which adds an axis). */
export function depthToSpace(x: T.Tensor): T.Tensor {
  const [B, C4, h, w] = x.shape;
  return T.reshape(T.permute(T.reshape(x, [B, C4 / 4, 2, 2, h, w]), [0, 1, 4, 2, 5, 3]), [B, C4 / 4, 2 * h, 2 * w]);
}

/**
 * The logit of the pixels (Dinh et al. 2017, RealNVP): y in [-1/2, 1/2) -> p = alpha + (1 - 2 alpha)(y + 1/2)
 * -> x = log p - log(1 - p), per pixel, with log|dx/dy| = log(1 - 2 alpha) - log p - log(1 - p).
 * alpha > 0 keeps p away from 0 and 1, so black pixels (most of a FashionMNIST image) map to a
 * bounded range instead of a long tail. A fixed bijection: the flow after it models x, and the
 * log-determinant carries its NLL back to the pixels, so bits/dim stay those of the 8-bit images.
 */
export class LogitPreprocess {
  constructor(readonly alpha: number) {
    if (!(alpha > 0 && alpha < 0.5)) throw new Error(`LogitPreprocess: alpha ${alpha} (allowed: 0 < alpha < 0.5)`);
  }

  forward(y: T.Tensor): FlowOut {
    const a = this.alpha;
    const p = T.add(T.mul(T.add(y, 0.5), 1 - 2 * a), a);
    const lp = T.log(p), l1p = T.log(T.sub(1, p));
    const ld = T.sum(T.reshape(T.add(lp, l1p), [y.shape[0], -1]), 1);
    return { y: T.sub(lp, l1p), logdet: T.sub(y.size / y.shape[0] * Math.log(1 - 2 * a), ld) };
  }

  reverse(x: T.Tensor): T.Tensor {
    const a = this.alpha;
    return T.sub(T.div(T.sub(T.sigmoid(x), a), 1 - 2 * a), 0.5);
  }
}

/** Per-channel affine y = (x + bias) * exp(logs), initialised from the first batch to zero mean, unit variance. */
export class ActNorm extends Module {
  readonly bias: T.Tensor;
  readonly logs: T.Tensor;
  initialized = false;
  /** Set by Glow.initialize: the next forward computes bias and logs from its input. */
  initNext = false;

  constructor(readonly channels: number, o: Init) {
    super();
    this.bias = this.param("bias", zerosFor([channels], o));
    this.logs = this.param("logs", zerosFor([channels], o));
  }

  #c(t: T.Tensor) {
    return T.reshape(t, [1, this.channels, 1, 1]);
  }

  forward(x: T.Tensor): FlowOut {
    if (this.initNext) {
      T.noGrad(() => {
        const mean = T.mean(x, [0, 2, 3]);
        const std = T.sqrt(T.mean(T.square(T.sub(x, this.#c(mean))), [0, 2, 3]));
        this.bias.assign(T.neg(mean));
        this.logs.assign(T.neg(T.log(T.add(std, 1e-6))));
      });
      this.initNext = false;
      this.initialized = true;
    }
    const [, , H, W] = x.shape;
    return { y: T.channelAffine(x, this.bias, T.exp(this.logs)), logdet: T.mul(T.sum(this.logs), H * W) };
  }

  reverse(y: T.Tensor): T.Tensor {
    return T.sub(T.mul(y, T.exp(T.neg(this.#c(this.logs)))), this.#c(this.bias));
  }
}

/** Why values are not an n x n permutation matrix (0/1, one 1 in each row and column), or null. */
export function permutationMatrixProblem(v: ArrayLike<number>, n: number): string | null {
  if (v.length !== n * n) return `has ${v.length} values, not ${n}x${n}`;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0 && v[i] !== 1) return `holds ${v[i]} at index ${i} (allowed: a permutation matrix of 0s and 1s)`;
  for (let i = 0; i < n; i++) {
    let row = 0, col = 0;
    for (let j = 0; j < n; j++) {
      row += v[i * n + j];
      col += v[j * n + i];
    }
    if (row !== 1 || col !== 1) return `is not a permutation matrix (row or column ${i} does not hold exactly one 1)`;
  }
  return null;
}

/** Why values are not all +1 or -1, or null. */
export function signsProblem(v: ArrayLike<number>): string | null {
  for (let i = 0; i < v.length; i++) if (v[i] !== 1 && v[i] !== -1) return `holds ${v[i]} at index ${i} (allowed: signs, +1 or -1)`;
  return null;
}

/**
 * Invertible 1x1 convolution, LU-parameterised: W = P L (U + diag(sign * exp(logs))), P and sign
 * fixed, L unit lower-triangular; log|det W| = sum(logs), times H*W positions. P ("perm", the
 * n x n permutation matrix) and sign come from the LU factors of a random rotation drawn from the
 * init generator; they are buffers, stored in the model file, so a loaded model never depends on
 * that draw (files written before they were stored: scripts/migrate_weights.ts).
 */
export class InvConv1x1 extends Module {
  readonly lower: T.Tensor;
  readonly upper: T.Tensor;
  readonly logs: T.Tensor;
  readonly #p: T.Tensor;
  readonly #sign: T.Tensor;
  readonly #lmask: T.Tensor;
  readonly #umask: T.Tensor;
  readonly #eye: T.Tensor;

  constructor(readonly channels: number, o: Init) {
    super();
    const n = channels;
    const { perm, l, u } = luDecompose(randomRotation(n, o.gen), n);
    const mk = (d: ArrayLike<number>, shape: number[]) => T.keep(T.tensor(d, shape, { backend: o.backend, dtype: o.dtype }));
    const diag = [...Array(n).keys()].map((i) => u[i * n + i]);
    const strictU = u.map((v, k) => (Math.floor(k / n) < k % n ? v : 0));
    const strictL = l.map((v, k) => (Math.floor(k / n) > k % n ? v : 0));
    this.#p = this.buffer("perm", mk(permutationMatrix(perm), [n, n]), (v) => permutationMatrixProblem(v, n));
    this.#sign = this.buffer("sign", mk(diag.map(Math.sign), [n]), signsProblem);
    this.#lmask = mk(Array.from({ length: n * n }, (_, k) => (Math.floor(k / n) > k % n ? 1 : 0)), [n, n]);
    this.#umask = mk(Array.from({ length: n * n }, (_, k) => (Math.floor(k / n) < k % n ? 1 : 0)), [n, n]);
    this.#eye = mk(Array.from({ length: n * n }, (_, k) => (Math.floor(k / n) === k % n ? 1 : 0)), [n, n]);
    this.lower = this.param("lower", mk(strictL, [n, n]));
    this.upper = this.param("upper", mk(strictU, [n, n]));
    this.logs = this.param("logs", mk(diag.map((v) => Math.log(Math.abs(v))), [n]));
  }

  /** W = P L U as a [C, C] matrix. */
  weight(): T.Tensor {
    const L = T.add(T.mul(this.lower, this.#lmask), this.#eye);
    const U = T.add(T.mul(this.upper, this.#umask), T.mul(this.#eye, T.mul(this.#sign, T.exp(this.logs))));
    return T.matmul(T.matmul(this.#p, L), U);
  }

  forward(x: T.Tensor): FlowOut {
    const [, C, H, W] = x.shape;
    const y = T.conv2d(x, T.reshape(this.weight(), [C, C, 1, 1]));
    return { y, logdet: T.mul(T.sum(this.logs), H * W) };
  }

  async reverse(y: T.Tensor): Promise<T.Tensor> {
    const n = this.channels;
    const w = T.noGrad(() => this.weight());
    const inv = invert(await w.data(), n);
    w.dispose();
    const wi = T.tensor(inv, [n, n, 1, 1], { backend: y.backend, dtype: y.dtype });
    return T.conv2d(y, wi);
  }
}

/**
 * Affine coupling: the second half of the channels is shifted and scaled by a small conv net of
 * the first half (3x3, ReLU, 1x1, ReLU, zero-initialised 3x3); scale = sigmoid(raw + 2).
 */
export class AffineCoupling extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly conv3: Conv2d;

  constructor(readonly channels: number, hidden: number, o: Init) {
    super();
    if (channels % 2) throw new Error(`AffineCoupling: ${channels} channels cannot be halved`);
    this.conv1 = this.child("conv1", new Conv2d(channels / 2, hidden, 3, o));
    this.conv2 = this.child("conv2", new Conv2d(hidden, hidden, 1, o));
    this.conv3 = this.child("conv3", new Conv2d(hidden, channels, 3, { ...o, zero: true }));
  }

  /** The network's output for xa: the shift, then the raw scale (before its offset of 2), along the channels. */
  #net(xa: T.Tensor): T.Tensor {
    return this.conv3.forward(this.conv2.forward(this.conv1.forward(xa, "relu"), "relu"));
  }

  #halves(x: T.Tensor): [T.Tensor, T.Tensor] {
    const [B, C, H, W] = x.shape;
    return [T.slice(x, [0, 0, 0, 0], [B, C / 2, H, W]), T.slice(x, [0, C / 2, 0, 0], [B, C, H, W])];
  }

  forward(x: T.Tensor): FlowOut {
    const [xa, xb] = this.#halves(x);
    // yb = (xb + shift) sigmoid(raw + 2), ls = log sigmoid(raw + 2)
    const { yb, ls } = T.affineCoupling(xb, this.#net(xa), 2);
    return { y: T.concat([xa, yb], 1), logdet: T.sum(ls, [1, 2, 3]) };
  }

  reverse(y: T.Tensor): T.Tensor {
    const [ya, yb] = this.#halves(y);
    return T.concat([ya, T.affineCouplingInverse(yb, this.#net(ya), 2)], 1);
  }
}

/** ActNorm, then the 1x1 convolution, then the coupling. */
export class FlowStep extends Module {
  readonly actnorm: ActNorm;
  readonly invconv: InvConv1x1;
  readonly coupling: AffineCoupling;

  constructor(channels: number, hidden: number, o: Init) {
    super();
    this.actnorm = this.child("actnorm", new ActNorm(channels, o));
    this.invconv = this.child("invconv", new InvConv1x1(channels, o));
    this.coupling = this.child("coupling", new AffineCoupling(channels, hidden, o));
  }

  forward(x: T.Tensor): FlowOut {
    const a = this.actnorm.forward(x);
    const b = this.invconv.forward(a.y);
    const c = this.coupling.forward(b.y);
    return { y: c.y, logdet: T.add(T.add(a.logdet, b.logdet), c.logdet) };
  }

  async reverse(y: T.Tensor): Promise<T.Tensor> {
    return this.actnorm.reverse(await this.invconv.reverse(this.coupling.reverse(y)));
  }
}

const LOG2PI = Math.log(2 * Math.PI);

/** Sum over all but the batch axis of log N(z; mean, exp(logs)^2): [B]. */
export function gaussianLogProb(z: T.Tensor, mean?: T.Tensor, logs?: T.Tensor): T.Tensor {
  const d = mean ? T.sub(z, mean) : z;
  let e = T.add(T.square(logs ? T.mul(d, T.exp(T.neg(logs))) : d), LOG2PI);
  if (logs) e = T.add(e, T.mul(logs, 2));
  return T.mul(T.sum(T.reshape(e, [z.shape[0], -1]), 1), -0.5);
}

/** Split: half the channels leave the flow, modelled by a Gaussian whose parameters a zero-initialised conv reads from the other half. */
export class SplitPrior extends Module {
  readonly conv: Conv2d;
  constructor(readonly channels: number, o: Init) {
    super();
    this.conv = this.child("conv", new Conv2d(channels / 2, channels, 3, { ...o, zero: true }));
  }

  params(z1: T.Tensor): { mean: T.Tensor; logs: T.Tensor } {
    const [B, h, H, W] = z1.shape;
    const o = this.conv.forward(z1);
    return { mean: T.slice(o, [0, 0, 0, 0], [B, h, H, W]), logs: T.slice(o, [0, h, 0, 0], [B, 2 * h, H, W]) };
  }
}
