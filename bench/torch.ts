// fimscope against PyTorch (bench only) on the paper's workload: per-example per-tensor squared
// gradient norms of the NLL for 64 FashionMNIST test images (B = 1), and one training step (Adam,
// clipping to norm 100, batch 64; 32 for the U-Net), for the shipped VAE, Glow, logit Glow and
// diffusion U-Net (the paper's L1 eps-loss at t = 1). PyTorch runs in one python process
// (bench/torch_peer.py, the models re-implemented in torch), spawned once and driven over
// stdin/stdout: each timed run is one request, answered with its wall and process CPU time, while
// this process idles; ours run here between them. Each round runs every engine of a row once, in
// an order that alternates between rounds, so a slow patch of this shared machine hits all alike.
// With --warm K, each timed run follows K untimed runs of the same engine: a loop's steady state,
// not a run right after the other process's (ours ran 13-14% slower interleaved than alone on the
// Glow's features; K = 1 changed neither side beyond the noise, so that is not a cold start).
// Before timing, both sides' numbers are compared on the same inputs and noise (written here into
// one safetensors file per model with every parameter, the Glow's fixed permutations and signs,
// the inputs and the noise): log features to 1e-3 (PyTorch loop and vmap against our batched
// pass), the step's first loss to 1e-5 relative. Without torch for /usr/bin/python3 the bench says so and skips.
//   deno run -A bench/torch.ts [--models a.safetensors,...] [--work features,step] [--rounds 13]
//        [--engines fimscope wasm,fimscope webgpu,pytorch loop,pytorch vmap] [--threads 2] [--json out.json]
//        [--omp-wait passive|active|default] [--shapes] [--warm 0]
// (also `npm run bench -- --only=torch`). Each row also counts its products (the convolutions and
// matrix products of one of our runs, bench/products.ts) and gives every engine's GFLOP/s per CPU
// second against the wasm SIMD128 ceiling measured at the start (bench/peak.ts); then runs those
// products each alone on both sides (the same shapes on our wasm backend and on PyTorch's kernels,
// best of 3 x 7, wall): how much of a row is products, and how far apart the two sides' kernels are
// on exactly that work (--shapes: per shape). --json writes run.ts's format: { "ceiling": <GFLOP/s per CPU second, one
// thread>, "rows": [{ "workload", "gflop", "engines": { "<engine>": <median ms> }, "spread":
// { "<engine>": [min, max] }, "cpu": { "<engine>": <median CPU ms> }, "products": { "fimscope",
// "pytorch": <ms>, with --shapes "shapes": [{ "key", "n", "gflop", "fimscope", "pytorch" }] }, "paired":
// { "<our engine>": { "median", "lo", "hi", "coverage", "rounds" } } }] }: "paired" is the best PyTorch
// engine's time over ours round by round (pairedRatio: the drift between rounds cancels), its
// median and a distribution-free interval for it.
import * as T from "../src/autograd/index.ts";
import { type ImageSet, range } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { encodeSafetensors, type NamedTensor } from "../src/io/safetensors.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { Diffusion } from "../src/models/diffusion.ts";
import { InvConv1x1 } from "../src/models/glow_layers.ts";
import { LN2 } from "../src/models/model.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { loadModel } from "../src/models/registry.ts";
import { stepGen } from "../src/models/train.ts";
import { timeEmbedding } from "../src/models/unet.ts";
import { withParameters } from "../src/nn/module.ts";
import { Adam, clipGradNorm } from "../src/nn/optim.ts";
import type { Objective } from "../src/models/objective.ts";
import { featuresBatched } from "../src/ood/features.ts";
import { inputNoise } from "../src/ood/loop.ts";
import { singleThreadPeak } from "./peak.ts";
import { distinctProducts, flopsOf, keyOf, type Product, productAloneMs, recordProducts } from "./products.ts";
import { createWasmBackend, WasmBackend } from "../src/kernels/wasm/backend.ts";
import { cpuMs } from "./op_timer.ts";

export const TORCH_MODELS = [
  "weights/vae-fashion.safetensors", "weights/glow-fashion.safetensors", "weights/glow-fashion-large.safetensors", "weights/diffusion-fashion.safetensors",
];
export const TORCH_ENGINES = ["fimscope wasm", "fimscope webgpu", "pytorch loop", "pytorch vmap"] as const;
export type TorchEngine = typeof TORCH_ENGINES[number];
export const TORCH_WORK = ["features", "step"] as const;
const PYTHON = "/usr/bin/python3";
const N = 64;

export interface TorchOptions {
  models: string[];
  work: readonly ("features" | "step")[];
  rounds: number;
  engines: readonly TorchEngine[];
  threads: number;
  /** OpenMP's wait policy for PyTorch's threads (Peer). */
  ompWait?: "passive" | "active" | "default";
  /** Log every product shape of a row alone on both sides, not only their sums. */
  shapes?: boolean;
  /** Untimed runs of an engine right before each of its timed runs (default 0). */
  warm?: number;
  log: (line: string) => void;
}

