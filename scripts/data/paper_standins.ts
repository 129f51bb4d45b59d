// Tiny stand-ins for the paper's five colour test sets, each in its official layout under the names
// `npm run paper -- --data-dir DIR` looks for (docs/paper-grid.md): DIR/svhn/test_32x32.mat,
// DIR/celeba/ (list_eval_partition.txt, img_align_celeba/*.jpg, 178x218), DIR/gtsrb/ (PPMs of
// varying size and GT-final_test.csv), DIR/cifar10/test_batch.bin, DIR/imagenet32/val_data.npz.
// Written with the same writers the readers' tests use (src/data: encodeMat, encodePpm, encodeNpz,
// encodeCifar10; jpeg-js). Each set has its own statistics (channel means, contrast, texture), so a
// model trained on one finds the others out of distribution. test/paper.test.ts runs the whole
// `paper` command on them.
//
//   deno run -A scripts/data/paper_standins.ts --out /tmp/paper-standins [--n 20] [--seed 1]
import jpeg from "jpeg-js";
import { Generator } from "../../src/autograd/random.ts";
import { makeSet } from "../../src/data/dataset.ts";
import { encodePpm } from "../../src/data/gtsrb.ts";
import { encodeCifar10 } from "../../src/data/image_files.ts";
import { encodeMat, svhnColumnMajor } from "../../src/data/mat.ts";
import { encodeNpy } from "../../src/data/npy.ts";
import { encodeNpz } from "../../src/data/npz.ts";

/** Per set: channel means, contrast of a random gradient, and pixel noise. */
const LOOKS: Record<string, { mean: [number, number, number]; slope: number; noise: number }> = {
  svhn: { mean: [110, 110, 120], slope: 1.0, noise: 10 },
  celeba: { mean: [190, 140, 120], slope: 0.5, noise: 6 },
  gtsrb: { mean: [150, 60, 70], slope: 2.5, noise: 20 },
  cifar10: { mean: [120, 125, 110], slope: 1.5, noise: 30 },
  imagenet32: { mean: [100, 100, 100], slope: 0.2, noise: 70 },
};

/** Uniform noise in [-1, 1), read from a random offset per image plane (a draw per pixel made the CelebA JPEGs slow to write). */
const NOISE = 1 << 16;
let noise: Float64Array | null = null;

/** One planar RGB image [3, h, w] in a set's look. */
function image(look: (typeof LOOKS)[string], g: Generator, h: number, w: number): Uint8Array {
  noise ??= Float64Array.from({ length: NOISE }, () => g.uniform() * 2 - 1);
  const out = new Uint8Array(3 * h * w);
  const dx = (g.uniform() * 2 - 1) * look.slope, dy = (g.uniform() * 2 - 1) * look.slope;
  for (let k = 0; k < 3; k++) {
    const base = look.mean[k] + (g.uniform() - 0.5) * 30, at = g.int(NOISE);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = base + dx * (x - w / 2) * (32 / w) + dy * (y - h / 2) * (32 / h) + noise[(at + y * w + x) % NOISE] * look.noise;
      out[k * h * w + y * w + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}

/** Writes the five stand-ins of n images each under dir; returns the paths `--data-dir` looks for. */
export function writePaperStandins(dir: string, n = 20, seed = 1): Record<string, string> {
  const root = dir.replace(/\/+$/, ""), g = new Generator(seed);
  const many = (name: string) => {
    const d = new Uint8Array(n * 3072);
    for (let i = 0; i < n; i++) d.set(image(LOOKS[name], g, 32, 32), i * 3072);
    return d;
  };
  for (const s of ["svhn", "celeba/img_align_celeba", "gtsrb", "cifar10", "imagenet32"]) Deno.mkdirSync(`${root}/${s}`, { recursive: true });

  const svhn = many("svhn");
  Deno.writeFileSync(`${root}/svhn/test_32x32.mat`, encodeMat([
    { name: "X", cls: "uint8", dims: [32, 32, 3, n], values: svhnColumnMajor(svhn) },
    { name: "y", cls: "double", dims: [n, 1], values: Array.from({ length: n }, (_, i) => (i % 10) + 1) },
  ], { compress: true }));

  // CelebA: 178x218 JPEGs; the partition file lists a few training images first (not read) and the test split.
  const lines: string[] = [];
  for (let i = 0; i < n + 2; i++) {
    const name = `${String(i + 1).padStart(6, "0")}.jpg`, planar = image(LOOKS.celeba, g, 218, 178), rgba = new Uint8Array(178 * 218 * 4);
    for (let p = 0; p < 178 * 218; p++) {
      for (let k = 0; k < 3; k++) rgba[4 * p + k] = planar[k * 178 * 218 + p];
      rgba[4 * p + 3] = 255;
    }
    Deno.writeFileSync(`${root}/celeba/img_align_celeba/${name}`, jpeg.encode({ data: rgba, width: 178, height: 218 }, 90).data);
    lines.push(`${name} ${i < 2 ? 0 : 2}`);
  }
  Deno.writeTextFileSync(`${root}/celeba/list_eval_partition.txt`, lines.join("\n") + "\n");

  const rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"];
  for (let i = 0; i < n; i++) {
    const w = 30 + g.int(21), h = 30 + g.int(21), name = `${String(i).padStart(5, "0")}.ppm`;
    Deno.writeFileSync(`${root}/gtsrb/${name}`, encodePpm(image(LOOKS.gtsrb, g, h, w), h, w));
    rows.push([name, w, h, 5, 5, w - 6, h - 6, i % 43].join(";"));
  }
  Deno.writeTextFileSync(`${root}/gtsrb/GT-final_test.csv`, rows.join("\r\n") + "\r\n");

  Deno.writeFileSync(`${root}/cifar10/test_batch.bin`, encodeCifar10(makeSet("cifar10", many("cifar10"), new Uint8Array(n).map((_, i) => i % 10), 3, 32, 32)));
  Deno.writeFileSync(`${root}/imagenet32/val_data.npz`, encodeNpz({ "data.npy": encodeNpy(many("imagenet32"), [n, 3072]) }, true));
  return {
    svhn: `${root}/svhn/test_32x32.mat`, celeba: `${root}/celeba`, gtsrb: `${root}/gtsrb`,
    cifar10: `${root}/cifar10/test_batch.bin`, imagenet32: `${root}/imagenet32/val_data.npz`,
  };
}

if (import.meta.main) {
  const { int, parseOptions, text } = await import("../../src/io/options.ts");
  const a = parseOptions("paper_standins", { out: text().default("/tmp/paper-standins"), n: int({ min: 1, max: 100000 }).default(20), seed: int().default(1) });
  const paths = writePaperStandins(a.out, a.n, a.seed);
  console.log(Object.entries(paths).map(([k, p]) => `${k}: ${p}`).join("\n"));
}
