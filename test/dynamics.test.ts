// The statistics (src/ood/stats.ts) against brute-force float64 formulas; the model comparison
// (src/ood/compare.ts) against scores and correlations computed directly, input by input; roles and
// their matching; and the checkpoint series (src/ood/dynamics.ts): a checkpoint's rows equal
// evaluating that checkpoint directly, and do not depend on the other checkpoints of the series.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { type ImageSet, range, subset } from "../src/data/dataset.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { saveTensors } from "../src/io/safetensors.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { createModel, loadModel } from "../src/models/registry.ts";
import { metadataOf } from "../src/models/train.ts";
import { comparePair, matchRoles, modelNovelty, rolesOf } from "../src/ood/compare.ts";
import { DiagonalGaussian, FeatureSpace } from "../src/ood/density.ts";
import { Diffusion, diffusionConfig } from "../src/models/diffusion.ts";
import { dynamicsOf, evaluateCheckpoint } from "../src/ood/dynamics.ts";
import { featuresLoop, groupGradientsLoop } from "../src/ood/features.ts";
import { auroc } from "../src/ood/metrics.ts";
import { inputNoise, setFeatures } from "../src/ood/loop.ts";
import { evaluateSets } from "../src/ood/pipeline.ts";
import { WoodburyFim } from "../src/ood/woodbury.ts";
import { bootstrap, cohenKappa, correlation, partialCorrelation, pearson, ranks, spearman, topOverlap } from "../src/ood/stats.ts";

const S = suite("dynamics");
const tmp = Deno.makeTempDirSync({ prefix: "fimscope-dynamics-" });
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

// ---- statistics against brute force -------------------------------------------------------------

/** Average rank by counting: #{x_j < x_i} + (#{x_j == x_i} + 1) / 2. */
const bruteRanks = (x: number[]) => x.map((v) => x.filter((u) => u < v).length + (x.filter((u) => u === v).length + 1) / 2);
/** Pearson's r by the pairwise form: sum_{i<j} (x_i - x_j)(y_i - y_j) / sqrt(sum (x_i - x_j)^2 sum (y_i - y_j)^2). */
function brutePearson(x: number[], y: number[]): number {
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) for (let j = i + 1; j < x.length; j++) {
    sxy += (x[i] - x[j]) * (y[i] - y[j]);
    sxx += (x[i] - x[j]) ** 2;
    syy += (y[i] - y[j]) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

S("ranks (ties averaged), Pearson, Spearman and partial correlation equal brute-force formulas", () => {
  const g = new T.Generator(4);
  for (const ties of [false, true]) {
    const x = Array.from({ length: 57 }, () => (ties ? Math.floor(g.uniform() * 6) : g.normal()));
    const y = x.map((v) => (ties ? Math.floor(v / 2 + g.uniform() * 3) : v * 0.4 + g.normal()));
    const z = y.map((v) => v + g.normal());
    assert.equal([...ranks(x)], bruteRanks(x));
    assert.ok(rel(pearson(x, y), brutePearson(x, y)) < 1e-12);
    assert.ok(rel(spearman(x, y), brutePearson(bruteRanks(x), bruteRanks(y))) < 1e-12, `ties ${ties}`);
    const [rxy, rxz, ryz] = [[x, y], [x, z], [y, z]].map(([a, b]) => brutePearson(bruteRanks(a), bruteRanks(b)));
    assert.ok(rel(partialCorrelation(x, y, z), (rxy - rxz * ryz) / Math.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))) < 1e-10);
  }
  // Without ties Spearman is 1 - 6 sum d^2 / (n (n^2 - 1)).
  const x = [3, 1, 4, 1.5, 9, 2.6, 5.3], y = [2, 7, 1, 8, 2.8, 1.8, 2.84];
  const d2 = bruteRanks(x).reduce((s, r, i) => s + (r - bruteRanks(y)[i]) ** 2, 0), n = x.length;
  assert.ok(Math.abs(spearman(x, y) - (1 - (6 * d2) / (n * (n * n - 1)))) < 1e-12);
  assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])), "a constant variable has no correlation");
  assert.throws(() => spearman([1, 2], [1]), /2 and 1 values/);
});

