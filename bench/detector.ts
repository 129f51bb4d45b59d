// The detector's costs, same run, interleaved rounds (medians), on the Glow:
//  1. `npm run score`'s work on a folder of PNGs (decode, batched features, scoring with a saved
//     detector) against the batched features alone on the same images;
//  2. the full-FIM (Woodbury) score of a batch against the batched features of that batch: the
//     per-group gradient pass, S g and the N x N solve, with N fit gradients.
//   deno run -A bench/detector.ts [--model weights/glow-fashion.safetensors] [--images 1000] [--N 1000] [--rounds 3] [--only score|fim] [--old <checkout>]
// --old: part 2 also for another checkout of the code (e.g. `git archive <commit> src shaders | tar -x -C /tmp/old`)
// with the same feature API (explicit objectives: src/ood/loop.ts).
import process from "node:process";
import "../src/cli/errors.ts";
import { BACKEND, choice, inFile, int, parseOptions, text } from "../src/io/options.ts";
import { oldCheckout } from "./old_checkout.ts";
import { type ImageSet, range, subset } from "../src/data/dataset.ts";
const take = (s: ImageSet, n: number) => subset(s, range(0, Math.min(n, s.n)));
import { loadImageFiles, writePngFolder } from "../src/data/image_files.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { Detector, fitDetector } from "../src/ood/detector.ts";
import { featuresBatched } from "../src/ood/features.ts";
import { inputNoise, setFeatures } from "../src/ood/loop.ts";

const a = parseOptions("detector", {
  model: inFile().default("weights/glow-fashion.safetensors"), images: int({ min: 1, max: 10000 }).default(1000),
  N: int({ min: 2, max: 60000 }).default(1000), rounds: int({ min: 1, max: 1000 }).default(3), batch: int({ min: 1, max: 4096 }).default(64),
  backend: BACKEND, only: choice(["score", "fim"] as const), old: text(),
});
const oldRoot = a.old === undefined ? null : oldCheckout("detector", a.old, "src/ood/loop.ts");
const backend = await selectBackend(a.backend, { onNotice: (m: string) => console.error(`notice: ${m}`) });
const nImages = a.images, N = a.N, rounds = a.rounds, batch = a.batch;
const model = await loadModel(a.model!, backend);
const objective = model.objective();
console.log(`backend ${backend.name}${"description" in backend ? ` (${(backend as { description: string }).description})` : ""}; ${a.model}, ${model.numParameters()} parameters; medians of ${rounds} interleaved rounds`);
const median = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
const time = async (f: () => Promise<unknown>) => { const t = performance.now(); await f(); return performance.now() - t; };

// A detector fitted on 200 training images (its fit cost is not what is measured here).
const train = loadDataset("fashion", "train"), test = loadDataset("fashion", "test");
const fitF = await setFeatures(model, objective, take(train, 200), { groupSize: 1, batch });
const det = new Detector(fitDetector({
  model: { path: a.model!, sha256: "0".repeat(64), kind: model.kind, image: [...model.imageShape], objective: objective.name }, groupSize: 1, seed: 0,
  names: fitF.names, sizes: model.namedParameters().map(([, p]) => p.size), logf: fitF.logf, nll: fitF.nll, data: "fashion",
}));

// 1. score a folder vs the batched features alone.
if (a.only !== "fim") {
const dir = Deno.makeTempDirSync();
writePngFolder(dir, take(test, nImages));
const samples = { score: [] as number[], decode: [] as number[], setFeatures: [] as number[], scoring: [] as number[], features: [] as number[] };
const setOnce = loadImageFiles(dir).set;
for (let r = 0; r < rounds; r++) {
  samples.score.push(await time(async () => {
    const t0 = performance.now();
    const files = loadImageFiles(dir);
    samples.decode.push(performance.now() - t0);
    const t1 = performance.now();
    const f = await setFeatures(model, objective, files.set, { groupSize: 1, batch });
    const t2 = performance.now();
    f.logf.forEach((row, i) => det.scoreRow(row, f.nll[i]));
    samples.setFeatures.push(t2 - t1);
    samples.scoring.push(performance.now() - t2);
  }));
  samples.features.push(await time(async () => {
    for (let i = 0; i < setOnce.n; i += batch) {
      const idx = range(i, Math.min(setOnce.n, i + batch)), x = model.input(setOnce, idx), noise = inputNoise(model, objective, setOnce, idx);
      await featuresBatched(model, objective, x, 1, noise);
      x.dispose();
      noise?.dispose();
    }
  }));
}
const [ms, md, mf] = [median(samples.score), median(samples.decode), median(samples.features)];
console.log(`score a folder of ${nImages} PNGs: ${ms.toFixed(0)} ms (${(nImages / ms * 1000).toFixed(0)} inputs/s; PNG decode ${md.toFixed(0)} ms, features ${median(samples.setFeatures).toFixed(0)} ms, scoring ${median(samples.scoring).toFixed(0)} ms); batched features alone ${mf.toFixed(0)} ms (${(nImages / mf * 1000).toFixed(0)} inputs/s); ratio ${(ms / mf).toFixed(2)}`);
Deno.removeSync(dir, { recursive: true });
}

