// features --model M --input <set> --out f.npz|f.csv [--objective NAME] [--B 1] [--shard k/n]
//          [--batch 64] [--seed 0] [--backend auto|cpu|webgpu|wasm] [--force]
// The layer-wise gradient features of a set as a file (src/ood/feature_file.ts): per input (or
// group of B consecutive inputs) log f_l for every parameter tensor, the objective's value and an
// id. .npz: numpy.load(f) gives features float32 [N, L], layers [L], sizes [L], nll [N], ids [N] and
// meta (JSON); .csv: pandas.read_csv(f, comment="#"). `fit` and `score` take these files in
// place of images, `ood` as OOD sets.
// --input: a packaged set `mnist|fashion[:train|test][:from-to]` (the split's own order; ids
// `fashion-test:i`) or image files (a folder of PNGs, .npy, IDX, CIFAR-10 binary; ids are file names
// or `file:index`). --objective: what is differentiated (the model's default: the NLL; a diffusion
// model's L1 eps-loss at t = 1; see the model's list in the refusal). Each input's draws come from
// its pixels and --seed.
// --shard k/n: only shard k (0-based) of n, a contiguous run of whole passes of --batch inputs, so
// n machines can share a set: merged in order, the shards hold exactly the rows of one run, and
// `fit --data s0.npz,s1.npz,...` fits exactly as on one file. (README, "Features as files".)
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, flag, inFile, int, outFile, parseOptions, setOrPath, text, usageError } from "../io/options.ts";
import { subset } from "../data/dataset.ts";
import { conformShape, loadSetSpec } from "../data/image_files.ts";
import { DATASETS } from "../data/mnist.ts";
import { parseSetSpec } from "../data/selection.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkModelFile, loadModel } from "../models/registry.ts";
import { sha256Hex } from "../ood/detector.ts";
import { encodeFeatureCsv, encodeFeatureNpz, FEATURES_FORMAT, FEATURES_VERSION, featureFile, shardRange } from "../ood/feature_file.ts";
import { passSize, setFeatures } from "../ood/loop.ts";
import { objectiveFor } from "./objective_option.ts";
import { progressBar } from "./progress.ts";

const a = parseOptions("features", {
  model: inFile().required(),
  input: setOrPath(DATASETS, (r) => parseSetSpec(r, DATASETS) !== null).required(),
  out: outFile().required(),
  objective: text(),
  B: int({ min: 1, max: 1000 }).default(1),
  shard: text(),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  backend: BACKEND,
  force: flag(),
});

// Every option and file checked before any work.
const csv = /\.csv$/i.test(a.out);
if (!csv && !/\.npz$/i.test(a.out)) throw usageError("features", "--out", a.out, "expected a file name ending in .npz or .csv");
let k = 0, nShards = 1;
if (a.shard !== undefined) {
  const m = /^(\d+)\/(\d+)$/.exec(a.shard);
  if (!m || !(Number(m[2]) >= 1) || !(Number(m[1]) < Number(m[2]))) throw usageError("features", "--shard", a.shard, "expected k/n with 0 <= k < n (e.g. 0/4: the first of 4 shards)");
  [k, nShards] = [Number(m[1]), Number(m[2])];
}
checkApart("features", [{ option: "--out", path: a.out, kind: "file" }], [{ option: "--model", path: a.model }, { option: "--input", path: a.input }]);
const file = await checkModelFile(a.model);
const objectiveName = objectiveFor("features", file, a.model, a.objective);
const { set, ids } = loadSetSpec(a.input, { onNotice: notice, what: "features: --input" });
const conformed = conformShape(set, file.probe.imageShape, `features: --input ${a.input} (--model ${a.model})`);
const B = a.B;
if (set.n < B) throw usageError("features", "--B", String(B), `is more than the ${set.n} image(s) of ${a.input}`);
const per = passSize(file.probe.objective(objectiveName), B, a.batch);
const [from, to] = shardRange(set.n, per, k, nShards);
if (to - from < B && nShards > 1) throw usageError("features", "--shard", a.shard!, `is empty: ${set.n} inputs in passes of ${per} make ${Math.ceil(set.n / per)} pass(es), fewer than ${nShards} shards (use fewer shards)`);
workStarts();

const t0 = performance.now();
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await loadModel(a.model, backend, file);
const objective = model.objective(objectiveName);
const part = from === 0 && to === set.n ? conformed : { ...subset(conformed, Array.from({ length: to - from }, (_, i) => from + i)), name: conformed.name };
const bar = progressBar("features", "{rate} inputs/s");
bar.start(to - from - ((to - from) % B), 0, { rate: "-" });
const f = await setFeatures(model, objective, part, {
  groupSize: B, batch: a.batch, seed: a.seed,
  onProgress: (done) => bar.update(done, { rate: (done / ((performance.now() - t0) / 1000)).toFixed(0) }),
});
bar.stop();
const out = featureFile({
  format: FEATURES_FORMAT, version: FEATURES_VERSION,
  model: { path: a.model, sha256: await sha256Hex(Deno.readFileSync(a.model)), kind: file.kind, image: [...model.imageShape] },
  objective: objective.name, measure: objective.measure, groupSize: B, seed: a.seed,
  set: { spec: a.input, n: set.n, batch: per }, shard: { k, n: nShards, from, to },
}, f, model.namedParameters().map(([, p]) => p.size), ids.slice(from, to));
writeFileAtomic(a.out, csv ? encodeFeatureCsv(out) : encodeFeatureNpz(out));
console.log(`features: ${a.out}: ${out.logf.length} ${B === 1 ? "inputs" : `groups of ${B}`} x ${out.layers.length} layers (${objective.measure.short}; inputs [${from}, ${to}) of ${set.n}${nShards > 1 ? `, shard ${k} of ${nShards}` : ""}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
Deno.exit(0);
