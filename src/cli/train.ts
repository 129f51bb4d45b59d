// train --model vae|glow|diffusion --data fashion|mnist|<images> [--steps N] [--batch 64] [--lr LR] [--seed 0]
//       [--optimizer adam|adamax] [--clip 100] [--warmup 200] [--config JSON]
//       [--out weights/runs/<model>-<data>-<k>.safetensors] [--checkpoint-every 500]
//       [--resume FILE.ckpt.safetensors] [--eval-n 10000] [--backend auto|cpu|webgpu|wasm] [--force]
//       [--record-novelty FILE.csv]
// --steps is the total step count (a resumed run continues to it; it must exceed the checkpoint's
// step). The default --out is a new file under weights/runs/ (never a shipped file); the checkpoint
// goes next to it as <out>.ckpt.safetensors. --resume continues with the checkpoint's settings;
// options given that differ from them are refused (listing the differences) unless --force.
// --data also takes image files (a folder of PNGs, an .npy of uint8 [N,H,W] or [N,C,H,W], an IDX
// *-ubyte file, CIFAR-10 binary): all but the last tenth train, the last tenth is the test set; a
// Glow then takes the files' image shape unless --config gives one.
// --record-novelty FILE: during the first epoch, each recorded training example's FIM-induced norm
// at first exposure under Adam's v_hat, its loss and per-layer norms (src/models/novelty.ts; Adam,
// vae or glow); written with every checkpoint, continued by --resume (npm run novelty reads it).
// --config: a JSON object of the model's config keys, or a named config (the paper's sizes:
// glow-paper, diffusion-paper, vae-paper; docs/paper-grid.md), which also names the model kind.
import { notice, onFailure, workStarts } from "./errors.ts";
import { BACKEND, checkApart, checkOutput, choice, flag, inFile, int, jsonObject, nameOrPath, num, Opt, outFile, parseOptions, UsageError, usageError } from "../io/options.ts";
import { isBuiltinSet, setLabel, trainTestSets } from "../data/image_files.ts";
import { pathExists as exists } from "../data/files.ts";
import { DATASETS, imageShapeOf, loadDataset, splitSize } from "../data/mnist.ts";
import { saveTensors } from "../io/safetensors.ts";
import { releaseReservation, reserveNewName } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkImageShape, checkModelFile, createModel, isTrainingCheckpoint, MODEL_KINDS, presetConfig, PRESET_NAMES, resolveConfig, trainingDefaults } from "../models/registry.ts";
import { planResume, type RunSettings, type SettingName, storedSettings } from "../models/resume.ts";
import { evaluate, metadataOf, train } from "../models/train.ts";
import { noveltyHooks, planNoveltyRecord } from "../models/novelty.ts";
import { barFor } from "./progress.ts";

const OPTIMIZERS = ["adam", "adamax"] as const;
// The run's settings, declared once: parsed from the command line and re-checked when a checkpoint supplies them.
const SETTING_OPTS = {
  data: nameOrPath(DATASETS),
  batch: int({ min: 1, max: 4096 }),
  lr: num({ gt: 0, max: 10 }),
  seed: int({ max: 2 ** 32 - 1 }),
  optimizer: choice(OPTIMIZERS),
  clip: num({ gt: 0, max: 1e12 }),
  warmup: int({ max: 10_000_000 }),
};
const a = parseOptions("train", {
  model: choice(MODEL_KINDS).default("vae"),
  data: SETTING_OPTS.data.default("fashion"),
  steps: int({ min: 1, max: 10_000_000 }),
  batch: SETTING_OPTS.batch.default(64),
  lr: SETTING_OPTS.lr,
  seed: SETTING_OPTS.seed.default(0),
  optimizer: SETTING_OPTS.optimizer,
  clip: SETTING_OPTS.clip.default(100),
  warmup: SETTING_OPTS.warmup.default(200),
  out: outFile(),
  "checkpoint-every": int({ min: 1, max: 10_000_000 }).default(500),
  resume: inFile(),
  "eval-n": int({ min: 1, max: 10000 }).default(10000),
  backend: BACKEND,
  config: new Opt<string | Record<string, unknown>>((raw, c) => {
    if (PRESET_NAMES.includes(raw)) return raw;
    try {
      JSON.parse(raw);
    } catch {
      // A bare word that is no JSON: a misspelt name rather than broken JSON.
      if (/^[A-Za-z][\w-]*$/.test(raw)) throw usageError("train", "--config", raw, `not a named config (allowed: ${PRESET_NAMES.join(", ")}, or a JSON object of config keys)`);
    }
    return jsonObject().parse(raw, c);
  }),
  force: flag(),
  "record-novelty": outFile(),
});
// A named config carries its kind: --model may repeat it, not contradict it.
const preset = typeof a.config === "string" ? await presetConfig(a.config) : null;
if (preset && a.given.has("model") && a.model !== preset.kind) throw usageError("train", "--config", a.config as string, `is a ${preset.kind} config, but --model is ${a.model} (leave --model out, or give --model ${preset.kind})`);
const kind = preset?.kind ?? a.model;
const config = preset ? preset.config : a.config as Record<string, unknown> | undefined;

