// One input end to end (src/ood/inspect.ts): the saliency map (double backprop) against float64
// central differences of the score and of one layer's log f_l; the score against the detector's
// own scoring; the input's draws from its pixels (the same answer as the loop over a set); the
// shipped detector files against the shipped models; bad input refused.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { makeSet } from "../src/data/dataset.ts";
import { Glow } from "../src/models/glow.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { VAE } from "../src/models/vae.ts";
import { loadModelBytes } from "../src/models/from_bytes.ts";
import { featuresLoop } from "../src/ood/features.ts";
import { drawsOf, gpuTest, webgpu } from "./helpers.ts";
import { detectorObjective, inspectImage, inspectInput } from "../src/ood/inspect.ts";
import { Detector, fitDetector, readDetectorText } from "../src/ood/detector.ts";
import { setFeatures } from "../src/ood/loop.ts";

const S = suite("inspect");
const f64 = { backend: T.cpu, dtype: "float64" as const };

/** A detector fitted on the features of a few random inputs, so z-scores are of order one. */
async function fakeDetector(model: GenerativeModel, xs: T.Tensor[]): Promise<Detector> {
  const o = model.objective(), rows: Float64Array[] = [], nll: number[] = [];
  for (const [i, x] of xs.entries()) {
    const f = await featuresLoop(model, o, x, 1, drawsOf(model, o, 1, new T.Generator(i)));
    rows.push(Float64Array.from(f.sq, Math.log));
    nll.push(o.report(f.value[0]));
  }
  const named = model.namedParameters();
  return new Detector(fitDetector({
    model: { path: "test", sha256: "0".repeat(64), kind: model.kind, image: [...model.imageShape], objective: o.name }, groupSize: 1, seed: 0,
    names: named.map(([n]) => n), sizes: named.map(([, p]) => p.size), logf: rows, nll, data: "random",
  }));
}

async function checkSaliency(model: GenerativeModel, shape: number[]) {
  const xs = [1, 2, 3, 4].map((s) => T.rand(new T.Generator(s), shape, { ...f64, low: -0.4, high: 0.4 }));
  const det = await fakeDetector(model, xs);
  const o = model.objective(), noise = drawsOf(model, o, 1, new T.Generator(7));
  const x = xs[0];
  const base = x.dataSync() as Float64Array;
  for (const target of ["score", 2] as const) {
    const r = await inspectInput(model, o, x, noise, det, { saliency: target });
    assert.is(r.saliency!.length, base.length);
    const value = (d: Float64Array) => inspectInput(model, o, T.tensor(d, shape, f64), noise, det, { saliency: "none" })
      .then((q) => (target === "score" ? q.score : q.logf[target]));
    let worst = 0, largest = 0;
    for (const i of [0, 5, 13, Math.floor(base.length / 2), base.length - 1]) {
      const h = 1e-5, p = base.slice(), m = base.slice();
      p[i] += h;
      m[i] -= h;
      const num = ((await value(p)) - (await value(m))) / (2 * h);
      worst = Math.max(worst, Math.abs(num - r.saliency![i]) / Math.max(1, Math.abs(num)));
      largest = Math.max(largest, Math.abs(num));
    }
    assert.ok(largest > 1e-3, `the ${target} really depends on the checked pixels (largest |d/dx| ${largest})`);
    assert.ok(worst < 1e-5, `saliency of ${target} vs central differences: worst relative error ${worst}`);
  }
}

S("saliency (VAE, float64): d score/dx and d log f_2/dx match central differences", async () => {
  const vae = new VAE({ latent: 4, channels: [4, 8], outChannels: 4 }, { ...f64, gen: new T.Generator(3) });
  vae.eval();
  await checkSaliency(vae, [1, 1, 28, 28]);
});

S("saliency (Glow, float64): d score/dx and d log f_2/dx match central differences", async () => {
  const glow = new Glow({ levels: 2, steps: 1, hidden: 4, image: [1, 8, 8] }, { ...f64, gen: new T.Generator(5) });
  glow.initialize(T.rand(new T.Generator(9), [4, 1, 8, 8], { ...f64, low: -0.5, high: 0.5 }));
  glow.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(new T.Generator(20 + i), [...p.shape], { ...f64, std: 0.05 }))));
  glow.eval();
  await checkSaliency(glow, [1, 1, 8, 8]);
});

