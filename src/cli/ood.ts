// ood: the main job. For each shipped model trained on FashionMNIST, compute layer-wise gradient
// features for a fit set, an in-distribution evaluation set and OOD sets (MNIST and synthetic), for
// groups of B = 1 and 5, score them with the method and its baselines, print one table, write a report.
//
//   npm run ood -- [--model weights/vae-fashion.safetensors,...] [--data fashion|mnist] [--ood mnist,noise,constant,vflip,invert]
//                  [--B 1,5] [--fit 500] [--eval 500] [--batch 64] [--backend auto] [--out reports/ood] [--loop]
//                  [--fim] [--fim-lambda 1] [--saliency 4]
// --data and --ood also take image files: a folder of PNGs, an .npy of uint8 [N,H,W] or [N,C,H,W], an
// IDX *-ubyte file, CIFAR-10 binary (all of a file's images; --data's are split in halves as above).
// --fim adds the full-FIM method (columns gradient-fim and gradient-fim-block, src/ood/woodbury.ts):
// a second gradient pass that keeps the fit set's per-input gradients; --fim-lambda scales its lambda.
// --saliency k: at B=1, the k inputs of each set that the diagonal Gaussian flags most strongly, with
// the gradient of the score with respect to their pixels (double backprop) as an overlay in
// saliency-<model>-B1.png (rows: in-distribution evaluation, then each OOD set); 0 skips it.
import "./errors.ts";
import { parseArgs } from "node:util";
import * as T from "../autograd/index.ts";
import { type ImageSet, subset } from "../data/dataset.ts";
import { conformShape, isBuiltinSet, loadNamedSet, setLabel } from "../data/image_files.ts";
import { constantImages, flipVertical, invert, uniformNoise } from "../data/synthetic.ts";
import { readCheckpoint } from "../io/safetensors.ts";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { modelImageShape } from "../ood/detector.ts";
import { noiseFor } from "../ood/features.ts";
import { evaluateSets, setFeatures, type Evaluation, type SetFeatures } from "../ood/pipeline.ts";
import { tableText, writeReport } from "../ood/report.ts";
import { addFimMethods } from "../ood/fim_method.ts";
import { flaggedSaliency, saliencyPng } from "../ood/saliency.ts";
import { progressBar } from "./progress.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    data: { type: "string" },
    ood: { type: "string", default: "mnist,noise,constant,vflip,invert" },
    B: { type: "string", default: "1,5" },
    fit: { type: "string", default: "500" },
    eval: { type: "string", default: "500" },
    batch: { type: "string", default: "64" },
    backend: { type: "string", default: "auto" },
    out: { type: "string", default: "reports/ood" },
    seed: { type: "string", default: "0" },
    loop: { type: "boolean", default: false },
    fim: { type: "boolean", default: false },
    "fim-lambda": { type: "string", default: "1" },
    saliency: { type: "string", default: "4" },
  },
});

const t0 = performance.now();
const timings: [string, number][] = [];
let tMark = t0;
const mark = (what: string) => {
  const now = performance.now();
  timings.push([what, (now - tMark) / 1000]);
  tMark = now;
};

const defaults = ["weights/vae-fashion.safetensors", "weights/glow-fashion.safetensors"];
const modelPaths = a.model ? a.model.split(",") : defaults.filter((p) => { try { Deno.statSync(p); return true; } catch { return false; } });
if (!modelPaths.length) throw new Error(`ood: no model weights found (looked for ${defaults.join(", ")}); pass --model`);
const Bs = a.B!.split(",").map(Number);
const nFit = Number(a.fit), nEval = Number(a.eval), seed = Number(a.seed), fimLambda = Number(a["fim-lambda"]);
const nSaliency = Number(a.saliency);
if (!Number.isInteger(nSaliency) || nSaliency < 0) throw new Error(`--saliency ${JSON.stringify(a.saliency)}: expected a whole number of inputs per set (0 skips the overlays)`);
const saliencyPngs: [string, Uint8Array][] = [];
if (!(fimLambda > 0)) throw new Error(`--fim-lambda ${JSON.stringify(a["fim-lambda"])}: expected a positive number`);
const main = ["likelihood", "typicality", "gradient", ...(a.fim ? ["gradient-fim", "gradient-fim-block"] : [])];
const backend = await selectBackend(a.backend as BackendChoice);
console.log(`backend: ${backend.name}${"description" in backend ? ` (${(backend as { description: string }).description})` : ""}`);

const exists = (p: string) => { try { Deno.statSync(p); return true; } catch { return false; } };

