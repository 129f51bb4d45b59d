// Compares the celeba: reader with PIL on the files of scripts/data/pil_reference.py: (1) our crop
// and resize applied to PIL's own decode must equal PIL's 32x32 result exactly; (2) jpeg-js's decode
// against PIL's (libjpeg-turbo) decode; (3) the reader's 32x32 output against PIL's. Prints the
// differences (docs/datasets.md).
//
//   deno run -A scripts/data/check_celeba.ts DIR
import { celebaTransform, decodeJpeg } from "../../src/data/celeba.ts";
import { loadImageFiles } from "../../src/data/image_files.ts";
import { parseNpyHeader } from "../../src/data/npy.ts";

const dir = Deno.args[0];
function npy(path: string): { shape: number[]; data: Uint8Array } {
  const b = Deno.readFileSync(path);
  const h = parseNpyHeader(b, (why) => new Error(`${path}: ${why}`));
  return { shape: h.shape, data: b.subarray(h.dataOffset) };
}

function diff(a: Uint8Array, b: Uint8Array): string {
  let max = 0, sum = 0, nz = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    sum += d;
    if (d) nz++;
  }
  return `max |diff| ${max}, mean ${(sum / a.length).toFixed(3)}, ${((100 * nz) / a.length).toFixed(1)}% of values differ`;
}

const full = npy(`${dir}/pil_full.npy`), small = npy(`${dir}/pil_32.npy`);
const n = full.shape[0], H = 218, W = 178;
const names = Deno.readTextFileSync(`${dir}/list_eval_partition.txt`).trim().split("\n").map((l) => l.split(" ")[0]);
// (1) our transform on PIL's decode
const ours = new Uint8Array(n * 3072), jsFull = new Uint8Array(n * H * W * 3);
for (let i = 0; i < n; i++) {
  const hwc = full.data.subarray(i * H * W * 3, (i + 1) * H * W * 3), planar = new Uint8Array(3 * H * W);
  for (let p = 0; p < H * W; p++) for (let k = 0; k < 3; k++) planar[k * H * W + p] = hwc[3 * p + k];
  ours.set(celebaTransform(planar, H, W, names[i]), i * 3072);
  const js = decodeJpeg(Deno.readFileSync(`${dir}/img_align_celeba/${names[i]}`), names[i]);
  for (let p = 0; p < H * W; p++) for (let k = 0; k < 3; k++) jsFull[i * H * W * 3 + 3 * p + k] = js.data[k * H * W + p];
}
console.log(`${n} JPEGs of ${dir}`);
console.log(`(1) our crop+resize of PIL's decode vs PIL's 32x32: ${diff(ours, small.data)}`);
console.log(`(2) jpeg-js decode vs PIL (libjpeg-turbo) decode, 178x218: ${diff(jsFull, full.data)}`);
const r = loadImageFiles(`celeba:${dir}`);
console.log(`(3) the celeba: reader vs PIL's 32x32: ${diff(r.set.images, small.data)}`);
