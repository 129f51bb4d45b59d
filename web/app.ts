// The page (web/index.html): one input's gradients, walked through the method step by step, on this
// browser's WebGPU, or on the gpu.js WebGL2 fallback, or on the CPU. Bundled by scripts/web/build.ts
// into dist/web.js. Every computation goes through web/engine.ts; the charts are web/views.ts; image
// files are checked and decoded by web/decode.ts. Work runs one job at a time (the engine is not
// reentrant across awaits); each job shows its progress and elapsed time, can be cancelled, and
// disables the controls that would start it again; errors appear in the panel that failed.
// URL options: ?backend=webgpu|gpujs|wasm|cpu (default: the first that works of webgpu, gpujs, cpu;
// wasm only when asked for), ?gpujs=all (the fallback runs every op it can on gpu.js, at any size),
// ?model=<id from web/models.json>. A bad value falls back to the default with a visible note.
// window.fimscope exposes the state and the actions to the browser tests (test/browser.test.ts).
import * as F from "../mod.ts";
import * as E from "./engine.ts";
import * as V from "./views.ts";
import { decodeImage, InputError } from "./decode.ts";
import { benchFallback, checkGpujs, fallbackCaseNames } from "./fallback_bench.ts";

interface ModelEntry {
  id: string;
  family: string;
  best?: boolean;
  label: string;
  weights: string;
  samples?: string;
  detector: string;
  inDistribution: string;
  ood: string;
}
interface SetEntry {
  name: string;
  file: string;
  n: number;
  c: number;
  h: number;
  w: number;
  labels: number[];
  role: string;
}

const $ = <E extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as E;
const params = new URLSearchParams(location.search);
const fmt = (v: number, d = 4) => (Number.isFinite(v) ? v.toFixed(d) : String(v));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const SET_NAMES: Record<string, string> = { fashion: "FashionMNIST", mnist: "MNIST" };
const FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

async function fetchOk(url: string, signal?: AbortSignal): Promise<Response> {
  const r = await fetch(url, { signal });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

/** A response's bytes, reporting progress where the server gives a length. */
async function fetchBytes(url: string, signal: AbortSignal, onBytes: (got: number, total: number) => void): Promise<Uint8Array> {
  const r = await fetchOk(url, signal);
  const total = Number(r.headers.get("content-length")) || 0;
  if (!r.body) return new Uint8Array(await r.arrayBuffer());
  const parts: Uint8Array[] = [];
  let got = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    onBytes(got, total);
  }
  const out = new Uint8Array(got);
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
}

// ---- state ----

const state = {
  chosen: null as E.Chosen | null,
  models: [] as ModelEntry[],
  defaultModel: "",
  entry: null as ModelEntry | null,
  loaded: null as E.Loaded | null,
  sets: new Map<string, F.ImageSet>(),
  image: null as Uint8Array | null,
  source: "",
  notes: [] as string[],
  /** The last inspection (cleared when the model changes or an input fails). */
  last: null as (E.Result & { source: string }) | null,
  /** The selected parameter tensor (null: none; the map is the score's). */
  layer: null as number | null,
  /** ms from navigation start to the first inspected input's result on screen. */
  firstResultMs: NaN,
  evaluation: null as null | { n: number; auroc: Record<string, number>; ms: number },
  bench: [] as E.BenchRow[],
  ready: false,
  /** The last error shown, and the panel it is shown in (for the tests). */
  error: "",
  errorPanel: "",
  /** Notes about the URL and the backend (shown at the top). */
  notices: [] as string[],
  jobs: [] as Job[],
};

// ---- jobs: one at a time, each with progress, elapsed time and a cancel button ----

type Panel = "model" | "input" | "sample" | "eval" | "bench";
/** The controls each panel's job disables while it is queued or running. */
const CONTROLS: Record<Panel, string[]> = { model: [], input: [], sample: ["sample-run", "sample-t"], eval: ["eval-run", "eval-n"], bench: ["bench-run"] };

interface Job {
  panel: Panel;
  what: string;
  ac: AbortController;
  t0: number;
  started: number;
  text: string;
  done: number;
  total: number;
  /** Settles when the job's work has really stopped (the engine is free). */
  finished: Promise<void>;
}

let chain: Promise<void> = Promise.resolve();

/**
 * A job's box: shown only once the job has run for a second. On a software adapter (SwiftShader)
 * every repaint during a WebGPU pass takes the CPU the pass needs: a box painted at once made a
 * 170 ms inspection take 300-1100 ms (measured), so quick jobs paint nothing until their result.
 */
const SHOW_AFTER_MS = 1000;

function showJob(j: Job) {
  const box = $(`${j.panel}-job`);
  if (state.jobs.includes(j) && performance.now() - j.t0 < SHOW_AFTER_MS) return;
  if (!state.jobs.includes(j)) {
    box.hidden = true;
    box.innerHTML = "";
    return;
  }
  if (!box.querySelector("progress")) {
    box.innerHTML = `<progress max="1" aria-label="progress: ${j.what}"></progress> <span class="job-text" role="status" aria-live="polite"></span> <button type="button" class="cancel">cancel ${j.what}</button>`;
    box.querySelector("button")!.addEventListener("click", () => cancel(j.panel));
  }
  box.hidden = false;
  // No indeterminate bar: its animation would repaint all the time. Without a count the text and
  // the elapsed time show.
  const bar = box.querySelector("progress")!;
  bar.hidden = !(j.total > 0);
  if (j.total > 0) bar.value = j.done / j.total;
  const el = j.started ? performance.now() - j.started : 0;
  const waiting = !j.started ? `waiting for ${state.jobs.filter((o) => o.started).map((o) => o.what).join(", ") || "the previous step"} to finish` : "";
  box.querySelector(".job-text")!.textContent = `${j.what}: ${waiting || j.text}${j.started ? `, ${secs(el)}` : ""}`;
}

