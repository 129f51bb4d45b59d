// The training loop shared by every model: seeded data order, Adam/Adamax, gradient clipping,
// NaN checks, periodic checkpoints with optimiser state, exact resume, and test evaluation.
import * as T from "../autograd/index.ts";
import type { Backend } from "../kernels/backend.ts";
import { batches, type ImageSet, range } from "../data/dataset.ts";
import { loadInto, readCheckpoint, saveTensors } from "../io/safetensors.ts";
import { Adam, Adamax, clipGradNorm } from "../nn/optim.ts";
import { type GenerativeModel, LN2 } from "./model.ts";

export interface TrainOptions {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  optimizer: "adam" | "adamax";
  clip: number;
  /** Linear learning-rate warm-up steps. */
  warmup: number;
  checkpointEvery: number;
  checkpointPath: string;
  resume?: string;
  data: string;
  /** Called once before the first step and after every step (the CLI draws a bar from it). */
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  /** Steps done (the checkpoint's step when resuming, before the first). */
  step: number;
  steps: number;
  /** The last step's loss in bits/dim (NaN before the first step). */
  loss: number;
  examplesPerSecond: number;
}

/** A per-step generator, so a resumed run sees exactly the noise the uninterrupted one would. */
export const stepGen = (seed: number, step: number) => new T.Generator((seed * 1_000_003 + step * 7919 + 17) >>> 0);

function epochOrder(n: number, batch: number, seed: number, epoch: number): number[][] {
  return batches(n, batch, new T.Generator((seed * 31337 + epoch * 104729 + 5) >>> 0));
}

export interface TrainResult {
  steps: number;
  seconds: number;
  lastLoss: number;
}

export function metadataOf(model: GenerativeModel, extra: Record<string, string | number>): Record<string, string> {
  const m: Record<string, string> = { kind: model.kind, config: JSON.stringify(model.config), format: "fimscope-1" };
  for (const [k, v] of Object.entries(extra)) m[k] = String(v);
  return m;
}

export async function train(model: GenerativeModel, data: ImageSet, o: TrainOptions): Promise<TrainResult> {
  const params = model.namedParameters(), buffers = model.namedBuffers();
  if (o.optimizer !== "adam" && o.optimizer !== "adamax") throw new Error(`train: optimizer '${o.optimizer}' (allowed: adam, adamax)`);
  const opt = o.optimizer === "adamax" ? new Adamax(params.map(([, p]) => p), { lr: o.lr }) : new Adam(params.map(([, p]) => p), { lr: o.lr });
  let start = 0, elapsedBefore = 0;
  if (o.resume) {
    const d = readCheckpoint(o.resume);
    const optNamed: [string, T.Tensor][] = params.flatMap(([n], i) => [[`optimizer.m.${n}`, opt.m[i]], [`optimizer.v.${n}`, opt.v[i]]] as [string, T.Tensor][]);
    loadInto(d, o.resume, [...params, ...buffers, ...optNamed]);
    start = Number(d.metadata.step ?? NaN);
    if (!Number.isInteger(start)) throw new Error(`checkpoint ${o.resume}: no step in __metadata__ (not a training checkpoint)`);
    if (start >= o.steps) throw new Error(`train: the checkpoint ${o.resume} is at step ${start}; steps ${o.steps} is the total step count and must exceed it`);
    opt.step = start;
    elapsedBefore = Number(d.metadata.elapsed_s ?? 0);
  }
  model.train();
  const perEpoch = Math.floor(data.n / o.batch);
  if (perEpoch < 1) throw new Error(`train: batch ${o.batch} larger than the data (${data.n})`);
  let order: number[][] = [], orderEpoch = -1;
  o.onProgress?.({ step: start, steps: o.steps, loss: NaN, examplesPerSecond: NaN });
  const t0 = performance.now();
  let lastLoss = NaN;
  const save = async (step: number) => {
    const optNamed: [string, T.Tensor][] = params.flatMap(([n], i) => [[`optimizer.m.${n}`, opt.m[i]], [`optimizer.v.${n}`, opt.v[i]]] as [string, T.Tensor][]);
    await saveTensors(o.checkpointPath, [...params, ...buffers, ...optNamed], metadataOf(model, {
      step, seed: o.seed, data: o.data, lr: o.lr, batch: o.batch, optimizer: o.optimizer, clip: o.clip, warmup: o.warmup, elapsed_s: elapsedBefore + (performance.now() - t0) / 1000,
    }));
  };
  for (let step = start; step < o.steps; step++) {
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== orderEpoch) {
      order = epochOrder(data.n, o.batch, o.seed, epoch);
      orderEpoch = epoch;
    }
    const idx = order[step % perEpoch];
    const gen = stepGen(o.seed, step);
    opt.lr = o.lr * Math.min(1, (step + 1) / Math.max(1, o.warmup));
    const loss = T.tidy(() => {
      const x = model.input(data, idx, gen);
      if (step === 0 && model.initialize) model.initialize(x);
      const l = model.trainingLoss ? T.mean(model.trainingLoss(x, gen)) : T.div(T.mean(model.nll(x, { gen })), model.dims * LN2);
      for (const [, p] of params) p.zeroGrad();
      l.backward();
      return l;
    });
    const norm = clipGradNorm(params.map(([, p]) => p), o.clip);
    opt.update();
    const [lv] = await Promise.all([loss.item(), norm.item()]);
    loss.dispose();
    norm.dispose();
    if (!Number.isFinite(lv)) {
      throw new Error(`train: loss is ${lv} at step ${step} (model ${model.kind}, lr ${o.lr}); last finite loss ${lastLoss}. Lower --lr or --clip, or resume from ${o.checkpointPath}`);
    }
    lastLoss = lv;
    const secs = (performance.now() - t0) / 1000;
    o.onProgress?.({ step: step + 1, steps: o.steps, loss: lv, examplesPerSecond: ((step + 1 - start) * o.batch) / secs });
    if ((step + 1) % o.checkpointEvery === 0 || step + 1 === o.steps) await save(step + 1);
  }
  model.eval();
  return { steps: o.steps, seconds: elapsedBefore + (performance.now() - t0) / 1000, lastLoss };
}

