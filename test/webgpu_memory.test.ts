// A long training loop on the GPU must not grow memory: after warm-up the pool creates nothing.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { webgpu } from "./helpers.ts";

const gpu = await webgpu() as WebGPUBackend | null;
const S = suite("webgpu memory");

if (gpu) {
  S("1000 SGD steps of an MLP: pool size flat after warm-up, loss goes down", async () => {
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

  S("tidy returns every temporary buffer to the pool", async () => {
    await gpu.sync();
    const before = gpu.rt.pool.stats().inUse;
    const a = T.ones([100], { backend: gpu });
    T.tidy(() => { T.sum(T.exp(T.mul(a, 2))); });
    a.dispose();
    await gpu.sync();
    assert.is(gpu.rt.pool.stats().inUse, before);
  });
} else {
  S("webgpu adapter", () => console.warn("  (no WebGPU adapter: memory suite skipped)"));
}

S.run();
