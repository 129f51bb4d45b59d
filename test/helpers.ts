// Shared test tools: float64 finite-difference gradient checks, comparisons, backends under test.
import * as T from "../src/autograd/index.ts";
import type { KernelVariants, WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import type { Test } from "uvu";
import * as assert from "uvu/assert";
import { featuresBatched, groupGradients } from "../src/ood/features.ts";

export const gen = (seed: number) => new T.Generator(seed);

export function rand64(seed: number, shape: number[], lo = -1, hi = 1): T.Tensor {
  return T.rand(gen(seed), shape, { low: lo, high: hi, dtype: "float64", backend: T.cpu });
}

/**
 * Checks d(sum(f(xs) * r))/dxs against central differences in float64, with r a fixed random
 * weighting so every output element matters. Returns the worst error relative to max(1, |grad|).
 */
export function gradcheck(f: (...xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[], eps = 1e-6, seed = 99): number {
  const leaves = xs.map((x) => T.tensor(x.dataSync(), x.shape, { dtype: "float64", backend: T.cpu, requiresGrad: true }));
  const out0 = f(...leaves);
  const r = rand64(seed, [...out0.shape], 0.5, 1.5);
  const loss = (ys: T.Tensor[]) => T.noGrad(() => T.sum(T.mul(f(...ys), r)).dataSync()[0]);
  const gs = T.grad(T.sum(T.mul(out0, r)), leaves);
  let worst = 0;
  for (let k = 0; k < leaves.length; k++) {
    const base = leaves[k].dataSync();
    const an = gs[k] ? gs[k]!.dataSync() : new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) {
      const plus = base.slice(), minus = base.slice();
      plus[i] += eps;
      minus[i] -= eps;
      const args = (d: Float64Array | Float32Array) => leaves.map((l, j) => (j === k ? T.tensor(d, l.shape, { dtype: "float64", backend: T.cpu }) : l.detach()));
      const num = (loss(args(plus)) - loss(args(minus))) / (2 * eps);
      const err = Math.abs(num - an[i]) / Math.max(1, Math.abs(num));
      if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
    }
  }
  return worst;
}

/**
 * Second order: h(x, createGraph) is a scalar built from a first-order gradient w.r.t. x (taken
 * with createGraph); its gradient by double backprop against central differences of h at x0
 * (float64, CPU). Returns the worst error relative to max(1, |numeric|) and the analytic
 * gradient (so a caller can show it is not all zero).
 */
export function gradcheck2(h: (x: T.Tensor, createGraph: boolean) => T.Tensor, x0: T.Tensor, eps = 1e-6): { err: number; an: Float64Array | Float32Array } {
  const at = (d: Float64Array | Float32Array, requiresGrad: boolean) => T.tensor(d, x0.shape, { dtype: "float64", backend: T.cpu, requiresGrad });
  const base = x0.dataSync(), x = at(base, true);
  const an = T.grad(h(x, true), [x])[0]!.dataSync();
  let worst = 0;
  for (let i = 0; i < base.length; i++) {
    const plus = base.slice(), minus = base.slice();
    plus[i] += eps;
    minus[i] -= eps;
    const num = (h(at(plus, true), false).dataSync()[0] - h(at(minus, true), false).dataSync()[0]) / (2 * eps);
    const err = Math.abs(num - an[i]) / Math.max(1, Math.abs(num));
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
  }
  return { err: worst, an };
}

export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let w = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(e <= w)) w = Number.isNaN(e) ? Infinity : e;
  }
  return w;
}

let gpu: WebGPUBackend | null | undefined;
/** The WebGPU backend, or null (a failure when FIMSCOPE_REQUIRE_WEBGPU=1). */
export async function webgpu(): Promise<WebGPUBackend | null> {
  if (gpu !== undefined) return gpu;
  const { createWebGPUBackend } = await import("../src/kernels/webgpu/backend.ts");
  gpu = await createWebGPUBackend().catch((e) => {
    if (Deno.env.get("FIMSCOPE_REQUIRE_WEBGPU") === "1") throw e;
    console.warn(`WebGPU suites skipped: ${e.message}`);
    return null;
  });
  return gpu;
}

/**
 * A test that needs the WebGPU backend: registered on suite S and given the backend, or, with no
 * adapter, counted as skipped (never as passed). Use it for every test that needs a GPU.
 */
export function gpuTest(S: Test, gpu: WebGPUBackend | null): (name: string, fn: (gpu: WebGPUBackend) => unknown) => void {
  return (name, fn) => {
    if (gpu) S(name, async () => void await fn(gpu));
    else S.skip(name);
  };
}

