// The OOD method: batched per-group gradient norms equal the per-input loop on every tensor (VAE
// and Glow, B = 1 and 5); density fits; metrics against direct counts; the ood command end to end.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { createModel } from "../src/models/registry.ts";
import { makeObjective } from "../src/models/objective.ts";
import { inputNoise } from "../src/ood/loop.ts";
import { featuresBatched, featuresLoop } from "../src/ood/features.ts";
import { auroc, averagePrecision, fprAtTpr, aurocBootstrap } from "../src/ood/metrics.ts";
import { ChiSquarePerLayer, DiagonalGaussian, FullGaussian, lgamma } from "../src/ood/density.ts";
import { saveTensors } from "../src/io/safetensors.ts";
import { metadataOf } from "../src/models/train.ts";
import { leadingEigen, shiftDiagnostic } from "../src/ood/shift.ts";
import { makeSet, range } from "../src/data/dataset.ts";
import { gpuTest, webgpu, drawsOf } from "./helpers.ts";

const S = suite("ood");
const tmp = Deno.makeTempDirSync(); // removed after the suite
const gpu = await webgpu();
const G = gpuTest(S, gpu);

async function compareBatchedLoop(backendName: string, backend: T.Tensor["backend"]) {
  for (const [kind, cfg] of [["vae", { latent: 4, channels: [4, 8], outChannels: 4 }], ["glow", { levels: 2, steps: 2, hidden: 8, image: [1, 28, 28] }], ["glow", { levels: 2, steps: 1, hidden: 8, image: [1, 28, 28], logit: 0.05 }]] as const) {
    const m = await createModel(kind, cfg, backend, 1);
    const x = T.rand(new T.Generator(2), [10, 1, 28, 28], { backend, low: -0.5, high: 0.5 });
    if (m.initialize) m.initialize(x);
    // Move every parameter off its initial value (zero-initialised convs would give zero gradients).
    m.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(new T.Generator(10 + i), [...p.shape], { backend, std: 0.02 }))));
    m.eval();
    const noise = drawsOf(m, m.objective(), 10, new T.Generator(3));
    for (const B of [1, 5]) {
      const a = await featuresBatched(m, m.objective(), x, B, noise), r = await featuresLoop(m, m.objective(), x, B, noise);
      assert.is(a.groups, 10 / B);
      assert.is(a.names.length, m.namedParameters().length);
      for (let i = 0; i < a.sq.length; i++) {
        const rel = Math.abs(a.sq[i] - r.sq[i]) / Math.abs(r.sq[i]);
        assert.ok(r.sq[i] > 0 && rel < 1e-4, `${backendName} ${kind} B=${B} ${a.names[i % a.names.length]} group ${Math.floor(i / a.names.length)}: batched ${a.sq[i]} vs loop ${r.sq[i]}`);
      }
      for (let g = 0; g < a.groups; g++) assert.ok(Math.abs(a.value[g] - r.value[g]) < 1e-4 * Math.abs(r.value[g]));
    }
  }
}

S("batched per-group squared norms equal the per-input loop on every tensor (cpu)", async () => {
  await compareBatchedLoop("cpu", T.cpu);
});

G("... and on webgpu", async (gpu) => {
  await compareBatchedLoop("webgpu", gpu);
});

S("... and on wasm", async () => {
  const { createWasmBackend } = await import("../src/kernels/wasm/backend.ts");
  const wb = await createWasmBackend();
  try {
    await compareBatchedLoop("wasm", wb);
  } finally {
    wb.close();
  }
});

S("a group's features are those of its summed NLL (B=2 by hand on a tiny VAE)", async () => {
  const m = await createModel("vae", { latent: 2, channels: [2, 2], outChannels: 2 }, T.cpu, 4);
  const x = T.rand(new T.Generator(5), [2, 1, 28, 28], { backend: T.cpu, low: -1, high: 1 });
  const noise = drawsOf(m, m.objective(), 2, new T.Generator(6));
  const f = await featuresBatched(m, m.objective(), x, 2, noise);
  const gs = T.grad(T.sum(m.nll(x, { noise })), m.parameters());
  gs.forEach((g, l) => {
    const want = [...g!.dataSync()].reduce((s, v) => s + v * v, 0);
    assert.ok(Math.abs(f.sq[l] - want) < 1e-4 * want, `${f.names[l]}: ${f.sq[l]} vs ${want}`);
  });
});