// Image files as data: read now (a bad file is refused before any work), split train / last tenth test.
const fileSets = new Map<string, ReturnType<typeof trainTestSets>>();
function setsOf(spec: string) {
  if (!fileSets.has(spec)) fileSets.set(spec, trainTestSets(spec, { onNotice: notice }));
  return fileSets.get(spec)!;
}
const shapeOfData = (spec: string): [number, number, number] => {
  if (isBuiltinSet(spec)) return imageShapeOf(spec);
  const t = setsOf(spec).train;
  return [t.c, t.h, t.w];
};
const imageOfData = trainingDefaults(kind).imageFromData && !isBuiltinSet(a.data) && !config?.image ? { image: shapeOfData(a.data) } : {};

// The settings from the command line (defaults filled in), then the checkpoint's when resuming.
const cli: RunSettings = {
  kind, data: a.data, batch: a.batch, seed: a.seed, clip: a.clip, warmup: a.warmup,
  config: await resolveConfig(kind, config || Object.keys(imageOfData).length ? { ...config, ...imageOfData } : undefined, "train: --config"),
  lr: a.lr ?? trainingDefaults(kind).lr,
  optimizer: a.optimizer ?? trainingDefaults(kind).optimizer,
};
const given = new Set<SettingName>();
for (const [opt, s] of [["model", "kind"], ["config", "config"], ["data", "data"], ["batch", "batch"], ["lr", "lr"], ["optimizer", "optimizer"], ["seed", "seed"], ["clip", "clip"], ["warmup", "warmup"]] as const) {
  if (a.given.has(opt)) given.add(s);
}
if (preset) given.add("kind"); // a named config names the kind
let settings = cli, startStep = 0;
if (a.resume) {
  const file = await checkModelFile(a.resume);
  if (!isTrainingCheckpoint(file.decoded)) throw usageError("train", "--resume", a.resume, "is a weights file, not a training checkpoint (allowed: a *.ckpt.safetensors written by train)");
  startStep = Number(file.decoded.metadata.step);
  // The stored config merged with the defaults (as checkModelFile resolved it), so both sides compare in full.
  const plan = planResume(cli, given, { ...storedSettings(file.decoded, a.resume), config: file.config });
  if (plan.fixed.length) throw usageError("train", "--resume", a.resume, `the model differs from the checkpoint's: ${plan.fixed.join(", ")}; a checkpoint resumes only into its own model (leave --model/--config out)`);
  if (plan.differences.length && !a.force) {
    throw usageError("train", "--resume", a.resume, `the command line differs from the checkpoint: ${plan.differences.join(", ")}; leave these options out to continue with the checkpoint's settings, or add --force to use the command line's`);
  }
  // The stored config merged with the defaults (and put in today's form), as the command line's is.
  settings = { ...plan.settings, config: await resolveConfig(plan.settings.kind, plan.settings.config, `checkpoint ${a.resume}: __metadata__.config`) };
  const el = file.decoded.metadata.elapsed_s;
  if (el !== undefined && !(el.trim() !== "" && Number(el) >= 0 && Number.isFinite(Number(el)))) throw new Error(`checkpoint ${a.resume}: __metadata__.elapsed_s is '${el}', not a number of seconds`);
  // Settings taken from the checkpoint pass the same checks as the command line's.
  for (const [k, o] of Object.entries(SETTING_OPTS)) {
    if (!given.has(k as SettingName)) o.parse(String(settings[k as SettingName]), { cmd: "train", name: k, force: false, label: `checkpoint ${a.resume}: __metadata__.${k}` });
  }
  if (a.steps === undefined) throw new UsageError(`train: --steps is required with --resume (allowed: the total step count to train to, more than the checkpoint's ${startStep})`);
  if (a.steps <= startStep) {
    throw usageError("train", "--steps", String(a.steps), `the checkpoint is already at step ${startStep}; --steps is the total step count, so give more than ${startStep} (to make weights of the checkpoint as it is, use export)`);
  }
}
const steps = a.steps ?? 3000;
checkImageShape(settings.kind, settings.config, shapeOfData(settings.data), settings.data, given.has("config") ? "train: --config" : "train: --model");
const trainN = isBuiltinSet(settings.data) ? splitSize(settings.data, "train") : setsOf(settings.data).train.n;
if (settings.batch > trainN) throw usageError("train", "--batch", String(settings.batch), `at most the ${trainN} images of the ${settings.data} training split`);
const testN = isBuiltinSet(settings.data) ? splitSize(settings.data, "test") : setsOf(settings.data).test.n;
if (a.given.has("eval-n") && a["eval-n"] > testN) throw usageError("train", "--eval-n", String(a["eval-n"]), `at most the ${testN} images of the ${settings.data} test set (the default takes them all)`);

