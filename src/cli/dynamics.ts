// dynamics: OOD detection against the training step, one row per checkpoint.
//
//   npm run dynamics -- --checkpoints '<glob or files, comma-separated>' [--ood mnist] [--B 1,5]
//                       [--fit 500] [--eval 500] [--protocol disjoint,overlap] [--data fashion|mnist]
//                       [--out reports/dynamics] [--batch 64] [--seed 0] [--fim-lambda 1]
//                       [--backend auto|cpu|webgpu|wasm] [--force]
// --checkpoints: weights or training checkpoints of one run (any kind, trained on the same data; the default objective),
// each with its step in the metadata (step, or steps), each step once; a quoted glob such as
// '/work/runs/glow-fashion-h32/step*.safetensors' is expanded here. For each checkpoint, each B and
// each OOD set: the AUROC with a 95% bootstrap interval of the likelihood, typicality, the gradient
// method (diagonal Gaussian over log f_l) and the full-FIM score (g^T F_N^{-1} g, Woodbury), under
// the disjoint protocol (fit on --fit images of the first half of the in-distribution test split,
// score --eval of the second half, as ood does) and the overlap protocol (the in-distribution inputs
// scored are the fit inputs themselves, as in code that fits on the whole test split and scores
// samples from it); the OOD images are the same in both (src/ood/dynamics.ts). --ood defaults to
// the other dataset. Writes table.md, table.json and auroc-vs-step.svg to --out.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, choice, choices, flag, int, ints, num, outDir, parseOptions, text, usageError } from "../io/options.ts";
import type { ImageSet } from "../data/dataset.ts";
import { DATASETS, loadDataset, splitSize } from "../data/mnist.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { DYNAMICS_METHODS, dynamicsMarkdown, dynamicsOf, PROTOCOLS } from "../ood/dynamics.ts";
import { intervalsLog2Svg } from "../ood/plots.ts";
import { inDistributionSplit, oodSample } from "../ood/protocol.ts";
import { writeReportFiles } from "../ood/report.ts";
import { checkModels, checkReportFolder, expandFiles } from "./model_inputs.ts";
import { barFor } from "./progress.ts";

const a = parseOptions("dynamics", {
  checkpoints: text().required(),
  ood: choices(DATASETS),
  B: ints({ min: 1, max: 1000 }).default([1, 5]),
  fit: int({ min: 2, max: 5000 }).default(500),
  eval: int({ min: 1, max: 5000 }).default(500),
  protocol: choices(PROTOCOLS).default([...PROTOCOLS]),
  data: choice(DATASETS),
  out: outDir().default("reports/dynamics"),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  "fim-lambda": num({ gt: 0, max: 1e12 }).default(1),
  backend: BACKEND,
  force: flag(),
});
const paths = expandFiles("dynamics", "--checkpoints", a.checkpoints);
const { models, inName } = await checkModels("dynamics", "--checkpoints", paths, a.data);
models.sort((x, y) => x.step - y.step);
for (const m of models) if (Number.isNaN(m.step)) throw usageError("dynamics", "--checkpoints", m.path, "has no training step in its metadata (allowed: weights or checkpoints written by train, with step or steps)");
const dup = models.find((m, i) => models.findIndex((x) => x.step === m.step) !== i);
if (dup) throw usageError("dynamics", "--checkpoints", a.checkpoints, `two files are at step ${dup.step} (${models.filter((m) => m.step === dup.step).map((m) => m.path).join(", ")}); one run's checkpoints, each step once`);
const oods: string[] = a.ood ?? DATASETS.filter((d) => d !== inName);
if (oods.includes(inName)) throw usageError("dynamics", "--ood", oods.join(","), `${inName} is the in-distribution data (allowed: ${DATASETS.filter((d) => d !== inName).join(", ")})`);
const half = Math.floor(splitSize(inName, "test") / 2);
if (a.fit > half) throw usageError("dynamics", "--fit", String(a.fit), `at most ${half} (the first half of the ${inName} test split)`);
if (a.eval > splitSize(inName, "test") - half) throw usageError("dynamics", "--eval", String(a.eval), `at most ${splitSize(inName, "test") - half} (the second half of the ${inName} test split)`);
for (const B of a.B) {
  if (Math.floor(a.fit / B) < 2) throw usageError("dynamics", "--B", a.B.join(","), `group size ${B} leaves ${Math.floor(a.fit / B)} fit group(s) of --fit ${a.fit}; the density needs at least 2`);
  if (Math.floor(a.eval / B) < 1) throw usageError("dynamics", "--B", a.B.join(","), `group size ${B} is larger than --eval ${a.eval}`);
}
checkReportFolder("dynamics", a.out, a.force, models.map((m) => ({ option: "--checkpoints", path: m.path })));
workStarts();

