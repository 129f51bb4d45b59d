// ood: the main job. For each shipped model trained on FashionMNIST, compute layer-wise gradient
// features for a fit set, an in-distribution evaluation set and OOD sets (MNIST and synthetic), for
// groups of B = 1 and 5, score them with every registered score (src/ood/scores.ts: the method, its
// variants and the likelihood and typicality baselines), print one table, write a report.
//
//   npm run ood -- [--model a.safetensors,b.safetensors,...] [--data fashion|mnist|<images>] [--ood mnist,noise,constant,vflip,invert,<images>,<features.npz>]
//                  [--B 1,5] [--fit 500] [--eval 500] [--batch 64] [--backend auto|cpu|webgpu|wasm] [--out reports/ood]
//                  [--seed 0] [--loop] [--force] [--fim] [--fim-lambda 1] [--saliency 4]
//                  [--diffusion-score l1|l2|elbo|elbo-nolast] [--diffusion-t 1] [--diffusion-fit 200] [--diffusion-eval 200]
// The default models are the best shipped model of each kind: the VAE, the logit-space Glow and
// the diffusion model. What is differentiated is each model's objective (src/models/objective.ts):
// the NLL; for a diffusion model the gradient of its eps-loss at step t (the paper's: L1 at t = 1)
// or of its bound (elbo-nolast: without its t = T term, whose gradient dominates the bound's); its
// likelihood and typicality baselines use that same quantity. A diffusion model has its own
// fit/eval counts (a U-Net pass per input costs ~10x the VAE's); --fit/--eval and the --diffusion-*
// options are refused when no model of the run takes them. Each input's random draws (the VAE's
// latent sample, the diffusion model's noise) come from its own pixels and --seed, so an image
// gets the same features wherever it sits.
// --ood defaults to the other built-in dataset and the synthetic sets; the in-distribution set is
// refused as an OOD set. Report files are named after the model files; the report folder is
// replaced as a whole.
// --data and --ood also take image files: a folder of PNGs, an .npy of uint8 [N,H,W] or [N,C,H,W], an
// IDX *-ubyte file, CIFAR-10 binary, or the paper's sets in their official files as FORMAT:PATH
// (svhn:, gtsrb:, gtsrb-roi:, celeba:, imagenet32:, cifar10:, omniglot:; docs/datasets.md); all of
// a file's images (--data's are split in halves as above). --ood also takes a features file of
// `npm run features` (.npz/.csv) of the one --model, its objective and --seed, at --B its own B:
// up to --eval / B of its groups in the OOD sets' seeded permutation, scored as computed ones are.
// --fim adds the full-FIM scores (gradient-fim, gradient-fim-block, src/ood/woodbury.ts): a second
// gradient pass that keeps the fit set's per-input gradients; --fim-lambda scales its lambda.
// --saliency k: at B=1, the k inputs of each set that the diagonal Gaussian flags most strongly, with
// the gradient of the score with respect to their pixels (double backprop) as an overlay in
// saliency-<model>-B1.png (rows: in-distribution evaluation, then each OOD set); 0 skips it.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, choice, flag, inFiles, int, ints, nameOrPath, num, Opt, outDir, parseOptions, pathOrPrefixedExists, shippedDefault, usageError } from "../io/options.ts";
import type { ImageSet } from "../data/dataset.ts";
import { conformShape, type FileSet, isBuiltinSet, loadImageFiles, setLabel } from "../data/image_files.ts";
import { DATASETS, imageShapeOf, loadDataset, splitSize } from "../data/mnist.ts";
import { protectedReason } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkImageShape, checkModelFile, loadModel, modelImageShape, type ModelFile } from "../models/registry.ts";
import { evaluateModel, isSynthetic, protocolFeatures, protocolSets, SYNTHETIC_SETS } from "../ood/job.ts";
import { asSetFeatures, type FeatureFile, isFeatureFile, parseFeatureFile } from "../ood/feature_file.ts";
import { checkAgainstModel, sha256Hex } from "../ood/detector.ts";
import type { Evaluation } from "../ood/pipeline.ts";
import { tableText, writeReport } from "../ood/report.ts";
import { MAIN_SCORES } from "../ood/scores.ts";
import { progressBar } from "./progress.ts";

