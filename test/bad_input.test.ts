// Bad input, table-driven, through the commands' real entry points (each CLI run as a subprocess in
// its own empty temp folder) and through the checkpoint reader. Every refused case runs with
// FIMSCOPE_STOP_BEFORE_WORK=1, which ends a command with exit 0 where validation ends and work
// would start; so each case must be refused before any work: exit 1, exactly one line on stderr
// (the `error:` line, naming the option or file, the value and what is allowed), nothing on stdout,
// its temp folder as it was and every shipped/tracked weights file byte-identical. Also here: the
// defaults that write (train, samples) go to new names, a reused report folder is cleared of the
// previous report's files only, atomic writes, and the FashionMNIST cache's checksum.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import * as T from "../src/autograd/index.ts";
import { decodeSafetensors, encodeSafetensors, type NamedTensor, readCheckpoint, saveTensors } from "../src/io/safetensors.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { BACKEND_CHOICES } from "../src/kernels/select.ts";
import { choice, flag, inFile, int, ints, nameOrPath, num, parseOptions } from "../src/io/options.ts";
import { createModel, loadModel } from "../src/models/registry.ts";
import { metadataOf } from "../src/models/train.ts";
import { encodeCifar10, encodeNpy, encodePngImage } from "../src/data/image_files.ts";
import { makeSet } from "../src/data/dataset.ts";
import { encodeMat, svhnColumnMajor } from "../src/data/mat.ts";
import { encodeNpz } from "../src/data/npz.ts";
import { NOVELTY_EVERY, NOVELTY_PER_BATCH, noveltyText } from "../src/models/novelty.ts";

const S = suite("bad input");
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const W = `${ROOT}/weights`;
const VAE = `${W}/vae-fashion.safetensors`, VAE_MNIST = `${W}/vae-mnist.safetensors`, GLOW = `${W}/glow-fashion.safetensors`;
const VAE_CKPT = `${W}/checkpoints/vae-fashion-step6000.ckpt.safetensors`;
const tmp = Deno.makeTempDirSync({ prefix: "fimscope-bad-input-" });
const dec = new TextDecoder();

const sha = (p: string) => createHash("sha256").update(Deno.readFileSync(p)).digest("hex");
function listTree(dir: string, pre = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    out.push(`${pre}${e.name}${e.isDirectory ? "/" : ""}`);
    if (e.isDirectory) out.push(...listTree(`${dir}/${e.name}`, `${pre}${e.name}/`));
  }
  return out.sort();
}

/** Every shipped file (weights/, tracked or not) and the tracked top-level files. */
const guarded = [...listTree(W).filter((f) => !f.endsWith("/") && !f.startsWith("runs/")).map((f) => `${W}/${f}`), `${ROOT}/README.md`, `${ROOT}/package.json`];
const before = new Map(guarded.map((f) => [f, sha(f)]));

