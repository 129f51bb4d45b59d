// A model of a different representation of the same data: x = logit(y + 1/2) pixel-wise, where y
// is what the inner model sees (in (-1/2, 1/2)). Then p(x) = p_inner(T(x)) |T'(x)| with
// T(x) = sigmoid(x) - 1/2, so NLL_x = NLL_inner(T(x)) - sum log T'(x): the likelihood moves by the
// log-Jacobian, while the gradient with respect to the parameters (T has none) is unchanged.
import * as T from "../autograd/index.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Module } from "../nn/module.ts";
import type { Backend, DType } from "../kernels/backend.ts";
import type { GenerativeModel, ImageShape, NllOptions, SampleOptions } from "./model.ts";

export class LogitRepresentation extends Module implements GenerativeModel {
  readonly kind: string;
  readonly imageShape: ImageShape;
  readonly dims: number;
  readonly backend: Backend;
  readonly dtype: DType;
  readonly config: Record<string, unknown>;

  constructor(readonly inner: GenerativeModel) {
    super();
    this.kind = `${inner.kind}+logit`;
    this.imageShape = inner.imageShape;
    this.dims = inner.dims;
    this.backend = inner.backend;
    this.dtype = inner.dtype;
    this.config = { inner: inner.config };
  }

  override namedParameters(prefix = ""): [string, T.Tensor][] {
    return this.inner.namedParameters(prefix);
  }

  override namedBuffers(prefix = ""): [string, T.Tensor][] {
    return this.inner.namedBuffers(prefix);
  }

  override bufferChecks(prefix = "") {
    return this.inner.bufferChecks(prefix);
  }

  override modules(): Module[] {
    return [this, ...this.inner.modules()];
  }

  sample(n: number, gen: T.Generator, o?: SampleOptions): Promise<Uint8Array> {
    return this.inner.sample(n, gen, o);
  }

  noiseShape(B: number) {
    return this.inner.noiseShape(B);
  }

  /** The data in the new representation: logit(y + 1/2) of the inner model's input y. */
  input(s: ImageSet, idx: ArrayLike<number>, gen?: T.Generator): T.Tensor {
    const y = T.add(this.inner.input(s, idx, gen), 0.5);
    return T.sub(T.log(y), T.log(T.sub(1, y)));
  }

  /** sum over pixels of log T'(x) = log sigmoid(x) + log sigmoid(-x): [B]. */
  logJacobian(x: T.Tensor): T.Tensor {
    return T.sum(T.reshape(T.add(T.logSigmoid(x), T.logSigmoid(T.neg(x))), [x.shape[0], -1]), 1);
  }

  nll(x: T.Tensor, o: NllOptions = {}): T.Tensor {
    return T.sub(this.inner.nll(T.sub(T.sigmoid(x), 0.5), o), this.logJacobian(x));
  }
}
