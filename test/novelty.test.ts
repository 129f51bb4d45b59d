// Novelty at first exposure (src/models/novelty.ts): each recorded example's n(x) equals
// g^T diag(v_hat + eps)^{-1} g with g the example's own gradient computed one example at a time in
// float64 and v_hat read from the checkpoint written right after that step; recording changes no
// training number; a run stopped and resumed writes the same record as an uninterrupted one; a
// record that does not belong to the checkpoint is refused.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { range, subset } from "../src/data/dataset.ts";
import { readCheckpoint } from "../src/io/safetensors.ts";
import { createModel } from "../src/models/registry.ts";
import { Glow } from "../src/models/glow.ts";
import { VAE } from "../src/models/vae.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { noveltyHooks, noveltyNoise, planNoveltyRecord, readNoveltyRecord } from "../src/models/novelty.ts";
import { stepGen, train, type TrainOptions } from "../src/models/train.ts";
import { type Init, Module } from "../src/nn/module.ts";
import { groupSquaredNorm, perGroupGradientParts, perGroupGradients, perGroupPass } from "../src/nn/per_group.ts";
import { analyseNovelty, noveltyScale, noveltyStrips, withinStep } from "../src/ood/novelty_report.ts";
import { spearman } from "../src/ood/stats.ts";
import type { NoveltyRecord } from "../src/models/novelty.ts";

const S = suite("novelty");
const tmp = Deno.makeTempDirSync({ prefix: "fimscope-novelty-" });
const data = subset(loadMnist("train"), range(0, 96));
const CFG = {
  glow: { levels: 2, steps: 1, hidden: 4, image: [1, 28, 28], logit: 1e-6 },
  vae: { latent: 3, channels: [2, 4], outChannels: 2, image: [1, 28, 28] },
} as const;
const base = (over: Partial<TrainOptions>): TrainOptions => ({
  steps: 4, batch: 16, lr: 3e-3, seed: 3, optimizer: "adam", clip: 100, warmup: 1, checkpointEvery: 1000, checkpointPath: `${tmp}/unused.ckpt.safetensors`, data: "mnist", ...over,
});

/** A recording run (8 of each batch of 16 at every step: the record's rows follow the batches' order). */
async function recordRun(kind: "glow" | "vae", name: string, steps: number, resume?: string, every = 1000, recordEvery = 1) {
  const model = await createModel(kind, CFG[kind], T.cpu, 1);
  const ckpt = `${tmp}/${name}.ckpt.safetensors`, path = `${tmp}/${name}.csv`;
  const startStep = resume ? Number(readCheckpoint(resume).metadata.step) : 0;
  const plan = await planNoveltyRecord({
    path, force: false, kind, config: (await createModel(kind, CFG[kind], T.cpu)).config, data: "mnist", seed: 3, batch: 16, optimizer: "adam",
    trainN: data.n, resumeStep: startStep, weights: `${tmp}/${name}.safetensors`, others: [ckpt], perBatch: 8, every: recordEvery,
  });
  await train(model, data, base({ steps, resume, checkpointPath: ckpt, checkpointEvery: every, ...noveltyHooks(plan, model, data) }));
  return { model, ckpt, path };
}

/** A float64 copy of a model with the checkpoint's weights. */
function f64Model(kind: "glow" | "vae", ckpt: string): GenerativeModel {
  // Seed 1 as recordRun's models: the 1x1 convolutions' fixed permutations come from the init generator.
  const init = { backend: T.cpu, dtype: "float64" as const, gen: new T.Generator(1) };
  const m = kind === "glow" ? new Glow({ ...CFG.glow, image: [1, 28, 28] }, init) : new VAE({ ...CFG.vae, channels: [...CFG.vae.channels], image: [1, 28, 28] }, init);
  const d = readCheckpoint(ckpt);
  for (const [n, p] of m.namedParameters()) p.assign(T.tensor(Float64Array.from(d.tensors.get(n)!.data), [...p.shape], { backend: T.cpu, dtype: "float64" }));
  (m as { markInitialized?: () => void }).markInitialized?.();
  m.train();
  return m;
}

