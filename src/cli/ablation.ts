// ablation --model weights/diffusion-fashion.safetensors [--t 1,2,4,8,16,32,64,128,256,512] [--loss l1|l2]
//          [--B 5] [--fit 100] [--eval 100] [--ood mnist] [--batch 64] [--backend auto] [--seed 0] [--out reports/ablation]
// The diffusion model's timestep ablation in the paper's form: for each step t, the features are the
// gradient of the eps-loss at t (one noise draw per input); AUROC of the gradient method and of
// typicality (on that same loss) against t, in-distribution test images vs the OOD set, at B = 5.
// Writes table.md, table.json and auroc-vs-t.svg. Same protocol as `ood` (seeded permutations of
// the test splits; fit on the first half, evaluate on the second).
import "./errors.ts";
import { parseArgs } from "node:util";
import * as T from "../autograd/index.ts";
import { subset } from "../data/dataset.ts";
import { loadDataset } from "../data/mnist.ts";
import { readCheckpoint } from "../io/safetensors.ts";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { type Diffusion, parseDiffusionScore } from "../models/diffusion.ts";
import { loadModel } from "../models/registry.ts";
import { evaluateSets, setFeatures } from "../ood/pipeline.ts";
import { lineLog2Svg } from "../ood/plots.ts";
import { progressBar } from "./progress.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "weights/diffusion-fashion.safetensors" },
    t: { type: "string", default: "1,2,4,8,16,32,64,128,256,512" },
    loss: { type: "string", default: "l1" },
    B: { type: "string", default: "5" },
    fit: { type: "string", default: "100" },
    eval: { type: "string", default: "100" },
    ood: { type: "string", default: "mnist" },
    batch: { type: "string", default: "64" },
    backend: { type: "string", default: "auto" },
    seed: { type: "string", default: "0" },
    out: { type: "string", default: "reports/ablation" },
  },
});

const steps = a.t!.split(",").map((s) => parseDiffusionScore(a.loss!, s));
const B = Number(a.B), nFit = Number(a.fit), nEval = Number(a.eval), seed = Number(a.seed);
if (!(Number.isInteger(B) && B >= 1)) throw new Error(`ablation: --B '${a.B}': expected a positive integer`);
for (const [k, v] of [["fit", nFit], ["eval", nEval]] as const) if (!(Number.isInteger(v) && v >= 2 * B)) throw new Error(`ablation: --${k} '${v}': expected an integer >= 2B (${2 * B})`);
const meta = readCheckpoint(a.model!).metadata;
if (meta.kind !== "diffusion") throw new Error(`ablation: --model ${a.model} is a '${meta.kind}' model; the timestep ablation needs a diffusion model`);
const backend = await selectBackend(a.backend as BackendChoice);
const model = await loadModel(a.model!, backend) as unknown as Diffusion;
for (const s of steps) model.setScore(s); // validates every t against the model's T
const inName = meta.data ?? "fashion";
const test = loadDataset(inName, "test");
const perm = new T.Generator(1000 + seed).permutation(test.n), half = Math.floor(test.n / 2);
if (nFit > half || nEval > test.n - half) throw new Error(`ablation: --fit ${nFit} / --eval ${nEval} exceed the halves of the ${test.n}-image test split`);
const fitSet = subset(test, perm.subarray(0, nFit), `${inName}-fit`), inSet = subset(test, perm.subarray(half, half + nEval), inName);
const other = loadDataset(a.ood!, "test");
const oodSet = subset(other, new T.Generator(3000 + seed).permutation(other.n).subarray(0, nEval), a.ood!);

const t0 = performance.now();
const rows: { t: number; gradient: number; typicality: number; likelihood: number; ci: [number, number]; ciTyp: [number, number] }[] = [];
const bar = progressBar(`ablation B=${B}`, "t {t}");
bar.start(steps.length * (nFit + 2 * nEval), 0, { t: "-" });
let done = 0;
for (const s of steps) {
  model.setScore(s);
  const t = s.kind === "loss" ? s.t : 0;
  const feats = [];
  for (const set of [fitSet, inSet, oodSet]) {
    feats.push(await setFeatures(model, set, { groupSize: B, batch: Number(a.batch), seed, onProgress: (k) => bar.update((done += k), { t }) }));
  }
  const e = evaluateSets(`diffusion-t${t}`, B, feats[0].names, feats[0], feats[1], [feats[2]], seed);
  const m = (name: string) => e.results[oodSet.name].find((r) => r.method === name)!.metrics;
  rows.push({ t, gradient: m("gradient").auroc, typicality: m("typicality").auroc, likelihood: m("likelihood").auroc, ci: m("gradient").aurocCI, ciTyp: m("typicality").aurocCI });
}
bar.stop();
const f3 = (v: number) => v.toFixed(3);
const md = `# Timestep ablation: ${a.model}, ${inName} vs ${oodSet.name}, B = ${B}, ${a.loss} eps-loss\n\n` +
  `fit ${nFit}, evaluate ${nEval} per set; AUROC with 95% bootstrap intervals.\n\n| t | gradient | typicality | likelihood |\n|---|---|---|---|\n` +
  rows.map((r) => `| ${r.t} | ${f3(r.gradient)} [${f3(r.ci[0])}, ${f3(r.ci[1])}] | ${f3(r.typicality)} [${f3(r.ciTyp[0])}, ${f3(r.ciTyp[1])}] | ${f3(r.likelihood)} |`).join("\n") + "\n";
Deno.mkdirSync(a.out!, { recursive: true });
const write = (name: string, text: string) => {
  const tmp = `${a.out}/.${name}.tmp`;
  Deno.writeTextFileSync(tmp, text);
  Deno.renameSync(tmp, `${a.out}/${name}`);
};
write("table.md", md);
write("table.json", JSON.stringify({ model: a.model, B, fit: nFit, eval: nEval, ood: oodSet.name, loss: a.loss, seed, rows }, null, 2));
write("auroc-vs-t.svg", lineLog2Svg(`${inName} vs ${oodSet.name}, B=${B}: AUROC against the step t`, "t", "AUROC", [
  { name: "gradient", points: rows.map((r) => [r.t, r.gradient]) },
  { name: "typicality", points: rows.map((r) => [r.t, r.typicality]) },
]));
console.log("\n" + md);
console.log(`${a.out}/: table.md, table.json, auroc-vs-t.svg (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
Deno.exit(0);
