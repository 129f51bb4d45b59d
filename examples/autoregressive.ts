// A density model fimscope does not ship, written with the public Module API: a MADE-style
// autoregressive model (Germain et al. 2015). Pixel j's discretised logistic depends only on pixels
// before it, through one masked hidden layer, so log p(x) = sum_j log p(x_j | x_<j) exactly. The
// method needs nothing else: `setFeatures`, `fitDetector` and `Detector` work on it unchanged
// (test/example_model.test.ts; run this file for a demonstration).
import { Detector, discretizedLogisticLogProb, fitDetector, type GenerativeModel, Linear, makeObjective, Module, setFeatures, subset, T, toTensor } from "../mod.ts";
import type { ImageSet, Objective } from "../mod.ts";

export class Made extends Module implements GenerativeModel {
  readonly kind = "made";
  readonly dims: number;
  readonly backend: T.Tensor["backend"];
  readonly dtype: T.Tensor["dtype"];
  readonly config: Record<string, unknown>;
  readonly objectives = "nll";
  readonly defaultObjective = "nll";
  readonly inp: Linear;
  readonly out: Linear;
  readonly #m1: T.Tensor;
  readonly #m2: T.Tensor;

  constructor(readonly imageShape: readonly [number, number, number], hidden: number, o: { backend: T.Tensor["backend"]; dtype?: T.Tensor["dtype"]; seed?: number }) {
    super();
    const D = this.dims = imageShape[0] * imageShape[1] * imageShape[2];
    [this.backend, this.dtype, this.config] = [o.backend, o.dtype ?? "float32", { image: imageShape, hidden }];
    const init = { backend: o.backend, dtype: this.dtype, gen: new T.Generator(o.seed ?? 0) };
    this.inp = this.child("in", new Linear(D, hidden, init));
    this.out = this.child("out", new Linear(hidden, 2 * D, init));
    // Degrees: input i has i + 1, hidden unit k has 1 + (k mod (D - 1)); pixel j's outputs see units of degree <= j.
    const deg = (k: number) => 1 + (k % (D - 1));
    const m1 = Float32Array.from({ length: D * hidden }, (_, e) => (deg(e % hidden) >= Math.floor(e / hidden) + 1 ? 1 : 0));
    const m2 = Float32Array.from({ length: hidden * 2 * D }, (_, e) => ((e % (2 * D)) % D + 1 > deg(Math.floor(e / (2 * D))) ? 1 : 0));
    this.#m1 = T.tensor(m1, [D, hidden], { backend: o.backend, dtype: this.dtype });
    this.#m2 = T.tensor(m2, [hidden, 2 * D], { backend: o.backend, dtype: this.dtype });
  }

  input(s: ImageSet, idx: ArrayLike<number>): T.Tensor {
    const x = toTensor(s, idx, { backend: this.backend, offset: 0, divisor: 255, scale: 2, shift: -1 });
    return this.dtype === "float32" ? x : T.tensor(x.dataSync(), x.shape, { backend: this.backend, dtype: this.dtype });
  }

  /** Per-pixel logistic means and log-scales, [B, D] each, from the masked layers: pixel j's from pixels < j only. */
  conditionals(x: T.Tensor) {
    const B = x.shape[0], D = this.dims, flat = T.reshape(x, [B, D]);
    const h = T.silu(T.add(T.mm(flat, T.mul(this.inp.weight, this.#m1)), this.inp.bias!));
    const o = T.add(T.mm(h, T.mul(this.out.weight, this.#m2)), this.out.bias!);
    return { flat, mean: T.slice(o, [0, 0], [B, D]), logS: T.maximum(T.slice(o, [0, D], [B, 2 * D]), -7) };
  }

  nll(x: T.Tensor): T.Tensor {
    const { flat, mean, logS } = this.conditionals(x);
    return T.neg(T.sum(discretizedLogisticLogProb(flat, mean, logS), 1));
  }

  noiseShape(): null {
    return null;
  }

  objective(name = "nll"): Objective {
    if (name !== "nll") throw new Error(`objective '${name}' is not one of the made model's (allowed: nll)`);
    return makeObjective({ name, dims: this.dims, noiseShape: () => null, value: (x) => this.nll(x), measure: { kind: "nll", short: "NLL", label: "exact NLL, bits/dim", unit: "bits/dim" } });
  }

  readonly sampleOptions = [] as const;
  describeSampling(): string {
    return "(pixel by pixel, each from its logistic given the ones before)";
  }

  /** Pixel by pixel: each from its logistic given the ones drawn before (D passes). */
  async sample(n: number, gen: T.Generator): Promise<Uint8Array> {
    const D = this.dims, x = new Float32Array(n * D);
    for (let j = 0; j < D; j++) {
      const { mean, logS } = T.noGrad(() => this.conditionals(T.tensor(x, [n, ...this.imageShape], { backend: this.backend, dtype: this.dtype })));
      const [m, s] = [mean.dataSync(), logS.dataSync()];
      for (let i = 0; i < n; i++) {
        const u = Math.min(1 - 1e-6, Math.max(1e-6, gen.uniform()));
        x[i * D + j] = Math.min(1, Math.max(-1, m[i * D + j] + Math.exp(s[i * D + j]) * Math.log(u / (1 - u))));
      }
    }
    return Uint8Array.from(x, (v) => Math.round((v + 1) * 127.5));
  }
}

if (import.meta.main) {
  const { loadDataset } = await import("../src/data/mnist.ts");
  const fashion = loadDataset("fashion", "test"), mnist = loadDataset("mnist", "test");
  const model = new Made([1, 28, 28], 32, { backend: T.cpu, seed: 1 });
  const o = model.objective(), take = (s: ImageSet, a: number, b: number) => subset(s, Array.from({ length: b - a }, (_, i) => a + i));
  const fit = await setFeatures(model, o, take(fashion, 0, 100));
  const det = new Detector(fitDetector({ model: { path: "made", sha256: "0".repeat(64), kind: model.kind, image: [1, 28, 28], objective: o.name }, groupSize: 1, seed: 0, names: fit.names, sizes: model.parameters().map((p) => p.size), logf: fit.logf, nll: fit.nll, data: "fashion" }));
  for (const [name, s] of [["fashion", take(fashion, 5000, 5005)], ["mnist", take(mnist, 0, 5)]] as const) {
    const f = await setFeatures(model, o, s);
    console.log(name, f.logf.map((r, i) => det.scoreRow(r, f.nll[i]).score.toFixed(1)).join(" "));
  }
  console.log(`(an untrained MADE, ${model.parameters().reduce((n, p) => n + p.size, 0)} parameters: scores of fresh FashionMNIST and MNIST images under a detector fitted on 100)`);
}
