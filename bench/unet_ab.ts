// The diffusion model's U-Net in two versions of the code in one process (this tree and another
// checkout: `git archive <commit> | tar -x -C /tmp/old`, with node_modules linked), interleaved
// per round in alternating order: the batched feature pass (the default ood feature, n inputs,
// B = 1), the per-input loop (--loop) and one training step (batch 32, the eps-loss, Adam), with
// process CPU time (all threads) beside wall time. For before/after numbers of a kernel change.
//   deno run -A bench/unet_ab.ts --old /tmp/old [--backend wasm|webgpu] [--rounds 7] [--n 32] [--loop]
//        [--model weights/diffusion-fashion.safetensors]
import "../src/cli/errors.ts";
import process from "node:process";
import { choice, flag, inFile, int, parseOptions, text } from "../src/io/options.ts";
import { oldCheckout } from "./old_checkout.ts";
import { featurePasses } from "./feature_pass.ts";

const a = parseOptions("unet_ab", {
  old: text().required(), backend: choice(["wasm", "webgpu", "cpu"] as const).default("wasm"),
  rounds: int({ min: 1, max: 1000 }).default(7), n: int({ min: 1, max: 10000 }).default(32), loop: flag(),
  model: inFile().default("weights/diffusion-fashion.safetensors"),
});
const here = new URL("../", import.meta.url).pathname;
const roots: [string, string][] = [["old", `${oldCheckout("unet_ab", a.old, "src/ood/features.ts")}/src`], ["new", `${here}src`]];
const rounds = a.rounds, n = a.n;

type Task = () => Promise<unknown>;
const tasks: Map<string, Task>[] = [];
// deno-lint-ignore no-explicit-any
const backends: any[] = [];
for (const [name, root] of roots) {
  const sel = await import(`${root}/kernels/select.ts`);
  const reg = await import(`${root}/models/registry.ts`);
  const feat = await import(`${root}/ood/features.ts`);
  const mn = await import(`${root}/data/mnist.ts`);
  const ds = await import(`${root}/data/dataset.ts`);
  const optim = await import(`${root}/nn/optim.ts`);
  const train = await import(`${root}/models/train.ts`);
  const T = await import(`${root}/autograd/index.ts`);
  const be = await sel.selectBackend(a.backend, { makeDefault: false, onNotice: (m: string) => console.error(`notice: ${m}`) });
  const test = mn.loadDataset("fashion", "test"), trainSet = mn.loadDataset("fashion", "train");
  const m = await reg.loadModel(a.model, be);
  const x = m.input(test, ds.range(0, n));
  const pass = featurePasses(feat, T, m, x, n);
  const t = new Map<string, Task>();
  t.set("features batched", pass.batched);
  if (a.loop) t.set("features loop", pass.loop);
  // A second copy of the model for training, so the feature model's weights stay as shipped.
  const mt = await reg.loadModel(a.model, be);
  const params = mt.namedParameters().map(([, p]: [string, unknown]) => p);
  const opt = new optim.Adam(params, { lr: 1e-4 });
  mt.train();
  let step = 0;
  t.set("training step", async () => {
    const idx = Array.from({ length: 32 }, (_, i) => (step * 32 + i) % trainSet.n);
    const gen = train.stepGen(0, step++);
    const loss = T.tidy(() => {
      const l = T.mean(mt.trainingLoss(mt.input(trainSet, idx, gen), gen));
      for (const p of params) p.zeroGrad();
      l.backward();
      return l;
    });
    opt.update();
    await loss.item();
    loss.dispose();
  });
  tasks.push(t);
  backends.push(be);
  console.log(`${name}: ${be.name}${be.description ? ` (${be.description})` : ""}`);
}

const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
console.log(`${a.model}, ${n} inputs for the features; ${rounds} interleaved rounds, alternating order; medians (range)`);
for (const what of tasks[0].keys()) {
  const wall: number[][] = [[], []], cpu: number[][] = [[], []];
  for (const t of tasks) await t.get(what)!(); // warm-up
  // On WebGPU: dispatches and device time of one run (timestamp queries; one pass per dispatch).
  for (const [i, [name]] of roots.entries()) {
    const rt = backends[i].rt;
    if (!rt?.startProfile) continue;
    rt.startProfile();
    await tasks[i].get(what)!();
    const rows: { kernel: string; count: number; ms: number }[] = await rt.stopProfile();
    const gn = rows.filter((r) => /groupNorm/.test(r.kernel)).map((r) => `${r.kernel} ${r.count}x ${r.ms.toFixed(1)} ms`).join(", ");
    console.log(`${what} ${name}: ${rows.reduce((n, r) => n + r.count, 0)} dispatches, ${rows.reduce((n, r) => n + r.ms, 0).toFixed(0)} ms device time${gn ? ` (${gn})` : ""}`);
  }
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now(), c0 = process.cpuUsage();
      await tasks[i].get(what)!();
      const c = process.cpuUsage(c0);
      wall[i].push(performance.now() - t0);
      cpu[i].push((c.user + c.system) / 1000);
    }
  }
  const f = (v: number[]) => `${med(v).toFixed(0)} ms (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
  for (const [i, [name]] of roots.entries()) console.log(`${what} ${name}: CPU ${f(cpu[i])}, wall ${f(wall[i])}`);
  console.log(`${what}: new / old speed, CPU ${(med(cpu[0]) / med(cpu[1])).toFixed(2)}x, wall ${(med(wall[0]) / med(wall[1])).toFixed(2)}x`);
}
Deno.exit(0);
