// The page (web/index.html): one input's gradients end to end on this browser's WebGPU, or on the
// gpu.js WebGL2 fallback, or on the CPU. Bundled by scripts/web/build.ts into dist/web.js.
// URL options: ?backend=webgpu|gpujs|cpu (default: the first that works, in that order; or wasm,
// the WebAssembly SIMD backend, only when asked for), ?gpujs=all
// (the fallback runs every op it can on gpu.js, at any size, whatever its renderer policy),
// ?model=<id from web/models.json>. window.fimscope exposes the state and the actions to the
// browser tests (test/browser.test.ts).
import * as F from "../mod.ts";
import { workloads } from "../bench/workloads.ts";
import { benchFallback, checkGpujs, fallbackCaseNames } from "./fallback_bench.ts";

interface ModelEntry {
  id: string;
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
const frame = () => new Promise((r) => setTimeout(r, 0));

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

// ---- backend ----

interface Chosen {
  backend: F.Backend;
  kind: "webgpu" | "gpujs" | "wasm" | "cpu";
  label: string;
  /** Why the faster backends were not used. */
  notes: string[];
}

async function chooseBackend(want: string | null): Promise<Chosen> {
  const notes: string[] = [];
  if (want && !["webgpu", "gpujs", "wasm", "cpu"].includes(want)) throw new Error(`?backend=${want}: expected webgpu, gpujs, wasm or cpu`);
  if (want === "wasm") {
    const b = await F.createWasmBackend();
    return { backend: b, kind: "wasm", label: `WebAssembly: ${b.description}`, notes };
  }
  if (!want || want === "webgpu") {
    try {
      const b = await F.createWebGPUBackend();
      return { backend: b, kind: "webgpu", label: `WebGPU: ${b.description}`, notes };
    } catch (e) {
      if (want === "webgpu") throw e;
      notes.push(`WebGPU: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  if (!want || want === "gpujs") {
    try {
      const GPU = F.gpujsFromSource(await (await fetchOk("/gpu.js")).text());
      // ?gpujs=all: every gpu.js op at any size (the tests use it to check the kernels' numbers).
      const b = F.createGpujsBackend(GPU, params.get("gpujs") === "all" ? { ops: F.GPUJS_OPS, minMacs: 0 } : {});
      return { backend: b, kind: "gpujs", label: `fallback (no WebGPU): ${b.description}`, notes };
    } catch (e) {
      if (want === "gpujs") throw e;
      notes.push(`gpu.js: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return { backend: new F.CpuBackend(), kind: "cpu", label: "CPU backend (plain TypeScript)", notes };
}

// ---- state ----

const state = {
  chosen: null as Chosen | null,
  models: [] as ModelEntry[],
  entry: null as ModelEntry | null,
  model: null as F.GenerativeModel | null,
  metadata: {} as Record<string, string>,
  det: null as F.Detector | null,
  /** What the features differentiate (the detector's objective: the NLL; the diffusion model's L1 eps-loss at t = 1). */
  objective: null as F.Objective | null,
  measure: null as F.Measure | null,
  sets: new Map<string, F.ImageSet>(),
  image: null as Uint8Array | null,
  source: "",
  last: null as (F.Inspection & { source: string; ms: number }) | null,
  /** ms from navigation start to the first inspected input's result on screen. */
  firstResultMs: NaN,
  evaluation: null as null | { n: number; auroc: Record<string, number>; ms: number },
  bench: [] as { name: string; ms: number; gflops: number }[],
  ready: false,
  error: "",
  busy: Promise.resolve() as Promise<unknown>,
};

/** Runs UI actions one at a time (the engine is not reentrant across awaits). */
function serial<T>(f: () => Promise<T>): Promise<T> {
  const p = state.busy.then(f, f);
  state.busy = p.catch(() => {});
  return p;
}

function fail(e: unknown) {
  const msg = (e as Error)?.message ?? String(e);
  state.error = msg;
  $("footer").textContent = `error: ${msg}`;
  console.error(e);
}

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

/**
 * A diverging map: red where raising the pixel raises the target, blue where it lowers it; the
 * colour scale saturates at the 98th percentile of |value| so a few extreme pixels do not wash out the rest.
 */
function drawSaliency(canvas: HTMLCanvasElement, s: ArrayLike<number>) {
  const mags = Array.from(s, Math.abs).sort((a, b) => a - b);
  const m = mags[Math.floor(0.98 * (mags.length - 1))] || mags[mags.length - 1];
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
  canvas.dataset.max = String(mags[mags.length - 1]);
}

function zBarsSvg(names: string[], z: number[]): string {
  const L = names.length, bw = Math.max(4, Math.min(24, Math.floor(900 / L))), H = 200, top = 20, mid = top + (H - top - 30) / 2;
  const lim = Math.max(3, ...z.filter(Number.isFinite).map(Math.abs));
  const ys = (v: number) => mid - (v / lim) * ((H - top - 30) / 2);
  const W = 50 + L * bw + 10;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" style="max-width: ${W}px" font-family="sans-serif" font-size="10">`;
  s += `<text x="${W / 2}" y="12" text-anchor="middle" font-size="12">z-score of log f_l per layer (fit mean and SD); |z| > 2 in red</text>`;
  for (const t of [-lim, -2, 0, 2, lim]) s += `<line x1="45" x2="${W - 5}" y1="${ys(t)}" y2="${ys(t)}" stroke="${t === 0 ? "#000" : "#ddd"}"/><text x="40" y="${ys(t) + 3}" text-anchor="end">${+t.toFixed(1)}</text>`;
  z.forEach((v, l) => {
    if (!Number.isFinite(v)) return;
    const x = 50 + l * bw, y = Math.min(ys(v), mid), h = Math.abs(ys(v) - mid);
    s += `<rect class="zbar" x="${x}" y="${y}" width="${bw - 1}" height="${Math.max(0.5, h)}" fill="${Math.abs(v) > 2 ? "#d62728" : "#1f77b4"}"><title>${names[l]}: z = ${v.toFixed(2)}</title></rect>`;
  });
  s += `<text x="${50 + (L * bw) / 2}" y="${H - 8}" text-anchor="middle">parameter tensors, in model order (hover for names): ${names[0]} … ${names[L - 1]}</text></svg>`;
  return s;
}

// ---- actions ----

async function loadModel(id: string) {
  const entry = state.models.find((m) => m.id === id);
  if (!entry) throw new Error(`?model=${id}: not in web/models.json (have ${state.models.map((m) => m.id).join(", ")})`);
  const t0 = performance.now();
  const bytes = new Uint8Array(await (await fetchOk(entry.weights)).arrayBuffer());
  const { model, metadata } = await F.loadModelBytes(bytes, state.chosen!.backend, entry.weights);
  const det = F.readDetectorText(await (await fetchOk(entry.detector)).text(), entry.detector);
  // What the detector differentiates, as in `npm run ood` (the diffusion model: its L1 eps-loss at t = 1).
  const objective = F.detectorObjective(model, det, entry.detector, { single: true }), measure = objective.measure;
  state.model?.parameters().forEach((p) => p.dispose());
  Object.assign(state, { entry, model, metadata, det, objective, measure });
  $<HTMLSelectElement>("model").value = id; // also when chosen through window.fimscope
  const params = model.parameters().reduce((s, p) => s + p.size, 0);
  $("model-info").innerHTML = `<b>${entry.label}</b>: ${metadata.kind}, ${params.toLocaleString()} parameters in ${det.names.length} tensors, ` +
    `trained ${metadata.steps ?? "?"} steps; test NLL <b id="bpd">${metadata.test_bpd ?? "?"}</b> bits/dim` +
    (metadata.kind === "diffusion" ? " (its variational bound)" : "") +
    (metadata.test_eval_n ? ` (${metadata.test_eval_n} test images)` : "") + `. Loaded in ${(performance.now() - t0).toFixed(0)} ms.`;
  const img = $<HTMLImageElement>("samples");
  if (entry.samples) {
    img.src = entry.samples;
    img.hidden = false;
    $("samples-note").textContent = "samples from the model (weights/*-samples.png, made by src/cli/samples.ts)";
  } else img.hidden = true;
  const sel = $<HTMLSelectElement>("sal-target");
  sel.innerHTML = `<option value="score">d score / d pixel</option>` + det.names.map((n, l) => `<option value="${l}">d log f(${n}) / d pixel</option>`).join("");
  $("eval-out").innerHTML = "";
}

async function loadSets() {
  const meta = await (await fetchOk("/web/data/sets.json")).json() as { sets: SetEntry[] };
  for (const s of meta.sets) {
    const bytes = new Uint8Array(await (await fetchOk(`/web/data/${s.file}`)).arrayBuffer());
    state.sets.set(s.name, F.makeSet(s.name, bytes, Uint8Array.from(s.labels), s.c, s.h, s.w));
  }
  const sel = $<HTMLSelectElement>("set");
  sel.innerHTML = meta.sets.map((s) => `<option value="${s.name}" title="${s.role}">${s.name} (${s.role.split(" (")[0]})</option>`).join("");
  sel.onchange = () => showThumbs(sel.value);
  showThumbs(meta.sets[0].name);
}

function imageOf(set: string, i: number): Uint8Array {
  const s = state.sets.get(set);
  if (!s) throw new Error(`no test set '${set}'`);
  if (!(Number.isInteger(i) && i >= 0 && i < s.n)) throw new Error(`${set}: image ${i} out of range [0, ${s.n})`);
  const d = s.c * s.h * s.w;
  return s.images.slice(i * d, (i + 1) * d);
}

function showThumbs(set: string) {
  const box = $("thumbs");
  box.innerHTML = "";
  for (let i = 0; i < 40; i++) {
    const c = document.createElement("canvas");
    c.width = c.height = 28;
    drawGray(c, imageOf(set, i));
    c.title = `${set} #${i}`;
    c.onclick = () => {
      box.querySelectorAll("canvas").forEach((x) => x.classList.remove("on"));
      c.classList.add("on");
      inspect(imageOf(set, i), `${set} #${i}`).catch(fail);
    };
    box.appendChild(c);
  }
}

function saliencyTarget(): F.SaliencyTarget {
  const v = $<HTMLSelectElement>("sal-target").value;
  return v === "score" ? "score" : Number(v);
}

function inspect(image: Uint8Array, source: string) {
  return serial(async () => {
    const { model, det } = state;
    if (!model || !det) throw new Error("no model loaded");
    const t0 = performance.now();
    const r = await F.inspectImage(model, image, det, { saliency: saliencyTarget() });
    const ms = performance.now() - t0;
    state.image = image;
    state.source = source;
    state.last = { ...r, source, ms };
    drawGray($<HTMLCanvasElement>("input-view"), image);
    $("input-source").textContent = source;
    if (r.saliency) drawSaliency($<HTMLCanvasElement>("saliency"), r.saliency);
    $("nll").textContent = r.measure.unit ? `${fmt(r.value)} ${r.measure.unit}` : fmt(r.value);
    $("nll").title = r.measure.label;
    $("nll-label").textContent = r.measure.short;
    $("score").textContent = fmt(r.score, 3);
    $("threshold").textContent = fmt(det.file.threshold95[det.file.method], 3);
    const v = $("verdict");
    v.textContent = r.verdict === "in" ? "in-distribution" : "out of distribution";
    v.className = r.verdict === "in" ? "in" : "out";
    $("time").textContent = `${ms.toFixed(0)} ms (forward, backward, double backward)`;
    $("zbars").innerHTML = zBarsSvg(det.names, r.z);
    if (Number.isNaN(state.firstResultMs)) state.firstResultMs = performance.now();
    return state.last;
  });
}

// ---- drawing and dropping ----

function setupDrawing() {
  const c = $<HTMLCanvasElement>("draw"), ctx = c.getContext("2d")!;
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
    inspect(toImage(c, false), "drawing").catch(fail);
  };
  $("draw-clear").onclick = clear;
}

/** Any canvas or bitmap to a 28x28 8-bit grayscale image (area-averaged; inverted if asked). */
function toImage(src: CanvasImageSource & { width: number; height: number }, invert: boolean): Uint8Array {
  const t = new OffscreenCanvas(28, 28), ctx = t.getContext("2d")!;
  ctx.fillStyle = "black";
  ctx.fillRect(0, 0, 28, 28);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(src, 0, 0, 28, 28);
  const d = ctx.getImageData(0, 0, 28, 28).data, out = new Uint8Array(784);
  for (let i = 0; i < 784; i++) {
    const g = Math.round(0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]);
    out[i] = invert ? 255 - g : g;
  }
  return out;
}

async function fromFile(f: File) {
  const bmp = await createImageBitmap(f);
  await inspect(toImage(bmp, $<HTMLInputElement>("invert").checked), `file ${f.name} (${bmp.width}x${bmp.height})`);
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
    if (f) fromFile(f).catch(fail);
  };
  $<HTMLInputElement>("file").onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) fromFile(f).catch(fail);
  };
}

