// Novelty at first exposure (train --record-novelty FILE): during the first epoch, at every
// NOVELTY_EVERY-th step (0, 16, 32, ...), for each example of the step's batch (so a seeded random
// sixteenth of the training set, since batches are a random permutation), the FIM-induced squared
// norm of the example's own gradient under the model at that moment,
//
//   n(x) = g_x^T diag(v_hat + eps)^{-1} g_x = sum_l n_l(x),
//
// with g_x the gradient of the example's loss (its NLL in bits/dim: the term of the training
// objective it contributes) at the weights the step starts from, and v_hat = v_t / (1 - beta2^t)
// Adam's bias-corrected second moments after this step's update: the diagonal scale of the very
// update the example takes part in. Also its loss, the per-layer n_l and the per-layer squared
// norms f_l = ||g_l||^2 (the method's features, of the loss in bits/dim).
//
// Why v_hat approximates the FIM: v is an exponential moving average (weight 1 - beta2 = 0.001, so
// over about the last 1000 steps) of the squared minibatch-mean gradient gbar^2, elementwise. For a
// batch of b examples drawn at random, E[gbar^2] = (E g)^2 + Var(g) / b. The diagonal of the
// empirical Fisher of the per-example loss is E[g^2] = (E g)^2 + Var(g). So once the mean gradient
// is small against its spread (late in training), v_hat ~ diag(F) / b and n(x) ~ b g^T diag(F)^{-1} g:
// the diagonal-FIM norm scaled by the batch size b (64 here). Early in training (E g)^2 dominates
// and v_hat is closer to the squared mean gradient, so n(x) then measures the example's gradient
// against the current mean gradient's size rather than against the Fisher. v also lags the weights
// (it averages gradients of earlier weights) and sees clipped gradients (clip 100: rarely active).
// eps = Adam's eps^2 = 1e-16: the floor Adam's own denominator sqrt(v_hat) + eps puts on v_hat.
//
// Cost: one extra per-group pass (forward and backward with per-example parameter copies; linear
// layers by their Gram factors) over a batch every NOVELTY_EVERY steps, during the first epoch only:
// the pass costs about 1.5 training steps, so about a tenth of one per step of the first epoch and
// nothing after (bench/novelty_cost.ts; docs/dynamics.md has the measurements).
// The record is CSV with a header line; it is rewritten (atomically) with every checkpoint, holding
// exactly the rows of the steps before that checkpoint's, so a resumed run (exact resume) continues
// it and ends with the same rows as an uninterrupted one. Recording changes no training number:
// it draws from its own generators and restores the parameters it replaces.
import * as T from "../autograd/index.ts";
import type { ImageSet } from "../data/dataset.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { usageError } from "../io/options.ts";
import { groupSquaredNorm, type GroupGradient, perGroupGradientParts, perGroupPass } from "../nn/per_group.ts";
import { type GenerativeModel, LN2 } from "./model.ts";
import { createModel } from "./registry.ts";
import { canonical } from "./resume.ts";
import { type StepInfo, stepGen } from "./train.ts";

export const NOVELTY_FORMAT = "fimscope-novelty-1";
/** Examples recorded per recorded batch (all of a batch of 64; the first k of a larger one) and the steps between recorded batches. */
export const NOVELTY_PER_BATCH = 64;
export const NOVELTY_EVERY = 16;

export interface NoveltyHeader {
  format: string;
  kind: string;
  config: Record<string, unknown>;
  data: string;
  seed: number;
  batch: number;
  perBatch: number;
  /** Steps between recorded steps. */
  every: number;
  /** Steps recorded: those of the first epoch (floor(training images / batch)) that are multiples of every. */
  window: number;
  optimizer: string;
  beta2: number;
  eps: number;
  loss: string;
  /** The weights file the recording run writes (where the novelty command finds the final model). */
  weights: string;
  /** Parameter tensor names, in the model's order. */
  layers: string[];
}

export interface NoveltyRow {
  step: number;
  /** Index into the training split. */
  index: number;
  label: number;
  /** The example's loss, bits/dim. */
  loss: number;
  /** n(x) = sum_l n_l. */
  novelty: number;
  /** log n_l per layer, then log f_l per layer. */
  logNovelty: Float64Array;
  logF: Float64Array;
}

export interface NoveltyRecord {
  header: NoveltyHeader;
  rows: NoveltyRow[];
}