for (const kind of ["glow", "vae"] as const) {
  S(`${kind}: n(x) equals g^T diag(v_hat + eps)^{-1} g, g one example at a time in float64, v_hat from the next checkpoint`, async () => {
    // Steps 0-2, then resumed to step 4 with a checkpoint after every step: the step-3 rows are
    // computed at the step-3 checkpoint's weights with the step-4 checkpoint's v.
    const first = await recordRun(kind, `${kind}-a`, 3);
    Deno.copyFileSync(first.path, `${tmp}/${kind}-b.csv`);
    const at3 = `${tmp}/${kind}-at3.ckpt.safetensors`;
    Deno.copyFileSync(first.ckpt, at3);
    const second = await recordRun(kind, `${kind}-b`, 4, at3, 1);
    const rec = await readNoveltyRecord(second.path);
    assert.equal(rec.rows.map((r) => r.step), [0, 1, 2, 3].flatMap((s) => Array(8).fill(s)));
    const rows = rec.rows.filter((r) => r.step === 3);
    const m = f64Model(kind, at3), d4 = readCheckpoint(second.ckpt), t = 4, c2 = 1 - 0.999 ** t;
    const x32 = m.input(data, rows.map((r) => r.index), stepGen(3, 3));
    const x = T.tensor(Float64Array.from(x32.dataSync()), [...x32.shape], { backend: T.cpu, dtype: "float64" });
    const noise32 = noveltyNoise(await createModel(kind, CFG[kind], T.cpu), 3, 3, rows.length);
    const noise = noise32 && T.tensor(Float64Array.from(noise32.dataSync()), [...noise32.shape], { backend: T.cpu, dtype: "float64" });
    const named = m.namedParameters();
    rows.forEach((r, j) => {
      const sl = (u: T.Tensor) => T.slice(u, [j], [j + 1]);
      const loss = T.div(T.sum(m.nll(sl(x), { noise: noise && sl(noise) })), m.dims * Math.LN2);
      const g = T.grad(loss, named.map(([, p]) => p));
      let n = 0;
      named.forEach(([name, p], l) => {
        const gl = g[l]!.dataSync(), v = d4.tensors.get(`optimizer.v.${name}`)!.data;
        let nl = 0, fl = 0;
        for (let i = 0; i < gl.length; i++) {
          nl += gl[i] ** 2 / (v[i] / c2 + 1e-16);
          fl += gl[i] ** 2;
        }
        n += nl;
        assert.ok(Math.abs(r.logNovelty[l] - Math.log(nl)) < 1e-3, `${kind} row ${j} ${name}: log n_l ${r.logNovelty[l]} vs ${Math.log(nl)} (float64)`);
        assert.ok(Math.abs(r.logF[l] - Math.log(fl)) < 1e-3, `${kind} row ${j} ${name}: log f_l ${r.logF[l]} vs ${Math.log(fl)}`);
        assert.is(p.dtype, "float64");
      });
      assert.ok(Math.abs(r.novelty - n) / n < 1e-4, `${kind} row ${j}: n ${r.novelty} vs ${n}`);
      assert.ok(Math.abs(r.loss - loss.dataSync()[0]) < 1e-5, `${kind} row ${j}: loss ${r.loss} vs ${loss.dataSync()[0]}`);
    });
  });
}

