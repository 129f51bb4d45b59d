// One input end to end (src/ood/inspect.ts): the saliency map (double backprop) against float64
// central differences of the score and of one layer's log f_l; the score against DiagonalGaussian;
// the shipped detector files against the shipped models; bad input refused.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { VAE } from "../src/models/vae.ts";
import { loadModelBytes } from "../src/models/from_bytes.ts";
import { DiagonalGaussian } from "../src/ood/density.ts";
import { gpuTest, webgpu } from "./helpers.ts";
import { checkDetector, type DiagonalDetector, diagonalDetector, inspectImage, inspectInput, scoreRow } from "../src/ood/inspect.ts";
import { parseDetector } from "../src/ood/detector.ts";

const S = suite("inspect");
const f64 = { backend: T.cpu, dtype: "float64" as const };

/** A detector fitted on the features of a few random inputs, so z-scores are of order one. */
async function fakeDetector(model: GenerativeModel, xs: T.Tensor[]): Promise<DiagonalDetector> {
  const rows: Float64Array[] = [];
  for (const [i, x] of xs.entries()) rows.push((await inspectInput(model, x, { model: "", groupSize: 1, names: [], mean: [], variance: [], kept: [], threshold: 0, tpr: 0.95, made: {} }, { saliency: "none", noiseSeed: i })).logf);
  const names = model.namedParameters().map(([n]) => n);
  const d = new DiagonalGaussian(rows, names.length);
  return diagonalDetector(d, names, 0, 0.95, "test", {});
}

async function checkSaliency(model: GenerativeModel, shape: number[]) {
  const xs = [1, 2, 3, 4].map((s) => T.rand(new T.Generator(s), shape, { ...f64, low: -0.4, high: 0.4 }));
  const det = await fakeDetector(model, xs);
  const x = xs[0];
  const base = x.dataSync() as Float64Array;
  for (const target of ["score", 2] as const) {
    const r = await inspectInput(model, x, det, { saliency: target, noiseSeed: 7 });
    assert.is(r.saliency!.length, base.length);
    const value = (d: Float64Array) => inspectInput(model, T.tensor(d, shape, f64), det, { saliency: "none", noiseSeed: 7 })
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

S("shipped detectors: match their models, score as DiagonalGaussian, flag a constant image", async () => {
  const img = Deno.readFileSync("web/data/fashion.u8").subarray(0, 784);
  for (const m of ["vae-fashion", "glow-fashion"]) {
    const { model } = await loadModelBytes(Deno.readFileSync(`weights/${m}.safetensors`), T.cpu, m);
    const det = checkDetector(JSON.parse(Deno.readTextFileSync(`web/data/${m}.detector.json`)), model.namedParameters().map(([n]) => n), m);
    const r = await inspectImage(model, img, det, { saliency: "none" });
    assert.ok(r.bitsPerDim > 1 && r.bitsPerDim < 8, `${m}: ${r.bitsPerDim} bits/dim`);
    assert.ok(Math.abs(scoreRow(det, r.logf) - r.score) < 1e-12 && r.z.every(Number.isFinite));
    const flat = await inspectImage(model, new Uint8Array(784).fill(128), det, { saliency: "none" });
    assert.ok(!flat.inDistribution && flat.score < det.threshold, `${m}: a constant image scores ${flat.score} under the threshold ${det.threshold}`);
  }
});

S("a detector file (format fimscope-detector 1) is read as its diagonal Gaussian and threshold; the shipped ones carry their calibration", () => {
  const file = parseDetector(JSON.parse(Deno.readTextFileSync("web/data/vae-fashion.detector.json")), "vae");
  const g = file.densities.gradient;
  const d = checkDetector(file, file.features, "vae");
  const row = Array.from(g.mean, (m, l) => m + 0.3 * Math.sqrt(g.variance[l]));
  assert.is(scoreRow(d, row), DiagonalGaussian.fromParams(g).score(row));
  assert.is(d.threshold, file.threshold95.gradient);
  assert.is(d.nllMean, file.fit.nllMean);
  // The page's files: fitted on positions [0, 500) of the permuted test split, thresholds from [500, 1000).
  assert.equal(file.fit.selection, { set: "fashion", split: "test", seed: 1000, from: 0, to: 500 });
  assert.equal(file.calibration?.selection, { set: "fashion", split: "test", seed: 1000, from: 500, to: 1000 });
  assert.match(String(d.made.threshold), /95% of 500 fashion test split, positions \[500, 1000\) of its permutation by Generator\(1000\) \(held out\)/);
  assert.throws(() => checkDetector({ ...file, groupSize: 5 }, file.features, "fit.json"), /fit.json: groupSize 5/);
  assert.throws(() => checkDetector({ ...file, threshold95: {} }, file.features, "fit.json"), /threshold95/);
  assert.throws(() => checkDetector({ ...file, calibration: { data: 3 } }, file.features, "fit.json"), /"calibration" must hold data and groups/);
  assert.throws(() => checkDetector({ ...file, fit: { ...file.fit, selection: { set: "fashion", split: "val", seed: 1, from: 0, to: 5 } } }, file.features, "fit.json"), /fit.selection must be/);
  // The former page format is no longer read.
  assert.throws(() => checkDetector({ format: "fimscope-diag-detector/1", names: file.features }, file.features, "old.json"), /old.json: not a fimscope detector/);
});

S("bad input refused with a message naming it", async () => {
  const vae = new VAE({ latent: 4, channels: [4, 8], outChannels: 4 }, { backend: T.cpu, gen: new T.Generator(3) });
  const names = vae.namedParameters().map(([n]) => n);
  const det = diagonalDetector(new DiagonalGaussian([new Float64Array(names.length), new Float64Array(names.length).fill(1)], names.length), names, 0, 0.95, "x", {});
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    const e = await p.then(() => null, (e: Error) => e);
    assert.ok(e && re.test(e.message), `expected an error matching ${re}, got ${e?.message ?? "none"}`);
  };
  await rejects(inspectImage(vae, new Uint8Array(100), det), /100 bytes/);
  await rejects(inspectImage(vae, new Uint8Array(784), det, { saliency: names.length }), /out of range/);
  const file = JSON.parse(Deno.readTextFileSync("web/data/vae-fashion.detector.json"));
  assert.throws(() => checkDetector(file, names.slice(1), "d.json"), /d.json: its 16 features do not match the model's 15/);
  assert.throws(() => checkDetector({ ...file, format: "x" }, names, "d.json"), /d.json: not a fimscope detector/);
});

const gpu = await webgpu();
gpuTest(S, gpu)("WebGPU: 20 inspections with saliency (double backprop) keep GPU memory flat; numbers match the CPU", async (gpu) => {
  const bytes = Deno.readFileSync("weights/glow-fashion.safetensors");
  const onGpu = (await loadModelBytes(bytes, gpu, "glow")).model, onCpu = (await loadModelBytes(bytes, T.cpu, "glow")).model;
  const names = onGpu.namedParameters().map(([n]) => n);
  const det = checkDetector(JSON.parse(Deno.readTextFileSync("web/data/glow-fashion.detector.json")), names);
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
  assert.ok(Math.abs(a.score - b.score) < 1e-3 * Math.abs(b.score) && Math.abs(a.bitsPerDim - b.bitsPerDim) < 1e-5 * b.bitsPerDim, `${a.score} vs ${b.score}`);
  onGpu.parameters().forEach((p) => p.dispose());
});

S.run();
