// Readers for the paper's colour datasets in their official files (SVHN .mat, GTSRB PPM + CSV,
// CelebA JPEGs, ImageNet32 .npz, CIFAR-10 binary, Omniglot PNG folders) through the one dispatch
// (loadImageFiles / loadNamedSet, FORMAT:PATH): files written here with known pixels, and files
// written by the reference implementations (scipy.io.savemat, numpy.savez, PIL: test/fixtures/readers,
// made by scripts/data/make_fixtures.py), read back exactly; the resamplings against digests of
// Pillow's and torch's own output; bad input for every reader refused with one line naming the file.
// Also the rules for every image file: symbolic links followed (dangling or looping ones refused),
// equal-channel colour is grey, PNG size checked from the header, empty sets refused.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import jpeg from "jpeg-js";
import { makeSet } from "../src/data/dataset.ts";
import { CELEBA_CROP, celebaTransform, decodeJpeg } from "../src/data/celeba.ts";
import { encodePpm } from "../src/data/gtsrb.ts";
import { conformShape, encodeCifar10, encodeIdx, encodeNpy, encodePngImage, greyIfEqual, loadImageFiles, loadNamedSet, readerSpec, setLabel, writePngFolder } from "../src/data/image_files.ts";
import { encodeMat, type MatVariable, svhnColumnMajor } from "../src/data/mat.ts";
import { npyHeader, parseNpy } from "../src/data/npy.ts";
import { encodeNpz } from "../src/data/npz.ts";
import { cropPlanar, resizePillowBilinear, resizeTorchBilinear } from "../src/data/resize.ts";

const S = suite("readers");
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const FIX = `${ROOT}/test/fixtures/readers`;
const REFS = JSON.parse(Deno.readTextFileSync(`${FIX}/references.json`)) as Record<string, string>;
const tmp = Deno.makeTempDirSync({ prefix: "fimscope-readers-" });
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Planar uint8 [n, c, h, w] with (n*97 + ch*31 + r*7 + col*3 + k0) % 256, as scripts/data/make_fixtures.py writes. */
function pattern(n: number, c: number, h: number, w: number, k0 = 0): Uint8Array {
  const out = new Uint8Array(n * c * h * w);
  let i = 0;
  for (let a = 0; a < n; a++) for (let b = 0; b < c; b++) for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) out[i++] = (a * 97 + b * 31 + r * 7 + q * 3 + k0) % 256;
  return out;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Runs `f`, which must throw one line matching `re` (and naming `file`). */
