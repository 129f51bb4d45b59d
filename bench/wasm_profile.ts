// Where the wasm backend's time goes on the PyTorch comparison's rows (bench/torch.ts's work: the
// feature pass for 64 images and the training step of each shipped model), in process CPU time,
// which the other jobs on this shared machine disturb least: per run the whole CPU time, the part
// inside backend ops (the rest is JavaScript around them: autograd, shapes, allocation, GC), and
// with --threads 2 the wall time against CPU time (how busy both cores are); then the ops by kind
// and shape, and the kernel phases (WasmBackend.profile), summed over --runs runs after a warm-up.
// The products (convolutions and matrix products) are counted in FLOPs (2 per multiply-add) and, with
// --replay, each distinct product shape is run again alone (--threads, the same storages' sizes,
// best of 5) for its GFLOP/s: how far each kind of product is from the kernels' peak (bench/wasm_peak.ts).
// Last, the runs with every kernel phase skipped: the caller's serial part (JavaScript and the
// TypeScript-loop ops), during which the other threads wait.
//   deno run -A bench/wasm_profile.ts [--models a.safetensors,...] [--work features,step] [--threads 1] [--runs 5] [--top 25] [--replay] [--clock cpu|wall]
import "../src/cli/errors.ts";
import { choice, choices, flag, inFiles, int, parseOptions } from "../src/io/options.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import { clockMs, cpuMs, opTable, skipKernelPhases, timeOps } from "./op_timer.ts";
import { distinctProducts, flopsOf, keyOf, productAloneMs, recordProducts } from "./products.ts";
import { ourWork, TORCH_MODELS, TORCH_WORK } from "./torch.ts";

const a = parseOptions("wasm_profile", {
  models: inFiles().default(TORCH_MODELS), work: choices(TORCH_WORK).default([...TORCH_WORK]),
  threads: int({ min: 1, max: 64 }).default(1), runs: int({ min: 1, max: 1000 }).default(5), top: int({ min: 1, max: 1000 }).default(25),
  replay: flag(), clock: choice(["cpu", "wall"] as const).default("cpu"),
});

const be = await createWasmBackend({ threads: a.threads });
/** CPU ms of this process's main thread (Linux /proc, 10 ms ticks): with --threads 2, how much of the work the caller carries. */
function mainThreadMs(): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${Deno.pid}/stat`).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}
const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
console.log(`${be.description}; ${a.runs} runs after a warm-up; load average ${Deno.loadavg()[0].toFixed(1)}`);
for (const path of a.models) {
  for (const work of a.work) {
    const w = await ourWork(path, work, be);
    await w.run();
    const wall: number[] = [], cpu: number[] = [];
    const m0 = mainThreadMs(), cAll0 = cpuMs();
    for (let r = 0; r < a.runs; r++) {
      const t0 = performance.now(), c0 = cpuMs();
      await w.run();
      cpu.push(cpuMs() - c0);
      wall.push(performance.now() - t0);
    }
    const mainShare = (mainThreadMs() - m0) / (cpuMs() - cAll0);
    // the same runs again with every op timed (--clock: process CPU time, or wall time, which
    // charges an op run on the caller alone nothing for the other threads) and the kernel phases (wall) summed
    const rec = recordProducts(be);
    const t = timeOps(be, true, a.clock);
    const phases = new Map<string, number>();
    be.profile = phases;
    const now = clockMs(a.clock), clockName = a.clock === "cpu" ? "CPU" : "wall";
    const c0 = now();
    for (let r = 0; r < a.runs; r++) await w.run();
    const total = now() - c0;
    be.profile = null;
    t.restore();
    rec.restore();
    const inOps = [...t.acc.values()].reduce((s, v) => s + v.ms, 0);
    console.log(`\n${path} ${work}: wall ${med(wall).toFixed(1)} ms, CPU ${med(cpu).toFixed(1)} ms (medians; wall/CPU ${(med(wall) / med(cpu)).toFixed(2)}; the main thread's share of the CPU time ${(100 * mainShare).toFixed(0)}%); ` +
      `timed runs: ${clockName} ${(total / a.runs).toFixed(1)} ms per run, ${(inOps / a.runs).toFixed(1)} in ops, ${((total - inOps) / a.runs).toFixed(1)} outside (${(100 * (total - inOps) / total).toFixed(0)}%)`);
    console.log(opTable(new Map([...t.acc].map(([k, v]) => [k, { ms: v.ms / a.runs, n: v.n / a.runs }])), a.top));
    console.log(`    kernel phases (wall, per run): ${[...phases].sort((p, q) => q[1] - p[1]).map(([k, v]) => `${k || "copy"} ${(v / a.runs).toFixed(1)}`).join(", ")}`);
    const flops = rec.list.reduce((s, q) => s + flopsOf(q), 0) / a.runs;
    const prodMs = [...t.acc].filter(([k]) => /^(conv|matmul)/.test(k)).reduce((s, [, v]) => s + v.ms, 0) / a.runs;
    console.log(`    products: ${(flops / 1e9).toFixed(3)} GFLOP per run in ${(rec.list.length / a.runs).toFixed(0)} calls, ${prodMs.toFixed(1)} ms ${clockName}: ${(flops / prodMs / 1e6).toFixed(1)} GFLOP/s per ${clockName}-second`);
    if (a.replay) {
      let sumMs = 0;
      const rows: [string, number, number, number][] = [];
      for (const { q, n } of distinctProducts(rec.list)) {
        const ms = productAloneMs(be, q, cpuMs) * n / a.runs;
        sumMs += ms;
        rows.push([keyOf(q), n / a.runs, flopsOf(q) * n / a.runs, ms]);
      }
      rows.sort((p, q) => q[3] - p[3]);
      console.log(`    replayed alone (best of 5, process CPU time, ${a.threads} thread${a.threads > 1 ? "s" : ""}): ${sumMs.toFixed(1)} ms per run, ${(flops / sumMs / 1e6).toFixed(1)} GFLOP/s`);
      for (const [k, n, f, ms] of rows.slice(0, a.top)) console.log(`    ${ms.toFixed(2).padStart(8)} ms ${String(n).padStart(4)}x ${(f / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s  ${k}`);
    }
    // Last (the values are garbage from here on): the same runs with every kernel phase skipped,
    // i.e. what the caller does alone while no worker has work. Ops are synchronous, so this part
    // of the wall time is serial; only running ahead of the kernels would overlap it.
    const restore = skipKernelPhases(be);
    try {
      const serial: number[] = [];
      for (let r = 0; r < a.runs; r++) {
        const t0 = performance.now();
        await w.run();
        serial.push(performance.now() - t0);
      }
      console.log(`    with every kernel phase skipped (the caller's serial part): wall ${med(serial).toFixed(1)} ms per run, ${(100 * med(serial) / med(wall)).toFixed(0)}% of the run's wall time`);
    } catch (e) {
      console.log(`    with every kernel phase skipped: not measured (${(e as Error).message})`);
    } finally {
      restore();
    }
  }
}
Deno.exit(0);
