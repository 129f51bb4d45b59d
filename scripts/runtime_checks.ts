import * as T from "../src/autograd/index.ts";
import { createWebGPUBackend } from "../src/kernels/webgpu/backend.ts";
/** A backend (default WebGPU) vs CPU on a matmul, a conv2d and a gradient; used by the Chrome and Node checks. */
export async function runChecks(make: () => Promise<T.Tensor["backend"] & { description: string }> = createWebGPUBackend): Promise<Record<string, unknown>> {
const out: Record<string, unknown> = {};
try {
  const gpu = await make();
  out.adapter = gpu.description;
  const cases: [string, (b: T.Tensor["backend"]) => T.Tensor][] = [
    ["matmul 33x17x9", (b) => T.matmul(T.randn(new T.Generator(1), [33, 17], { backend: b }), T.randn(new T.Generator(2), [17, 9], { backend: b }))],
    ["conv2d", (b) => T.conv2d(T.randn(new T.Generator(3), [2, 3, 7, 5], { backend: b }), T.randn(new T.Generator(4), [5, 3, 3, 3], { backend: b }), { padding: 1 })],
    ["movement and broadcast, with gradient", (b) => {
      const x = T.randn(new T.Generator(6), [2, 3, 4, 5], { backend: b, requiresGrad: true });
      const y = T.concat([T.slice(x, [0, 1, 0, 0], [2, 3, 4, 5]), T.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])], 1);
      const z = T.add(y, T.randn(new T.Generator(7), [1, 6, 1, 1], { backend: b }));
      return T.grad(T.sum(T.square(T.where(T.gt(z, 0), z, T.mul(z, 0.1)))), [x])[0]!;
    }],
    ["grad of softplus-sum", (b) => { const x = T.randn(new T.Generator(5), [4, 6], { backend: b, requiresGrad: true }); return T.grad(T.sum(T.softplus(T.mul(x, x))), [x])[0]!; }],
  ];
  for (const [name, f] of cases) {
    const a = await f(gpu).data(), c = await f(T.cpu).data();
    let e = 0;
    for (let i = 0; i < c.length; i++) e = Math.max(e, Math.abs(a[i] - c[i]) / Math.max(1, Math.abs(c[i])));
    out[name] = e;
  }
  out.ok = Object.entries(out).every(([k, v]) => typeof v !== "number" || v < 1e-4 || k === "adapter");
} catch (e) {
  out.error = String(e);
}
return out;
}