function setControls(panel: Panel) {
  const busy = state.jobs.some((j) => j.panel === panel);
  for (const id of CONTROLS[panel]) ($(id) as HTMLButtonElement | HTMLInputElement).disabled = busy;
}

/**
 * Queues `work` behind the running job. Resolves with its result; rejects with its error (shown
 * inline in the panel) or an AbortError when cancelled (shown as a status line).
 */
function startJob<T>(panel: Panel, what: string, work: (j: Job, signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let markFinished!: () => void;
  const j: Job = { panel, what, ac, t0: performance.now(), started: 0, text: "starting", done: 0, total: 0, finished: new Promise((r) => (markFinished = r)) };
  state.jobs.push(j);
  setControls(panel);
  hideError(panel);
  showJob(j);
  const tick = setInterval(() => showJob(j), 1000);
  const run = async (): Promise<T> => {
    try {
      ac.signal.throwIfAborted();
      j.started = performance.now();
      showJob(j);
      return await work(j, ac.signal);
    } finally {
      markFinished();
    }
  };
  const p = chain.then(run);
  chain = p.then(() => {}, () => {});
  const end = () => {
    clearInterval(tick);
    state.jobs = state.jobs.filter((o) => o !== j);
    showJob(j);
    setControls(panel);
  };
  // A cancel takes the job off the screen at once; the engine's chain still waits for it to stop
  // (a job cancelled before it started has nothing to stop).
  ac.signal.addEventListener("abort", () => {
    end();
    if (!j.started) markFinished();
  });
  return p.then((v) => (end(), v), (e) => {
    end();
    if (ac.signal.aborted) {
      const status = $(`${panel}-status`) as HTMLElement | null;
      if (status) status.textContent = `${what}: cancelled after ${secs(performance.now() - j.t0)}`;
      throw new DOMException(`${what} cancelled`, "AbortError");
    }
    showError(panel, e);
    throw e;
  });
}

/** Records a job's progress; its box shows it at the next second's tick (one repaint a second at most). */
function progress(j: Job, done: number, total: number, text: string) {
  Object.assign(j, { done, total, text });
}

/** Cancels a panel's jobs (all panels' when none is given); resolves when their work has stopped. */
async function cancel(panel?: Panel): Promise<void> {
  const js = state.jobs.filter((j) => !panel || j.panel === panel);
  for (const j of js) j.ac.abort(new DOMException(`${j.what} cancelled`, "AbortError"));
  await Promise.all(js.map((j) => j.finished));
}

const idle = async () => {
  while (state.jobs.length) await Promise.all(state.jobs.map((j) => j.finished));
  await chain;
};

function showError(panel: string, e: unknown) {
  const msg = String((e as Error)?.message ?? e);
  state.error = msg;
  state.errorPanel = panel;
  const box = $(`${panel}-error`);
  if (box) {
    box.textContent = msg;
    box.hidden = false;
  } else $("notices").textContent = `error: ${msg}`;
  console.error(e);
}

function hideError(panel: string) {
  const box = $(`${panel}-error`);
  if (box) {
    box.hidden = true;
    box.textContent = "";
  }
  if (state.errorPanel === panel) (state.error = "", state.errorPanel = "");
}

const isAbort = (e: unknown) => (e as Error)?.name === "AbortError";
/** For UI handlers: errors are already shown in their panel. */
const quiet = (p: Promise<unknown>) => p.catch(() => {});

// ---- drawing helpers ----

function drawGray(canvas: HTMLCanvasElement, img: ArrayLike<number>, w = 28, h = 28) {
  const ctx = canvas.getContext("2d")!;
  const id = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    id.data[4 * i] = id.data[4 * i + 1] = id.data[4 * i + 2] = img[i];
    id.data[4 * i + 3] = 255;
  }
  const tmp = new OffscreenCanvas(w, h);
  tmp.getContext("2d")!.putImageData(id, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

/** 98th percentile of |value|: where the saliency map's colours saturate. */
function saliencyScale(s: ArrayLike<number>): number {
  const mags = Array.from(s, Math.abs).sort((a, b) => a - b);
  return mags[Math.floor(0.98 * (mags.length - 1))] || mags[mags.length - 1] || 0;
}

/** Red where raising the pixel raises the target, blue where it lowers it, white at zero; saturating at ±m. */
function drawSaliency(canvas: HTMLCanvasElement, s: ArrayLike<number>, m: number) {
  const side = Math.round(Math.sqrt(s.length));
  const id = new ImageData(side, side);
  for (let i = 0; i < s.length; i++) {
    const v = m > 0 ? s[i] / m : 0, a = Math.round(255 * Math.min(1, Math.abs(v)));
    id.data[4 * i] = v > 0 ? 255 : 255 - a;
    id.data[4 * i + 1] = 255 - a;
    id.data[4 * i + 2] = v < 0 ? 255 : 255 - a;
    id.data[4 * i + 3] = 255;
  }
  const tmp = new OffscreenCanvas(side, side);
  tmp.getContext("2d")!.putImageData(id, 0, 0);
  const ctx = canvas.getContext("2d")!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  canvas.dataset.max = String(Math.max(...Array.from(s, Math.abs)));
  canvas.dataset.scale = String(m);
}

// ---- the model ----

function modelLabel(m: ModelEntry) {
  return `${m.label}${m.best ? " (best of its family)" : ""}`;
}

function fillModelSelect() {
  const sel = $<HTMLSelectElement>("model");
  const families = [...new Set(state.models.map((m) => m.family))];
  sel.innerHTML = families.map((f) => `<optgroup label="${V.esc(f)}">` +
    state.models.filter((m) => m.family === f).map((m) => `<option value="${m.id}">${V.esc(modelLabel(m))}</option>`).join("") + "</optgroup>").join("");
}

/** Clears every output of the previous model (samples, evaluation, the result) before a switch. */
function clearModelOutputs() {
  state.last = null;
  state.layer = null;
  state.evaluation = null;
  $("eval-out").innerHTML = "";
  $("eval-status").textContent = "";
  $<HTMLCanvasElement>("live-samples").hidden = true;
  $("sample-status").textContent = "";
  $("samples-box").className = "placeholder";
  $("samples-box").textContent = "loading the model's sample grid…";
  $("samples-note").textContent = "";
  clearResult("Loading the model…");
  $("model-info").textContent = "";
  ["sample", "eval", "input"].forEach(hideError);
}

function loadModel(id: string): Promise<void> {
  const entry = state.models.find((m) => m.id === id);
  if (!entry) return Promise.reject(new Error(`model ${id}: not in web/models.json (have ${state.models.map((m) => m.id).join(", ")})`));
  $<HTMLSelectElement>("model").value = id; // also when chosen through window.fimscope
  return startJob("model", `loading ${entry.label}`, async (j, signal) => {
    const t0 = performance.now();
    const bytes = await fetchBytes(entry.weights, signal, (got, total) => progress(j, got, total, `weights ${(got / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`));
    progress(j, 1, 1, "building the model and checking its detector file");
    const detector = await (await fetchOk(entry.detector, signal)).json();
    signal.throwIfAborted();
    const loaded = await E.loadModel(bytes, detector, entry.weights, entry.detector, state.chosen!.backend);
    if (signal.aborted) {
      E.disposeModel(loaded);
      signal.throwIfAborted();
    }
    E.disposeModel(state.loaded);
    state.entry = entry;
    state.loaded = loaded;
    renderModel(performance.now() - t0);
  });
}

function renderModel(ms: number) {
  const { entry, loaded } = state;
  if (!entry || !loaded) return;
  const md = loaded.metadata, m = loaded.measure;
  const fitN = loaded.file.fit.groups, calN = loaded.file.calibration?.groups;
  $("model-info").innerHTML = `<b>${V.esc(entry.label)}</b>: ${md.kind}, ${loaded.parameters.toLocaleString("en")} parameters in ${loaded.layers.length} tensors, ` +
    `trained ${md.steps ?? "?"} steps; test NLL <b id="bpd">${md.test_bpd ?? "?"}</b> bits/dim` + (loaded.model.objective("nll").measure.short !== "NLL" ? " (its variational bound)" : "") +
    (md.test_eval_n ? ` on ${md.test_eval_n} test images` : "") + `. Detector fitted on ${fitN} ${SET_NAMES[entry.inDistribution] ?? entry.inDistribution} test images` +
    (calN ? `, threshold set on ${calN} others` : "") + `. Loaded in ${ms.toFixed(0)} ms.`;
  document.querySelectorAll(".measure-name").forEach((e) => (e.textContent = m.name));
  document.querySelectorAll(".indist").forEach((e) => (e.textContent = SET_NAMES[entry.inDistribution] ?? entry.inDistribution));
  document.querySelectorAll(".fit-n").forEach((e) => (e.textContent = String(fitN)));
  $("measure-unit").textContent = m.unit;
  $("measure-about").textContent = m.about;
  $("measure-formula").textContent = m.kind === "eps-loss"
    ? "ε-loss(x) = mean over pixels of |ε − ε̂(√ᾱ₁ x + √(1 − ᾱ₁) ε, t = 1)|, one fixed draw ε ~ N(0, I)"
    : "NLL(x) = −log p(x); in bits per pixel: NLL / (784 ln 2)";
  // Measured on the FashionMNIST Glows (docs/page.md).
  $("glow-edges").hidden = !(entry.family === "Glow" && entry.inDistribution === "fashion");
  // The layer list: one group per block.
  const blocks = [...new Set(loaded.layers.map((l) => l.block))];
  $<HTMLSelectElement>("layer").innerHTML = `<option value="">none (the map shows the score)</option>` + blocks.map((b) => `<optgroup label="${V.esc(V.shortBlock(b))}">` +
    loaded.layers.filter((l) => l.block === b).map((l) => `<option value="${l.index}">${V.esc(l.name)} [${l.shape.join("×")}]</option>`).join("") + "</optgroup>").join("");
  $("eval-h").textContent = `OOD evaluation on a small sample: ${SET_NAMES[entry.inDistribution]} against ${SET_NAMES[entry.ood]}`;
  labelSets();
  const takesTemperature = (loaded.model.sampleOptions as readonly string[]).includes("temperature");
  $("sample-t").parentElement!.querySelector("label")!.textContent = takesTemperature ? "temperature" : "temperature (the Glow's only)";
  $("sample-run").textContent = `draw ${E.sampleCount(loaded.model)} new samples here` + (E.sampleCount(loaded.model) < 16 ? ` (${E.DDIM_STEPS} DDIM steps each)` : "");
  // The shipped sample grid: a placeholder until it has loaded, never a broken image.
  const box = $("samples-box");
  if (entry.samples) {
    const img = new Image();
    img.alt = `a grid of samples from ${entry.label}, made when it was trained`;
    img.onload = () => {
      if (state.entry !== entry) return;
      box.className = "";
      box.replaceChildren(img);
      $("samples-note").textContent = "samples from the model (weights/*-samples.png, made by src/cli/samples.ts)";
    };
    img.onerror = () => {
      if (state.entry === entry) box.textContent = `the sample grid ${entry.samples} could not be loaded`;
    };
    img.src = entry.samples;
  } else box.textContent = "no sample grid is shipped for this model";
}

// ---- test images ----

async function loadSets() {
  const meta = await (await fetchOk("/web/data/sets.json")).json() as { sets: SetEntry[] };
  for (const s of meta.sets) {
    const bytes = new Uint8Array(await (await fetchOk(`/web/data/${s.file}`)).arrayBuffer());
    state.sets.set(s.name, F.makeSet(s.name, bytes, Uint8Array.from(s.labels), s.c, s.h, s.w));
  }
  const sel = $<HTMLSelectElement>("set");
  sel.innerHTML = meta.sets.map((s) => `<option value="${s.name}">${SET_NAMES[s.name] ?? s.name}</option>`).join("");
  sel.onchange = () => showThumbs(sel.value);
}

/** The test-set list names each set's role for the model shown (an MNIST model's in-distribution set is MNIST). */
function labelSets() {
  const entry = state.entry;
  if (!entry) return;
  for (const o of $<HTMLSelectElement>("set").options) {
    o.textContent = `${SET_NAMES[o.value] ?? o.value}: ${o.value === entry.inDistribution ? "in-distribution" : "OOD"} for this model`;
  }
}

function imageOf(set: string, i: number): Uint8Array {
  const s = state.sets.get(set);
  if (!s) throw new Error(`no test set '${set}'`);
  if (!(Number.isInteger(i) && i >= 0 && i < s.n)) throw new Error(`${set}: image ${i} out of range [0, ${s.n})`);
  const d = s.c * s.h * s.w;
  return s.images.slice(i * d, (i + 1) * d);
}

const labelOf = (set: string, i: number) => {
  const l = state.sets.get(set)!.labels[i];
  return set === "fashion" ? FASHION[l] : `digit ${l}`;
};

/** 40 thumbnails as buttons; one tab stop, arrow keys move between them (a roving tabindex). */
function showThumbs(set: string) {
  const box = $("thumbs");
  box.innerHTML = "";
  for (let i = 0; i < 40; i++) {
    const b = document.createElement("button");
    b.type = "button";
    b.tabIndex = i === 0 ? 0 : -1;
    b.setAttribute("aria-pressed", "false");
    b.setAttribute("aria-label", `${SET_NAMES[set] ?? set} test image ${i}, ${labelOf(set, i)}`);
    b.dataset.index = String(i);
    const c = document.createElement("canvas");
    c.width = c.height = 28;
    drawGray(c, imageOf(set, i));
    b.appendChild(c);
    b.onclick = () => {
      box.querySelectorAll("button").forEach((x) => (x.setAttribute("aria-pressed", "false"), x.tabIndex = -1));
      b.setAttribute("aria-pressed", "true");
      b.tabIndex = 0;
      quiet(inspect(imageOf(set, i), `${set} #${i}`));
    };
    box.appendChild(b);
  }
  box.onkeydown = (e) => {
    const all = [...box.querySelectorAll("button")], k = all.indexOf(document.activeElement as HTMLButtonElement);
    if (k < 0) return;
    const cols = Math.max(1, Math.round(box.clientWidth / (all[0].offsetWidth + 3)));
    const to = { ArrowRight: k + 1, ArrowLeft: k - 1, ArrowDown: k + cols, ArrowUp: k - cols, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const t = all[Math.max(0, Math.min(all.length - 1, to))];
    all.forEach((x) => (x.tabIndex = -1));
    t.tabIndex = 0;
    t.focus();
  };
}

// ---- one input ----

function saliencyTarget(): F.SaliencyTarget {
  return state.layer === null ? "score" : state.layer;
}

/** Inspects an image: a new input supersedes one still being inspected. */
function inspect(image: Uint8Array, source: string, notes: string[] = []): Promise<E.Result & { source: string }> {
  const prev = state.jobs.filter((j) => j.panel === "input");
  prev.forEach((j) => j.ac.abort(new DOMException("superseded by a newer input", "AbortError")));
  $("input-notes").textContent = notes.join(" ");
  const job = startJob("input", `inspecting ${source}`, async (j, signal) => {
    const loaded = state.loaded;
    if (!loaded) throw new Error("no model loaded");
    progress(j, 0, 0, `NLL, ${loaded.layers.length} gradient norms and the saliency map (forward, backward, double backward)`);
    await new Promise((r) => setTimeout(r, 0));
    const r = await E.inspect(loaded, image, saliencyTarget());
    signal.throwIfAborted(); // the pass cannot stop midway: its result is dropped
    if (state.loaded !== loaded) throw new DOMException("the model changed", "AbortError");
    state.image = image;
    state.source = source;
    state.notes = notes;
    state.last = { ...r, source };
    renderResult();
    if (Number.isNaN(state.firstResultMs)) state.firstResultMs = performance.now();
    return state.last;
  });
  // A failed inspection leaves no stale result beside its error.
  job.catch((e) => isAbort(e) || clearResult(`No result: ${(e as Error)?.message ?? e}`));
  return job;
}

function clearResult(why: string) {
  state.last = null;
  $("summary").textContent = why;
  for (const id of ["arch", "bands", "zbars", "hist", "sal-legend"]) $(id).innerHTML = "";
  for (const id of ["nll", "percentile", "score-parts", "timing"]) $(id).textContent = "-";
  $("verdict").textContent = "-";
  $("verdict").className = "big";
  $("input-source").textContent = "-";
  $("layer-info").innerHTML = "";
  for (const id of ["input-view", "saliency"]) {
    const c = $<HTMLCanvasElement>(id);
    c.getContext("2d")!.clearRect(0, 0, c.width, c.height);
  }
}

function layerView(): V.LayerView | null {
  const { loaded, last } = state;
  if (!loaded || !last) return null;
  return { layers: loaded.layers, z: last.z, logf: last.logf, mean: loaded.det.mean, variance: loaded.det.variance, kept: new Set(loaded.det.kept), selected: state.layer };
}

function verdictText(r: E.Result, det: E.DiagonalView) {
  return r.inDistribution
    ? `✓ in-distribution: score ${fmt(r.score, 1)} ≥ threshold ${fmt(det.threshold, 1)}`
    : `⚠ out of distribution: score ${fmt(r.score, 1)} < threshold ${fmt(det.threshold, 1)}`;
}

function renderResult() {
  const { loaded, last: r, entry } = state;
  if (!loaded || !r || !entry) return;
  const det = loaded.det, m = loaded.measure;
  const home = SET_NAMES[entry.inDistribution] ?? entry.inDistribution;
  $("summary").innerHTML = `<b>${V.esc(r.source)}</b> under ${V.esc(entry.label)}: <span class="${r.inDistribution ? "in" : "out"}">${V.esc(verdictText(r, det))}</span>` +
    ` (${m.name} ${fmt(r.value, m.kind === "nll" ? 3 : 4)} ${m.unit})`;
  drawGray($<HTMLCanvasElement>("input-view"), state.image!);
  $("input-source").textContent = r.source;
  $("nll").textContent = fmt(r.value, 4);
  $("nll").title = r.measure.label;
  const out = r.z.filter((z) => Math.abs(z) > 2).length;
  $("score-parts").textContent = `score ${fmt(r.score, 2)} = −½ Σ z² (${fmt(r.quadratic, 2)}) + the fit's constant −½ Σ log 2πσ² (${fmt(r.constant, 2)}), over ${det.kept.length} scored tensors; ` +
    `${out} of them have |z| > 2.`;
  $("percentile").textContent = `This input's score is at the ${r.percentile.toFixed(0)}th percentile of ${loaded.file.calibration?.groups ?? loaded.file.fit.groups} held-out ${home} images.`;
  const v = $("verdict");
  v.textContent = verdictText(r, det);
  v.className = `big ${r.inDistribution ? "in" : "out"}`;
  $("timing").textContent = `${r.ms.toFixed(0)} ms for this input on ${state.chosen!.label} (forward, backward, double backward for the map)`;
  renderCharts();
  renderSaliency();
}

let lastWidth = 0;
function renderCharts() {
  const v = layerView();
  if (!v || !state.loaded || !state.last) return;
  const width = (id: string) => Math.max(280, $(id).clientWidth || 600);
  $("arch").innerHTML = V.architecture(v, width("arch"), state.loaded.model.kind);
  $("bands").innerHTML = V.fitBands(v, width("bands"));
  $("zbars").innerHTML = V.zBars(v, width("zbars"), "zb");
  $("hist").innerHTML = V.scoreHistogram(state.loaded.quantiles, state.last.score, state.loaded.det.threshold, Math.min(720, width("hist")), "sh");
  lastWidth = $("walk").clientWidth;
  renderLayerInfo(state.layer);
}

function renderLayerInfo(l: number | null) {
  const { loaded, last } = state;
  const dl = $("layer-info");
  if (!loaded || !last || l === null) {
    $("layer-h").textContent = "Selected tensor";
    dl.innerHTML = `<dt>none</dt><dd>click a bar, a box or a band, or use the list in step 2</dd>`;
    return;
  }
  const L = loaded.layers[l], kept = loaded.det.kept.includes(l), sd = Math.sqrt(loaded.det.variance[l]);
  $("layer-h").textContent = `Selected tensor ${l + 1} of ${loaded.layers.length}`;
  const rows: [string, string][] = [
    ["name", L.name], ["block", V.shortBlock(L.block)], ["shape", L.shape.join(" × ")], ["parameters", L.size.toLocaleString("en")],
    ["log f_l", fmt(last.logf[l], 3)], ["fit μ ± σ", kept ? `${fmt(loaded.det.mean[l], 3)} ± ${fmt(sd, 3)}` : "not scored (zero fit variance)"],
    ["z", kept ? fmt(last.z[l], 2) + (Math.abs(last.z[l]) > 2 ? " (|z| > 2)" : "") : "–"], ["its term in the score", kept ? fmt(-0.5 * last.z[l] ** 2, 2) : "–"],
  ];
  dl.innerHTML = rows.map(([a, b]) => `<dt>${a}</dt><dd>${V.esc(b)}</dd>`).join("");
}

function renderSaliency() {
  const r = state.last, loaded = state.loaded;
  if (!r?.saliency || !loaded) return;
  const m = saliencyScale(r.saliency);
  drawSaliency($<HTMLCanvasElement>("saliency"), r.saliency, m);
  $("sal-legend").innerHTML = V.saliencyLegend(m, $("layer-card").clientWidth - 20);
  const t = r.saliencyTarget;
  const cap = t === "score" ? "saliency: d score / d pixel" : `saliency: d log f_l / d pixel of ${loaded.layers[t as number].name}`;
  $("sal-caption").textContent = cap;
  $("saliency").setAttribute("aria-label", `${cap}; colour scale below`);
  $<HTMLCanvasElement>("saliency").dataset.target = String(t);
  $<HTMLButtonElement>("sal-score").disabled = t === "score";
}

/** Selects a tensor everywhere (bars, bands, architecture, list, card) and recomputes the map for it; null: the score's map. */
function selectLayer(l: number | null): Promise<unknown> {
  const loaded = state.loaded;
  if (!loaded) return Promise.reject(new Error("no model loaded"));
  if (l !== null && !(Number.isInteger(l) && l >= 0 && l < loaded.layers.length)) return Promise.reject(new Error(`layer ${l}: expected 0-${loaded.layers.length - 1}`));
  state.layer = l;
  $<HTMLSelectElement>("layer").value = l === null ? "" : String(l);
  renderCharts();
  if (!state.image || !state.last) return Promise.resolve(null);
  return inspect(state.image, state.source, state.notes);
}

/** Hover: highlights a tensor in every view and shows its numbers, without recomputing the map. */
function hoverLayer(l: number | null) {
  document.querySelectorAll("#walk svg .hover").forEach((e) => e.classList.remove("hover"));
  if (l !== null) document.querySelectorAll(`#walk svg [data-layer="${l}"]`).forEach((e) => e.classList.add("hover"));
  renderLayerInfo(l ?? state.layer);
}

function setupCharts() {
  for (const id of ["arch", "bands", "zbars"]) {
    const el = $(id);
    el.addEventListener("click", (e) => {
      const t = (e.target as Element).closest("[data-layer]") as SVGElement | null;
      if (t) quiet(selectLayer(Number(t.dataset.layer)));
    });
    el.addEventListener("mouseover", (e) => {
      const t = (e.target as Element).closest("[data-layer]") as SVGElement | null;
      hoverLayer(t ? Number(t.dataset.layer) : null);
    });
    el.addEventListener("mouseleave", () => hoverLayer(null));
  }
  $<HTMLSelectElement>("layer").onchange = (e) => {
    const v = (e.target as HTMLSelectElement).value;
    quiet(selectLayer(v === "" ? null : Number(v)));
  };
  $("sal-score").onclick = () => quiet(selectLayer(null));
  new ResizeObserver(() => {
    if (Math.abs($("walk").clientWidth - lastWidth) > 8) renderCharts();
  }).observe($("walk"));
}

// ---- drawing and files ----

function setupDrawing() {
  const c = $<HTMLCanvasElement>("draw"), ctx = c.getContext("2d", { willReadFrequently: true })!;
  c.setAttribute("role", "img");
  const clear = () => {
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, c.width, c.height);
  };
  clear();
  let down = false, last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const r = c.getBoundingClientRect();
    return [((e.clientX - r.left) * c.width) / r.width, ((e.clientY - r.top) * c.height) / r.height];
  };
  c.onpointerdown = (e) => {
    down = true;
    last = at(e);
    c.setPointerCapture?.(e.pointerId);
  };
  c.onpointermove = (e) => {
    if (!down || !last) return;
    const p = at(e);
    ctx.strokeStyle = "white";
    ctx.lineWidth = c.width / 10;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  };
  c.onpointerup = () => {
    if (!down) return;
    down = false;
    quiet(inspect(drawingImage(c), "drawing"));
  };
  $("draw-clear").onclick = clear;
}

/** The drawing canvas as a 28x28 grey image (area-averaged). */
function drawingImage(src: HTMLCanvasElement): Uint8Array {
  const t = new OffscreenCanvas(28, 28), ctx = t.getContext("2d")!;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(src, 0, 0, 28, 28);
  const d = ctx.getImageData(0, 0, 28, 28).data, out = new Uint8Array(784);
  for (let i = 0; i < 784; i++) out[i] = Math.round(0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]);
  return out;
}

