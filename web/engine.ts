// Everything the page computes, in one place, through library calls only: choosing the backend,
// loading a model and its detector file, inspecting one input (inspectImage), drawing samples, the
// small OOD evaluation (setFeatures over chunks of each set) and the kernel benchmark
// (src/nn/workloads.ts). No loop over a set is written here beyond handing chunks to the library, so
// the evaluation can be re-pointed to the library's batching loop in one place. Long work takes an
// AbortSignal, checked between steps, batches or timed runs, and reports progress through a callback.
import * as F from "../mod.ts";
import type { SampleOptions as ModelSampleOptions } from "../src/models/model.ts";
import { type DetectorFile, parseDetector, percentileOf } from "../src/ood/detector.ts";
import { setFeatures } from "../src/ood/pipeline.ts";
import { kernelWorkloads } from "../src/nn/workloads.ts";

export type BackendKind = "webgpu" | "gpujs" | "wasm" | "cpu";
export const BACKEND_KINDS: BackendKind[] = ["webgpu", "gpujs", "wasm", "cpu"];

export interface Chosen {
  backend: F.Backend;
  kind: BackendKind;
  label: string;
  /** Why a faster backend was not used, in words for someone at a browser. */
  notes: string[];
}

/** Browser advice for WebGPU's failure (the library's messages are written for Deno and servers). */
export function webgpuAdvice(e: unknown): string {
  const m = String((e as Error)?.message ?? e);
  if (/no navigator\.gpu/.test(m)) return "this browser has no WebGPU (Chrome and Edge 113 or later have it; Safari and Firefox only in recent versions)";
  if (/no adapter/.test(m)) return "this browser has WebGPU but gave the page no GPU adapter (the GPU may be blocklisted or WebGPU switched off: see chrome://gpu)";
  return m.replace(/^WebGPU:\s*/, "").split("\n")[0];
}

/**
 * The backend: `want` when given and it works, else the first that works of WebGPU, gpu.js
 * (WebGL2), the CPU; wasm only when asked for.
 */
export async function chooseBackend(want: BackendKind | null, o: { gpujsSource: () => Promise<string>; gpujsAll: boolean }): Promise<Chosen> {
  const notes: string[] = [];
  if (want === "wasm") {
    const b = await F.createWasmBackend();
    return { backend: b, kind: "wasm", label: `WebAssembly: ${b.description}`, notes };
  }
  if (want === "cpu") return { backend: new F.CpuBackend(), kind: "cpu", label: "CPU backend (plain TypeScript)", notes };
  if (!want || want === "webgpu") {
    try {
      const b = await F.createWebGPUBackend();
      return { backend: b, kind: "webgpu", label: `WebGPU: ${b.description}`, notes };
    } catch (e) {
      notes.push(`WebGPU not used: ${webgpuAdvice(e)}`);
    }
  }
  try {
    const GPU = F.gpujsFromSource(await o.gpujsSource());
    // gpujsAll: every gpu.js op at any size (the tests use it to check the kernels' numbers).
    const b = F.createGpujsBackend(GPU, o.gpujsAll ? { ops: F.GPUJS_OPS, minMacs: 0 } : {});
    return { backend: b, kind: "gpujs", label: `fallback (no WebGPU): ${b.description}`, notes };
  } catch (e) {
    notes.push(`gpu.js (WebGL2) not used: ${String((e as Error)?.message ?? e).split("\n")[0]}`);
  }
  return { backend: new F.CpuBackend(), kind: "cpu", label: "CPU backend (plain TypeScript)", notes };
}

/** What stands in for the likelihood on this model, in the units every panel shows. */
export interface Measure {
  /** "nll": the NLL in bits/dim; "eps-loss": the diffusion model's L1 eps-loss at t = 1 (the detector's quantity). */
  kind: "nll" | "eps-loss";
  /** Short name for headings and axes, e.g. "NLL" or "L1 ε-loss (t = 1)". */
  name: string;
  unit: string;
  /** One sentence: what it is. */
  about: string;
  /** From the library's per-input value in bits/dim (setFeatures' scale) to this measure's units. */
  fromBitsPerDim: (v: number) => number;
}

export function measureOf(model: F.GenerativeModel, m: F.NllMeasure): Measure {
  if (m.kind === "eps-loss") {
    const k = model.dims * F.LN2;
    return {
      kind: "eps-loss", name: "L1 ε-loss (t = 1)", unit: "mean |ε − ε̂| per pixel",
      about: "A diffusion model has no exact likelihood; the detector differentiates what stands in for it: the U-Net's L1 noise-prediction error at step t = 1, " +
        "|ε − ε̂(x_1, 1)| averaged over the pixels, with one fixed noise draw ε (the quantity of the paper and of npm run ood).",
      fromBitsPerDim: (v) => v * k,
    };
  }
  return {
    kind: "nll", name: "NLL", unit: "bits/dim",
    about: model.kind === "vae"
      ? "The VAE's NLL is its negative ELBO with one latent sample (a bound on −log p(x)), in bits per pixel."
      : "−log p(x) of the 8-bit image under the flow (exact, with the discretisation correction), in bits per pixel.",
    fromBitsPerDim: (v) => v,
  };
}

