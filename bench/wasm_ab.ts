// Two versions of the wasm backend in one process, interleaved: this tree and another checkout
// (e.g. `git archive <commit> | tar -x -C /tmp/old`, node_modules linked), each with its own
// backend and models, on the issue-15 workloads: a training step (batch 64, Adam, clipping, loss
// readback, as bench/train_step.ts) and the batched feature pass (64 inputs, B=1, as
// bench/features.ts) of the shipped VAE, Glow, logit Glow ("large") and diffusion U-Net ("unet": the
// paper's L1 eps-loss at t = 1 for the features, its training eps-loss on a fixed batch of 32 and
// fixed steps for the step, as bench/torch.ts). Each round runs every workload once per side,
// the sides in alternating order; wall time and process CPU time (all threads; the idle side's
// workers sleep), medians and ranges, and in one process the ratio round by round (each round's
// old time over its new: the machine's drift between rounds cancels) with a distribution-free
// interval for its median (torch.ts pairedRatio). CPU time is what other load disturbs least.
// Both trees share one JavaScript heap: a change to what the JavaScript allocates or registers
// (e.g. finalizers) burdens the other tree's garbage collection too, so measure such a change in
// separate processes, alternated: --processes K. So must a change to the thread pool's waiting
// (how long its threads poll before they sleep): in one process, a side whose threads poll longer
// keeps a core busy while the other side runs. With --processes K, K processes run each tree
// alone (--rounds rounds of each workload after a warm-up), the trees' processes alternated
// (old, new, then new, old, ...); the medians are over every round of a tree's processes.
//   deno run -A bench/wasm_ab.ts --old /tmp/old [--rounds 9] [--work vae-step,glow-step,vae-features,glow-features,large-...,unet-...] [--threads 2] [--processes 3]
import "../src/cli/errors.ts";
import { choice, choices, int, parseOptions, text, usageError } from "../src/io/options.ts";
import { oldCheckout } from "./old_checkout.ts";
import { pairedCell, pairedRatio } from "./torch.ts";
import { featurePasses } from "./feature_pass.ts";
import { cpuMs } from "./op_timer.ts";

const WORK = ["vae-step", "glow-step", "vae-features", "glow-features", "large-step", "large-features", "unet-step", "unet-features"] as const;
const DEFAULT_WORK = ["vae-step", "glow-step", "vae-features", "glow-features"] as const;
const a = parseOptions("wasm_ab", {
  old: text().required(),
  rounds: int({ min: 1, max: 1000 }).default(9),
  work: choices(WORK).default([...DEFAULT_WORK]),
  threads: int({ min: 1, max: 64 }).default(0),
  processes: int({ min: 1, max: 100 }).default(0),
  // the tree a child process of --processes runs alone
  side: choice(["both", "old", "new"] as const).default("both"),
});
if (a.processes && a.side !== "both") throw usageError("wasm_ab", "--side", a.side, "both (the default) with --processes: --side names the tree a child process runs");
const oldAbs = oldCheckout("wasm_ab", a.old, "src/kernels/wasm/backend.ts");
const here = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const MODELS = {
  vae: "weights/vae-fashion.safetensors", glow: "weights/glow-fashion.safetensors",
  large: "weights/glow-fashion-large.safetensors", unet: "weights/diffusion-fashion.safetensors",
};

// deno-lint-ignore no-explicit-any
type Any = any;
interface Side {
  name: string;
  be: Any;
  run: Map<string, () => Promise<unknown>>;
}

async function side(name: string, root: string): Promise<Side> {
  const imp = (p: string) => import(`${root}/src/${p}`);
  const [wasm, reg, feat, mn, ds, T, model_, optim, train] = await Promise.all([
    imp("kernels/wasm/backend.ts"), imp("models/registry.ts"), imp("ood/features.ts"), imp("data/mnist.ts"),
    imp("data/dataset.ts"), imp("autograd/index.ts"), imp("models/model.ts"), imp("nn/optim.ts"), imp("models/train.ts"),
  ]);
  const be = await wasm.createWasmBackend(a.threads ? { threads: a.threads } : {});
  const s: Side = { name, be, run: new Map() };
  const trainSet = mn.loadDataset("fashion", "train"), testSet = mn.loadDataset("fashion", "test");
  for (const w of a.work) {
    const [kind, what] = w.split("-") as [keyof typeof MODELS, "step" | "features"];
    const model = await reg.loadModel(`${here}/${MODELS[kind]}`, be);
    if (what === "features") {
      const x = model.input(testSet, ds.range(0, 64));
      // the U-Net's features: the paper's score (the default objective now; set on the model in older checkouts)
      s.run.set(w, featurePasses(feat, T, model, x, 64).batched);
      continue;
    }
    const params = model.namedParameters().map(([, p]: Any) => p);
    const opt = new optim.Adam(params, { lr: 1e-4 });
    model.train();
    let step = 0;
    // the U-Net: its training eps-loss on one fixed batch of 32 with fixed steps and noise
    const B = 32, g0 = train.stepGen(0, 0);
    const ux = kind === "unet" ? model.input(trainSet, ds.range(0, B)) : null;
    const ut = Array.from({ length: B }, () => 1 + g0.int(1000)), ue = ux && T.randn(g0, [...ux.shape], { backend: be });
    s.run.set(w, async () => {
      const idx = Array.from({ length: 64 }, (_, i) => (step * 64 + i) % trainSet.n);
      const gen = train.stepGen(0, step++);
      const loss = T.tidy(() => {
        const x = ux ?? model.input(trainSet, idx, gen);
        const l = ux ? T.mean(model.ops.epsLoss(ux, ut, ue, model.cfg.trainLoss)) : T.div(T.mean(model.nll(x, { gen })), model.dims * model_.LN2);
        for (const p of params) p.zeroGrad();
        l.backward();
        return l;
      });
      const norm = optim.clipGradNorm(params, 100);
      opt.update();
      await Promise.all([loss.item(), norm.item()]);
      loss.dispose();
      norm.dispose();
    });
  }
  return s;
}

