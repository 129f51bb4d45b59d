// ablation --model weights/diffusion-fashion.safetensors [--t 1,2,4,8,16,32,64,128,256,512] [--loss l1|l2]
//          [--B 5] [--fit 100] [--eval 100] [--ood mnist|fashion] [--batch 64] [--backend auto|cpu|webgpu|wasm] [--seed 0]
//          [--out reports/ablation] [--force]
// The diffusion model's timestep ablation in the paper's form: for each step t, the features are the
// gradient of the eps-loss at t (one noise draw per input); AUROC of the gradient method and of
// typicality (on that same loss) against t, in-distribution test images vs the OOD set, at B = 5.
// Writes table.md, table.json and auroc-vs-t.svg. Same protocol as `ood` (seeded permutations of
// the test splits; fit on the first half, evaluate on the second).
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, choice, flag, inFile, int, ints, outDir, parseOptions, shippedDefault, usageError } from "../io/options.ts";
import { DATASETS, imageShapeOf, loadDataset, splitSize } from "../data/mnist.ts";
import { writeDirAtomic } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkImageShape, checkModelFile, loadModel } from "../models/registry.ts";
import { protocolSets } from "../ood/job.ts";
import { groupedCount, setFeatures } from "../ood/loop.ts";
import { evaluateSets } from "../ood/pipeline.ts";
import { lineLog2Svg } from "../ood/plots.ts";
import { progressBar } from "./progress.ts";

const a = parseOptions("ablation", {
  model: inFile().default(shippedDefault("weights/diffusion-fashion.safetensors")),
  t: ints({ min: 1, max: 100000 }).default([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]),
  loss: choice(["l1", "l2"] as const).default("l1"),
  B: int({ min: 1, max: 1000 }).default(5),
  fit: int({ min: 1, max: 5000 }).default(100),
  eval: int({ min: 1, max: 5000 }).default(100),
  ood: choice(DATASETS),
  batch: int({ min: 1, max: 4096 }).default(64),
  backend: BACKEND,
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  out: outDir({ replaced: true }).default("reports/ablation"),
  force: flag(),
});

const B = a.B, nFit = a.fit, nEval = a.eval, seed = a.seed;
const file = await checkModelFile(a.model);
// The model must offer the eps-loss at every step asked for (a diffusion model's objectives).
for (const t of a.t) {
  try {
    file.probe.objective(`${a.loss}-t${t}`);
  } catch (e) {
    throw usageError("ablation", a.t.length > 1 ? "--t" : "--model", a.t.length > 1 ? a.t.join(",") : a.model, `${(e as Error).message} (${a.model}; the timestep ablation needs a model with the eps-loss objectives l1-t<t>, l2-t<t>)`);
  }
}
const meta = file.decoded.metadata;
const inName = (DATASETS as readonly string[]).includes(meta.data ?? "") ? meta.data! : "fashion";
const oodName = a.ood ?? DATASETS.find((d) => d !== inName)!;
if (oodName === inName) throw usageError("ablation", "--ood", oodName, `is the in-distribution data of ${a.model}`);
checkImageShape(file.kind, file.config, imageShapeOf(inName), inName, `ablation: --model ${a.model}`);
const half = Math.floor(splitSize(inName, "test") / 2);
if (nFit > half) throw usageError("ablation", "--fit", String(nFit), `at most ${half} (the first half of the ${inName} test split)`);
if (nEval > half || nEval > splitSize(oodName, "test")) throw usageError("ablation", "--eval", String(nEval), `at most ${Math.min(half, splitSize(oodName, "test"))}`);
if (Math.floor(nFit / B) < 2 || Math.floor(nEval / B) < 1) throw usageError("ablation", "--B", String(B), `leaves too few groups of --fit ${nFit} / --eval ${nEval} (allowed: B <= ${Math.min(Math.floor(nFit / 2), nEval)})`);
checkApart("ablation", [{ option: "--out", path: a.out, kind: "dir" }], [{ option: "--model", path: a.model }]);
workStarts();
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await loadModel(a.model, backend, file);
const sets = protocolSets(loadDataset(inName, "test", { onNotice: notice }), inName, [{ name: oodName, images: loadDataset(oodName, "test", { onNotice: notice }) }], { nFit, nEval, seed });
const oodSet = sets.ood[0];

const t0 = performance.now();
const rows: { t: number; gradient: number; typicality: number; likelihood: number; ci: [number, number]; ciTyp: [number, number] }[] = [];
const bar = progressBar(`ablation B=${B}`, "t {t}");
const all = [sets.fit, sets.inEval, oodSet];
bar.start(a.t.length * all.reduce((n, s) => n + groupedCount(s, B), 0), 0, { t: "-" });
let done = 0;
for (const t of a.t) {
  const objective = model.objective(`${a.loss}-t${t}`);
  const feats = [];
  for (const set of all) {
    feats.push(await setFeatures(model, objective, set, { groupSize: B, batch: Number(a.batch), seed, onProgress: (k) => bar.update(done + k, { t }) }));
    done += groupedCount(set, B);
  }
  const e = evaluateSets(`diffusion-t${t}`, B, feats[0], feats[1], [feats[2]], seed);
  const m = (name: string) => e.results[oodSet.name].find((r) => r.method === name)!.metrics;
  rows.push({ t, gradient: m("gradient").auroc, typicality: m("typicality").auroc, likelihood: m("likelihood").auroc, ci: m("gradient").aurocCI, ciTyp: m("typicality").aurocCI });
}
bar.stop();
const f3 = (v: number) => v.toFixed(3);
const md = `# Timestep ablation: ${a.model}, ${inName} vs ${oodSet.name}, B = ${B}, ${a.loss} eps-loss\n\n` +
  `fit ${nFit}, evaluate ${nEval} per set; AUROC with 95% bootstrap intervals.\n\n| t | gradient | typicality | likelihood |\n|---|---|---|---|\n` +
  rows.map((r) => `| ${r.t} | ${f3(r.gradient)} [${f3(r.ci[0])}, ${f3(r.ci[1])}] | ${f3(r.typicality)} [${f3(r.ciTyp[0])}, ${f3(r.ciTyp[1])}] | ${f3(r.likelihood)} |`).join("\n") + "\n";
// The folder is replaced as a whole (a killed run leaves the old tables or the new ones); other files in it are kept.
writeDirAtomic(a.out, [
  ["table.md", md],
  ["table.json", JSON.stringify({ model: a.model, B, fit: nFit, eval: nEval, ood: oodSet.name, loss: a.loss, seed, rows }, null, 2)],
  ["auroc-vs-t.svg", lineLog2Svg(`${inName} vs ${oodSet.name}, B=${B}: AUROC against the step t`, "t", "AUROC", [
    { name: "gradient", points: rows.map((r) => [r.t, r.gradient]) },
    { name: "typicality", points: rows.map((r) => [r.t, r.typicality]) },
  ])],
], { keep: () => true });
console.log("\n" + md);
console.log(`${a.out}/: table.md, table.json, auroc-vs-t.svg (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
Deno.exit(0);
