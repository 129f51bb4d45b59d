// Image sets from files: each format written by the test and read back byte for byte, with ids;
// shape checks against a model's shape and bad files, each a one-line error naming the file.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { makeSet } from "../src/data/dataset.ts";
import { conformShape, encodeCifar10, encodeIdx, encodeNpy, encodePngImage, loadImageFiles, loadNamedSet, writePngFolder } from "../src/data/image_files.ts";
import { encode } from "fast-png";

const S = suite("image_files");
const tmp = Deno.makeTempDirSync();

function randomSet(n: number, c: number, h: number, w: number, seed = 1) {
  const g = new T.Generator(seed);
  const images = Uint8Array.from({ length: n * c * h * w }, () => g.int(256));
  return makeSet("r", images, new Uint8Array(n).fill(255), c, h, w);
}

function sameImages(a: { images: Uint8Array; n: number; c: number; h: number; w: number }, b: typeof a) {
  assert.equal([b.n, b.c, b.h, b.w], [a.n, a.c, a.h, a.w]);
  assert.ok(a.images.length === b.images.length && a.images.every((v, i) => v === b.images[i]), "pixels differ");
}

S("a folder of PNGs round-trips (grey and colour), in natural name order, ids = file names", () => {
  for (const c of [1, 3]) {
    const s = randomSet(12, c, 7, 5, c);
    const dir = `${tmp}/png${c}`;
    const names = writePngFolder(dir, s);
    Deno.writeTextFileSync(`${dir}/notes.txt`, "ignored");
    const r = loadImageFiles(dir);
    sameImages(s, r.set);
    assert.equal(r.ids, names);
    assert.is(r.ids[2], "img02.png");
  }
  // Natural order: img2 before img10.
  const dir = `${tmp}/order`;
  Deno.mkdirSync(dir);
  const a = randomSet(1, 1, 4, 4, 7), b = randomSet(1, 1, 4, 4, 8);
  Deno.writeFileSync(`${dir}/img10.png`, encodePngImage(b.images, 1, 4, 4));
  Deno.writeFileSync(`${dir}/img2.png`, encodePngImage(a.images, 1, 4, 4));
  const r = loadImageFiles(dir);
  assert.equal(r.ids, ["img2.png", "img10.png"]);
  assert.is(r.set.images[0], a.images[0]);
});

S("PNG variants: RGBA drops alpha, grey+alpha and 16-bit decode to the 8-bit values; a single .png is a set of one", () => {
  const w = 3, h = 2;
  const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 29) % 256);
  Deno.writeFileSync(`${tmp}/rgba.png`, encode({ width: w, height: h, data: rgba, channels: 4, depth: 8 }));
  const r = loadImageFiles(`${tmp}/rgba.png`);
  assert.equal([r.set.n, r.set.c, r.set.h, r.set.w], [1, 3, h, w]);
  assert.equal(r.ids, ["rgba.png"]);
  for (let p = 0; p < w * h; p++) for (let k = 0; k < 3; k++) assert.is(r.set.images[k * w * h + p], rgba[p * 4 + k]);
  const g16 = Uint16Array.from({ length: w * h }, (_, i) => i * 257 * 40);
  Deno.writeFileSync(`${tmp}/g16.png`, encode({ width: w, height: h, data: g16, channels: 1, depth: 16 }));
  assert.equal([...loadImageFiles(`${tmp}/g16.png`).set.images], [0, 40, 80, 120, 160, 200]);
});

S(".npy of [N,H,W] and [N,C,H,W] uint8 round-trips, ids file:index", () => {
  for (const shape of [[6, 5, 4], [6, 3, 5, 4]]) {
    const [n, c, h, w] = shape.length === 4 ? shape : [shape[0], 1, shape[1], shape[2]];
    const s = randomSet(n, c, h, w, shape.length);
    const f = `${tmp}/a${shape.length}.npy`;
    const bytes = encodeNpy(s.images, shape);
    assert.is((bytes.length - s.images.length) % 64, 0); // header padded to 64 bytes, as numpy writes it
    Deno.writeFileSync(f, bytes);
    const r = loadImageFiles(f);
    sameImages(s, r.set);
    assert.is(r.ids[3], `${f}:3`);
  }
});