/** Run f with some kernel variants set, restoring the previous ones however f ends. */
export async function withVariants<R>(gpu: WebGPUBackend, v: Partial<KernelVariants>, f: () => Promise<R> | R): Promise<R> {
  const saved = { ...gpu.variants };
  Object.assign(gpu.variants, v);
  try {
    return await f();
  } finally {
    gpu.variants = saved;
  }
}

/**
 * Standard-normal draws for an objective and a batch of n synthetic inputs (made in code, not
 * from a set: src/ood/loop.ts's inputNoise draws from a set's pixels), on the model's backend.
 */
export function drawsOf(model: { backend: T.Tensor["backend"]; dtype: T.Tensor["dtype"] }, objective: { noiseShape(B: number): number[] | null }, n: number, g: T.Generator): T.Tensor | undefined {
  const s = objective.noiseShape(n);
  return s ? T.randn(g, s, { backend: model.backend, dtype: model.dtype }) : undefined;
}

/** Every parameter of a model moved by N(0, 0.2^2) draws (seeds from `seed`): zero-initialised layers would hide the gradients behind them. */
export function perturbed<M extends { parameters(): T.Tensor[] }>(model: M, seed: number): M {
  model.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(gen(seed + i), [...p.shape], { backend: p.backend, std: 0.2 }))));
  return model;
}

/**
 * A per-group pass over x's G images (B = 1): each parameter's per-group gradients
 * (groupGradients), then the features and values (featuresBatched), as arrays; with the backend's
 * ops `hide` removed for the pass (the autograd then composes what they fuse).
 */
export async function perGroupPass(model: Parameters<typeof groupGradients>[0], objective: Parameters<typeof groupGradients>[1], x: T.Tensor, noise: T.Tensor | undefined, hide: readonly string[] = []): Promise<number[][]> {
  const restore = hideOps(x.backend, hide);
  try {
    const grads = groupGradients(model, objective, x, 1, noise).map((t) => Array.from(t.dataSync()));
    const f = await featuresBatched(model, objective, x, 1, noise);
    return [...grads, Array.from(f.sq), Array.from(f.value)];
  } finally {
    restore();
  }
}

/**
 * A per-group pass with the backend's fused ops and again with `hide` hidden (the composed ops):
 * every parameter's per-group gradients, the features and the values the same to the bit and
 * finite. Returns the fused pass's arrays and their names.
 */
export async function fusedPerGroupPassMatchesComposed(model: Parameters<typeof groupGradients>[0] & { namedParameters(): [string, unknown][] }, objective: Parameters<typeof groupGradients>[1], x: T.Tensor, noise: T.Tensor | undefined, hide: readonly string[]): Promise<{ f: number[][]; names: string[] }> {
  const f = await perGroupPass(model, objective, x, noise), c = await perGroupPass(model, objective, x, noise, hide);
  const names = [...model.namedParameters().map(([k]) => k), "features", "values"];
  sameBits(f, c, names, "per-group pass", true);
  return { f, names };
}

/**
 * Hides a backend's optional ops `names` (each read as undefined on the instance, so the autograd
 * composes what they fuse) until the returned function restores them.
 */
export function hideOps(backend: object, names: readonly string[]): () => void {
  const b = backend as Record<string, unknown>;
  for (const k of names) b[k] = undefined;
  return () => {
    for (const k of names) delete b[k];
  };
}

/**
 * Asserts that arrays f[i] (the fused ops') and c[i] (the composed ops'), one per name, are there,
 * of equal length and equal bit for bit (Object.is: NaN to NaN, -0 apart from +0); with `finite`,
 * that f's hold only finite values (no poison left).
 */
export function sameBits(f: ArrayLike<number>[], c: ArrayLike<number>[], names: readonly string[], what: string, finite: boolean): void {
  assert.is(f.length, names.length, `${what}: ${f.length} arrays for ${names.length} names`);
  names.forEach((name, i) => {
    const a = Array.from(f[i]), b = Array.from(c[i]);
    assert.ok(a.length > 0 && a.length === b.length, `${what}: ${name} missing`);
    if (finite) assert.ok(a.every(Number.isFinite), `${what}: poison or a non-finite value left in ${name}`);
    const at = a.findIndex((v, j) => !Object.is(v, b[j]));
    assert.ok(at < 0, `${what}: ${name}[${at}] is ${a[at]} fused, ${b[at]} composed`);
  });
}