export interface Row {
  workload: string;
  gflop: number;
  engines: Record<string, number>;
  spread: Record<string, [number, number]>;
  cpu: Record<string, number>;
  /**
   * The row's products (convolutions, their gradients, matrix products: one of our runs', by kind
   * and shape) each run alone on the same operands, its best wall time (productsAlone) summed over
   * the row: on our wasm backend and on PyTorch's kernels, at the same thread count; with
   * --shapes, each shape as well (ms per call, calls per run, GFLOP per call).
   */
  products?: { fimscope: number; pytorch: number; shapes?: ProductShape[] };
  /** Per engine of ours: the round-by-round ratio against the best PyTorch engine (pairedRatio). */
  paired?: Record<string, Paired>;
}

/** A ratio taken round by round: its median over the rounds and a distribution-free interval for that median. */
export interface Paired {
  median: number;
  lo: number;
  hi: number;
  /** The interval's coverage (at least 0.95 from 6 rounds; below that [min, max] and what it covers). */
  coverage: number;
  rounds: number;
}

/**
 * The best PyTorch engine's wall time over ours, round by round: the two ran back to back in each
 * round, so the machine's drift between rounds (10-50% here) cancels in each round's ratio, where a
 * ratio of the two medians carries it. Its median over the n rounds, and the interval between the
 * k-th smallest and the k-th largest ratio, which holds the true median with probability
 * 1 - 2 P(B < k) for B ~ binomial(n, 1/2) (no assumption on the ratios' distribution): k the
 * largest with that at least 0.95 (n = 21: k = 6, 97.3%); below 6 rounds no k reaches it, and the
 * interval is the least to the largest ratio.
 */
export function pairedRatio(theirs: readonly number[], ours: readonly number[]): Paired {
  const n = Math.min(theirs.length, ours.length);
  if (!n) throw new Error("pairedRatio: no rounds");
  const r = Array.from({ length: n }, (_, i) => theirs[i] / ours[i]).sort((p, q) => p - q);
  // below(k) = P(B < k) = P(B <= k - 1), summed from the binomial(n, 1/2) terms
  const below = (k: number) => {
    let t = 0, c = 1; // c = binomial(n, j)
    for (let j = 0; j < k; j++) {
      t += c;
      c = c * (n - j) / (j + 1);
    }
    return t / 2 ** n;
  };
  let k = 1;
  while (k + 1 <= Math.ceil(n / 2) && 1 - 2 * below(k + 1) >= 0.95) k++;
  const median = n % 2 ? r[(n - 1) / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
  return { median, lo: r[k - 1], hi: r[n - k], coverage: 1 - 2 * below(k), rounds: n };
}

/** Timed runs (after one untimed) of each product alone, in each of PRODUCT_ROUNDS rounds; the best is kept. */
const PRODUCT_RUNS = 7, PRODUCT_ROUNDS = 3;

/**
 * The products of `list` each alone on our wasm backend and on PyTorch's kernels (the peer's
 * "products"), best of PRODUCT_RUNS wall ms each, in PRODUCT_ROUNDS rounds whose order of the
 * sides alternates (the best of all kept: PyTorch's time for one shape moved 3x between runs),
 * times how often the row runs it, summed: how long the row's products take with everything else
 * (the other ops, JavaScript or Python, allocation, memory traffic between ops) left out.
 */
async function productsAlone(b: WasmBackend, list: Product[], peer: Peer): Promise<{ fimscope: number; pytorch: number; shapes: ProductShape[] }> {
  const d = distinctProducts(list);
  const wall = () => performance.now();
  const ours = d.map(() => Infinity), theirs = d.map(() => Infinity);
  const runOurs = () => d.forEach(({ q }, i) => ours[i] = Math.min(ours[i], productAloneMs(b, q, wall, PRODUCT_RUNS)));
  const runTheirs = async () => {
    const ms = (await peer.ask({ cmd: "products", list: d.map(({ q }) => q), runs: PRODUCT_RUNS })).ms as number[];
    ms.forEach((v, i) => theirs[i] = Math.min(theirs[i], v));
  };
  for (let r = 0; r < PRODUCT_ROUNDS; r++) {
    if (r % 2) {
      await runTheirs();
      runOurs();
    } else {
      runOurs();
      await runTheirs();
    }
  }
  const shapes = d.map(({ q, n }, i) => ({ key: keyOf(q), n, gflop: flopsOf(q) / 1e9, fimscope: ours[i], pytorch: theirs[i] }));
  const sum = (k: "fimscope" | "pytorch") => +shapes.reduce((t, x) => t + x[k] * x.n, 0).toFixed(1);
  return { fimscope: sum("fimscope"), pytorch: sum("pytorch"), shapes };
}
/** One product shape of a row alone on both sides: ms per call (the best of productsAlone's runs, wall), calls per run, GFLOP per call. */
interface ProductShape { key: string; n: number; gflop: number; fimscope: number; pytorch: number }

/** Why PyTorch cannot run here (one line), or null when it can. */
export async function torchMissing(): Promise<string | null> {
  try {
    const r = await new Deno.Command(PYTHON, { args: ["-c", "import torch, functorch"], stdout: "null", stderr: "piped" }).output();
    if (r.success) return null;
    const err = new TextDecoder().decode(r.stderr).trim().split("\n").pop() ?? "";
    return `${PYTHON} -c "import torch, functorch" failed (${err})`;
  } catch (e) {
    return `${PYTHON} cannot run (${(e as Error).message.split("\n")[0]})`;
  }
}

/** The python process: one JSON request per line, one JSON answer per line. */
class Peer {
  readonly #proc: Deno.ChildProcess;
  readonly #w: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  constructor(threads: number, ompWait: "passive" | "active" | "default") {
    const script = new URL("./torch_peer.py", import.meta.url).pathname;
    // OpenMP's wait policy for torch's threads: "default" spins a while at each barrier, then
    // sleeps: PyTorch's fastest on an idle machine (2026-12-06, bench/README.md: up to 1.7x over
    // "passive", on the VAE's features; 1.55x on the Glow's step), but on a loaded machine (a lagging thread descheduled) it
    // stalls torch by orders of magnitude (a VAE round went from seconds to minutes at load 15):
    // there "passive", which sleeps at once. "active" spins without end, also while our side runs,
    // taking its cores (its runs time PyTorch alone, not us).
    const env: Record<string, string> = { PYTHONUNBUFFERED: "1" };
    if (ompWait !== "default") env.OMP_WAIT_POLICY = ompWait.toUpperCase();
    this.#proc = new Deno.Command(PYTHON, { args: [script, String(threads)], stdin: "piped", stdout: "piped", stderr: "inherit", env }).spawn();
    this.#w = this.#proc.stdin.getWriter();
    this.#lines = lines(this.#proc.stdout)[Symbol.asyncIterator]();
  }
  async ask(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.#w.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const r = await this.#lines.next();
    if (r.done) throw new Error(`torch peer: the python process ended (request ${req.cmd})`);
    const res = JSON.parse(r.value);
    if (res.error) throw new Error(`torch peer: ${res.error}`);
    return res;
  }
  async close(): Promise<void> {
    await this.ask({ cmd: "quit" }).catch(() => {});
    await this.#w.close().catch(() => {});
    await this.#proc.status;
  }
}

