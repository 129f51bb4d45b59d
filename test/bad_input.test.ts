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
  await saveTensors(GLOW_CIFAR, g.namedParameters(), metadataOf(g, { data: "fashion" }));
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

// For paper: ten grey images, and a data folder holding only the CIFAR-10 test file of the paper's layout.
const TEN_NPY = `${tmp}/ten.npy`;
Deno.writeFileSync(TEN_NPY, encodeNpy(new Uint8Array(10 * 784).map((_, i) => i % 251), [10, 28, 28]));
const PAPER_DIR = `${tmp}/paper-data`;
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
  { cmd: "samples", args: ["--model", VAE, "--temperature", "0.5"], error: /^error: samples: --temperature '0.5': applies to glow models only/ },
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
  { cmd: "samples", args: ["--model", CKPT_COPY, "--out", CKPT_COPY], error: /^error: samples: --out '.*copy\.ckpt\.safetensors': is the model file itself/, keep: [CKPT_COPY] },
  { cmd: "export", args: ["--checkpoint", CKPT_COPY, "--out", CKPT_COPY], error: /^error: export: --out '.*copy\.ckpt\.safetensors': is the checkpoint itself/, keep: [CKPT_COPY] },
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
  // resume: mismatches listed, --steps total and above the checkpoint's step
  { cmd: "train", args: ["--resume", VAE_CKPT], error: /^error: train: --steps is required with --resume .*more than the checkpoint's 6000/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "5000"], error: /^error: train: --steps '5000': the checkpoint is already at step 6000; --steps is the total step count/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "6000"], error: /^error: train: --steps '6000': the checkpoint is already at step 6000/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--data", "mnist"], error: /^error: train: --resume '.*': the command line differs from the checkpoint: --data mnist \(checkpoint: fashion\); .*--force/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--batch", "32", "--lr", "0.01", "--optimizer", "adamax", "--seed", "3"], error: /differs from the checkpoint: --batch 32 \(checkpoint: 64\), --lr 0\.01 \(checkpoint: 0\.002\), --optimizer adamax \(checkpoint: adam\), --seed 3 \(checkpoint: 0\);/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--model", "glow"], error: /^error: train: --resume '.*': the model differs from the checkpoint's: --model glow \(checkpoint: vae\)/ },
  { cmd: "train", args: ["--resume", VAE_CKPT, "--steps", "7000", "--config", '{"latent":8}', "--force"], error: /the model differs from the checkpoint's: --config .*"latent":8.* \(checkpoint: .*"latent":16/ },
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
    assert.match(lines[0], c.error);
    assert.is(r.out, "", `nothing may be printed before the refusal (work started?): ${r.out}`);
    assert.equal(r.cwdAfter, r.cwdBefore, "the command created files");
    assert.ok(r.keepOk, "a file the command was pointed at changed");
  });
});

S("control: with FIMSCOPE_STOP_BEFORE_WORK=1 valid options stop at the end of validation with exit 0 (so a refusal after it would fail the cases above)", async () => {
  const cwd = Deno.makeTempDirSync({ dir: tmp });
  for (const [cmd, args] of [["ood", ["--model", VAE, "--fit", "10"]], ["nll", ["--model", GLOW]], ["train", ["--resume", VAE_CKPT, "--steps", "7000"]], ["export", ["--checkpoint", VAE_CKPT, "--out", `${cwd}/x.safetensors`]], ["fim", []], ["samples", ["--out", `${cwd}/s.png`]], ["demo", []],
    ["paper", ["--sets", `mnist:test:0-20,ten=${TEN_NPY}`, "--models", VAE_MNIST, "--out", `${cwd}/paper`]], ["paper", ["--data-dir", PAPER_DIR, "--models", `cifar10=${GLOW_CIFAR}`, "--out", `${cwd}/paper`]],
    ["train", ["--config", "vae-paper", "--data", `cifar10:${PAPER_DIR}/cifar10/test_batch.bin`, "--out", `${cwd}/v.safetensors`]]] as const) {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/src/cli/${cmd}.ts`, ...args], cwd, stdout: "piped", stderr: "piped", env: { FIMSCOPE_STOP_BEFORE_WORK: "1", FIMSCOPE_FASHION_CACHE: `${tmp}/never-built.bin` } }).output();
    assert.is(r.code, 0, `${cmd}: ${dec.decode(r.stderr)}`);
    assert.match(dec.decode(r.stderr), /^checked: all options valid/);
  }
  assert.equal(listTree(cwd), [], "nothing written before work");
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
  await saveTensors(`${dir}/a.safetensors`, m.namedParameters(), metadataOf(m, { data: "fashion" }));
  await saveTensors(`${dir}/b.safetensors`, m.namedParameters(), metadataOf(m, { data: "fashion" }));
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
