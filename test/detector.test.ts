// The detector file: fit, save, reload and score identically; one-line errors for bad files and a
// model hash that does not match; percentiles and the 95% threshold against direct counts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { checkModelHash, Detector, detectorText, fitDetector, percentileOf, percentiles, readDetectorText, sha256Hex, threshold95 } from "../src/ood/detector.ts";

const S = suite("detector");

function rows(seed: number, n: number, L: number, shift = 0): Float64Array[] {
  const g = new T.Generator(seed);
  return Array.from({ length: n }, () => {
    const common = g.normal();
    return Float64Array.from({ length: L }, (_, l) => 3 + l * 0.1 + common * 0.7 + g.normal() * (0.3 + 0.05 * l) + (l % 2 ? shift : -shift));
  });
}
const names = ["a.weight", "a.bias", "b.weight", "b.bias", "c.weight"];
const model = { path: "weights/x.safetensors", sha256: "ab".repeat(32), kind: "glow", image: [1, 28, 28] as [number, number, number] };

function fitted() {
  const fit = rows(1, 200, names.length);
  const nll = Float64Array.from(fit, (_, i) => 4 + 0.01 * (i % 17));
  return fitDetector({ model, groupSize: 1, names, logf: fit, nll, data: "synthetic" });
}

S("a saved and reloaded detector gives identical scores, for every method", () => {
  const f = fitted();
  const a = new Detector(f), b = readDetectorText(detectorText(f), "mem.json");
  const test = [...rows(2, 30, names.length), ...rows(3, 30, names.length, 1.5)];
  for (const [i, r] of test.entries()) {
    const sa = a.scoreRow(r, 4 + i * 0.01), sb = b.scoreRow(r, 4 + i * 0.01);
    assert.equal(sb, sa);
    assert.ok(Number.isFinite(sa.score));
  }
  // Shifted rows are flagged more often than fresh in-distribution ones.
  const ood = test.slice(30).filter((r) => a.scoreRow(r, 4).verdict === "ood").length;
  const fresh = test.slice(0, 30).filter((r) => a.scoreRow(r, 4).verdict === "ood").length;
  assert.ok(ood > 25 && fresh < 8, `ood flagged ${ood}/30, fresh ${fresh}/30`);
});

S("a feature whose gradient is exactly 0 on the fit inputs (log f = -inf) is not kept, and the file still reads back and scores identically", () => {
  const fit = rows(1, 50, names.length);
  for (const r of fit) r[4] = -Infinity; // as the shipped diffusion model's L1 output bias gives
  const f = fitDetector({ model, groupSize: 1, names, logf: fit, nll: new Float64Array(50).fill(4), data: "synthetic" });
  assert.not.ok(f.densities.gradient.kept.includes(4));
  const text = detectorText(f);
  assert.match(text, /null/);
  const a = new Detector(f), b = readDetectorText(text, "mem.json");
  for (const r of rows(2, 5, names.length)) {
    const sa = a.scoreRow(r, 4), sb = b.scoreRow(r, 4);
    assert.is(sb.score, sa.score);
    assert.ok(Number.isFinite(sb.score));
  }
  // Zero on only some inputs: the chi-square keeps the feature and scores f = 0 as +inf (k < 2);
  // its quantiles hold that as Number.MAX_VALUE, so the file is valid JSON and reads back.
  const mixed = rows(3, 50, names.length);
  for (const [i, r] of mixed.entries()) r[4] = i % 5 ? 3 + 3 * Math.sin(i) : -Infinity;
  const fm = fitDetector({ model, groupSize: 1, names, logf: mixed, nll: new Float64Array(50).fill(4), data: "synthetic" });
  assert.ok(fm.densities["gradient-chi2"].kept.includes(4) && fm.densities["gradient-chi2"].k[4] < 2);
  assert.is(fm.quantiles["gradient-chi2"][100], Number.MAX_VALUE);
  const back = readDetectorText(detectorText(fm), "mixed.json");
  assert.equal(back.file.quantiles, fm.quantiles);
  assert.is(back.scoreRow(mixed[0], 4).percentile, new Detector(fm).scoreRow(mixed[0], 4).percentile);
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
  const r = Float64Array.from(d.file.densities.gradient.mean as number[]);
  const sd = (l: number) => Math.sqrt((d.file.densities.gradient.variance as number[])[l]);
  r[3] += 4 * sd(3);
  r[1] -= 2.5 * sd(1);
  r[0] += 1 * sd(0);
  const s = d.scoreRow(r, 4);
  assert.equal(s.top.map((t) => t.name), ["b.bias", "a.bias", "a.weight"]);
  assert.ok(Math.abs(s.top[0].z - 4) < 1e-9 && Math.abs(s.top[1].z + 2.5) < 1e-9);
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

S("bad detector files and a mismatched model hash give one-line errors", async () => {
  const f = fitted();
  const bad: [string, RegExp][] = [
    ["{not json", /detector file x.json: not valid JSON/],
    ["{}", /not a fimscope detector/],
    [JSON.stringify({ ...f, version: 99 }), /version 99, this fimscope reads version 1/],
    [JSON.stringify({ ...f, model: { ...f.model, sha256: "xyz" } }), /"model" must hold/],
    [JSON.stringify({ ...f, features: ["a"] }), /densities.gradient.kept must list feature indices 0..0/],
    [JSON.stringify({ ...f, densities: { ...f.densities, gradient: { ...f.densities.gradient, mean: [null, 1, 2, 3, 4] } } }), /densities.gradient.mean must be 5 numbers \(null only for features not kept\)/],
    [JSON.stringify({ ...f, method: "magic" }), /"method" must be one of/],
    [JSON.stringify({ ...f, quantiles: { ...f.quantiles, gradient: [1, 2] } }), /quantiles.gradient must be 101 numbers/],
  ];
  for (const [text, re] of bad) {
    try {
      readDetectorText(text, "x.json");
      assert.unreachable(`accepted ${text.slice(0, 40)}`);
    } catch (e) {
      const m = (e as Error).message;
      assert.match(m, re);
      assert.not.match(m, /\n/);
    }
  }
  const h = await sha256Hex(new TextEncoder().encode("abc"));
  assert.is(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  checkModelHash(f, f.model.sha256, "m.safetensors");
  assert.throws(() => checkModelHash(f, h, "m.safetensors", "d.json"), /d.json: fitted on a model with SHA-256 abababab.*but m.safetensors has ba7816bf/);
});

S.run();
