// How much slower the products (convolutions and matrix products) run inside a piece of work than
// alone: bench/torch.ts's "products alone" column replays each product on operands that stay in
// the caches, and calls the rest of a row's time "the rest"; inside a training step the products'
// operands come from wherever the pass left them. Per round, on the wasm backend (wall time,
// --threads): one run of the work with every backend op timed (the products' sum, the other ops'
// sum), then each distinct product of the work alone (once untimed, then once timed, times its
// count: the replay's way, on operands of its sizes), then all of the work's products back to back
// in its order, on those operands. Rounds interleave the three, so the machine's drift touches
// each alike.
//   deno run -A bench/in_situ.ts [--models weights/diffusion-fashion.safetensors] [--work step] [--rounds 6] [--threads 2]
import "../src/cli/errors.ts";
import { choice, inFiles, int, parseOptions } from "../src/io/options.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import type { ConvParams } from "../src/kernels/backend.ts";
import { timeOps } from "./op_timer.ts";
import { distinctProducts, keyOf, operandSizes, recordProducts } from "./products.ts";
import { ourWork, TORCH_MODELS } from "./torch.ts";

const a = parseOptions("in_situ", {
  models: inFiles().default([TORCH_MODELS[3], TORCH_MODELS[1]]), work: choice(["features", "step"] as const).default("step"),
  rounds: int({ min: 1, max: 1000 }).default(6), threads: int({ min: 1, max: 64 }).default(2),
});
const be = await createWasmBackend({ threads: a.threads });
const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
console.log(`${be.description}; ${a.work}; ${a.rounds} rounds after a warm-up; load average ${Deno.loadavg()[0].toFixed(1)}`);
for (const path of a.models) {
  const w = await ourWork(path, a.work, be);
  for (let i = 0; i < 3; i++) await w.run();
  const rec = recordProducts(be);
  await w.run();
  rec.restore();
  // each distinct product on operands of its sizes, kept for every round
  const alone = new Map(distinctProducts(rec.list).map(({ q, n }) => {
    const [n0, n1] = operandSizes(q);
    const x = be.alloc(n0).fill(0.5), y = be.alloc(n1).fill(0.25);
    const f = q.op === "matmul" ? () => be.matmul(x, y, q.s, "float32") as Float32Array
      : () => (be[q.op] as (a: Float32Array, c: Float32Array, p: ConvParams, d: "float32") => Float32Array)(x, y, q.p, "float32");
    return [keyOf(q), { n, f, x, y }];
  }));
  const cols: Record<string, number[]> = { step: [], inSitu: [], other: [], alone: [], inOrder: [] };
  for (let r = 0; r < a.rounds; r++) {
    const t = timeOps(be, true, "wall");
    const t0 = performance.now();
    await w.run();
    cols.step.push(performance.now() - t0);
    t.restore();
    let inSitu = 0, other = 0;
    for (const [k, v] of t.acc) if (/^(conv|matmul)/.test(k)) inSitu += v.ms; else other += v.ms;
    cols.inSitu.push(inSitu);
    cols.other.push(other);
    let sum = 0;
    for (const { n, f } of alone.values()) {
      be.release(f());
      const t1 = performance.now();
      be.release(f());
      sum += (performance.now() - t1) * n;
    }
    cols.alone.push(sum);
    const t2 = performance.now();
    for (const q of rec.list) be.release(alone.get(keyOf(q))!.f());
    cols.inOrder.push(performance.now() - t2);
  }
  const m = Object.fromEntries(Object.entries(cols).map(([k, v]) => [k, med(v)]));
  console.log(`\n${path} ${a.work}, ${rec.list.length} products (medians of ${a.rounds} rounds, wall ms): the run ${m.step.toFixed(1)} (timed op by op), ` +
    `its products ${m.inSitu.toFixed(1)} and its other ops ${m.other.toFixed(1)}; the products alone ${m.alone.toFixed(1)} ` +
    `(in the run ${(m.inSitu / m.alone).toFixed(2)}x that), back to back in the run's order ${m.inOrder.toFixed(1)}`);
  for (const { x, y } of alone.values()) [x, y].forEach((d) => be.release(d));
}
Deno.exit(0);
