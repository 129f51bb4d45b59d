// The detector file (format version 2): fit, save, reload and score identically for every score of
// the registry; the rule for degenerate features (a floor, never -inf or NaN, drops recorded);
// files checked for meaning (each case a one-line error naming the field); the model check;
// percentiles and the 95% threshold against direct counts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { checkAgainstModel, checkModelHash, Detector, type DetectorFile, detectorText, fitDetector, percentileOf, percentiles, readDetectorText, sha256Hex, threshold95 } from "../src/ood/detector.ts";
import { FEATURE_SCORES, type FeatureScore, featureScoreNames } from "../src/ood/scores.ts";
import { evaluateSets } from "../src/ood/pipeline.ts";
import { auroc } from "../src/ood/metrics.ts";
import { FLOOR_DECADES } from "../src/ood/density.ts";
import { selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { subset } from "../src/data/dataset.ts";
import { setFeatures } from "../src/ood/loop.ts";

const S = suite("detector");

function rows(seed: number, n: number, L: number, shift = 0): Float64Array[] {
  const g = new T.Generator(seed);
  return Array.from({ length: n }, () => {
    const common = g.normal();
    return Float64Array.from({ length: L }, (_, l) => 3 + l * 0.1 + common * 0.7 + g.normal() * (0.3 + 0.05 * l) + (l % 2 ? shift : -shift));
  });
}
const names = ["a.weight", "a.bias", "b.weight", "b.bias", "c.weight"], sizes = [12, 3, 24, 2, 8];
const model = { path: "weights/x.safetensors", sha256: "ab".repeat(32), kind: "glow", image: [1, 28, 28] as [number, number, number], objective: "nll" };
const base = { model, groupSize: 1, seed: 0, names, sizes, data: "synthetic" };

function fitted() {
  const fit = rows(1, 200, names.length);
  const nll = Float64Array.from(fit, (_, i) => 4 + 0.01 * (i % 17));
  return fitDetector({ ...base, logf: fit, nll });
}

S("a saved and reloaded detector gives identical scores, for every score of the registry", () => {
  const f = fitted();
  assert.equal(Object.keys(f.scores).sort(), [...featureScoreNames()].sort());
  const a = new Detector(f), b = readDetectorText(detectorText(f), "mem.json");
  const test = [...rows(2, 30, names.length), ...rows(3, 30, names.length, 1.5)];
  for (const [i, r] of test.entries()) {
    const sa = a.scoreRow(r, 4 + i * 0.01), sb = b.scoreRow(r, 4 + i * 0.01);
    assert.equal(sb, sa);
    for (const name of featureScoreNames()) assert.ok(Number.isFinite(sa.scores[name]), `${name}: ${sa.scores[name]}`);
  }
  // Shifted rows are flagged more often than fresh in-distribution ones.
  const ood = test.slice(30).filter((r) => a.scoreRow(r, 4).verdict === "ood").length;
  const fresh = test.slice(0, 30).filter((r) => a.scoreRow(r, 4).verdict === "ood").length;
  assert.ok(ood > 25 && fresh < 8, `ood flagged ${ood}/30, fresh ${fresh}/30`);
});

S("a zero gradient norm (log f = -inf) gets the floor: in the fit, no NaN variance and no silent drop; scored, no -inf", () => {
  // As the diffusion model's L1 output bias gives when the residual signs balance: exactly 0 on some inputs.
  const fit = rows(1, 50, names.length);
  fit[7][4] = -Infinity;
  const f = fitDetector({ ...base, logf: fit, nll: new Float64Array(50).fill(4) });
  assert.equal(f.features.kept, [0, 1, 2, 3, 4], "the feature with a zero norm in the fit is kept");
  assert.equal(f.features.dropped, []);
  const med = [...fit.map((r) => r[4]).filter(Number.isFinite)].sort((x, y) => x - y)[24];
  assert.ok(Math.abs(f.features.floor[4] - (med - FLOOR_DECADES * Math.LN10)) < 1e-12, "floor: the fit median less 6 decades");
  const g = f.scores.gradient as { variance: number[]; mean: number[] };
  assert.ok(g.variance.every((v) => Number.isFinite(v) && v > 0), `variances ${g.variance}`);
  const d = readDetectorText(detectorText(f), "mem.json");
  const zero = Float64Array.from(rows(2, 1, names.length)[0]);
  zero[4] = -Infinity;
  const s = d.scoreRow(zero, 4);
  for (const name of featureScoreNames()) assert.ok(Number.isFinite(s.scores[name]), `${name} of a zero norm: ${s.scores[name]}`);
  // At the floor the input is scored as far out as the floor, not as -inf: the same as a row at the floor itself.
  const atFloor = Float64Array.from(zero);
  atFloor[4] = f.features.floor[4];
  assert.equal(d.scoreRow(atFloor, 4).scores, s.scores);
  assert.ok(s.scores.gradient < d.scoreRow(rows(2, 1, names.length)[0], 4).scores.gradient, "a zero norm scores lower than a typical one");
  // A feature that is 0 on every fit input is constant: dropped, with the reason recorded.
  const allZero = rows(1, 50, names.length);
  for (const r of allZero) r[2] = -Infinity;
  const fz = fitDetector({ ...base, logf: allZero, nll: new Float64Array(50).fill(4) });
  assert.equal(fz.features.kept, [0, 1, 3, 4]);
  assert.equal(fz.features.dropped.map((x) => x.feature), [2]);
  assert.match(fz.features.dropped[0].reason, /constant on the 50 fit rows/);
  // NaN or +inf is an error (an overflowed gradient), never scored.
  const nan = rows(1, 50, names.length);
  nan[3][1] = NaN;
  assert.throws(() => fitDetector({ ...base, logf: nan, nll: new Float64Array(50).fill(4) }), /fit row 3 has log f = NaN for a.bias/);
  assert.throws(() => d.scoreRow(Float64Array.from([1, Infinity, 1, 1, 1]), 4), /row has log f = Infinity for a.bias/);
});

S("the Ledoit-Wolf full covariance stays finite with fewer fit rows than features (shrinkage floor)", async () => {
  const { FullGaussian } = await import("../src/ood/density.ts");
  const fit = rows(5, 2, names.length), test = rows(6, 4, names.length);
  const lw = new FullGaussian(fit, names.length, { shrink: "ledoit-wolf" });
  assert.ok(lw.shrinkage.value >= 1e-3);
  for (const r of test) assert.ok(Number.isFinite(lw.score(r)), "finite score");
});

S("top layers are the largest |z|, with z = (log f - mean) / sd", () => {
  const d = new Detector(fitted());
  const g = d.file.scores.gradient as { mean: number[]; variance: number[] };
  const r = Float64Array.from(g.mean);
  const sd = (l: number) => Math.sqrt(g.variance[l]);
  r[3] += 4 * sd(3);
  r[1] -= 2.5 * sd(1);
  r[0] += 1 * sd(0);
  const s = d.scoreRow(r, 4);
  assert.equal(s.top.map((t) => t.name), ["b.bias", "a.bias", "a.weight"]);
  assert.ok(Math.abs(s.top[0].z - 4) < 1e-9 && Math.abs(s.top[1].z + 2.5) < 1e-9);
});

S("Fisher's method: the sum of the layers' log two-sided p-values under the fitted Gaussians", async () => {
  const { logTwoSidedTail } = await import("../src/ood/density.ts");
  // Against known values of 2 Phi(-|z|): z = 0 -> 1, 1.96 -> 0.05, 3 -> 0.0026998, 10 -> 1.5239e-23; and far out, finite.
  for (const [z, p] of [[0, 1], [1.959963985, 0.05], [3, 0.002699796], [10, 1.523970e-23]]) {
    assert.ok(Math.abs(logTwoSidedTail(z) - Math.log(p)) < 2e-6 * Math.max(1, Math.abs(Math.log(p))), `z ${z}: ${Math.exp(logTwoSidedTail(z))} vs ${p}`);
  }
  assert.ok(Number.isFinite(logTwoSidedTail(60)) && logTwoSidedTail(60) < -1700);
  const d = new Detector(fitted());
  const g = d.file.scores.gradient as { mean: number[]; variance: number[] };
  const r = Float64Array.from(g.mean, (m, l) => m + (l - 2) * 0.7 * Math.sqrt(g.variance[l]));
  const want = [0, 1, 2, 3, 4].reduce((s, l) => s + logTwoSidedTail((l - 2) * 0.7), 0);
  assert.ok(Math.abs(d.scoreRow(r, 4).scores["gradient-fisher"] - want) < 1e-9);
});

S("percentiles, percentileOf and the 95% threshold against direct counts", () => {
  const v = Array.from({ length: 201 }, (_, i) => (i * 37) % 201);
  const q = percentiles(v);
  assert.is(q[0], 0);
  assert.is(q[100], 200);
  assert.is(q[50], 100);
  assert.is(percentileOf(q, 100), 50);
  assert.is(percentileOf(q, -5), 0);
  assert.is(percentileOf(q, 500), 100);
  const t = threshold95(v);
  assert.ok(v.filter((x) => x >= t).length / v.length >= 0.95);
  assert.ok(v.filter((x) => x > t).length / v.length < 0.95);
  // The fit data's own verdicts: 95% (or a little more) are "in".
  const f = fitted(), d = new Detector(f);
  const fit = rows(1, 200, names.length);
  const inside = fit.filter((r, i) => d.scoreRow(r, 4 + 0.01 * (i % 17)).verdict === "in").length;
  assert.ok(inside >= 190 && inside <= 192, `${inside} of 200 fit rows in`);
});

S("detector files are checked for meaning: every bad case is one line naming the field", () => {
  const f = fitted();
  const g = f.scores.gradient as { mean: number[]; variance: number[]; kept: number[] };
  const full = f.scores["gradient-fullcov"] as { cov: number[]; kept: number[] };
  const withScore = (name: string, v: unknown) => ({ ...f, scores: { ...f.scores, [name]: v } });
  const q = f.quantiles.gradient;
  const notPd = Array.from(full.cov);
  notPd[0] = -1; // a negative variance on the diagonal
  const asym = Array.from(full.cov);
  asym[1] += 1;
  const bad: [unknown, RegExp][] = [
    ["{not json", /detector file x.json: not valid JSON/],
    [{}, /not a fimscope detector/],
    [{ ...f, version: 1 }, /detector file x.json: it is format version 1; this fimscope reads version 2 only \(refit it with npm run fit\)/],
    [{ ...f, model: { ...f.model, sha256: "xyz" } }, /model must hold path, kind, objective/],
    [{ ...f, model: { ...f.model, objective: undefined } }, /model must hold path, kind, objective/],
    [{ ...f, seed: -1 }, /seed must be a non-negative integer/],
    [{ ...f, features: { ...f.features, kept: [] } }, /features.kept must list at least one feature \(a detector that scores nothing would call every input in-distribution\)/],
    [{ ...f, features: { ...f.features, kept: [0, 1, 1, 3, 4] } }, /features.kept must list feature indices 0..4, increasing, each once/],
    [{ ...f, features: { ...f.features, kept: [0, 1, 2, 3, 7] } }, /features.kept must list feature indices 0..4/],
    [{ ...f, features: { ...f.features, names: ["a", "a", "b", "c", "d"] } }, /features.names has a name twice/],
    [{ ...f, features: { ...f.features, sizes: [1, 2, 3] } }, /features.sizes must be 5 positive integers/],
    [{ ...f, features: { ...f.features, floor: [0, 0, 0, 0, null] } }, /features.floor must be 5 finite numbers/],
    [withScore("gradient", { ...g, variance: [1, -0.5, 1, 1, 1] }), /scores.gradient.variance entry 1 is -0.5; it must be positive/],
    [withScore("gradient", { ...g, variance: [1, 0, 1, 1, 1] }), /scores.gradient.variance entry 1 is 0; it must be positive/],
    [withScore("gradient", { ...g, variance: [1, 1, 1e400, 1, 1] }), /scores.gradient.variance entry 2 is null, not a finite number/],
    [withScore("gradient", { ...g, mean: [null, 1, 2, 3, 4] }), /scores.gradient.mean entry 0 is null, not a finite number/],
    [withScore("gradient", { ...g, kept: [0, 1] }), /scores.gradient.kept is \[0, 1\], but the detector's features.kept is \[0, 1, 2, 3, 4\]/],
    [withScore("gradient-chi2", { ...(f.scores["gradient-chi2"] as object), kept: [] }), /scores.gradient-chi2.kept must list at least one feature/],
    [withScore("gradient-fullcov", { ...full, cov: notPd }), /scores.gradient-fullcov.cov is not positive definite/],
    [withScore("gradient-fullcov", { ...full, cov: asym }), /scores.gradient-fullcov.cov is not symmetric/],
    [withScore("typicality", { centre: "x" }), /scores.typicality.centre must be a finite number/],
    [{ ...f, scores: { ...f.scores, magic: {} } }, /scores has unknown score\(s\) magic/],
    [{ ...f, method: "magic" }, /method must be one of/],
    [{ ...f, quantiles: { ...f.quantiles, gradient: [1, 2] } }, /quantiles.gradient must be 101 finite numbers/],
    [{ ...f, quantiles: { ...f.quantiles, gradient: [...q].reverse() } }, /quantiles.gradient must not decrease \(entry 1 is/],
    [{ ...f, threshold95: { ...f.threshold95, gradient: null } }, /threshold95.gradient must be a finite number, got null/],
    [{ ...f, threshold95: { ...f.threshold95, gradient: q[100] + 1 } }, /threshold95.gradient .* lies outside the score's quantiles/],
    [{ ...f, fit: { ...f.fit, groups: 1 } }, /fit must hold data, groups \(at least 2\)/],
  ];
  for (const [v, re] of bad) {
    const text = typeof v === "string" ? v : JSON.stringify(v);
    try {
      readDetectorText(text, "x.json");
      assert.unreachable(`accepted ${text.slice(0, 80)}`);
    } catch (e) {
      const m = (e as Error).message;
      assert.match(m, re);
      assert.not.match(m, /\n/);
      assert.match(m, /^detector file x.json: /);
    }
  }
  // A UTF-8 byte-order mark is read past, not reported as an invisible character.
  assert.equal(readDetectorText("\ufeff" + detectorText(f), "bom.json").file.threshold95, f.threshold95);
});

S("the detector must match the model: names, sizes, in order", async () => {
  const f: DetectorFile = fitted();
  const shapes: [string, number[]][] = names.map((n, i) => [n, [sizes[i]]]);
  checkAgainstModel(f, shapes, "m.safetensors", "d.json");
  assert.throws(() => checkAgainstModel(f, shapes.slice(1), "m.safetensors", "d.json"), /d.json: has 5 features, but m.safetensors has 4 parameter tensors/);
  assert.throws(() => checkAgainstModel(f, shapes.map(([n, s], i) => [n, i === 2 ? [25] : s]), "m.safetensors", "d.json"), /d.json: feature 2 is b.weight \(24 parameters\), but m.safetensors's parameter tensor 2 is b.weight \(25\)/);
  const h = await sha256Hex(new TextEncoder().encode("abc"));
  assert.is(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  checkModelHash(f, f.model.sha256, "m.safetensors");
  assert.throws(() => checkModelHash(f, h, "m.safetensors", "d.json"), /d.json: fitted on a model with SHA-256 abababab.*but m.safetensors has ba7816bf/);
});


S("a toy score added to the registry alone is fitted, written to and checked in detector files, scored, and evaluated in the ood table", () => {
  // The toy: minus the distance of a row's sum over the kept features from the fit's mean sum.
  const sum = (r: ArrayLike<number>, kept: number[]) => kept.reduce((a, l) => a + r[l], 0);
  const toy: FeatureScore<{ mean: number }> = {
    name: "toy-sum",
    about: "minus |sum of the kept log f_l - its fit mean|",
    fit: (d) => ({ mean: d.rows.reduce((a, r) => a + sum(r, d.kept), 0) / d.rows.length }),
    check: (p, ctx) => {
      const m = (p as { mean?: unknown })?.mean;
      if (typeof m !== "number" || !Number.isFinite(m)) throw ctx.fail("scores.toy-sum.mean", `must be a finite number, got ${JSON.stringify(m)}`);
      return { mean: m };
    },
    scorer: (p, ctx) => (row) => -Math.abs(sum(row, ctx.kept) - p.mean),
  };
  FEATURE_SCORES.push(toy as FeatureScore<unknown>);
  try {
    const fit = rows(1, 200, names.length), f = fitted();
    const mean = fit.reduce((a, r) => a + sum(r, f.features.kept), 0) / fit.length;
    assert.ok(Math.abs((f.scores["toy-sum"] as { mean: number }).mean - mean) < 1e-9, "fitted on the fit rows");
    assert.is(f.quantiles["toy-sum"].length, 101);
    const d = readDetectorText(detectorText(f), "mem.json");
    const r = rows(5, 1, names.length)[0];
    assert.ok(Math.abs(d.scoreRow(r, 4).scores["toy-sum"] - -Math.abs(sum(r, f.features.kept) - mean)) < 1e-9, "scored after a round trip");
    const bad = JSON.parse(detectorText(f));
    bad.scores["toy-sum"].mean = "x";
    assert.throws(() => readDetectorText(JSON.stringify(bad), "bad.json"), /bad\.json: scores\.toy-sum\.mean must be a finite number, got "x"/);
    // The ood evaluation gets its column, its AUROC that of the toy scores computed here.
    const set = (name: string, logf: Float64Array[]) => ({ name, names, logf, nll: new Float64Array(logf.length).fill(4), measure: { kind: "nll" as const, short: "NLL", label: "NLL", unit: "bits/dim" }, objective: "nll" });
    const inRows = rows(2, 60, names.length), oodRows = rows(3, 60, names.length, 1.5);
    const e = evaluateSets("toy", 1, set("fit", fit), set("in", inRows), [set("ood", oodRows)]);
    const got = e.results.ood.find((m) => m.method === "toy-sum");
    assert.ok(got, "the ood results have a toy-sum entry");
    const m0 = e.fitted.params["toy-sum"] as { mean: number }, kept = e.fitted.space.kept;
    const direct = auroc(inRows.map((x) => -Math.abs(sum(x, kept) - m0.mean)), oodRows.map((x) => -Math.abs(sum(x, kept) - m0.mean)));
    assert.ok(Math.abs(got.metrics.auroc - direct) < 1e-12, `AUROC ${got.metrics.auroc} vs ${direct}`);
  } finally {
    FEATURE_SCORES.splice(FEATURE_SCORES.indexOf(toy as FeatureScore<unknown>), 1);
  }
});

S("the real case: the shipped diffusion model's L1 output bias has f = 0 on MNIST test image 173 (its residual signs balance, with its own ε draw); a detector fitted with it keeps the tensor, and scores the image finitely", async () => {
  const backend = await selectBackend("wasm", { makeDefault: false, onNotice: () => {} });
  const m = await loadModel("weights/diffusion-fashion.safetensors", backend);
  const mnist = loadDataset("mnist", "test");
  const set = subset(mnist, Array.from({ length: 16 }, (_, i) => 168 + i), "mnist"); // 173 is the 6th
  const f = await setFeatures(m, m.objective(), set, { groupSize: 1, batch: 8, seed: 0 });
  const bias = f.names.indexOf("unet.out.conv.bias");
  assert.ok(bias >= 0, `names: ${f.names.slice(-4)}`);
  assert.is(f.logf[5][bias], -Infinity, "image 173: the residual signs balance");
  assert.ok(f.logf.filter((r) => r[bias] === -Infinity).length < 16, "not every image");
  const sizes = m.namedParameters().map(([, p]) => p.size);
  const det = fitDetector({ model: { ...model, kind: "diffusion", objective: m.objective().name }, groupSize: 1, seed: 0, names: f.names, sizes, data: "mnist:test:168-184", logf: f.logf, nll: f.nll });
  assert.ok(det.features.kept.includes(bias), "the tensor is kept");
  const g = det.scores.gradient as { variance: number[] };
  assert.ok(g.variance.every((v) => Number.isFinite(v) && v > 0));
  const d = readDetectorText(detectorText(det), "mem.json");
  for (const name of featureScoreNames()) assert.ok(Number.isFinite(d.scoreRow(f.logf[5], f.nll[5]).scores[name]), name);
});

S.run();