S("recording changes no training number, and a resumed run writes the uninterrupted run's record", async () => {
  const plain = await createModel("glow", CFG.glow, T.cpu, 1);
  await train(plain, data, base({ steps: 5, checkpointPath: `${tmp}/plain.ckpt.safetensors` }));
  const straight = await recordRun("glow", "straight", 5);
  plain.parameters().forEach((p, i) => assert.equal([...straight.model.parameters()[i].dataSync()], [...p.dataSync()], `parameter ${p.name} differs with recording`));
  const first = await recordRun("glow", "part", 2);
  const resumed = await recordRun("glow", "part", 5, first.ckpt.replace("part", "part"));
  assert.is(Deno.readTextFileSync(resumed.path).replaceAll(`${tmp}/part.safetensors`, "W"), Deno.readTextFileSync(straight.path).replaceAll(`${tmp}/straight.safetensors`, "W"));
  // The window: 96 images in batches of 16 is 6 steps; 5 steps record 5 x 8 rows.
  assert.is((await readNoveltyRecord(straight.path)).rows.length, 40);
  // Every other step: steps 0, 2, 4 of the 6-step window.
  const sparse = await recordRun("glow", "sparse", 6, undefined, 1000, 2);
  assert.equal([...new Set((await readNoveltyRecord(sparse.path)).rows.map((r) => r.step))], [0, 2, 4]);
});

