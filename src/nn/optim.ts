// Optimisers that update parameters in place (Tensor.assign), all on the parameters' backend
// with no host round trip. Weight decay is off unless asked for.
import * as T from "../autograd/index.ts";

export interface OptimOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

abstract class MomentOptimizer {
  step = 0;
  readonly m: T.Tensor[];
  readonly v: T.Tensor[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  lr: number;

  constructor(readonly params: T.Tensor[], o: OptimOptions) {
    this.lr = o.lr;
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
    this.m = params.map((p) => T.keep(T.zerosLike(p)));
    this.v = params.map((p) => T.keep(T.zerosLike(p)));
  }

  /** One update from each parameter's .grad (parameters without a gradient are skipped). */
  update(): void {
    this.step++;
    T.tidy(() => T.noGrad(() => {
      const live = this.params.flatMap((p, i) => p.grad ? [i] : []);
      // The backend's fused kernel where it has one (every parameter in one op, the same
      // arithmetic as the ops below), else the ops below.
      const r = T.momentUpdate(live.map((i) => ({ p: this.params[i], g: this.params[i].grad!, m: this.m[i], v: this.v[i] })), this.fused());
      if (r) {
        live.forEach((i, k) => {
          this.m[i].assign(r[k].m);
          this.v[i].assign(r[k].v);
          this.params[i].assign(r[k].p);
        });
        return;
      }
      for (const i of live) {
        const p = this.params[i];
        let g = p.grad!;
        if (this.weightDecay) g = T.add(g, T.mul(p, this.weightDecay));
        this.m[i].assign(T.add(T.mul(this.m[i], this.beta1), T.mul(g, 1 - this.beta1)));
        this.v[i].assign(this.second(this.v[i], g));
        p.assign(T.sub(p, this.delta(this.m[i], this.v[i])));
      }
    }));
  }

  protected abstract second(v: T.Tensor, g: T.Tensor): T.Tensor;
  protected abstract delta(m: T.Tensor, v: T.Tensor): T.Tensor;
  /** This step's update as the fused kernel's constants (the composed ops' scalars, in their order). */
  protected abstract fused(): T.MomentUpdate;
  protected moments(): Pick<T.MomentUpdate, "b1" | "omb1" | "b2" | "omb2" | "eps" | "wd"> {
    return { b1: this.beta1, omb1: 1 - this.beta1, b2: this.beta2, omb2: 1 - this.beta2, eps: this.eps, wd: this.weightDecay };
  }
}

/** Adam (Kingma & Ba 2015) with bias correction. */
export class Adam extends MomentOptimizer {
  protected second(v: T.Tensor, g: T.Tensor): T.Tensor {
    return T.add(T.mul(v, this.beta2), T.mul(T.square(g), 1 - this.beta2));
  }
  protected delta(m: T.Tensor, v: T.Tensor): T.Tensor {
    const c1 = 1 - this.beta1 ** this.step, c2 = 1 - this.beta2 ** this.step;
    return T.mul(T.div(m, T.add(T.sqrt(T.div(v, c2)), this.eps)), this.lr / c1);
  }
  protected fused(): T.MomentUpdate {
    const c1 = 1 - this.beta1 ** this.step, c2 = 1 - this.beta2 ** this.step;
    return { kind: "adam", ...this.moments(), invC2: 1 / c2, lrc: this.lr / c1 };
  }
}

/** Adamax: the infinity-norm variant of Adam (the Glow paper's optimiser). */
export class Adamax extends MomentOptimizer {
  protected second(v: T.Tensor, g: T.Tensor): T.Tensor {
    return T.maximum(T.mul(v, this.beta2), T.abs(g));
  }
  protected delta(m: T.Tensor, v: T.Tensor): T.Tensor {
    const c1 = 1 - this.beta1 ** this.step;
    return T.mul(T.div(m, T.add(v, this.eps)), this.lr / c1);
  }
  protected fused(): T.MomentUpdate {
    return { kind: "adamax", ...this.moments(), invC2: 1, lrc: this.lr / (1 - this.beta1 ** this.step) };
  }
}

/**
 * Scales every .grad so their joint L2 norm is at most maxNorm; returns the norm before
 * clipping as a scalar tensor (stays on the device: no sync).
 */
export function clipGradNorm(params: T.Tensor[], maxNorm: number): T.Tensor {
  const withGrad = params.filter((p) => p.grad);
  return T.keep(T.tidy(() => T.noGrad(() => {
    if (!withGrad.length) return T.zeros([], { backend: params[0]?.backend });
    // each tensor's squares summed (in double), then the tensors' sums added in order: one op
    // where the backend fuses it, as is the scaling of every gradient
    const grads = withGrad.map((p) => p.grad!);
    const norm = T.sqrt(T.sumSquaresAll(grads));
    const scale = T.minimum(T.div(maxNorm, T.add(norm, 1e-6)), 1);
    T.scaleAll(grads, scale).forEach((g, i) => withGrad[i].grad!.assign(g));
    return norm;
  })));
}