// Outputs: checked now, before any work. The default is a new name, so nothing is ever replaced:
// the first free one is checked here and reserved (exclusive create) once work starts, so runs
// started at once take different names.
const defaultOut = (k: number) => `weights/runs/${settings.kind}-${setLabel(settings.data)}-${k}.safetensors`;
let out = a.out;
if (out === undefined) {
  checkOutput("train", "--out (default)", "weights/runs", a.force, "dir"); // created once work starts
  for (let k = 1; ; k++) {
    if (![defaultOut(k), ckptOf(defaultOut(k))].some(exists)) {
      out = defaultOut(k);
      break;
    }
  }
}
let ckpt = ckptOf(out);
// (A default in a folder that does not exist yet is a new file; its nearest folder was checked above.)
if (a.out !== undefined || exists("weights/runs")) {
  checkOutput("train", a.out === undefined ? "--out (default)" : "--out", out, a.force);
  checkOutput("train", "checkpoint (from --out)", ckpt, a.force);
}
checkApart("train", [{ option: a.out === undefined ? "--out (default)" : "--out", path: out, kind: "file" }, { option: "checkpoint (from --out)", path: ckpt, kind: "file" }], [
  { option: given.has("data") || !a.resume ? "--data" : `--data (from ${a.resume})`, path: settings.data },
  { option: "--resume", path: a.resume },
]);
const novelty = a["record-novelty"] === undefined ? undefined : await planNoveltyRecord({
  path: a["record-novelty"], force: a.force, ...settings, trainN, resumeStep: startStep, weights: out, others: [out, ckpt, ...(a.resume ? [a.resume] : [])],
});

workStarts();
if (a.out === undefined) {
  Deno.mkdirSync("weights/runs", { recursive: true });
  const reserved = out = reserveNewName(defaultOut, (p) => !exists(ckptOf(p)));
  ckpt = ckptOf(out);
  onFailure(() => releaseReservation(reserved));
}
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await createModel(settings.kind, settings.config, backend, settings.seed);
console.log(`${settings.kind} on ${settings.data}: ${model.numParameters()} parameters, backend ${backend.name}${isBuiltinSet(settings.data) ? "" : `; test set: ${setsOf(settings.data).note}`}`);
const trainSet = isBuiltinSet(settings.data) ? loadDataset(settings.data, "train", { onNotice: notice }) : setsOf(settings.data).train;
const testSet = isBuiltinSet(settings.data) ? loadDataset(settings.data, "test", { onNotice: notice }) : setsOf(settings.data).test;
const trainBar = barFor("train", "ex", model.trainingLoss ? "eps-loss {loss}" : "loss {loss} bits/dim");
if (a.resume) console.log(`resumed from ${a.resume} at step ${startStep}`);
const res = await train(model, trainSet, {
  steps, batch: settings.batch, lr: settings.lr, seed: settings.seed, optimizer: settings.optimizer as "adam" | "adamax",
  clip: settings.clip, warmup: settings.warmup, checkpointEvery: a["checkpoint-every"],
  checkpointPath: ckpt, resume: a.resume, data: settings.data,
  onProgress: (p) => trainBar.update(p.step, p.steps, { loss: Number.isFinite(p.loss) ? p.loss.toFixed(3) : "-" }),
  ...(novelty ? noveltyHooks(novelty, model, trainSet) : {}),
}).finally(() => trainBar.stop());
const evalN = Math.min(a["eval-n"], testSet.n);
const evalBar = barFor("eval ", "ex");
const bpd = await evaluate(model, testSet, evalN, { onProgress: (d, n) => evalBar.update(d, n) }).finally(() => evalBar.stop());
console.log(`trained ${res.steps} steps in ${(res.seconds / 60).toFixed(1)} min; test NLL ${bpd.toFixed(4)} bits/dim (${settings.data} test, ${evalN} images)`);
await saveTensors(out, model.namedState(), metadataOf(model, {
  data: settings.data, steps: res.steps, seed: settings.seed, lr: settings.lr, batch: settings.batch, optimizer: settings.optimizer,
  train_seconds: res.seconds.toFixed(0), test_bpd: bpd.toFixed(4), test_eval_n: evalN,
  command: `npm run train -- ${Deno.args.join(" ")}`,
}));
console.log(`weights: ${out}\ncheckpoint: ${ckpt}`);
Deno.exit(0);

function ckptOf(path: string): string {
  return path.replace(/\.safetensors$/, "") + ".ckpt.safetensors";
}
