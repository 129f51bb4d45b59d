// Image sets from a user's files. Plain paths: a folder of PNGs, a single PNG, an .npy array of
// uint8 [N,H,W] or [N,C,H,W], an IDX file (*-ubyte: rank 3 [N,H,W] or rank 4 [N,C,H,W] unsigned
// bytes), CIFAR-10 binary (*.bin, or a folder of them). The paper's datasets in their official files
// by a prefix (READERS below): svhn:<.mat>, gtsrb:<dir>, gtsrb-roi:<dir>, celeba:<dir>,
// imagenet32:<.npz>, cifar10:<.bin or dir>, omniglot:<dir> (docs/datasets.md). Every input gets an
// id: the image's file name, or `file:index` inside an array file. One rule for every set read
// here: a colour set whose three channels are equal in every image is grey (greyIfEqual), and an
// empty set is refused. Writers for the simple formats too (tests round-trip through them;
// `encodeNpy` also exports sets). Errors are one line naming the file.
import { convertIndexedToRgb, decode } from "fast-png";
import { writeFileAtomic } from "../io/atomic.ts";
import { imageGridPng } from "../io/png.ts";
import { type ImageSet, makeSet, subset } from "./dataset.ts";
import { readCeleba } from "./celeba.ts";
import { readCifar10 } from "./cifar.ts";
import { linkIsFile, listFiles, pathExists, readBytes } from "./files.ts";
import { readGtsrb } from "./gtsrb.ts";
import { parseIdx } from "./idx.ts";
import { readSvhn } from "./mat.ts";
import { loadDataset, type LoadOptions, type Split, splitSize } from "./mnist.ts";
import { NPY_MAGIC, parseNpy } from "./npy.ts";
import { parseSetSpec, selectionIndices } from "./selection.ts";
import { readImagenet32 } from "./npz.ts";
import { resizeTorchBilinear } from "./resize.ts";

export { encodeNpy, parseNpy } from "./npy.ts";

export interface FileSet {
  set: ImageSet;
  /** One per image: file name (PNG folder) or `file:index` (array files). */
  ids: string[];
}

const BUILTIN = ["mnist", "fashion"];
export const FORMATS_HELP = "a folder of PNGs, a .png, an .npy of uint8 [N,H,W] or [N,C,H,W], an IDX *-ubyte file, CIFAR-10 binary (*.bin or a folder of them), or FORMAT:PATH with FORMAT one of svhn, gtsrb, gtsrb-roi, celeba, imagenet32, cifar10, omniglot";

// ---- PNG ----

/** The largest PNG read: at most PNG_MAX_SIDE per side and PNG_MAX_PIXELS in all, checked from the header before decoding. */
export const PNG_MAX_SIDE = 16384, PNG_MAX_PIXELS = 1 << 24;

/** Width and height from a PNG's IHDR chunk (the first chunk), refused above the limits. */
export function pngSize(bytes: Uint8Array, file: string): { w: number; h: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || sig.some((b, i) => bytes[i] !== b) || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") {
    throw new Error(`PNG file ${file}: cannot decode (no PNG signature and IHDR header; truncated or not a PNG)`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const w = dv.getUint32(16), h = dv.getUint32(20);
  if (w === 0 || h === 0 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE || w * h > PNG_MAX_PIXELS) {
    throw new Error(`PNG file ${file}: ${w}x${h} pixels (allowed: 1 to ${PNG_MAX_SIDE} per side and at most ${PNG_MAX_PIXELS} pixels; checked before decoding)`);
  }
  return { w, h };
}

/** Grey samples of 1, 2 or 4 bits (packed, rows padded to a byte) as bytes 0..255 (as PIL's convert("L")). */
function unpackBits(src: ArrayLike<number>, w: number, h: number, depth: number): Uint8Array {
  const out = new Uint8Array(w * h), rowBytes = Math.ceil((w * depth) / 8), max = (1 << depth) - 1, perByte = 8 / depth;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const byte = src[y * rowBytes + Math.floor(x / perByte)], shift = 8 - depth * ((x % perByte) + 1);
      out[y * w + x] = Math.round((((byte >> shift) & max) * 255) / max);
    }
  }
  return out;
}

/**
 * One PNG as planar bytes [C, H, W] (C = 1 for grey, 3 for colour; alpha dropped, palettes expanded,
 * 16-bit rounded to 8, 1/2/4-bit grey scaled to 0..255). Its size is checked from the header first.
 */