S("Gram-form norms of a linear layer equal the norms of its explicit per-group gradients", async () => {
  const { gramNorm } = await import("../src/nn/per_group.ts");
  for (const Bg of [1, 3]) {
    const G = 4, nIn = 5, nOut = 3;
    const a = T.randn(new T.Generator(20 + Bg), [G * Bg, nIn], { backend: T.cpu, dtype: "float64" });
    const g = T.randn(new T.Generator(30 + Bg), [G * Bg, nOut], { backend: T.cpu, dtype: "float64" });
    const w = gramNorm(a, g, G).dataSync();
    const A = a.dataSync(), Gd = g.dataSync();
    for (let k = 0; k < G; k++) {
      let sw = 0;
      for (let i = 0; i < nIn; i++) for (let o = 0; o < nOut; o++) {
        let d = 0;
        for (let t = 0; t < Bg; t++) d += A[(k * Bg + t) * nIn + i] * Gd[(k * Bg + t) * nOut + o];
        sw += d * d;
      }
      assert.ok(Math.abs(w[k] - sw) < 1e-10 * sw, `Bg=${Bg} group ${k}: ${w[k]} vs ${sw}`);
    }
  }
});

S("the norms-only pass refuses a linear weight that enters the NLL twice", async () => {
  const { Linear } = await import("../src/nn/module.ts");
  const lin = new Linear(4, 4, { backend: T.cpu, dtype: "float32", gen: new T.Generator(1) });
  // A stand-in model that applies one linear layer twice (weight sharing).
  const model = {
    kind: "toy", config: {}, dims: 4,
    namedParameters: () => lin.namedParameters(), parameters: () => lin.parameters(), modules: () => lin.modules(),
    noiseShape: () => null,
  } as unknown as Parameters<typeof featuresBatched>[0];
  const twice = makeObjective({ name: "twice", dims: 4, noiseShape: () => null, value: (x) => T.sum(T.square(lin.forward(lin.forward(x))), 1), measure: { kind: "loss", short: "", label: "", unit: "" } });
  const x = T.randn(new T.Generator(2), [2, 4], { backend: T.cpu });
  let msg = "";
  try { await featuresBatched(model, twice, x, 1); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /parameter weight enters the loss more than once/);
});

S("AUROC equals the direct pairwise count, ties counted one half", () => {
  const g = new T.Generator(7);
  for (let t = 0; t < 20; t++) {
    const a = Array.from({ length: 1 + g.int(12) }, () => g.int(6)), b = Array.from({ length: 1 + g.int(12) }, () => g.int(6));
    let c = 0;
    for (const x of a) for (const y of b) c += x > y ? 1 : x === y ? 0.5 : 0;
    assert.ok(Math.abs(auroc(a, b) - c / (a.length * b.length)) < 1e-12);
  }
  assert.is(auroc([1, 2], [1, 2]), 0.5);
  assert.is(auroc([3], [1, 2]), 1);
  assert.is(auroc([0], [1, 2]), 0);
  assert.throws(() => auroc([], [1]), /need both classes/);
});

S("AUPR, FPR at 95% TPR and the bootstrap interval on small cases", () => {
  assert.is(averagePrecision([3, 2], [1, 0]), 1);
  assert.ok(Math.abs(averagePrecision([1], [2]) - 0.5) < 1e-12);
  const inS = Array.from({ length: 100 }, (_, i) => i), outS = [3, 94, 200];
  assert.ok(Math.abs(fprAtTpr(inS, outS) - 2 / 3) < 1e-12); // threshold 5 keeps 95 of 100 in; 94 and 200 pass, 3 does not
  const [lo, hi] = aurocBootstrap(inS, Array.from({ length: 50 }, (_, i) => i * 1.5), 200);
  const point = auroc(inS, Array.from({ length: 50 }, (_, i) => i * 1.5));
  assert.ok(lo <= point && point <= hi && hi - lo < 0.3);
});