type Times = Record<string, { wall: Record<string, number[]>; cpu: Record<string, number[]> }>;
const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];

/** Runs the workloads on the given sides, interleaved (rounds alternate the sides' order), after a warm-up. */
async function measure(sides: Side[]): Promise<Times> {
  const out: Times = {};
  for (const w of a.work) {
    const t = out[w] = { wall: {} as Record<string, number[]>, cpu: {} as Record<string, number[]> };
    for (const s of sides) for (let i = 0; i < 2; i++) await s.run.get(w)!(); // warm-up
    for (let r = 0; r < a.rounds; r++) {
      for (const s of r % 2 ? [...sides].reverse() : sides) {
        const t0 = performance.now(), c0 = cpuMs();
        await s.run.get(w)!();
        (t.cpu[s.name] ??= []).push(cpuMs() - c0);
        (t.wall[s.name] ??= []).push(performance.now() - t0);
      }
    }
  }
  return out;
}

/** A child of --processes: one tree alone, its times and its backend as one JSON line. */
if (a.side !== "both") {
  const s = await side(a.side, a.side === "old" ? oldAbs : here);
  console.log(JSON.stringify({ times: await measure([s]), backend: s.be.description }));
  Deno.exit(0);
}

const load0 = Deno.loadavg();
let times: Times, what: string;
if (a.processes) {
  // each tree alone in its own processes, alternated; every round of a tree's processes pooled
  times = {};
  const backends: Record<string, string> = {};
  const args = (s: string) => ["run", "-A", decodeURIComponent(new URL(import.meta.url).pathname), "--old", oldAbs, "--rounds", String(a.rounds), "--work", a.work.join(","), "--side", s, ...(a.threads ? ["--threads", String(a.threads)] : [])];
  for (let k = 0; k < a.processes; k++) {
    for (const s of k % 2 ? ["new", "old"] : ["old", "new"]) {
      const r = await new Deno.Command(Deno.execPath(), { args: args(s), stdout: "piped", stderr: "inherit" }).output();
      if (!r.success) throw new Error(`wasm_ab: the ${s} tree's process ${k + 1} failed`);
      const { times: t, backend } = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!) as { times: Times; backend: string };
      backends[s] = backend;
      for (const [w, v] of Object.entries(t)) {
        const into = times[w] ??= { wall: {}, cpu: {} };
        (into.wall[s] ??= []).push(...v.wall[s]);
        (into.cpu[s] ??= []).push(...v.cpu[s]);
      }
    }
  }
  what = `old ${a.old} (${backends.old}), new ${here} (${backends.new}); ${a.processes} processes per tree, alternated, ${a.rounds} rounds each: medians of all rounds (range)`;
} else {
  const sides = [await side("old", oldAbs), await side("new", here)];
  times = await measure(sides);
  what = `old ${a.old} (${sides[0].be.description}), new ${here} (${sides[1].be.description}); ${a.rounds} interleaved rounds, medians (range)`;
}
console.log(what);
for (const w of a.work) {
  const { wall, cpu } = times[w];
  const f = (v: number[]) => `${med(v).toFixed(1)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
  const cells = ["old", "new"].map((s) => `${s} wall ${f(wall[s])} CPU ${f(cpu[s])}`);
  const ratio = (k: Record<string, number[]>) => (med(k.old) / med(k.new)).toFixed(2);
  // in one process each round ran both trees back to back: the ratio round by round, where the
  // machine's drift between rounds cancels (separate processes' rounds are not paired)
  const paired = a.processes ? "" : `; round by round: wall ${pairedCell(pairedRatio(wall.old, wall.new))}, CPU ${pairedCell(pairedRatio(cpu.old, cpu.new))}`;
  console.log(`${w}: ${cells.join(", ")}; old/new wall ${ratio(wall)}x, CPU ${ratio(cpu)}x${paired}`);
}
console.log(`load average ${load0.map((v) => v.toFixed(1)).join(" ")} at the start, ${Deno.loadavg().map((v) => v.toFixed(1)).join(" ")} at the end`);
Deno.exit(0);