function gitTracked(f: string): boolean {
  try {
    return new Deno.Command("git", { args: ["-C", ROOT, "ls-files", "--error-unmatch", f], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

// ---- crafted files -------------------------------------------------------------------------

/** A safetensors file from a header object (or any JSON value) and a data section. */
function rawSafetensors(header: unknown, data: Uint8Array): Uint8Array {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}
const floats = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

const shippedVae = readCheckpoint(VAE);
const vaeTensors: NamedTensor[] = [...shippedVae.tensors.values()];
function vaeWith(edit: (ts: NamedTensor[], meta: Record<string, string>) => void, name: string): string {
  const ts = vaeTensors.map((t) => ({ ...t, data: t.data.slice() }));
  const meta = { ...shippedVae.metadata };
  edit(ts, meta);
  const p = `${tmp}/${name}`;
  Deno.writeFileSync(p, encodeSafetensors(ts, meta));
  return p;
}
const NAN = vaeWith((ts) => (ts[2].data[5] = NaN), "nan.safetensors");
const INF = vaeWith((ts) => (ts[0].data[0] = -Infinity), "inf.safetensors");
const LATENT_NEG = vaeWith((_, m) => (m.config = JSON.stringify({ latent: -1, channels: [16, 32], outChannels: 8 })), "latent-neg.safetensors");
const LATENT_HUGE = vaeWith((_, m) => (m.config = JSON.stringify({ latent: 1e9, channels: [16, 32], outChannels: 8 })), "latent-huge.safetensors");
const CONFIG_KEY = vaeWith((_, m) => (m.config = JSON.stringify({ latnt: 16 })), "config-key.safetensors");
const CONFIG_ARRAY = vaeWith((_, m) => (m.config = "[16]"), "config-array.safetensors");
const KIND_BAD = vaeWith((_, m) => (m.kind = "gan"), "kind.safetensors");
const GLOW_CIFAR = `${tmp}/glow-32x32.safetensors`;
{
  const g = await createModel("glow", { image: [3, 32, 32], steps: 1, hidden: 4 }, T.cpu, 1);
  await saveTensors(GLOW_CIFAR, g.namedState(), metadataOf(g, { data: "fashion" }));
}
const WRONG_SHAPE = vaeWith((_, m) => (m.config = JSON.stringify({ latent: 8, channels: [16, 32], outChannels: 8 })), "wrong-shape.safetensors");
const NO_MOMENTS = `${tmp}/no-moments.ckpt.safetensors`;
Deno.writeFileSync(NO_MOMENTS, encodeSafetensors([...readCheckpoint(VAE_CKPT).tensors.values()].filter((t) => t.name !== "optimizer.v.decoder.out.bias"), readCheckpoint(VAE_CKPT).metadata));
const shippedCkpt = readCheckpoint(VAE_CKPT);
const BATCH0_CKPT = `${tmp}/batch0.ckpt.safetensors`;
Deno.writeFileSync(BATCH0_CKPT, encodeSafetensors([...shippedCkpt.tensors.values()], { ...shippedCkpt.metadata, batch: "0" }));
const ELAPSED_CKPT = `${tmp}/elapsed.ckpt.safetensors`;
Deno.writeFileSync(ELAPSED_CKPT, encodeSafetensors([...shippedCkpt.tensors.values()], { ...shippedCkpt.metadata, elapsed_s: "soon" }));
const NULL_HEADER = `${tmp}/null-header.safetensors`;
Deno.writeFileSync(NULL_HEADER, rawSafetensors(null, new Uint8Array(0)));
const NOT_ST = `${tmp}/not-safetensors.safetensors`;
Deno.writeTextFileSync(NOT_ST, "hello, this is not a checkpoint at all");
const USER_FILE = `${tmp}/user-notes.txt`;
Deno.writeTextFileSync(USER_FILE, "keep me");
const LINK = `${tmp}/link.png`;
Deno.symlinkSync(USER_FILE, LINK);
const CKPT_COPY = `${tmp}/copy.ckpt.safetensors`;
Deno.copyFileSync(VAE_CKPT, CKPT_COPY);
const A_DIR = `${tmp}/a-folder`;
Deno.mkdirSync(A_DIR);
// Data files for the readers (src/data): each refused when read, before any work.
const SVHN_DOUBLE = `${tmp}/svhn-double.mat`;
Deno.writeFileSync(SVHN_DOUBLE, encodeMat([{ name: "X", cls: "double", dims: [32, 32, 3, 1], values: svhnColumnMajor(new Uint8Array(3072)) }, { name: "y", cls: "double", dims: [1, 1], values: [1] }], { compress: true }));
const SVHN_CUT = `${tmp}/svhn-cut.mat`;
Deno.writeFileSync(SVHN_CUT, encodeMat([{ name: "X", cls: "uint8", dims: [32, 32, 3, 2], values: new Uint8Array(6144) }, { name: "y", cls: "double", dims: [2, 1], values: [1, 2] }]).subarray(0, 3000));
const GTSRB_BAD = `${tmp}/gtsrb-bad`;
Deno.mkdirSync(GTSRB_BAD);
Deno.writeTextFileSync(`${GTSRB_BAD}/GT-final_test.csv`, "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000.ppm;8;8;0;0;7;7;1\n");
Deno.writeTextFileSync(`${GTSRB_BAD}/00000.ppm`, "P3\n8 8\n255\n0 0 0\n");
const INET_FLOAT = `${tmp}/imagenet32-float.npz`;
Deno.writeFileSync(INET_FLOAT, encodeNpz({ "data.npy": encodeNpy(new Uint8Array(4 * 3072), [1, 3072], "<f4") }, true));
const EMPTY_NPY = `${tmp}/empty.npy`;
Deno.writeFileSync(EMPTY_NPY, encodeNpy(new Uint8Array(0), [0, 28, 28]));
const EMPTY_CELEBA = `${tmp}/celeba-empty`;
Deno.mkdirSync(EMPTY_CELEBA);
const HUGE_PNG = `${tmp}/huge.png`;
{
  const png = encodePngImage(new Uint8Array(4), 1, 2, 2);
  new DataView(png.buffer, png.byteOffset).setUint32(16, 24000);
  new DataView(png.buffer, png.byteOffset).setUint32(20, 24000);
  Deno.writeFileSync(HUGE_PNG, png);
}
const DANGLING_DIR = `${tmp}/png-dangling`;
Deno.mkdirSync(DANGLING_DIR);
Deno.writeFileSync(`${DANGLING_DIR}/a.png`, encodePngImage(new Uint8Array(784), 1, 28, 28));
Deno.symlinkSync(`${tmp}/gone.png`, `${DANGLING_DIR}/b.png`);

// Issue 19: stored constants and exact tensor sets (A), outputs apart from inputs (B), file limits and checks before work (C).
const shippedGlow = readCheckpoint(GLOW);
function glowWith(edit: (ts: NamedTensor[], meta: Record<string, string>) => NamedTensor[] | void, name: string): string {
  const meta = { ...shippedGlow.metadata };
  let ts: NamedTensor[] = [...shippedGlow.tensors.values()].map((t) => ({ ...t, data: t.data.slice() }));
  ts = edit(ts, meta) ?? ts;
  const p = `${tmp}/${name}`;
  Deno.writeFileSync(p, encodeSafetensors(ts, meta));
  return p;
}
const GLOW_NO_CONSTANTS = glowWith((ts) => ts.filter((t) => !/\.invconv\.(perm|sign)$/.test(t.name)), "glow-no-constants.safetensors");
// The metadata says 3 steps per level, the tensors are the 4-step model's: the 4th steps' tensors are not used.
const GLOW_EXTRA = glowWith((_, m) => void (m.config = JSON.stringify({ ...JSON.parse(m.config), steps: 3 })), "glow-3-of-4-steps.safetensors");
const GLOW_BAD_PERM = glowWith((ts) => {
  const p = ts.find((t) => t.name === "levels.0.steps.0.invconv.perm")!;
  p.data.fill(0);
  p.data.fill(1, 0, 2); // row 0 holds two 1s
}, "glow-bad-perm.safetensors");
const GLOW_BAD_SIGN = glowWith((ts) => void (ts.find((t) => t.name === "levels.1.steps.2.invconv.sign")!.data[1] = 0.5), "glow-bad-sign.safetensors");
const CKPT_EXTRA = `${tmp}/extra.ckpt.safetensors`;
Deno.writeFileSync(CKPT_EXTRA, encodeSafetensors([...shippedCkpt.tensors.values(), { name: "notes", shape: [1], data: new Float32Array(1) }], shippedCkpt.metadata));
const MOMENTS_NO_STEP = `${tmp}/moments-no-step.safetensors`;
{
  const { step: _, ...meta } = shippedCkpt.metadata;
  Deno.writeFileSync(MOMENTS_NO_STEP, encodeSafetensors([...shippedCkpt.tensors.values()], meta));
}
// Image files and a detector, as inputs that outputs must stay apart from.
const fashion10 = new Uint8Array(10 * 784).map((_, i) => (i * 37) % 256);
const PNG = `${tmp}/input.png`;
Deno.writeFileSync(PNG, encodePngImage(fashion10.subarray(0, 784), 1, 28, 28));
const NPY = `${tmp}/images.npy`;
Deno.writeFileSync(NPY, encodeNpy(fashion10, [10, 28, 28]));
const PNG_DIR = `${tmp}/pngs`;
Deno.mkdirSync(PNG_DIR);
for (let i = 0; i < 4; i++) Deno.writeFileSync(`${PNG_DIR}/img${i}.png`, encodePngImage(fashion10.subarray(i * 784, (i + 1) * 784), 1, 28, 28));
const PNG_DIR_LINK = `${tmp}/pngs-link`;
Deno.symlinkSync(PNG_DIR, PNG_DIR_LINK);
const DETECTOR = `${tmp}/glow.detector.json`;
const detectorJson = JSON.parse(Deno.readTextFileSync(`${ROOT}/web/data/glow-fashion.detector.json`));
Deno.writeTextFileSync(DETECTOR, JSON.stringify(detectorJson));
const CKPT_HARDLINK = `${tmp}/hardlink.ckpt.safetensors`;
Deno.linkSync(CKPT_COPY, CKPT_HARDLINK);
const NOT_OURS_DIR = `${tmp}/someones-folder`;
Deno.mkdirSync(NOT_OURS_DIR);
Deno.writeTextFileSync(`${NOT_OURS_DIR}/thesis.tex`, "keep me");
// Model paths inside a detector that are not regular files, and files over the size limits.
const withModelPath = (path: string, name: string) => {
  const p = `${tmp}/${name}`;
  Deno.writeTextFileSync(p, JSON.stringify({ ...detectorJson, model: { ...detectorJson.model, path } }));
  return p;
};
const DET_DEVZERO = withModelPath("/dev/zero", "devzero.detector.json");
const FIFO = `${tmp}/model.fifo`;
new Deno.Command("mkfifo", { args: [FIFO] }).outputSync();
const DET_FIFO = withModelPath(FIFO, "fifo.detector.json");
const DET_HUGE = `${tmp}/huge.detector.json`;
Deno.writeTextFileSync(DET_HUGE, "{");
Deno.truncateSync(DET_HUGE, 600 * 2 ** 20); // sparse: no disk used
const MODEL_HUGE = `${tmp}/huge.safetensors`;
Deno.writeFileSync(MODEL_HUGE, new Uint8Array(8));
Deno.truncateSync(MODEL_HUGE, 2 ** 30 + 8);
const DET_BOM = `${tmp}/bom.detector.json`;
Deno.writeTextFileSync(DET_BOM, "\uFEFF" + JSON.stringify(detectorJson));
// For compare-models, dynamics and novelty: a copy of the VAE (same step), the VAE without a step, novelty records.
const GLOW_CKPTS = `${W}/checkpoints/glow-fashion-step3000.ckpt.safetensors,${W}/checkpoints/glow-fashion-step6000.ckpt.safetensors`;
const VAE_COPY = `${tmp}/vae-copy.safetensors`;
Deno.copyFileSync(VAE, VAE_COPY);
const NO_STEP = vaeWith((_, m) => delete m.steps, "no-step.safetensors");
const vaeRecord = (weights: string) => noveltyText({
  header: { format: "fimscope-novelty-1", kind: "vae", config: { ...JSON.parse(shippedVae.metadata.config), image: [1, 28, 28] }, data: "fashion", seed: 0, batch: 64, perBatch: NOVELTY_PER_BATCH, every: NOVELTY_EVERY, window: 937, optimizer: "adam", beta2: 0.999, eps: 1e-8 ** 2, loss: "bits/dim", weights, layers: vaeTensors.map((t) => t.name) },
  rows: [{ step: 0, index: 5, label: 1, loss: 4, novelty: 2, logNovelty: new Float64Array(vaeTensors.length), logF: new Float64Array(vaeTensors.length) }],
});
const RECORD = `${tmp}/record.csv`, RECORD_GONE = `${tmp}/record-gone.csv`;
Deno.writeTextFileSync(RECORD, vaeRecord(VAE));
Deno.writeTextFileSync(RECORD_GONE, vaeRecord(`${tmp}/gone.safetensors`));
// For paper: ten grey images, and a data folder holding only the CIFAR-10 test file of the paper's layout.
const TEN_NPY = `${tmp}/ten.npy`;
Deno.writeFileSync(TEN_NPY, encodeNpy(new Uint8Array(10 * 784).map((_, i) => i % 251), [10, 28, 28]));
const PAPER_DIR = `${tmp}/paper-data`;
// A data folder whose SVHN test file is truncated: paper reads it before any work.
const PAPER_BAD = `${tmp}/paper-bad`;
Deno.mkdirSync(`${PAPER_BAD}/svhn`, { recursive: true });
Deno.copyFileSync(SVHN_CUT, `${PAPER_BAD}/svhn/test_32x32.mat`);
Deno.mkdirSync(`${PAPER_DIR}/cifar10`, { recursive: true });
Deno.writeFileSync(`${PAPER_DIR}/cifar10/test_batch.bin`, encodeCifar10(makeSet("c", new Uint8Array(20 * 3072).map((_, i) => i % 253), new Uint8Array(20), 3, 32, 32)));

// ---- the CLI cases ------------------------------------------------------------------------

interface Case {
  cmd: string;
  args: string[];
  /** What the one error line must say (the option or file, and the value). */
  error: RegExp;
  /** Files outside the shipped set that must not change. */
  keep?: string[];
}

const cases: Case[] = [
  // unknown options, positional arguments, repeated or valueless options: every command
  ...["demo", "train", "ood", "nll", "samples", "export", "fim"].map((cmd) => ({ cmd, args: ["--bogus", "1"], error: new RegExp(`^error: ${cmd}: unknown option '--bogus' \\(allowed: .*--backend`) })),
  { cmd: "demo", args: ["--backend=gpu"], error: new RegExp(`^error: demo: --backend 'gpu': not one of ${BACKEND_CHOICES.join(", ")}$`) },
  { cmd: "nll", args: ["--model", VAE, "stray"], error: /^error: nll: unexpected argument 'stray'/ },
  { cmd: "train", args: ["--steps", "5", "--steps", "6"], error: /^error: train: --steps given twice/ },
  { cmd: "train", args: ["--steps"], error: /^error: train: --steps needs a value$/ },
  { cmd: "ood", args: ["--loop=yes"], error: /^error: ood: --loop 'yes': --loop is a flag/ },
  // integers and ranges
  { cmd: "train", args: ["--steps", "0"], error: /^error: train: --steps '0': out of range \(allowed: an integer from 1 to/ },
  { cmd: "train", args: ["--steps", "-5"], error: /^error: train: --steps '-5': out of range/ },
  { cmd: "train", args: ["--steps", "abc"], error: /^error: train: --steps 'abc': not a number/ },
  { cmd: "train", args: ["--steps", "1e400"], error: /^error: train: --steps '1e400': not a finite number/ },
  { cmd: "train", args: ["--batch", "0"], error: /^error: train: --batch '0': out of range/ },
  { cmd: "train", args: ["--batch", "abc"], error: /^error: train: --batch 'abc': not a number/ },
  { cmd: "train", args: ["--batch", "2.5"], error: /^error: train: --batch '2.5': not an integer/ },
  { cmd: "train", args: ["--steps", "1.5"], error: /^error: train: --steps '1.5': not an integer/ },
  { cmd: "train", args: ["--seed", "abc"], error: /^error: train: --seed 'abc': not a number/ },
  { cmd: "train", args: ["--seed", "-1"], error: /^error: train: --seed '-1': out of range/ },
  { cmd: "train", args: ["--clip", "abc"], error: /^error: train: --clip 'abc': not a number/ },
  { cmd: "train", args: ["--clip", "0"], error: /^error: train: --clip '0': out of range \(allowed: a number > 0/ },
  { cmd: "train", args: ["--lr", "-0.1"], error: /^error: train: --lr '-0.1': out of range/ },
  { cmd: "train", args: ["--lr", "NaN"], error: /^error: train: --lr 'NaN': not a number/ },
  { cmd: "train", args: ["--warmup", "1.5"], error: /^error: train: --warmup '1.5': not an integer/ },
  { cmd: "train", args: ["--checkpoint-every", "0"], error: /^error: train: --checkpoint-every '0': out of range/ },
  { cmd: "train", args: ["--eval-n", "0"], error: /^error: train: --eval-n '0': out of range/ },
  { cmd: "nll", args: ["--model", VAE, "--n", "0"], error: /^error: nll: --n '0': out of range/ },
  { cmd: "nll", args: ["--model", VAE, "--n=-5"], error: /^error: nll: --n '-5': out of range/ },
  { cmd: "nll", args: ["--model", VAE, "--n", "20000"], error: /^error: nll: --n '20000': out of range \(allowed: an integer from 1 to 10000\)/ },
  { cmd: "samples", args: ["--model", GLOW, "--temperature", "abc"], error: /^error: samples: --temperature 'abc': not a number/ },
  { cmd: "samples", args: ["--model", GLOW, "--temperature", "-1"], error: /^error: samples: --temperature '-1': out of range/ },
  { cmd: "samples", args: ["--model", GLOW, "--n", "0"], error: /^error: samples: --n '0': out of range/ },
  { cmd: "fim", args: ["--samples", "abc"], error: /^error: fim: --samples 'abc': not a number/ },
  { cmd: "fim", args: ["--weights", "0"], error: /^error: fim: --weights '0': out of range/ },
  { cmd: "ood", args: ["--fit=-5"], error: /^error: ood: --fit '-5': out of range/ },
  { cmd: "ood", args: ["--fit", "0"], error: /^error: ood: --fit '0': out of range/ },
  { cmd: "ood", args: ["--batch", "0"], error: /^error: ood: --batch '0': out of range/ },
  { cmd: "ood", args: ["--seed", "abc"], error: /^error: ood: --seed 'abc': not a number/ },
  // comma lists
  { cmd: "ood", args: ["--B", "1,,5"], error: /^error: ood: --B '1,,5': empty item/ },
  { cmd: "ood", args: ["--B", "2.5"], error: /^error: ood: --B '2.5': '2.5' is not an integer/ },
  { cmd: "ood", args: ["--B", "-1"], error: /^error: ood: --B '-1': -1 is out of range/ },
  { cmd: "ood", args: ["--B", "1,1"], error: /^error: ood: --B '1,1': '1' is listed twice/ },
  { cmd: "ood", args: ["--B", "0,5"], error: /^error: ood: --B '0,5': 0 is out of range/ },
  { cmd: "nll", args: ["--model", VAE, "--data", "fashion,fashion"], error: /^error: nll: --data 'fashion,fashion': 'fashion' is listed twice/ },
  { cmd: "ood", args: ["--B", ""], error: /^error: ood: --B '': empty item/ },
  { cmd: "ood", args: ["--ood", "mnist,,noise"], error: /^error: ood: --ood 'mnist,,noise': empty item/ },
  { cmd: "nll", args: ["--model", VAE, "--data", "fashion,cifar"], error: /^error: nll: --data 'fashion,cifar': 'cifar' is not allowed/ },
  { cmd: "fim", args: ["--model", VAE, "--layers", "encoder.conv1.weight"], error: /^error: fim: --layers 'encoder.conv1.weight': two different parameter tensor names/ },
  { cmd: "fim", args: ["--model", VAE, "--layers", "encoder.conv1.weight,nope"], error: /^error: fim: --layers 'encoder.conv1.weight,nope': 'nope' is not a parameter tensor/ },
  // sizes that depend on the data or on other options
  { cmd: "ood", args: ["--fit", "6000"], error: /^error: ood: --fit '6000': at most 5000/ },
  { cmd: "ood", args: ["--eval", "5001"], error: /^error: ood: --eval '5001': at most 5000/ },
  { cmd: "ood", args: ["--fit", "4", "--B", "1,5"], error: /^error: ood: --B '1,5': group size 5 leaves 0 fit group\(s\)/ },
  { cmd: "ood", args: ["--eval", "3", "--B", "4"], error: /^error: ood: --B '4': group size 4 is larger than --eval 3/ },
  { cmd: "train", args: ["--batch", "4096", "--data", "mnist", "--out", "x.safetensors", "--steps", "1", "--batch", "5"], error: /^error: train: --batch given twice/ },
  { cmd: "fim", args: ["--model", VAE, "--weights", "100000"], error: /^error: fim: --weights '100000': out of range/ },
  // choices
  { cmd: "train", args: ["--backend", "nonsense"], error: new RegExp(`^error: train: --backend 'nonsense': not one of ${BACKEND_CHOICES.join(", ")}$`) },
  { cmd: "ood", args: ["--backend", "gpu"], error: /^error: ood: --backend 'gpu': not one of/ },
  { cmd: "train", args: ["--optimizer", "sgd"], error: /^error: train: --optimizer 'sgd': not one of adam, adamax$/ },
  { cmd: "train", args: ["--model", "gan"], error: /^error: train: --model 'gan': not one of vae, glow/ },
  { cmd: "train", args: ["--data", "cifar"], error: /^error: train: --data 'cifar': neither fashion, mnist nor an existing file or folder$/ },
  { cmd: "ood", args: ["--ood", "cifar"], error: /^error: ood: --ood 'cifar': 'cifar' is not allowed/ },
  { cmd: "ood", args: ["--ood", "fashion"], error: /^error: ood: --ood 'fashion': fashion is the in-distribution data of .*vae-fashion\.safetensors \(trained on it\)/ },
  { cmd: "ood", args: ["--model", VAE_MNIST, "--ood", "mnist,noise"], error: /^error: ood: --ood 'mnist,noise': mnist is the in-distribution data of .*vae-mnist/ },
  { cmd: "ood", args: ["--data", "mnist", "--ood", "mnist"], error: /^error: ood: --ood 'mnist': mnist is the in-distribution data .*\(--data\)/ },
  { cmd: "samples", args: ["--model", VAE, "--temperature", "0.5"], error: /^error: samples: --temperature '0.5': does not apply to .*, a vae model \(its sample options: none\)/ },
  // input files
  { cmd: "nll", args: [], error: /^error: nll: --model is required$/ },
  { cmd: "nll", args: ["--model", `${tmp}/missing.safetensors`], error: /^error: nll: --model '.*missing\.safetensors': no such file/ },
  { cmd: "nll", args: ["--model", A_DIR], error: /^error: nll: --model '.*a-folder': not a regular file/ },
  { cmd: "nll", args: ["--model", ""], error: /^error: nll: --model '': empty/ },
  { cmd: "ood", args: ["--model", `${VAE},${tmp}/missing.safetensors`], error: /^error: ood: --model '.*': '.*missing\.safetensors': no such file/ },
  { cmd: "ood", args: ["--model", `${VAE},${VAE}`], error: /^error: ood: --model '.*' is listed twice/ },
  { cmd: "ood", args: ["--model", `${VAE},${W}/../weights/vae-fashion.safetensors`], error: /^error: ood: --model '.*': .* are the same file/ },
  { cmd: "export", args: ["--out", `${tmp}/x.safetensors`], error: /^error: export: --checkpoint is required$/ },
  { cmd: "export", args: ["--checkpoint", VAE, "--out", `${tmp}/x.safetensors`], error: /^error: export: --checkpoint '.*vae-fashion\.safetensors': is a weights file, not a training checkpoint/ },
  { cmd: "train", args: ["--resume", VAE, "--steps", "7000"], error: /^error: train: --resume '.*vae-fashion\.safetensors': is a weights file, not a training checkpoint/ },
  // corrupt checkpoints and configs, through a command
  { cmd: "nll", args: ["--model", NAN], error: /^error: checkpoint .*nan\.safetensors: tensor '[^']+' holds a non-finite value \(NaN\) at index 5$/ },
  { cmd: "samples", args: ["--model", INF, "--out", `${tmp}/s.png`], error: /^error: checkpoint .*inf\.safetensors: tensor '[^']+' holds a non-finite value \(-Infinity\) at index 0$/ },
  { cmd: "ood", args: ["--model", `${VAE},${NAN}`], error: /^error: checkpoint .*nan\.safetensors: tensor/ },
  { cmd: "export", args: ["--checkpoint", NULL_HEADER, "--out", `${tmp}/x.safetensors`], error: /^error: checkpoint .*null-header\.safetensors: header is null, not a JSON object$/ },
  { cmd: "fim", args: ["--model", NOT_ST], error: /^error: checkpoint .*not-safetensors\.safetensors: header length \d+ exceeds file size/ },
  { cmd: "nll", args: ["--model", LATENT_NEG], error: /^error: checkpoint .*latent-neg\.safetensors: __metadata__\.config: vae config key 'latent' is -1 \(allowed: an integer from 1 to 4096\)$/ },
  { cmd: "nll", args: ["--model", LATENT_HUGE], error: /^error: checkpoint .*latent-huge\.safetensors: __metadata__\.config: vae config key 'latent' is 1000000000/ },
  { cmd: "ood", args: ["--model", CONFIG_KEY], error: /^error: checkpoint .*config-key\.safetensors: __metadata__\.config: unknown vae config key 'latnt'/ },
  { cmd: "fim", args: ["--model", CONFIG_ARRAY], error: /^error: checkpoint .*config-array\.safetensors: __metadata__\.config: config \[16\] is not an object/ },
  { cmd: "nll", args: ["--model", KIND_BAD], error: /^error: checkpoint .*kind\.safetensors: __metadata__\.kind 'gan' is not a model kind/ },
  { cmd: "train", args: ["--config", '{"latent":-1}'], error: /^error: train: --config: vae config key 'latent' is -1/ },
  { cmd: "train", args: ["--config", '{"latent":1e9}'], error: /^error: train: --config: vae config key 'latent' is 1000000000/ },
  { cmd: "train", args: ["--model", "glow", "--config", '{"levels":3}'], error: /^error: train: --config: glow config .* not divisible by 2\^levels = 8$/ },
  { cmd: "train", args: ["--model", "glow", "--config", '{"logit":0.5}'], error: /^error: train: --config: glow config key 'logit' is 0\.5 \(allowed: a number from 0 to 0\.25\)$/ },
  { cmd: "train", args: ["--model", "glow", "--config", '{"image":[3,32,32]}'], error: /^error: train: --config: the glow takes 3x32x32 images but fashion has 1x28x28 images$/ },
  { cmd: "nll", args: ["--model", GLOW_CIFAR], error: /^error: nll: --model .*glow-32x32\.safetensors: the glow takes 3x32x32 images but fashion has 1x28x28 images$/ },
  { cmd: "ood", args: ["--model", GLOW_CIFAR], error: /^error: ood: --model .*glow-32x32\.safetensors: the glow takes 3x32x32 images/ },
  { cmd: "nll", args: ["--model", WRONG_SHAPE], error: /^error: checkpoint .*wrong-shape\.safetensors: tensor 'encoder\.out\.weight' has shape \[1568,32\], the model expects \[1568,16\]$/ },
  { cmd: "train", args: ["--resume", NO_MOMENTS, "--steps", "7000"], error: /^error: checkpoint .*no-moments\.ckpt\.safetensors: tensor 'optimizer\.v\.decoder\.out\.bias' missing/ },
  { cmd: "train", args: ["--model", "glow", "--config", '{"hidden":4096,"steps":128}'], error: /^error: train: --config: glow config .* has about \d+M parameters \(allowed: at most 50M\)$/ },
  { cmd: "train", args: ["--resume", ELAPSED_CKPT, "--steps", "7000"], error: /^error: checkpoint .*elapsed\.ckpt\.safetensors: __metadata__\.elapsed_s is 'soon', not a number of seconds$/ },
  { cmd: "train", args: ["--resume", BATCH0_CKPT, "--steps", "7000"], error: /^error: train: checkpoint .*batch0\.ckpt\.safetensors: __metadata__\.batch '0': out of range/ },
  { cmd: "train", args: ["--config", "{latent: 3}"], error: /^error: train: --config '\{latent: 3\}': not valid JSON/ },
  { cmd: "train", args: ["--config", "null"], error: /^error: train: --config 'null': not a JSON object/ },
  // outputs: never a shipped or tracked file, a folder, a missing folder or empty
  { cmd: "train", args: ["--out", VAE_MNIST], error: /^error: train: --out '.*vae-mnist\.safetensors': .* is a shipped file; refusing to overwrite it \(choose another path, or add --force\)$/ },
  { cmd: "train", args: ["--out", `${W}/checkpoints/vae-fashion-step6000`], error: /^error: train: checkpoint \(from --out\) '.*vae-fashion-step6000\.ckpt\.safetensors': .* is a shipped file/ },
  // (Only in a git checkout: elsewhere nothing is tracked, and the shipped-file rule covers weights/.)
  ...(gitTracked(`${ROOT}/README.md`) ? [{ cmd: "train", args: ["--out", `${ROOT}/README.md`], error: /^error: train: --out '.*README\.md': .* is tracked by git; refusing/ }] : []),
  { cmd: "train", args: ["--out", A_DIR], error: /^error: train: --out '.*a-folder': is a folder/ },
  { cmd: "train", args: ["--out", `${tmp}/no/such/dir/x.safetensors`], error: /^error: train: --out '.*x\.safetensors': the folder .*no\/such\/dir does not exist/ },
  { cmd: "train", args: ["--out", ""], error: /^error: train: --out '': empty/ },
  { cmd: "train", args: ["--out", `${VAE_CKPT.replace(/\.ckpt\.safetensors$/, "")}.ckpt.safetensors`, "--resume", VAE_CKPT, "--steps", "7000"], error: /^error: train: --out '.*\.ckpt\.safetensors': .* is a shipped file/ },
  { cmd: "samples", args: ["--model", GLOW, "--out", `${W}/glow-fashion-samples.png`], error: /^error: samples: --out '.*glow-fashion-samples\.png': .* is a shipped file/ },
  { cmd: "samples", args: ["--model", GLOW, "--out", A_DIR], error: /^error: samples: --out '.*a-folder': is a folder/ },
  { cmd: "export", args: ["--checkpoint", VAE_CKPT, "--out", VAE], error: /^error: export: --out '.*vae-fashion\.safetensors': .* is a shipped file/ },
  { cmd: "export", args: ["--checkpoint", VAE_CKPT], error: /^error: export: --out is required$/ },
  { cmd: "train", args: ["--out", "/dev/null"], error: /^error: train: --out '\/dev\/null': is not a regular file/ },
  { cmd: "samples", args: ["--out", LINK], error: /^error: samples: --out '.*link\.png': is a symbolic link/, keep: [USER_FILE] },
  { cmd: "samples", args: ["--model", CKPT_COPY, "--out", CKPT_COPY], error: /^error: samples: --out '.*copy\.ckpt\.safetensors': is --model '.*copy\.ckpt\.safetensors' itself, an input of this command/, keep: [CKPT_COPY] },
  { cmd: "export", args: ["--checkpoint", CKPT_COPY, "--out", CKPT_COPY], error: /^error: export: --out '.*copy\.ckpt\.safetensors': is --checkpoint '.*copy\.ckpt\.safetensors' itself, an input of this command/, keep: [CKPT_COPY] },
  { cmd: "ood", args: ["--out", `${USER_FILE}/report`], error: /^error: ood: --out '.*user-notes\.txt\/report': .*user-notes\.txt is not a folder/, keep: [USER_FILE] },
  { cmd: "ood", args: ["--out", ""], error: /^error: ood: --out '': empty \(allowed: a folder path\)$/ },
  { cmd: "ood", args: ["--out", USER_FILE], error: /^error: ood: --out '.*user-notes\.txt': is an existing file, not a folder/, keep: [USER_FILE] },
  { cmd: "ood", args: ["--out", W], error: /^error: ood: --out '.*weights': .* holds the shipped weights/ },
  { cmd: "ood", args: ["--out", ROOT], error: /^error: ood: --out '.*': .* holds the shipped weights/ },
  // data files through the readers (FORMAT:PATH and plain paths): refused when read, before any work
  { cmd: "ood", args: ["--data", `svhn:${SVHN_DOUBLE}`], error: /^error: SVHN file .*svhn-double\.mat: variable 'X' is double, expected uint8 pixels/ },
  { cmd: "ood", args: ["--data", `svhn:${SVHN_CUT}`], error: /^error: SVHN file .*svhn-cut\.mat: truncated/ },
  { cmd: "ood", args: ["--ood", `svhn:${tmp}/no-such.mat`], error: /^error: ood: --ood 'svhn:.*no-such\.mat': 'svhn:.*no-such\.mat' is not allowed/ },
  { cmd: "ood", args: ["--ood", EMPTY_NPY], error: /^error: npy file .*empty\.npy: holds no images \(shape \(0, 28, 28\)\)$/ },
  { cmd: "ood", args: ["--ood", `imagenet32:${INET_FLOAT}`], error: /^error: ImageNet32 file .*imagenet32-float\.npz: data\.npy: dtype '<f4', expected uint8/ },
  { cmd: "ood", args: ["--data", HUGE_PNG], error: /^error: PNG file .*huge\.png: 24000x24000 pixels \(allowed: .*checked before decoding\)$/ },
  { cmd: "ood", args: ["--data", DANGLING_DIR], error: /^error: data: .*png-dangling\/b\.png is a symbolic link to .*gone\.png, which does not exist \(a dangling link\)$/ },
  { cmd: "fit", args: ["--model", VAE, "--out", "d.json", "--data", `gtsrb:${GTSRB_BAD}`], error: /^error: PPM file .*gtsrb-bad\/00000\.ppm: an ASCII PPM \(P3\); expected binary P6 with maxval 255$/ },
  { cmd: "fit", args: ["--model", VAE, "--out", "d.json", "--data", `omniglot:${EMPTY_CELEBA}`], error: /^error: Omniglot folder .*celeba-empty: holds no \.png files/ },
  { cmd: "train", args: ["--data", `celeba:${EMPTY_CELEBA}`], error: /^error: CelebA folder .*celeba-empty: holds neither list_eval_partition\.txt nor any \.jpg file$/ },
  { cmd: "train", args: ["--data", `svhn:${EMPTY_CELEBA}`], error: /^error: data: svhn:.*celeba-empty: .*celeba-empty is not a file \(svhn: takes an SVHN MAT-file/ },
  // issue 19 A: a model file holds exactly the model's tensors, its stored constants included and valid
  { cmd: "nll", args: ["--model", GLOW_NO_CONSTANTS], error: /^error: checkpoint .*glow-no-constants\.safetensors: the model's stored constants are missing \(tensor 'levels\.0\.steps\.0\.invconv\.perm' and 15 more\): .*migrate it with deno run -A scripts\/migrate_weights\.ts .*glow-no-constants\.safetensors$/ },
  { cmd: "samples", args: ["--model", GLOW_NO_CONSTANTS, "--out", `${tmp}/s.png`], error: /stored constants are missing/ },
  { cmd: "nll", args: ["--model", GLOW_EXTRA], error: /^error: checkpoint .*glow-3-of-4-steps\.safetensors: tensors the model does not use: levels\.0\.steps\.3\.actnorm\.bias, .*\(26 in all\)$/ },
  { cmd: "ood", args: ["--model", GLOW_EXTRA], error: /tensors the model does not use: levels\.0\.steps\.3/ },
  { cmd: "nll", args: ["--model", GLOW_BAD_PERM], error: /^error: checkpoint .*glow-bad-perm\.safetensors: tensor 'levels\.0\.steps\.0\.invconv\.perm' is not a permutation matrix/ },
  { cmd: "fim", args: ["--model", GLOW_BAD_SIGN], error: /^error: checkpoint .*glow-bad-sign\.safetensors: tensor 'levels\.1\.steps\.2\.invconv\.sign' holds 0\.5 at index 1 \(allowed: signs, \+1 or -1\)$/ },
  { cmd: "train", args: ["--resume", CKPT_EXTRA, "--steps", "7000"], error: /^error: checkpoint .*extra\.ckpt\.safetensors: tensors the model does not use: notes$/ },
  { cmd: "nll", args: ["--model", MOMENTS_NO_STEP], error: /^error: checkpoint .*moments-no-step\.safetensors: holds optimiser moments but no step in __metadata__/ },
  // issue 19 B: no output is an input of the same command, lies inside one or holds one (links resolved)
  { cmd: "score", args: ["--detector", DETECTOR, "--input", "fashion:test:0-10", "--out", DETECTOR], error: /^error: score: --out '.*glow\.detector\.json': is --detector '.*glow\.detector\.json' itself, an input of this command/, keep: [DETECTOR] },
  { cmd: "influence", args: ["--model", GLOW, "--input", PNG, "--out", PNG], error: /^error: influence: --out '.*input\.png': is --input '.*input\.png' itself/, keep: [PNG] },
  { cmd: "score", args: ["--detector", DETECTOR, "--input", PNG, "--saliency", PNG, "--model", GLOW], error: /^error: score: --saliency '.*input\.png': is --input '.*input\.png' itself/, keep: [PNG] },
  { cmd: "train", args: ["--data", NPY, "--out", NPY, "--batch", "4"], error: /^error: train: --out '.*images\.npy': is --data '.*images\.npy' itself/, keep: [NPY] },
  { cmd: "ood", args: ["--data", PNG_DIR, "--out", PNG_DIR], error: /^error: ood: --out '.*pngs': is --data '.*pngs' itself/ },
  { cmd: "ood", args: ["--data", PNG_DIR, "--out", PNG_DIR_LINK], error: /^error: ood: --out '.*pngs-link': is --data '.*pngs' itself/ },
  { cmd: "ood", args: ["--model", GLOW, "--ood", PNG_DIR, "--out", `${PNG_DIR}/report`], error: /^error: ood: --out '.*pngs\/report': lies inside --ood '.*pngs', an input of this command/ },
  { cmd: "fit", args: ["--model", GLOW, "--data", PNG_DIR_LINK, "--out", `${PNG_DIR}/detector.json`], error: /^error: fit: --out '.*pngs\/detector\.json': lies inside --data '.*pngs-link'/ },
  { cmd: "export", args: ["--checkpoint", CKPT_COPY, "--out", CKPT_HARDLINK], error: /^error: export: --out '.*hardlink\.ckpt\.safetensors': is --checkpoint '.*copy\.ckpt\.safetensors' itself/, keep: [CKPT_COPY] },
  { cmd: "score", args: ["--detector", DETECTOR, "--input", PNG, "--out", `${tmp}/scores.json`, "--saliency", `${tmp}/scores.json`], error: /^error: score: --saliency '.*scores\.json': meets --out '.*scores\.json': two outputs of this command would write over each other/ },
  { cmd: "ood", args: ["--model", VAE, "--out", "."], error: /^error: ood: --out '\.': holds the current folder \(a report folder is replaced as a whole\)/ },
  { cmd: "ood", args: ["--model", VAE, "--out", NOT_OURS_DIR], error: /^error: ood: --out '.*someones-folder': holds 1 entries but was not written by this project \(no \.fimscope-dir\.json\)/, keep: [`${NOT_OURS_DIR}/thesis.tex`] },
  { cmd: "ablation", args: ["--out", NOT_OURS_DIR], error: /^error: ablation: --out '.*someones-folder': holds 1 entries but was not written by this project/, keep: [`${NOT_OURS_DIR}/thesis.tex`] },
  // issue 19 C: model and detector files are regular files within a size limit; checks before work
  { cmd: "score", args: ["--detector", DET_DEVZERO, "--input", PNG], error: /^error: .*devzero\.detector\.json names its model: model file \/dev\/zero: a character device, not a regular file \(allowed: a regular file of at most 1 GiB\); pass --model$/ },
  { cmd: "score", args: ["--detector", DET_FIFO, "--input", PNG], error: /^error: .*fifo\.detector\.json names its model: model file .*model\.fifo: a pipe \(FIFO\), not a regular file/ },
  { cmd: "score", args: ["--detector", DET_HUGE, "--input", PNG], error: /^error: detector file .*huge\.detector\.json: 629145600 bytes, more than the 64 MiB allowed for a detector file$/ },
  { cmd: "nll", args: ["--model", MODEL_HUGE], error: /^error: checkpoint .*huge\.safetensors: 1073741832 bytes, more than the 1 GiB allowed for a checkpoint$/ },
  { cmd: "influence", args: ["--model", GLOW_CIFAR, "--data", NPY, "--input", PNG, "--out", `${tmp}/strip.png`], error: /^error: influence: --data .*images\.npy: images are 1x28x28 \(CxHxW\), the model takes 3x32x32$/ },
  { cmd: "influence", args: ["--model", GLOW, "--data", NPY, "--input", NPY, "--out", `${tmp}/strip.png`, "--first", "11"], error: /^error: influence: --first '11': at most 10 \(the images of --input .*images\.npy\)$/ },
  { cmd: "influence", args: ["--model", GLOW, "--data", NPY, "--input", PNG, "--out", `${tmp}/strip.png`, "--n", "20"], error: /^error: influence: --n '20': at most 10 \(the training images of .*images\.npy\)$/ },
  { cmd: "influence", args: ["--model", GLOW, "--data", NPY, "--input", PNG, "--out", `${tmp}/strip.png`, "--top", "11"], error: /^error: influence: --top '11': at most 10 \(the training images F_N is fitted on\)$/ },
  { cmd: "train", args: ["--data", NPY, "--batch", "4", "--eval-n", "5"], error: /^error: train: --eval-n '5': at most the 1 images of the .*images\.npy test set/ },
  // options that do not apply to the chosen model (these were refused before issue 19 too)
  { cmd: "samples", args: ["--model", `${W}/diffusion-fashion.safetensors`, "--temperature", "0.5"], error: /^error: samples: --temperature '0\.5': does not apply to .*, a diffusion model \(its sample options: sampler, steps\)/ },
  { cmd: "samples", args: ["--model", GLOW, "--sampler", "ddpm"], error: /^error: samples: --sampler 'ddpm': does not apply to .*, a glow model \(its sample options: temperature\)/ },
  { cmd: "samples", args: ["--model", `${W}/diffusion-fashion.safetensors`, "--steps", "2000"], error: /^error: samples: --steps '2000': at most 1000 \(the steps of this diffusion model\)/ },
  { cmd: "samples", args: ["--model", VAE, "--steps", "10"], error: /^error: samples: --steps '10': does not apply to .*, a vae model \(its sample options: none\)/ },
  // ood: options no model of the run takes are refused, not ignored (issue 19)
  { cmd: "ood", args: ["--model", VAE, "--diffusion-t", "5"], error: /^error: ood: --diffusion-t '5': applies to diffusion models only, and none of the models is one/ },
  { cmd: "ood", args: ["--model", VAE, "--diffusion-fit", "20"], error: /^error: ood: --diffusion-fit '20': applies to diffusion models only/ },
  { cmd: "ood", args: ["--model", `${W}/diffusion-fashion.safetensors`, "--fit", "20"], error: /^error: ood: --fit '20': applies to VAE and Glow models; every model here is a diffusion model \(use --diffusion-fit\)/ },
  { cmd: "ood", args: ["--model", `${W}/diffusion-fashion.safetensors`, "--diffusion-score", "elbo", "--diffusion-t", "3"], error: /^error: ood: --diffusion-t '3': applies to the eps-losses \(--diffusion-score l1 or l2\), not to elbo/ },
  { cmd: "ood", args: ["--model", `${W}/diffusion-fashion.safetensors`, "--diffusion-t", "1001"], error: /^error: ood: --diffusion-score 'l1-t1001': .*step 1001 is outside 1\.\.1000/ },
  { cmd: "ood", args: ["--model", VAE, "--fim-lambda", "2"], error: /^error: ood: --fim-lambda '2': applies to the full-FIM scores only; add --fim/ },
  { cmd: "ood", args: ["--model", VAE, "--fim", "--fim-lambda", "1e-320"], error: /^error: ood: --fim-lambda '1e-320': out of range/ },
  // features files
  // Outputs apart from inputs, in features, paper, compare-models, dynamics and novelty too.
  { cmd: "features", args: ["--model", VAE, "--input", PNG_DIR, "--out", `${PNG_DIR}/f.csv`], error: /^error: features: --out '.*pngs\/f\.csv': lies inside --input '.*pngs', an input of this command/ },
  { cmd: "paper", args: ["--sets", `mnist:test:0-20,${TEN_NPY}`, "--models", VAE_MNIST, "--B", "1", "--out", tmp], error: /^error: paper: --out '.*': holds --sets '.*ten\.npy', an input of this command \(the output folder is replaced as a whole\)/ },
  { cmd: "paper", args: ["--sets", "mnist:test:0-20,fashion:test:0-20", "--models", VAE_MNIST, "--B", "1", "--out", NOT_OURS_DIR], error: /^error: paper: --out '.*someones-folder': holds 1 entries but was not written by this project/, keep: [`${NOT_OURS_DIR}/thesis.tex`] },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW}`, "--out", NOT_OURS_DIR], error: /^error: compare-models: --out '.*someones-folder': holds 1 entries but was not written by this project/, keep: [`${NOT_OURS_DIR}/thesis.tex`] },
  { cmd: "dynamics", args: ["--checkpoints", GLOW_CKPTS, "--out", NOT_OURS_DIR], error: /^error: dynamics: --out '.*someones-folder': holds 1 entries but was not written by this project/, keep: [`${NOT_OURS_DIR}/thesis.tex`] },
  { cmd: "novelty", args: ["--record", RECORD, "--out", tmp], error: /^error: novelty: --out '.*': holds --record '.*record\.csv', an input of this command/ },
  { cmd: "features", args: ["--model", VAE, "--input", "fashion:test:0-10", "--out", `${tmp}/f.txt`], error: /^error: features: --out '.*f\.txt': expected a file name ending in \.npz or \.csv/ },
  { cmd: "features", args: ["--model", VAE, "--input", "fashion:test:0-10", "--out", `${tmp}/f.npz`, "--shard", "3/2"], error: /^error: features: --shard '3\/2': expected k\/n with 0 <= k < n/ },
  { cmd: "features", args: ["--model", VAE, "--input", "fashion:test:0-10", "--out", `${tmp}/f.npz`, "--objective", "l1-t1"], error: /^error: features: --objective 'l1-t1': .*allowed: nll/ },
  { cmd: "features", args: ["--model", VAE, "--input", "fashion:test:20-10", "--out", `${tmp}/f.npz`], error: /^error: features: --input 'fashion:test:20-10': positions \[20, 10\) must satisfy from < to <= 10000/ },
  { cmd: "features", args: ["--model", VAE, "--input", "fashion:test:0-64", "--out", `${tmp}/f.npz`, "--shard", "0/2"], error: /^error: features: --shard '0\/2': is empty: 64 inputs in passes of 64 make 1 pass\(es\), fewer than 2 shards/ },
  { cmd: "fit", args: ["--model", VAE, "--out", `${tmp}/d.json`, "--objective", "elbo"], error: /^error: fit: --objective 'elbo': .*allowed: nll/ },
  // resume: mismatches listed, --steps total and above the checkpoint's step
  { cmd: "train", args: ["--resume", VAE_CKPT], error: /^error: train: --steps is required with --resume .*more than the checkpoint's 6000/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "5000"], error: /^error: train: --steps '5000': the checkpoint is already at step 6000; --steps is the total step count/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "6000"], error: /^error: train: --steps '6000': the checkpoint is already at step 6000/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--data", "mnist"], error: /^error: train: --resume '.*': the command line differs from the checkpoint: --data mnist \(checkpoint: fashion\); .*--force/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--batch", "32", "--lr", "0.01", "--optimizer", "adamax", "--seed", "3"], error: /differs from the checkpoint: --batch 32 \(checkpoint: 64\), --lr 0\.01 \(checkpoint: 0\.002\), --optimizer adamax \(checkpoint: adam\), --seed 3 \(checkpoint: 0\);/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--model", "glow"], error: /^error: train: --resume '.*': the model differs from the checkpoint's: --model glow \(checkpoint: vae\)/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--config", '{"latent":8}', "--force"], error: /the model differs from the checkpoint's: --config .*"latent":8.* \(checkpoint: .*"latent":16/ },
  // train --record-novelty, compare-models, dynamics, novelty (docs/dynamics.md)
  { cmd: "train", args: ["--model", "glow", "--record-novelty", `${tmp}/r.csv`], error: /^error: train: --record-novelty '.*r\.csv': needs --optimizer adam/ },
  { cmd: "train", args: ["--model", "diffusion", "--optimizer", "adam", "--record-novelty", `${tmp}/r.csv`], error: /^error: train: --record-novelty '.*r\.csv': the diffusion model trains on an eps-loss/ },
  { cmd: "train", args: ["--record-novelty", USER_FILE, "--out", `${tmp}/x.safetensors`], error: /^error: train: --record-novelty '.*user-notes\.txt': exists; a new run records into a new file/, keep: [USER_FILE] },
  { cmd: "train", args: ["--record-novelty", `${tmp}/r.csv.gz`], error: /^error: train: --record-novelty '.*r\.csv\.gz': the live record is plain CSV/ },
  { cmd: "train", args: ["--record-novelty", `${tmp}/x.safetensors`, "--out", `${tmp}/x.safetensors`], error: /^error: train: --record-novelty '.*x\.safetensors': is also one of this run's other files/ },
  { cmd: "train", args: ["--record-novelty", VAE], error: /^error: train: --record-novelty '.*vae-fashion\.safetensors': .* is a shipped file/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--record-novelty", `${tmp}/r.csv`, "--out", `${tmp}/y.safetensors`], error: /^error: train: --record-novelty '.*r\.csv': no such file; the checkpoint is at step 6000, past the first epoch/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--record-novelty", RECORD, "--out", `${tmp}/y.safetensors`], error: /^error: train: --record-novelty '.*record\.csv': lacks the rows of step 0 \(it holds 1, expected 64 for each recorded step before 6000\)/, keep: [RECORD] },
  { cmd: "compare_models", args: ["--bogus", "1"], error: /^error: compare-models: unknown option '--bogus' \(allowed: .*--models/ },
  { cmd: "compare_models", args: [], error: /^error: compare-models: --models is required$/ },
  { cmd: "compare_models", args: ["--models", VAE], error: /^error: compare-models: --models '.*vae-fashion\.safetensors': needs at least two model files/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${VAE}`], error: /^error: compare-models: --models '.*' is listed twice/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${VAE_COPY}`, "--n", "0"], error: /^error: compare-models: --n '0': out of range/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW}`, "--n", "6000"], error: /^error: compare-models: --n '6000': at most 5000 \(the second half of the fashion test split\)/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW}`, "--fit", "1"], error: /^error: compare-models: --fit '1': out of range/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${tmp}/missing.safetensors`], error: /^error: compare-models: --models '.*': '.*missing\.safetensors': no such file/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${VAE_MNIST}`], error: /^error: compare-models: --models '.*': the models were trained on different data \(fashion, mnist\); give --data/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW}`, "--input", "mnist"], error: /^error: compare-models: --input 'mnist': must include the in-distribution set fashion/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW}`, "--input", "fashion,cifar"], error: /^error: compare-models: --input 'fashion,cifar': 'cifar' is not allowed/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW_CIFAR}`], error: /^error: compare-models: --models .*glow-32x32\.safetensors: the glow takes 3x32x32 images/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${NAN}`], error: /^error: checkpoint .*nan\.safetensors: tensor/ },
  { cmd: "compare_models", args: ["--models", `${VAE},${GLOW}`, "--out", W], error: /^error: compare-models: --out '.*weights': .* holds the shipped weights/ },
  { cmd: "dynamics", args: [], error: /^error: dynamics: --checkpoints is required$/ },
  { cmd: "dynamics", args: ["--checkpoints", `${tmp}/nothing*.safetensors`], error: /^error: dynamics: --checkpoints '.*nothing\*\.safetensors': the pattern '.*' matches no file$/ },
  { cmd: "dynamics", args: ["--checkpoints", `${VAE},,${GLOW}`], error: /^error: dynamics: --checkpoints '.*': empty item/ },
  { cmd: "dynamics", args: ["--checkpoints", `${VAE},${VAE_COPY}`], error: /^error: dynamics: --checkpoints '.*': two files are at step 6000/ },
  { cmd: "dynamics", args: ["--checkpoints", NO_STEP], error: /^error: dynamics: --checkpoints '.*no-step\.safetensors': has no training step in its metadata/ },
  { cmd: "dynamics", args: ["--checkpoints", `${VAE},${VAE_MNIST}`], error: /^error: dynamics: --checkpoints '.*': the models were trained on different data/ },
  { cmd: "dynamics", args: ["--checkpoints", GLOW_CKPTS, "--ood", "fashion"], error: /^error: dynamics: --ood 'fashion': fashion is the in-distribution data/ },
  { cmd: "dynamics", args: ["--checkpoints", GLOW_CKPTS, "--fit", "4", "--B", "1,5"], error: /^error: dynamics: --B '1,5': group size 5 leaves 0 fit group\(s\)/ },
  { cmd: "dynamics", args: ["--checkpoints", GLOW_CKPTS, "--eval", "6000"], error: /^error: dynamics: --eval '6000': out of range/ },
  { cmd: "dynamics", args: ["--checkpoints", GLOW_CKPTS, "--protocol", "both"], error: /^error: dynamics: --protocol 'both': 'both' is not allowed \(any of disjoint, overlap/ },
  { cmd: "dynamics", args: ["--checkpoints", GLOW_CKPTS, "--out", W], error: /^error: dynamics: --out '.*weights': .* holds the shipped weights/ },
  { cmd: "novelty", args: [], error: /^error: novelty: --record is required$/ },
  { cmd: "novelty", args: ["--record", USER_FILE], error: /^error: novelty: --record '.*user-notes\.txt': novelty record .*: line 1 does not start with '# fimscope-novelty-1'/, keep: [USER_FILE] },
  { cmd: "novelty", args: ["--record", RECORD_GONE], error: /^error: novelty: --model '.*gone\.safetensors': no such file \(the weights file the record names; give --model\)$/ },
  { cmd: "novelty", args: ["--record", RECORD, "--model", GLOW], error: /^error: novelty: --model '.*glow-fashion\.safetensors': is a glow with config .*, the record's model is a vae/ },
  { cmd: "novelty", args: ["--record", RECORD, "--model", VAE_MNIST], error: /^error: novelty: --model '.*vae-mnist\.safetensors': was trained on mnist, the record on fashion$/ },
  { cmd: "novelty", args: ["--record", RECORD, "--top", "0"], error: /^error: novelty: --top '0': out of range/ },
  { cmd: "novelty", args: ["--record", RECORD, "--out", W], error: /^error: novelty: --out '.*weights': .* holds the shipped weights/ },
  // named configs (the paper's sizes)
  { cmd: "train", args: ["--config", "glow-papr"], error: /^error: train: --config 'glow-papr': not a named config \(allowed: vae-paper, glow-paper, diffusion-paper, or a JSON object of config keys\)$/ },
  { cmd: "train", args: ["--model", "vae", "--config", "glow-paper"], error: /^error: train: --config 'glow-paper': is a glow config, but --model is vae \(leave --model out, or give --model glow\)$/ },
  { cmd: "train", args: ["--config", "diffusion-paper"], error: /^error: train: --config: the diffusion takes 3x32x32 images but fashion has 1x28x28 images$/ },
  // paper: every option refused before any work
  { cmd: "paper", args: ["--bogus", "1"], error: /^error: paper: unknown option '--bogus' \(allowed: .*--backend/ },
  { cmd: "paper", args: [], error: /^error: paper: give exactly one of --data-dir \(the paper's sets in their official files\) and --sets/ },
  { cmd: "paper", args: ["--data-dir", A_DIR, "--sets", "mnist,fashion"], error: /^error: paper: give exactly one of --data-dir/ },
  { cmd: "paper", args: ["--data-dir", `${tmp}/no-such-dir`], error: /^error: paper: --data-dir '.*no-such-dir': not an existing folder \(allowed: a folder holding svhn\/test_32x32\.mat, celeba \(with list_eval_partition\.txt, img_align_celeba\), gtsrb \(with GT-final_test\.csv\), cifar10\/test_batch\.bin, imagenet32\/val_data\.npz\)$/ },
  { cmd: "paper", args: ["--data-dir", USER_FILE], error: /^error: paper: --data-dir '.*user-notes\.txt': not an existing folder/ },
  { cmd: "paper", args: ["--data-dir", A_DIR], error: /^error: paper: --data-dir '.*a-folder': holds none of the paper's sets \(looked for svhn\/test_32x32\.mat, / },
  { cmd: "paper", args: ["--data-dir", PAPER_DIR, "--models", `svhn=${GLOW_CIFAR}`], error: /^error: paper: no model has its set here \(1 skipped\); pass --models for the sets in .*paper-data$/ },
  { cmd: "paper", args: ["--data-dir", PAPER_BAD, "--models", `svhn=${GLOW_CIFAR}`], error: /^error: SVHN file .*paper-bad\/svhn\/test_32x32\.mat: truncated/ },
  { cmd: "paper", args: ["--sets", "mnist"], error: /^error: paper: --sets 'mnist': needs at least two sets/ },
  { cmd: "paper", args: ["--sets", "mnist,,fashion"], error: /^error: paper: --sets 'mnist,,fashion': empty item in the list \(allowed: SPEC or NAME=SPEC/ },
  { cmd: "paper", args: ["--sets", `mnist,${tmp}/nope.npy`], error: /^error: paper: --sets '.*': '.*nope\.npy' is neither a packaged set \(fashion, mnist, optionally :train or :test and :from-to\) nor an existing file or folder/ },
  { cmd: "paper", args: ["--sets", "mnist,mnist:test:0-10"], error: /^error: paper: --sets 'mnist,mnist:test:0-10': two sets are named 'mnist' \(give each its own NAME=SPEC\)$/ },
  { cmd: "paper", args: ["--sets", `mnist,a b=${TEN_NPY}`], error: /^error: paper: --sets '.*': 'a b' is not a set name/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--family", "gan"], error: /^error: paper: --family 'gan': not one of vae, glow, diffusion$/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--B", "0"], error: /^error: paper: --B '0': 0 is out of range/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--batch", "0"], error: /^error: paper: --batch '0': out of range/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--seed", "-1"], error: /^error: paper: --seed '-1': out of range/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--out", USER_FILE], error: /^error: paper: --out '.*user-notes\.txt': is an existing file, not a folder/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--out", `${ROOT}/docs`], error: /^error: paper: --out '.*docs': .*holds files tracked by git; the report goes to its own folder \(e\.g\. reports\/paper\), or add --force$/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion"], error: /^error: paper: no models: none of weights\/paper\/<family>-<set>\.safetensors exists for vae, glow, diffusion and mnist, fashion; pass --models$/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--models", `${tmp}/none.safetensors`], error: /^error: paper: --models '.*none\.safetensors': '.*none\.safetensors' is not an existing file/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--models", `mnist=${NOT_ST}`], error: /^error: checkpoint .*not-safetensors\.safetensors/ },
  { cmd: "paper", args: ["--sets", `mnist,ten=${TEN_NPY}`, "--models", VAE], error: /^error: paper: --models '.*': .*vae-fashion\.safetensors was trained on 'fashion', which is none of the sets \(mnist, ten\); name its set as SET=/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--models", VAE, "--family", "glow"], error: /^error: paper: --models '.*': .*vae-fashion\.safetensors is a vae model, but --family is glow$/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--models", `${VAE},fashion=${VAE}`], error: /are the same file \(allowed: each model once\)$/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--models", `fashion=${VAE},fashion=${VAE_MNIST}`], error: /vae-mnist\.safetensors and .*vae-fashion\.safetensors are both vae models of fashion \(allowed: one per family and set\)$/ },
  { cmd: "paper", args: ["--sets", "mnist,fashion", "--models", `svhn=${VAE}`], error: /^error: paper: --models '.*': 'svhn' is not one of the sets \(mnist, fashion\)$/ },
  { cmd: "paper", args: ["--sets", `mnist:test:0-10,ten=${TEN_NPY}`, "--models", `mnist=${GLOW_CIFAR}`], error: /^error: paper: set mnist \(mnist:test:0-10\) for .*glow-32x32\.safetensors: images are 1x28x28 \(CxHxW\), the model takes 3x32x32$/ },
  { cmd: "paper", args: ["--sets", `mnist:test:0-10,ten=${TEN_NPY}`, "--models", VAE_MNIST, "--B", "1,4"], error: /^error: paper: --B '1,4': B = 4 makes 2 group\(s\) of the 10 images of mnist; an in-distribution set needs at least 2 fit groups and 1 evaluation group, 3 groups in all \(allowed: B <= 3\)$/ },
  { cmd: "paper", args: ["--sets", `mnist:test:0-40,ten=${TEN_NPY}`, "--models", VAE_MNIST, "--B", "11"], error: /^error: paper: --B '11': B = 11 is more than the 10 image\(s\) of ten$/ },
];

interface Result { code: number; out: string; err: string; ms: number; cwdBefore: string[]; cwdAfter: string[]; keepOk: boolean }

async function runCase(c: Case, k: number): Promise<Result> {
  const cwd = `${tmp}/case-${k}`;
  Deno.mkdirSync(cwd);
  const cwdBefore = listTree(cwd);
  const keep = new Map((c.keep ?? []).map((f) => [f, sha(f)]));
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/src/cli/${c.cmd}.ts`, ...c.args], cwd, stdout: "piped", stderr: "piped",
    env: { FIMSCOPE_FASHION_CACHE: `${tmp}/never-built.bin`, FIMSCOPE_STOP_BEFORE_WORK: "1" },
    signal: AbortSignal.timeout(60_000), // a refusal that never comes (a read that blocks) fails its case, not the suite
  }).output();
  const ms = performance.now() - t0;
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr), ms, cwdBefore, cwdAfter: listTree(cwd), keepOk: [...keep].every(([f, h]) => sha(f) === h) };
}

