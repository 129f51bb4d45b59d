// ood: the main job. For each shipped model trained on FashionMNIST, compute layer-wise gradient
// features for a fit set, an in-distribution evaluation set and OOD sets (MNIST and synthetic), for
// groups of B = 1 and 5, score them with the method and its baselines, print one table, write a report.
//
//   npm run ood -- [--model weights/vae-fashion.safetensors,...] [--data fashion|mnist] [--ood mnist,noise,constant,vflip,invert]
//                  [--B 1,5] [--fit 500] [--eval 500] [--batch 64] [--backend auto|cpu|webgpu|wasm] [--out reports/ood]
//                  [--seed 0] [--loop] [--force] [--fim] [--fim-lambda 1] [--saliency 4]
//                  [--diffusion-score l1|l2|elbo|elbo-nolast] [--diffusion-t 1] [--diffusion-fit 200] [--diffusion-eval 200]
// A diffusion model's feature is the gradient of its eps-loss at step t (the paper's: L1 at t = 1)
// or of its bound (elbo-nolast: without its t = T term, whose gradient dominates the bound's); its
// likelihood and typicality baselines use that same quantity. It has its own
// fit/eval counts (a U-Net pass per input costs ~10x the VAE's); with the bound, batches of at
// most 4 inputs (each is 11 U-Net passes; 8 exceed the wasm backend's 4 GiB memory).
// --ood defaults to the other built-in dataset and the synthetic sets; the in-distribution set is
// refused as an OOD set. Report files are named after the model files; a reused --out folder is
// cleared of the previous report's files (listed in its .fimscope-report.json), nothing else.
// --data and --ood also take image files: a folder of PNGs, an .npy of uint8 [N,H,W] or [N,C,H,W], an
// IDX *-ubyte file, CIFAR-10 binary, or the paper's sets in their official files as FORMAT:PATH
// (svhn:, gtsrb:, gtsrb-roi:, celeba:, imagenet32:, cifar10:, omniglot:; docs/datasets.md); all of
// a file's images (--data's are split in halves as above).
// --fim adds the full-FIM method (columns gradient-fim and gradient-fim-block, src/ood/woodbury.ts):
// a second gradient pass that keeps the fit set's per-input gradients; --fim-lambda scales its lambda.
// --saliency k: at B=1, the k inputs of each set that the diagonal Gaussian flags most strongly, with
// the gradient of the score with respect to their pixels (double backprop) as an overlay in
// saliency-<model>-B1.png (rows: in-distribution evaluation, then each OOD set); 0 skips it.
import { notice } from "./errors.ts";
import { BACKEND, choice, flag, inFiles, int, ints, nameOrPath, num, Opt, outDir, parseOptions, pathOrPrefixedExists, shippedDefault, usageError, workStarts } from "../io/options.ts";
import { conformShape, type FileSet, isBuiltinSet, loadImageFiles, setLabel } from "../data/image_files.ts";
import { noiseFor } from "../ood/features.ts";
import { addFimMethods } from "../ood/fim_method.ts";
import { flaggedSaliency, saliencyPng } from "../ood/saliency.ts";
import * as T from "../autograd/index.ts";
import { type ImageSet, subset } from "../data/dataset.ts";
import { DATASETS, imageShapeOf, loadDataset, splitSize } from "../data/mnist.ts";
import { constantImages, flipVertical, invert, uniformNoise } from "../data/synthetic.ts";
import { protectedReason } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkImageShape, checkModelFile, loadModel, modelImageShape, type ModelFile } from "../models/registry.ts";
import { type Diffusion, DIFFUSION_OOD_COUNT, parseDiffusionScore, resolveConfig, scoreLabel } from "../models/diffusion.ts";
import { evaluateSets, setFeatures, type Evaluation, type SetFeatures } from "../ood/pipeline.ts";
import { tableText, writeReport } from "../ood/report.ts";
import { progressBar } from "./progress.ts";