async function fromFile(f: File): Promise<unknown> {
  hideError("input");
  try {
    const d = await decodeImage(f.name, new Uint8Array(await f.arrayBuffer()), $<HTMLInputElement>("invert").checked);
    return await inspect(d.image, `file ${f.name} (${d.width}x${d.height})`, d.notes);
  } catch (e) {
    if (e instanceof InputError) {
      // The panel shows no stale result beside the error.
      clearResult(`No result: ${e.message}`);
      $("input-notes").textContent = "";
      showError("input", e);
    }
    throw e;
  }
}

function setupDrop() {
  const z = $("drop");
  z.ondragover = (e) => {
    e.preventDefault();
    z.classList.add("over");
  };
  z.ondragleave = () => z.classList.remove("over");
  z.ondrop = (e) => {
    e.preventDefault();
    z.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f) quiet(fromFile(f));
  };
  $<HTMLInputElement>("file").onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) quiet(fromFile(f));
  };
}

// ---- live samples ----

let sampleSeed = 1;
/** Draws n samples (default: 16, or 4 for the diffusion model); `chunk` is for the tests (the diffusion model's images per DDIM batch). */
function sampleNow(n?: number, chunk?: number) {
  const loaded = state.loaded;
  if (!loaded) return Promise.reject(new Error("no model loaded"));
  n ??= E.sampleCount(loaded.model);
  const t = $<HTMLInputElement>("sample-t");
  const temperature = Number(t.value);
  if ((loaded.model.sampleOptions as readonly string[]).includes("temperature") && !(t.value.trim() !== "" && temperature > 0 && temperature <= 2)) {
    const e = new Error(`temperature: "${t.value}" is not a number in (0, 2]`);
    showError("sample", e);
    return Promise.reject(e);
  }
  $("sample-status").textContent = "";
  return startJob("sample", `sampling ${n} images`, async (j, signal) => {
    const t0 = performance.now();
    const imgs = await E.sample(loaded, n, sampleSeed++, {
      temperature, signal, chunk, onStep: (k, total) => progress(j, k, total, `DDIM step ${k} of ${total}`),
    });
    if (state.loaded !== loaded) throw new DOMException("the model changed", "AbortError");
    const c = $<HTMLCanvasElement>("live-samples"), cols = Math.ceil(Math.sqrt(n)), cell = c.width / cols;
    const ctx = c.getContext("2d")!;
    ctx.fillStyle = "#888";
    ctx.fillRect(0, 0, c.width, c.height);
    for (let i = 0; i < n; i++) {
      const t = document.createElement("canvas");
      t.width = t.height = 28;
      drawGray(t, imgs.subarray(i * 784, (i + 1) * 784));
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(t, (i % cols) * cell + 1, Math.floor(i / cols) * cell + 1, cell - 2, cell - 2);
    }
    c.hidden = false;
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", `${n} samples drawn on this page from ${state.entry!.label}`);
    const ms = performance.now() - t0;
    $("sample-status").textContent = `${n} samples from ${state.entry!.label} in ${secs(ms)} on this backend ${E.samplerNote(loaded.model, temperature)}`;
    return { n, ms };
  });
}