export function decodePngImage(bytes: Uint8Array, file: string): { c: number; h: number; w: number; data: Uint8Array } {
  pngSize(bytes, file);
  let png;
  try {
    png = decode(bytes);
  } catch (e) {
    throw new Error(`PNG file ${file}: cannot decode (${(e as Error).message})`);
  }
  const { width: w, height: h } = png;
  let src: ArrayLike<number> = png.data, ch = png.channels, depth: number = png.depth;
  if (png.palette) {
    src = convertIndexedToRgb(png);
    ch = src.length / (w * h);
    depth = 8;
  } else if (depth < 8 && ch === 1) {
    src = unpackBits(src, w, h, depth);
    depth = 8;
  }
  if (depth !== 8 && depth !== 16) throw new Error(`PNG file ${file}: bit depth ${depth} with ${ch} channels is not supported (8 or 16 bits per channel, or 1-4-bit grey)`);
  const c = ch >= 3 ? 3 : 1; // grey+alpha -> grey, RGBA -> RGB
  const data = new Uint8Array(c * h * w);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < c; k++) {
      const v = src[i * ch + k];
      data[k * h * w + i] = depth === 16 ? Math.round(v / 257) : v;
    }
  }
  return { c, h, w, data };
}

/** Planar [C, H, W] bytes as a PNG (C = 1 or 3). */
export function encodePngImage(data: Uint8Array, c: number, h: number, w: number): Uint8Array {
  return imageGridPng(data, 1, c, h, w, 1, 0); // a grid of one image without a gap
}

const isPng = (n: string) => /\.png$/i.test(n);

/**
 * PNG files of a folder (relative paths) decoded into one set: every image must have the first one's
 * shape, or with `resize` each is resized to it (torch bilinear, resize.ts). The output is allocated
 * once; one decoded image is held besides it.
 */
function readPngs(dir: string, files: string[], resize?: [number, number, number]): FileSet {
  const root = dir.replace(/\/+$/, "");
  let shape: [number, number, number] | null = resize ?? null, images = new Uint8Array(0);
  files.forEach((f, i) => {
    const path = `${root}/${f}`;
    const im = decodePngImage(readBytes(path, "PNG"), path);
    if (!shape) shape = [im.c, im.h, im.w];
    const [c, h, w] = shape;
    if (!images.length) images = new Uint8Array(files.length * c * h * w);
    let data = im.data;
    if (resize) {
      if (im.c !== c) throw new Error(`PNG file ${path}: ${im.c === 3 ? "colour" : "grey"}, expected ${c === 1 ? "grey" : "colour"} images`);
      if (im.h !== h || im.w !== w) data = resizeTorchBilinear(im.data, c, im.h, im.w, h, w);
    } else if (im.c !== c || im.h !== h || im.w !== w) {
      throw new Error(`PNG file ${path}: ${im.c}x${im.h}x${im.w} (CxHxW), but ${files[0]} in the same folder is ${shape.join("x")}; a folder must hold one image size`);
    }
    images.set(data, i * data.length);
  });
  const [c, h, w] = shape!;
  return { set: makeSet(dir, images, new Uint8Array(files.length).fill(255), c, h, w), ids: files };
}

/** Every *.png in a folder (not its subfolders; symbolic links to files followed), in natural name order; all must have one shape. */
export function loadPngFolder(dir: string): FileSet {
  const files = listFiles(dir, isPng);
  if (!files.length) throw new Error(`data: folder ${dir} holds no .png files`);
  return readPngs(dir, files);
}

/** Omniglot's side after the authors' transforms.Resize((28, 28)) (a tensor resize: torch bilinear, no antialiasing). */
export const OMNIGLOT_SIDE = 28;

/**
 * Omniglot as the authors used it (SamD770/Generative-Models-Knowledge data/datasets.py, Omniglot_Wrapper:
 * ToTensor then Resize((28, 28))): every PNG under a folder (e.g. images_evaluation/, the test set:
 * alphabet/character/NNNN_NN.png, 105x105 1-bit grey), in natural order of their paths, each
 * resized to 1x28x28. Ids are the paths below the folder.
 */
export function readOmniglot(dir: string): FileSet {
  const files = listFiles(dir, isPng, true);
  if (!files.length) throw new Error(`Omniglot folder ${dir}: holds no .png files (looked in its subfolders too)`);
  return readPngs(dir, files, [1, OMNIGLOT_SIDE, OMNIGLOT_SIDE]);
}