const HEAD_PREFIX = `# ${NOVELTY_FORMAT} `;

function columns(h: NoveltyHeader): string[] {
  return ["step", "index", "label", "loss_bpd", "novelty", ...h.layers.map((l) => `log_n:${l}`), ...h.layers.map((l) => `log_f:${l}`)];
}

function rowLine(r: NoveltyRow): string {
  const g = (v: number) => (Number.isFinite(v) ? +v.toPrecision(7) : v);
  return [r.step, r.index, r.label, g(r.loss), g(r.novelty), ...[...r.logNovelty].map(g), ...[...r.logF].map(g)].join(",");
}

/** Parses a record's text (what the recorder writes); throws naming the file and line on anything else. */
export function parseNoveltyRecord(text: string, file: string): NoveltyRecord {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (!lines[0]?.startsWith(HEAD_PREFIX)) throw new Error(`novelty record ${file}: line 1 does not start with '${HEAD_PREFIX.trim()}' (not a novelty record written by train --record-novelty)`);
  let header: NoveltyHeader;
  try {
    header = JSON.parse(lines[0].slice(HEAD_PREFIX.length));
  } catch {
    throw new Error(`novelty record ${file}: line 1's header is not valid JSON`);
  }
  const ok = header && typeof header === "object" && Array.isArray(header.layers) && header.layers.every((l) => typeof l === "string") &&
    ["seed", "batch", "perBatch", "every", "window", "beta2", "eps"].every((k) => Number.isFinite((header as unknown as Record<string, number>)[k])) &&
    ["kind", "data", "optimizer", "weights"].every((k) => typeof (header as unknown as Record<string, unknown>)[k] === "string");
  if (!ok) throw new Error(`novelty record ${file}: line 1's header lacks fields (layers, seed, batch, perBatch, every, window, beta2, eps, kind, data, optimizer, weights)`);
  const cols = columns(header);
  if (lines[1] !== cols.join(",")) throw new Error(`novelty record ${file}: line 2 is not the column line for the header's ${header.layers.length} layers`);
  const L = header.layers.length, rows: NoveltyRow[] = [];
  for (let i = 2; i < lines.length; i++) {
    const v = lines[i].split(",").map(Number);
    if (v.length !== cols.length || v.some((x) => Number.isNaN(x))) throw new Error(`novelty record ${file}: line ${i + 1} has ${v.length} values or a non-number (expected ${cols.length} numbers)`);
    if (!(Number.isInteger(v[0]) && v[0] >= 0 && Number.isInteger(v[1]) && v[1] >= 0)) throw new Error(`novelty record ${file}: line ${i + 1}: step and index must be non-negative integers`);
    rows.push({ step: v[0], index: v[1], label: v[2], loss: v[3], novelty: v[4], logNovelty: Float64Array.from(v.slice(5, 5 + L)), logF: Float64Array.from(v.slice(5 + L, 5 + 2 * L)) });
  }
  return { header, rows };
}

/** Reads a record (plain, or gzip-compressed when the name ends in .gz). */
export async function readNoveltyRecord(path: string): Promise<NoveltyRecord> {
  let bytes = Deno.readFileSync(path);
  if (path.endsWith(".gz")) bytes = new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  return parseNoveltyRecord(new TextDecoder().decode(bytes), path);
}

export function noveltyText(rec: NoveltyRecord): string {
  return `${HEAD_PREFIX}${JSON.stringify(rec.header)}\n${columns(rec.header).join(",")}\n${rec.rows.map((r) => rowLine(r) + "\n").join("")}`;
}

export interface NoveltyPlanInput {
  path: string;
  force: boolean;
  kind: string;
  config: Record<string, unknown>;
  data: string;
  seed: number;
  batch: number;
  optimizer: string;
  /** Images in the training split. */
  trainN: number;
  /** The checkpoint's step when resuming, else 0. */
  resumeStep: number;
  weights: string;
  /** The run's other files (weights, checkpoint, the checkpoint resumed from): the record must be none of them. */
  others: string[];
  /** Tests only: other than NOVELTY_PER_BATCH and NOVELTY_EVERY. */
  perBatch?: number;
  every?: number;
}

export interface NoveltyPlan {
  path: string;
  header: NoveltyHeader;
  /** Rows kept from the record being continued (steps before the checkpoint's). */
  rows: NoveltyRow[];
}