const results: Result[] = [];
S.before(async () => {
  // Three at a time: each case is a fresh process that must refuse before doing work.
  let next = 0;
  await Promise.all([0, 1, 2].map(async () => {
    while (next < cases.length) {
      const k = next++;
      results[k] = await runCase(cases[k], k);
    }
  }));
  const slow = results.map((r, k) => [r.ms, k] as const).sort((a, b) => b[0] - a[0])[0];
  console.log(`  bad input: ${cases.length} CLI cases, slowest ${slow[0].toFixed(0)} ms (${cases[slow[1]].cmd} ${cases[slow[1]].args.join(" ")})`);
});

cases.forEach((c, k) => {
  S(`${c.cmd} ${c.args.map((x) => x.replace(tmp, "$TMP").replace(ROOT, ".")).join(" ") || "(no options)"}`, () => {
    const r = results[k];
    const lines = r.err.split("\n").filter((l) => l.trim() !== "");
    assert.is(r.code, 1, `exit code ${r.code}; stderr: ${r.err}; stdout: ${r.out}`);
    assert.is(lines.length, 1, `expected exactly one line on stderr, got:\n${r.err}`);
    assert.match(lines[0], c.error, `stderr: ${lines[0]}`);
    assert.is(r.out, "", `nothing may be printed before the refusal (work started?): ${r.out}`);
    assert.equal(r.cwdAfter, r.cwdBefore, "the command created files");
    assert.ok(r.keepOk, "a file the command was pointed at changed");
  });
});

