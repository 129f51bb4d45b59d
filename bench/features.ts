// Per-example layer-wise gradient norms for a batch of 64 on the shipped models: the batched pass
// (per-group parameter copies, one forward + one backward) against the per-input loop, same run;
// with several backends (--backend wasm,webgpu) all of them interleaved in the same rounds.
//   deno run -A bench/features.ts [--models weights/vae-fashion.safetensors,weights/glow-fashion.safetensors] [--n 64] [--rounds 3]
//        [--backend auto|cpu|webgpu|wasm|wasm:<threads>[,...]] [--no-loop] [--profile] [--by-shape]
//        [--matmul <variant>] [--conv <variant>] [--json out.json]
// --matmul/--conv set the WebGPU backend's kernel variants; --json writes { "rows": [{ "model", "task",
// "ms", "range": [min, max], "cpuMs" }] } (task: "<backend> batched" or "<backend> loop").
// Also the cost of the inputs' random draws (src/ood/loop.ts): each input's from a hash of its
// pixels (today's rule) against one generator drawing by position (the rule before), both timed in
// the same run and set against the batched pass.
// --profile: also time every kernel of one batched pass on the device (timestamp queries) and
// print where the device time goes; on the other backends, the wall time per op (by shape with
// --by-shape) of one batched pass and one loop.
import process from "node:process";
import { usageError } from "../src/io/options.ts";
import "../src/cli/errors.ts";
import { Bench } from "tinybench";
import { choice, flag, inFiles, int, outFile, parseOptions, text } from "../src/io/options.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { MATMUL_VARIANTS, SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv.wgsl.ts";
import { range } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { featuresBatched, featuresLoop } from "../src/ood/features.ts";
import { inputNoise } from "../src/ood/loop.ts";
import * as T from "../src/autograd/index.ts";
import { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { opTable, timeOps } from "./op_timer.ts";

/** Device time per kernel of one run of f (one compute pass per dispatch while profiling). */
async function profile(be: WebGPUBackend, f: () => Promise<unknown>) {
  be.rt.startProfile();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const rows = await be.rt.stopProfile();
  const ms = rows.reduce((s, r) => s + r.ms, 0), n = rows.reduce((s, r) => s + r.count, 0);
  console.log(`  batched pass, profiled: ${n} dispatches, ${ms.toFixed(1)} ms on the device, ${wall.toFixed(0)} ms wall (profiling adds a pass per dispatch)`);
  for (const r of rows.slice(0, 12)) console.log(`  ${r.ms.toFixed(1).padStart(7)} ms ${String(r.count).padStart(5)}x  ${r.kernel}`);
}

const a = parseOptions("features", {
  models: inFiles().default(["weights/vae-fashion.safetensors", "weights/glow-fashion.safetensors"]),
  n: int({ min: 1, max: 10000 }).default(64), rounds: int({ min: 1, max: 1000 }).default(3),
  backend: text().default("auto"), profile: flag(), "by-shape": flag(), "no-loop": flag(),
  matmul: choice([...MATMUL_VARIANTS, ...SUBGROUP_VARIANTS]), conv: choice(CONV_VARIANTS), json: outFile(),
});
const jsonRows: { model: string; task: string; ms: number; range: [number, number]; cpuMs: number }[] = [];
// wasm:N: the wasm backend with N threads (the pool's size; default all cores).
const backendChoices = a.backend.split(",");
for (const c of backendChoices) {
  const [name, threads] = c.split(":");
  const ok = threads === undefined ? (BACKEND_CHOICES as readonly string[]).includes(c) : name === "wasm" && /^[1-9][0-9]{0,2}$/.test(threads);
  if (!ok) throw usageError("features", "--backend", c, `a comma-separated list of ${BACKEND_CHOICES.join(", ")} or wasm:<threads> (threads 1-999)`);
  if (backendChoices.indexOf(c) !== backendChoices.lastIndexOf(c)) throw usageError("features", "--backend", a.backend, `each backend once ('${c}' is listed twice)`);
}
const backends: Backend[] = [];
for (const c of backendChoices) {
  const [name, threads] = c.split(":");
  if (name === "wasm" && threads) backends.push(await createWasmBackend({ threads: Number(threads) }));
  else backends.push(await selectBackend(c as BackendChoice, { makeDefault: false, onNotice: (m: string) => console.error(`notice: ${m}`) }));
}
for (const b of backends) {
  if (!(b instanceof WebGPUBackend)) continue;
  if (a.matmul) b.variants.matmul = a.matmul;
  if (a.conv) b.variants.conv = a.conv;
}
// Task names: the backend's name, with the thread count where one name runs twice, and the
// option's own word where that still repeats (wasm and wasm:2 on two cores).
const base = backends.map((b) => "threads" in b && backends.filter((o) => o.name === b.name).length > 1 ? `${b.name}/${(b as { threads: number }).threads}t` : b.name);
const labels = base.map((l, i) => base.indexOf(l) !== base.lastIndexOf(l) ? backendChoices[i] : l);
const n = a.n, rounds = a.rounds;
const data = loadDataset("fashion", "test");
const desc = (b: Backend) => `${b.name}${"description" in b ? ` (${(b as { description: string }).description})` : ""}`;
console.log(`backends ${backends.map(desc).join(", ")}; ${n} inputs, B=1; medians of ${rounds} interleaved rounds with full readback`);
for (const path of a.models) {
  const tasks: [string, () => Promise<unknown>][] = [];
  const cleanup: (() => void)[] = [];
  let draws: { model: Awaited<ReturnType<typeof loadModel>>; objective: ReturnType<Awaited<ReturnType<typeof loadModel>>["objective"]> } | null = null;
  for (const backend of backends) {
    const model = await loadModel(path, backend);
    // The model's default objective, as in the default ood job (the diffusion model: the paper's one-step L1 eps-loss).
    const objective = model.objective();
    const x = model.input(data, range(0, n));
    const noise = inputNoise(model, objective, data, range(0, n));
    const label = labels[backends.indexOf(backend)];
    tasks.push([`${label} batched`, () => featuresBatched(model, objective, x, 1, noise)]);
    if (!a["no-loop"]) tasks.push([`${label} loop`, () => featuresLoop(model, objective, x, 1, noise)]);
    if (backend === backends[0]) draws = { model, objective };
    cleanup.push(() => { x.dispose(); noise?.dispose(); });
  }
  for (const [, f] of tasks) await f();
  const samples: number[][] = tasks.map(() => []), cpuMs: number[][] = tasks.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const bench = new Bench({ iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 });
    tasks.forEach(([name, f], i) => bench.add(name, async () => {
      const c0 = process.cpuUsage();
      await f();
      const c = process.cpuUsage(c0);
      cpuMs[i].push((c.user + c.system) / 1000);
    }));
    await bench.run();
    bench.tasks.forEach((t, i) => samples[i].push((t.result as { latency: { p50: number } }).latency.p50));
  }
  const med = samples.map((s) => s.sort((p, q) => p - q)[Math.floor(s.length / 2)]);
  const cells = tasks.map(([name], i) => `${name} ${med[i].toFixed(0)} ms [${samples[i][0].toFixed(0)}-${samples[i][samples[i].length - 1].toFixed(0)}]`);
  const ups = a["no-loop"] ? [] : backends.map((_, i) => `${tasks[2 * i][0].replace(/ batched$/, "")} speed-up ${(med[2 * i + 1] / med[2 * i]).toFixed(2)}x`);
  console.log(`${path}: ${[...cells, ...ups].join(", ")}`);
  // Process CPU time (all threads, lavapipe's and the wasm pool's included): what the other jobs'
  // load disturbs least on this shared machine.
  const cpuMed = cpuMs.map((s) => s.sort((p, q) => p - q)[Math.floor(s.length / 2)]);
  const cpuUps = a["no-loop"] ? [] : backends.map((_, i) => `${tasks[2 * i][0].replace(/ batched$/, "")} speed-up ${(cpuMed[2 * i + 1] / cpuMed[2 * i]).toFixed(2)}x`);
  console.log(`  CPU time: ${[...tasks.map(([name], i) => `${name} ${cpuMed[i].toFixed(0)} ms`), ...cpuUps].join(", ")}`);
  tasks.forEach(([name], i) => jsonRows.push({ model: path, task: name, ms: +med[i].toFixed(2), range: [+samples[i][0].toFixed(2), +samples[i][samples[i].length - 1].toFixed(2)], cpuMs: +cpuMed[i].toFixed(2) }));
  if (draws && draws.objective.noiseShape(n)) {
    // The draws for the batch, interleaved: per input from its pixels (now) and from one generator by position (before).
    const { model, objective } = draws, shape = objective.noiseShape(n)!, gen = new T.Generator(1);
    const t: Record<string, number[]> = { content: [], position: [] };
    for (let r = 0; r < Math.max(20, rounds); r++) {
      let t0 = performance.now();
      inputNoise(model, objective, data, range(0, n))!.dispose();
      t.content.push(performance.now() - t0);
      t0 = performance.now();
      T.randn(gen, shape, { backend: model.backend, dtype: model.dtype }).dispose();
      t.position.push(performance.now() - t0);
    }
    const m = (v: number[]) => v.sort((p, q) => p - q)[Math.floor(v.length / 2)];
    console.log(`  draws for ${n} inputs (${shape.slice(1).join("x")} each): from each input's pixels ${m(t.content).toFixed(2)} ms, by position from one generator ${m(t.position).toFixed(2)} ms; the difference is ${(100 * (m(t.content) - m(t.position)) / med[0]).toFixed(2)}% of the ${tasks[0][0]} pass (the draws themselves ${(100 * m(t.content) / med[0]).toFixed(2)}%)`);
  }
  for (const [i, b] of backends.entries()) {
    if (!a.profile) break;
    const per = a["no-loop"] ? 1 : 2;
    if (b instanceof WebGPUBackend) {
      await profile(b, tasks[i * per][1]);
      continue;
    }
    for (const [name, f] of tasks.slice(i * per, (i + 1) * per)) {
      const t = timeOps(b, a["by-shape"]);
      // The wasm pool's worker threads: how many tasks they took in this run (work handed off).
      const worker = () => (b as { workerTasks?: number }).workerTasks ?? 0, w0 = worker();
      const t0 = performance.now();
      await f();
      const wall = performance.now() - t0;
      t.restore();
      const handed = "workerTasks" in b ? `, ${worker() - w0} tasks run by worker threads` : "";
      console.log(`  ${name}, one run ${wall.toFixed(0)} ms wall${handed}:\n${opTable(t.acc)}`);
    }
  }
  cleanup.forEach((f) => f());
}
if (a.json) writeFileAtomic(a.json, JSON.stringify({ backends: backends.map(desc), n, rounds, rows: jsonRows }, null, 2));
Deno.exit(0);