// 2. the Woodbury score with N fit gradients vs the features of one batch; with --old, the same for
// another checkout's code (its own modules and backend, loaded side by side), interleaved per round.
if (a.only === "score") Deno.exit(0);
// deno-lint-ignore no-explicit-any
type Any = any;
const here = new URL("../", import.meta.url).pathname;
const roots: [string, string][] = [["new", `${here}src`], ...(oldRoot ? [["old", `${oldRoot}/src`] as [string, string]] : [])];
interface Side { name: string; T: Any; model: Any; objective: Any; fim: Any; x: Any; groupGradients: Any; featuresBatched: Any }
const sides: Side[] = [];
for (const [name, root] of roots) {
  const sel = await import(`${root}/kernels/select.ts`), reg = await import(`${root}/models/registry.ts`);
  const wb = await import(`${root}/ood/woodbury.ts`), lp = await import(`${root}/ood/loop.ts`), ft = await import(`${root}/ood/features.ts`);
  const TT = await import(`${root}/autograd/index.ts`), ds = await import(`${root}/data/dataset.ts`);
  const be = name === "new" ? backend : await sel.selectBackend(a.backend);
  const m = name === "new" ? model : await reg.loadModel(a.model!, be);
  const tg = performance.now();
  const obj = m.objective();
  const fitG = await lp.setGradients(m, obj, take(train, N), { groupSize: 1, batch });
  const gradSeconds = (performance.now() - tg) / 1000;
  const tfit = performance.now();
  const fim = await wb.WoodburyFim.fit(fitG); // consumes fitG
  console.log(`${name}: ${N} fit gradients in ${gradSeconds.toFixed(1)} s, Woodbury fit (Grams, Cholesky, factors) ${((performance.now() - tfit) / 1000).toFixed(1)} s; ${fim.floats} floats held (${(fim.floats * 4 / 2 ** 20).toFixed(0)} MiB at float32; S alone ${N * fim.parameters} = P x N)`);
  sides.push({ name, T: TT, model: m, objective: obj, fim, x: m.input(test, ds.range(0, batch)), groupGradients: ft.groupGradients, featuresBatched: ft.featuresBatched });
}
// Wall time and process CPU time (every thread: the wasm workers too), which other load on the
// machine disturbs far less than wall time.
const s2: Record<string, number[]> = {}, cpu2: Record<string, number[]> = {};
const push = async (k: string, f: () => Promise<unknown>) => {
  const c0 = process.cpuUsage(), t0 = performance.now();
  await f();
  (s2[k] ??= []).push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  (cpu2[k] ??= []).push((c.user + c.system) / 1000);
};
for (let r = 0; r < rounds; r++) {
  for (const sd of r % 2 ? [...sides].reverse() : sides) {
    await push(`${sd.name} features`, () => sd.featuresBatched(sd.model, sd.objective, sd.x, 1));
    let g: Any[] = [];
    await push(`${sd.name} grads`, async () => { g = sd.groupGradients(sd.model, sd.objective, sd.x, 1); await g[0].data(); });
    await push(`${sd.name} score`, () => sd.fim.score(g));
    if (sd.name === "new") await push(`${sd.name} full`, () => sd.fim.score(g, { block: false }));
    g.forEach((t) => t.dispose());
  }
}
for (const sd of sides) {
  const [f2, g2, q2] = [median(s2[`${sd.name} features`]), median(s2[`${sd.name} grads`]), median(s2[`${sd.name} score`])];
  const full = s2[`${sd.name} full`] ? median(s2[`${sd.name} full`]) : NaN;
  console.log(`${sd.name}: batch of ${batch}: batched features ${f2.toFixed(0)} ms; full per-group gradients ${g2.toFixed(0)} ms; Woodbury score (full + block) ${q2.toFixed(0)} ms${Number.isNaN(full) ? "" : `, full alone ${full.toFixed(0)} ms`}; score / features ${(q2 / f2).toFixed(2)}${Number.isNaN(full) ? "" : ` (full alone ${(full / f2).toFixed(2)})`}; FIM total (gradients + score) / features ${((g2 + q2) / f2).toFixed(2)}`);
  const c = (k: string) => cpu2[`${sd.name} ${k}`] ? median(cpu2[`${sd.name} ${k}`]) : NaN, mn = (k: string) => Math.min(...s2[`${sd.name} ${k}`]);
  console.log(`  CPU time (median, ms): features ${c("features").toFixed(0)}, gradients ${c("grads").toFixed(0)}, score ${c("score").toFixed(0)}${Number.isNaN(c("full")) ? "" : `, full alone ${c("full").toFixed(0)}`}; score / features ${(c("score") / c("features")).toFixed(2)}${Number.isNaN(c("full")) ? "" : ` (full alone ${(c("full") / c("features")).toFixed(2)})`}`);
  console.log(`  fastest round (ms): features ${mn("features").toFixed(0)}, gradients ${mn("grads").toFixed(0)}, score ${mn("score").toFixed(0)}${s2[`${sd.name} full`] ? `, full alone ${mn("full").toFixed(0)}` : ""}`);
  console.log(`  rounds (ms): ${Object.entries(s2).filter(([k]) => k.startsWith(sd.name)).map(([k, v]) => `${k.slice(sd.name.length + 1)} ${v.map((t) => t.toFixed(0)).join("/")}`).join("; ")}`);
  sd.x.dispose();
  sd.fim.dispose();
}
Deno.exit(0);
