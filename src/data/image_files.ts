// Image sets from a user's files: a folder of PNGs, a single PNG, an .npy array of uint8 [N,H,W] or
// [N,C,H,W], an IDX file (*-ubyte: rank 3 [N,H,W] or rank 4 [N,C,H,W] unsigned bytes), CIFAR-10
// binary (*.bin, or a folder of them). Every input gets an id: the PNG's file name, or
// `file:index` inside an array file. Writers for each format too (tests round-trip through them;
// `encodeNpy` also exports sets). Errors are one line naming the file.
import { convertIndexedToRgb, decode } from "fast-png";
import { writeFileAtomic } from "../io/atomic.ts";
import { imageGridPng } from "../io/png.ts";
import { type ImageSet, makeSet } from "./dataset.ts";
import { parseCifar10 } from "./cifar.ts";
import { readBytes } from "./files.ts";
import { parseIdx } from "./idx.ts";
import { loadDataset, type LoadOptions, type Split } from "./mnist.ts";

export interface FileSet {
  set: ImageSet;
  /** One per image: file name (PNG folder) or `file:index` (array files). */
  ids: string[];
}

const BUILTIN = ["mnist", "fashion"];
export const FORMATS_HELP = "a folder of PNGs, a .png, an .npy of uint8 [N,H,W] or [N,C,H,W], an IDX *-ubyte file, or CIFAR-10 binary (*.bin or a folder of them)";

// ---- PNG ----

/** One PNG as planar bytes [C, H, W] (C = 1 for grey, 3 for colour; alpha dropped, palettes expanded, 16-bit rounded to 8). */
export function decodePngImage(bytes: Uint8Array, file: string): { c: number; h: number; w: number; data: Uint8Array } {
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
  }
  if (depth !== 8 && depth !== 16) throw new Error(`PNG file ${file}: bit depth ${depth} is not supported (8 or 16 bits per channel)`);
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

const byName = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });

function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name).sort(byName);
  } catch (e) {
    throw new Error(`data: cannot read folder ${dir}: ${(e as Error).message}`);
  }
}

/** Every *.png in a folder (not its subfolders), in natural name order; all must have one shape. */
export function loadPngFolder(dir: string): FileSet {
  const files = listDir(dir).filter((n) => /\.png$/i.test(n));
  if (!files.length) throw new Error(`data: folder ${dir} holds no .png files`);
  let shape: [number, number, number] | null = null;
  const parts: Uint8Array[] = [];
  for (const f of files) {
    const path = `${dir.replace(/\/$/, "")}/${f}`;
    const im = decodePngImage(readBytes(path, "PNG"), path);
    if (!shape) shape = [im.c, im.h, im.w];
    else if (im.c !== shape[0] || im.h !== shape[1] || im.w !== shape[2]) {
      throw new Error(`PNG file ${path}: ${im.c}x${im.h}x${im.w} (CxHxW), but ${files[0]} in the same folder is ${shape.join("x")}; a folder must hold one image size`);
    }
    parts.push(im.data);
  }
  const [c, h, w] = shape!;
  const images = new Uint8Array(parts.length * c * h * w);
  parts.forEach((p, i) => images.set(p, i * p.length));
  return { set: makeSet(dir, images, new Uint8Array(files.length).fill(255), c, h, w), ids: files };
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

// ---- .npy ----

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses an .npy file holding uint8 [N,H,W] or [N,C,H,W] (C order). */
export function parseNpy(bytes: Uint8Array, file: string): { shape: number[]; data: Uint8Array } {
  const fail = (why: string) => new Error(`npy file ${file}: ${why}`);
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) throw fail("not an .npy file (no \\x93NUMPY magic)");
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (major < 1 || major > 3 || start + hlen > bytes.length) throw fail(`unsupported version ${major} or truncated header`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + hlen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw fail(`malformed header ${JSON.stringify(header.trim())}`);
  if (!["|u1", "<u1", ">u1", "u1", "=u1"].includes(descr)) throw fail(`dtype '${descr}', expected uint8 ('|u1'): pixels 0..255`);
  if (fortran === "True") throw fail("Fortran order is not supported (save with C order)");
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length).map(Number);
  if (shape.length !== 3 && shape.length !== 4) throw fail(`shape (${shape.join(", ")}), expected [N,H,W] or [N,C,H,W]`);
  const n = shape.reduce((a, b) => a * b, 1), off = start + hlen;
  if (bytes.length !== off + n) throw fail(`shape (${shape.join(", ")}) needs ${n} data bytes, found ${bytes.length - off} (truncated or malformed)`);
  return { shape, data: bytes.subarray(off) };
}

