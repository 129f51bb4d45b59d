// Everything the page computes, in one place, through library calls only: choosing the backend,
// loading a model and its detector file, inspecting one input (inspectImage), drawing samples, the
// small OOD evaluation (the library's loop, setFeatures, over each set) and the kernel benchmark
// (src/nn/workloads.ts). Each input's random draws come from its pixels and the detector's seed, as
// in `npm run score`, so an image gets the same numbers here. Long work takes an AbortSignal,
// checked between steps, batches or timed runs, and reports progress through a callback.
import * as F from "../mod.ts";
import type { SampleOptions as ModelSampleOptions } from "../src/models/model.ts";
import type { DetectorFile } from "../src/ood/detector.ts";
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

/** What stands in for the likelihood on this model, in the units every panel shows (the detector's objective's measure). */
export interface Measure {
  /** "nll": an NLL (or a bound) in bits/dim; "eps-loss": a diffusion model's eps-loss (the detector's quantity). */
  kind: "nll" | "eps-loss";
  /** Short name for headings and axes, e.g. "NLL" or "L1 eps-loss, t = 1". */
  name: string;
  unit: string;
  /** One sentence: what it is. */
  about: string;
}

export function measureOf(objective: F.Objective): Measure {
  const m = objective.measure;
  return m.kind === "loss"
    ? {
      kind: "eps-loss", name: m.short.replace("eps", "ε"), unit: `mean ${/^L1/.test(m.short) ? "|ε − ε̂|" : "(ε − ε̂)²"} per pixel`,
      about: `A diffusion model has no exact likelihood; the detector differentiates what stands in for it: the ${m.label}.`,
    }
    : { kind: "nll", name: m.short, unit: m.unit, about: `${m.label}.` };
}

export interface Layer {
  index: number;
  name: string;
  shape: number[];
  size: number;
  /** The block it belongs to (a flow step, a U-Net block, the VAE's encoder or decoder). */
  block: string;
}

/** A parameter tensor's block, from its dotted name: a flow step or prior (levels.L.steps.K, levels.L.prior), an encoder or decoder, else its module's parent. */
export function blockOf(name: string): string {
  const parts = name.split(".");
  const m = /^levels\.\d+\.(steps\.\d+|prior)/.exec(name);
  if (m) return m[0];
  if (parts[0] === "encoder" || parts[0] === "decoder") return parts[0];
  return parts.slice(0, parts.length >= 4 ? -2 : -1).join(".");
}

/** The detector's diagonal Gaussian and verdict threshold, as the page's views read them. */
export interface DiagonalView {
  names: string[];
  mean: number[];
  variance: number[];
  kept: number[];
  threshold: number;
  made: { fit: string };
}

export interface Loaded {
  model: F.GenerativeModel;
  metadata: Record<string, string>;
  detector: F.Detector;
  objective: F.Objective;
  det: DiagonalView;
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
  const detector = new F.Detector(F.parseDetector(detectorJson, detectorUrl)), file = detector.file;
  // What the detector differentiates, as in `npm run ood` (the diffusion model: its L1 eps-loss at t = 1), checked against the model.
  const objective = F.detectorObjective(model, detector, detectorUrl, { single: true });
  const named = model.namedParameters(), g = detector.fitted.diagonal;
  const det: DiagonalView = {
    names: file.features.names, mean: Array.from(g.mean), variance: Array.from(g.variance), kept: [...g.kept], threshold: file.threshold95[file.method],
    made: { fit: `${file.fit.groups} images of ${file.fit.data}` },
  };
  const layers = named.map(([name, p], index) => ({ index, name, shape: [...p.shape], size: p.size, block: blockOf(name) }));
  return { model, metadata, detector, objective, det, file, quantiles: file.quantiles[file.method], measure: measureOf(objective), layers, parameters: layers.reduce((s, l) => s + l.size, 0) };
}

export function disposeModel(l: Loaded | null): void {
  l?.model.parameters().forEach((p) => p.dispose());
}

export interface Result extends F.Inspection {
  /** The verdict as a flag. */
  inDistribution: boolean;
  /** -1/2 sum z^2 over kept layers, and the rest of the score: -1/2 sum log(2 pi sigma^2). */
  quadratic: number;
  constant: number;
  saliencyTarget: F.SaliencyTarget;
  ms: number;
}

/** One input through the method: NLL, log f_l, z, score, verdict, and the saliency map of the score or one layer. */
export async function inspect(l: Loaded, image: Uint8Array, saliency: F.SaliencyTarget): Promise<Result> {
  const t0 = performance.now();
  const r = await F.inspectImage(l.model, image, l.detector, { saliency });
  let quadratic = 0, constant = 0;
  for (const k of l.det.kept) {
    quadratic += -0.5 * r.z[k] ** 2;
    constant += -0.5 * Math.log(2 * Math.PI * l.det.variance[k]);
  }
  return {
    ...r, inDistribution: r.verdict === "in", quadratic, constant,
    saliencyTarget: saliency, ms: performance.now() - t0,
  };
}

export interface SampleOptions {
  temperature: number;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/** Whether a model samples in steps (a diffusion model: 50 DDIM steps, each a U-Net pass). */
const stepped = (model: F.GenerativeModel) => (model.sampleOptions as readonly string[]).includes("steps");

/** How many samples the page draws at a time: a stepped sampler's take 50 network passes each. */
export const sampleCount = (model: F.GenerativeModel) => (stepped(model) ? 4 : 16);

/** How the page's samples are drawn, in the model's own words. */
export function samplerNote(model: F.GenerativeModel, temperature: number): string {
  return model.describeSampling({ temperature, mean: true, steps: DDIM_STEPS });
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
  if (!stepped(l.model)) {
    const so: ModelSampleOptions = { mean: true, temperature: o.temperature };
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
 * The small OOD evaluation: features at B = 1 of the first n images of each set, by the library's
 * loop (progress and a cancel between batches), then three scores: the measure itself, its
 * typicality (distance from the fit mean) and the detector's gradient score.
 */
export async function evaluate(l: Loaded, inSet: F.ImageSet, outSet: F.ImageSet, n: number, o: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void; chunk?: number }): Promise<Evaluation> {
  const t0 = performance.now(), total = 2 * n;
  const sets: SetScores[] = [];
  for (const [k, set] of [inSet, outSet].entries()) {
    const f = await F.setFeatures(l.model, l.objective, F.subset(set, Array.from({ length: n }, (_, i) => i)), {
      batch: o.chunk ?? 16, seed: l.detector.file.seed, signal: o.signal,
      onProgress: (done) => o.onProgress?.(k * n + done, total),
      pause: () => new Promise((r) => setTimeout(r, 0)), // let the page paint and take a cancel
    });
    sets.push({ name: set.name, value: Array.from(f.nll), score: f.logf.map((r, i) => l.detector.scoreRow(r, f.nll[i]).scores.gradient), logf: f.logf });
  }
  const [si, so] = sets;
  const centre = l.file.fit.nllMean;
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