async function* lines(s: ReadableStream<Uint8Array>): AsyncIterable<string> {
  let buf = "";
  const dec = new TextDecoder();
  for await (const chunk of s) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
}

/**
 * Our feature pass (the calls to adapt when the feature API changes): per-example squared
 * gradient norms of the model's default objective (the NLL; the diffusion model's, the paper's L1
 * eps-loss at t = 1), batched, B = 1, with each input's draws as the ood loop makes them.
 */
function ourFeatures(model: GenerativeModel, objective: Objective, x: T.Tensor, noise: T.Tensor | undefined) {
  return featuresBatched(model, objective, x, 1, noise);
}
function forFeatures(model: GenerativeModel, set: ImageSet, n: number): { objective: Objective; noise: T.Tensor | undefined } {
  const objective = model.objective();
  return { objective, noise: inputNoise(model, objective, set, range(0, n)) };
}

const host = async (t: T.Tensor) => Float32Array.from(await t.data());
const named = (name: string, shape: readonly number[], data: ArrayLike<number>): NamedTensor => ({ name, shape: [...shape], data: Float32Array.from(data) });

/**
 * The Glow's fixed parts of W = P L U: the weight with lower, upper and logs set to zero is
 * P diag(sign) (entries 0 and +-1), read from the model itself, so whatever the model holds
 * (rebuilt from a seed, or read from the file) is what PyTorch gets.
 */
async function invconvConstants(model: GenerativeModel): Promise<NamedTensor[]> {
  const out: NamedTensor[] = [];
  for (const m of model.modules()) {
    if (!(m instanceof InvConv1x1)) continue;
    const n = m.channels, prefix = m.lower.name.replace(/\.lower$/, "");
    const zeros = new Map([m.lower, m.upper, m.logs].map((p) => [p, T.keep(T.zerosLike(p))]));
    const w = withParameters(model, zeros, () => T.noGrad(() => m.weight()));
    const d = await host(w);
    w.dispose();
    zeros.forEach((z) => z.dispose());
    const perm = new Float32Array(n * n), sign = new Float32Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      perm[i * n + j] = Math.abs(d[i * n + j]);
      sign[j] += d[i * n + j];
    }
    out.push(named(`${prefix}.perm`, [n, n], perm), named(`${prefix}.sign`, [n], sign));
  }
  return out;
}

/** One work of one model on one of our backends: the timed run, our numbers for the parity check, and what the peer needs. */
export interface OurWork {
  run: () => Promise<unknown>;
  check: () => Promise<{ sq?: Float64Array; nll?: Float64Array; stepLoss?: number }>;
  /** Parameter names, in the features' order. */
  names: string[];
  /** Every parameter, the Glow's fixed permutations and signs, the inputs and noise ("data.*"), for the peer. */
  tensors: () => Promise<NamedTensor[]>;
  meta: Record<string, unknown>;
}

/**
 * The paper's feature pass for 64 test images, or a training step as bench/train_step.ts does it
 * (objective, backward, clipping to 100, Adam 1e-4, readback) on a fixed batch of the training
 * set (64 images; 32 for the diffusion model, its eps-loss at one uniform step per image).
 */
