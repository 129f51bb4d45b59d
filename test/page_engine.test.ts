// The page's pieces that run without a browser: image files refused before decoding (web/decode.ts:
// empty, not an image, truncated, too large, each named), the blocks the charts group tensors by
// (web/engine.ts), the benchmark's list (the library's default, src/nn/workloads.ts), and the
// Glow's edge-column saliency explained on the page: the map matches float64 central differences on
// an edge pixel, and it concentrates where FashionMNIST's training images are mostly black.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encode } from "fast-png";
import { checkImageBytes, MAX_SIDE, sniff } from "../web/decode.ts";
import { blockOf } from "../web/engine.ts";
import { readCheckpoint } from "../src/io/safetensors.ts";
import { kernelWorkloads } from "../src/nn/workloads.ts";
import { workloads } from "../bench/workloads.ts";
import { centralDifferences, edgeShare, f64Copy, maps, pageImage, profile, shipped } from "../scripts/web/glow_edges.ts";
import { makeSet } from "../src/data/dataset.ts";

const S = suite("page engine");

S("image files: type and size from the first bytes; empty, not an image, truncated and too large refused with the file's name (issue 20: 4)", () => {
  const png = encode({ width: 30, height: 20, data: new Uint8Array(600), channels: 1, depth: 8 });
  assert.equal(sniff(png), { type: "PNG", width: 30, height: 20 });
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8, 0, 200, 1, 64, 1, 1, 17, 0]);
  assert.equal(sniff(jpeg), { type: "JPEG", width: 320, height: 200 });
  assert.equal(sniff(Uint8Array.from([..."GIF89a"].map((c) => c.charCodeAt(0)).concat([64, 1, 200, 0]))), { type: "GIF", width: 320, height: 200 });
  const bmp = new Uint8Array(30);
  bmp.set([66, 77]);
  new DataView(bmp.buffer).setInt32(18, 320, true);
  new DataView(bmp.buffer).setInt32(22, -200, true);
  assert.equal(sniff(bmp), { type: "BMP", width: 320, height: 200 });
  assert.is(sniff(new TextEncoder().encode("hello")), null);
  assert.is(sniff(png.slice(0, 20)), "truncated");
  assert.throws(() => checkImageBytes("a.png", new Uint8Array()), /^a\.png: the file is empty \(0 bytes\)$/);
  assert.throws(() => checkImageBytes("notes.txt", new TextEncoder().encode("hello, not a picture")), /^notes\.txt: not an image/);
  assert.throws(() => checkImageBytes("cut.png", png.slice(0, 20)), /^cut\.png: the image ends before its size is given/);
  const big = png.slice();
  new DataView(big.buffer).setUint32(16, 30000);
  new DataView(big.buffer).setUint32(20, 30000);
  assert.throws(() => checkImageBytes("huge.png", big), new RegExp(`^huge\\.png: 30000x30000 pixels is too large \\(the limit is ${MAX_SIDE}x${MAX_SIDE}\\)$`));
  assert.equal(checkImageBytes("ok.png", png), { type: "PNG", width: 30, height: 20 });
});

S("blocks: Glow flow steps and priors, the VAE's encoder and decoder, U-Net blocks, in model order", () => {
  const names = (m: string) => [...readCheckpoint(`weights/${m}.safetensors`).tensors.keys()];
  const blocks = (_kind: string, m: string) => [...new Set(names(m).filter((n) => !/invconv\.(perm|sign)$/.test(n)).map((n) => blockOf(n)))];
  assert.equal(blocks("vae", "vae-fashion"), ["encoder", "decoder"]);
  const g = blocks("glow", "glow-fashion-large");
  assert.is(g.length, 17);
  assert.equal(g.slice(0, 2), ["levels.0.steps.0", "levels.0.steps.1"]);
  assert.ok(g.includes("levels.0.prior"));
  const d = blocks("diffusion", "diffusion-fashion");
  assert.equal(d.slice(0, 4), ["unet.time", "unet.in", "unet.down.0.0", "unet.down.0"]);
  assert.ok(d.includes("unet.mid.attn") && d[d.length - 1] === "unet.out", d.join());
});

S("the page's benchmark runs the bench's default workloads, from the library (issue 20: 5)", () => {
  assert.equal(kernelWorkloads().map((w) => [w.name, w.flops]), workloads().filter((w) => !w.optIn).map((w) => [w.name, w.flops]));
  assert.ok(kernelWorkloads().every((w) => w.flops > 0));
});

S("the Glow's edge columns are the model's: the map equals float64 central differences at an edge pixel, and the outer columns hold most of it (issue 20: 2)", async () => {
  const { model, det } = await shipped("glow-fashion");
  // The first 8 page FashionMNIST images: the 8 outer columns (29% of the pixels) hold over half of
  // |d score/dx| on average (0.62 measured, 0.18-0.91 per image), the 8 outer rows much less.
  let cols = 0, rows = 0;
  for (let k = 0; k < 8; k++) {
    const p = profile((await maps(model, det, pageImage("fashion", k))).score);
    cols += edgeShare(p.cols) / 8;
    rows += edgeShare(p.rows) / 8;
  }
  assert.ok(cols > 0.5 && rows < 0.45, `outer columns ${cols.toFixed(3)}, outer rows ${rows.toFixed(3)} of |d score/dx|`);
  const m64 = await f64Copy(model);
  const x = Float64Array.from(await model.input(makeSet("x", pageImage("fashion", 0), new Uint8Array([0]), 1, 28, 28), [0]).data());
  for (const [r, c] of [[14, 0], [13, 27]]) {
    const { exact, fd } = await centralDifferences(m64, det, x, r, c, [1e-6]);
    assert.ok(Math.abs(exact) > 10 && Math.abs(fd[0] - exact) < 1e-3 * Math.abs(exact), `pixel (${r}, ${c}): double backprop ${exact}, central difference ${fd[0]}`);
  }
});

S.run();