S("shipped detectors: match their models, score as the detector does, agree with the loop over a set, flag a constant image", async () => {
  const imgs = Deno.readFileSync("web/data/fashion.u8");
  for (const m of ["vae-fashion", "glow-fashion"]) {
    const { model } = await loadModelBytes(Deno.readFileSync(`weights/${m}.safetensors`), T.cpu, m);
    const det = readDetectorText(Deno.readTextFileSync(`web/data/${m}.detector.json`), m);
    const img = imgs.subarray(0, 784);
    const r = await inspectImage(model, img, det, { saliency: "none" });
    assert.ok(r.value > 1 && r.value < 8, `${m}: ${r.value} bits/dim`);
    assert.equal(r.scores, det.scoreRow(r.logf, r.value).scores);
    assert.ok(r.z.every(Number.isFinite));
    // The same image inside a set, at another position, through the one loop (the batched pass): the
    // same draws, so the same features and value up to float32 rounding of the two gradient paths.
    const set = makeSet("s", Uint8Array.from([...imgs.subarray(784, 3 * 784), ...img]), new Uint8Array(3), 1, 28, 28);
    const f = await setFeatures(model, detectorObjective(model, det), set, { seed: det.file.seed });
    const worst = Math.max(...r.logf.map((v, l) => Math.abs(v - f.logf[2][l])));
    assert.ok(worst < 1e-4, `${m}: features of the image alone and third in a set differ by ${worst} in log f`);
    assert.ok(Math.abs(f.nll[2] - r.value) < 1e-5 * r.value, `${m}: ${f.nll[2]} vs ${r.value}`);
    // With other draws (another seed) the VAE's features move: the draws really are the input's own.
    if (m === "vae-fashion") {
      const g = await setFeatures(model, detectorObjective(model, det), set, { seed: det.file.seed + 1 });
      assert.ok(Math.max(...g.logf[2].map((v, l) => Math.abs(v - f.logf[2][l]))) > 1e-3, "another seed, other draws");
    }
    const flat = await inspectImage(model, new Uint8Array(784).fill(128), det, { saliency: "none" });
    assert.ok(flat.verdict === "ood" && flat.score < det.file.threshold95.gradient, `${m}: a constant image scores ${flat.score} under the threshold ${det.file.threshold95.gradient}`);
  }
});

S("the shipped detector files are format 2, fitted with held-out calibration, and checked against their models", async () => {
  const det = readDetectorText(Deno.readTextFileSync("web/data/vae-fashion.detector.json"), "vae");
  const file = det.file;
  // The page's files: fitted on positions [0, 500) of the permuted test split, thresholds from [500, 1000).
  assert.equal(file.fit.selection, { set: "fashion", split: "test", seed: 1000, from: 0, to: 500 });
  assert.equal(file.calibration?.selection, { set: "fashion", split: "test", seed: 1000, from: 500, to: 1000 });
  assert.is(file.model.objective, "nll");
  const { model } = await loadModelBytes(Deno.readFileSync("weights/vae-fashion.safetensors"), T.cpu, "vae");
  assert.is(detectorObjective(model, det, "vae").name, "nll");
  const five = new Detector({ ...file, groupSize: 5 });
  assert.throws(() => detectorObjective(model, five, "fit.json", { single: true }), /fit.json: groupSize 5: one input at a time needs a detector fitted at B = 1/);
  const other = new Detector({ ...file, model: { ...file.model, objective: "l1-t1" } });
  assert.throws(() => detectorObjective(model, other, "fit.json"), /fit.json: model.objective: objective 'l1-t1' is not one of the vae model's \(allowed: nll\)/);
});

S("bad input refused with a message naming it", async () => {
  const vae = new VAE({ latent: 4, channels: [4, 8], outChannels: 4 }, { backend: T.cpu, gen: new T.Generator(3) });
  const det = await fakeDetector(vae, [1, 2].map((s) => T.rand(new T.Generator(s), [1, 1, 28, 28], { low: -0.4, high: 0.4 })));
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    const e = await p.then(() => null, (e: Error) => e);
    assert.ok(e && re.test(e.message), `expected an error matching ${re}, got ${e?.message ?? "none"}`);
  };
  await rejects(inspectImage(vae, new Uint8Array(100), det), /100 bytes/);
  await rejects(inspectImage(vae, new Uint8Array(784), det, { saliency: det.names.length }), /out of range/);
  const glow = new Glow({ levels: 2, steps: 1, hidden: 4, image: [1, 28, 28] }, { backend: T.cpu, gen: new T.Generator(5) });
  await rejects(inspectImage(glow, new Uint8Array(784), det), /detector: has 16 features, but the glow model has 24 parameter tensors/);
});

const gpu = await webgpu();
gpuTest(S, gpu)("WebGPU: 20 inspections with saliency (double backprop) keep GPU memory flat; numbers match the CPU", async (gpu) => {
  const bytes = Deno.readFileSync("weights/glow-fashion.safetensors");
  const onGpu = (await loadModelBytes(bytes, gpu, "glow")).model, onCpu = (await loadModelBytes(bytes, T.cpu, "glow")).model;
  const det = readDetectorText(Deno.readTextFileSync("web/data/glow-fashion.detector.json"), "glow");
  const img = (i: number) => Deno.readFileSync("web/data/mnist.u8").slice(i * 784, (i + 1) * 784);
  for (let i = 0; i < 3; i++) await inspectImage(onGpu, img(i), det);
  await gpu.sync();
  const warm = gpu.rt.pool.stats();
  for (let i = 0; i < 20; i++) await inspectImage(onGpu, img(i % 3), det, { saliency: i % 2 ? "score" : 7 });
  await gpu.sync();
  const end = gpu.rt.pool.stats();
  assert.is(end.created, warm.created, `buffers created grew from ${warm.created} to ${end.created}`);
  assert.ok(end.inUse <= warm.inUse, `buffers in use grew from ${warm.inUse} to ${end.inUse}`);
  const a = await inspectImage(onGpu, img(1), det), b = await inspectImage(onCpu, img(1), det);
  // float32 on both; the Glow's score sums 90 squared z-scores, some with small SDs, so it carries
  // more rounding than the NLL (this image: 1.2e-4 relative between lavapipe and the CPU).
  assert.ok(Math.abs(a.score - b.score) < 1e-3 * Math.abs(b.score) && Math.abs(a.value - b.value) < 1e-5 * b.value, `${a.score} vs ${b.score}`);
  onGpu.parameters().forEach((p) => p.dispose());
});

S.run();