/** Writes each image of a set as <dir>/<prefix><index>.png (zero-padded). */
export function writePngFolder(dir: string, s: ImageSet, prefix = "img"): string[] {
  Deno.mkdirSync(dir, { recursive: true });
  const d = s.c * s.h * s.w, pad = String(s.n - 1).length;
  return Array.from({ length: s.n }, (_, i) => {
    const name = `${prefix}${String(i).padStart(pad, "0")}.png`;
    writeFileAtomic(`${dir}/${name}`, encodePngImage(s.images.subarray(i * d, (i + 1) * d), s.c, s.h, s.w));
    return name;
  });
}

// ---- IDX ----

/** An IDX file of unsigned bytes with the given dims. */
export function encodeIdx(data: Uint8Array, dims: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x0800 | dims.length);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function fromIdx(bytes: Uint8Array, file: string): ImageSet {
  const rank = bytes.length >= 4 ? bytes[3] : 0;
  if (bytes.length >= 4 && bytes[2] === 0x08 && (rank === 1 || rank === 2)) {
    throw new Error(`IDX file ${file}: rank ${rank} (a labels file?), expected images: rank 3 [N,H,W] or 4 [N,C,H,W]`);
  }
  const idx = parseIdx(bytes, file, rank === 4 ? 4 : 3);
  const [n, c, h, w] = idx.dims.length === 4 ? idx.dims : [idx.dims[0], 1, idx.dims[1], idx.dims[2]];
  return makeSet(file, idx.data, new Uint8Array(n).fill(255), c, h, w);
}

// ---- CIFAR-10 binary ----

/** CIFAR-10 binary records (label byte + 3072 planar RGB bytes) of a 3x32x32 set. */
export function encodeCifar10(s: ImageSet): Uint8Array {
  if (s.c !== 3 || s.h !== 32 || s.w !== 32) throw new Error(`CIFAR-10 binary holds 3x32x32 images, not ${s.c}x${s.h}x${s.w}`);
  const out = new Uint8Array(s.n * 3073);
  for (let i = 0; i < s.n; i++) {
    out[i * 3073] = s.labels[i] === 255 ? 0 : s.labels[i];
    out.set(s.images.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
  }
  return out;
}

// ---- dispatch ----

const idsOf = (file: string, n: number) => Array.from({ length: n }, (_, i) => `${file}:${i}`);

/** The official files of the paper's datasets, by the prefix that names them: `svhn:test_32x32.mat`. */
export const READERS: Record<string, { read: (path: string, spec: string) => FileSet; takes: "file" | "folder" | "file or folder"; what: string }> = {
  svhn: { read: (p, spec) => readSvhn(p, spec), takes: "file", what: "an SVHN MAT-file (test_32x32.mat)" },
  gtsrb: { read: (p, spec) => readGtsrb(p, false, spec), takes: "folder", what: "the GTSRB final test folder (PPMs and GT-final_test.csv), whole images" },
  "gtsrb-roi": { read: (p, spec) => readGtsrb(p, true, spec), takes: "folder", what: "the GTSRB final test folder, each image cropped to its region of interest" },
  celeba: { read: (p, spec) => readCeleba(p, spec), takes: "folder", what: "a CelebA folder (list_eval_partition.txt and img_align_celeba/, or JPEGs)" },
  imagenet32: { read: (p, spec) => readImagenet32(p, spec), takes: "file", what: "ImageNet32's val_data.npz" },
  cifar10: { read: (p, spec) => readCifar10(p, spec), takes: "file or folder", what: "CIFAR-10 binary (a .bin or a folder of them)" },
  omniglot: { read: (p) => readOmniglot(p), takes: "folder", what: "an Omniglot folder (e.g. images_evaluation/)" },
};

/** `FORMAT:PATH` with a known FORMAT, or null (a plain path; an existing path that merely contains a colon stays a path). */
export function readerSpec(spec: string): { format: string; path: string } | null {
  const m = /^([a-z][a-z0-9-]*):(.+)$/s.exec(spec);
  if (!m || !(m[1] in READERS)) return null;
  try {
    Deno.lstatSync(spec);
    return null; // a file or folder really named so
  } catch {
    return { format: m[1], path: m[2] };
  }
}

/** The file or folder a set spec reads (its path after any FORMAT: prefix). */
export const specPath = (spec: string) => readerSpec(spec)?.path ?? spec;

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch (e) {
    throw new Error(`data: ${path} is not a dataset name (${BUILTIN.join(", ")}) nor a readable file or folder (${(e as Error).message.split(":")[0]})`);
  }
}

/**
 * The one rule for colour: a set whose three channels are equal in every image is grey (returned as
 * one channel); any other set is returned as it is.
 */