export interface Layer {
  index: number;
  name: string;
  shape: number[];
  size: number;
  /** The block it belongs to (a flow step, a U-Net block, the VAE's encoder or decoder). */
  block: string;
}

/** A parameter tensor's block: Glow's levels.L.steps.K / levels.L.prior, the VAE's encoder/decoder, else its module's parent. */
export function blockOf(kind: string, name: string): string {
  const parts = name.split(".");
  if (kind === "glow") {
    const m = /^levels\.\d+\.(steps\.\d+|prior)/.exec(name);
    if (m) return m[0];
  }
  if (kind === "vae") return parts[0];
  return parts.slice(0, parts.length >= 4 ? -2 : -1).join(".");
}

export interface Loaded {
  model: F.GenerativeModel;
  metadata: Record<string, string>;
  det: F.DiagonalDetector;
  /** The detector file's 0th..100th percentiles of the held-out (calibration) scores. */
  quantiles: number[];
  file: DetectorFile;
  measure: Measure;
  layers: Layer[];
  parameters: number;
}

/** A model from its weights' bytes and its detector file's JSON (checked against the model's tensors). */
export async function loadModel(bytes: Uint8Array, detectorJson: unknown, weightsUrl: string, detectorUrl: string, backend: F.Backend): Promise<Loaded> {
  const { model, metadata } = await F.loadModelBytes(bytes, backend, weightsUrl);
  // What the detector differentiates, as in `npm run ood` (the diffusion model: its L1 eps-loss at t = 1).
  const nm = F.useDetectorScore(model);
  const named = model.namedParameters();
  const det = F.checkDetector(detectorJson, named.map(([n]) => n), detectorUrl);
  const file = parseDetector(detectorJson, detectorUrl);
  const layers = named.map(([name, p], index) => ({ index, name, shape: [...p.shape], size: p.size, block: blockOf(model.kind, name) }));
  return { model, metadata, det, file, quantiles: file.quantiles.gradient, measure: measureOf(model, nm), layers, parameters: layers.reduce((s, l) => s + l.size, 0) };
}

export function disposeModel(l: Loaded | null): void {
  l?.model.parameters().forEach((p) => p.dispose());
}

export interface Result extends F.Inspection {
  /** The measure's value for this input (bits/dim, or the eps-loss). */
  value: number;
  /** Where the score falls among the held-out in-distribution scores, percent. */
  percentile: number;
  /** -1/2 sum z^2 over kept layers, and the rest of the score: -1/2 sum log(2 pi sigma^2). */
  quadratic: number;
  constant: number;
  saliencyTarget: F.SaliencyTarget;
  ms: number;
}

/** One input through the method: NLL, log f_l, z, score, verdict, and the saliency map of the score or one layer. */
export async function inspect(l: Loaded, image: Uint8Array, saliency: F.SaliencyTarget): Promise<Result> {
  const t0 = performance.now();
  const r = await F.inspectImage(l.model, image, l.det, { saliency, noiseSeed: 0 });
  let quadratic = 0, constant = 0;
  for (const k of l.det.kept) {
    quadratic += -0.5 * r.z[k] ** 2;
    constant += -0.5 * Math.log(2 * Math.PI * l.det.variance[k]);
  }
  return {
    ...r, value: r.measure.kind === "eps-loss" ? r.nllNats : r.bitsPerDim, percentile: percentileOf(l.quantiles, r.score), quadratic, constant,
    saliencyTarget: saliency, ms: performance.now() - t0,
  };
}

