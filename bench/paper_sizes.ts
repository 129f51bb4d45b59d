// The paper's model sizes (the named configs glow-paper, diffusion-paper, vae-paper) on this
// machine: parameter counts against the authors' architectures (bench/paper_counts.ts), the time of
// one training step of `npm run train` (src/models/train.ts, at the documented batch, 64, or the
// largest that fits the backend's memory) and of per-example feature passes (B = 1 over 64 images, B = 5 over 60, through
// src/ood/loop.ts), and what they extrapolate to: 250 epochs of each training split, and the
// paper's grid (every test split at B = 1 and B = 5). docs/paper-grid.md holds the numbers.
//
//   deno run -A bench/paper_sizes.ts [--models glow-paper,diffusion-paper,vae-paper] [--backend wasm] [--fallback cpu] [--steps 2] [--timeout 1200] [--out FILE.json]
//
// Each measurement runs in its own process (a batch that does not fit the wasm backend's 2 GiB
// fails there, and the next smaller one is tried; when none fits, batch 1 on --fallback; a child
// past --timeout seconds is stopped and its measurement reported as not finished); images are
// random bytes (the cost does not depend on them). Timings on a shared machine drift: quote the load with them.
import "../src/cli/errors.ts";
import * as T from "../src/autograd/index.ts";
import { makeSet } from "../src/data/dataset.ts";
import { choice, choices, int, outFile, parseOptions, text } from "../src/io/options.ts";
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from "../src/kernels/select.ts";
import { createModel, PRESET_NAMES, presetConfig } from "../src/models/registry.ts";
import { train } from "../src/models/train.ts";
import { setFeatures } from "../src/ood/loop.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { authorsGlow, authorsUnet, authorsVae, glowDifferences } from "./paper_counts.ts";

const a = parseOptions("paper_sizes", {
  models: choices(PRESET_NAMES).default([...PRESET_NAMES]),
  backend: choice(BACKEND_CHOICES.filter((b) => b !== "auto")).default("wasm"),
  fallback: choice(BACKEND_CHOICES.filter((b) => b !== "auto")).default("cpu"),
  steps: int({ min: 1, max: 100 }).default(2),
  timeout: int({ min: 1, max: 86400 }).default(1200),
  out: outFile(),
  // One measurement, in a child process: what, which preset, at which batch.
  one: text(),
});

/**
 * Per preset: the batch, optimiser and learning rate of the training commands in docs/paper-grid.md
 * (the authors': Glow 64, Adamax 5e-4; the VAE 64, Adam 3e-4; the diffusion model Adam 3e-4 at
 * batch 8 in their script, 64 here, as 250 epochs of ImageNet32 at batch 8 exceed train's 10^7 steps).
 */
const AUTHORS: Record<string, { batch: number; optimizer: "adam" | "adamax"; lr: number; parameters: () => number; source: string; differences?: () => unknown }> = {
  "glow-paper": { batch: 64, optimizer: "adamax", lr: 5e-4, parameters: () => authorsGlow(3, 3, 32, 512), source: "y0ast/Glow-PyTorch (train.py defaults)", differences: () => glowDifferences(3, 3, 32, 512) },
  "diffusion-paper": { batch: 64, optimizer: "adam", lr: 3e-4, parameters: () => authorsUnet(3, 32, [1, 2, 4, 8]), source: "denoising-diffusion-pytorch 1.5.5 Unet (the authors' diffusion_model/model.py trains at batch 8, Adam 3e-4)" },
  "vae-paper": { batch: 64, optimizer: "adam", lr: 3e-4, parameters: () => authorsVae(3).total, source: "the authors' VAE_model/model.py (LargeEncoder/LargeDecoder, batch 64, Adam 3e-4)" },
};
/** Official split sizes: training (for the epochs: `train --data` trains on all but the last tenth) and test (the grid's features). */
const TRAIN = { svhn: 73257, celeba: 162770, gtsrb: 26640, cifar10: 50000, imagenet32: 1281167 };
const TEST = { svhn: 26032, celeba: 19962, gtsrb: 12630, cifar10: 10000, imagenet32: 50000 };
const EPOCHS = 250, FEATURE_IMAGES = 64;