// ---- the OOD evaluation ----

function evalCount(raw: string): number {
  const maxN = Math.min(...[...state.sets.values()].map((s) => s.n));
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(Number.isInteger(n) && n >= 4 && n <= maxN)) throw new Error(`images per set: "${raw}" is not a whole number from 4 to ${maxN}`);
  return n;
}

function evaluate(nRaw: number | string) {
  const { loaded, entry } = state;
  let n: number;
  try {
    if (!loaded || !entry) throw new Error("no model loaded");
    n = evalCount(String(nRaw));
  } catch (e) {
    showError("eval", e);
    return Promise.reject(e);
  }
  $("eval-status").textContent = "";
  $("eval-out").innerHTML = "";
  return startJob("eval", `OOD evaluation on ${n} + ${n} images`, async (j, signal) => {
    const inSet = state.sets.get(entry.inDistribution)!, outSet = state.sets.get(entry.ood)!;
    const ev = await E.evaluate(loaded, inSet, outSet, n, { signal, onProgress: (d, t) => progress(j, d, t, `${d} of ${t} inputs`) });
    if (state.loaded !== loaded) throw new DOMException("the model changed", "AbortError");
    const [si, so] = ev.sets, names = (s: E.SetScores) => SET_NAMES[s.name] ?? s.name, w = Math.max(280, $("eval-out").clientWidth);
    const m = loaded.measure;
    $("eval-out").innerHTML =
      V.rocChart(ev.methods, w, `${entry.id}: ${names(si)} (in) against ${names(so)} (OOD), ${n} each`) +
      V.pairHistogram("gradient score (higher = more in-distribution)", { name: names(si), values: si.score }, { name: names(so), values: so.score }, w, "eh1") +
      V.pairHistogram(`${m.name} (${m.unit})`, { name: names(si), values: si.value }, { name: names(so), values: so.value }, w, "eh2");
    const auroc = Object.fromEntries(ev.methods.map((x) => [x.label, x.auroc]));
    $("eval-status").textContent = `${2 * n} inputs in ${secs(ev.ms)}; AUROC ` + ev.methods.map((x) => `${x.label} ${x.auroc.toFixed(3)}`).join(", ") +
      `. The detector was fitted on other ${names(si)} test images (${loaded.det.made.fit ?? ""}).`;
    state.evaluation = { n, auroc, ms: ev.ms };
    return state.evaluation;
  });
}