S("bootstrap intervals: the full-sample value, resampled pairs, seeded; top-k overlap and kappa by counting", () => {
  const g = new T.Generator(9), x = Array.from({ length: 80 }, () => g.normal()), y = x.map((v) => v + 0.5 * g.normal());
  const e = correlation(x, y, "spearman", { reps: 300, seed: 3 });
  assert.is(e.value, spearman(x, y));
  assert.ok(e.ci[0] < e.value && e.value < e.ci[1] && e.ci[1] - e.ci[0] < 0.3, `${e.ci}`);
  assert.equal(correlation(x, y, "spearman", { reps: 300, seed: 3 }), e);
  // The interval of a statistic that ignores the resample is that statistic itself.
  assert.equal(bootstrap(10, () => 0.25, { reps: 50 }).ci, [0.25, 0.25]);
  // The replicates resample pairs: the statistic sees the full sample first, then indices drawn with Generator(seed).int(n).
  const calls: number[][] = [];
  bootstrap(80, (idx) => (calls.push([...idx]), 0), { reps: 2, seed: 7 });
  const gen = new T.Generator(7);
  assert.equal(calls, [range(0, 80), Array.from({ length: 80 }, () => gen.int(80)), Array.from({ length: 80 }, () => gen.int(80))]);
  const a = Array.from({ length: 100 }, (_, i) => Math.sin(i)), b = a.map((v, i) => (i % 3 ? v : -v));
  const top = topOverlap(a, b, 0.05), ta = [...a.keys()].sort((i, j) => a[j] - a[i]).slice(0, 5), tb = [...b.keys()].sort((i, j) => b[j] - b[i]).slice(0, 5);
  assert.equal(top, { overlap: ta.filter((i) => tb.includes(i)).length / 5, k: 5, chance: 0.05 });
  // Kappa: 8 of 10 agree; each says true 5 times: chance 0.5, kappa (0.8 - 0.5) / 0.5.
  const p = [true, true, true, true, true, false, false, false, false, false], q = [true, true, true, true, false, true, false, false, false, false];
  assert.ok(Math.abs(cohenKappa(p, q) - 0.6) < 1e-12);
});

// ---- roles -------------------------------------------------------------------------------------

S("roles: type without numbered containers, position by rank; Glows with K = 4 and K = 8 meet at the same depth", async () => {
  const small = (await createModel("glow", { levels: 2, steps: 4, hidden: 4 }, T.cpu)).namedParameters().map(([n]) => n);
  const large = (await createModel("glow", { levels: 2, steps: 8, hidden: 4 }, T.cpu)).namedParameters().map(([n]) => n);
  const r = rolesOf(small);
  assert.equal(r[small.indexOf("levels.0.steps.0.actnorm.bias")], { type: "actnorm.bias", position: 0 });
  assert.equal(r[small.indexOf("levels.1.steps.3.coupling.conv3.weight")], { type: "coupling.conv3.weight", position: 1 });
  assert.equal(r[small.indexOf("levels.0.prior.conv.bias")], { type: "prior.conv.bias", position: 0.5 });
  const m = new Map(matchRoles(small, large).map(([i, j]) => [small[i], large[j]]));
  assert.is(m.size, small.length);
  assert.is(m.get("levels.0.steps.0.invconv.lower"), "levels.0.steps.0.invconv.lower");
  // Step 2 of level 0 (rank 2 of 8, position 2/7 = 0.286) meets rank 4 of 16 (4/15 = 0.267; rank 5 is 0.333, farther).
  assert.is(m.get("levels.0.steps.2.coupling.conv1.weight"), "levels.0.steps.4.coupling.conv1.weight");
  // Step 3 of level 0 (3/7 = 0.429) meets rank 6 (0.4; rank 7 is 0.467).
  assert.is(m.get("levels.0.steps.3.coupling.conv1.weight"), "levels.0.steps.6.coupling.conv1.weight");
  assert.is(m.get("levels.1.steps.3.actnorm.logs"), "levels.1.steps.7.actnorm.logs");
  const vae = (await createModel("vae", {}, T.cpu)).namedParameters().map(([n]) => n);
  assert.equal(matchRoles(small, vae), []);
});