// ---- live samples ----

let sampleSeed = 1;
function sampleNow(n = 16) {
  return serial(async () => {
    const { model } = state;
    if (!model) throw new Error("no model loaded");
    const temperature = Number($<HTMLInputElement>("sample-t").value);
    if (!(temperature > 0 && temperature <= 2)) throw new Error(`temperature ${temperature}: expected a number in (0, 2]`);
    const t0 = performance.now();
    const vae = state.metadata.kind === "vae", diffusion = state.metadata.kind === "diffusion";
    const imgs = await model.sample(n, new F.T.Generator(sampleSeed++), vae ? { mean: true } : diffusion ? { steps: 50 } : { temperature });
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
    $("sample-status").textContent = `${n} samples in ${(performance.now() - t0).toFixed(0)} ms on this backend` +
      (vae ? " (the VAE's decoder means; the temperature is the Glow's)" : diffusion ? " (DDIM, 50 steps; the temperature is the Glow's)" : ` at temperature ${temperature}`);
    return { n, ms: performance.now() - t0 };
  });
}

// ---- the OOD evaluation ----

function evaluate(n: number) {
  return serial(async () => {
    const { model, det, entry } = state;
    if (!model || !det || !entry) throw new Error("no model loaded");
    const inSet = state.sets.get(entry.inDistribution)!, outSet = state.sets.get(entry.ood)!;
    if (!(Number.isInteger(n) && n >= 2 && n <= Math.min(inSet.n, outSet.n))) throw new Error(`images per set: ${n}, expected 2-${Math.min(inSet.n, outSet.n)}`);
    const bar = $<HTMLProgressElement>("eval-progress"), status = $("eval-status");
    const t0 = performance.now();
    const feats: F.SetFeatures[] = [];
    let done = 0;
    for (const set of [inSet, outSet]) {
      // The library's loop: each input's draws from its pixels and the detector's seed, as `npm run score`.
      feats.push(await F.setFeatures(model, state.objective!, F.subset(set, Array.from({ length: n }, (_, i) => i)), {
        batch: 16, seed: det.file.seed,
        onProgress: (k) => {
          bar.value = (done + k) / (2 * n);
          status.textContent = `${done + k} / ${2 * n} inputs, ${((performance.now() - t0) / 1000).toFixed(1)} s`;
        },
      }));
      done += n;
      await frame();
    }
    const [fi, fo] = feats;
    const scoresOf = (f: F.SetFeatures) => f.logf.map((r, i) => det.scoreRow(r, f.nll[i]).scores);
    const si = scoresOf(fi), so = scoresOf(fo);
    const methods = ["likelihood", "typicality", "gradient"];
    const auroc: Record<string, number> = {};
    const curves = methods.map((m) => {
      const a = si.map((x) => x[m]), b = so.map((x) => x[m]);
      auroc[m] = F.auroc(a, b);
      return { label: m, points: F.rocCurve(a, b), auroc: auroc[m] };
    });
    const L = det.names.length, picks = [...new Set([0, Math.floor(L / 3), Math.floor((2 * L) / 3), L - 1])];
    const hist = F.histogramsSvg(`${entry.id}: score, NLL and log ||grad||^2 per layer, ${fi.name} vs ${fo.name}`, [
      { label: "gradient score", series: [{ name: fi.name, values: si.map((x) => x.gradient) }, { name: fo.name, values: so.map((x) => x.gradient) }] },
      { label: state.measure!.unit ? `${state.measure!.short} (${state.measure!.unit})` : state.measure!.short, series: feats.map((f) => ({ name: f.name, values: Array.from(f.nll) })) },
      ...picks.map((l) => ({ label: `log f: ${det.names[l]}`, series: feats.map((f) => ({ name: f.name, values: f.logf.map((r) => r[l]) })) })),
    ]);
    const ms = performance.now() - t0;
    $("eval-out").innerHTML = F.rocSvg(`${entry.id}, B=1: ${fi.name} vs ${fo.name} (${n} each)`, curves) + hist;
    status.textContent = `${2 * n} inputs in ${(ms / 1000).toFixed(1)} s; AUROC ` + methods.map((m) => `${m} ${auroc[m].toFixed(3)}`).join(", ") +
      ` (the detector fitted on ${det.file.fit.groups} other FashionMNIST test images)`;
    state.evaluation = { n, auroc, ms };
    return state.evaluation;
  });
}