S("control: with FIMSCOPE_STOP_BEFORE_WORK=1 valid options stop at the end of validation with exit 0 (so a refusal after it would fail the cases above)", async () => {
  const cwd = Deno.makeTempDirSync({ dir: tmp });
  for (const [cmd, args] of [["ood", ["--model", VAE, "--fit", "10"]], ["nll", ["--model", GLOW]], ["train", ["--resume", VAE_CKPT, "--steps", "7000"]], ["export", ["--checkpoint", VAE_CKPT, "--out", `${cwd}/x.safetensors`]], ["fim", []], ["samples", ["--out", `${cwd}/s.png`]], ["demo", []],
    ["train", ["--record-novelty", `${cwd}/r.csv`, "--out", `${cwd}/v.safetensors`]], ["compare_models", ["--models", `${VAE},${GLOW}`, "--out", `${cwd}/c`]], ["dynamics", ["--checkpoints", GLOW_CKPTS, "--out", `${cwd}/d`]], ["novelty", ["--record", RECORD, "--out", `${cwd}/n`]],
    ["paper", ["--sets", `mnist:test:0-20,ten=${TEN_NPY}`, "--models", VAE_MNIST, "--out", `${cwd}/paper`]], ["paper", ["--data-dir", PAPER_DIR, "--models", `cifar10=${GLOW_CIFAR}`, "--out", `${cwd}/paper`]],
    ["train", ["--config", "vae-paper", "--data", `cifar10:${PAPER_DIR}/cifar10/test_batch.bin`, "--batch", "4", "--out", `${cwd}/v.safetensors`]]] as const) {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/src/cli/${cmd}.ts`, ...args], cwd, stdout: "piped", stderr: "piped", env: { FIMSCOPE_STOP_BEFORE_WORK: "1", FIMSCOPE_FASHION_CACHE: `${tmp}/never-built.bin` } }).output();
    assert.is(r.code, 0, `${cmd}: ${dec.decode(r.stderr)}`);
    assert.match(dec.decode(r.stderr), /^checked: all options valid/);
  }
  assert.equal(listTree(cwd), [], "nothing written before work");
});

S("control: a detector file or --config text that starts with a UTF-8 byte-order mark is read as without it", async () => {
  const cwd = Deno.makeTempDirSync({ dir: tmp });
  for (const [cmd, args] of [["score", ["--detector", DET_BOM, "--input", PNG, "--model", GLOW]], ["train", ["--config", '\uFEFF{"latent":8}', "--steps", "1"]]] as const) {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/src/cli/${cmd}.ts`, ...args], cwd, stdout: "piped", stderr: "piped", env: { FIMSCOPE_STOP_BEFORE_WORK: "1", FIMSCOPE_FASHION_CACHE: `${tmp}/never-built.bin` } }).output();
    assert.is(r.code, 0, `${cmd}: ${dec.decode(r.stderr)}`);
    assert.match(dec.decode(r.stderr), /^checked: all options valid/);
  }
});

