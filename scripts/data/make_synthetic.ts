// Writes full-size synthetic files in the official layouts, for measuring the readers
// (scripts/data/read_speed.ts; numbers in docs/datasets.md). Not committed: big.
//
//   deno run -A scripts/data/make_synthetic.ts [--out /tmp/fimscope-synthetic] [--celeba 2000]
//
// svhn.mat / svhn-z.mat: 26,032 images (test_32x32.mat's count), uncompressed / zlib-compressed
// elements; imagenet32.npz / imagenet32-z.npz: 50,000 rows, stored (np.savez) / deflated
// (np.savez_compressed); gtsrb/: 12,630 PPMs of 30..80 px a side (GTSRB's test images average about
// 50x50) with GT-final_test.csv; celeba/: --celeba JPEGs of 178x218 (jpeg-js, quality 90) in
// img_align_celeba/ with list_eval_partition.txt marking all of them as the test split (2).
// Pixels are smooth gradients with a little seeded noise, so they compress about as photos do.
import jpeg from "jpeg-js";
import { Generator } from "../../src/autograd/random.ts";
import { encodePpm } from "../../src/data/gtsrb.ts";
import { encodeMat, svhnColumnMajor } from "../../src/data/mat.ts";
import { encodeNpy } from "../../src/data/npy.ts";
import { encodeNpz } from "../../src/data/npz.ts";
import { int, parseOptions, text } from "../../src/io/options.ts";

const a = parseOptions("make_synthetic", { out: text().default("/tmp/fimscope-synthetic"), celeba: int({ min: 1, max: 202599 }).default(2000) });
const out = a.out.replace(/\/+$/, "");
Deno.mkdirSync(out, { recursive: true });
const g = new Generator(1);

/** One planar RGB image: per-channel gradients at a random angle plus noise of +-8. */
function image(h: number, w: number, dst: Uint8Array, at = 0): void {
  for (let k = 0; k < 3; k++) {
    const base = g.int(200), dx = g.uniform() * 4 - 2, dy = g.uniform() * 4 - 2;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      dst[at + k * h * w + y * w + x] = Math.max(0, Math.min(255, Math.round(base + dx * x + dy * y + (g.uniform() - 0.5) * 16)));
    }
  }
}

const t0 = performance.now();
const say = (what: string) => console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s: ${what}`);

// SVHN
{
  const n = 26032, planar = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) image(32, 32, planar, i * 3072);
  const vars = [
    { name: "X", cls: "uint8" as const, dims: [32, 32, 3, n], values: svhnColumnMajor(planar) },
    { name: "y", cls: "double" as const, dims: [n, 1], values: Array.from({ length: n }, (_, i) => (i % 10) + 1) },
  ];
  Deno.writeFileSync(`${out}/svhn.mat`, encodeMat(vars));
  Deno.writeFileSync(`${out}/svhn-z.mat`, encodeMat(vars, { compress: true }));
  say(`svhn.mat, svhn-z.mat (${n} images)`);
}

// ImageNet32
{
  const n = 50000, data = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) image(32, 32, data, i * 3072);
  const labels = encodeNpy(new Uint8Array(new BigInt64Array(Array.from({ length: n }, (_, i) => BigInt((i % 1000) + 1))).buffer), [n], "<i8");
  const files = { "data.npy": encodeNpy(data, [n, 3072]), "labels.npy": labels };
  Deno.writeFileSync(`${out}/imagenet32.npz`, encodeNpz(files, false));
  Deno.writeFileSync(`${out}/imagenet32-z.npz`, encodeNpz(files, true));
  say(`imagenet32.npz, imagenet32-z.npz (${n} images)`);
}

// GTSRB
{
  const n = 12630, dir = `${out}/gtsrb`;
  Deno.mkdirSync(dir, { recursive: true });
  const rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"];
  for (let i = 0; i < n; i++) {
    const w = 30 + g.int(51), h = 30 + g.int(51), img = new Uint8Array(3 * h * w);
    image(h, w, img);
    const name = `${String(i).padStart(5, "0")}.ppm`;
    Deno.writeFileSync(`${dir}/${name}`, encodePpm(img, h, w));
    rows.push([name, w, h, 5, 5, w - 6, h - 6, i % 43].join(";"));
  }
  Deno.writeTextFileSync(`${dir}/GT-final_test.csv`, rows.join("\r\n") + "\r\n");
  say(`gtsrb/ (${n} PPMs)`);
}

// CelebA
{
  const n = a.celeba, dir = `${out}/celeba`;
  Deno.mkdirSync(`${dir}/img_align_celeba`, { recursive: true });
  const rgba = new Uint8Array(178 * 218 * 4), planar = new Uint8Array(3 * 178 * 218), lines: string[] = [];
  for (let i = 0; i < n; i++) {
    image(218, 178, planar);
    for (let p = 0; p < 178 * 218; p++) {
      for (let k = 0; k < 3; k++) rgba[4 * p + k] = planar[k * 178 * 218 + p];
      rgba[4 * p + 3] = 255;
    }
    const name = `${String(182638 + i).padStart(6, "0")}.jpg`;
    Deno.writeFileSync(`${dir}/img_align_celeba/${name}`, jpeg.encode({ data: rgba, width: 178, height: 218 }, 90).data);
    lines.push(`${name} 2`);
  }
  Deno.writeTextFileSync(`${dir}/list_eval_partition.txt`, lines.join("\n") + "\n");
  say(`celeba/ (${n} JPEGs)`);
}