export function greyIfEqual(s: ImageSet): ImageSet {
  if (s.c !== 3) return s;
  const plane = s.h * s.w, d = 3 * plane;
  for (let i = 0; i < s.n; i++) {
    for (let k = 0; k < plane; k++) {
      const r = s.images[i * d + k];
      if (s.images[i * d + plane + k] !== r || s.images[i * d + 2 * plane + k] !== r) return s;
    }
  }
  const images = new Uint8Array(s.n * plane);
  for (let i = 0; i < s.n; i++) images.set(s.images.subarray(i * d, i * d + plane), i * plane);
  return { ...s, images, c: 1 };
}

/**
 * Reads one file or folder: `FORMAT:PATH` by its reader, a plain path in any supported format
 * (chosen by content and extension). Every set passes the same rules: at least one image, and
 * equal-channel colour read as grey.
 */
export function loadImageFiles(spec: string): FileSet {
  const r = readImages(spec);
  if (r.set.n === 0) throw new Error(`data: ${specPath(spec)} holds no images (an empty set cannot be used)`);
  return { ...r, set: greyIfEqual(r.set) };
}

function readImages(spec: string): FileSet {
  const rs = readerSpec(spec);
  if (rs) {
    const r = READERS[rs.format];
    let st: Deno.FileInfo | null = null;
    try {
      st = Deno.statSync(rs.path);
    } catch {
      try {
        if (Deno.lstatSync(rs.path).isSymlink) linkIsFile(rs.path); // a dangling or looping link: its own message
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    const ok = st && (r.takes === "file" ? st.isFile : r.takes === "folder" ? st.isDirectory : st.isFile || st.isDirectory);
    if (!ok) throw new Error(`data: ${spec}: ${rs.path} ${st ? `is not a ${r.takes}` : "does not exist"} (${rs.format}: takes ${r.what})`);
    return r.read(rs.path, spec);
  }
  const path = spec, m = /^([a-z][a-z0-9-]*):(.+)$/s.exec(spec);
  if (m && !pathExists(spec) && pathExists(m[2])) throw new Error(`data: ${spec}: unknown format '${m[1]}' (allowed: ${Object.keys(READERS).join(", ")}, as FORMAT:PATH)`);
  if (isDir(path)) {
    const names = listFiles(path, (n) => isPng(n) || /\.bin$/i.test(n));
    if (names.some(isPng)) return loadPngFolder(path);
    if (names.length) return readCifar10(path, path);
    throw new Error(`data: folder ${path} holds no .png or CIFAR-10 .bin files`);
  }
  if (/\.bin$/i.test(path)) return readCifar10(path, path);
  const bytes = readBytes(path, "image");
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    const im = decodePngImage(bytes, path);
    return { set: makeSet(path, im.data, new Uint8Array([255]), im.c, im.h, im.w), ids: [path.split("/").pop()!] };
  }
  if (/\.npy$/i.test(path) || NPY_MAGIC.every((b, i) => bytes[i] === b)) {
    const { shape, data } = parseNpy(bytes, path);
    const [n, c, h, w] = shape.length === 4 ? shape : [shape[0], 1, shape[1], shape[2]];
    if (n === 0) throw new Error(`npy file ${path}: holds no images (shape (${shape.join(", ")}))`);
    return { set: makeSet(path, data, new Uint8Array(n).fill(255), c, h, w), ids: idsOf(path, n) };
  }
  if (/ubyte$/i.test(path) || /\.idx\d?$/i.test(path) || (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0x08)) {
    const s = fromIdx(bytes, path);
    return { set: s, ids: idsOf(path, s.n) };
  }
  throw new Error(`data: cannot tell the format of ${path}; expected ${FORMATS_HELP}`);
}

/** True for the names of the packaged datasets. */
export const isBuiltinSet = (spec: string) => BUILTIN.includes(spec);

/** A packaged dataset's split by name (mnist, fashion), or the images of a file or folder (no split). */
export function loadNamedSet(spec: string, split: Split, opts: LoadOptions = {}): FileSet {
  if (isBuiltinSet(spec)) {
    const s = loadDataset(spec, split, opts);
    return { set: s, ids: Array.from({ length: s.n }, (_, i) => `${spec}-${split}:${i}`) };
  }
  return loadImageFiles(spec);
}

/**
 * The images a set spec names, in order, with their ids: a packaged set `name[:train|test][:from-to]`
 * (the split's own order, the test split unless named; positions [from, to); ids `name-split:i`),
 * or image files (loadImageFiles). `key` names the images independently of where they are stored:
 * `name:split:from-to` for a packaged set; for files the reader's prefix and the file or folder's
 * own name (`svhn:test_32x32.mat`, `:fashion-vflip-ubyte`), which with the count identifies a
 * set in a conventional layout on any machine. `what` names the option in a refusal
 * (`features: --input`).
 */
export function loadSetSpec(spec: string, opts: LoadOptions & { what?: string } = {}): FileSet & { key: string } {
  const p = parseSetSpec(spec, BUILTIN);
  if (p) {
    const split = p.split ?? "test", all = loadDataset(p.set, split, opts);
    const [from, to] = p.range ?? [0, all.n];
    if (!(from < to && to <= all.n)) throw new Error(`${opts.what ? `${opts.what} '${spec}'` : `data: ${spec}`}: positions [${from}, ${to}) must satisfy from < to <= ${all.n} (the ${p.set} ${split} split)`);
    const idx = selectionIndices({ set: p.set, split, seed: null, from, to }, all.n);
    return { set: subset(all, idx, p.set), ids: Array.from(idx, (i) => `${p.set}-${split}:${i}`), key: setKey(spec) };
  }
  return { ...loadImageFiles(spec), key: setKey(spec) };
}

/** loadSetSpec's key of a spec, without reading it. */
export function setKey(spec: string): string {
  const p = parseSetSpec(spec, BUILTIN);
  if (p) {
    const split = p.split ?? "test", [from, to] = p.range ?? [0, splitSize(p.set, split)];
    return `${p.set}:${split}:${from}-${to}`;
  }
  const rs = readerSpec(spec);
  return `${rs?.format ?? ""}:${(rs?.path ?? spec).replace(/\/+$/, "").split("/").pop()}`;
}

/**
 * A set in the shape a model takes, or one line naming `what` if it cannot be: grey and colour are
 * one thing under the rule of greyIfEqual, so a colour set whose channels are all equal is taken as
 * grey by a one-channel model, and a grey set by a three-channel model has its value in each channel.
 */
export function conformShape(s: ImageSet, want: readonly [number, number, number], what: string): ImageSet {
  const [c, h, w] = want;
  if (s.h === h && s.w === w && s.c === 3 && c === 1) s = greyIfEqual(s);
  if (s.h === h && s.w === w && s.c === 1 && c === 3) {
    const plane = h * w, images = new Uint8Array(s.n * 3 * plane);
    for (let i = 0; i < s.n; i++) for (let k = 0; k < 3; k++) images.set(s.images.subarray(i * plane, (i + 1) * plane), (3 * i + k) * plane);
    return { ...s, images, c: 3 };
  }
  if (s.c !== c || s.h !== h || s.w !== w) {
    throw new Error(`${what}: images are ${s.c}x${s.h}x${s.w} (CxHxW), the model takes ${c}x${h}x${w}`);
  }
  return s;
}

/** A short name for a set spec, safe in file names: the packaged name, or the path's base name without extension. */
export function setLabel(spec: string): string {
  if (isBuiltinSet(spec)) return spec;
  const rs = readerSpec(spec);
  const base = (rs?.path ?? spec).replace(/\/+$/, "").split("/").pop()!.replace(/\.(npy|npz|mat|png|bin)$/i, "");
  const label = base.replace(/[^A-Za-z0-9_-]/g, "_") || "files";
  return rs ? `${rs.format}-${label}` : label;
}

/**
 * Training and test sets for a spec: a packaged set's official (or fixed) splits, or, for files,
 * all but the last tenth (at least one image) for training and that last tenth as the test set.
 */
export function trainTestSets(spec: string, opts: LoadOptions = {}): { train: ImageSet; test: ImageSet; note: string } {
  if (isBuiltinSet(spec)) return { train: loadDataset(spec, "train", opts), test: loadDataset(spec, "test", opts), note: `${spec} test split` };
  const { set } = loadImageFiles(spec);
  if (set.n < 2) throw new Error(`--data ${spec}: ${set.n} image; training needs at least 2 (the last tenth is held out as the test set)`);
  const nTest = Math.max(1, Math.floor(set.n / 10)), d = set.c * set.h * set.w, cut = set.n - nTest;
  const part = (a: number, b: number, name: string): ImageSet => ({ ...set, name, images: set.images.slice(a * d, b * d), labels: set.labels.slice(a, b), n: b - a });
  return { train: part(0, cut, `${setLabel(spec)}-train`), test: part(cut, set.n, `${setLabel(spec)}-test`), note: `the last ${nTest} images of ${spec}, held out` };
}