export async function ourWork(path: string, work: "features" | "step", backend: Backend): Promise<OurWork> {
  const model = await loadModel(path, backend);
  const params = model.namedParameters();
  const meta: Record<string, unknown> = { kind: model.kind, config: model.config, names: params.map(([n]) => n), dims: model.dims };
  const data: [string, readonly number[], () => Promise<ArrayLike<number>>][] = [];
  const tensor = (name: string, t: T.Tensor) => data.push([name, t.shape, () => host(t)]);
  const fixed = (name: string, shape: number[], v: ArrayLike<number>) => data.push([name, shape, () => Promise.resolve(v)]);
  // taken before any step changes the parameters
  const weights = [...await Promise.all(params.map(async ([n, p]) => named(n, p.shape, await host(p)))), ...await invconvConstants(model)];
  const tensors = async () => [...weights, ...await Promise.all(data.map(async ([n, shape, v]) => named(n, shape, await v())))];
  const diffusion = model instanceof Diffusion ? model : null;
  if (work === "features") {
    const test = loadDataset("fashion", "test");
    const x = model.input(test, range(0, N));
    const { objective, noise } = forFeatures(model, test, N);
    tensor("data.x", x);
    if (noise) tensor("data.noise", noise);
    if (diffusion) {
      // the eps-loss objectives are named "<l1|l2>-t<step>"
      const m = /^(l1|l2)-t(\d+)$/.exec(objective.name);
      if (!m) throw new Error(`torch peer: the diffusion model's objective '${objective.name}' is not an eps-loss at one step`);
      const t = Number(m[2]), a = diffusion.process.abar[t - 1];
      fixed("data.temb", [N, diffusion.cfg.dim], timeEmbedding(new Array(N).fill(t), diffusion.cfg.dim));
      fixed("data.ca", [N], new Array(N).fill(Math.sqrt(a)));
      fixed("data.cb", [N], new Array(N).fill(Math.sqrt(1 - a)));
      meta.featureLoss = m[1];
    }
    const check = async () => {
      const f = await ourFeatures(model, objective, x, noise);
      return { sq: f.sq, nll: f.value };
    };
    return { run: () => ourFeatures(model, objective, x, noise), check, names: meta.names as string[], tensors, meta };
  }
  const B = diffusion ? 32 : 64;
  const gen = stepGen(0, 0);
  const x = model.input(loadDataset("fashion", "train"), range(0, B), gen);
  tensor("data.step_x", x);
  let objective: () => T.Tensor;
  if (diffusion) {
    const t = Array.from({ length: B }, () => 1 + gen.int(diffusion.process.T));
    const eps = T.randn(gen, [...x.shape], { backend, dtype: x.dtype });
    objective = () => T.mean(diffusion.ops.epsLoss(x, t, eps, diffusion.cfg.trainLoss));
    const ab = t.map((s) => diffusion.process.abar[s - 1]);
    tensor("data.step_noise", eps);
    fixed("data.step_temb", [B, diffusion.cfg.dim], timeEmbedding(t, diffusion.cfg.dim));
    fixed("data.step_ca", [B], ab.map(Math.sqrt));
    fixed("data.step_cb", [B], ab.map((a) => Math.sqrt(1 - a)));
    meta.trainLoss = diffusion.cfg.trainLoss;
  } else {
    // the trainer's objective, the NLL in bits/dim, with the VAE's latent draws fixed
    const nll = model.objective(), shape = nll.noiseShape(B);
    const noise = shape ? T.randn(gen, shape, { backend, dtype: x.dtype }) : undefined;
    objective = () => T.div(T.mean(nll.value(x, noise)), model.dims * LN2);
    if (noise) tensor("data.step_noise", noise);
  }
  const l0 = T.noGrad(objective);
  const first = (await l0.data())[0];
  l0.dispose();
  const ps = params.map(([, p]) => p);
  const opt = new Adam(ps, { lr: 1e-4 });
  model.train();
  const run = async () => {
    const loss = T.tidy(() => {
      const l = objective();
      for (const p of ps) p.zeroGrad();
      l.backward();
      return l;
    });
    const norm = clipGradNorm(ps, 100);
    opt.update();
    await Promise.all([loss.item(), norm.item()]);
    loss.dispose();
    norm.dispose();
  };
  return { run, check: () => Promise.resolve({ stepLoss: first }), names: meta.names as string[], tensors, meta };
}

interface Side {
  /** One timed run of each of our engines. */
  ours: Map<string, () => Promise<unknown>>;
  names: string[];
  check: OurWork["check"];
}

/** One model on our engines and in the peer (its file written to dir), for one work. */
async function prepare(path: string, work: "features" | "step", backends: [string, Backend][], dir: string, id: string, peer: Peer): Promise<Side> {
  const ours = new Map<string, () => Promise<unknown>>();
  const ws: OurWork[] = [];
  for (const [engine, backend] of backends) {
    const w = await ourWork(path, work, backend);
    ours.set(engine, w.run);
    ws.push(w);
  }
  const file = `${dir}/${id}.safetensors`;
  Deno.writeFileSync(file, encodeSafetensors(await ws[0].tensors()));
  await peer.ask({ cmd: "load", id, file, meta: ws[0].meta });
  return { ours, check: ws[0].check, names: ws[0].names };
}