// ---- the benchmark ----

function benchmark(names?: string[]) {
  return serial(async () => {
    const b = state.chosen!.backend, status = $("bench-status"), table = $("bench-out");
    const chosen = workloads().filter((w) => (names ? names.includes(w.name) : !w.name.startsWith("matmul 1024") && !w.name.includes("input-grad")));
    table.innerHTML = `<tr><th>workload</th><th>ms (median)</th><th>GFLOP/s</th></tr>`;
    state.bench = [];
    for (const w of chosen) {
      status.textContent = `running ${w.name}…`;
      await frame();
      const { run, dispose } = w.ours(b);
      await run(); // warm-up: pipelines, kernels, textures
      const times: number[] = [];
      const t0 = performance.now();
      while (times.length < 5 && (times.length < 2 || performance.now() - t0 < 1500)) {
        const t = performance.now();
        await run();
        times.push(performance.now() - t);
      }
      dispose();
      times.sort((x, y) => x - y);
      const ms = times[Math.floor(times.length / 2)], gflops = w.flops / (ms * 1e6);
      state.bench.push({ name: w.name, ms, gflops });
      table.insertAdjacentHTML("beforeend", `<tr><td>${w.name}</td><td>${ms.toFixed(2)}</td><td>${gflops.toFixed(2)}</td></tr>`);
    }
    status.textContent = `on ${state.chosen!.label}; median of ${"2-5"} timed runs after a warm-up, each ending with a readback`;
    return state.bench;
  });
}

