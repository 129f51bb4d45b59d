// What train --record-novelty costs: training runs of --steps steps (batch 64, FashionMNIST, all
// inside the first epoch, where recording happens) with and without the recording hooks,
// interleaved per round in alternating order; wall and process CPU time per step, medians.
//   deno run -A bench/novelty_cost.ts [--model vae|glow] [--rounds 5] [--steps 20] [--backend wasm]
// glow is the logit Glow of the dynamics series (L = 2, K = 4, hidden 32, logit 1e-6, Adam).
import "../src/cli/errors.ts";
import { BACKEND, choice, int, parseOptions } from "../src/io/options.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { selectBackend } from "../src/kernels/select.ts";
import { NOVELTY_EVERY, noveltyHooks, planNoveltyRecord } from "../src/models/novelty.ts";
import { createModel } from "../src/models/registry.ts";
import { train } from "../src/models/train.ts";
import { cpuMs } from "./op_timer.ts";

const a = parseOptions("novelty_cost", {
  model: choice(["vae", "glow"] as const).default("vae"),
  rounds: int({ min: 1, max: 100 }).default(5),
  steps: int({ min: 2, max: 900 }).default(40),
  backend: BACKEND,
});
const backend = await selectBackend(a.backend, { onNotice: (m) => console.error(`notice: ${m}`) });
const data = loadDataset("fashion", "train");
const config = a.model === "glow" ? { levels: 2, steps: 4, hidden: 32, image: [1, 28, 28], logit: 1e-6 } : {};
const tmp = Deno.makeTempDirSync({ prefix: "fimscope-novelty-cost-" });

async function run(record: boolean, k: number): Promise<{ wall: number; cpu: number }> {
  const model = await createModel(a.model, config, backend, 0);
  const plan = record
    ? await planNoveltyRecord({ path: `${tmp}/r${k}.csv`, force: true, kind: a.model, config: model.config, data: "fashion", seed: 0, batch: 64, optimizer: "adam", trainN: data.n, resumeStep: 0, weights: "-", others: [] })
    : null;
  const t0 = performance.now(), c0 = cpuMs();
  await train(model, data, {
    steps: a.steps, batch: 64, lr: 1e-3, seed: 0, optimizer: "adam", clip: 100, warmup: 200, checkpointEvery: 1e9, checkpointPath: `${tmp}/c${k}.ckpt.safetensors`, data: "fashion",
    ...(plan ? noveltyHooks(plan, model, data) : {}),
  });
  const out = { wall: (performance.now() - t0) / a.steps, cpu: (cpuMs() - c0) / a.steps };
  model.parameters().forEach((p) => p.dispose());
  return out;
}

const med = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const res: Record<string, { wall: number[]; cpu: number[] }> = { plain: { wall: [], cpu: [] }, record: { wall: [], cpu: [] } };
await run(false, -1); // warm-up (kernels compiled, data cached)
for (let r = 0; r < a.rounds; r++) {
  for (const rec of r % 2 ? [true, false] : [false, true]) {
    const t = await run(rec, r);
    res[rec ? "record" : "plain"].wall.push(t.wall);
    res[rec ? "record" : "plain"].cpu.push(t.cpu);
  }
}
const p = res.plain, q = res.record;
console.log(`${a.model}, backend ${backend.name}, ${a.rounds} rounds of ${a.steps} steps (batch 64; recording: a whole batch every ${NOVELTY_EVERY}th step), per step, medians:`);
console.log(`  plain:     wall ${med(p.wall).toFixed(1)} ms, CPU ${med(p.cpu).toFixed(1)} ms`);
console.log(`  recording: wall ${med(q.wall).toFixed(1)} ms, CPU ${med(q.cpu).toFixed(1)} ms`);
console.log(`  overhead:  wall ${(100 * (med(q.wall) / med(p.wall) - 1)).toFixed(1)}%, CPU ${(100 * (med(q.cpu) / med(p.cpu) - 1)).toFixed(1)}%; per-round ratios (wall) ${q.wall.map((w, i) => (w / p.wall[i]).toFixed(2)).join(", ")}`);
Deno.removeSync(tmp, { recursive: true });
