// compare-models: do the FIM-induced norms of different models agree on the same inputs?
//
//   npm run compare-models -- --models a.safetensors,b.safetensors[,...] [--input fashion,mnist] [--n 1000]
//                             [--fit 500] [--data fashion|mnist] [--out reports/compare-models] [--batch 64]
//                             [--seed 0] [--fim-lambda 1] [--backend auto|cpu|webgpu|wasm] [--force]
// For each model (any kind; at least two), each input's novelty (B = 1) from the gradient of its default objective (its NLL; a diffusion model's L1 eps-loss at t = 1) by three scores: the
// method's diagonal Gaussian (-log density of log f_l), the sum of the layer log-norms sum_l log f_l,
// and the full-FIM norm log q (Woodbury); the Gaussian and F_N are fitted on --fit images of the
// first half of the in-distribution test split (disjoint from the inputs). --input: the sets scored,
// --n images each: the in-distribution set's from the second half of its test split (it must be
// listed: the verdict thresholds come from it), another set's from its test split (seeded, as ood
// draws them). For every pair of models: Spearman and Pearson correlations with 95% bootstrap
// intervals, pooled and per input set; the overlap of their top 5% most novel inputs; each model's
// score as a detector of the other's verdicts (flagged above its 95th percentile on the
// in-distribution inputs): AUROC, agreement, Cohen's kappa; the per-layer log f_l matched by role
// (src/ood/compare.ts). Writes table.md, table.json, scatter-<score>.svg and layers.svg to --out.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, choice, choices, flag, inFiles, int, num, outDir, parseOptions, usageError } from "../io/options.ts";
import { DATASETS, loadDataset, splitSize } from "../data/mnist.ts";
import type { ImageSet } from "../data/dataset.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { compareMarkdown, comparePair, modelNovelty, type ModelNovelty, NOVELTY_SCORES, SCORE_LABELS } from "../ood/compare.ts";
import { scatterSvg } from "../ood/plots.ts";
import { inDistributionSplit, oodSample } from "../ood/protocol.ts";
import { writeReportFiles } from "../ood/report.ts";
import { checkModels, checkReportFolder } from "./model_inputs.ts";
import { barFor } from "./progress.ts";

const a = parseOptions("compare-models", {
  models: inFiles().required(),
  input: choices(DATASETS),
  n: int({ min: 2, max: 10000 }).default(1000),
  fit: int({ min: 2, max: 5000 }).default(500),
  data: choice(DATASETS),
  out: outDir().default("reports/compare-models"),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  "fim-lambda": num({ gt: 0, max: 1e12 }).default(1),
  backend: BACKEND,
  force: flag(),
});
if (a.models.length < 2) throw usageError("compare-models", "--models", a.models.join(","), "needs at least two model files, separated by commas");
const { models, inName } = await checkModels("compare-models", "--models", a.models, a.data);
const inputs: string[] = a.input ?? [inName, ...DATASETS.filter((d) => d !== inName)];
if (!inputs.includes(inName)) throw usageError("compare-models", "--input", inputs.join(","), `must include the in-distribution set ${inName} (the verdict thresholds come from its inputs)`);
const half = Math.floor(splitSize(inName, "test") / 2);
if (a.fit > half) throw usageError("compare-models", "--fit", String(a.fit), `at most ${half} (the first half of the ${inName} test split)`);
for (const s of inputs) {
  const most = s === inName ? splitSize(s, "test") - half : splitSize(s, "test");
  if (a.n > most) throw usageError("compare-models", "--n", String(a.n), `at most ${most} (${s === inName ? `the second half of the ${s} test split` : `the ${s} test split`})`);
}
checkReportFolder("compare-models", a.out, a.force, models.map((m) => ({ option: "--models", path: m.path })));
workStarts();

const t0 = performance.now();
const backend = await selectBackend(a.backend, { onNotice: notice });
const tests = new Map<string, ImageSet>(inputs.map((s) => [s, loadDataset(s, "test", { onNotice: notice })]));
const { fit, inEval } = inDistributionSplit(tests.get(inName)!, a.fit, a.n, a.seed, inName);
const sets = inputs.map((s) => (s === inName ? inEval : oodSample(tests.get(s)!, a.n, a.seed, s)));
console.log(`backend ${backend.name}; fit ${a.fit} ${inName} images; inputs: ${sets.map((s) => `${s.n} ${s.name}`).join(", ")}`);

const scored: ModelNovelty[] = [];
for (const m of models) {
  const tm = performance.now();
  const model = await loadModel(m.path, backend, m.file);
  const total = 2 * (fit.n + sets.reduce((s, x) => s + x.n, 0)), bar = barFor(m.label, "inputs");
  let done = 0;
  scored.push(await modelNovelty(model, m.label, fit, sets, { batch: a.batch, seed: a.seed, lambdaScale: a["fim-lambda"], onProgress: (k) => bar.update((done += k), total) }).finally(() => bar.stop()));
  console.log(`${m.label}: ${model.numParameters()} parameters, ${scored.at(-1)!.names.length} tensors; ${((performance.now() - tm) / 1000).toFixed(1)} s`);
  model.parameters().forEach((p) => p.dispose());
}

const pairs = [];
for (let i = 0; i < scored.length; i++) for (let j = i + 1; j < scored.length; j++) pairs.push(comparePair(scored[i], scored[j], { inName: inEval.name, seed: a.seed }));
const md = compareMarkdown(pairs);
console.log(`\n${md}`);
const files: [string, string][] = [
  ["table.md", `# Novelty compared across models\n\nModels: ${models.map((m) => `${m.label} (${m.path})`).join(", ")}. Fit: ${a.fit} ${inName} test images (first half); inputs: ${sets.map((s) => `${s.n} ${s.name}`).join(", ")}; B = 1; seed ${a.seed}.\n\n${md}`],
  ["table.json", JSON.stringify({ meta: { models: models.map((m) => ({ label: m.label, path: m.path })), inName, fit: a.fit, n: a.n, inputs, seed: a.seed, lambdaScale: a["fim-lambda"], backend: backend.name }, fim: scored.map((s) => ({ model: s.label, ...s.fim })), pairs }, null, 1)],
];
for (const s of NOVELTY_SCORES) {
  files.push([`scatter-${s}.svg`, scatterSvg(`Novelty by ${SCORE_LABELS[s]}: one model against another (each dot an input)`, "first model", "second model", pairs.map((p) => {
    const A = scored.find((x) => x.label === p.a)!, B = scored.find((x) => x.label === p.b)!;
    const r = p.scores.find((x) => x.score === s && x.inputs === "all")!;
    return { label: `${p.a} (x) vs ${p.b} (y): Spearman ${r.spearman.value.toFixed(2)}`, series: A.sets.map((set, k) => ({ name: set.name, points: [...set.scores[s]].map((v, i) => [v, B.sets[k].scores[s][i]] as [number, number]) })) };
  }), 500)]);
}
files.push(["layers.svg", scatterSvg("Per-layer log f_l matched by role: Spearman across models against the tensor's position", "position in the first model (0 = input side)", "Spearman over all inputs",
  pairs.filter((p) => p.layers.length).map((p) => ({
    label: `${p.a} / ${p.b}`,
    series: [...new Set(p.layers.map((l) => l.type.split(".")[0]))].map((g) => ({ name: g, points: p.layers.filter((l) => l.type.split(".")[0] === g).map((l) => [l.positionA, l.spearman] as [number, number]) })),
  })))]);
writeReportFiles(a.out, files);
console.log(`report: ${a.out}/ (table.md, table.json, scatter-*.svg, layers.svg); ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
Deno.exit(0);
