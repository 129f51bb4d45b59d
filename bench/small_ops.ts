// Kernel variants on the small, memory-bound ops of the per-example OOD pass: movement ops
// (strided variants), broadcasting adds, and products with one or two rows (matmul variants).
// Each task launches the op 5 times and waits; tinybench medians of interleaved variants.
//   deno run -A bench/small_ops.ts [--iterations 10]
import "../src/cli/errors.ts";
import { Bench } from "tinybench";
import { int, parseOptions } from "../src/io/options.ts";
import * as T from "../src/autograd/index.ts";
import { selectBackend } from "../src/kernels/select.ts";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import type { StridedVariant } from "../src/kernels/webgpu/strided.ts";
import type { MatmulVariant } from "../shaders/matmul.wgsl.ts";

const a = parseOptions("small_ops", { iterations: int({ min: 1, max: 10000 }).default(10) });
const be = await selectBackend("webgpu") as WebGPUBackend;
const b = be as unknown as T.Tensor["backend"];
const rand = (seed: number, shape: number[]) => T.rand(new T.Generator(seed), shape, { backend: b });

/** Median ms per launch of each variant of one case, the variants interleaved in one tinybench run. */
async function compare<V>(name: string, variants: V[], set: (v: V) => void, op: () => T.Tensor) {
  const bench = new Bench({ iterations: a.iterations, time: 0, warmupIterations: 2, warmupTime: 0 });
  for (const v of variants) {
    bench.add(String(v), async () => {
      set(v);
      for (let i = 0; i < 5; i++) op().dispose();
      await be.sync();
    });
  }
  await bench.run();
  const cells = bench.tasks.map((t) => `${t.name} ${((t.result as { latency: { p50: number } }).latency.p50 / 5).toFixed(2)}`);
  console.log(`${name.padEnd(44)} ${cells.join("  ")}  (ms per launch)`);
}

console.log(`${be.description}`);
const strided: StridedVariant[] = ["kernel", "auto"], setStrided = (v: StridedVariant) => (be.variants.strided = v);
const x = rand(1, [64, 8, 14, 14]), x16 = rand(2, [64, 16, 14, 14]), p = rand(3, [1, 96842]);
await compare("pad one axis [64,8,14,14] -> 16 channels", strided, setStrided, () => T.pad(x, [[0, 0], [8, 0], [0, 0], [0, 0]]));
await compare("slice one axis [64,16,14,14] -> 8 channels", strided, setStrided, () => T.slice(x16, [0, 8, 0, 0], [64, 16, 14, 14]));
await compare("per-group copies [1,96842] -> [64,96842]", strided, setStrided, () => T.broadcastTo(p, [64, 96842]));
await compare("concat 2 x [64,8,14,14] on channels", ["copy", "auto"] as StridedVariant[], setStrided, () => T.concat([x, x], 1));
const x32 = rand(9, [64, 32, 14, 14]), c32 = rand(10, [64, 32, 1, 1]);
await compare("permute [64,32,14,14] -> [64,14,14,32]", ["auto"], setStrided, () => T.permute(x32, [0, 2, 3, 1]));
await compare("broadcast [64,32,1,1] -> [64,32,14,14]", ["auto"], setStrided, () => T.broadcastTo(c32, [64, 32, 14, 14]));
be.variants.strided = "auto";

const y = rand(4, [64, 1, 16, 28, 28]), bias = rand(5, [64, 1, 16, 1, 1]), c = rand(6, [1, 16, 28, 28]);
await compare("bias add [64,1,16,28,28] + [64,1,16,1,1]", ["auto"], () => {}, () => T.add(y, bias));
const yg = rand(11, [2048, 196]), bg = rand(12, [2048, 1]), yg2 = rand(13, [2048, 196]);
await compare("per-group bias add [2048,196] + [2048,1]", ["auto"], () => {}, () => T.add(yg, bg));
await compare("same-shape add [2048,196] (reference)", ["auto"], () => {}, () => T.add(yg, yg2));
await compare("where(x > 0.5, [1,16,28,28], x)", ["auto"], () => {}, () => T.where(T.gt(T.reshape(y, [64, 16, 28, 28]), 0.5), c, T.reshape(y, [64, 16, 28, 28])));

const mm: MatmulVariant[] = ["naive", "block4x8", "block8x8", "rows4x8", "rows8x8", "auto"], setMm = (v: MatmulVariant) => (be.variants.matmul = v);
const cases: [string, number[], number[], boolean][] = [
  ["conv to 2 channels: M2 K72 N784, batch 64", [1, 2, 72], [64, 72, 784], false],
  ["its weight gradient: M2 K784 N72, batch 64", [64, 2, 784], [64, 72, 784], true],
  ["per-example linear: M1 K1568 N32, batch 64", [64, 1, 1568], [64, 1568, 32], false],
  ["M1 K512 N512", [1, 512], [512, 512], false],
  ["per-group conv 32->4 3x3: M4 K288 N196, batch 64", [64, 4, 288], [64, 288, 196], false],
  ["its input gradient: M288 K4 N196, batch 64", [64, 288, 4], [64, 4, 196], false],
];
for (const [name, sa, sb, tb] of cases) {
  const [l, r] = [rand(7, sa), rand(8, sb)];
  await compare(name, mm, setMm, () => T.mm(l, r, false, tb));
}
be.variants.matmul = "auto";
Deno.exit(0);