const label = (path: string) => path.replace(/^.*\//, "").replace(/\.safetensors$/, "");
const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];

/**
 * Largest |log ours - log theirs| over the features, and the largest relative NLL difference.
 * Features whose float64 reference is below 1e-12 of their example's largest are left out (`skipped`):
 * zero in exact arithmetic (the attention's key bias, under softmax's shift invariance), rounding noise in float32.
 */
function compare(sq: ArrayLike<number>, nll: ArrayLike<number>, theirSq: ArrayLike<number>, theirNll: ArrayLike<number>, ref: ArrayLike<number>, L: number): { log: number; nll: number; skipped: number } {
  let log = 0, rel = 0, skipped = 0;
  for (let g = 0; g < sq.length / L; g++) {
    let top = 0;
    for (let l = 0; l < L; l++) top = Math.max(top, ref[g * L + l]);
    for (let l = 0, i = g * L; l < L; l++, i++) {
      if (!(ref[i] > 1e-12 * top)) skipped++;
      else log = Math.max(log, Math.abs(Math.log(sq[i]) - Math.log(theirSq[i])));
    }
  }
  for (let i = 0; i < nll.length; i++) rel = Math.max(rel, Math.abs(nll[i] - theirNll[i]) / Math.abs(theirNll[i]));
  return { log, nll: rel, skipped };
}

/**
 * The rows as a Markdown table: times, the ratios, and the products' GFLOP/s per CPU second of
 * ours and of PyTorch's best, the latter also as a share of the wasm SIMD128 ceiling (`ceiling`,
 * GFLOP/s per CPU second on one thread): where PyTorch runs the whole row near that share, no
 * wasm kernel can match it. Then the row's products each alone (Row.products) on both sides, and
 * what the row takes besides them: for a training step, the same products on both sides; a
 * feature row's PyTorch engines run products of their own (vmap's batched rules), so there only ours.
 */
/** PyTorch's best engine on a row, wall ms ("engines") or CPU ms (Infinity where none ran). */
const bestPytorch = (r: Row, k: "engines" | "cpu" = "engines") => Math.min(...Object.entries(r[k]).filter(([e]) => e.startsWith("pytorch")).map(([, v]) => v));

/**
 * The row less its products alone, ms: ours, and PyTorch's on a training step (null on a feature
 * row, whose PyTorch engines run products of their own); null without products alone or our wasm run.
 */
function rests(r: Row): { ours: number; theirs: number | null } | null {
  if (!r.products || r.engines["fimscope wasm"] === undefined) return null;
  return { ours: r.engines["fimscope wasm"] - r.products.fimscope, theirs: r.workload.startsWith("features") ? null : bestPytorch(r) - r.products.pytorch };
}
const restCell = (x: { ours: number; theirs: number | null }) => `${x.ours.toFixed(1)} / ${x.theirs === null ? "-" : x.theirs.toFixed(1)}`;

/** A paired ratio as a table cell: "0.93x (0.85-1.02x, 97%)". */
export function pairedCell(p: Paired): string {
  return `${p.median.toFixed(2)}x (${p.lo.toFixed(2)}-${p.hi.toFixed(2)}x, ${(100 * p.coverage).toFixed(0)}%)`;
}

export function summary(rows: Row[], ceiling: number): string {
  const f = (r: Row, e: string) => r.engines[e] === undefined ? "-" : `${r.engines[e]} (${r.cpu[e]})`;
  const ours = (r: Row, k: "engines" | "cpu") => r[k]["fimscope wasm"] ?? r[k]["fimscope webgpu"];
  const rate = (r: Row, ms: number) => r.gflop * 1e3 / ms;
  const alone = (r: Row) => r.products ? `${r.products.fimscope} / ${r.products.pytorch}` : "-";
  const rest = (r: Row) => {
    const x = rests(r);
    return x ? restCell(x) : "-";
  };
  const paired = (r: Row) => {
    const p = r.paired?.["fimscope wasm"] ?? r.paired?.["fimscope webgpu"];
    return p ? pairedCell(p) : "-";
  };
  return ["", `| work | GFLOP | fimscope wasm, ms (CPU ms) | pytorch loop | pytorch vmap | best pytorch / fimscope: wall | round by round: median (interval, coverage) | CPU | GFLOP/s per CPU-second: fimscope | best pytorch (share of the wasm ceiling, ${ceiling.toFixed(1)}) | products alone, ms: fimscope / pytorch | the rest, ms: fimscope / pytorch |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.workload} | ${r.gflop.toFixed(2)} | ${f(r, "fimscope wasm")} | ${f(r, "pytorch loop")} | ${f(r, "pytorch vmap")} | ${(bestPytorch(r, "engines") / ours(r, "engines")).toFixed(2)}x | ${paired(r)} | ${(bestPytorch(r, "cpu") / ours(r, "cpu")).toFixed(2)}x | ` +
      `${rate(r, ours(r, "cpu")).toFixed(1)} | ${rate(r, bestPytorch(r, "cpu")).toFixed(1)} (${(100 * rate(r, bestPytorch(r, "cpu")) / ceiling).toFixed(0)}%) | ${alone(r)} | ${rest(r)} |`)].join("\n");
}