S("density fits recover known means and variances; zero-variance features are dropped", () => {
  const g = new T.Generator(8);
  const rows = Array.from({ length: 20000 }, () => Float64Array.from([3 + 2 * g.normal(), -1 + 0.5 * g.normal(), 7]));
  const d = new DiagonalGaussian(rows, 3);
  assert.ok(Math.abs(d.mean[0] - 3) < 0.05 && Math.abs(d.variance[0] - 4) < 0.15);
  assert.ok(Math.abs(d.mean[1] + 1) < 0.02 && Math.abs(d.variance[1] - 0.25) < 0.01);
  assert.equal(d.kept, [0, 1]);
  const at = Float64Array.from([3, -1, 7]);
  const expected = -0.5 * (Math.log(2 * Math.PI * 4) + Math.log(2 * Math.PI * 0.25));
  assert.ok(Math.abs(d.score(at) - expected) < 0.05);
  assert.ok(d.score(at) > d.score(Float64Array.from([9, -1, 7])));
  const full = new FullGaussian(rows, 3);
  assert.ok(Math.abs(full.score(at) - expected) < 0.05, "independent features: full = diagonal");
  // Chi-square moments: f = s * chi2(k) with k = 5, s = 2 -> recovered from log f rows.
  const chiRows = Array.from({ length: 20000 }, () => {
    let c = 0;
    for (let i = 0; i < 5; i++) c += g.normal() ** 2;
    return Float64Array.from([Math.log(2 * c)]);
  });
  const chi = new ChiSquarePerLayer(chiRows, 1);
  assert.ok(Math.abs(chi.k[0] - 5) < 0.3 && Math.abs(chi.s[0] - 2) < 0.15, `k ${chi.k[0]} s ${chi.s[0]}`);
  assert.ok(Math.abs(lgamma(5) - Math.log(24)) < 1e-10 && Math.abs(lgamma(0.5) - 0.5 * Math.log(Math.PI)) < 1e-10);
});

S("shift diagnostic: a shift along the common factor vs one across it", () => {
  const eig = leadingEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(eig.value - 3) < 1e-9 && Math.abs(Math.abs(eig.vector[0]) - Math.SQRT1_2) < 1e-9);
  // Six features = one common factor c plus small independent noise; OOD sets move c by 2 SDs, or
  // move half the features up and half down by the same amount (orthogonal to the factor).
  const g = new T.Generator(4), k = 6;
  // The NLL falls as the common factor rises (as in the shipped Glow: simpler images, larger gradients).
  const draw = (n: number, dc: number, contrast: number) => {
    const rows: Float64Array[] = [], nll: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = g.normal() + dc;
      rows.push(Float64Array.from({ length: k }, (_, l) => c + 0.3 * g.normal() + (l < 3 ? contrast : -contrast)));
      nll.push(-c + 0.1 * g.normal());
    }
    return { rows, nll };
  };
  const fit = draw(4000, 0, 0), inEval = draw(2000, 0, 0);
  const d = new DiagonalGaussian(fit.rows, k), full = new FullGaussian(fit.rows, k);
  const along = shiftDiagnostic(d, full, fit, inEval, { name: "along", ...draw(2000, 2, 0) });
  const across = shiftDiagnostic(d, full, fit, inEval, { name: "across", ...draw(2000, 0, 1) });
  // Correlation 1/1.09 between features: PC1 holds (1 + 5/1.09)/6 = 0.93 of the variance.
  assert.ok(Math.abs(along.pc1Share - 0.93) < 0.02, `pc1 share ${along.pc1Share}`);
  assert.ok(Math.abs(along.meanCorrelation - 1 / 1.09) < 0.02, `mean correlation ${along.meanCorrelation}`);
  assert.ok(along.pc1NllCorrelation < -0.95, `PC1 vs NLL ${along.pc1NllCorrelation}`);
  assert.ok(along.shiftAlongPc1 > 0.98, `along ${along.shiftAlongPc1}`);
  assert.ok(Math.abs(along.shiftPc1Sd - 2) < 0.15, `along in PC1 SDs ${along.shiftPc1Sd}`);
  assert.ok(across.shiftAlongPc1 < 0.02, `across ${across.shiftAlongPc1}`);
  // PC1 alone sees the factor shift (P(N(0,1) < N(2,1)) = 0.92), not the contrast; the residual the reverse.
  assert.ok(Math.abs(along.aurocPc1 - 0.921) < 0.02 && Math.abs(along.aurocResidual - 0.5) < 0.05, `along: ${along.aurocPc1} ${along.aurocResidual}`);
  assert.ok(Math.abs(across.aurocPc1 - 0.5) < 0.05 && across.aurocResidual > 0.99, `across: ${across.aurocPc1} ${across.aurocResidual}`);
  // Full-covariance distance: chi-square(6) median 5.35 in distribution; the contrast shift is far
  // off the factor (per-feature residual SD 0.3/sqrt(1.09)), the factor shift only by its 2 SDs.
  assert.ok(Math.abs(along.mahalanobis2.fit - 5.35) < 0.4 && Math.abs(along.mahalanobis2.inEval - 5.35) < 0.5);
  assert.ok(across.mahalanobis2.ood > 3 * along.mahalanobis2.ood, `${across.mahalanobis2.ood} vs ${along.mahalanobis2.ood}`);
  assert.ok(along.diagZ2.ood > along.diagZ2.fit + 10, "the diagonal sees the factor shift in every feature");
});