/** The fixed protocol: a seeded permutation of the in-distribution test split; fit on its first half, evaluate on the second. */
function sets(inName: string, shape: [number, number, number]): { fit: ImageSet; inEval: ImageSet; ood: ImageSet[] } {
  // A packaged set's test split, or all the images of a file or folder (checked against the model's shape).
  const load = (spec: string, what: string) => conformShape(loadNamedSet(spec, "test").set, shape, `${what} ${spec}`);
  const test = load(inName, "--data");
  const perm = new T.Generator(1000 + seed).permutation(test.n);
  const half = Math.floor(test.n / 2);
  if (nFit > half || nEval > test.n - half) throw new Error(`ood: --fit ${nFit} / --eval ${nEval} exceed the halves of the ${test.n}-image ${isBuiltinSet(inName) ? "test split" : `set ${inName}`}`);
  const fit = subset(test, perm.subarray(0, nFit), `${setLabel(inName)}-fit`);
  const inEval = subset(test, perm.subarray(half, half + nEval), setLabel(inName));
  const ood: ImageSet[] = [];
  for (const o of a.ood!.split(",")) {
    const g = new T.Generator(2000 + seed);
    if (o === "noise") ood.push(uniformNoise(inEval, nEval, g));
    else if (o === "constant") ood.push(constantImages(inEval, nEval, g));
    else if (o === "vflip") ood.push({ ...flipVertical(inEval), name: "vflip" });
    else if (o === "invert") ood.push({ ...invert(inEval), name: "invert" });
    else if (isBuiltinSet(o) || exists(o)) {
      const other = load(o, "--ood");
      ood.push(subset(other, new T.Generator(3000 + seed).permutation(other.n).subarray(0, Math.min(nEval, other.n)), setLabel(o)));
    }
    else throw new Error(`ood: unknown OOD set '${o}' (mnist, fashion, noise, constant, vflip, invert, or a path to image files)`);
  }
  return { fit, inEval, ood };
}

const evals: Evaluation[] = [];
for (const path of modelPaths) {
  const meta = readCheckpoint(path).metadata;
  // In-distribution data: what the model was trained on (its metadata), unless --data says otherwise.
  const inName = a.data ?? meta.data ?? "fashion";
  if (a.data && meta.data && a.data !== meta.data) console.log(`note: ${path} was trained on ${meta.data}; --data ${a.data} makes ${a.data} the in-distribution set`);
  const model = await loadModel(path, backend);
  const label = meta.data && meta.data !== inName ? `${meta.kind}-${setLabel(meta.data)}-in-${setLabel(inName)}` : `${meta.kind}-${setLabel(inName)}`;
  const s = sets(inName, modelImageShape(model));
  mark(`load ${label} and data`);
  for (const B of Bs) {
    const all = [s.fit, s.inEval, ...s.ood];
    const total = all.reduce((n, x) => n + x.n - (x.n % B), 0);
    const bar = progressBar(`${label} B=${B}`, "{rate} inputs/s");
    bar.start(total, 0, { rate: "-" });
    const tb = performance.now();
    let done = 0;
    const feats: (SetFeatures & { names: string[] })[] = [];
    for (const set of all) {
      feats.push(await setFeatures(model, set, {
        groupSize: B, batch: Number(a.batch), loop: a.loop, seed,
        onProgress: (k) => { done += k; bar.update(done, { rate: (done / ((performance.now() - tb) / 1000)).toFixed(0) }); },
      }));
    }
    bar.stop();
    mark(`features ${label} B=${B} (${total} inputs)`);
    const ev = evaluateSets(label, B, feats[0].names, feats[0], feats[1], feats.slice(2), seed);
    evals.push(ev);
    mark(`fit and score ${label} B=${B}`);
    if (B === 1 && nSaliency > 0) {
      const shown = [s.inEval, ...s.ood];
      const rows = [];
      for (const [k, set] of shown.entries()) rows.push(await flaggedSaliency(model, ev.scorers.diag, set, feats[1 + k].logf, nSaliency, (i) => noiseFor(model, 1, new T.Generator(7000 + i))));
      saliencyPngs.push([`saliency-${label}-B1.png`, saliencyPng(rows, shown[0].c, shown[0].h, shown[0].w)]);
      mark(`saliency ${label} (${nSaliency} inputs per set, double backprop)`);
    }
    if (a.fim) {
      const fim = await addFimMethods(ev, model, s, { groupSize: B, batch: Number(a.batch), seed, lambdaScale: fimLambda });
      console.log(`full FIM ${label} B=${B}: ${fim.n} fit gradients x ${fim.parameters} parameters, lambda ${fim.lambda.toExponential(3)}, ${(fim.floats * 4 / 2 ** 20).toFixed(0)} MiB held (${fim.floats} floats)`);
      fim.dispose();
      mark(`full FIM ${label} B=${B} (gradients, fit and score)`);
    }
  }
}

console.log("\nAUROC, in-distribution test (second half) vs each OOD set; density fitted on the first half:\n");
console.log(tableText(evals, main));
const files = writeReport(a.out!, evals, { models: modelPaths, fit: nFit, eval: nEval, B: Bs, backend: backend.name, seed, loop: a.loop, fim: a.fim ? { lambdaScale: fimLambda } : false }, main);
for (const [name, png] of saliencyPngs) {
  Deno.writeFileSync(`${a.out}/${name}`, png);
  files.push(`${a.out}/${name}`);
}
mark("report");
console.log(`\nreport: ${a.out}/ (${files.length} files: table.md, table.json, features-*.csv, roc-*.svg, hist-*.svg, corr-*.svg, layers-auroc-*.svg, saliency-*.png)`);
console.log(`elapsed ${((performance.now() - t0) / 1000).toFixed(1)} s:`);
for (const [w, s] of timings) console.log(`  ${s.toFixed(1).padStart(7)} s  ${w}`);
Deno.exit(0);