S("a record that is not the checkpoint's is refused before work, naming the option and file", async () => {
  const cfg = (await createModel("glow", CFG.glow, T.cpu)).config;
  const common = { force: false, kind: "glow", config: cfg, data: "mnist", seed: 3, batch: 16, optimizer: "adam", trainN: data.n, weights: `${tmp}/w.safetensors`, others: [], perBatch: 8, every: 1 };
  const run = await recordRun("glow", "ref", 3);
  const refused = async (over: Record<string, unknown>, re: RegExp) => {
    try {
      await planNoveltyRecord({ ...common, path: run.path, resumeStep: 3, ...over });
    } catch (e) {
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable(`accepted ${JSON.stringify(over)}`);
  };
  await refused({ resumeStep: 0 }, /^train: --record-novelty '.*ref\.csv': exists; a new run records into a new file/);
  await refused({ resumeStep: 4 }, /lacks the rows of step 3 \(it holds 0, expected 8/);
  await refused({ seed: 4 }, /other settings than the checkpoint's \(seed: 3 vs 4\)/);
  await refused({ every: 2 }, /other settings than the checkpoint's \(every: 1 vs 2\)/);
  await refused({ optimizer: "adamax" }, /needs --optimizer adam/);
  await refused({ kind: "diffusion" }, /eps-loss/);
  await refused({ path: `${tmp}/none.csv` }, /no such file; resuming at step 3, inside the first epoch/);
  await refused({ others: [run.path] }, /is also one of this run's other files/);
  // The record's rows of steps at or after the checkpoint are dropped: resuming at step 2 keeps steps 0-1.
  const plan = await planNoveltyRecord({ ...common, path: run.path, resumeStep: 2 });
  assert.equal([...new Set(plan.rows.map((r) => r.step))], [0, 1]);
});

/** Two products with square weights (so orientation matters): y = x A, then z = y B^T, with a bias. */
class TwoProducts extends Module {
  readonly A: T.Tensor;
  readonly B: T.Tensor;
  readonly c: T.Tensor;
  constructor(o: Init) {
    super();
    this.A = this.param("A", T.randn(o.gen, [3, 3], { backend: o.backend, dtype: o.dtype }));
    this.B = this.param("B", T.randn(o.gen, [3, 3], { backend: o.backend, dtype: o.dtype }));
    this.c = this.param("c", T.randn(o.gen, [3], { backend: o.backend, dtype: o.dtype }));
  }
  forward(x: T.Tensor): T.Tensor {
    const z = T.mm(T.tanh(T.mm(x, this.A)), this.B, false, true);
    return T.sum(T.square(T.add(z, T.reshape(this.c, [1, 3]))), 1);
  }
}

S("weighted per-group norms of the Gram form (y = a W and y = a W^T, 1 and 2 rows per group) equal sum w g^2 of the materialised gradients", () => {
  const f64 = { backend: T.cpu, dtype: "float64" as const };
  for (const R of [1, 2]) {
    const m = new TwoProducts({ ...f64, gen: new T.Generator(5) }), G = 3, x = T.randn(new T.Generator(6), [G * R, 3], f64);
    const params = m.parameters(), weights = params.map((p, i) => T.rand(new T.Generator(20 + i), [...p.shape], { ...f64, low: 0.5, high: 2 }));
    const dense = perGroupGradients(perGroupPass(m, { groups: G }, [x], (xg) => m.forward(xg!)), params);
    const parts = perGroupGradientParts(perGroupPass(m, { groups: G, normsOnly: true }, [x], (xg) => m.forward(xg!)), params);
    assert.ok(parts.filter((p) => "a" in p).length === 2, "A and B are Gram sites");
    params.forEach((p, l) => {
      const got = groupSquaredNorm(parts[l], G, weights[l]).dataSync(), g = dense[l].dataSync(), w = weights[l].dataSync(), P = p.size;
      for (let j = 0; j < G; j++) {
        let want = 0;
        for (let i = 0; i < P; i++) want += w[i] * g[j * P + i] ** 2;
        assert.ok(Math.abs(got[j] - want) <= 1e-12 * Math.max(1, want), `R=${R} ${p.name} group ${j}: ${got[j]} vs ${want}`);
      }
    });
  }
});

S("the record's analysis: relative novelty subtracts the batch's median; correlations, strips and scale as computed directly", () => {
  const g = new T.Generator(12), L = 2;
  const rows = Array.from({ length: 40 }, (_, i) => {
    const step = 16 * Math.floor(i / 10), novelty = Math.exp(g.normal() + step / 8);
    return { step, index: (i * 7) % data.n, label: i % 3, loss: 3 + g.normal(), novelty, logNovelty: new Float64Array(L), logF: Float64Array.from({ length: L }, () => g.normal()) };
  });
  const rec: NoveltyRecord = { header: { format: "fimscope-novelty-1", kind: "vae", config: {}, data: "mnist", seed: 0, batch: 10, perBatch: 10, every: 16, window: 64, optimizer: "adam", beta2: 0.999, eps: 1e-16, loss: "bits/dim", weights: "-", layers: ["a", "b"] }, rows };
  const rel = withinStep(rec, (i) => Math.log(rows[i].novelty));
  for (let s = 0; s < 4; s++) {
    const v = rows.slice(10 * s, 10 * s + 10).map((r) => Math.log(r.novelty)).sort((a, b) => a - b), med = (v[4] + v[5]) / 2;
    rows.slice(10 * s, 10 * s + 10).forEach((r, j) => assert.ok(Math.abs(rel[10 * s + j] - (Math.log(r.novelty) - med)) < 1e-12));
  }
  const fin = rows.map((r) => r.loss + g.normal());
  const an = analyseNovelty(rec, fin, { reps: 50 });
  assert.ok(Math.abs(an.correlations[0].spearman.value - spearman(rows.map((r) => Math.log(r.novelty)), fin)) < 1e-12);
  assert.ok(Math.abs(an.correlations[1].spearman.value - spearman(rel, fin)) < 1e-12);
  assert.equal(an.perClass.map((c) => c.n), [14, 13, 13]);
  const strips = noveltyStrips(rec, rel, data, 3);
  const class0 = rows.map((r, i) => ({ r, i })).filter((x) => x.r.label === 0).sort((a, b) => rel[b.i] - rel[a.i]);
  assert.equal(strips.picks[0].most, class0.slice(0, 3).map((x) => x.r.index));
  assert.equal(strips.picks[0].least, class0.slice(-3).reverse().map((x) => x.r.index));
  const sc = noveltyScale(rec, 5, [0, 16, 64]);
  assert.equal(sc.map((x) => x.images), [10, 30]);
  assert.ok(Math.abs(sc[0].mean - rows.slice(0, 10).reduce((t, r) => t + r.novelty / 50, 0) / 10) < 1e-12);
});

S.run();
