// A long training loop on the GPU must not grow memory: after warm-up the pool creates nothing.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { gpuTest, webgpu, drawsOf } from "./helpers.ts";
import { KEPT_PATCHES_MAX_BYTES } from "../src/kernels/webgpu/patches.ts";
import { createModel } from "../src/models/registry.ts";
import { featuresBatched, featuresLoop } from "../src/ood/features.ts";
import { Diffusion, diffusionConfig } from "../src/models/diffusion.ts";
import { Adam } from "../src/nn/optim.ts";

const gpu = await webgpu();
const S = suite("webgpu memory");
const G = gpuTest(S, gpu);

G("1000 SGD steps of an MLP: pool size flat after warm-up, loss goes down", async (gpu) => {
  const g = new T.Generator(3);
  const o = { backend: gpu, requiresGrad: true };
  const params = [T.randn(g, [12, 24], { ...o, std: 0.3 }), T.zeros([24], o), T.randn(g, [24, 5], { ...o, std: 0.3 }), T.zeros([5], o)];
  const x = T.randn(g, [16, 12], { backend: gpu });
  const y = T.randn(g, [16, 5], { backend: gpu });
  const lossOf = () => {
    const [w1, b1, w2, b2] = params;
    const h = T.tanh(T.add(T.matmul(x, w1), b1));
    return T.mean(T.square(T.sub(T.add(T.matmul(h, w2), b2), y)));
  };
  const step = () => T.tidy(() => {
    const l = lossOf();
    const gs = T.grad(l, params);
    params.forEach((p, i) => p.assign(T.noGrad(() => T.sub(p, T.mul(gs[i]!, 0.05)))));
  });
  const first = await T.tidy(() => lossOf()).item();
  for (let i = 0; i < 10; i++) step();
  await gpu.sync();
  const warm = gpu.rt.pool.stats();
  for (let i = 0; i < 990; i++) step();
  await gpu.sync();
  const end = gpu.rt.pool.stats();
  const last = await T.tidy(() => lossOf()).item();
  assert.is(end.created, warm.created, `buffers created grew from ${warm.created} to ${end.created}`);
  // Earlier suites' unreferenced tensors may be collected meanwhile, so in-use can only fall.
  assert.ok(end.inUse <= warm.inUse, `buffers in use grew from ${warm.inUse} to ${end.inUse}`);
  assert.ok(last < first * 0.5, `loss ${first} -> ${last}`);
});

G("repeated OOD feature passes (per-group and loop, VAE and Glow): nothing created after warm-up, nothing left in use", async (gpu) => {
  for (const [kind, cfg] of [["vae", { latent: 2, channels: [2, 4], outChannels: 2 }], ["glow", { levels: 2, steps: 1, hidden: 4, image: [1, 28, 28] }]] as const) {
    const m = await createModel(kind, cfg, gpu, 5);
    const x = T.rand(new T.Generator(6), [6, 1, 28, 28], { backend: gpu, low: -0.5, high: 0.5 });
    if (m.initialize) m.initialize(x);
    m.eval();
    const noise = drawsOf(m, m.objective(), 6, new T.Generator(7));
    const pass = async () => {
      for (const B of [1, 3]) await featuresBatched(m, m.objective(), x, B, noise);
      await featuresLoop(m, m.objective(), x, 3, noise);
    };
    await pass();
    await gpu.sync();
    const warm = gpu.rt.pool.stats();
    for (let i = 0; i < 20; i++) await pass();
    await gpu.sync();
    const end = gpu.rt.pool.stats();
    assert.is(end.created, warm.created, `${kind}: buffers created grew from ${warm.created} to ${end.created}`);
    assert.ok(end.inUse <= warm.inUse, `${kind}: buffers in use grew from ${warm.inUse} to ${end.inUse}`);
  }
});

G("the diffusion model (fused GroupNorm, attention): training steps and feature passes create nothing after warm-up, leave nothing in use", async (gpu) => {
  const m = new Diffusion(diffusionConfig({ image: [1, 8, 8], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 2, steps: 50 }), { backend: gpu, gen: new T.Generator(9) });
  const params = m.parameters(), opt = new Adam(params, { lr: 1e-3 });
  const x = T.rand(new T.Generator(10), [4, 1, 8, 8], { backend: gpu, low: -1, high: 1 });
  const noise = drawsOf(m, m.objective(), 4, new T.Generator(11));
  let k = 0;
  const round = async () => {
    m.train();
    const l = T.tidy(() => {
      const loss = T.mean(m.trainingLoss(x, new T.Generator(100 + k++)));
      for (const p of params) p.zeroGrad();
      loss.backward();
      return loss;
    });
    opt.update();
    await l.item();
    l.dispose();
    m.eval();
    await featuresBatched(m, m.objective(), x, 2, noise);
    await featuresLoop(m, m.objective(), x, 2, noise);
  };
  await round();
  await round();
  await gpu.sync();
  const warm = gpu.rt.pool.stats();
  for (let i = 0; i < 10; i++) await round();
  await gpu.sync();
  const end = gpu.rt.pool.stats();
  assert.is(end.created, warm.created, `buffers created grew from ${warm.created} to ${end.created}`);
  assert.ok(end.inUse <= warm.inUse, `buffers in use grew from ${warm.inUse} to ${end.inUse}`);
});