S("the ood command runs on a few dozen inputs and writes every report file", async () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  const m = await createModel("vae", { latent: 2, channels: [2, 4], outChannels: 2 }, T.cpu, 9);
  const wpath = `${dir}/tiny-vae.safetensors`;
  await saveTensors(wpath, m.namedState(), metadataOf(m, { data: "fashion" }));
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/ood.ts", "--model", wpath, "--fit", "20", "--eval", "10", "--data", "fashion", "--ood", "mnist,noise,vflip", "--backend", "cpu", "--out", `${dir}/report`],
    stdout: "piped", stderr: "piped",
  });
  const r = await cmd.output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.is(r.code, 0, out);
  assert.match(out, /tiny-vae\s+1\s+mnist/); // rows and files are named after the model file
  const files = [...Deno.readDirSync(`${dir}/report`)].map((e) => e.name).sort();
  for (const f of ["table.md", "layers.md", "table.json", ".fimscope-report.json", "features-tiny-vae-B1.csv", "features-tiny-vae-B5.csv", "roc-tiny-vae-B1-mnist.svg", "roc-tiny-vae-B5-vflip.svg", "hist-tiny-vae-B1.svg", "corr-tiny-vae-B1.svg", "pc1-tiny-vae-B1.svg"]) {
    assert.ok(files.includes(f), `missing ${f} in ${files.join(", ")}`);
  }
  const csv = Deno.readTextFileSync(`${dir}/report/features-tiny-vae-B1.csv`).trim().split("\n");
  assert.is(csv.length, 1 + 20 + 10 + 3 * 10);
  const json = JSON.parse(Deno.readTextFileSync(`${dir}/report/table.json`));
  // The reported AUROCs against the CSV's rows, recomputed here: a direct pairwise count over
  // in-distribution evaluation rows (positive) and MNIST rows, for the likelihood, typicality and
  // the diagonal Gaussian fitted on the fit rows. The CSV holds 8 digits, so one pair may flip.
  const rows = csv.slice(1).map((l) => l.split(","));
  const pick = (role: string, set?: string) => rows.filter((r) => r[1] === role && (!set || r[0] === set)).map((r) => r.slice(3).map(Number));
  const fit = pick("fit"), inEval = pick("in-eval"), mnist = pick("ood", "mnist");
  assert.is(fit.length, 20);
  assert.is(mnist.length, 10);
  const L = fit[0].length - 1;
  const mean = Array.from({ length: L }, (_, l) => fit.reduce((s, r) => s + r[1 + l], 0) / fit.length);
  const vars = mean.map((m, l) => fit.reduce((s, r) => s + (r[1 + l] - m) ** 2, 0) / fit.length);
  const fitNll = fit.reduce((s, r) => s + r[0], 0) / fit.length;
  const scorers: Record<string, (r: number[]) => number> = {
    likelihood: (r) => -r[0],
    typicality: (r) => -Math.abs(r[0] - fitNll),
    gradient: (r) => mean.reduce((s, m, l) => vars[l] > 1e-12 * Math.max(1, m * m) ? s - 0.5 * (Math.log(2 * Math.PI * vars[l]) + (r[1 + l] - m) ** 2 / vars[l]) : s, 0),
  };
  for (const [method, score] of Object.entries(scorers)) {
    let wins = 0;
    for (const a of inEval) for (const b of mnist) wins += score(a) > score(b) ? 1 : score(a) === score(b) ? 0.5 : 0;
    const direct = wins / (inEval.length * mnist.length), reported = json.evaluations[0].results.mnist[method].auroc;
    assert.ok(Math.abs(reported - direct) <= 1.01 / (inEval.length * mnist.length), `${method}: reported AUROC ${reported}, recomputed ${direct}`);
  }
  assert.is(json.evaluations[0].shift.length, 3);
  assert.match(Deno.readTextFileSync(`${dir}/report/layers.md`), /share along PC1/);
  assert.match(Deno.readTextFileSync(`${dir}/report/roc-tiny-vae-B1-mnist.svg`), /<svg[^>]*>[\s\S]*<path d="M/);
  // One point per fit, evaluation and OOD row in each of the three panels.
  assert.is((Deno.readTextFileSync(`${dir}/report/pc1-tiny-vae-B1.svg`).match(/<circle /g) ?? []).length, 3 * (20 + 10 + 10));
});

