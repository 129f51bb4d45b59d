// Writes the first N images of the FashionMNIST test split flipped upside down, as an IDX file in
// FashionMNIST's own format (uint8 [N, 28, 28], like t10k-images-idx3-ubyte): the third grey set of
// the `paper` grid on the data we have (docs/paper-grid.md). No model is trained on it.
//
//   deno run -A scripts/data/fashion_vflip.ts --out /tmp/fashion-vflip-idx3-ubyte [--n 10000]
import { encodeIdx } from "../../src/data/image_files.ts";
import { subset, range } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/mnist.ts";
import { flipVertical } from "../../src/data/synthetic.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";
import { int, outFile, parseOptions } from "../../src/io/options.ts";

const a = parseOptions("fashion_vflip", { out: outFile().required(), n: int({ min: 1, max: 10000 }).default(10000) });
const test = loadDataset("fashion", "test");
const flipped = flipVertical(subset(test, range(0, a.n)));
writeFileAtomic(a.out, encodeIdx(flipped.images, [a.n, 28, 28]));
console.log(`${a.out}: the first ${a.n} FashionMNIST test images, flipped vertically (IDX uint8 [${a.n}, 28, 28])`);
