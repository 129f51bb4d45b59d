// Each model's loss gradient on a backend under test (float32) against float64 central
// differences on the CPU backend: the same weights, inputs and noise on both; every parameter
// tensor, at its largest-gradient entries and at random ones. The whole gradient is also compared
// with the CPU backend's float64 gradient (itself checked against differences in glow.test.ts and
// grad_ops). Run by test/webgpu_grads.test.ts and test/wasm_grads.test.ts.
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { VAE } from "../src/models/vae.ts";
import { Glow } from "../src/models/glow.ts";
import type { Backend } from "../src/kernels/backend.ts";

const f64 = { backend: T.cpu, dtype: "float64" as const };

interface Case {
  /** The model on a backend (float64 on the CPU), initialised from the same seed. */
  make(backend: Backend, dtype: "float32" | "float64"): { namedParameters(): [string, T.Tensor][] };
  /** Input shape and, for the VAE, the reparameterisation noise's shape. */
  x: number[];
  noise?: number[];
  loss(m: unknown, x: T.Tensor, noise?: T.Tensor): T.Tensor;
  /** Before the weights are copied: data-dependent initialisation on the float64 model. */
  init?(m: unknown, x: T.Tensor): void;
}

const CASES: Record<string, Case> = {
  vae: {
    make: (backend, dtype) => new VAE({ latent: 2, channels: [2, 3], outChannels: 2 }, { backend, dtype, gen: new T.Generator(21) }),
    x: [2, 1, 28, 28], noise: [2, 2],
    loss: (m, x, noise) => T.sum((m as VAE).nll(x, { noise })),
  },
  // the decoder's first convolution 8 -> 8 channels at 7x7, stride 1: on wasm a Winograd one
  // (forward and input gradient), its weight gradient direct
  "vae with 8 channels": {
    make: (backend, dtype) => new VAE({ latent: 2, channels: [2, 8], outChannels: 2 }, { backend, dtype, gen: new T.Generator(23) }),
    x: [2, 1, 28, 28], noise: [2, 2],
    loss: (m, x, noise) => T.sum((m as VAE).nll(x, { noise })),
  },
  glow: {
    make: (backend, dtype) => new Glow({ levels: 2, steps: 1, hidden: 4, image: [1, 8, 8] }, { backend, dtype, gen: new T.Generator(22) }),
    x: [2, 1, 8, 8],
    init: (m, x) => {
      (m as Glow).initialize(x);
      T.noGrad(() => (m as Glow).nll(x)); // ActNorm takes its data-dependent values on the first forward
    },
    loss: (m, x) => T.sum((m as Glow).nll(x)),
  },
};

/** Checked entries of a tensor: its 3 largest-|gradient| ones and 3 at random. */
function entries(g: Float64Array, gen: T.Generator): number[] {
  const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
  const picked = new Set(order.slice(0, 3));
  for (const i of gen.permutation(g.length).subarray(0, 3)) picked.add(i);
  return [...picked];
}

/** Registers one test per model; `test` runs its body with the backend under test (or skips it). */
export function modelGradients(test: (name: string, fn: (b: Backend) => Promise<void>) => void, label: string): void {
  for (const [kind, c] of Object.entries(CASES)) {
    test(`${kind}: the loss gradient of every parameter tensor`, async (gpu) => {
      const gen = new T.Generator(5);
      const ref = c.make(T.cpu, "float64");
      const xd = T.rand(new T.Generator(6), c.x, { ...f64, low: -0.5, high: 0.5 }).dataSync();
      const x64 = T.tensor(xd, c.x, f64);
      c.init?.(ref, x64);
      // Off the initial values, so zero-initialised layers do not give zero gradients.
      ref.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(40 + i), [...p.shape], { ...f64, std: 0.05 }))));
      const nd = c.noise ? T.randn(new T.Generator(7), c.noise, f64).dataSync() : null;
      const noise64 = nd ? T.tensor(nd, c.noise!, f64) : undefined;

      // The same weights, input and noise on the backend under test, in float32.
      const m = c.make(gpu, "float32");
      (m as { markInitialized?: () => void }).markInitialized?.();
      const named = m.namedParameters(), refNamed = ref.namedParameters();
      assert.equal(named.map(([n]) => n), refNamed.map(([n]) => n));
      named.forEach(([, p], i) => p.assign(T.tensor(refNamed[i][1].dataSync(), p.shape, { backend: gpu })));
      const x = T.tensor(xd, c.x, { backend: gpu });
      const noise = nd ? T.tensor(nd, c.noise!, { backend: gpu }) : undefined;
      const params = named.map(([, p]) => p);
      const gs = T.grad(c.loss(m, x, noise), params);
      const gpuGrads = await Promise.all(gs.map((g) => g!.data()));
      const refGrads = T.grad(c.loss(ref, x64, noise64), refNamed.map(([, p]) => p)).map((g) => g!.dataSync() as Float64Array);

      const lossAt = () => T.noGrad(() => c.loss(ref, x64, noise64).dataSync()[0]);
      const eps = 1e-6;
      let checked = 0;
      for (const [l, [name, p]] of refNamed.entries()) {
        const scale = Math.max(...Array.from(refGrads[l], Math.abs));
        assert.ok(scale > 0, `${name}: zero gradient, nothing to check`);
        // float32 against float64: relative to the entry, with a floor at 1e-2 of the tensor's largest.
        const within = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * (Math.abs(b) + 1e-2 * scale);
        for (let i = 0; i < refGrads[l].length; i++) {
          assert.ok(within(gpuGrads[l][i], refGrads[l][i], 1e-3), `${kind} ${name}[${i}]: ${label} ${gpuGrads[l][i]} vs cpu float64 ${refGrads[l][i]}`);
        }
        const base = p.dataSync().slice();
        for (const i of entries(refGrads[l], gen)) {
          const at = (d: number) => {
            const v = base.slice();
            v[i] += d;
            p.assign(T.tensor(v, p.shape, f64));
            return lossAt();
          };
          const fd = (at(eps) - at(-eps)) / (2 * eps);
          p.assign(T.tensor(base, p.shape, f64));
          assert.ok(within(gpuGrads[l][i], fd, 1e-3), `${kind} ${name}[${i}]: ${label} ${gpuGrads[l][i]} vs central difference ${fd}`);
          checked++;
        }
      }
      assert.ok(checked >= 3 * refNamed.length, `${checked} entries checked`);
      for (const t of [x, noise, ...params, ...gs]) t?.dispose();
    });
  }
}