S("the commands end bad input with one error line that names it, exit code 1, and print --help", async () => {
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", ...args], stdout: "piped", stderr: "piped" }).output();
    return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
  };
  const missing = await run("src/cli/ood.ts", "--model", "no-such-weights.safetensors", "--backend", "cpu");
  assert.is(missing.code, 1);
  assert.match(missing.err, /^error: ood: --model 'no-such-weights\.safetensors': .*no such file/m);
  assert.not.match(missing.err, /^\s+at /m, "no stack trace without FIMSCOPE_DEBUG");
  const unknown = await run("src/cli/ood.ts", "--ood", "cifar", "--backend", "cpu");
  assert.is(unknown.code, 1);
  assert.match(unknown.err, /error: ood: --ood 'cifar': 'cifar' is not allowed/);
  const help = await run("src/cli/ood.ts", "--help");
  assert.is(help.code, 0);
  assert.match(help.out, /npm run ood -- \[--model/);
});

S("Fisher study: F restricted to the chosen weights equals the mean of g g^T over per-sample gradients computed one by one", async () => {
  const { fimStudy } = await import("../src/ood/fim.ts");
  const m = await createModel("vae", { latent: 2, channels: [2, 4], outChannels: 2 }, T.cpu, 11);
  const o = { samples: 8, perLayer: 3, batch: 4, seed: 1 };
  const r = await fimStudy(m, o);
  const k = 6;
  // The reference draws what fimStudy draws, in the same order (weights, samples, then per batch
  // the inputs; each sample's noise from its own pixels and the seed), and takes each sample's
  // gradient by its own backward pass.
  const gen = new T.Generator(o.seed);
  const named = new Map(m.namedParameters());
  const chosen = r.layers.map((n) => ({ p: named.get(n)!, idx: [...gen.permutation(named.get(n)!.size).subarray(0, o.perLayer)] }));
  const images = await m.sample(o.samples, gen);
  const set = makeSet("samples", images, new Uint8Array(o.samples), ...m.imageShape);
  const ref = new Float64Array(k * k);
  for (let i = 0; i < o.samples; i += o.batch) {
    const idx = range(i, Math.min(o.samples, i + o.batch));
    const x = m.input(set, idx, gen);
    const noise = inputNoise(m, m.objective("nll"), set, idx, o.seed);
    const nll = m.nll(x, { noise });
    for (let g = 0; g < idx.length; g++) {
      const grads = T.grad(T.sum(T.slice(nll, [g], [g + 1])), chosen.map((c) => c.p));
      const v = chosen.flatMap((c, j) => c.idx.map((e) => grads[j]!.dataSync()[e]));
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) ref[a * k + b] += (v[a] * v[b]) / o.samples;
    }
  }
  let scale = 0;
  for (let a = 0; a < k; a++) scale = Math.max(scale, ref[a * k + a]);
  assert.ok(scale > 0, "the chosen weights have gradients");
  for (let a = 0; a < k * k; a++) assert.ok(Math.abs(r.fim[a] - ref[a]) <= 1e-6 * scale, `F[${a}]: study ${r.fim[a]} vs reference ${ref[a]}`);
  const diagRef = Array.from({ length: k }, (_, a) => ref[a * k + a]).reduce((s, v) => s + v, 0) / k;
  assert.ok(Math.abs(r.meanAbsDiagonal - diagRef) <= 1e-6 * scale, `mean |diagonal| ${r.meanAbsDiagonal} vs ${diagRef}`);
  // Scale-free form: |F_ab| <= sqrt(F_aa F_bb) (Cauchy-Schwarz), and one sample holds at least 1/8 of the trace.
  for (const c of [r.meanAbsCorrWithin, r.meanAbsCorrAcross]) assert.ok(c >= 0 && c <= 1 + 1e-12, `${c}`);
  assert.ok(r.maxSampleShare >= 1 / 8 - 1e-12 && r.maxSampleShare <= 1 + 1e-12, `${r.maxSampleShare}`);
  // From one sample F = g g^T has rank one: every correlation is 1 and that sample is the whole trace.
  const one = await fimStudy(m, { samples: 1, perLayer: 3, batch: 1, seed: 1 });
  assert.ok(Math.abs(one.meanAbsCorrWithin - 1) < 1e-9 && Math.abs(one.meanAbsCorrAcross - 1) < 1e-9, `${one.meanAbsCorrWithin} ${one.meanAbsCorrAcross}`);
  assert.ok(Math.abs(one.maxSampleShare - 1) < 1e-12);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