const t0 = performance.now();
const backend = await selectBackend(a.backend, { onNotice: notice });
const { fit, inEval } = inDistributionSplit(loadDataset(inName, "test", { onNotice: notice }), a.fit, a.eval, a.seed, inName);
const ood: ImageSet[] = oods.map((o) => oodSample(loadDataset(o, "test", { onNotice: notice }), a.eval, a.seed, o));
console.log(`backend ${backend.name}; ${models.length} checkpoints (steps ${models.map((m) => m.step).sort((x, y) => x - y).join(", ")}); fit ${fit.n}, eval ${inEval.n} ${inName}, OOD ${ood.map((o) => `${o.n} ${o.name}`).join(", ")}; B ${a.B.join(", ")}; ${a.protocol.join(" and ")}`);
// Per B: features of fit, eval and OOD sets, then the gradient vectors of the same (and of the fit head for the overlap protocol).
const perCheckpoint = a.B.reduce((s, B) => {
  const g = (n: number) => n - (n % B);
  return s + 2 * (g(fit.n) + g(inEval.n) + ood.reduce((t, o) => t + g(o.n), 0)) + (a.protocol.includes("overlap") ? Math.min(g(inEval.n), g(fit.n)) : 0);
}, 0);
const bar = barFor("checkpoints", "inputs");
let done = 0;
const results = await dynamicsOf(models.map((m) => ({ label: m.label, step: m.step, load: () => loadModel(m.path, backend, m.file) })), { fit, inEval, ood }, {
  Bs: a.B, protocols: a.protocol, batch: a.batch, seed: a.seed, lambdaScale: a["fim-lambda"],
  onProgress: (k) => bar.update((done += k), perCheckpoint * models.length),
  onCheckpoint: (r) => console.log(`\nstep ${r.step} (${r.checkpoint}): eval NLL ${r.evalNll.toFixed(3)} bits/dim; ${((performance.now() - t0) / 1000).toFixed(0)} s so far`),
}).finally(() => bar.stop());
const md = dynamicsMarkdown(results, inName);
console.log(`\n${md}`);
const rows = results.flatMap((r) => r.rows);
const panels = ood.flatMap((o) => a.B.flatMap((B) => a.protocol.map((p) => ({
  label: `${inName} vs ${o.name}, B = ${B}, ${p}`,
  series: DYNAMICS_METHODS.map((m) => ({ name: m, points: rows.filter((r) => r.ood === o.name && r.B === B && r.protocol === p && r.method === m).map((r) => ({ x: r.step, y: r.auroc, lo: r.ci[0], hi: r.ci[1] })) })),
}))));
writeReportFiles(a.out, [
  ["table.md", `# OOD detection against the training step\n\nCheckpoints: ${models.map((m) => `${m.label} (step ${m.step})`).join(", ")}. In-distribution ${inName}: fit ${fit.n} images (first half of the test split), evaluation ${inEval.n} (second half); OOD: ${ood.map((o) => `${o.n} ${o.name}`).join(", ")}; seed ${a.seed}. AUROC with 95% bootstrap intervals.\n\n${md}`],
  ["table.json", JSON.stringify({ meta: { checkpoints: models.map((m) => ({ label: m.label, path: m.path, step: m.step })), inName, fit: a.fit, eval: a.eval, ood: oods, B: a.B, protocols: a.protocol, seed: a.seed, lambdaScale: a["fim-lambda"], backend: backend.name }, results }, null, 1)],
  ["auroc-vs-step.svg", intervalsLog2Svg(`AUROC against the training step (${inName} in-distribution)`, "training step", "AUROC", panels, [0, 1])],
]);
console.log(`report: ${a.out}/ (table.md, table.json, auroc-vs-step.svg); ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
Deno.exit(0);