/** An .npy (version 1.0) of uint8 with the given shape. */
export function encodeNpy(data: Uint8Array, shape: number[]): Uint8Array {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.length);
  out.set(NPY_MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
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

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch (e) {
    throw new Error(`data: ${path} is not a dataset name (${BUILTIN.join(", ")}) nor a readable file or folder (${(e as Error).message.split(":")[0]})`);
  }
}

/** Reads one file or folder in any supported format (chosen by content and extension). */
export function loadImageFiles(path: string): FileSet {
  if (isDir(path)) {
    const names = listDir(path);
    if (names.some((n) => /\.png$/i.test(n))) return loadPngFolder(path);
    const bins = names.filter((n) => /\.bin$/i.test(n));
    if (bins.length) return concatFiles(bins.map((n) => loadImageFiles(`${path.replace(/\/$/, "")}/${n}`)), path);
    throw new Error(`data: folder ${path} holds no .png or CIFAR-10 .bin files`);
  }
  const bytes = readBytes(path, "image");
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    const im = decodePngImage(bytes, path);
    return { set: makeSet(path, im.data, new Uint8Array([255]), im.c, im.h, im.w), ids: [path.split("/").pop()!] };
  }
  if (/\.npy$/i.test(path) || NPY_MAGIC.every((b, i) => bytes[i] === b)) {
    const { shape, data } = parseNpy(bytes, path);
    const [n, c, h, w] = shape.length === 4 ? shape : [shape[0], 1, shape[1], shape[2]];
    return { set: makeSet(path, data, new Uint8Array(n).fill(255), c, h, w), ids: idsOf(path, n) };
  }
  if (/ubyte$/i.test(path) || /\.idx\d?$/i.test(path) || (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0x08)) {
    const s = fromIdx(bytes, path);
    return { set: s, ids: idsOf(path, s.n) };
  }
  if (/\.bin$/i.test(path)) {
    const s = parseCifar10(bytes, path);
    return { set: { ...s, name: path }, ids: idsOf(path, s.n) };
  }
  throw new Error(`data: cannot tell the format of ${path}; expected ${FORMATS_HELP}`);
}

function concatFiles(parts: FileSet[], name: string): FileSet {
  const [c, h, w] = [parts[0].set.c, parts[0].set.h, parts[0].set.w];
  for (const p of parts) if (p.set.c !== c || p.set.h !== h || p.set.w !== w) throw new Error(`data: ${p.set.name} is ${p.set.c}x${p.set.h}x${p.set.w}, but ${parts[0].set.name} is ${c}x${h}x${w}`);
  const images = new Uint8Array(parts.reduce((s, p) => s + p.set.images.length, 0));
  const labels = new Uint8Array(parts.reduce((s, p) => s + p.set.n, 0));
  let o = 0, lo = 0;
  for (const p of parts) {
    images.set(p.set.images, o);
    labels.set(p.set.labels, lo);
    o += p.set.images.length;
    lo += p.set.n;
  }
  return { set: makeSet(name, images, labels, c, h, w), ids: parts.flatMap((p) => p.ids) };
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
 * Checks a set's image shape against what a model takes, one line if not; a colour set whose
 * channels are all equal is accepted as grey for a one-channel model (returned converted).
 */
export function conformShape(s: ImageSet, want: readonly [number, number, number], what: string): ImageSet {
  const [c, h, w] = want;
  if (s.h === h && s.w === w && s.c === 3 && c === 1) {
    const plane = h * w, d = 3 * plane;
    let grey = true;
    for (let i = 0; i < s.n && grey; i++) {
      for (let k = 0; k < plane; k++) {
        const r = s.images[i * d + k];
        if (s.images[i * d + plane + k] !== r || s.images[i * d + 2 * plane + k] !== r) { grey = false; break; }
      }
    }
    if (grey) {
      const images = new Uint8Array(s.n * plane);
      for (let i = 0; i < s.n; i++) images.set(s.images.subarray(i * d, i * d + plane), i * plane);
      return { ...s, images, c: 1 };
    }
  }
  if (s.c !== c || s.h !== h || s.w !== w) {
    throw new Error(`${what}: images are ${s.c}x${s.h}x${s.w} (CxHxW), the model takes ${c}x${h}x${w}`);
  }
  return s;
}

/** A short name for a set spec, safe in file names: the packaged name, or the path's base name without extension. */
export function setLabel(spec: string): string {
  if (isBuiltinSet(spec)) return spec;
  const base = spec.replace(/\/+$/, "").split("/").pop()!.replace(/\.(npy|png|bin)$/i, "");
  return base.replace(/[^A-Za-z0-9_-]/g, "_") || "files";
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