// ---- the benchmark ----

function benchmark(names?: string[]) {
  const b = state.chosen!.backend;
  const table = $("bench-out");
  table.innerHTML = `<caption class="sr">kernel benchmark results</caption><tr><th scope="col">workload</th><th scope="col">ms (median)</th><th scope="col">GFLOP/s</th><th scope="col">timed runs</th></tr>`;
  state.bench = [];
  $("bench-status").textContent = "";
  return startJob("bench", "kernel benchmark", async (j, signal) => {
    const rows = await E.benchmark(b, {
      names, signal,
      onProgress: (k, n, name) => progress(j, k, n, name ? `workload ${k + 1} of ${n}: ${name}` : "done"),
      onRow: (r) => {
        state.bench.push(r);
        table.insertAdjacentHTML("beforeend", `<tr><td>${V.esc(r.name)}</td><td>${r.ms.toFixed(2)}</td><td>${r.gflops === null ? "–" : r.gflops.toFixed(2)}</td><td>${r.runs}</td></tr>`);
      },
    });
    $("bench-status").textContent = `on ${state.chosen!.label}: median of 2-5 timed runs after a warm-up, each ending with a readback; – where the workload has no FLOP count`;
    return rows;
  });
}

function gpujsBackend(): F.GpujsBackend {
  const b = state.chosen?.backend;
  if (!(b instanceof F.GpujsBackend)) throw new Error("not on the gpu.js fallback (open the page with ?backend=gpujs)");
  return b;
}