function refused(f: () => unknown, re: RegExp, file: string, label: string): void {
  let msg = "";
  try {
    f();
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.ok(msg, `${label}: accepted`);
  assert.match(msg, re, `${label}: ${msg}`);
  assert.ok(msg.includes(file), `${label}: the message does not name ${file}: ${msg}`);
  assert.not.match(msg, /\n/, `${label}: more than one line`);
}

// ---- SVHN ----------------------------------------------------------------------------------

const svhnPlanar = pattern(3, 3, 32, 32, 11);
const X = (planar = svhnPlanar, n = 3): MatVariable => ({ name: "X", cls: "uint8", dims: [32, 32, 3, n], values: svhnColumnMajor(planar) });
const Y = (values: number[] = [10, 1, 7], cls: "double" | "uint8" = "double"): MatVariable => ({ name: "y", cls, dims: [values.length, 1], values });

S("SVHN .mat: our v5 files (uncompressed, compressed, big-endian, other variables first) and scipy.io.savemat's read back exactly; labels 10 -> 0", () => {
  const files: [string, Uint8Array][] = [
    ["plain.mat", encodeMat([X(), Y()])],
    ["z.mat", encodeMat([X(), Y()], { compress: true })],
    ["be.mat", encodeMat([Y(), X()], { bigEndian: true })],
    ["extra.mat", encodeMat([{ name: "junk", cls: "double", dims: [2, 2], values: [1, 2, 3, 4] }, Y([10, 1, 7], "uint8"), X()], { compress: true })],
  ];
  for (const [name, bytes] of files) {
    const f = `${tmp}/${name}`;
    Deno.writeFileSync(f, bytes);
    const r = loadImageFiles(`svhn:${f}`);
    assert.equal([r.set.n, r.set.c, r.set.h, r.set.w], [3, 3, 32, 32], name);
    assert.ok(same(r.set.images, svhnPlanar), `${name}: pixels differ`);
    assert.equal([...r.set.labels], [0, 1, 7], name);
    assert.is(r.ids[2], `${f}:2`);
  }
  // Written by scipy.io.savemat (X uint8 [32,32,3,2], y double [[10],[3]]), with and without compression.
  const want = pattern(2, 3, 32, 32);
  for (const name of ["svhn-scipy.mat", "svhn-scipy-z.mat"]) {
    const r = loadImageFiles(`svhn:${FIX}/${name}`);
    assert.ok(same(r.set.images, want), `${name}: pixels differ`);
    assert.equal([...r.set.labels], [0, 3], name);
  }
});

S("SVHN .mat refusals: truncated, compressed and cut or corrupt, X double, wrong dims, no images, no y, label counts and values, byte-order mix-up, v7.3", () => {
  const plain = encodeMat([X(), Y()]), z = encodeMat([X(), Y()], { compress: true });
  const corrupt = z.slice();
  corrupt[z.length - 40] ^= 0xff; // inside the compressed y element (or its trailer)
  const flipped = plain.slice();
  flipped[126] = 0x4d; // "MI": big-endian, but the version was written little-endian
  flipped[127] = 0x49;
  const hdf5 = new Uint8Array(600);
  hdf5.set([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
  const cases: [string, Uint8Array, RegExp][] = [
    ["cut.mat", plain.subarray(0, 5000), /truncated/],
    ["cut-z.mat", z.subarray(0, z.length - 300), /truncated|does not decompress/],
    ["header-only.mat", plain.subarray(0, 100), /shorter than the 128-byte MAT-file header/],
    ["corrupt-z.mat", corrupt, /does not decompress|Adler-32|holds .* at index|truncated/],
    ["double.mat", encodeMat([{ ...X(), cls: "double" }, Y()]), /variable 'X' is double, expected uint8 pixels/],
    ["dims.mat", encodeMat([{ ...X(svhnPlanar.subarray(0, 3 * 1024), 3), dims: [32, 32, 1, 3] }, Y()]), /'X' has dimensions \[32,32,1,3\], expected \[32,32,3,N\]/],
    ["empty.mat", encodeMat([{ name: "X", cls: "uint8", dims: [32, 32, 3, 0], values: [] }, Y([])]), /holds no images/],
    ["no-y.mat", encodeMat([X()]), /no variable 'y'/],
    ["no-x.mat", encodeMat([Y()]), /no variable 'X'/],
    ["count.mat", encodeMat([X(), Y([1, 2])]), /'X' holds 3 images but 'y' 2 labels/],
    ["label.mat", encodeMat([X(), Y([1, 11, 2])]), /'y' holds 11 at index 1; SVHN labels are 1\.\.10/],
    ["endian.mat", flipped, /version 0x1 with endian indicator MI: expected 0x0100 \(a byte-order mix-up/],
    ["v73.mat", hdf5, /MATLAB v7\.3 \(HDF5\)/],
    ["text.mat", new TextEncoder().encode("x".repeat(200)), /not a MAT-file version 5/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = `${tmp}/bad-${name}`;
    Deno.writeFileSync(f, bytes);
    refused(() => loadImageFiles(`svhn:${f}`), re, f, name);
  }
});

// ---- ImageNet32 ------------------------------------------------------------------------------

const inetPlanar = pattern(4, 3, 32, 32, 5);
const labelsNpy = (n: number) => encodeNpy(new Uint8Array(new BigInt64Array(Array.from({ length: n }, (_, i) => BigInt(i + 1))).buffer), [n], "<i8");

S("ImageNet32 .npz: stored and deflated archives of ours and numpy's (np.savez, np.savez_compressed) read back exactly; planar rows", () => {
  for (const deflate of [false, true]) {
    const f = `${tmp}/val${deflate ? "-z" : ""}.npz`;
    Deno.writeFileSync(f, encodeNpz({ "data.npy": encodeNpy(inetPlanar, [4, 3072]), "labels.npy": labelsNpy(4) }, deflate));
    const r = loadImageFiles(`imagenet32:${f}`);
    assert.equal([r.set.n, r.set.c, r.set.h, r.set.w], [4, 3, 32, 32]);
    assert.ok(same(r.set.images, inetPlanar), "pixels differ");
    assert.equal([...r.set.labels], [255, 255, 255, 255]); // 1..1000 does not fit a byte: no labels
    assert.is(r.ids[3], `${f}:3`);
  }
  const want = pattern(2, 3, 32, 32);
  for (const name of ["imagenet32-numpy.npz", "imagenet32-numpy-z.npz"]) assert.ok(same(loadImageFiles(`imagenet32:${FIX}/${name}`).set.images, want), name);
});

S("ImageNet32 .npz refusals: truncated, not a zip, float data, wrong shape, Fortran order, no images, no data.npy, label count, CRC", () => {
  const ok = encodeNpz({ "data.npy": encodeNpy(inetPlanar, [4, 3072]), "labels.npy": labelsNpy(4) }, false);
  const crc = ok.slice();
  crc[200] ^= 1; // a pixel of the stored data.npy
  const fortran = encodeNpy(inetPlanar, [4, 3072]);
  const at = new TextDecoder().decode(fortran.subarray(0, 128)).indexOf("False");
  fortran.set(new TextEncoder().encode("True,"), at);
  const cases: [string, Uint8Array, RegExp][] = [
    ["cut.npz", ok.subarray(0, 9000), /no end-of-central-directory record \(truncated zip\)/],
    ["text.npz", new TextEncoder().encode("not a zip archive at all, just some words"), /not a zip archive/],
    ["float.npz", encodeNpz({ "data.npy": encodeNpy(new Uint8Array(4 * 3072 * 4), [4, 3072], "<f4") }, true), /data\.npy: dtype '<f4', expected uint8/],
    ["shape.npz", encodeNpz({ "data.npy": encodeNpy(inetPlanar, [12, 1024]) }, false), /shape \(12, 1024\), expected \(N, 3072\)/],
    ["fortran.npz", encodeNpz({ "data.npy": fortran }, false), /fortran_order is True/],
    ["empty.npz", encodeNpz({ "data.npy": encodeNpy(new Uint8Array(0), [0, 3072]) }, false), /holds no images/],
    ["nodata.npz", encodeNpz({ "labels.npy": labelsNpy(4) }, false), /no data\.npy in the archive \(it holds labels\.npy\)/],
    ["labels.npz", encodeNpz({ "data.npy": encodeNpy(inetPlanar, [4, 3072]), "labels.npy": labelsNpy(3) }, true), /labels\.npy: shape \(3\), expected \(4,\)/],
    ["crc.npz", crc, /fails its CRC-32 check/],
    ["short.npz", encodeNpz({ "data.npy": encodeNpy(inetPlanar, [4, 3072]).subarray(0, 5000) }, true), /needs 12288 data bytes, the entry has/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = `${tmp}/bad-${name}`;
    Deno.writeFileSync(f, bytes);
    refused(() => loadImageFiles(`imagenet32:${f}`), re, f, name);
  }
});

// ---- resamplings against Pillow and torch --------------------------------------------------

S("resamplings equal Pillow 9.4's Image.resize(BILINEAR) and torch 1.13's interpolate(bilinear) byte for byte (digests from scripts/data/make_fixtures.py)", () => {
  assert.is(sha(resizePillowBilinear(pattern(1, 3, 148, 148), 3, 148, 148, 32, 32)), REFS.pillow_148_to_32);
  assert.is(sha(resizeTorchBilinear(pattern(1, 3, 50, 45, 5), 3, 50, 45, 32, 32)), REFS.torch_50x45_to_32);
  assert.is(sha(resizeTorchBilinear(pattern(1, 1, 105, 105, 9), 1, 105, 105, 28, 28)), REFS.torch_105_to_28);
  // Known arithmetic: halving averages 2x2 blocks (torch), same size is the identity (both).
  const img = pattern(1, 3, 8, 6, 2);
  assert.ok(same(resizeTorchBilinear(img, 3, 8, 6, 8, 6), img) && same(resizePillowBilinear(img, 3, 8, 6, 8, 6), img));
  const half = resizeTorchBilinear(img, 3, 8, 6, 4, 3);
  for (let k = 0; k < 3; k++) for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) {
    const p = (yy: number, xx: number) => img[k * 48 + yy * 6 + xx];
    const avg = (p(2 * y, 2 * x) + p(2 * y, 2 * x + 1) + p(2 * y + 1, 2 * x) + p(2 * y + 1, 2 * x + 1)) / 4;
    assert.is(half[k * 12 + y * 3 + x], Math.floor(avg + 0.5));
  }
});

// ---- GTSRB ---------------------------------------------------------------------------------

/** A planar RGB image whose 2x2 blocks are constant (value from the block's position). */
function blocks(h: number, w: number): Uint8Array {
  const out = new Uint8Array(3 * h * w);
  for (let k = 0; k < 3; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[k * h * w + y * w + x] = (k * 50 + (y >> 1) * 13 + (x >> 1) * 5) % 256;
  return out;
}

function gtsrbDir(name: string, rows: [string, Uint8Array, number, number, [number, number, number, number], number][], labelled = true, eol = "\r\n"): string {
  const dir = `${tmp}/${name}`;
  Deno.mkdirSync(dir, { recursive: true });
  const head = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2" + (labelled ? ";ClassId" : "");
  const lines = rows.map(([f, img, h, w, roi, label]) => {
    Deno.writeFileSync(`${dir}/${f}`, encodePpm(img, h, w));
    return [f, w, h, ...roi, ...(labelled ? [label] : [])].join(";");
  });
  Deno.writeTextFileSync(`${dir}/GT-final_test${labelled ? "" : ".test"}.csv`, [head, ...lines].join(eol) + eol);
  return dir;
}

S("GTSRB: PPMs in the CSV's order, whole images resized by torch bilinear (the authors'), or cropped to the inclusive region with gtsrb-roi; labels, ids", () => {
  const big = blocks(64, 64), exact = pattern(1, 3, 32, 32, 3), framed = pattern(1, 3, 36, 40, 8);
  const dir = gtsrbDir("gtsrb", [["00000.ppm", big, 64, 64, [5, 5, 58, 58], 14], ["00001.ppm", exact, 32, 32, [0, 0, 31, 31], 42], ["00002.ppm", framed, 36, 40, [4, 2, 35, 33], 0]]);
  const r = loadImageFiles(`gtsrb:${dir}`);
  assert.equal([r.set.n, r.set.c, r.set.h, r.set.w], [3, 3, 32, 32]);
  assert.equal(r.ids, ["00000.ppm", "00001.ppm", "00002.ppm"]);
  assert.equal([...r.set.labels], [14, 42, 0]);
  // 64 -> 32 samples between the two pixels of each constant 2x2 block: exactly the block.
  const d = 3072, a = r.set.images;
  for (let k = 0; k < 3; k++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) assert.is(a[k * 1024 + y * 32 + x], (k * 50 + y * 13 + x * 5) % 256);
  assert.ok(same(a.subarray(d, 2 * d), exact), "a 32x32 image is kept as it is");
  assert.ok(same(a.subarray(2 * d), resizeTorchBilinear(framed, 3, 36, 40, 32, 32)));
  // The region (4,2)-(35,33) inclusive is 32x32: cropped, it is kept exactly.
  const roi = loadImageFiles(`gtsrb-roi:${dir}`).set.images;
  assert.ok(same(roi.subarray(2 * d), cropPlanar(framed, 3, 36, 40, 4, 2, 32, 32)), "ROI crop");
  assert.ok(same(roi.subarray(d, 2 * d), exact));
  // The unlabelled CSV (GT-final_test.test.csv), LF line ends.
  const u = loadImageFiles(`gtsrb:${gtsrbDir("gtsrb-u", [["a.ppm", exact, 32, 32, [1, 1, 30, 30], 0]], false, "\n")}`);
  assert.equal([...u.set.labels], [255]);
  assert.ok(same(u.set.images, exact));
});

S("GTSRB refusals: CSV header, ASCII or 16-bit PPM, truncated PPM, size mismatch, region outside, no images, missing file, no CSV", () => {
  const img = pattern(1, 3, 8, 8);
  const ppm = encodePpm(img, 8, 8);
  const cases: [string, (dir: string) => void, RegExp, string][] = [
    ["header", (d) => Deno.writeTextFileSync(`${d}/GT-final_test.csv`, "File;W;H\n"), /header 'File;W;H', expected 'Filename;Width;Height;/, "GT-final_test.csv"],
    ["p3", (d) => Deno.writeTextFileSync(`${d}/x.ppm`, "P3\n8 8\n255\n1 2 3\n"), /an ASCII PPM \(P3\); expected binary P6/, "x.ppm"],
    ["p6-16", (d) => Deno.writeFileSync(`${d}/x.ppm`, new Uint8Array([...new TextEncoder().encode("P6\n8 8\n65535\n"), ...new Uint8Array(384)])), /maxval 65535; expected 255 .*16-bit PPMs are not supported/, "x.ppm"],
    ["cut", (d) => Deno.writeFileSync(`${d}/x.ppm`, ppm.subarray(0, ppm.length - 10)), /truncated: 8x8 needs 192 pixel bytes, found 182/, "x.ppm"],
    ["size", (d) => Deno.writeFileSync(`${d}/x.ppm`, encodePpm(pattern(1, 3, 9, 8), 9, 8)), /8x9, but .*GT-final_test\.csv says 8x8/, "x.ppm"],
    ["roi", (d) => Deno.writeTextFileSync(`${d}/GT-final_test.csv`, "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\nx.ppm;8;8;0;0;8;7;1\n"), /line 2: region \(0, 0\)-\(8, 7\) \(inclusive\) is not inside the 8x8 image/, "GT-final_test.csv"],
    ["none", (d) => Deno.writeTextFileSync(`${d}/GT-final_test.csv`, "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"), /lists no images/, "GT-final_test.csv"],
    ["missing", (d) => Deno.removeSync(`${d}/x.ppm`), /cannot read PPM file .*x\.ppm/, "x.ppm"],
    ["dangling", (d) => (Deno.removeSync(`${d}/x.ppm`), Deno.symlinkSync(`${d}/gone.ppm`, `${d}/x.ppm`)), /x\.ppm is a symbolic link to .*gone\.ppm, which does not exist \(a dangling link\)/, "x.ppm"],
    ["nocsv", (d) => Deno.removeSync(`${d}/GT-final_test.csv`), /holds neither GT-final_test\.csv nor GT-final_test\.test\.csv/, "nocsv"],
  ];
  for (const [name, spoil, re, file] of cases) {
    const dir = gtsrbDir(`gtsrb-bad-${name}`, [["x.ppm", img, 8, 8, [0, 0, 7, 7], 1]]);
    spoil(dir);
    refused(() => loadImageFiles(`gtsrb:${dir}`), re, file, name);
  }
});

// ---- CelebA --------------------------------------------------------------------------------

/** A 178x218 colour image as JPEG bytes (jpeg-js's encoder), from a seed. */
function celebaJpeg(seed: number, w = 178, h = 218): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = 4 * (y * w + x);
    rgba[o] = (x * 3 + seed * 40) % 256;
    rgba[o + 1] = (y * 2 + seed * 17) % 256;
    rgba[o + 2] = ((x ^ y) + seed) % 256;
    rgba[o + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width: w, height: h }, 90).data;
}

S("CelebA: the crop (15, 40, 163, 188) then Pillow's bilinear resize; JPEGs decoded by jpeg-js; the test split (partition 2) in the file's order, or a folder's JPEGs", () => {
  // Crop arithmetic on a known image: the 148x148 pattern placed at (15, 40), noise around it, gives Pillow's resize of the pattern.
  const inner = pattern(1, 3, 148, 148), full = new Uint8Array(3 * 218 * 178).map((_, i) => (i * 7919) % 251);
  for (let k = 0; k < 3; k++) for (let y = 0; y < 148; y++) full.set(inner.subarray(k * 148 * 148 + y * 148, k * 148 * 148 + (y + 1) * 148), k * 218 * 178 + (y + 40) * 178 + 15);
  assert.equal([...CELEBA_CROP], [15, 40, 163, 188]);
  assert.is(sha(celebaTransform(full, 218, 178, "x")), REFS.pillow_148_to_32);
  // A partition file and img_align_celeba/: partition 2 only, in the file's order.
  const dir = `${tmp}/celeba`;
  Deno.mkdirSync(`${dir}/img_align_celeba`, { recursive: true });
  const bytes = [1, 2, 3, 4].map((s) => celebaJpeg(s));
  bytes.forEach((b, i) => Deno.writeFileSync(`${dir}/img_align_celeba/00000${i + 1}.jpg`, b));
  Deno.writeTextFileSync(`${dir}/list_eval_partition.txt`, "000001.jpg 0\n000004.jpg 2\n000003.jpg 1\n000002.jpg 2\n");
  const r = loadImageFiles(`celeba:${dir}`);
  assert.equal(r.ids, ["000004.jpg", "000002.jpg"]);
  assert.equal([r.set.n, r.set.c, r.set.h, r.set.w], [2, 3, 32, 32]);
  const expect = (b: Uint8Array) => {
    const d = jpeg.decode(b, { useTArray: true, formatAsRGBA: true });
    const planar = new Uint8Array(3 * d.width * d.height);
    for (let p = 0; p < d.width * d.height; p++) for (let k = 0; k < 3; k++) planar[k * d.width * d.height + p] = d.data[4 * p + k];
    return resizePillowBilinear(cropPlanar(planar, 3, 218, 178, 15, 40, 148, 148), 3, 148, 148, 32, 32);
  };
  assert.ok(same(r.set.images.subarray(0, 3072), expect(bytes[3])), "image 000004.jpg");
  assert.ok(same(r.set.images.subarray(3072), expect(bytes[1])), "image 000002.jpg");
  // A folder alone: all its JPEGs in name order (a symbolic link to one followed).
  const only = `${tmp}/celeba-only`;
  Deno.mkdirSync(only);
  Deno.writeFileSync(`${only}/b10.jpg`, bytes[0]);
  Deno.symlinkSync(`${dir}/img_align_celeba/000002.jpg`, `${only}/b9.jpg`);
  const o = loadImageFiles(`celeba:${only}`);
  assert.equal(o.ids, ["b9.jpg", "b10.jpg"]);
  assert.ok(same(o.set.images.subarray(0, 3072), expect(bytes[1])));
  // Grey JPEGs are repeated over the channels, as PIL's convert("RGB").
  const g = decodeJpeg(jpeg.encode({ data: new Uint8Array(4 * 16).fill(200), width: 4, height: 4 }, 90).data, "g.jpg");
  assert.ok(same(g.data.subarray(0, 16), g.data.subarray(16, 32)) && same(g.data.subarray(0, 16), g.data.subarray(32)));
});

S("the CelebA reader against PIL: a PIL-written 178x218 JPEG (quality 95, 4:2:0) through jpeg-js, the crop and resize is within 5 levels of PIL 9.4's 32x32 (fixtures: scripts/data/make_fixtures.py)", () => {
  const bytes = Deno.readFileSync(`${FIX}/celeba-pil.jpg`);
  const d = decodeJpeg(bytes, "celeba-pil.jpg");
  const ours = celebaTransform(d.data, d.h, d.w, "celeba-pil.jpg");
  const pil = parseNpy(Deno.readFileSync(`${FIX}/celeba-pil-32.npy`), "celeba-pil-32.npy");
  assert.equal(pil.shape, [3, 32, 32]);
  let max = 0, sum = 0;
  for (let i = 0; i < pil.data.length; i++) {
    const diff = Math.abs(ours[i] - pil.data[i]);
    max = Math.max(max, diff);
    sum += diff;
  }
  assert.ok(max <= 5, `max difference ${max}`);
  assert.ok(sum / pil.data.length <= 1, `mean difference ${(sum / pil.data.length).toFixed(3)}`);
});

S("CelebA refusals: truncated or broken JPEG, not 178x218, malformed partition file, no test images, empty folder", () => {
  const good = celebaJpeg(1);
  const cases: [string, (dir: string) => void, RegExp, string][] = [
    ["cut", (d) => Deno.writeFileSync(`${d}/1.jpg`, good.subarray(0, 700)), /JPEG file .*1\.jpg: cannot decode/, "1.jpg"],
    ["text", (d) => Deno.writeTextFileSync(`${d}/1.jpg`, "no jpeg"), /JPEG file .*1\.jpg: cannot decode/, "1.jpg"],
    ["size", (d) => Deno.writeFileSync(`${d}/1.jpg`, celebaJpeg(1, 100, 100)), /1\.jpg: 100x100, expected 178x218/, "1.jpg"],
    ["partition", (d) => Deno.writeTextFileSync(`${d}/list_eval_partition.txt`, "1.jpg 2\n1.jpg three\n"), /line 2 '1\.jpg three' is not '<image>\.jpg <0\|1\|2>'/, "list_eval_partition.txt"],
    ["no-test", (d) => Deno.writeTextFileSync(`${d}/list_eval_partition.txt`, "1.jpg 0\n"), /no image in partition 2/, "list_eval_partition.txt"],
    ["empty", (d) => Deno.removeSync(`${d}/1.jpg`), /holds neither list_eval_partition\.txt nor any \.jpg file/, "celeba-bad-empty"],
  ];
  for (const [name, spoil, re, file] of cases) {
    const dir = `${tmp}/celeba-bad-${name}`;
    Deno.mkdirSync(dir);
    Deno.writeFileSync(`${dir}/1.jpg`, good);
    spoil(dir);
    refused(() => loadImageFiles(`celeba:${dir}`), re, file, name);
  }
});

// ---- Omniglot, CIFAR-10, the dispatch ------------------------------------------------------

S("Omniglot: every PNG below the folder in path order, resized to 1x28x28 as the authors (torch bilinear); 1-bit PNGs (PIL's) decode to 0/255", () => {
  const dir = `${tmp}/omniglot`;
  Deno.mkdirSync(`${dir}/Alphabet_b/character01`, { recursive: true });
  Deno.mkdirSync(`${dir}/Alphabet_a/character10`, { recursive: true });
  Deno.mkdirSync(`${dir}/Alphabet_a/character2`, { recursive: true });
  const p105 = pattern(1, 1, 105, 105, 9);
  Deno.writeFileSync(`${dir}/Alphabet_a/character10/x.png`, encodePngImage(p105, 1, 105, 105));
  Deno.writeFileSync(`${dir}/Alphabet_a/character2/y.png`, encodePngImage(pattern(1, 1, 28, 28), 1, 28, 28));
  Deno.copyFileSync(`${FIX}/bits1.png`, `${dir}/Alphabet_b/character01/z.png`);
  const r = loadImageFiles(`omniglot:${dir}`);
  assert.equal(r.ids, ["Alphabet_a/character2/y.png", "Alphabet_a/character10/x.png", "Alphabet_b/character01/z.png"]);
  assert.equal([r.set.n, r.set.c, r.set.h, r.set.w], [3, 1, 28, 28]);
  assert.ok(same(r.set.images.subarray(0, 784), pattern(1, 1, 28, 28)));
  assert.is(sha(r.set.images.subarray(784, 1568)), REFS.torch_105_to_28);
  const bits = loadImageFiles(`${FIX}/bits1.png`).set;
  assert.equal([bits.c, bits.h, bits.w], [1, 3, 6]);
  assert.equal([...bits.images], Array.from({ length: 18 }, (_, i) => ((Math.floor(i / 6) + (i % 6)) % 3 === 0 ? 255 : 0)));
  assert.ok(same(r.set.images.subarray(1568), resizeTorchBilinear(bits.images, 1, 3, 6, 28, 28)));
  Deno.writeFileSync(`${dir}/Alphabet_b/character01/c.png`, encodePngImage(pattern(1, 3, 4, 4), 3, 4, 4));
  refused(() => loadImageFiles(`omniglot:${dir}`), /PNG file .*c\.png: colour, expected grey images/, "c.png", "colour in Omniglot");
});

S("one dispatch: cifar10: equals the plain path; loadNamedSet takes prefixes; unknown formats, wrong kinds of path and set labels", () => {
  const cif = makeSet("c", pattern(5, 3, 32, 32), Uint8Array.from([1, 2, 3, 4, 5]), 3, 32, 32);
  Deno.mkdirSync(`${tmp}/cifar`);
  Deno.writeFileSync(`${tmp}/cifar/data_batch_1.bin`, encodeCifar10({ ...cif, n: 2, images: cif.images.subarray(0, 2 * 3072), labels: cif.labels.subarray(0, 2) }));
  Deno.writeFileSync(`${tmp}/cifar/data_batch_2.bin`, encodeCifar10({ ...cif, n: 3, images: cif.images.subarray(2 * 3072), labels: cif.labels.subarray(2) }));
  for (const spec of [`cifar10:${tmp}/cifar`, `${tmp}/cifar`]) {
    const r = loadNamedSet(spec, "test");
    assert.ok(same(r.set.images, cif.images), spec);
    assert.equal([...r.set.labels], [1, 2, 3, 4, 5]);
    assert.is(r.ids[2], `${tmp}/cifar/data_batch_2.bin:0`);
  }
  assert.is(loadImageFiles(`cifar10:${tmp}/cifar/data_batch_2.bin`).set.n, 3);
  Deno.writeFileSync(`${tmp}/x.mat`, encodeMat([X(), Y()]));
  refused(() => loadImageFiles(`pngs:${tmp}/x.mat`), /unknown format 'pngs' \(allowed: svhn, gtsrb, gtsrb-roi, celeba, imagenet32, cifar10, omniglot/, "x.mat", "unknown format");
  refused(() => loadImageFiles(`svhn:${tmp}/cifar`), /is not a file \(svhn: takes an SVHN MAT-file/, "cifar", "folder for svhn");
  refused(() => loadImageFiles(`gtsrb:${tmp}/x.mat`), /is not a folder \(gtsrb: takes the GTSRB final test folder/, "x.mat", "file for gtsrb");
  refused(() => loadImageFiles(`svhn:${tmp}/none.mat`), /none\.mat does not exist/, "none.mat", "missing");
  assert.is(setLabel(`svhn:${tmp}/x.mat`), "svhn-x");
  assert.is(setLabel(`gtsrb:${tmp}/Final_Test/Images/`), "gtsrb-Images");
  // A path really named like a prefix stays a path.
  const cwd = Deno.cwd();
  try {
    Deno.chdir(tmp);
    Deno.writeFileSync("svhn:odd.npy", encodeNpy(pattern(2, 1, 3, 3), [2, 3, 3]));
    assert.is(readerSpec("svhn:odd.npy"), null);
    assert.is(loadImageFiles("svhn:odd.npy").set.n, 2);
  } finally {
    Deno.chdir(cwd);
  }
});

// ---- rules for every image file ------------------------------------------------------------

S("symbolic links: a PNG folder reads linked PNGs (half linked: all 8; only links: all), a dangling or looping link is refused naming it", () => {
  const real = `${tmp}/real`, mixed = `${tmp}/links-mixed`, links = `${tmp}/links-only`;
  const s = makeSet("s", pattern(8, 1, 5, 4), new Uint8Array(8), 1, 5, 4);
  const names = writePngFolder(real, s);
  Deno.mkdirSync(mixed);
  Deno.mkdirSync(links);
  names.forEach((n, i) => {
    if (i % 2) Deno.symlinkSync(`${real}/${n}`, `${mixed}/${n}`);
    else Deno.copyFileSync(`${real}/${n}`, `${mixed}/${n}`);
    Deno.symlinkSync(`../real/${n}`, `${links}/${n}`); // relative links too
  });
  for (const dir of [mixed, links]) {
    const r = loadImageFiles(dir);
    assert.is(r.set.n, 8, dir);
    assert.ok(same(r.set.images, s.images), dir);
    assert.equal(r.ids, names);
  }
  Deno.symlinkSync(`${tmp}/nowhere.png`, `${links}/zz-dangling.png`);
  refused(() => loadImageFiles(links), /zz-dangling\.png is a symbolic link to .*nowhere\.png, which does not exist \(a dangling link\)/, "zz-dangling.png", "dangling");
  Deno.removeSync(`${links}/zz-dangling.png`);
  Deno.symlinkSync(`${links}/zz-loop.png`, `${links}/zz-loop.png`);
  refused(() => loadImageFiles(links), /zz-loop\.png is a symbolic link that loops/, "zz-loop.png", "loop");
  refused(() => loadImageFiles(`svhn:${links}/zz-loop.png`), /zz-loop\.png is a symbolic link that loops/, "zz-loop.png", "loop as a prefixed path");
});

S("equal-channel colour is grey everywhere: read as one channel, mixed sets stay colour, a grey set fills a colour model's three channels", () => {
  const grey = pattern(3, 1, 6, 5, 4);
  const rgb = new Uint8Array(3 * 90);
  for (let i = 0; i < 3; i++) for (let k = 0; k < 3; k++) rgb.set(grey.subarray(i * 30, (i + 1) * 30), i * 90 + k * 30);
  const dir = `${tmp}/grey-rgb`;
  writePngFolder(dir, makeSet("g", rgb, new Uint8Array(3), 3, 6, 5));
  const r = loadImageFiles(dir).set;
  assert.equal([r.c, r.h, r.w], [1, 6, 5]);
  assert.ok(same(r.images, grey));
  const mixed = rgb.slice();
  mixed[3 * 90 - 1] ^= 1; // one pixel of the last image differs in blue
  assert.is(greyIfEqual(makeSet("m", mixed, new Uint8Array(3), 3, 6, 5)).c, 3);
  const back = conformShape(r, [3, 6, 5], "x");
  assert.ok(same(back.images, rgb), "grey repeated over three channels");
  assert.throws(() => conformShape(makeSet("m", mixed, new Uint8Array(3), 3, 6, 5), [1, 6, 5], "--input m"), /--input m: images are 3x6x5 \(CxHxW\), the model takes 1x6x5/);
});

S("PNG size is read from the header and refused above the limit before decoding; empty sets are refused when read", () => {
  // A crafted 24000x24000 header (no pixel data): refused from IHDR alone.
  const png = encodePngImage(new Uint8Array(4), 1, 2, 2);
  const dv = new DataView(png.buffer, png.byteOffset);
  dv.setUint32(16, 24000);
  dv.setUint32(20, 24000);
  Deno.writeFileSync(`${tmp}/huge.png`, png);
  refused(() => loadImageFiles(`${tmp}/huge.png`), /24000x24000 pixels \(allowed: 1 to 16384 per side and at most 16777216 pixels; checked before decoding\)/, "huge.png", "huge");
  Deno.mkdirSync(`${tmp}/huge-dir`);
  Deno.copyFileSync(`${tmp}/huge.png`, `${tmp}/huge-dir/a.png`);
  refused(() => loadImageFiles(`${tmp}/huge-dir`), /24000x24000 pixels/, "a.png", "huge in a folder");
  Deno.writeFileSync(`${tmp}/empty.npy`, encodeNpy(new Uint8Array(0), [0, 28, 28]));
  refused(() => loadImageFiles(`${tmp}/empty.npy`), /npy file .*empty\.npy: holds no images \(shape \(0, 28, 28\)\)/, "empty.npy", "empty npy");
  Deno.writeFileSync(`${tmp}/empty-ubyte`, encodeIdx(new Uint8Array(0), [0, 28, 28]));
  refused(() => loadImageFiles(`${tmp}/empty-ubyte`), /empty-ubyte holds no images/, "empty-ubyte", "empty idx");
  // The strict .npy header: unknown keys and non-integer shapes are refused.
  const bad = npyHeader("|u1", [1, 2, 2]);
  const text = String.fromCharCode(...bad).replace("'shape': (1, 2, 2), }", "'shape': (1, 2, 2), 'x': 1}");
  Deno.writeFileSync(`${tmp}/key.npy`, Uint8Array.from([...text, "\0", "\0", "\0", "\0"], (ch) => ch.charCodeAt(0)));
  refused(() => loadImageFiles(`${tmp}/key.npy`), /unknown header key 'x'/, "key.npy", "npy key");
});

// ---- through the commands ------------------------------------------------------------------

const cli = async (cmd: string, args: string[]) => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/src/cli/${cmd}.ts`, ...args], cwd: tmp, stdout: "piped", stderr: "piped",
    env: { FIMSCOPE_STOP_BEFORE_WORK: "1", FIMSCOPE_FASHION_CACHE: `${tmp}/never-built.bin` },
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
};

S("commands take FORMAT:PATH and equal-channel colour PNGs as grey alike: ood --data and --ood, fit --data pass validation for a 1x28x28 model", async () => {
  const grey = pattern(6, 1, 28, 28);
  const rgb = new Uint8Array(6 * 3 * 784);
  for (let i = 0; i < 6; i++) for (let k = 0; k < 3; k++) rgb.set(grey.subarray(i * 784, (i + 1) * 784), (3 * i + k) * 784);
  writePngFolder(`${tmp}/rgb28`, makeSet("g", rgb, new Uint8Array(6), 3, 28, 28));
  Deno.writeFileSync(`${tmp}/grey28.npy`, encodeNpy(grey, [6, 28, 28]));
  const vae = `${ROOT}/weights/vae-fashion.safetensors`;
  for (const [cmd, args] of [
    ["ood", ["--model", vae, "--data", `${tmp}/rgb28`, "--fit", "2", "--eval", "2", "--B", "1", "--ood", `${tmp}/grey28.npy,noise`]],
    ["ood", ["--model", vae, "--fit", "2", "--eval", "2", "--ood", `${tmp}/rgb28,svhn:${FIX}/svhn-scipy-z.mat`]], // colour SVHN for a grey model: refused below
    ["ood", ["--model", vae, "--ood", `cifar10:${tmp}/cifar`]], // a colour set for a grey model passes the reader, then the shape check refuses it
    ["fit", ["--model", vae, "--data", `${tmp}/rgb28`, "--out", `${tmp}/d.json`]],
  ] as const) {
    const r = await cli(cmd, [...args]);
    if (args.includes(`cifar10:${tmp}/cifar`)) {
      assert.is(r.code, 1, r.err);
      assert.match(r.err, /^error: ood: --model .*vae-fashion\.safetensors \(--ood cifar10:.*cifar\): the vae takes 1x28x28 images but cifar10:.*cifar has 3x32x32 images\n$/);
    } else if (args.some((x) => x.includes("svhn:"))) {
      assert.is(r.code, 1, r.err);
      assert.match(r.err, /^error: ood: --model .*\(--ood svhn:.*svhn-scipy-z\.mat\): the vae takes 1x28x28 images but svhn:.*svhn-scipy-z\.mat has 3x32x32 images\n$/);
    } else assert.is(r.code, 0, `${cmd} ${args.join(" ")}: ${r.err}`);
  }
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