/**
 * Where each row's gap is, from its products alone (Row.products): the products' least time at
 * the wasm ceiling (the row's GFLOP over both cores at `ceiling` GFLOP/s per CPU second: 2 x),
 * ours as a share of it, the rest (the row less its products; PyTorch's on the steps only, where
 * both sides run the same products), and "to tie": the share of the ceiling ours would need on
 * every product for the row to tie PyTorch's best with our rest as it is (above 100%: no wasm
 * kernel could; "cannot" where our rest alone is longer than PyTorch's whole row). With the
 * shapes (--shapes), the row were each of our products as fast as PyTorch's kernel on it, or, where
 * that kernel is faster than any wasm kernel could be, at the ceiling (ours where already faster),
 * our rest as it is: its time and best PyTorch over it (below 1.0: matching PyTorch's kernels
 * wherever 4 lanes allow would not tie the row). bench/README.md's products-alone table.
 */
export function analysis(rows: Row[], ceiling: number, threads = 2): string {
  const out = ["", `| row | products alone, ms: fimscope / pytorch | our products at the ceiling (${threads} x ${ceiling.toFixed(1)} GFLOP/s), ms | our products' share of the ceiling | the rest, ms: fimscope / pytorch | to tie | each product at PyTorch's speed or the ceiling's, whichever is slower: products + our rest = the row, ms (best pytorch / that) |`,
    "| --- | --- | --- | --- | --- | --- | --- |"];
  /** The least time, ms, for `gflop` of products on every thread at the ceiling. */
  const atCeiling = (gflop: number) => gflop * 1e3 / (threads * ceiling);
  for (const r of rows) {
    const x = rests(r), best = bestPytorch(r);
    if (!x || !r.products || !Number.isFinite(best) || !(ceiling > 0)) continue;
    const at = atCeiling(r.gflop), left = best - x.ours;
    const tie = left > 0 ? `${(100 * at / left).toFixed(0)}%` : `cannot: our rest alone (${x.ours.toFixed(1)}) is longer than PyTorch's best (${best})`;
    const sh = r.products.shapes;
    const matched = sh?.length ? sh.reduce((t, s) => t + s.n * Math.min(s.fimscope, Math.max(s.pytorch, atCeiling(s.gflop))), 0) : null;
    const shapeCell = matched === null ? "-" : `${matched.toFixed(1)} + ${x.ours.toFixed(1)} = ${(matched + x.ours).toFixed(1)} (${(best / (matched + x.ours)).toFixed(2)}x)`;
    out.push(`| ${r.workload} | ${r.products.fimscope} / ${r.products.pytorch} | ${at.toFixed(1)} | ${(100 * at / r.products.fimscope).toFixed(0)}% | ${restCell(x)} | ${tie} | ${shapeCell} |`);
  }
  return out.length > 3 ? out.join("\n") : "";
}

export interface TorchResult {
  rows: Row[];
  /** The wasm SIMD128 ceiling measured at the start (bench/peak.ts): GFLOP/s per CPU second on one thread; 0 when skipped. */
  ceiling: number;
}

