// A small module system: parameters with stable dotted names, children in a fixed order,
// train/eval modes, and calls with substituted parameters (withParameters). Buffers are the
// constants a model computes with but does not train (Glow's 1x1-convolution permutations): saved
// and loaded with the parameters (namedState), never in namedParameters, so they are neither
// optimised nor features; each may carry a check of its meaning, run on a file's values at load.
import * as T from "../autograd/index.ts";
import type { Backend, DType } from "../kernels/backend.ts";

/** Why a buffer's stored values are not valid (e.g. not a permutation matrix), or null when they are. */
export type BufferCheck = (values: ArrayLike<number>) => string | null;

export abstract class Module {
  training = true;
  #params: [string, T.Tensor][] = [];
  #buffers: [string, T.Tensor, BufferCheck | undefined][] = [];
  #children: [string, Module][] = [];

  #unique(name: string): void {
    if ([...this.#params, ...this.#buffers, ...this.#children].some(([n]) => n === name)) {
      throw new Error(`Module ${this.constructor.name}: '${name}' registered twice`);
    }
  }

  /** Register a parameter (a leaf that requires grad) under `name`. */
  protected param(name: string, t: T.Tensor): T.Tensor {
    this.#unique(name);
    t.requireGrad();
    T.keep(t);
    this.#params.push([name, t]);
    return t;
  }

  /** Register a buffer: a constant saved with the model (no gradient, not trained); `check` validates a file's values. */
  protected buffer(name: string, t: T.Tensor, check?: BufferCheck): T.Tensor {
    this.#unique(name);
    T.keep(t);
    this.#buffers.push([name, t, check]);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.#unique(name);
    this.#children.push([name, m]);
    return m;
  }

  /** Every parameter with its dotted name, in registration order (depth first). */
  namedParameters(prefix = ""): [string, T.Tensor][] {
    const out: [string, T.Tensor][] = this.#params.map(([n, t]) => [prefix + n, t]);
    for (const [n, c] of this.#children) out.push(...c.namedParameters(`${prefix}${n}.`));
    for (const [n, t] of out) t.name = n;
    return out;
  }

  /** Every buffer with its dotted name, in registration order (depth first). */
  namedBuffers(prefix = ""): [string, T.Tensor][] {
    const out: [string, T.Tensor][] = this.#buffers.map(([n, t]) => [prefix + n, t]);
    for (const [n, c] of this.#children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** The checks of the buffers that have one, by dotted name. */
  bufferChecks(prefix = ""): Map<string, BufferCheck> {
    const out = new Map<string, BufferCheck>();
    for (const [n, , check] of this.#buffers) if (check) out.set(prefix + n, check);
    for (const [n, c] of this.#children) for (const [k, v] of c.bufferChecks(`${prefix}${n}.`)) out.set(k, v);
    return out;
  }

  /** What a model file holds: the parameters, then the buffers. */
  namedState(): [string, T.Tensor][] {
    return [...this.namedParameters(), ...this.namedBuffers()];
  }

  parameters(): T.Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  modules(): Module[] {
    return [this, ...this.#children.flatMap(([, c]) => c.modules())];
  }

  train(on = true): this {
    for (const m of this.modules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }
}

/**
 * f() with each parameter p of the module tree replaced by subs.get(p) wherever a module holds it
 * in a field (torch.func.functional_call does the same): layers read their fields and so compute
 * with the substitutes. The fields are restored when f returns or throws.
 */
export function withParameters<R>(m: Module, subs: ReadonlyMap<T.Tensor, T.Tensor>, f: () => R): R {
  const swapped: [Record<string, unknown>, string, T.Tensor][] = [];
  try {
    for (const mod of m.modules()) {
      const fields = mod as unknown as Record<string, unknown>;
      for (const k of Object.keys(fields)) {
        const v = fields[k];
        if (!(v instanceof T.Tensor)) continue;
        const s = subs.get(v);
        if (!s) continue;
        swapped.push([fields, k, v]);
        fields[k] = s;
      }
    }
    const held = new Set(swapped.map(([, , v]) => v));
    for (const p of subs.keys()) {
      if (!held.has(p)) throw new Error(`withParameters: parameter '${p.name}' is not held in a field of any module (keep what param() returns in a field)`);
    }
    return f();
  } finally {
    for (const [fields, k, v] of swapped.reverse()) fields[k] = v;
  }
}

export interface Init {
  backend?: Backend;
  gen: T.Generator;
  /** float64 on the CPU backend is for gradient checks. */
  dtype?: DType;
}

/** Kaiming-uniform-style init: U(-b, b) with b = gain * sqrt(3 / fanIn). */
export function uniformInit(shape: number[], fanIn: number, o: Init, gain = 1): T.Tensor {
  const b = gain * Math.sqrt(3 / Math.max(1, fanIn));
  return T.rand(o.gen, shape, { backend: o.backend, dtype: o.dtype, low: -b, high: b });
}

export const zerosFor = (shape: number[], o: Init) => T.zeros(shape, { backend: o.backend, dtype: o.dtype });

export class Linear extends Module {
  readonly weight: T.Tensor;
  readonly bias: T.Tensor | null;
  constructor(readonly inF: number, readonly outF: number, o: Init & { bias?: boolean; zero?: boolean }) {
    super();
    this.weight = this.param("weight", o.zero ? zerosFor([inF, outF], o) : uniformInit([inF, outF], inF, o));
    this.bias = o.bias === false ? null : this.param("bias", zerosFor([outF], o));
  }
  forward(x: T.Tensor): T.Tensor {
    const y = T.matmul(x, this.weight);
    return this.bias ? T.add(y, this.bias) : y;
  }
}

export class Conv2d extends Module {
  readonly weight: T.Tensor;
  readonly bias: T.Tensor | null;
  constructor(readonly cin: number, readonly cout: number, readonly k: number, o: Init & T.ConvOptions & { bias?: boolean; zero?: boolean }) {
    super();
    this.opts = { stride: o.stride ?? 1, padding: o.padding ?? Math.floor(k / 2), groups: o.groups ?? 1 };
    const fanIn = (cin / this.opts.groups!) * k * k;
    const shape = [cout, cin / this.opts.groups!, k, k];
    this.weight = this.param("weight", o.zero ? zerosFor(shape, o) : uniformInit(shape, fanIn, o));
    this.bias = o.bias === false ? null : this.param("bias", zerosFor([cout], o));
  }
  readonly opts: T.ConvOptions;
  /**
   * This convolution of x upsampled 2x by nearest neighbour (then its bias and activation), without
   * the upsampled image where it is a 3x3 of stride 1, padding 1 and one group (T.upsampleConv3x3:
   * 4/9 of the products), else of T.upsampleNearest(x).
   */
  forwardUpsampled(x: T.Tensor, act: T.ConvAct = "none"): T.Tensor {
    const { stride, padding, groups } = this.opts;
    if (this.k === 3 && stride === 1 && padding === 1 && groups === 1) return T.upsampleConv3x3(x, this.weight, this.bias, act);
    return this.forward(T.upsampleNearest(x), act);
  }
  /** The convolution, its bias and an activation (relu or silu): one op where the backend fuses them (T.conv2dBias). */
  forward(x: T.Tensor, act: T.ConvAct = "none"): T.Tensor {
    if (this.bias) return T.conv2dBias(x, this.weight, this.bias, { ...this.opts, act });
    const y = T.conv2d(x, this.weight, this.opts);
    return act === "none" ? y : T.unary(act, y);
  }
}
