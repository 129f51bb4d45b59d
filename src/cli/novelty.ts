// novelty: what a novelty record shows (train --record-novelty; src/models/novelty.ts).
//
//   npm run novelty -- --record FILE.csv[.gz] [--model weights.safetensors] [--out reports/novelty]
//                      [--top 8] [--batch 250] [--seed 0] [--backend auto|cpu|webgpu|wasm] [--force]
// Reads the record (each recorded training image's FIM-induced norm n(x) at first exposure, its loss
// and per-layer norms), computes every recorded image's loss under the final weights (--model,
// default the weights file the recording run wrote, named in the record; it must be the same model
// and data), and writes to --out: most-novel.png and least-novel.png (a row per class, --top images
// each, ranked by relative novelty: log n(x) minus the median of its batch, which removes the step's
// effect), novelty-vs-step.svg (novelty and first loss against the step; final loss against relative
// novelty and first loss), table.md and table.json (Spearman correlations with 95% bootstrap
// intervals: does novelty at first exposure predict the loss at the end of training, beyond the
// first loss; per class).
import { notice, workStarts } from "./errors.ts";
import { BACKEND, flag, inFile, int, outDir, parseOptions, usageError } from "../io/options.ts";
import { subset } from "../data/dataset.ts";
import { DATASETS, loadDataset, splitSize } from "../data/mnist.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel, resolveConfig } from "../models/registry.ts";
import { readNoveltyRecord } from "../models/novelty.ts";
import { canonical } from "../models/resume.ts";
import { lossesOf } from "../ood/features_of.ts";
import { analyseNovelty, noveltyScale, noveltyStrips } from "../ood/novelty_report.ts";
import { scatterSvg } from "../ood/plots.ts";
import { writeReportFiles } from "../ood/report.ts";
import { checkModels, checkReportFolder } from "./model_inputs.ts";
import { barFor } from "./progress.ts";

const a = parseOptions("novelty", {
  record: inFile().required(),
  model: inFile(),
  out: outDir().default("reports/novelty"),
  top: int({ min: 1, max: 64 }).default(8),
  batch: int({ min: 1, max: 4096 }).default(250),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  backend: BACKEND,
  force: flag(),
});
let rec;
try {
  rec = await readNoveltyRecord(a.record);
} catch (e) {
  throw usageError("novelty", "--record", a.record, (e as Error).message);
}
const h = rec.header;
if (!(DATASETS as readonly string[]).includes(h.data)) throw usageError("novelty", "--record", a.record, `was recorded on '${h.data}' (allowed: records of ${DATASETS.join(" or ")} runs)`);
if (!rec.rows.length) throw usageError("novelty", "--record", a.record, "holds no rows (the run recorded nothing yet)");
const trainN = splitSize(h.data, "train");
const bad = rec.rows.find((r) => r.index >= trainN || !(r.novelty > 0));
if (bad) throw usageError("novelty", "--record", a.record, `a row of step ${bad.step} has index ${bad.index} or novelty ${bad.novelty} (allowed: an index below ${trainN}, the ${h.data} training split's size, and a positive novelty)`);
const modelPath = a.model ?? h.weights;
try {
  Deno.statSync(modelPath);
} catch {
  throw usageError("novelty", "--model", modelPath, `no such file${a.model ? "" : " (the weights file the record names; give --model)"}`);
}
const { models } = await checkModels("novelty", "--model", [modelPath], h.data);
const m = models[0];
// Both configs merged with today's defaults, so a record and weights of one model compare equal.
if (m.file.kind !== h.kind || canonical(m.file.config) !== canonical(await resolveConfig(h.kind, h.config, `novelty record ${a.record}: header config`))) {
  throw usageError("novelty", "--model", modelPath, `is a ${m.file.kind} with config ${canonical(m.file.config)}, the record's model is a ${h.kind} with config ${canonical(h.config)}`);
}
if (m.file.decoded.metadata.data !== undefined && m.file.decoded.metadata.data !== h.data) throw usageError("novelty", "--model", modelPath, `was trained on ${m.file.decoded.metadata.data}, the record on ${h.data}`);
checkReportFolder("novelty", a.out, a.force, [{ option: "--record", path: a.record }, { option: "--model", path: modelPath }]);
workStarts();