const images = (n: number) => {
  const g = new T.Generator(7);
  return makeSet("random", Uint8Array.from({ length: n * 3072 }, () => g.int(256)), new Uint8Array(n).fill(255), 3, 32, 32);
};

if (a.one) {
  // Child: one measurement, one JSON line on stdout.
  const [what, name, b] = a.one.split(":");
  const batch = Number(b);
  const backend = await selectBackend(a.backend as BackendChoice, { onNotice: () => {} });
  const p = await presetConfig(name);
  const model = await createModel(p.kind, p.config, backend, 0);
  if (what === "train") {
    const times: number[] = [];
    let last = 0;
    const ckpt = Deno.makeTempFileSync({ prefix: "paper-sizes-", suffix: ".ckpt.safetensors" });
    await train(model, images(batch * (a.steps + 1)), {
      steps: a.steps + 1, batch, lr: AUTHORS[name].lr, seed: 0, optimizer: AUTHORS[name].optimizer, clip: 100, warmup: 1000, checkpointEvery: 1e9, checkpointPath: ckpt, data: "random", // warm-up: an untrained model on random bytes diverges at full lr (the cost does not depend on lr)
      onProgress: (s) => {
        const now = performance.now();
        if (s.step >= 2) times.push((now - last) / 1000); // step 1 initialises (ActNorm) and warms up
        last = now;
      },
    });
    Deno.removeSync(ckpt);
    console.log(JSON.stringify({ seconds: times.sort((x, y) => x - y)[Math.floor(times.length / 2)], steps: times.length }));
  } else {
    // features:B — B = 1 over 64 images; B = 5 over the 60 of them that make whole groups.
    const B = Number(what.split("-")[1] ?? 1), objective = model.objective(), pass = Math.max(B, batch - (batch % B));
    await setFeatures(model, objective, images(pass), { groupSize: B, batch: pass }); // warm-up pass
    const t0 = performance.now();
    await setFeatures(model, objective, images(FEATURE_IMAGES), { groupSize: B, batch: pass });
    console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000 }));
  }
  Deno.exit(0);
}

/**
 * Runs one measurement in a child at the first batch of `batches` that completes on the backend;
 * when none does (the wasm backend's memory is 2 GiB), on the fallback backend at batch 1 (the CPU
 * backend's memory is the machine's).
 */
async function measure(what: string, name: string, batches: number[]): Promise<{ backend: string; batch: number; seconds: number; failed: string[] } | { failed: string[] }> {
  const failed: string[] = [];
  for (const [backend, bs] of [[a.backend, batches], [a.fallback, [1]]] as const) {
    for (const b of bs) {
      // A child past --timeout is stopped: the measurement is reported as not finished.
      const signal = AbortSignal.timeout(a.timeout * 1000);
      const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", new URL(import.meta.url).pathname, "--one", `${what}:${name}:${b}`, "--backend", backend, "--steps", String(a.steps)], stdout: "piped", stderr: "piped", signal }).output()
        .catch(() => ({ code: -1, stdout: new Uint8Array(), stderr: new Uint8Array() }));
      const line = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
      if (r.code === 0 && line.startsWith("{")) return { backend, batch: b, seconds: JSON.parse(line).seconds, failed };
      const why = signal.aborted ? `not finished in ${a.timeout} s` : new TextDecoder().decode(r.stderr).trim().split("\n").pop() ?? "";
      console.error(`${name} ${what} on ${backend} at batch ${b}: failed (${why.slice(0, 160)})`);
      failed.push(`${backend} at ${b}: ${why.replace(/^error: /, "").slice(0, 80)}`);
    }
  }
  return { failed };
}
const done = (m: Awaited<ReturnType<typeof measure>>) => "seconds" in m ? m : null;