/** Runs a gpu.js check or benchmark as a job (they take the engine too). */
const gpujsJob = <T>(what: string, f: () => Promise<T> | T) => startJob("bench", what, async () => await f());

// ---- start ----

function notice(s: string) {
  state.notices.push(s);
  $("notices").innerHTML = state.notices.map((n) => `<p>${V.esc(n)}</p>`).join("");
}

async function start() {
  const want = params.get("backend");
  let kind: E.BackendKind | null = null;
  if (want !== null) {
    if ((E.BACKEND_KINDS as string[]).includes(want)) kind = want as E.BackendKind;
    else notice(`?backend=${want} is not a backend this page has (webgpu, gpujs, wasm, cpu): using the default, the first that works.`);
  }
  const chosen = await E.chooseBackend(kind, { gpujsSource: async () => await (await fetchOk("/gpu.js")).text(), gpujsAll: params.get("gpujs") === "all" });
  state.chosen = chosen;
  F.T.setDefaultBackend(chosen.backend);
  const badge = $("backend");
  badge.textContent = chosen.label;
  badge.dataset.kind = chosen.kind;
  for (const n of chosen.notes) notice(`${n}; this page runs on ${chosen.label} instead.`);
  const models = await (await fetchOk("/web/models.json")).json() as { default: string; models: ModelEntry[] };
  state.models = models.models;
  state.defaultModel = models.default;
  fillModelSelect();
  let first = params.get("model") ?? models.default;
  if (!state.models.some((m) => m.id === first)) {
    notice(`?model=${first} is not a model on this page (${state.models.map((m) => m.id).join(", ")}): showing ${models.default} instead.`);
    first = models.default;
  }
  setupCharts();
  renderLayerInfo(null);
  await Promise.all([loadModel(first), loadSets()]);
  const sel = $<HTMLSelectElement>("model");
  sel.onchange = () => quiet(switchModel(sel.value));
  setupDrawing();
  setupDrop();
  $("sample-run").onclick = () => quiet(sampleNow());
  $("eval-run").onclick = () => quiet(evaluate($<HTMLInputElement>("eval-n").value));
  $("bench-run").onclick = () => quiet(benchmark());
  const home = state.entry!.inDistribution;
  labelSets();
  $<HTMLSelectElement>("set").value = home;
  showThumbs(home);
  ($("thumbs").querySelector("button") as HTMLButtonElement).setAttribute("aria-pressed", "true");
  await inspect(imageOf(home, 0), `${home} #0`);
  state.ready = true;
  document.body.dataset.ready = "1";
}