function gpujsBackend(): F.GpujsBackend {
  const b = state.chosen?.backend;
  if (!(b instanceof F.GpujsBackend)) throw new Error("not on the gpu.js fallback (open the page with ?backend=gpujs)");
  return b;
}

// ---- start ----

async function start() {
  const chosen = await chooseBackend(params.get("backend"));
  state.chosen = chosen;
  F.T.setDefaultBackend(chosen.backend);
  const badge = $("backend");
  badge.textContent = chosen.label;
  badge.dataset.kind = chosen.kind;
  if (chosen.notes.length) badge.title = chosen.notes.join("\n");
  $("footer").textContent = chosen.notes.length ? `not used: ${chosen.notes.join("; ")}` : "";
  state.models = (await (await fetchOk("/web/models.json")).json()).models;
  const sel = $<HTMLSelectElement>("model");
  sel.innerHTML = state.models.map((m) => `<option value="${m.id}">${m.label}</option>`).join("");
  const first = params.get("model") ?? state.models[0].id;
  sel.value = first;
  await loadModel(first);
  sel.onchange = () => serial(() => loadModel(sel.value)).then(() => state.image && inspect(state.image, state.source)).catch(fail);
  await loadSets();
  setupDrawing();
  setupDrop();
  $<HTMLSelectElement>("sal-target").onchange = () => state.image && inspect(state.image, state.source).catch(fail);
  $("sample-run").onclick = () => sampleNow().catch(fail);
  $("eval-run").onclick = () => evaluate(Number($<HTMLInputElement>("eval-n").value)).catch(fail);
  $("bench-run").onclick = () => benchmark().catch(fail);
  await inspect(imageOf(state.entry!.inDistribution, 0), `${state.entry!.inDistribution} #0`);
  state.ready = true;
  document.body.dataset.ready = "1";
}

const api = {
  state,
  inspectSet: (set: string, i: number) => inspect(imageOf(set, i), `${set} #${i}`),
  inspectBytes: (bytes: ArrayLike<number>, source = "bytes") => inspect(Uint8Array.from(bytes), source),
  selectModel: (id: string) => serial(() => loadModel(id)),
  setSaliency: (v: string) => {
    $<HTMLSelectElement>("sal-target").value = v;
  },
  evaluate,
  benchmark,
  sampleNow,
  /** gpu.js against the CPU (needs ?backend=gpujs or the fallback). */
  benchFallback: (reps = 3, only?: number[]) => serial(() => benchFallback(gpujsBackend(), reps, only)),
  fallbackCaseNames,
  checkGpujs: () => serial(async () => checkGpujs(gpujsBackend())),
  gpujsCounts: () => (state.chosen?.backend as { counts?: unknown }).counts ?? null,
};
(globalThis as unknown as { fimscope: typeof api }).fimscope = api;
start().catch((e) => {
  fail(e);
  document.body.dataset.ready = "error";
});
