// The detector's costs, same run, interleaved rounds (medians), on the Glow:
//  1. `npm run score`'s work on a folder of PNGs (decode, batched features, scoring with a saved
//     detector) against the batched features alone on the same images;
//  2. the full-FIM (Woodbury) score of a batch against the batched features of that batch: the
//     per-group gradient pass, S g and the N x N solve, with N fit gradients.
//   deno run -A bench/detector.ts [--model weights/glow-fashion.safetensors] [--images 1000] [--N 1000] [--rounds 3] [--only score|fim]
import "../src/cli/errors.ts";
import { BACKEND, choice, inFile, int, parseOptions } from "../src/cli/args.ts";
import type * as T from "../src/autograd/index.ts";
import { type ImageSet, range, subset } from "../src/data/dataset.ts";
const take = (s: ImageSet, n: number) => subset(s, range(0, Math.min(n, s.n)));
import { loadImageFiles, writePngFolder } from "../src/data/image_files.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { Detector, fitDetector } from "../src/ood/detector.ts";
import { featuresBatched } from "../src/ood/features.ts";
import { setGradients } from "../src/ood/fim_method.ts";
import { setFeatures } from "../src/ood/pipeline.ts";
import { groupGradients, WoodburyFim } from "../src/ood/woodbury.ts";

const a = parseOptions("detector", {
  model: inFile().default("weights/glow-fashion.safetensors"), images: int({ min: 1, max: 10000 }).default(1000),
  N: int({ min: 2, max: 60000 }).default(1000), rounds: int({ min: 1, max: 1000 }).default(3), batch: int({ min: 1, max: 4096 }).default(64),
  backend: BACKEND, only: choice(["score", "fim"] as const),
});
const backend = await selectBackend(a.backend, { onNotice: (m: string) => console.error(`notice: ${m}`) });
const nImages = a.images, N = a.N, rounds = a.rounds, batch = a.batch;
const model = await loadModel(a.model!, backend);
console.log(`backend ${backend.name}${"description" in backend ? ` (${(backend as { description: string }).description})` : ""}; ${a.model}, ${model.numParameters()} parameters; medians of ${rounds} interleaved rounds`);
const median = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
const time = async (f: () => Promise<unknown>) => { const t = performance.now(); await f(); return performance.now() - t; };

// A detector fitted on 200 training images (its fit cost is not what is measured here).
const train = loadDataset("fashion", "train"), test = loadDataset("fashion", "test");
const fitF = await setFeatures(model, take(train, 200), { groupSize: 1, batch });
const det = new Detector(fitDetector({ model: { path: a.model!, sha256: "0".repeat(64), kind: model.kind, image: [...model.imageShape] }, groupSize: 1, names: fitF.names, logf: fitF.logf, nll: fitF.nll, data: "fashion" }));

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
    const f = await setFeatures(model, files.set, { groupSize: 1, batch });
    const t2 = performance.now();
    f.logf.forEach((row, i) => det.scoreRow(row, f.nll[i]));
    samples.setFeatures.push(t2 - t1);
    samples.scoring.push(performance.now() - t2);
  }));
  samples.features.push(await time(async () => {
    for (let i = 0; i < setOnce.n; i += batch) {
      const x = model.input(setOnce, range(i, Math.min(setOnce.n, i + batch)));
      await featuresBatched(model, x, 1);
      x.dispose();
    }
  }));
}
const [ms, md, mf] = [median(samples.score), median(samples.decode), median(samples.features)];
console.log(`score a folder of ${nImages} PNGs: ${ms.toFixed(0)} ms (${(nImages / ms * 1000).toFixed(0)} inputs/s; PNG decode ${md.toFixed(0)} ms, features ${median(samples.setFeatures).toFixed(0)} ms, scoring ${median(samples.scoring).toFixed(0)} ms); batched features alone ${mf.toFixed(0)} ms (${(nImages / mf * 1000).toFixed(0)} inputs/s); ratio ${(ms / mf).toFixed(2)}`);
Deno.removeSync(dir, { recursive: true });
}

// 2. the Woodbury score with N fit gradients vs the features of one batch.
if (a.only === "score") Deno.exit(0);
const tg = performance.now();
const fitG = await setGradients(model, take(train, N), { groupSize: 1, batch });
const gradSeconds = (performance.now() - tg) / 1000;
const tfit = performance.now();
const fim = await WoodburyFim.fit(fitG); // consumes fitG
console.log(`FIM: ${N} fit gradients in ${gradSeconds.toFixed(1)} s, Woodbury fit (Gram, Cholesky, factors) ${((performance.now() - tfit) / 1000).toFixed(1)} s; ${fim.floats} floats held (${(fim.floats * 4 / 2 ** 20).toFixed(0)} MiB at float32; S alone ${N * fim.parameters} = P x N)`);
const x = model.input(test, range(0, batch));
const s2 = { features: [] as number[], grads: [] as number[], score: [] as number[] };
for (let r = 0; r < rounds; r++) {
  s2.features.push(await time(() => featuresBatched(model, x, 1)));
  let g: T.Tensor[] = [];
  s2.grads.push(await time(async () => { g = groupGradients(model, x, 1); await g[0].data(); }));
  s2.score.push(await time(() => fim.score(g)));
  g.forEach((t) => t.dispose());
}
const [f2, g2, q2] = [median(s2.features), median(s2.grads), median(s2.score)];
console.log(`batch of ${batch}: batched features ${f2.toFixed(0)} ms; full per-group gradients ${g2.toFixed(0)} ms; Woodbury score (full + block) of those gradients ${q2.toFixed(0)} ms; FIM total / features ${((g2 + q2) / f2).toFixed(2)}`);
x.dispose();
fim.dispose();
Deno.exit(0);