const t0 = performance.now();
const backend = await selectBackend(a.backend, { onNotice: notice });
const train = loadDataset(h.data, "train", { onNotice: notice });
const model = await loadModel(modelPath, backend, m.file);
const keys = rec.rows.map((r) => r.index), bar = barFor("final losses", "images");
let done = 0;
const fin = await lossesOf(model, subset(train, keys), keys, { batch: a.batch, seed: a.seed, onProgress: (k) => bar.update((done += k), keys.length) }).finally(() => bar.stop());
console.log(`${rec.rows.length} recorded images (${new Set(rec.rows.map((r) => r.step)).size} steps of ${h.perBatch}); final losses under ${modelPath} in ${((performance.now() - t0) / 1000).toFixed(1)} s; mean ${(fin.reduce((s, v) => s + v, 0) / fin.length).toFixed(4)} bits/dim`);

const an = analyseNovelty(rec, fin, { seed: a.seed });
const strips = noveltyStrips(rec, an.relative, train, a.top);
const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : "-");
let md = `# Novelty at first exposure\n\nRecord: ${a.record} (${h.kind} on ${h.data}, batch ${h.batch}, a whole batch every ${h.every}th step of the first ${h.window} steps: ${an.rows} images at ${an.steps} steps). Final weights: ${modelPath}. Loss: NLL in ${h.loss}.\n\n`;
md += "| Spearman correlation | rho [95% CI] |\n|---|---|\n" + an.correlations.map((c) => `| ${c.what} | ${f3(c.spearman.value)} [${f3(c.spearman.ci[0])}, ${f3(c.spearman.ci[1])}] |\n`).join("");
md += "\nPer class: relative novelty vs final loss.\n\n| class | images | Spearman |\n|---|---|---|\n" + an.perClass.map((c) => `| ${c.label} | ${c.n} | ${f3(c.spearman)} |\n`).join("");
const P = model.numParameters(), w = h.window;
const scale = noveltyScale(rec, P, [0, 1, Math.ceil(w / 4), Math.ceil(w / 2), w]);
md += `\nn(x) / (b P) (b = ${h.batch}, P = ${P} parameters): about 1 if v_hat were diag(F) / b with a negligible mean gradient.\n\n| steps | images | median | mean |\n|---|---|---|---|\n` +
  scale.map((s) => `| ${s.from}-${s.to - 1} | ${s.images} | ${s.median.toPrecision(3)} | ${s.mean.toPrecision(3)} |\n`).join("");
md += `\nmost-novel.png / least-novel.png: one row per class (${strips.picks.map((p) => p.label).join(", ")}), ${a.top} images each, by relative novelty (most novel first / least novel first).\n`;
console.log(`\n${md}`);
const pts = (x: ArrayLike<number>, y: ArrayLike<number>) => Array.from(x, (v, i) => [v, y[i]] as [number, number]);
const step = rec.rows.map((r) => r.step), logN = rec.rows.map((r) => Math.log10(r.novelty)), loss0 = rec.rows.map((r) => r.loss);
const svg = scatterSvg(`Novelty at first exposure (${h.kind} on ${h.data}, ${an.rows} images)`, "", "", [
  { label: "log10 n(x) against the step", series: [{ name: "n(x)", points: pts(step, logN) }] },
  { label: "loss at first exposure (bits/dim) against the step", series: [{ name: "loss", points: pts(step, loss0) }] },
  { label: "final loss (y) against relative novelty (x)", series: [{ name: "image", points: pts(an.relative, fin) }] },
  { label: "final loss (y) against the loss at first exposure (x)", series: [{ name: "image", points: pts(loss0, fin) }] },
], 1500);
writeReportFiles(a.out, [
  ["table.md", md],
  ["table.json", JSON.stringify({ record: a.record, model: modelPath, header: { ...h, layers: h.layers.length }, parameters: P, correlations: an.correlations, perClass: an.perClass, scale, strips: strips.picks }, null, 1)],
  ["most-novel.png", strips.most],
  ["least-novel.png", strips.least],
  ["novelty-vs-step.svg", svg],
]);
console.log(`report: ${a.out}/ (table.md, table.json, most-novel.png, least-novel.png, novelty-vs-step.svg); ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
Deno.exit(0);