const hours = (s: number) => (s / 3600 < 48 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} days`);
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const results: Record<string, unknown>[] = [];
console.log(`backend ${a.backend}; load average ${load()} at the start`);
for (const name of a.models) {
  const p = await presetConfig(name);
  const ours = (await createModel(p.kind, p.config, T.cpu, 0)).numParameters(), au = AUTHORS[name];
  const halving = (from: number) => Array.from({ length: Math.log2(from) + 1 }, (_, i) => from >> i);
  const step = done(await measure("train", name, halving(au.batch)));
  const feat = done(await measure("features-1", name, halving(FEATURE_IMAGES)));
  const m5 = await measure("features-5", name, [...halving(FEATURE_IMAGES).filter((b) => b > 5), 5]), feat5 = done(m5);
  const inputs5 = FEATURE_IMAGES - (FEATURE_IMAGES % 5);
  const perImageTrain = step ? step.seconds / step.batch : NaN, perImageFeature = feat ? feat.seconds / FEATURE_IMAGES : NaN;
  // B = 5 where it was measured; otherwise (said) at the B = 1 cost per input.
  const perImageFeature5 = feat5 ? feat5.seconds / inputs5 : perImageFeature;
  const trainHere = Object.fromEntries(Object.entries(TRAIN).map(([s, n]) => [s, EPOCHS * (n - Math.floor(n / 10)) * perImageTrain]));
  const gridFeatures = Object.values(TEST).reduce((x, n) => x + n, 0) * (perImageFeature + perImageFeature5); // B = 1 and B = 5, every test split, per model
  const r = {
    name, kind: p.kind, config: p.config, parameters: ours, authors: au.parameters(), authorsSource: au.source,
    differences: au.differences?.(),
    trainStep: step && { backend: step.backend, batch: step.batch, documentedBatch: au.batch, seconds: step.seconds, failed: step.failed, perImage: perImageTrain },
    featurePass: feat && { backend: feat.backend, images: FEATURE_IMAGES, passSize: feat.batch, seconds: feat.seconds, failed: feat.failed, perImage: perImageFeature },
    featurePassB5: feat5 ? { backend: feat5.backend, inputs: inputs5, passSize: feat5.batch - (feat5.batch % 5), seconds: feat5.seconds, failed: feat5.failed, perImage: perImageFeature5 } : { notMeasured: m5.failed, assumedPerImage: perImageFeature5 },
    trainHereSeconds: trainHere, gridFeaturesHereSeconds: gridFeatures, loadAverage: load(),
  };
  results.push(r);
  const say = (x: { backend: string; batch: number; seconds: number } | null, unit: string) => x ? `${x.seconds.toFixed(2)} s (${unit} ${x.batch} on ${x.backend})` : "not measured";
  console.log(`${name}: ${ours.toLocaleString("en")} parameters (authors' ${au.parameters().toLocaleString("en")}); training step ${say(step, "batch")}` +
    `${step && step.batch !== au.batch ? ` (${au.batch} does not fit: ${(perImageTrain * au.batch).toFixed(2)} s scaled)` : ""}; features of ${FEATURE_IMAGES} images at B = 1 ${say(feat, "passes of")}, of ${inputs5} at B = 5 ${say(feat5 && { ...feat5, batch: feat5.batch - (feat5.batch % 5) }, "passes of")}`);
  console.log(`  250 epochs here: ${Object.entries(trainHere).map(([s, t]) => `${s} ${hours(t)}`).join(", ")}; the grid's features (5 test splits x B = 1, 5${feat5 ? "" : "; B = 5 at B = 1's cost per input"}) ${hours(gridFeatures)} per model; load ${load()}`);
}
if (a.out) writeFileAtomic(a.out, JSON.stringify({ backend: a.backend, date: new Date().toISOString(), results }, null, 1) + "\n");