G("a conv forward keeps its patch matrix for the weight gradient: one im2col, freed when taken or with the input", async (gpu) => {
  const g = new T.Generator(8);
  const w = T.randn(g, [4, 3, 3, 3], { backend: gpu, requiresGrad: true });
  const kept = gpu.rt.patches;
  // Count im2col dispatches by wrapping the runtime's dispatch for this test (restored below,
  // with the conv variant and the cap, whether or not an assert fails).
  let im2colCount = 0;
  const dispatch = gpu.rt.dispatch;
  gpu.rt.dispatch = function (key, ...rest) {
    if (key === "im2col") im2colCount++;
    return dispatch.call(this, key, ...rest);
  };
  const conv = gpu.variants.conv;
  gpu.variants.conv = "gemm";
  try {
    await gpu.sync();
    const before = gpu.rt.pool.stats().inUse;
    // Forward and weight gradient: one im2col (the forward's), and nothing left in use after.
    const x = T.randn(g, [2, 3, 7, 5], { backend: gpu });
    // Tensors of earlier suites may still hold kept matrices (until collected): count relative to now,
    // with no await in between (finalizers cannot run inside synchronous code).
    const count0 = kept.count, floats0 = kept.floats;
    const n0 = im2colCount;
    T.tidy(() => void T.grad(T.sum(T.conv2d(x, w, { padding: 1 })), [w]));
    assert.is(im2colCount - n0, 1);
    assert.is(kept.count, count0);
    // A forward with no backward: the kept matrix goes when its input goes.
    T.tidy(() => void T.conv2d(x, w, { padding: 1 }));
    assert.is(kept.count, count0 + 1);
    assert.is(kept.floats, floats0 + 2 * 27 * 7 * 5);
    x.dispose();
    assert.is(kept.count, count0);
    assert.is(kept.floats, floats0);
    // No weight gradient to follow (no grad, or a weight that needs none): nothing kept.
    const y = T.randn(g, [2, 3, 7, 5], { backend: gpu });
    T.noGrad(() => T.tidy(() => void T.conv2d(y, w, { padding: 1 })));
    T.tidy(() => void T.conv2d(y, w.detach(), { padding: 1 }));
    assert.is(kept.count, count0);
    // Past the cap on kept bytes the forward keeps nothing and the weight gradient unrolls again.
    kept.maxBytes = 4 * kept.floats;
    const n1 = im2colCount;
    T.tidy(() => void T.grad(T.sum(T.conv2d(y, w, { padding: 1 })), [w]));
    assert.is(im2colCount - n1, 2);
    assert.is(kept.count, count0);
    y.dispose();
    w.dispose();
    await gpu.sync();
    // (Earlier suites' unreferenced tensors may be collected meanwhile, so in-use can only fall.)
    assert.ok(gpu.rt.pool.stats().inUse <= before);
  } finally {
    kept.maxBytes = KEPT_PATCHES_MAX_BYTES;
    gpu.variants.conv = conv;
    gpu.rt.dispatch = dispatch;
  }
});

G("tidy returns every temporary buffer to the pool", async (gpu) => {
  await gpu.sync();
  // Counted with no await between the two reads: an earlier suite's unreferenced tensor can only be
  // collected (and its buffer released) while this test awaits, so in-use moves by this test's work alone.
  const before = gpu.rt.pool.stats().inUse;
  const a = T.ones([100], { backend: gpu });
  let inside = 0;
  T.tidy(() => {
    T.sum(T.exp(T.mul(a, 2)));
    inside = gpu.rt.pool.stats().inUse;
  });
  assert.ok(inside >= before + 4, `temporaries held inside the tidy: ${inside - before}`);
  assert.is(gpu.rt.pool.stats().inUse, before + 1);
  a.dispose();
  assert.is(gpu.rt.pool.stats().inUse, before);
});

S.run();