/** The comparison rows (run.ts's format) and the ceiling. Throws when the two sides disagree. */
export async function torchBench(o: TorchOptions): Promise<TorchResult> {
  const missing = await torchMissing();
  if (missing) {
    o.log(`pytorch peer skipped: ${missing}`);
    return { rows: [], ceiling: 0 };
  }
  const backends: [string, Backend][] = [];
  if (o.engines.includes("fimscope wasm")) backends.push(["fimscope wasm", await createWasmBackend({ threads: o.threads })]);
  if (o.engines.includes("fimscope webgpu")) {
    try {
      const { createWebGPUBackend } = await import("../src/kernels/webgpu/backend.ts");
      const gpu = await createWebGPUBackend();
      backends.push(["fimscope webgpu", gpu]);
      o.log(`webgpu adapter: ${gpu.description}`);
    } catch (e) {
      o.log(`fimscope webgpu left out: no WebGPU (${(e as Error).message.split("\n")[0]})`);
    }
  }
  const peer = new Peer(o.threads, o.ompWait ?? "default");
  const dir = Deno.makeTempDirSync({ prefix: "fimscope-torch-" });
  const rows: Row[] = [];
  try {
    const hello = await peer.ask({ cmd: "hello" });
    o.log(`pytorch ${hello.torch} (${hello.capability || "cpu"}), ${hello.threads} threads, OMP_WAIT_POLICY ${o.ompWait ?? "default"}; ours: ${backends.map(([e, b]) => `${e} (${(b as { description?: string }).description ?? b.name})`).join(", ")}`);
    o.log(`${o.rounds} interleaved rounds (+1 warm-up), engine order alternating${o.warm ? `, each timed run after ${o.warm} untimed run${o.warm > 1 ? "s" : ""} of its engine` : ""}; medians, wall and process CPU time`);
    const peak = singleThreadPeak();
    o.log(`the wasm SIMD128 ceiling (bench/peak.ts: 12 independent f32x4.relaxed_madd chains, one thread): ${peak.cpu.toFixed(1)} GFLOP/s per CPU second`);
    const torchEngines = o.engines.filter((e) => e.startsWith("pytorch"));
    for (const path of o.models) {
      for (const work of o.work) {
        const id = `${label(path)}-${work}`;
        const side = await prepare(path, work, backends, dir, id, peer);
        // parity: the same numbers on both sides before anything is timed
        const mine = await side.check();
        const theirs = await peer.ask({ cmd: "check", id, work });
        if (work === "features") {
          // Against the float64 reference (the peer's loop in double precision). Float32 itself limits
          // how close anyone gets: PyTorch's own float32 loop is 1.3e-2 off on the shipped Glow. So:
          // ours to the reference within 1e-3 or PyTorch's best float32 error, whichever is larger;
          // each PyTorch engine to ours within 1e-3 plus its own error; NLLs to 1e-5.
          const sqRef = theirs.sqRef as number[], nllRef = theirs.nllRef as number[], L = side.names.length;
          const ref = compare(mine.sq!, mine.nll!, sqRef, nllRef, sqRef, L);
          const own: Record<string, { log: number; nll: number }> = {}, vs: Record<string, { log: number; nll: number }> = {};
          for (const e of ["Loop", "Vmap"] as const) {
            const sq = theirs[`sq${e}`] as number[], nll = theirs[`nll${e}`] as number[];
            vs[e] = compare(mine.sq!, mine.nll!, sq, nll, sqRef, L);
            own[e] = compare(sq, nll, sqRef, nllRef, sqRef, L);
          }
          const e3 = (v: number) => v.toExponential(1);
          o.log(`  ${id}: max |log f - log f_ref| (float64 reference): ours ${e3(ref.log)}, pytorch loop ${e3(own.Loop.log)}, vmap ${e3(own.Vmap.log)}; ` +
            `ours vs pytorch loop ${e3(vs.Loop.log)}, vmap ${e3(vs.Vmap.log)}; max NLL rel. diff. ${e3(Math.max(ref.nll, vs.Loop.nll, vs.Vmap.nll))}${ref.skipped ? `; ${ref.skipped} of ${sqRef.length} features zero in the reference (below 1e-12 of their example's largest) left out` : ""}`);
          const allowed = Math.max(1e-3, Math.min(own.Loop.log, own.Vmap.log));
          if (!(ref.log <= allowed) || !(ref.nll <= 1e-5)) throw new Error(`${id}: ours and the float64 reference differ (log features ${ref.log}, NLL ${ref.nll}; allowed ${allowed} and 1e-5)`);
          for (const e of ["Loop", "Vmap"] as const) {
            if (!(vs[e].log <= 1e-3 + own[e].log) || !(vs[e].nll <= 1e-5)) throw new Error(`${id}: ours and pytorch ${e.toLowerCase()} differ (log features ${vs[e].log}, NLL ${vs[e].nll}; allowed ${1e-3 + own[e].log} and 1e-5)`);
          }
        } else {
          const rel = Math.abs(mine.stepLoss! - (theirs.stepLoss as number)) / Math.abs(theirs.stepLoss as number);
          o.log(`  ${id}: first loss ours ${mine.stepLoss!.toPrecision(8)}, pytorch ${(theirs.stepLoss as number).toPrecision(8)} (rel. diff. ${rel.toExponential(2)})`);
          if (!(rel <= 1e-5)) throw new Error(`${id}: the first step's loss differs by ${rel} (allowed 1e-5)`);
        }
        const runs: [string, () => Promise<{ wall: number; cpu: number }>][] = [];
        for (const [e, f] of side.ours) {
          runs.push([e, async () => {
            const c0 = cpuMs(), t0 = performance.now();
            await f();
            return { wall: performance.now() - t0, cpu: cpuMs() - c0 };
          }]);
        }
        for (const e of torchEngines) {
          if (work === "step" && e === "pytorch vmap") continue; // one step has no per-example part
          const engine = e.replace("pytorch ", "");
          runs.push([e, async () => (await peer.ask({ cmd: "run", id, work, engine })) as { wall: number; cpu: number }]);
        }
        // warm-up, counting the products of our first engine's run on its backend (the same work on every backend)
        const rec = recordProducts(backends[0][1]);
        try {
          for (const [, r] of runs) await r();
        } finally {
          rec.restore();
        }
        const gflop = rec.list.reduce((t, q) => t + flopsOf(q), 0) / 1e9;
        const wall: number[][] = runs.map(() => []), cpu: number[][] = runs.map(() => []);
        for (let r = 0; r < o.rounds; r++) {
          const order = runs.map((_, i) => i);
          if (r % 2) order.reverse();
          for (const i of order) {
            for (let w = 0; w < (o.warm ?? 0); w++) await runs[i][1]();
            const m = await runs[i][1]();
            wall[i].push(m.wall);
            cpu[i].push(m.cpu);
          }
        }
        const row: Row = { workload: work === "features" ? `features ${label(path)}, ${N} images` : `Adam step ${label(path)}, batch ${label(path).startsWith("diffusion") ? 32 : 64}`, gflop: +gflop.toFixed(4), engines: {}, spread: {}, cpu: {} };
        runs.forEach(([e], i) => {
          row.engines[e] = +med(wall[i]).toFixed(1);
          row.spread[e] = [+Math.min(...wall[i]).toFixed(1), +Math.max(...wall[i]).toFixed(1)];
          row.cpu[e] = +med(cpu[i]).toFixed(1);
        });
        // each of our engines against the PyTorch engine of the least median, round by round
        const best = bestPytorch(row), bi = runs.findIndex(([e]) => e.startsWith("pytorch") && row.engines[e] === best);
        if (bi >= 0) {
          row.paired = {};
          runs.forEach(([e], i) => {
            if (e.startsWith("fimscope")) row.paired![e] = pairedRatio(wall[bi], wall[i]);
          });
        }
        const wasm = backends.find(([e]) => e === "fimscope wasm")?.[1];
        let shapes: ProductShape[] = [];
        if (wasm instanceof WasmBackend && backends[0][1] === wasm && torchEngines.length) {
          const p = await productsAlone(wasm, rec.list, peer);
          const r4 = (v: number) => +v.toFixed(4);
          row.products = { fimscope: p.fimscope, pytorch: p.pytorch, ...(o.shapes ? { shapes: p.shapes.map((x) => ({ ...x, gflop: r4(x.gflop), fimscope: r4(x.fimscope), pytorch: r4(x.pytorch) })) } : {}) };
          shapes = p.shapes;
        }
        rows.push(row);
        o.log(`${row.workload} (load ${Deno.loadavg()[0].toFixed(1)})`);
        for (const [e] of runs) {
          const pr = row.paired?.[e];
          const ratio = e.startsWith("fimscope") && Number.isFinite(best) ? `  best pytorch / this: ${(best / row.engines[e]).toFixed(2)}x` +
            (pr ? `; round by round ${pairedCell(pr)}` : "") : "";
          o.log(`  ${e.padEnd(16)} ${row.engines[e].toFixed(1).padStart(8)} ms [${row.spread[e][0]}-${row.spread[e][1]}]  CPU ${row.cpu[e].toFixed(1).padStart(8)} ms  ` +
            `${(gflop * 1e3 / row.cpu[e]).toFixed(1).padStart(5)} GFLOP/s per CPU second (${(100 * gflop * 1e3 / row.cpu[e] / peak.cpu).toFixed(0)}% of the wasm ceiling)${ratio}`);
        }
        if (row.products) {
          const pr = row.products;
          o.log(`  products alone (${rec.list.length} in ${shapes.length} shapes, each alone, best of ${PRODUCT_ROUNDS} x ${PRODUCT_RUNS}, wall): fimscope wasm ${pr.fimscope} ms, pytorch ${pr.pytorch} ms (pytorch / fimscope ${(pr.pytorch / pr.fimscope).toFixed(2)}x)`);
          // with --shapes, every shape, largest gap (calls x (ours - theirs)) first
          if (o.shapes) {
            for (const x of [...shapes].sort((p, q) => q.n * (q.fimscope - q.pytorch) - p.n * (p.fimscope - p.pytorch))) {
              o.log(`    ${String(x.n).padStart(3)}x ${x.key.padEnd(44)} fimscope ${x.fimscope.toFixed(3).padStart(7)} ms (${(x.gflop * 1e3 / x.fimscope).toFixed(1).padStart(5)} GFLOP/s)  pytorch ${x.pytorch.toFixed(3).padStart(7)} ms (${(x.gflop * 1e3 / x.pytorch).toFixed(1).padStart(5)} GFLOP/s)`);
            }
          }
        }
      }
    }
    o.log(summary(rows, peak.cpu));
    const gaps = analysis(rows, peak.cpu, o.threads);
    if (gaps) o.log(gaps);
    return { rows, ceiling: +peak.cpu.toFixed(1) };
  } finally {
    await peer.close();
    if (!Deno.env.get("TORCH_KEEP")) Deno.removeSync(dir, { recursive: true });
    else o.log(`kept ${dir}`);
  }
}

if (import.meta.main) {
  await import("../src/cli/errors.ts");
  const { choice, choices, flag, inFiles, int, outFile, parseOptions } = await import("../src/io/options.ts");
  const { writeFileAtomic } = await import("../src/io/atomic.ts");
  const a = parseOptions("torch", {
    models: inFiles().default(TORCH_MODELS), work: choices(TORCH_WORK).default([...TORCH_WORK]),
    rounds: int({ min: 1, max: 1000 }).default(13), engines: choices(TORCH_ENGINES).default(["fimscope wasm", "pytorch loop", "pytorch vmap"]),
    threads: int({ min: 1, max: 64 }).default(2), json: outFile(), "omp-wait": choice(["passive", "active", "default"] as const).default("default"),
    shapes: flag(), warm: int({ min: 0, max: 100 }).default(0),
  });
  const { rows, ceiling } = await torchBench({ ...a, ompWait: a["omp-wait"], log: (l) => console.log(l) });
  if (a.json) writeFileAtomic(a.json, JSON.stringify({ ceiling, rows }, null, 2));
  Deno.exit(0);
}
