// The same image gets the same answer wherever it sits (issue 19): a folder of PNGs scored under two
// different file orders and names gives identical per-image outputs, bit for bit, in `score` and in
// `ood` (its per-input features), with batches that group the images differently; the page's path
// (inspectImage) is checked against the loop in test/inspect.test.ts. Each input's random draws
// (the VAE's latent sample, the diffusion model's ε) come from its pixels and the seed
// (src/ood/loop.ts); the VAE, the diffusion model and the Glow are checked at the loop itself too.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { subset } from "../src/data/dataset.ts";
import { writePngFolder } from "../src/data/image_files.ts";
import { loadDataset } from "../src/data/mnist.ts";
import * as T from "../src/autograd/index.ts";
import { selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { setFeatures } from "../src/ood/loop.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { gpuTest, webgpu } from "./helpers.ts";

const S = suite("same input, same answer");

const run = async (...args: string[]) => {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", ...args], stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
};

const hashOf = (b: Uint8Array) => T.hashBytes(b, 0).toString(16);

S("score and ood: a PNG folder in two orders under other names gives identical per-image outputs (VAE, wasm, batches of 3 and 4)", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const mnist = loadDataset("mnist", "test");
    const idx = [5, 13, 0, 1, 2, 3, 4, 6];
    const a = subset(mnist, idx), b = subset(mnist, [...idx].reverse());
    writePngFolder(`${dir}/a`, a, "img");
    writePngFolder(`${dir}/b`, b, "renamed-");
    // Content of each file, so rows can be matched by image, not by name.
    const content = (set: typeof a, i: number) => hashOf(set.images.subarray(i * 784, (i + 1) * 784));
    const det = await run("src/cli/fit.ts", "--model", "weights/vae-fashion.safetensors", "--n", "40", "--out", `${dir}/det.json`);
    assert.is(det.code, 0, det.out);
    const s1 = await run("src/cli/score.ts", "--detector", `${dir}/det.json`, "--input", `${dir}/a`, "--batch", "3", "--out", `${dir}/a.json`, "--quiet");
    const s2 = await run("src/cli/score.ts", "--detector", `${dir}/det.json`, "--input", `${dir}/b`, "--batch", "4", "--out", `${dir}/b.json`, "--quiet");
    assert.is(s1.code + s2.code, 0, s1.out + s2.out);
    type Row = { id: string; nll: number; score: number; scores: Record<string, number>; verdict: string; top: unknown };
    const rows = (p: string) => (JSON.parse(Deno.readTextFileSync(p)).scores as Row[]);
    const ra = rows(`${dir}/a.json`), rb = rows(`${dir}/b.json`);
    assert.is(ra.length, 8);
    const byImage = (rs: Row[], set: typeof a) => new Map(rs.map((r, i) => [content(set, i), { ...r, id: "" }]));
    const ma = byImage(ra, a), mb = byImage(rb, b);
    for (const [k, v] of ma) assert.equal(mb.get(k), v, `image ${k}: the same NLL, scores, verdict and top layers`);
    // ood: the folder as an OOD set in both orders; the per-input features of the OOD set are the same rows.
    const o1 = await run("src/cli/ood.ts", "--model", "weights/vae-fashion.safetensors", "--fit", "30", "--eval", "8", "--B", "1", "--ood", `${dir}/a`, "--batch", "3", "--saliency", "0", "--out", `${dir}/o1`);
    const o2 = await run("src/cli/ood.ts", "--model", "weights/vae-fashion.safetensors", "--fit", "30", "--eval", "8", "--B", "1", "--ood", `${dir}/b`, "--batch", "4", "--saliency", "0", "--out", `${dir}/o2`);
    assert.is(o1.code + o2.code, 0, o1.out + o2.out);
    const oodRows = (d: string) => Deno.readTextFileSync(`${d}/features-vae-fashion-B1.csv`).trim().split("\n").filter((l) => l.includes(",ood,")).map((l) => l.split(",").slice(3).join(",")).sort();
    const x = oodRows(`${dir}/o1`), y = oodRows(`${dir}/o2`);
    assert.is(x.length, 8);
    assert.equal(x, y, "the OOD set's per-input features (value and every log f_l) as a set of rows");
    const auroc = (d: string) => JSON.parse(Deno.readTextFileSync(`${d}/table.json`)).evaluations[0].results;
    assert.equal(Object.values(auroc(`${dir}/o1`)), Object.values(auroc(`${dir}/o2`)), "and so the same metrics");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** An image's features and NLL on `backend` the same bit for bit in another order, another batch and beside other images. */
async function sameAcrossBatches(backend: Backend): Promise<void> {
  const mnist = loadDataset("mnist", "test");
  const idx = [3, 14, 15, 92, 65, 35, 8, 27];
  const a = subset(mnist, idx, "a"), b = subset(mnist, [...idx].reverse(), "b"), c = subset(mnist, [500, 501, 14, 502], "c"); // 14 again, among others
  for (const path of ["weights/vae-fashion.safetensors", "weights/diffusion-fashion.safetensors", "weights/glow-fashion-large.safetensors"]) {
    const m = await loadModel(path, backend), o = m.objective();
    const fa = await setFeatures(m, o, a, { groupSize: 1, batch: 3, seed: 0 });
    const fb = await setFeatures(m, o, b, { groupSize: 1, batch: 4, seed: 0 });
    const fc = await setFeatures(m, o, c, { groupSize: 1, batch: 2, seed: 0 });
    for (let i = 0; i < idx.length; i++) {
      assert.equal(Array.from(fb.logf[idx.length - 1 - i]), Array.from(fa.logf[i]), `${path}: image ${idx[i]}`);
      assert.is(fb.nll[idx.length - 1 - i], fa.nll[i]);
    }
    assert.equal(Array.from(fc.logf[2]), Array.from(fa.logf[1]), `${path}: image 14 beside other images`);
    // Another seed draws otherwise where the model draws at all.
    const f7 = await setFeatures(m, o, a, { groupSize: 1, batch: 3, seed: 7 });
    if (!path.includes("glow")) assert.ok(f7.logf.some((r, i) => r.some((v, l) => v !== fa.logf[i][l])), `${path}: seed 7 differs`);
  }
}

S("every model that draws (VAE: a latent sample; diffusion: t's noise ε), and the Glow: an image's features are the same bit for bit in another order, another batch and beside other images (wasm)", async () => {
  await sameAcrossBatches(await selectBackend("wasm", { makeDefault: false, onNotice: () => {} }));
});

// the same on WebGPU, the backend a real GPU runs (its kernels sum in orders of their own)
const gpu = await webgpu();
gpuTest(S, gpu)("the same for every model on WebGPU", async (g) => await sameAcrossBatches(g));

S.run();
