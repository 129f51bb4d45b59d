// Models are not tied to 28x28 one-channel images: the VAE and the Glow train a few steps and give
// gradient features on 3x32x32 images (synthetic, written in CIFAR-10's binary format and read by
// the loader), with the image shape, backend and dtype read from the model interface.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { drawsOf } from "./helpers.ts";
import { loadCifar10 } from "../src/data/cifar.ts";
import { range, subset } from "../src/data/dataset.ts";
import { encodeCifar10 } from "../src/data/image_files.ts";
import { createModel } from "../src/models/registry.ts";
import { evaluate, train } from "../src/models/train.ts";
import { featuresBatched, featuresLoop } from "../src/ood/features.ts";
import { setFeatures } from "../src/ood/loop.ts";

const S = suite("image_shape");

/** n synthetic 3x32x32 images with labels, seeded, as CIFAR-10 binary records (the format's own encoder). */
function cifarBytes(n: number, seed: number): Uint8Array {
  const g = new T.Generator(seed);
  const images = new Uint8Array(n * 3072), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = g.int(10);
    // Smooth-ish images (a per-channel ramp plus noise), so the models have something to fit.
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) {
      images[i * 3072 + c * 1024 + p] = Math.min(255, Math.floor(((p % 32) + c * 40) * 2 + 60 * g.uniform()));
    }
  }
  return encodeCifar10({ name: "synthetic", images, labels, n, c: 3, h: 32, w: 32 });
}

S("VAE and Glow train and give batched features equal to the loop on 3x32x32 CIFAR-10-format images", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/data_batch_1.bin`, cifarBytes(8, 1));
    Deno.writeFileSync(`${dir}/data_batch_2.bin`, cifarBytes(4, 2));
    const data = loadCifar10([`${dir}/data_batch_1.bin`, `${dir}/data_batch_2.bin`]);
    assert.equal([data.n, data.c, data.h, data.w], [12, 3, 32, 32]);
    const configs = [
      ["vae", { latent: 3, channels: [3, 4], outChannels: 3, image: [3, 32, 32] }, "adam"],
      ["glow", { levels: 2, steps: 1, hidden: 4, image: [3, 32, 32] }, "adamax"],
    ] as const;
    for (const [kind, cfg, optimizer] of configs) {
      const m = await createModel(kind, cfg, T.cpu, 1);
      assert.equal(m.imageShape, [3, 32, 32], kind);
      assert.is(m.dims, 3 * 32 * 32);
      assert.is(m.backend, T.cpu);
      assert.is(m.dtype, "float32");
      const before = m.parameters().map((p) => [...p.dataSync()]);
      const steps: number[] = [];
      const r = await train(m, data, {
        steps: 3, batch: 4, lr: 1e-3, seed: 0, optimizer, clip: 100, warmup: 1, checkpointEvery: 1000,
        checkpointPath: `${dir}/${kind}.ckpt.safetensors`, data: "cifar-synthetic", onProgress: (p) => steps.push(p.step),
      });
      assert.ok(Number.isFinite(r.lastLoss) && r.lastLoss > 0, `${kind}: loss ${r.lastLoss}`);
      assert.equal(steps, [0, 1, 2, 3], `${kind}: progress reported before the first step and after each`);
      assert.ok(m.parameters().some((p, i) => p.dataSync().some((v, k) => v !== before[i][k])), `${kind}: training moved the parameters`);
      const done: number[] = [];
      const bpd = await evaluate(m, data, 12, { batch: 5, onProgress: (d, n) => { assert.is(n, 12); done.push(d); } });
      assert.ok(Number.isFinite(bpd) && bpd > 0, `${kind}: ${bpd} bits/dim`);
      assert.equal(done, [5, 10, 12]);

      const x = m.input(data, range(0, 6));
      assert.equal(x.shape, [6, 3, 32, 32]);
      const noise = drawsOf(m, m.objective(), 6, new T.Generator(3));
      for (const B of [1, 3]) {
        const a = await featuresBatched(m, m.objective(), x, B, noise), l = await featuresLoop(m, m.objective(), x, B, noise);
        assert.is(a.groups, 6 / B);
        for (let i = 0; i < a.sq.length; i++) {
          const rel = Math.abs(a.sq[i] - l.sq[i]) / Math.abs(l.sq[i]);
          assert.ok(l.sq[i] > 0 && rel < 1e-4, `${kind} B=${B} ${a.names[i % a.names.length]}: batched ${a.sq[i]} vs loop ${l.sq[i]}`);
        }
      }
      const f = await setFeatures(m, m.objective(), subset(data, range(0, 4), "cifar-4"), { groupSize: 2, batch: 4 });
      assert.is(f.logf.length, 2);
      assert.ok(f.logf.every((row) => row.every(Number.isFinite)));
      const s = await m.sample(2, new T.Generator(4));
      assert.is(s.length, 2 * 3 * 32 * 32, `${kind}: samples in the model's image shape`);
      x.dispose();
      noise?.dispose();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

S("a set of another image shape is refused before any features are computed", async () => {
  const m = await createModel("vae", { latent: 2, channels: [2, 2], outChannels: 2, image: [3, 32, 32] }, T.cpu, 1);
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/b.bin`, cifarBytes(2, 5));
    const data = loadCifar10([`${dir}/b.bin`]);
    const gray = { ...data, name: "gray", c: 1, h: 28, w: 28, images: new Uint8Array(2 * 784) };
    let msg = "";
    try { await setFeatures(m, m.objective(), gray, { groupSize: 1, batch: 2 }); } catch (e) { msg = (e as Error).message; }
    assert.match(msg, /set gray has 1x28x28 images, the model takes 3x32x32/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  let err = "";
  try { await createModel("vae", { image: [3, 30, 30] }, T.cpu); } catch (e) { err = (e as Error).message; }
  assert.match(err, /image 30x30 needs H and W divisible by 4/);
});

S.run();