// ---- the model comparison against direct computation -------------------------------------------

const test = subset(loadMnist("test"), range(0, 60));
const fitSet = subset(test, range(0, 16), "fit"), ins = subset(test, range(20, 32), "in"), outs = { ...subset(test, range(40, 52), "out") };
outs.images = outs.images.map((v) => 255 - v);

async function tiny(seed: number, config: Record<string, unknown>): Promise<GenerativeModel> {
  const m = await createModel("glow", { levels: 2, steps: 1, hidden: 4, ...config }, T.cpu, seed);
  m.initialize!(m.input(test, range(0, 16)));
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(seed * 100 + i), [...p.shape], { std: 0.05 }))));
  m.eval();
  return m;
}

/**
 * The full-FIM norms of sets by the reference path: per-group gradients one backward at a time
 * (groupGradientsLoop), each input's draws from its pixels, F_N fitted on the fit set's.
 */
async function fimDirect(m: GenerativeModel, fit: ImageSet, sets: ImageSet[], B: number, seed: number): Promise<number[][]> {
  const o = m.objective();
  const grads = (s: ImageSet) => {
    const idx = range(0, s.n - (s.n % B));
    return groupGradientsLoop(m, o, m.input(s, idx), B, inputNoise(m, o, s, idx, seed));
  };
  const fim = await WoodburyFim.fit(grads(fit), { block: false });
  const out: number[][] = [];
  for (const s of sets) {
    const g = grads(s);
    out.push(Array.from((await fim.score(g, { block: false })).full));
    g.forEach((t) => t.dispose());
  }
  fim.dispose();
  return out;
}