const ADAM = { beta2: 0.999, eps: 1e-8 };

/**
 * Checks a --record-novelty request before any work, as train does for its other options: a model
 * trained on its NLL with Adam, a path that is new (or, when resuming, the record this run wrote,
 * with every row of the steps before the checkpoint's, the same settings and model). Throws a
 * usage error naming the option, the file and what is allowed.
 */
export async function planNoveltyRecord(i: NoveltyPlanInput): Promise<NoveltyPlan> {
  const fail = (why: string) => usageError("train", "--record-novelty", i.path, why);
  if (i.kind === "diffusion") throw fail("the diffusion model trains on an eps-loss at random steps, not its NLL; novelty is recorded for vae and glow models");
  if (i.optimizer !== "adam") throw fail(`needs --optimizer adam (its second moments are the FIM estimate; ${i.optimizer}'s are not)`);
  if (i.path.endsWith(".gz")) throw fail("the live record is plain CSV (compress a finished one for shipping; the novelty command reads .gz)");
  const abs = (p: string) => p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
  const same = i.others.find((o) => abs(o).replace(/\/\.?\//g, "/") === abs(i.path).replace(/\/\.?\//g, "/"));
  if (same) throw fail(`is also one of this run's other files (${same}); the record needs a file of its own`);
  const probe = await createModel(i.kind, i.config, T.cpu, 0);
  const window = Math.floor(i.trainN / i.batch);
  const header: NoveltyHeader = {
    format: NOVELTY_FORMAT, kind: i.kind, config: i.config, data: i.data, seed: i.seed, batch: i.batch, perBatch: Math.min(i.perBatch ?? NOVELTY_PER_BATCH, i.batch), every: i.every ?? NOVELTY_EVERY, window,
    optimizer: i.optimizer, beta2: ADAM.beta2, eps: ADAM.eps ** 2, loss: "bits/dim", weights: i.weights, layers: probe.namedParameters().map(([n]) => n),
  };
  let exists = false;
  try {
    exists = Deno.statSync(i.path).isFile;
  } catch { /* new */ }
  if (!i.resumeStep) {
    if (exists && !i.force) throw fail("exists; a new run records into a new file (choose another path, or add --force to replace it)");
    return { path: i.path, header, rows: [] };
  }
  if (!exists) {
    if (i.resumeStep < window) throw fail(`no such file; resuming at step ${i.resumeStep}, inside the first epoch (steps 0-${window - 1}), continues the record the run wrote (give its path)`);
    throw fail(`no such file; the checkpoint is at step ${i.resumeStep}, past the first epoch (steps 0-${window - 1}), so there is nothing left to record`);
  }
  let rec: NoveltyRecord;
  try {
    rec = parseNoveltyRecord(Deno.readTextFileSync(i.path), i.path);
  } catch (e) {
    throw fail((e as Error).message);
  }
  const h = rec.header;
  const diff = (["kind", "data", "seed", "batch", "perBatch", "every", "window", "optimizer", "beta2", "eps"] as const).filter((k) => h[k] !== header[k]);
  if (canonical(h.config) !== canonical(header.config)) diff.push("config" as never);
  if (canonical(h.layers) !== canonical(header.layers)) diff.push("layers" as never);
  if (diff.length) throw fail(`was recorded with other settings than the checkpoint's (${diff.map((k) => `${k}: ${JSON.stringify(h[k])} vs ${JSON.stringify(header[k])}`).join("; ")})`);
  const rows = rec.rows.filter((r) => r.step < i.resumeStep);
  const per = new Map<number, number>();
  for (const r of rows) per.set(r.step, (per.get(r.step) ?? 0) + 1);
  const steps = recordedSteps(header, i.resumeStep);
  const missing = steps.find((s) => per.get(s) !== header.perBatch), extra = [...per.keys()].find((s) => !steps.includes(s));
  if (missing !== undefined) throw fail(`lacks the rows of step ${missing} (it holds ${per.get(missing) ?? 0}, expected ${header.perBatch} for each recorded step before ${i.resumeStep}); it is not the record of the run that wrote this checkpoint`);
  if (extra !== undefined) throw fail(`holds rows of step ${extra}, which is not a recorded step (multiples of ${header.every} below ${window}); it is not a record written by train`);
  return { path: i.path, header, rows };
}

/** The steps a run records before step `before`. */
export function recordedSteps(h: Pick<NoveltyHeader, "every" | "window">, before: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < Math.min(before, h.window); s += h.every) out.push(s);
  return out;
}

/**
 * Per-example loss (bits/dim) and each example's gradient per parameter tensor at the current
 * weights, by one norms-only per-group pass (one group per example): convolution gradients
 * materialised ([k, P_l]), linear layers as their Gram factors (never [k, in, out]).
 */
export function exampleGradients(model: GenerativeModel, x: T.Tensor, noise: T.Tensor | undefined): { loss: T.Tensor; parts: GroupGradient[] } {
  const k = x.shape[0], scale = 1 / (model.dims * LN2);
  return T.tidy(() => {
    const pass = perGroupPass(model, { groups: k, normsOnly: true }, [x, noise], (xg, ng) => T.mul(model.nll(xg!, { noise: ng }), scale));
    return { loss: pass.loss, parts: perGroupGradientParts(pass, model.parameters()) };
  });
}

/** [k, 2L] table: per layer sum_i g_i^2 / (vhat_i + eps) (n_l), then per layer sum_i g_i^2 (f_l). */
export function exampleNorms(parts: GroupGradient[], k: number, vhat: T.Tensor[], eps: number): T.Tensor {
  return T.tidy(() => T.concat([
    ...parts.map((p, l) => T.reshape(groupSquaredNorm(p, k, T.div(1, T.add(vhat[l], eps))), [k, 1])),
    ...parts.map((p) => T.reshape(groupSquaredNorm(p, k), [k, 1])),
  ], 1));
}

const partTensors = (p: GroupGradient) => ("dense" in p ? [p.dense] : [p.a, p.dy]);

/** The seeded noise of a VAE's recorded examples at a step (models without noise: none). */
export function noveltyNoise(model: GenerativeModel, seed: number, step: number, k: number): T.Tensor | undefined {
  const shape = model.noiseShape(k);
  return shape ? T.randn(new T.Generator((seed * 2_654_435_761 + step * 40_503 + 11) >>> 0), shape, { backend: model.backend, dtype: model.dtype }) : undefined;
}

/**
 * The training hooks that record: onStep computes the recorded examples' gradients before the
 * update and, after it, their norms under the optimiser's new v_hat; onCheckpoint writes the record.
 */
export function noveltyHooks(plan: NoveltyPlan, model: GenerativeModel, data: ImageSet): { onStep: (s: StepInfo) => Promise<(() => Promise<void>) | void>; onCheckpoint: (step: number) => Promise<void> } {
  const h = plan.header, rows = [...plan.rows], L = h.layers.length;
  let written = -1;
  return {
    onStep: (s) => {
      if (s.step >= h.window || s.step % h.every) return Promise.resolve();
      const idx = s.idx.slice(0, h.perBatch), k = idx.length;
      // The examples exactly as the step sees them: the same dequantisation draws (the first k images' of the batch).
      const x = model.input(data, idx, stepGen(h.seed, s.step)), noise = noveltyNoise(model, h.seed, s.step, k);
      const { loss, parts } = exampleGradients(model, x, noise);
      x.dispose();
      noise?.dispose();
      return Promise.resolve(async () => {
        const opt = s.optimizer, c2 = 1 - opt.beta2 ** opt.step;
        const table = T.tidy(() => T.concat([T.reshape(loss, [k, 1]), exampleNorms(parts, k, opt.v.map((v) => T.div(v, c2)), h.eps)], 1));
        const d = Float64Array.from(await table.data());
        [table, loss, ...parts.flatMap(partTensors)].forEach((t) => t.dispose());
        for (let j = 0; j < k; j++) {
          const r = d.subarray(j * (1 + 2 * L), (j + 1) * (1 + 2 * L)), n = r.subarray(1, 1 + L);
          rows.push({
            step: s.step, index: idx[j], label: data.labels[idx[j]], loss: r[0], novelty: n.reduce((a, v) => a + v, 0),
            logNovelty: Float64Array.from(n, Math.log), logF: Float64Array.from(r.subarray(1 + L), Math.log),
          });
        }
      });
    },
    onCheckpoint: (step) => {
      const keep = rows.filter((r) => r.step < step);
      if (keep.length !== written) {
        writeFileAtomic(plan.path, noveltyText({ header: h, rows: keep }));
        written = keep.length;
      }
      return Promise.resolve();
    },
  };
}