// ---- the reader ---------------------------------------------------------------------------

const readerCases: [string, Uint8Array, RegExp][] = [
  ["null header", rawSafetensors(null, new Uint8Array(0)), /^checkpoint f\.st: header is null, not a JSON object$/],
  ["array header", rawSafetensors([1, 2], new Uint8Array(0)), /header is \[1,2\], not a JSON object/],
  ["null entry", rawSafetensors({ a: null }, new Uint8Array(0)), /tensor 'a' entry is null, not an object/],
  ["string entry", rawSafetensors({ a: "F32" }, new Uint8Array(0)), /tensor 'a' entry is "F32", not an object/],
  ["null metadata", rawSafetensors({ __metadata__: null }, new Uint8Array(0)), /__metadata__ is null, not an object of strings/],
  ["non-string metadata", rawSafetensors({ __metadata__: { step: 5 } }, new Uint8Array(0)), /__metadata__\.step is 5, not a string/],
  ["three offsets", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, floats(1, 2)), /tensor 'a' has invalid data_offsets \[0,4,8\]/],
  ["fractional offsets", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0.5, 4.5] } }, floats(1, 2)), /tensor 'a' has invalid data_offsets \[0\.5,4\.5\]/],
  ["string offsets", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: ["0", "4"] } }, floats(1)), /invalid data_offsets \["0","4"\]/],
  ["missing offsets", rawSafetensors({ a: { dtype: "F32", shape: [1] } }, floats(1)), /invalid data_offsets undefined/],
  ["negative shape", rawSafetensors({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, floats(1)), /tensor 'a' has an invalid shape \[-1\]/],
  ["F16", rawSafetensors({ a: { dtype: "F16", shape: [2], data_offsets: [0, 4] } }, floats(1)), /tensor 'a' has dtype "F16", only F32/],
  // The overlap is hidden by a gap of the same size: the byte count matches, the spans do not.
  ["overlap hidden by a gap", rawSafetensors({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, floats(1, 2, 3, 4)), /tensor 'b' \(bytes 4-12\) overlaps tensor 'a'/],
  ["same span twice", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, floats(1, 2)), /overlaps tensor/],
  ["gap", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, floats(1, 2, 3)), /gap in the data section: bytes 4-8 belong to no tensor/],
  ["trailing bytes", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, floats(1, 2)), /data section has 8 bytes but the tensors cover 4/],
  ["not starting at 0", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, floats(1, 2)), /gap in the data section: bytes 0-4/],
  ["NaN", rawSafetensors({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, floats(1, NaN)), /^checkpoint f\.st: tensor 'a' holds a non-finite value \(NaN\) at index 1$/],
  ["Infinity", rawSafetensors({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, floats(Infinity)), /tensor 'a' holds a non-finite value \(Infinity\)/],
];
for (const [name, bytes, re] of readerCases) {
  S(`reader refuses: ${name}, naming the file`, () => {
    let msg = "";
    try {
      decodeSafetensors(bytes, "f.st");
    } catch (e) {
      msg = (e as Error).message;
    }
    assert.match(msg, re);
    assert.match(msg, /^checkpoint f\.st: /);
    assert.not.match(msg, /\n/);
  });
}

S("reader: spans listed out of order but tiling the data load into the right tensors", () => {
  const d = decodeSafetensors(rawSafetensors({ b: { dtype: "F32", shape: [1], data_offsets: [4, 8] }, a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, floats(1, 2)), "f.st");
  assert.equal([...d.tensors.get("a")!.data, ...d.tensors.get("b")!.data], [1, 2]);
});

S("config check: a bad config in a checkpoint is refused by loadModel, naming the file and key", async () => {
  for (const [f, re] of [[LATENT_NEG, /latent-neg\.safetensors: __metadata__\.config: vae config key 'latent' is -1/], [CONFIG_KEY, /unknown vae config key 'latnt'/]] as const) {
    let msg = "";
    await loadModel(f, T.cpu).catch((e) => (msg = e.message));
    assert.match(msg, re);
  }
  let msg = "";
  await createModel("glow", { hidden: 0 }, T.cpu).catch((e) => (msg = e.message));
  assert.match(msg, /glow config key 'hidden' is 0 \(allowed: an integer from 1 to 4096\)/);
});

// ---- the parser directly --------------------------------------------------------------------

S("parseOptions: typed values, defaults, given, and one-line refusals", () => {
  const spec = { n: int({ min: 1, max: 10 }).default(3), B: ints({ min: 1 }).default([1]), x: num({ gt: 0 }), c: choice(["a", "b"] as const).default("a"), f: flag(), m: inFile() };
  const v = parseOptions("t", spec, ["--n", "7", "--B=2,3", "--x", "1e-3", "--f"]);
  assert.equal([v.n, v.B, v.x, v.c, v.f, v.m], [7, [2, 3], 1e-3, "a", true, undefined]);
  assert.equal([...v.given].sort(), ["B", "f", "n", "x"]);
  const err = (args: string[]) => {
    try {
      parseOptions("t", spec, args);
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  };
  assert.is(err(["--n", "11"]), "t: --n '11': out of range (allowed: an integer from 1 to 10)");
  assert.is(err(["--x", "0"]), "t: --x '0': out of range (allowed: a number > 0)");
  assert.is(err(["--c", "z"]), "t: --c 'z': not one of a, b");
  assert.is(err(["--n", "0x10"]), "t: --n '0x10': not a number (allowed: an integer from 1 to 10)");
  assert.is(err(["--n", " "]), "t: --n ' ': not a number (allowed: an integer from 1 to 10)");
  assert.match(err(["--m", tmp]), /t: --m '.*': not a regular file/);
  const d = { data: nameOrPath(["fashion", "mnist"]) };
  assert.is(parseOptions("t", d, ["--data", "mnist"]).data, "mnist");
  assert.is(parseOptions("t", d, ["--data", tmp]).data, tmp);
  assert.throws(() => parseOptions("t", d, ["--data", "cifar"]), /^t: --data 'cifar': neither fashion, mnist nor an existing file or folder$/);
});

// ---- what the defaults write, and the report folder ----------------------------------------

async function cli(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/src/cli/${cmd}.ts`, ...args], cwd, stdout: "piped", stderr: "piped", env }).output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

S("train's default --out is a new name under weights/runs/, never an existing file; --force on resume overrides a difference", async () => {
  const cwd = Deno.makeTempDirSync({ dir: tmp });
  const args = ["--batch", "4", "--eval-n", "4", "--backend", "cpu", "--config", '{"latent":2,"channels":[2,2],"outChannels":2}', "--data", "mnist"];
  const first = await cli("train", [...args, "--steps", "2"], cwd);
  assert.is(first.code, 0, first.err);
  const h1 = sha(`${cwd}/weights/runs/vae-mnist-1.safetensors`);
  // The same options again (they match the checkpoint), now resuming to a total of 3 steps.
  const second = await cli("train", [...args, "--resume", "weights/runs/vae-mnist-1.ckpt.safetensors", "--steps", "3"], cwd);
  assert.is(second.code, 0, second.err);
  assert.match(second.out, /resumed from .*vae-mnist-1\.ckpt\.safetensors at step 2/);
  assert.match(second.out, /weights: weights\/runs\/vae-mnist-2\.safetensors/);
  assert.is(sha(`${cwd}/weights/runs/vae-mnist-1.safetensors`), h1, "the first run's weights were replaced");
  assert.is(readCheckpoint(`${cwd}/weights/runs/vae-mnist-2.safetensors`).metadata.steps, "3");
  // A difference is refused without --force and used with it (and recorded).
  const refused = await cli("train", ["--resume", "weights/runs/vae-mnist-2.ckpt.safetensors", "--steps", "4", "--lr", "0.001", "--eval-n", "4", "--backend", "cpu"], cwd);
  assert.is(refused.code, 1);
  assert.match(refused.err, /--lr 0\.001 \(checkpoint: 0\.002\)/);
  const forced = await cli("train", ["--resume", "weights/runs/vae-mnist-2.ckpt.safetensors", "--steps", "4", "--lr", "0.001", "--eval-n", "4", "--backend", "cpu", "--force"], cwd);
  assert.is(forced.code, 0, forced.err);
  assert.is(readCheckpoint(`${cwd}/weights/runs/vae-mnist-3.ckpt.safetensors`).metadata.lr, "0.001");
  assert.is(readCheckpoint(`${cwd}/weights/runs/vae-mnist-3.ckpt.safetensors`).metadata.data, "mnist", "unset options come from the checkpoint");
  assert.equal(listTree(`${cwd}/weights/runs`).filter((f) => f.endsWith(".tmp")), []);
});

S("samples' default output goes to reports/samples/, not next to the shipped weights", async () => {
  const cwd = Deno.makeTempDirSync({ dir: tmp });
  const r = await cli("samples", ["--model", VAE, "--n", "2", "--backend", "cpu"], cwd);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /reports\/samples\/vae-fashion-samples\.png/);
  assert.equal([...Deno.readFileSync(`${cwd}/reports/samples/vae-fashion-samples.png`).subarray(1, 4)], [0x50, 0x4e, 0x47]);
});

S("a reused report folder loses the previous report's files, and only those", async () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  const m = await createModel("vae", { latent: 2, channels: [2, 2], outChannels: 2 }, T.cpu, 3);
  // Two models of the same kind and data: their rows and files are told apart by file name.
  await saveTensors(`${dir}/a.safetensors`, m.namedState(), metadataOf(m, { data: "fashion" }));
  await saveTensors(`${dir}/b.safetensors`, m.namedState(), metadataOf(m, { data: "fashion" }));
  const common = ["--fit", "8", "--eval", "4", "--ood", "noise", "--backend", "cpu", "--out", `${dir}/r`];
  const one = await cli("ood", ["--model", `${dir}/a.safetensors,${dir}/b.safetensors`, "--B", "1,2", ...common], dir);
  assert.is(one.code, 0, one.err);
  assert.match(one.out, /\ba\s+1\s+noise/);
  assert.match(one.out, /\bb\s+1\s+noise/);
  Deno.writeTextFileSync(`${dir}/r/mine.txt`, "the user's");
  const two = await cli("ood", ["--model", `${dir}/b.safetensors`, "--B", "2", ...common], dir);
  assert.is(two.code, 0, two.err);
  const files = listTree(`${dir}/r`);
  assert.ok(files.includes("mine.txt"), "a file the report did not write was removed");
  assert.ok(files.includes("roc-b-B2-noise.svg"));
  assert.equal(files.filter((f) => /-a-|B1/.test(f)), [], `stale files kept: ${files.join(", ")}`);
});

S("atomic writes: the content lands whole, and a failed write leaves no temp file", () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  writeFileAtomic(`${dir}/f.bin`, new Uint8Array([1, 2, 3]));
  writeFileAtomic(`${dir}/f.bin`, "replaced");
  assert.is(Deno.readTextFileSync(`${dir}/f.bin`), "replaced");
  Deno.mkdirSync(`${dir}/d`);
  Deno.writeTextFileSync(`${dir}/d/x`, "");
  assert.throws(() => writeFileAtomic(`${dir}/d`, "over a folder"), /cannot write .*\/d: /);
  assert.equal(listTree(dir), ["d/", "d/x", "f.bin"]);
});

S("default outputs are reserved atomically: two train runs and two samples runs started at once each write their own file", async () => {
  const cwd = Deno.makeTempDirSync({ dir: tmp });
  const args = ["--batch", "4", "--eval-n", "4", "--backend", "cpu", "--config", '{"latent":2,"channels":[2,2],"outChannels":2}', "--data", "mnist", "--steps", "1"];
  const runs = await Promise.all([cli("train", args, cwd), cli("train", args, cwd)]);
  for (const r of runs) assert.is(r.code, 0, r.err);
  const outs = runs.map((r) => /weights: (\S+)/.exec(r.out)?.[1]);
  assert.equal(outs.sort(), ["weights/runs/vae-mnist-1.safetensors", "weights/runs/vae-mnist-2.safetensors"], runs.map((r) => r.out).join("\n"));
  assert.equal(listTree(`${cwd}/weights/runs`), ["vae-mnist-1.ckpt.safetensors", "vae-mnist-1.safetensors", "vae-mnist-2.ckpt.safetensors", "vae-mnist-2.safetensors"]);
  for (const f of listTree(`${cwd}/weights/runs`)) assert.is(readCheckpoint(`${cwd}/weights/runs/${f}`).metadata.kind, "vae");
  const shots = await Promise.all([0, 1].map(() => cli("samples", ["--model", VAE, "--n", "2", "--backend", "cpu"], cwd)));
  for (const r of shots) assert.is(r.code, 0, r.err);
  assert.equal(listTree(`${cwd}/reports/samples`), ["vae-fashion-samples-2.png", "vae-fashion-samples.png"]);
  for (const f of listTree(`${cwd}/reports/samples`)) assert.equal([...Deno.readFileSync(`${cwd}/reports/samples/${f}`).subarray(1, 4)], [0x50, 0x4e, 0x47]);
});

/** Runs code in a fresh process with the project's imports, where Deno.renameSync ends the process (as a kill would) at its k-th call after `arm()`. */
async function crashingRun(code: string, k: number) {
  const prelude = `let __n = 0, __armed = false; const __rename = Deno.renameSync; const arm = () => (__armed = true);
    Deno.renameSync = (a, b) => { if (__armed && ++__n === ${k}) Deno.exit(86); return __rename(a, b); };\n`;
  return await new Deno.Command(Deno.execPath(), { args: ["eval", prelude + code], cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
}

S("a report folder is replaced as a whole: a run killed at any rename of its write leaves the old report or the new one, never a mix", async () => {
  const dir = `${tmp}/report-crash`;
  const code = `import { writeReport } from "${ROOT}/src/ood/report.ts";
    const figs = (v) => Array.from({ length: 12 }, (_, i) => ["fig-" + i + ".svg", new TextEncoder().encode(v + " " + i)]);
    writeReport(${JSON.stringify(dir)}, [], { v: "old" }, undefined, figs("old"));
    arm();
    writeReport(${JSON.stringify(dir)}, [], { v: "new" }, undefined, figs("new"));`;
  const seen = new Set<string>();
  for (let k = 1; k <= 18; k++) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* first round */ }
    const r = await crashingRun(code, k);
    assert.ok(r.code === 86 || r.code === 0, dec.decode(r.stderr));
    // What the next write into the folder does first: recover from a swap cut short (old code: nothing to call).
    const A = await import("../src/io/atomic.ts") as { recoverDir?: (d: string) => void };
    A.recoverDir?.(dir);
    const figs = listTree(dir).filter((f) => f.startsWith("fig-"));
    assert.is(figs.length, 12, `after a kill at rename ${k}: ${listTree(dir).join(", ")}`);
    const versions = new Set([...figs.map((f) => Deno.readTextFileSync(`${dir}/${f}`).split(" ")[0]), JSON.parse(Deno.readTextFileSync(`${dir}/table.json`)).meta.v]);
    assert.is(versions.size, 1, `a kill at rename ${k} left a mix of the old and the new report`);
    seen.add([...versions][0]);
    assert.equal([...Deno.readDirSync(tmp)].map((e) => e.name).filter((n) => n.startsWith(".report-crash.")), [], "a killed write's folders were left behind");
  }
  assert.equal([...seen].sort(), ["new", "old"], "the kills should cover both outcomes");
});

S("temp files and folders of killed writes are removed by the next write there; a live writer's and the user's are kept", async () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  const r = await crashingRun(`import { writeFileAtomic } from "${ROOT}/src/io/atomic.ts"; arm(); writeFileAtomic(${JSON.stringify(`${dir}/w.bin`)}, new Uint8Array(1000));`, 1);
  assert.is(r.code, 86, dec.decode(r.stderr));
  const killed = listTree(dir);
  assert.is(killed.length, 1, "the killed write left its temp file");
  const deadPid = killed[0].split(".").at(-3)!;
  const live = `.x.bin.${Deno.pid}.abcdefgh.tmp`, stale = `.y.bin.${Deno.pid}.zzzzzzzz.tmp`, users = [".notes.tmp", "notes.1.abc.tmp"];
  for (const f of [live, stale, ...users]) Deno.writeTextFileSync(`${dir}/${f}`, "x");
  Deno.utimeSync(`${dir}/${stale}`, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
  Deno.mkdirSync(`${dir}/.r.fimscope-new.${deadPid}.abcdefgh`);
  Deno.writeTextFileSync(`${dir}/.r.fimscope-new.${deadPid}.abcdefgh/half`, "x");
  const A = await import("../src/io/atomic.ts") as { writeDirAtomic?: (d: string, f: [string, string][]) => void };
  writeFileAtomic(`${dir}/f.bin`, "data");
  A.writeDirAtomic?.(`${dir}/r`, [["a.txt", "1"]]);
  assert.equal(listTree(dir).filter((f) => f === "r/" || !f.startsWith("r/")), ["f.bin", live, ...users, "r/"].sort());
});

S("FashionMNIST cache: a corrupt cache is noticed (one line), rebuilt, and the data are unchanged", async () => {
  const cache = `${tmp}/fashion-cache.bin`;
  const probe = ["eval", `import { loadFashion } from "${ROOT}/src/data/mnist.ts"; const s = loadFashion("test", { onNotice: (m) => console.error("notice: " + m) }); console.log(s.images.reduce((a, v) => (a * 31 + v) >>> 0, 7));`];
  const run = async () => {
    const r = await new Deno.Command(Deno.execPath(), { args: probe, cwd: ROOT, stdout: "piped", stderr: "piped", env: { FIMSCOPE_FASHION_CACHE: cache } }).output();
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim() };
  };
  const built = await run();
  assert.is(built.err, "");
  const b = Deno.readFileSync(cache);
  b[b.length - 100] ^= 0xff;
  Deno.writeFileSync(cache, b);
  const rebuilt = await run();
  assert.match(rebuilt.err, /^notice: FashionMNIST cache .*fashion-cache\.bin fails its checksum \(corrupt\); rebuilding it/);
  assert.is(rebuilt.err.split("\n").length, 1);
  assert.is(rebuilt.out, built.out);
  const again = await run();
  assert.is(again.err, "");
  assert.is(again.out, built.out);
});

S("no shipped or tracked file changed during this suite", () => {
  for (const [f, h] of before) assert.is(sha(f), h, `${f} changed`);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
