// CelebA's aligned images (img_align_celeba/: 202,599 JPEGs of 178x218, NNNNNN.jpg) as the authors
// fed them to their 32x32 models. Their pipeline (SamD770/Generative-Models-Knowledge,
// data/datasets.py: CelebaA_Wrapper, _data_transforms_celeba64, CropCelebA64) reads NVAE's celeba64
// LMDB, which holds the original JPEG bytes of img_align_celeba in torchvision's split order
// (NVlabs/NVAE scripts/create_celeba64_lmdb.py); each image is decoded by PIL, cropped with
// pic.crop((15, 40, 178 - 15, 218 - 30)) (a 148x148 box at x 15..162, y 40..187), resized with
// transforms.Resize(32) (bilinear, on a PIL image: Pillow's antialiased resize; resize.ts
// resizePillowBilinear) and scaled to [0, 1] (- 0.5). The test split is partition 2 of
// list_eval_partition.txt: 19,962 images, in the file's order.
//
// JPEGs are decoded with jpeg-js, which is not libjpeg-turbo (PIL's decoder): its IDCT and chroma
// upsampling differ, so decoded pixels may differ from PIL's by a few levels (docs/datasets.md
// gives the measured difference).
import jpeg from "jpeg-js";
import { type ImageSet, makeSet } from "./dataset.ts";
import { listFiles, pathExists as exists, readBytes } from "./files.ts";
import { cropPlanar, planarRgb, resizePillowBilinear } from "./resize.ts";

export const CELEBA_SIZE = [178, 218] as const; // width, height of the aligned images
/** The authors' crop box (left, top, right, bottom; right and bottom exclusive, as PIL's crop). */
export const CELEBA_CROP = [15, 40, 178 - 15, 218 - 30] as const;
export const PARTITION_FILE = "list_eval_partition.txt";
const SIDE = 32;

/** Rows of list_eval_partition.txt ("000001.jpg 0"; 0 train, 1 validation, 2 test) in the file's order. */
export function parsePartition(text: string, file: string): { name: string; part: number }[] {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === "") lines.pop();
  const seen = new Set<string>();
  return lines.map((line, i) => {
    const m = /^\s*([^\s/\\]+\.jpe?g)\s+([012])\s*$/i.exec(line);
    if (!m) throw new Error(`CelebA file ${file}: line ${i + 1} '${line.slice(0, 60)}' is not '<image>.jpg <0|1|2>'`);
    if (seen.has(m[1])) throw new Error(`CelebA file ${file}: line ${i + 1}: ${m[1]} is listed twice`);
    seen.add(m[1]);
    return { name: m[1], part: Number(m[2]) };
  });
}

/** One JPEG as planar RGB bytes [3, h, w] (grey JPEGs repeated over the three channels, as PIL's convert("RGB")). */
export function decodeJpeg(bytes: Uint8Array, file: string): { h: number; w: number; data: Uint8Array } {
  let im;
  try {
    im = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 16, maxMemoryUsageInMB: 512 });
  } catch (e) {
    throw new Error(`JPEG file ${file}: cannot decode (${String((e as Error).message ?? e).split("\n")[0]})`);
  }
  const { width: w, height: h } = im;
  const stride = w * h > 0 ? im.data.length / (w * h) : 0;
  if (!(stride === 1 || stride === 3 || stride === 4)) throw new Error(`JPEG file ${file}: ${im.data.length} decoded bytes for ${w}x${h} pixels`);
  return { h, w, data: planarRgb(im.data, h, w, stride) };
}

/** The authors' CelebA transform of one decoded aligned image: crop 148x148 at (15, 40), Pillow-bilinear to 32x32. */
export function celebaTransform(planar: Uint8Array, h: number, w: number, file: string): Uint8Array {
  if (w !== CELEBA_SIZE[0] || h !== CELEBA_SIZE[1]) throw new Error(`JPEG file ${file}: ${w}x${h}, expected ${CELEBA_SIZE.join("x")} (CelebA's aligned images, img_align_celeba; the crop box assumes that size)`);
  const [l, t, r, b] = CELEBA_CROP;
  return resizePillowBilinear(cropPlanar(planar, 3, h, w, l, t, r - l, b - t), 3, b - t, r - l, SIDE, SIDE);
}

/**
 * The images a CelebA folder names: with list_eval_partition.txt in it, the test split (partition 2)
 * from its img_align_celeba/ subfolder (or from the folder itself); without, every JPEG of the folder.
 */
export function celebaFiles(dir: string): { folder: string; files: string[]; note: string } {
  const root = dir.replace(/\/+$/, "");
  const part = `${root}/${PARTITION_FILE}`;
  if (exists(part)) {
    const rows = parsePartition(new TextDecoder().decode(readBytes(part, "CelebA partition")), part);
    const files = rows.filter((r) => r.part === 2).map((r) => r.name);
    if (!files.length) throw new Error(`CelebA file ${part}: no image in partition 2 (the test split)`);
    const folder = exists(`${root}/img_align_celeba`) ? `${root}/img_align_celeba` : root;
    return { folder, files, note: `the ${files.length} test images (partition 2) of ${part}` };
  }
  const files = listFiles(root, (n) => /\.jpe?g$/i.test(n));
  if (!files.length) throw new Error(`CelebA folder ${dir}: holds neither ${PARTITION_FILE} nor any .jpg file`);
  return { folder: root, files, note: `all ${files.length} JPEGs of ${dir}` };
}

/** CelebA images of a folder (see celebaFiles) as a 3x32x32 set, transformed as the authors did; ids are the file names. */
export function readCeleba(dir: string, name = dir): { set: ImageSet; ids: string[] } {
  const { folder, files } = celebaFiles(dir);
  const d = 3 * SIDE * SIDE, images = new Uint8Array(files.length * d);
  files.forEach((f, k) => {
    const path = `${folder}/${f}`;
    const im = decodeJpeg(readBytes(path, "JPEG"), path);
    images.set(celebaTransform(im.data, im.h, im.w, path), k * d);
  });
  return { set: makeSet(name, images, new Uint8Array(files.length).fill(255), 3, SIDE, SIDE), ids: files };
}