/**
 * Mean NLL in bits/dim over n images (all of them, or a seeded random subset: the FashionMNIST
 * test split is ordered by class, so a prefix would be biased). Batched, no graph.
 */
export interface EvaluateOptions {
  batch?: number;
  seed?: number;
  /** Called after every batch with the images done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export async function evaluate(model: GenerativeModel, data: ImageSet, n: number, o: EvaluateOptions = {}): Promise<number> {
  return (await evaluateStats(model, data, n, o)).mean;
}

/**
 * Mean NLL in bits/dim over n images (as evaluate) with its standard error over the images: for a
 * stochastic bound (the VAE's one-sample ELBO, the diffusion model's sampled steps) the per-image
 * values include the estimator's noise, so the error covers both. Batches are capped by the
 * model's evalBatch where it sets one.
 */
export async function evaluateStats(model: GenerativeModel, data: ImageSet, n: number, o: EvaluateOptions = {}): Promise<{ mean: number; se: number; median: number; max: number; n: number }> {
  const batch = Math.min(o.batch ?? 250, model.evalBatch ?? Infinity), seed = o.seed ?? 0;
  model.eval();
  const count = Math.min(n, data.n);
  const order = count < data.n ? new T.Generator(4242 + seed).permutation(data.n).subarray(0, count) : null;
  const values: number[] = [];
  for (let i = 0; i < count; i += batch) {
    const idx = order ? [...order.subarray(i, Math.min(count, i + batch))] : range(i, Math.min(count, i + batch));
    const s = T.tidy(() => T.noGrad(() => model.nll(model.input(data, idx, stepGen(seed, i)), { gen: stepGen(seed + 1, i) })));
    for (const v of await s.data()) values.push(v / (model.dims * LN2));
    s.dispose();
    o.onProgress?.(Math.min(count, i + batch), count);
  }
  const mean = values.reduce((a, v) => a + v, 0) / count;
  const se = count > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (count - 1) / count) : NaN;
  const sorted = [...values].sort((p, q) => p - q);
  const median = count % 2 ? sorted[(count - 1) / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
  return { mean, se, median, max: sorted[count - 1], n: count };
}

export type { Backend };
