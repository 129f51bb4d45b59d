// The method is model-agnostic: examples/autoregressive.ts, a MADE-style autoregressive model a
// user writes with the public Module API (mod.ts), gets per-layer norms (batched = loop on every
// tensor), a fitted detector and scores through the same library calls as the shipped models.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Adam, Detector, evaluateSets, featuresBatched, featuresLoop, fitDetector, setFeatures, subset, T } from "../mod.ts";
import { Made } from "../examples/autoregressive.ts";
import { loadDataset } from "../src/data/mnist.ts";

const S = suite("a user's own density model");
const take = (s: ReturnType<typeof loadDataset>, a: number, b: number) => subset(s, Array.from({ length: b - a }, (_, i) => a + i));

S("MADE: autoregressive (pixel j's density ignores pixels >= j), trains, and goes through features, detector and evaluation", async () => {
  const fashion = loadDataset("fashion", "test"), mnist = loadDataset("mnist", "test");
  const model = new Made([1, 8, 8], 16, { backend: T.cpu, dtype: "float64", seed: 3 });
  // Crop 8x8 corners so the test is quick: sets of 8x8 images.
  const crop = (s: ReturnType<typeof loadDataset>, n: number) => {
    const images = new Uint8Array(n * 64);
    for (let i = 0; i < n; i++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) images[i * 64 + y * 8 + x] = s.images[i * 784 + (10 + y) * 28 + 10 + x];
    return { ...s, images, labels: s.labels.slice(0, n), n, h: 8, w: 8 };
  };
  const fa = crop(fashion, 120), mn = crop(mnist, 40);
  // The autoregressive property: pixel j's conditional depends on pixels k < j only (its Jacobian row is 0 at k >= j).
  const o = model.objective();
  const x = model.input(fa, [0]).detach().requireGrad();
  for (const j of [0, 1, 17, 40, 63]) {
    const [g] = T.grad(T.sum(T.slice(model.conditionals(x).mean, [0, j], [1, j + 1])), [x]);
    const d = g ? g.dataSync() : new Float64Array(64);
    assert.ok(Array.from(d).slice(j).every((v) => v === 0), `pixel ${j}'s mean depends on a pixel >= ${j}`);
    if (j > 1) assert.ok(Array.from(d).slice(0, j).some((v) => v !== 0), `pixel ${j}'s mean depends on earlier pixels`);
  }
  // A few Adam steps on FashionMNIST crops lower the NLL.
  const opt = new Adam(model.parameters(), { lr: 3e-3 });
  const before = o.report(T.mean(o.value(model.input(fa, Array.from({ length: 32 }, (_, i) => i)))).dataSync()[0]);
  for (let step = 0; step < 30; step++) {
    const idx = Array.from({ length: 32 }, (_, i) => (step * 32 + i) % 80);
    model.parameters().forEach((p) => p.zeroGrad());
    T.mean(o.value(model.input(fa, idx))).backward();
    opt.update();
  }
  const after = o.report(T.mean(o.value(model.input(fa, Array.from({ length: 32 }, (_, i) => i)))).dataSync()[0]);
  assert.ok(after < before, `training lowered the NLL: ${before} -> ${after} bits/dim`);
  model.eval();
  // Batched per-group norms equal the per-input loop on every tensor.
  const xb = model.input(fa, [0, 1, 2, 3]);
  for (const B of [1, 2]) {
    const a = await featuresBatched(model, o, xb, B), r = await featuresLoop(model, o, xb, B);
    assert.equal(a.names, ["in.weight", "in.bias", "out.weight", "out.bias"]);
    for (let i = 0; i < a.sq.length; i++) assert.ok(Math.abs(a.sq[i] - r.sq[i]) <= 1e-9 * r.sq[i], `B=${B} ${i}: ${a.sq[i]} vs ${r.sq[i]}`);
  }
  // The library's loop, detector and evaluation, as for the shipped models.
  const fit = await setFeatures(model, o, take(fa, 0, 80)), inEval = await setFeatures(model, o, { ...take(fa, 80, 120), name: "fashion" }), ood = await setFeatures(model, o, { ...mn, name: "mnist" });
  const det = new Detector(fitDetector({
    model: { path: "made", sha256: "0".repeat(64), kind: model.kind, image: [1, 8, 8], objective: o.name }, groupSize: 1, seed: 0,
    names: fit.names, sizes: model.parameters().map((p) => p.size), logf: fit.logf, nll: fit.nll, data: "fashion crops",
  }));
  const scores = inEval.logf.map((r, i) => det.scoreRow(r, inEval.nll[i]));
  assert.ok(scores.every((s) => Number.isFinite(s.score) && s.top.length === 3));
  const ev = evaluateSets("made", 1, fit, inEval, [ood]);
  const auroc = ev.results.mnist.find((r) => r.method === "gradient")!.metrics.auroc;
  assert.ok(auroc >= 0 && auroc <= 1, `gradient AUROC ${auroc}`);
  assert.is((await model.sample(2, new T.Generator(1))).length, 128);
});

S.run();