const OOD_SETS = ["mnist", "fashion", "noise", "constant", "vflip", "invert"] as const;
const defaults = ["weights/vae-fashion.safetensors", "weights/glow-fashion.safetensors", "weights/diffusion-fashion.safetensors"].map(shippedDefault);
const exists = pathOrPrefixedExists;
/** A comma list of OOD sets: the names above or paths of image files, each once. */
const oodList = () => new Opt<string[]>((raw, c) => {
  const parts = raw.split(",").map((p) => p.trim());
  for (const [i, p] of parts.entries()) {
    if (p === "") throw usageError(c.cmd, "--ood", raw, `empty item in the list (allowed: any of ${OOD_SETS.join(", ")} or paths of image files, separated by commas)`);
    if (parts.indexOf(p) !== i) throw usageError(c.cmd, "--ood", raw, `'${p}' is listed twice (each once)`);
    if (!(OOD_SETS as readonly string[]).includes(p) && !exists(p)) throw usageError(c.cmd, "--ood", raw, `'${p}' is not allowed (any of ${OOD_SETS.join(", ")}, or the path of an image file or folder)`);
  }
  return parts;
});
const a = parseOptions("ood", {
  model: inFiles(),
  data: nameOrPath(DATASETS),
  ood: oodList(),
  B: ints({ min: 1, max: 1000 }).default([1, 5]),
  fit: int({ min: 1, max: 100000 }).default(500),
  eval: int({ min: 1, max: 100000 }).default(500),
  batch: int({ min: 1, max: 4096 }).default(64),
  backend: BACKEND,
  out: outDir().default("reports/ood"),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  loop: flag(),
  force: flag(),
  "diffusion-score": choice(["l1", "l2", "elbo", "elbo-nolast"] as const).default("l1"),
  "diffusion-t": int({ min: 1, max: 100000 }).default(1),
  "diffusion-fit": int({ min: 1, max: 100000 }).default(DIFFUSION_OOD_COUNT),
  "diffusion-eval": int({ min: 1, max: 100000 }).default(DIFFUSION_OOD_COUNT),
  fim: flag(),
  "fim-lambda": num({ gt: 0, max: 1e12 }).default(1),
  saliency: int({ max: 1000 }).default(4),
});
const main = ["likelihood", "typicality", "gradient", ...(a.fim ? ["gradient-fim", "gradient-fim-block"] : [])];

// Image files named by --data or --ood: read once, while checking (a bad file is refused before work).
const fileSets = new Map<string, FileSet>();
function filesOf(spec: string): FileSet {
  if (!fileSets.has(spec)) fileSets.set(spec, loadImageFiles(spec));
  return fileSets.get(spec)!;
}
/** A file set as a model taking `want` sees it (conformShape: grey and equal-channel colour are one), or as read if that cannot be (checkImageShape then refuses it). */
const setFor = (spec: string, want: [number, number, number]): ImageSet => {
  const s = filesOf(spec).set;
  try {
    return conformShape(s, want, spec);
  } catch {
    return s;
  }
};
const shapeOf = (spec: string, want: [number, number, number]): [number, number, number] => {
  if (isBuiltinSet(spec)) return imageShapeOf(spec);
  const s = setFor(spec, want);
  return [s.c, s.h, s.w];
};
const sizeOf = (spec: string) => isBuiltinSet(spec) ? splitSize(spec, "test") : filesOf(spec).set.n;
const dScore = parseDiffusionScore(a["diffusion-score"], String(a["diffusion-t"]));

const t0 = performance.now();
const timings: [string, number][] = [];
let tMark = t0;
const mark = (what: string) => {
  const now = performance.now();
  timings.push([what, (now - tMark) / 1000]);
  tMark = now;
};

const modelPaths = a.model ?? defaults.filter((p) => { try { Deno.statSync(p); return true; } catch { return false; } });
if (!modelPaths.length) throw new Error(`ood: no model weights found (looked for ${defaults.join(", ")}); pass --model`);
const Bs = a.B, seed = a.seed;
const outWhy = a.force ? null : protectedReason(a.out);
if (outWhy) throw usageError("ood", "--out", a.out, `${outWhy}; the report goes to its own folder (e.g. reports/ood), or add --force`);