export interface SampleOptions {
  temperature: number;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/** How many samples the page draws at a time: the diffusion model's take 50 U-Net passes each. */
export const sampleCount = (kind: string) => (kind === "diffusion" ? 4 : 16);

/** The sampler each model uses on the page (diffusion: DDIM with 50 steps). */
export function samplerNote(kind: string, temperature: number): string {
  return kind === "vae" ? "the VAE's decoder means of the latent draws" : kind === "diffusion" ? "DDIM, 50 steps" : `temperature ${temperature}`;
}

export const DDIM_STEPS = 50;

/**
 * n samples. The diffusion model's are drawn `chunk` images at a time (each chunk from its own
 * seed), so that one of its 50 DDIM steps stays short and a cancel, checked between steps, takes
 * effect soon; progress counts steps over all chunks. On SwiftShader a step's time grows about
 * linearly with the batch (measured: 0.20 s for 1 image, 0.33 s for 2, 0.6 s for 4, on a loaded
 * machine), so small chunks cost little in total time.
 */
export async function sample(l: Loaded, n: number, seed: number, o: SampleOptions & { chunk?: number }): Promise<Uint8Array> {
  const kind = l.model.kind;
  if (kind !== "diffusion") {
    const so: ModelSampleOptions = kind === "vae" ? { mean: true } : { temperature: o.temperature };
    const imgs = await l.model.sample(n, new F.T.Generator(seed), so);
    o.signal?.throwIfAborted();
    return imgs;
  }
  const chunk = o.chunk ?? 2, chunks = Math.ceil(n / chunk), out = new Uint8Array(n * l.model.dims);
  for (let c = 0; c < chunks; c++) {
    const m = Math.min(chunk, n - c * chunk);
    const so: ModelSampleOptions = { steps: DDIM_STEPS, signal: o.signal, onStep: (k) => o.onStep?.(c * DDIM_STEPS + k, chunks * DDIM_STEPS) };
    out.set(await l.model.sample(m, new F.T.Generator(seed * 1000 + c), so), c * chunk * l.model.dims);
  }
  return out;
}

export interface SetScores {
  name: string;
  /** The measure per input (bits/dim or eps-loss). */
  value: number[];
  score: number[];
  /** log f_l rows. */
  logf: Float64Array[];
}

export interface Evaluation {
  n: number;
  sets: [SetScores, SetScores];
  /** Per method: AUROC and ROC points (in-distribution vs OOD). */
  methods: { label: string; auroc: number; points: [number, number][] }[];
  ms: number;
}

/**
 * The small OOD evaluation: features at B = 1 of the first n images of each set, by setFeatures
 * in chunks (so progress shows and a cancel takes effect between chunks), then three scores: the
 * measure itself, its typicality (distance from the fit mean) and the detector's gradient score.
 */
export async function evaluate(l: Loaded, inSet: F.ImageSet, outSet: F.ImageSet, n: number, o: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void; chunk?: number }): Promise<Evaluation> {
  const t0 = performance.now(), per = o.chunk ?? 16, total = 2 * n;
  let done = 0;
  const sets: SetScores[] = [];
  for (const set of [inSet, outSet]) {
    const s: SetScores = { name: set.name, value: [], score: [], logf: [] };
    for (let i = 0; i < n; i += per) {
      const idx = Array.from({ length: Math.min(per, n - i) }, (_, k) => i + k);
      const f = await setFeatures(l.model, F.subset(set, idx), { groupSize: 1, batch: per, seed: 0 });
      for (let k = 0; k < f.logf.length; k++) {
        s.logf.push(f.logf[k]);
        s.value.push(l.measure.fromBitsPerDim(f.nll[k]));
        s.score.push(F.scoreRow(l.det, f.logf[k]));
      }
      done += idx.length;
      o.onProgress?.(done, total);
      await new Promise((r) => setTimeout(r, 0)); // let the page paint and take a cancel
      o.signal?.throwIfAborted();
    }
    sets.push(s);
  }
  const [si, so] = sets;
  const centre = l.measure.fromBitsPerDim(l.file.fit.nllMean);
  const name = l.measure.kind === "eps-loss" ? "ε-loss" : "likelihood";
  const methods = ([
    [`${name} (−${l.measure.name})`, (s: SetScores) => s.value.map((v) => -v)],
    [`typicality (−|${l.measure.name} − fit mean|)`, (s: SetScores) => s.value.map((v) => -Math.abs(v - centre))],
    ["gradient score (this page's detector)", (s: SetScores) => s.score],
  ] as const).map(([label, f]) => ({ label, auroc: F.auroc(f(si), f(so)), points: F.rocCurve(f(si), f(so)) }));
  return { n, sets: [si, so], methods, ms: performance.now() - t0 };
}

export interface BenchRow {
  name: string;
  ms: number;
  /** null where the workload has no FLOP count. */
  gflops: number | null;
  runs: number;
}

/**
 * The workloads `npm run bench` times by default, on this backend: one warm-up run, then 2-5 timed
 * runs (stopping after 1.5 s once 2 are done), the median; each run ends with a readback.
 */
export async function benchmark(backend: F.Backend, o: { names?: string[]; signal?: AbortSignal; onProgress?: (done: number, total: number, name: string) => void; onRow?: (r: BenchRow) => void }): Promise<BenchRow[]> {
  const list = kernelWorkloads().filter((w) => !o.names || o.names.includes(w.name));
  const rows: BenchRow[] = [];
  for (const [k, w] of list.entries()) {
    o.onProgress?.(k, list.length, w.name);
    await new Promise((r) => setTimeout(r, 0));
    o.signal?.throwIfAborted();
    const { run, dispose } = w.ours(backend);
    try {
      await run(); // warm-up: pipelines, kernels, textures
      const times: number[] = [];
      const t0 = performance.now();
      while (times.length < 5 && (times.length < 2 || performance.now() - t0 < 1500)) {
        o.signal?.throwIfAborted();
        const t = performance.now();
        await run();
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const ms = times[Math.floor(times.length / 2)];
      const row = { name: w.name, ms, gflops: w.flops > 0 ? w.flops / (ms * 1e6) : null, runs: times.length };
      rows.push(row);
      o.onRow?.(row);
    } finally {
      dispose();
    }
  }
  o.onProgress?.(list.length, list.length, "");
  return rows;
}