S("compare: each score, its correlations and the per-layer agreement equal direct computation, input by input", async () => {
  const A = await tiny(1, {}), B = await tiny(2, { steps: 2 });
  const o = { batch: 5, seed: 0 };
  const na = await modelNovelty(A, "a", fitSet, [ins, outs], o), nb = await modelNovelty(B, "b", fitSet, [ins, outs], o);
  // Direct: the reference loop's features (one backward per input), the diagonal Gaussian, sum of logs; q from the FIM method.
  const direct = async (m: GenerativeModel) => {
    const logf = async (s: typeof ins) => {
      const f = await featuresLoop(m, m.objective(), m.input(s, range(0, s.n)), 1, inputNoise(m, m.objective(), s, range(0, s.n), 0));
      return Array.from({ length: s.n }, (_, i) => Array.from(f.sq.subarray(i * f.names.length, (i + 1) * f.names.length), Math.log));
    };
    const fitRows = await logf(fitSet), diag = new DiagonalGaussian(fitRows, fitRows[0].length);
    const qs = await fimDirect(m, fitSet, [ins, outs], 1, 0);
    const out = [];
    for (const [k, s] of [ins, outs].entries()) {
      const rows = await logf(s), q = qs[k];
      out.push({ diag: rows.map((r) => -diag.score(r)), logsum: rows.map((r) => r.reduce((x, v) => x + v, 0)), fim: Array.from(q, Math.log), rows });
    }
    return out;
  };
  const da = await direct(A), db = await direct(B);
  for (const [nov, d] of [[na, da], [nb, db]] as const) {
    for (const [k, s] of nov.sets.entries()) {
      for (const sc of ["diag", "logsum", "fim"] as const) {
        s.scores[sc].forEach((v, i) => assert.ok(Math.abs(v - d[k][sc][i]) <= 1e-3 * Math.max(1, Math.abs(d[k][sc][i])), `${nov.label} ${s.name} ${sc} input ${i}: ${v} vs ${d[k][sc][i]}`));
      }
    }
  }
  const p = comparePair(na, nb, { inName: "in", reps: 50 });
  const pool = (d: typeof da, sc: "diag" | "logsum" | "fim") => [...d[0][sc], ...d[1][sc]];
  for (const sc of ["diag", "logsum", "fim"] as const) {
    const all = p.scores.find((x) => x.score === sc && x.inputs === "all")!;
    assert.ok(Math.abs(all.spearman.value - brutePearson(bruteRanks(pool(da, sc)), bruteRanks(pool(db, sc)))) < 1e-6, `${sc} spearman`);
    assert.ok(Math.abs(all.pearson.value - brutePearson(pool(da, sc), pool(db, sc))) < 1e-4, `${sc} pearson`);
    const inOnly = p.scores.find((x) => x.score === sc && x.inputs === "in")!;
    assert.ok(Math.abs(inOnly.spearman.value - brutePearson(bruteRanks(da[0][sc]), bruteRanks(db[0][sc]))) < 1e-6);
    // The verdict: b flags inputs above its 95th percentile on "in"; a's AUROC on those.
    const v = p.verdicts.find((x) => x.score === sc && x.detector === "a")!;
    const sortedIn = [...db[0][sc]].sort((x, y) => x - y), h = (sortedIn.length - 1) * 0.95, thr = sortedIn[Math.floor(h)] + (h - Math.floor(h)) * (sortedIn[Math.ceil(h)] - sortedIn[Math.floor(h)]);
    const flagged = pool(db, sc).map((x) => x > thr), xa = pool(da, sc);
    assert.is(v.flagged, flagged.filter(Boolean).length);
    if (v.flagged > 0 && v.flagged < flagged.length) {
      assert.ok(Math.abs(v.auroc - auroc(xa.filter((_, i) => flagged[i]), xa.filter((_, i) => !flagged[i]))) < 1e-9);
    }
  }
  // Per layer: a's tensor and its role-matched tensor in b, Spearman over all inputs.
  const layer = p.layers.find((l) => l.a === "levels.1.steps.0.coupling.conv2.weight")!;
  assert.is(layer.b, "levels.1.steps.1.coupling.conv2.weight");
  const ia = na.names.indexOf(layer.a), ib = nb.names.indexOf(layer.b);
  const col = (d: typeof da, l: number) => [...d[0].rows, ...d[1].rows].map((r) => r[l]);
  assert.ok(Math.abs(layer.spearman - brutePearson(bruteRanks(col(da, ia)), bruteRanks(col(db, ib)))) < 1e-6);
});

S("compare: a diffusion model at initialisation (zero output conv: every other tensor's gradient is 0, log f = -inf) gets finite scores by the floor rule", async () => {
  const m = new Diffusion(diffusionConfig({ image: [1, 28, 28], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 4, steps: 100 }), { backend: T.cpu, gen: new T.Generator(2) });
  const nov = await modelNovelty(m, "diffusion", fitSet, [ins, outs], { batch: 5, seed: 1 });
  const o = m.objective(), fo = { groupSize: 1, batch: 5, seed: 1 };
  const fitRows = (await setFeatures(m, o, fitSet, fo)).logf;
  const zero = nov.names.filter((_, l) => fitRows.every((r) => r[l] === -Infinity));
  assert.ok(zero.length >= nov.names.length - 2, `${zero.length} of ${nov.names.length} tensors have a zero gradient on every fit input`);
  const space = FeatureSpace.fit(fitRows, nov.names), diag = new DiagonalGaussian(fitRows.map((r) => space.apply(r)), nov.names.length, space.kept);
  assert.ok(space.kept.every((l) => nov.names[l].startsWith("unet.out.conv.")), "only the output conv's tensors are kept");
  for (const [k, s] of [ins, outs].entries()) {
    const rows = (await setFeatures(m, o, s, fo)).logf.map((r) => space.apply(r));
    for (const sc of ["diag", "logsum", "fim"] as const) assert.ok(nov.sets[k].scores[sc].every(Number.isFinite), `${s.name} ${sc}: every score finite`);
    rows.forEach((r, i) => {
      assert.ok(Math.abs(nov.sets[k].scores.diag[i] + diag.score(r)) <= 1e-9 * Math.max(1, Math.abs(diag.score(r))), `${s.name} input ${i} diag`);
      assert.ok(Math.abs(nov.sets[k].scores.logsum[i] - r.reduce((a, v) => a + v, 0)) <= 1e-6 * Math.max(1, Math.abs(nov.sets[k].scores.logsum[i])), `${s.name} input ${i} logsum`);
    });
  }
});