// Every model file, and every option that depends on it, is checked before any work.
interface Job { path: string; file: ModelFile; inName: string; label: string; oodSets: string[]; nFit: number; nEval: number }
const jobs: Job[] = [];
const seen = new Map<string, string>();
for (const path of modelPaths) {
  const real = Deno.realPathSync(path);
  if (seen.has(real)) throw usageError("ood", "--model", modelPaths.join(","), `${path} and ${seen.get(real)} are the same file (allowed: each model once)`);
  seen.set(real, path);
  const file = await checkModelFile(path);
  const meta = file.decoded.metadata;
  if (meta.data !== undefined && !(DATASETS as readonly string[]).includes(meta.data) && !exists(meta.data) && !a.data) {
    throw new Error(`checkpoint ${path}: __metadata__.data '${meta.data}' is not a built-in dataset (allowed: ${DATASETS.join(", ")}); pass --data`);
  }
  // In-distribution data: what the model was trained on (its metadata), unless --data says otherwise.
  const inName = a.data ?? meta.data ?? "fashion";
  const isDiffusion = file.kind === "diffusion";
  const [nFit, nEval, fitOpt, evalOpt] = isDiffusion ? [a["diffusion-fit"], a["diffusion-eval"], "--diffusion-fit", "--diffusion-eval"] : [a.fit, a.eval, "--fit", "--eval"];
  if (isDiffusion && dScore.kind === "loss" && dScore.t > (file.config.steps as number)) {
    throw usageError("ood", "--diffusion-t", String(dScore.t), `at most ${file.config.steps} (the steps of ${path})`);
  }
  if (isDiffusion && dScore.kind === "elbo" && dScore.dropLast && resolveConfig(file.config).strata < 2) {
    throw usageError("ood", "--diffusion-score", "elbo-nolast", `${path} has ${resolveConfig(file.config).strata} stratum; leaving out the t = T term needs at least 2 (the last one is then t = T alone; allowed: l1, l2, elbo)`);
  }
  const oodSets: string[] = a.ood ?? [DATASETS.find((d) => d !== inName)!, "noise", "constant", "vflip", "invert"];
  if (oodSets.includes(inName)) {
    throw usageError("ood", "--ood", oodSets.join(","), `${inName} is the in-distribution data of ${path}${a.data ? " (--data)" : " (trained on it)"}, so it cannot be an OOD set (allowed: ${OOD_SETS.filter((o) => o !== inName).join(", ")})`);
  }
  const want = modelImageShape(file.kind, file.config);
  checkImageShape(file.kind, file.config, shapeOf(inName, want), inName, `ood: --model ${path}`);
  for (const o of oodSets) if (!(OOD_SETS as readonly string[]).includes(o)) checkImageShape(file.kind, file.config, shapeOf(o, want), o, `ood: --model ${path} (--ood ${o})`);
  const testN = sizeOf(inName), half = Math.floor(testN / 2), what = isBuiltinSet(inName) ? `${inName} test split` : `set ${inName}`;
  if (nFit > half) throw usageError("ood", fitOpt, String(nFit), `at most ${half} (the first half of the ${testN}-image ${what}; the second half is for --eval)`);
  if (nEval > testN - half) throw usageError("ood", evalOpt, String(nEval), `at most ${testN - half} (the second half of the ${testN}-image ${what})`);
  for (const o of oodSets) if (o === "mnist" || o === "fashion") {
    if (nEval > splitSize(o, "test")) throw usageError("ood", evalOpt, String(nEval), `at most ${splitSize(o, "test")} (the ${o} test split, an OOD set)`);
  }
  for (const B of Bs) {
    if (Math.floor(nFit / B) < 2) throw usageError("ood", "--B", Bs.join(","), `group size ${B} leaves ${Math.floor(nFit / B)} fit group(s) of ${fitOpt} ${nFit}; the density needs at least 2 (allowed: B <= ${Math.floor(nFit / 2)})`);
    if (Math.floor(nEval / B) < 1) throw usageError("ood", "--B", Bs.join(","), `group size ${B} is larger than ${evalOpt} ${nEval} (allowed: B <= ${nEval})`);
  }
  // Report names come from the model file's name, so two models of one kind and data stay apart.
  const stem = path.replace(/^.*\//, "").replace(/\.safetensors$/, "").replace(/\.ckpt$/, "").replace(/[^A-Za-z0-9._-]/g, "_");
  let label = meta.data && meta.data !== inName ? `${stem}-in-${setLabel(inName)}` : stem;
  if (isDiffusion) label += `-${scoreLabel(dScore)}`;
  if (jobs.some((j) => j.label === label)) {
    const parent = path.split("/").slice(-2, -1)[0]?.replace(/[^A-Za-z0-9._-]/g, "_");
    if (parent) label = `${parent}-${label}`;
    for (let k = 2; jobs.some((j) => j.label === label); k++) label = `${label.replace(/-\d+$/, "")}-${k}`;
  }
  jobs.push({ path, file, inName, label, oodSets, nFit, nEval });
}

workStarts();
const backend = await selectBackend(a.backend, { onNotice: notice });
console.log(`backend: ${backend.name}${"description" in backend ? ` (${(backend as { description: string }).description})` : ""}`);

/** The fixed protocol: a seeded permutation of the in-distribution test split; fit on its first half, evaluate on the second. */
function sets(inName: string, oodSets: string[], nFit: number, nEval: number, want: [number, number, number]): { fit: ImageSet; inEval: ImageSet; ood: ImageSet[] } {
  // A packaged set's test split, or all the images of a file or folder.
  const test = isBuiltinSet(inName) ? loadDataset(inName, "test", { onNotice: notice }) : setFor(inName, want);
  const perm = new T.Generator(1000 + seed).permutation(test.n);
  const half = Math.floor(test.n / 2);
  const fit = subset(test, perm.subarray(0, nFit), `${setLabel(inName)}-fit`);
  const inEval = subset(test, perm.subarray(half, half + nEval), setLabel(inName));
  const ood: ImageSet[] = [];
  for (const o of oodSets) {
    const g = new T.Generator(2000 + seed);
    if (o === "mnist" || o === "fashion") {
      const other = loadDataset(o, "test", { onNotice: notice });
      ood.push(subset(other, new T.Generator(3000 + seed).permutation(other.n).subarray(0, nEval), o));
    } else if (o === "noise") ood.push(uniformNoise(inEval, nEval, g));
    else if (o === "constant") ood.push(constantImages(inEval, nEval, g));
    else if (o === "vflip") ood.push({ ...flipVertical(inEval), name: "vflip" });
    else if (o === "invert") ood.push({ ...invert(inEval), name: "invert" });
    else {
      const other = setFor(o, want);
      ood.push(subset(other, new T.Generator(3000 + seed).permutation(other.n).subarray(0, Math.min(nEval, other.n)), setLabel(o)));
    }
  }
  return { fit, inEval, ood };
}

const evals: Evaluation[] = [];
const extraFiles: [string, Uint8Array][] = [];
for (const { path, file, inName, label, oodSets, nFit, nEval } of jobs) {
  const meta = file.decoded.metadata;
  if (a.data && meta.data && a.data !== meta.data) console.log(`note: ${path} was trained on ${meta.data}; --data ${a.data} makes ${a.data} the in-distribution set`);
  const model = await loadModel(path, backend, file);
  if (model.kind === "diffusion") (model as unknown as Diffusion).setScore(dScore);
  const s = sets(inName, oodSets, nFit, nEval, modelImageShape(file.kind, file.config));
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
        groupSize: B, batch: model.kind === "diffusion" && dScore.kind === "elbo" ? Math.min(4, a.batch) : a.batch, loop: a.loop, seed,
        onProgress: (k) => { done += k; bar.update(done, { rate: (done / ((performance.now() - tb) / 1000)).toFixed(0) }); },
      }));
    }
    bar.stop();
    mark(`features ${label} B=${B} (${total} inputs)`);
    const ev = evaluateSets(label, B, feats[0].names, feats[0], feats[1], feats.slice(2), seed);
    evals.push(ev);
    mark(`fit and score ${label} B=${B}`);
    if (B === 1 && a.saliency > 0) {
      const shown = [s.inEval, ...s.ood], rows = [];
      for (const [k, set] of shown.entries()) rows.push(await flaggedSaliency(model, ev.scorers.diag, set, feats[1 + k].logf, a.saliency, (i) => noiseFor(model, 1, new T.Generator(7000 + i))));
      extraFiles.push([`saliency-${label}-B1.png`, saliencyPng(rows, shown[0].c, shown[0].h, shown[0].w)]);
      mark(`saliency ${label} (${a.saliency} inputs per set, double backprop)`);
    }
    if (a.fim) {
      const fim = await addFimMethods(ev, model, s, { groupSize: B, batch: a.batch, seed, lambdaScale: a["fim-lambda"] });
      console.log(`full FIM ${label} B=${B}: ${fim.n} fit gradients x ${fim.parameters} parameters, lambda ${fim.lambda.toExponential(3)}, ${(fim.floats * 4 / 2 ** 20).toFixed(0)} MiB held (${fim.floats} floats)`);
      fim.dispose();
      mark(`full FIM ${label} B=${B} (gradients, fit and score)`);
    }
  }
}

console.log("\nAUROC, in-distribution test (second half) vs each OOD set; density fitted on the first half:\n");
console.log(tableText(evals, main));
const files = writeReport(a.out, evals, { models: Object.fromEntries(jobs.map((j) => [j.label, j.path])), fit: a.fit, eval: a.eval, diffusionFit: a["diffusion-fit"], diffusionEval: a["diffusion-eval"], diffusionScore: scoreLabel(dScore), B: Bs, backend: backend.name, seed, loop: a.loop, fim: a.fim ? { lambdaScale: a["fim-lambda"] } : false, saliency: a.saliency }, main, extraFiles);
mark("report");
console.log(`\nreport: ${a.out}/ (${files.length} files: table.md, table.json, features-*.csv, roc-*.svg, hist-*.svg, corr-*.svg, layers-auroc-*.svg, saliency-*.png)`);
console.log(`elapsed ${((performance.now() - t0) / 1000).toFixed(1)} s:`);
for (const [w, s] of timings) console.log(`  ${s.toFixed(1).padStart(7)} s  ${w}`);
Deno.exit(0);