S("IDX (rank 3 and 4) and CIFAR-10 binary (a file and a folder of them) round-trip", () => {
  const s = randomSet(5, 1, 28, 28);
  Deno.writeFileSync(`${tmp}/x-images-idx3-ubyte`, encodeIdx(s.images, [5, 28, 28]));
  sameImages(s, loadImageFiles(`${tmp}/x-images-idx3-ubyte`).set);
  const s4 = randomSet(4, 3, 6, 6);
  Deno.writeFileSync(`${tmp}/y-ubyte`, encodeIdx(s4.images, [4, 3, 6, 6]));
  sameImages(s4, loadImageFiles(`${tmp}/y-ubyte`).set);
  const cif = randomSet(7, 3, 32, 32);
  Deno.mkdirSync(`${tmp}/cifar`);
  Deno.writeFileSync(`${tmp}/cifar/data_batch_1.bin`, encodeCifar10({ ...cif, n: 4, images: cif.images.subarray(0, 4 * 3072) }));
  Deno.writeFileSync(`${tmp}/cifar/data_batch_2.bin`, encodeCifar10({ ...cif, n: 3, images: cif.images.subarray(4 * 3072) }));
  const one = loadImageFiles(`${tmp}/cifar/data_batch_1.bin`);
  assert.is(one.set.n, 4);
  const all = loadImageFiles(`${tmp}/cifar`);
  sameImages(cif, all.set);
  assert.is(all.ids[4], `${tmp}/cifar/data_batch_2.bin:0`);
});

S("the packaged sets by name; the shape check against a model, and grey stored as RGB", () => {
  const m = loadNamedSet("mnist", "test");
  assert.is(m.set.n, 10000);
  assert.is(m.ids[5], "mnist-test:5");
  const s = randomSet(3, 3, 32, 32);
  assert.throws(() => conformShape(s, [1, 28, 28], "--input x"), (e: Error) => e.message === "--input x: images are 3x32x32 (CxHxW), the model takes 1x28x28");
  const grey = randomSet(2, 1, 4, 4);
  const rgb = new Uint8Array(2 * 48);
  for (let i = 0; i < 2; i++) for (let k = 0; k < 3; k++) rgb.set(grey.images.subarray(i * 16, (i + 1) * 16), i * 48 + k * 16);
  const g = conformShape(makeSet("g", rgb, new Uint8Array(2), 3, 4, 4), [1, 4, 4], "x");
  sameImages(grey, g);
  rgb[20] ^= 1;
  assert.throws(() => conformShape(makeSet("g", rgb, new Uint8Array(2), 3, 4, 4), [1, 4, 4], "x"), /images are 3x4x4/);
});

S("bad files give one-line errors naming the file", () => {
  const cases: [string, Uint8Array | null, RegExp][] = [
    ["nothing-here", null, /nothing-here is not a dataset name \(mnist, fashion\) nor a readable file or folder/],
    ["bad.npy", new Uint8Array([1, 2, 3]), /npy file .*bad.npy: not an .npy file/],
    ["f4.npy", (() => { const b = encodeNpy(new Uint8Array(16), [1, 4, 4]); const at = new TextDecoder().decode(b.subarray(10)).indexOf("|u1") + 10; b.set(new TextEncoder().encode("<f4"), at); return b; })(), /dtype '<f4', expected uint8/],
    ["short.npy", encodeNpy(new Uint8Array(16), [1, 4, 4]).subarray(0, 128 + 5), /needs 16 data bytes, found/],
    ["two.npy", encodeNpy(new Uint8Array(16), [4, 4]), /shape \(4, 4\), expected \[N,H,W\] or \[N,C,H,W\]/],
    ["t-ubyte", encodeIdx(new Uint8Array(10), [5, 28, 28]), /IDX file .*t-ubyte: expected 3936 bytes/],
    ["labels-idx1-ubyte", encodeIdx(new Uint8Array(5), [5]), /rank 1 \(a labels file\?\)/],
    ["x.bin", new Uint8Array(100), /CIFAR-10 file .*x.bin: 100 bytes is not a whole number/],
    ["broken.png", new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]), /PNG file .*broken.png: cannot decode/],
    ["what.dat", new Uint8Array([5, 5, 5, 5]), /cannot tell the format of .*what.dat/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = `${tmp}/bad/${name}`;
    Deno.mkdirSync(`${tmp}/bad`, { recursive: true });
    if (bytes) Deno.writeFileSync(f, bytes);
    try {
      loadImageFiles(f);
      assert.unreachable(`${name} accepted`);
    } catch (e) {
      const m = (e as Error).message;
      assert.match(m, re, `${name}: ${m}`);
      assert.not.match(m, /\n/);
    }
  }
  // Mixed sizes in one folder.
  Deno.mkdirSync(`${tmp}/mixed`);
  Deno.writeFileSync(`${tmp}/mixed/a.png`, encodePngImage(new Uint8Array(16), 1, 4, 4));
  Deno.writeFileSync(`${tmp}/mixed/b.png`, encodePngImage(new Uint8Array(25), 1, 5, 5));
  assert.throws(() => loadImageFiles(`${tmp}/mixed`), /PNG file .*b.png: 1x5x5 \(CxHxW\), but a.png in the same folder is 1x4x4/);
  Deno.mkdirSync(`${tmp}/empty`);
  assert.throws(() => loadImageFiles(`${tmp}/empty`), /folder .*empty holds no .png or CIFAR-10 .bin files/);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