/**
 * Switching models cancels the work in progress (the new model's load waits, shown, until it has
 * stopped), clears the old model's outputs, loads the new one and re-inspects the current input.
 */
async function switchModel(id: string) {
  const stopped = cancel();
  clearModelOutputs();
  await Promise.all([stopped, loadModel(id)]);
  if (state.image) await inspect(state.image, state.source, state.notes);
}

const api = {
  state,
  inspectSet: (set: string, i: number) => inspect(imageOf(set, i), `${set} #${i}`),
  inspectBytes: (bytes: ArrayLike<number>, source = "bytes") => inspect(Uint8Array.from(bytes), source),
  selectModel: switchModel,
  selectLayer,
  /** "score" or a layer index (as text or a number). */
  setSaliency: (v: string | number) => selectLayer(v === "score" ? null : Number(v)),
  evaluate,
  benchmark,
  sampleNow,
  cancel,
  idle,
  busy: () => state.jobs.map((j) => ({ panel: j.panel, what: j.what, started: j.started > 0 })),
  /** The WebGPU buffer pool's counts (null on other backends). */
  poolStats: () => (state.chosen?.backend as { rt?: { pool: { stats(): unknown } } }).rt?.pool.stats() ?? null,
  /** gpu.js against the CPU (needs ?backend=gpujs or the fallback). */
  benchFallback: (reps = 3, only?: number[]) => gpujsJob("gpu.js benchmark", () => benchFallback(gpujsBackend(), reps, only)),
  fallbackCaseNames,
  checkGpujs: () => gpujsJob("gpu.js check", () => checkGpujs(gpujsBackend())),
  gpujsCounts: () => (state.chosen?.backend as { counts?: unknown }).counts ?? null,
};
(globalThis as unknown as { fimscope: typeof api }).fimscope = api;
start().catch((e) => {
  if (!isAbort(e)) showError(state.errorPanel || "model", e);
  document.body.dataset.ready = "error";
});
