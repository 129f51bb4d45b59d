// The batched feature pass of two versions of the code in one process: this tree and another
// checkout (e.g. `git worktree add /tmp/old main`, with node_modules linked), interleaved per round
// in alternating order, with process CPU time per pass (lavapipe's threads included), which other
// load on the machine disturbs far less than wall time, and the dispatch count of one pass.
//   deno run -A bench/features_ab.ts --old /tmp/old [--rounds 15] [--models a.safetensors,b.safetensors]
// Both versions must export loadModel, featuresBatched, loadDataset and range from the usual
// modules (bench/feature_pass.ts bridges the feature API before and after explicit objectives).
import "../src/cli/errors.ts";
import process from "node:process";
import { inFiles, int, parseOptions, text } from "../src/io/options.ts";
import { featurePasses } from "./feature_pass.ts";
import { oldCheckout } from "./old_checkout.ts";

const a = parseOptions("features_ab", {
  old: text().required(),
  rounds: int({ min: 1, max: 1000 }).default(15),
  models: inFiles().default(["weights/vae-fashion.safetensors", "weights/glow-fashion.safetensors"]),
});
const here = new URL("../", import.meta.url).pathname;
const roots: [string, string][] = [["old", `${oldCheckout("features_ab", a.old, "src/ood/features.ts")}/src`], ["new", `${here}src`]];
const rounds = a.rounds;
const models = a.models;

// deno-lint-ignore no-explicit-any
type Any = any;
interface Side {
  name: string;
  be: Any;
  run: Map<string, () => Promise<unknown>>;
}
const sides: Side[] = [];
for (const [name, root] of roots) {
  const sel = await import(`${root}/kernels/select.ts`);
  const reg = await import(`${root}/models/registry.ts`);
  const feat = await import(`${root}/ood/features.ts`);
  const mn = await import(`${root}/data/mnist.ts`);
  const ds = await import(`${root}/data/dataset.ts`);
  const T = await import(`${root}/autograd/index.ts`);
  const be = await sel.selectBackend("auto", { onNotice: (m: string) => console.error(`notice: ${m}`) });
  const data = mn.loadDataset("fashion", "test");
  const side: Side = { name, be, run: new Map() };
  for (const path of models) {
    const model = await reg.loadModel(`${here}${path}`, be);
    const x = model.input(data, ds.range(0, 64));
    side.run.set(path, featurePasses(feat, T, model, x, 64).batched);
  }
  sides.push(side);
}

const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
console.log(`64 inputs, B=1; ${rounds} interleaved rounds; medians (range)`);
for (const path of models) {
  const wall: Record<string, number[]> = {}, cpu: Record<string, number[]> = {};
  for (const s of sides) await s.run.get(path)!();
  for (const s of sides) {
    if (!s.be.rt?.startProfile) continue;
    s.be.rt.startProfile();
    await s.run.get(path)!();
    const rows: { count: number }[] = await s.be.rt.stopProfile();
    console.log(`${path} ${s.name}: ${rows.reduce((n, r) => n + r.count, 0)} dispatches per pass`);
  }
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 ? [...sides].reverse() : sides) {
      const t0 = performance.now(), c0 = process.cpuUsage();
      await s.run.get(path)!();
      const c = process.cpuUsage(c0);
      (wall[s.name] ??= []).push(performance.now() - t0);
      (cpu[s.name] ??= []).push((c.user + c.system) / 1000);
    }
  }
  for (const s of sides) {
    const f = (v: number[]) => `${med(v).toFixed(0)} ms (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
    console.log(`${path} ${s.name}: CPU ${f(cpu[s.name])}, wall ${f(wall[s.name])}`);
  }
}
Deno.exit(0);