const OOD_SETS = ["mnist", "fashion", ...SYNTHETIC_SETS] as const;
/** Fit and evaluation images per set for a diffusion model (its U-Net pass per input costs ~10x the VAE's). */
const DIFFUSION_OOD_COUNT = 200;
const defaults = ["weights/vae-fashion.safetensors", "weights/glow-fashion-large.safetensors", "weights/diffusion-fashion.safetensors"].map(shippedDefault);
const exists = pathOrPrefixedExists;
/** A comma list of OOD sets: the names above, paths of image files, or features files (.npz/.csv of npm run features), each once. */
const oodList = () => new Opt<string[]>((raw, c) => {
  const parts = raw.split(",").map((p) => p.trim());
  for (const [i, p] of parts.entries()) {
    if (p === "") throw usageError(c.cmd, "--ood", raw, `empty item in the list (allowed: any of ${OOD_SETS.join(", ")} or paths of image files, separated by commas)`);
    if (parts.indexOf(p) !== i) throw usageError(c.cmd, "--ood", raw, `'${p}' is listed twice (each once)`);
    if (!(OOD_SETS as readonly string[]).includes(p) && !exists(p)) throw usageError(c.cmd, "--ood", raw, `'${p}' is not allowed (any of ${OOD_SETS.join(", ")}, the path of an image file or folder, or a features file)`);
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
  out: outDir({ replaced: true }).default("reports/ood"),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  loop: flag(),
  force: flag(),
  "diffusion-score": choice(["l1", "l2", "elbo", "elbo-nolast"] as const).default("l1"),
  "diffusion-t": int({ min: 1, max: 100000 }).default(1),
  "diffusion-fit": int({ min: 1, max: 100000 }).default(DIFFUSION_OOD_COUNT),
  "diffusion-eval": int({ min: 1, max: 100000 }).default(DIFFUSION_OOD_COUNT),
  fim: flag(),
  "fim-lambda": num({ min: 1e-12, max: 1e12 }).default(1),
  saliency: int({ max: 1000 }).default(4),
});
checkApart("ood", [{ option: "--out", path: a.out, kind: "dir" }], [...(a.model ?? []).map((p) => ({ option: "--model", path: p })), { option: "--data", path: a.data }, ...(a.ood ?? []).map((p) => ({ option: "--ood", path: p }))]);
const main = [...MAIN_SCORES, ...(a.fim ? ["gradient-fim", "gradient-fim-block"] : [])];
if (a.given.has("fim-lambda") && !a.fim) throw usageError("ood", "--fim-lambda", String(a["fim-lambda"]), "applies to the full-FIM scores only; add --fim");
if (a.given.has("diffusion-t") && a["diffusion-score"].startsWith("elbo")) throw usageError("ood", "--diffusion-t", String(a["diffusion-t"]), `applies to the eps-losses (--diffusion-score l1 or l2), not to ${a["diffusion-score"]}`);

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
// Features files named by --ood: read once, while checking.
const featureFiles = new Map<string, FeatureFile>();
function featuresOf(path: string): FeatureFile {
  if (!featureFiles.has(path)) featureFiles.set(path, parseFeatureFile(Deno.readFileSync(path), path));
  return featureFiles.get(path)!;
}
const sizeOf = (spec: string) => isBuiltinSet(spec) ? splitSize(spec, "test") : filesOf(spec).set.n;
const objectiveName = a["diffusion-score"].startsWith("elbo") ? a["diffusion-score"] : `${a["diffusion-score"]}-t${a["diffusion-t"]}`;

const t0 = performance.now();
const timings: [string, number][] = [];

if (a.data && isFeatureFile(a.data)) throw usageError("ood", "--data", a.data, "is a features file; the in-distribution set is split here into fit and evaluation images (give images or fashion/mnist), while OOD sets may be features files (--ood f.npz); to fit on features, use npm run fit --data f.npz");
const modelPaths = a.model ?? defaults.filter(exists);
if (!modelPaths.length) throw new Error(`ood: no model weights found (looked for ${defaults.join(", ")}); pass --model`);
const Bs = a.B, seed = a.seed;
const outWhy = a.force ? null : protectedReason(a.out);
if (outWhy) throw usageError("ood", "--out", a.out, `${outWhy}; the report goes to its own folder (e.g. reports/ood), or add --force`);

// Every model file, and every option that depends on it, is checked before any work.
interface Job { path: string; file: ModelFile; inName: string; label: string; oodSets: string[]; nFit: number; nEval: number; objective: string }
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
  // The objective: the model's default, or for a diffusion model the one the --diffusion-* options name.
  const own = file.probe.defaultObjective !== "nll";
  const objective = own ? objectiveName : file.probe.defaultObjective;
  try {
    file.probe.objective(objective);
  } catch (e) {
    throw usageError("ood", "--diffusion-score", objectiveName, `${(e as Error).message} (${path})`);
  }
  const [nFit, nEval, fitOpt, evalOpt] = own ? [a["diffusion-fit"], a["diffusion-eval"], "--diffusion-fit", "--diffusion-eval"] : [a.fit, a.eval, "--fit", "--eval"];
  const oodSets: string[] = a.ood ?? [DATASETS.find((d) => d !== inName)!, ...SYNTHETIC_SETS];
  if (oodSets.includes(inName)) {
    throw usageError("ood", "--ood", oodSets.join(","), `${inName} is the in-distribution data of ${path}${a.data ? " (--data)" : " (trained on it)"}, so it cannot be an OOD set (allowed: ${OOD_SETS.filter((o) => o !== inName).join(", ")})`);
  }
  const want = modelImageShape(file.kind, file.config);
  checkImageShape(file.kind, file.config, shapeOf(inName, want), inName, `ood: --model ${path}`);
  const imageSet = (o: string) => !isSynthetic(o) && !isFeatureFile(o);
  for (const o of oodSets) if (imageSet(o)) checkImageShape(file.kind, file.config, shapeOf(o, want), o, `ood: --model ${path} (--ood ${o})`);
  // An OOD set given as a features file: of this model (its SHA-256 and tensors), this objective,
  // --seed and every --B; scored as computed features are (no saliency maps or full FIM for it).
  const given = oodSets.filter(isFeatureFile);
  if (given.length) {
    if (modelPaths.length > 1) throw usageError("ood", "--ood", given[0], `a features file is one model's; give that model alone with --model (here ${modelPaths.length} models)`);
    if (a.fim) throw usageError("ood", "--fim", "", `the full-FIM scores need the images' gradients; --ood ${given[0]} is a features file`);
    const sha = await sha256Hex(Deno.readFileSync(path));
    for (const g of given) {
      const f = featuresOf(g), m = f.meta;
      if (m.model.sha256 !== sha) throw usageError("ood", "--ood", g, `its features are of a model with SHA-256 ${m.model.sha256.slice(0, 16)}... (${m.model.path}), not of ${path} (${sha.slice(0, 16)}...)`);
      checkAgainstModel({ features: { names: f.layers, sizes: f.sizes } } as Parameters<typeof checkAgainstModel>[0], file.shapes, path, g);
      if (m.objective !== objective) throw usageError("ood", "--ood", g, `its features are of objective ${m.objective}; this run's is ${objective}`);
      if (m.seed !== a.seed) throw usageError("ood", "--ood", g, `its features were made with --seed ${m.seed}; give --seed ${m.seed}`);
      if (Bs.some((B) => B !== m.groupSize)) throw usageError("ood", "--B", Bs.join(","), `--ood ${g} holds groups of B = ${m.groupSize} only; give --B ${m.groupSize}`);
      if (m.shard.n > 1) throw usageError("ood", "--ood", g, `is shard ${m.shard.k} of ${m.shard.n}; merge the shards first (fit --data takes shards) or give the whole run`);
      if (!f.logf.length) throw usageError("ood", "--ood", g, "holds no groups");
    }
  }
  const testN = sizeOf(inName), half = Math.floor(testN / 2), what = isBuiltinSet(inName) ? `${inName} test split` : `set ${inName}`;
  if (nFit > half) throw usageError("ood", fitOpt, String(nFit), `at most ${half} (the first half of the ${testN}-image ${what}; the second half is for ${evalOpt})`);
  if (nEval > testN - half) throw usageError("ood", evalOpt, String(nEval), `at most ${testN - half} (the second half of the ${testN}-image ${what})`);
  for (const o of oodSets) if (imageSet(o) && nEval > sizeOf(o) && isBuiltinSet(o)) {
    throw usageError("ood", evalOpt, String(nEval), `at most ${sizeOf(o)} (the ${o} test split, an OOD set)`);
  }
  for (const B of Bs) {
    if (Math.floor(nFit / B) < 2) throw usageError("ood", "--B", Bs.join(","), `group size ${B} leaves ${Math.floor(nFit / B)} fit group(s) of ${fitOpt} ${nFit}; the density needs at least 2 (allowed: B <= ${Math.floor(nFit / 2)})`);
    if (Math.floor(nEval / B) < 1) throw usageError("ood", "--B", Bs.join(","), `group size ${B} is larger than ${evalOpt} ${nEval} (allowed: B <= ${nEval})`);
    for (const o of oodSets) if (imageSet(o) && !isBuiltinSet(o) && Math.floor(Math.min(nEval, sizeOf(o)) / B) < 1) {
      throw usageError("ood", "--ood", o, `has ${sizeOf(o)} image(s), fewer than one group of B = ${B}`);
    }
  }
  // Report names come from the model file's name, so two models of one kind and data stay apart.
  const stem = path.replace(/^.*\//, "").replace(/\.safetensors$/, "").replace(/\.ckpt$/, "").replace(/[^A-Za-z0-9._-]/g, "_");
  let label = meta.data && meta.data !== inName ? `${stem}-in-${setLabel(inName)}` : stem;
  if (own) label += `-${objective}`;
  if (jobs.some((j) => j.label === label)) {
    const parent = path.split("/").slice(-2, -1)[0]?.replace(/[^A-Za-z0-9._-]/g, "_");
    if (parent) label = `${parent}-${label}`;
    for (let k = 2; jobs.some((j) => j.label === label); k++) label = `${label.replace(/-\d+$/, "")}-${k}`;
  }
  jobs.push({ path, file, inName, label, oodSets, nFit, nEval, objective });
}
// Options that no model of the run takes are refused, not ignored.
const anyOwn = jobs.some((j) => j.file.probe.defaultObjective !== "nll"), anyNll = jobs.some((j) => j.file.probe.defaultObjective === "nll");
for (const o of ["diffusion-score", "diffusion-t", "diffusion-fit", "diffusion-eval"] as const) {
  if (a.given.has(o) && !anyOwn) throw usageError("ood", `--${o}`, String(a[o]), `applies to diffusion models only, and none of the models is one (${modelPaths.join(", ")})`);
}
for (const o of ["fit", "eval"] as const) {
  if (a.given.has(o) && !anyNll) throw usageError("ood", `--${o}`, String(a[o]), `applies to VAE and Glow models; every model here is a diffusion model (use --diffusion-${o})`);
}

workStarts();
const backend = await selectBackend(a.backend, { onNotice: notice });
console.log(`backend: ${backend.name}${"description" in backend ? ` (${(backend as { description: string }).description})` : ""}`);

const evals: Evaluation[] = [];
const extraFiles: [string, Uint8Array][] = [];
for (const { path, file, inName, label, oodSets, nFit, nEval, objective: objName } of jobs) {
  const meta = file.decoded.metadata;
  if (a.data && meta.data && a.data !== meta.data) console.log(`note: ${path} was trained on ${meta.data}; --data ${a.data} makes ${a.data} the in-distribution set`);
  const tl = performance.now();
  const model = await loadModel(path, backend, file);
  const objective = model.objective(objName);
  const shape = model.imageShape;
  const test = isBuiltinSet(inName) ? loadDataset(inName, "test", { onNotice: notice }) : conformShape(filesOf(inName).set, shape, `--data ${inName}`);
  const ood = oodSets.filter((o) => !isFeatureFile(o)).map((o) => ({
    name: isSynthetic(o) || isBuiltinSet(o) ? o : setLabel(o),
    images: isSynthetic(o) ? undefined : isBuiltinSet(o) ? loadDataset(o, "test", { onNotice: notice }) : conformShape(filesOf(o).set, shape, `--ood ${o}`),
  }));
  const sets = {
    ...protocolSets(test, setLabel(inName), ood, { nFit, nEval, seed }),
    oodFeatures: oodSets.filter(isFeatureFile).map((o) => protocolFeatures(asSetFeatures(featuresOf(o), setLabel(o)), featuresOf(o).meta.groupSize, { nEval, seed })),
  };
  timings.push([`load ${label} and data`, (performance.now() - tl) / 1000]);
  console.log(`${label}: ${objective.measure.short} (objective ${objective.name}), fit ${nFit}, eval ${nEval} per set`);
  let bar: ReturnType<typeof progressBar> | null = null, stage = "", tb = 0;
  const r = await evaluateModel(model, objective, sets, {
    label, groupSizes: Bs, batch: a.batch, seed, loop: a.loop, saliency: a.saliency, fim: a.fim ? { lambdaScale: a["fim-lambda"] } : undefined,
    onProgress: (s, done, total) => {
      if (s !== stage) {
        bar?.stop();
        bar = progressBar(`${label} ${s.replace("features ", "")}`, "{rate} inputs/s");
        bar.start(total, 0, { rate: "-" });
        stage = s;
        tb = performance.now();
      }
      bar!.update(done, { rate: (done / ((performance.now() - tb) / 1000)).toFixed(0) });
    },
    onStage: (s, sec) => {
      bar?.stop();
      bar = null;
      stage = "";
      timings.push([s, sec]);
    },
    onFim: (B, f) => console.log(`full FIM ${label} B=${B}: ${f.n} fit gradients x ${f.parameters} parameters, lambda ${f.lambda.toExponential(3)}, ${(f.floats * 4 / 2 ** 20).toFixed(0)} MiB held (${f.floats} floats)`),
  });
  for (const e of r.evaluations) {
    if (e.fitted.dropped.length) console.log(`note: ${label} B=${e.groupSize}: ${e.fitted.dropped.length} feature(s) dropped: ${e.fitted.dropped.map((d) => `${e.names[d.feature]} (${d.reason})`).join("; ")}`);
  }
  evals.push(...r.evaluations);
  extraFiles.push(...r.files);
}

console.log("\nAUROC, in-distribution test (second half) vs each OOD set; density fitted on the first half:\n");
console.log(tableText(evals, main));
const tr = performance.now();
const files = writeReport(a.out, evals, {
  models: Object.fromEntries(jobs.map((j) => [j.label, { path: j.path, objective: j.objective, fit: j.nFit, eval: j.nEval }])),
  B: Bs, backend: backend.name, seed, loop: a.loop, fim: a.fim ? { lambdaScale: a["fim-lambda"] } : false, saliency: a.saliency,
  draws: "each input's from its pixels and the seed (src/ood/loop.ts)",
}, main, extraFiles);
timings.push(["report", (performance.now() - tr) / 1000]);
console.log(`\nreport: ${a.out}/ (${files.length} files: table.md, table.json, features-*.csv, roc-*.svg, hist-*.svg, corr-*.svg, layers-auroc-*.svg, saliency-*.png)`);
console.log(`elapsed ${((performance.now() - t0) / 1000).toFixed(1)} s:`);
for (const [w, s] of timings) console.log(`  ${s.toFixed(1).padStart(7)} s  ${w}`);
Deno.exit(0);
