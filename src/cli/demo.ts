// The engine's demo: build a small conv net + MLP, check its gradients (float64 finite
// differences on the CPU, then WebGPU or wasm against CPU) and print a timing table.
//   npm run demo [-- --backend auto|cpu|webgpu|wasm]
import { notice, workStarts } from "./errors.ts";
import { BACKEND, parseOptions } from "../io/options.ts";
import * as T from "../autograd/index.ts";
import type { Backend } from "../kernels/backend.ts";
import { selectBackend } from "../kernels/select.ts";

const choice = parseOptions("demo", { backend: BACKEND }).backend;

interface Net { w1: T.Tensor; b1: T.Tensor; w2: T.Tensor; b2: T.Tensor; w3: T.Tensor }

function makeNet(backend: Backend, dtype: "float32" | "float64"): Net {
  const g = new T.Generator(42);
  const o = { backend, dtype, requiresGrad: true };
  return {
    w1: T.randn(g, [8, 1, 3, 3], { ...o, std: 0.3 }), b1: T.zeros([8], o),
    w2: T.randn(g, [16, 8, 3, 3], { ...o, std: 0.1 }), b2: T.zeros([16], o),
    w3: T.randn(g, [16 * 7 * 7, 10], { ...o, std: 0.05 }),
  };
}

function loss(n: Net, x: T.Tensor, labels: number[]): T.Tensor {
  let h = T.silu(T.add(T.conv2d(x, n.w1, { padding: 1 }), T.reshape(n.b1, [1, 8, 1, 1])));
  h = T.avgPool2d(h, 2);
  h = T.groupNorm(T.add(T.conv2d(h, n.w2, { padding: 1, stride: 2 }), T.reshape(n.b2, [1, 16, 1, 1])), 4);
  const logits = T.matmul(T.reshape(T.tanh(h), [x.shape[0], -1]), n.w3);
  const logp = T.sub(logits, T.logsumexp(logits, 1, true));
  return T.neg(T.mean(T.sum(T.mul(logp, T.oneHot(labels, 10, logits)), 1)));
}

const params = (n: Net) => [n.w1, n.b1, n.w2, n.b2, n.w3];
const names = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight"];

function input(backend: Backend, dtype: "float32" | "float64", B: number) {
  const x = T.rand(new T.Generator(7), [B, 1, 28, 28], { backend, dtype });
  const labels = [...Array(B).keys()].map((i) => (i * 7) % 10);
  return { x, labels };
}

workStarts();
const gpuOrCpu = await selectBackend(choice, { onNotice: notice });
const other = gpuOrCpu.name !== "cpu" ? gpuOrCpu : null; // webgpu or wasm, compared with the cpu below
console.log(`backends: cpu${other ? ` + ${other.name} (${(other as unknown as { description: string }).description})` : ""}`);

// 1. float64 finite-difference check on the CPU for a few entries of every parameter tensor.
{
  const net = makeNet(T.cpu, "float64");
  const { x, labels } = input(T.cpu, "float64", 2);
  const gs = T.grad(loss(net, x, labels), params(net));
  const eps = 1e-6;
  console.log("\ngradient check, float64 cpu, central differences (5 entries per tensor):");
  for (const [k, p] of params(net).entries()) {
    const base = p.dataSync(), an = gs[k]!.dataSync();
    let worst = 0;
    for (let t = 0; t < 5; t++) {
      const i = (t * 9973) % base.length;
      const at = (d: number) => {
        const v = base.slice();
        v[i] += d;
        const pp = params(net).map((q, j) => (j === k ? T.tensor(v, q.shape, { backend: T.cpu, dtype: "float64" }) : q.detach()));
        const [w1, b1, w2, b2, w3] = pp;
        return T.noGrad(() => loss({ w1, b1, w2, b2, w3 }, x, labels).dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - an[i]) / Math.max(1e-8, Math.abs(fd) + Math.abs(an[i])));
    }
    console.log(`  ${names[k].padEnd(14)} ${JSON.stringify(p.shape).padEnd(12)} worst rel. error ${worst.toExponential(2)}`);
  }
}

// 2. The same network in float32 on each backend: losses and gradients agree, and timings.
const rows: string[][] = [];
const results: Record<string, ArrayLike<number>[]> = {};
for (const b of other ? [T.cpu, other] : [T.cpu]) {
  const net = makeNet(b, "float32");
  const { x, labels } = input(b, "float32", 32);
  const step = () => T.tidy(() => T.grad(loss(net, x, labels), params(net)));
  let gs = step();
  results[b.name] = await Promise.all(gs.map((g) => g!.data()));
  gs.forEach((g) => g!.dispose());
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    gs = step();
    await gs[0]!.data();
    await b.sync();
    times.push(performance.now() - t0);
    gs.forEach((g) => g!.dispose());
  }
  times.sort((a, c) => a - c);
  rows.push([b.name, "conv net fwd+bwd, batch 32", `${times[2].toFixed(1)} ms`]);
}
if (other) {
  console.log(`\n${other.name} vs cpu gradients (float32), max |diff| / max(1,|cpu|):`);
  results.cpu.forEach((c, k) => {
    let e = 0;
    for (let i = 0; i < c.length; i++) e = Math.max(e, Math.abs(c[i] - results[other.name][k][i]) / Math.max(1, Math.abs(c[i])));
    console.log(`  ${names[k].padEnd(14)} ${e.toExponential(2)}`);
  });
}
console.log("\ntiming (median of 5, full readback):");
console.log("  backend | workload                     | time");
for (const r of rows) console.log(`  ${r[0].padEnd(7)} | ${r[1].padEnd(28)} | ${r[2]}`);
Deno.exit(0);