// ---- the checkpoint series ---------------------------------------------------------------------

S("dynamics: a checkpoint's rows equal evaluating it directly, and do not depend on the rest of the series", async () => {
  const paths: string[] = [];
  for (const [k, step] of [[3, 10], [4, 40]]) {
    const m = await tiny(k, {});
    paths.push(`${tmp}/step${step}.safetensors`);
    await saveTensors(paths.at(-1)!, m.namedState(), metadataOf(m, { data: "mnist", steps: step }));
  }
  const sets = { fit: fitSet, inEval: ins, ood: [outs] }, o = { Bs: [1, 2], batch: 5, seed: 1 };
  const entry = (p: string, step: number) => ({ label: p.replace(/^.*\//, ""), step, load: () => loadModel(p, T.cpu) });
  const both = await dynamicsOf([entry(paths[1], 40), entry(paths[0], 10)], sets, o);
  assert.equal(both.map((r) => r.step), [10, 40]);
  const alone = await dynamicsOf([entry(paths[1], 40)], sets, o);
  assert.equal(alone[0].rows, both[1].rows);
  // Direct: features, evaluateSets, and the full-FIM AUROC computed here.
  const m = await loadModel(paths[1], T.cpu);
  for (const B of [1, 2]) {
    const fo = { groupSize: B, batch: 5, seed: 1 };
    const o = m.objective();
    const fit = await setFeatures(m, o, fitSet, fo), inE = await setFeatures(m, o, ins, fo), od = await setFeatures(m, o, outs, fo);
    const ev = evaluateSets("x", B, fit, inE, [od], 1);
    const mHead = inE.logf.length;
    const evOverlap = evaluateSets("x", B, fit, { ...inE, name: "in", logf: fit.logf.slice(0, mHead), nll: fit.nll.slice(0, mHead) }, [od], 1);
    const [qIn, qOut, qHead] = await fimDirect(m, fitSet, [ins, outs, subset(fitSet, range(0, mHead * B))], B, 1);
    for (const protocol of ["disjoint", "overlap"] as const) {
      for (const method of ["likelihood", "typicality", "gradient", "gradient-fim"]) {
        const row = both[1].rows.find((r) => r.B === B && r.protocol === protocol && r.method === method && r.ood === "out")!;
        const want = method === "gradient-fim"
          ? auroc([...(protocol === "disjoint" ? qIn : qHead)].map((v) => -v), [...qOut].map((v) => -v))
          : (protocol === "disjoint" ? ev : evOverlap).results.out.find((r) => r.method === method)!.metrics.auroc;
        assert.is(row.auroc, want, `B=${B} ${protocol} ${method}`);
        assert.ok(row.ci[0] <= row.auroc && row.auroc <= row.ci[1], `B=${B} ${protocol} ${method}: ${row.ci}`);
      }
    }
  }
  // evaluateCheckpoint on the loaded model is the series' row too.
  const direct = await evaluateCheckpoint(m, "step40.safetensors", 40, sets, o);
  assert.equal(direct.rows, both[1].rows);
});

S.run();
