// The page in a real browser: Debian's headless chromium driven over the DevTools protocol
// (scripts/web/chrome.ts), the page served by scripts/web/serve.ts from freshly built bundles.
// Live samples are drawn. Its numbers are checked against Deno's (the same library on the CPU backend): NLL, score and
// z-scores of known test images to 1e-4 relative, on the browser's WebGPU (SwiftShader) and on the
// fallback without WebGPU (gpu.js's WebGL2 with every op it has, and the default policy). Also:
// the drawing and PNG-drop paths give the numbers of the image they produce, the saliency map
// renders and matches Deno's, the OOD evaluation and the benchmark panel produce their figures.
// Screenshots go to a temp dir removed afterwards, or to FIMSCOPE_SHOTS=<dir> to keep them. Skipped (visibly) where chromium is not installed.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encode } from "fast-png";
import * as T from "../src/autograd/index.ts";
import { readCheckpoint } from "../src/io/safetensors.ts";
import { loadModelBytes } from "../src/models/from_bytes.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { inspectImage, type SaliencyTarget } from "../src/ood/inspect.ts";
import { type Detector, readDetectorText } from "../src/ood/detector.ts";
import { build } from "../scripts/web/build.ts";
import { Chrome, chromiumPath } from "../scripts/web/chrome.ts";
import { serve } from "../scripts/web/serve.ts";

const S = suite("browser page");
const KEEP_SHOTS = Deno.env.get("FIMSCOPE_SHOTS");
let SHOTS = ""; // set before the suite
const PORT = 8790 + Math.floor(Math.random() * 100);
const URL0 = `http://127.0.0.1:${PORT}/`;

interface PageResult {
  value: number;
  raw: number;
  measure: { kind: string; short: string };
  score: number;
  z: number[];
  verdict: string;
  source: string;
  saliency: number[] | null;
}
const LAST = `(() => { const l = fimscope.state.last; return l && { value: l.value, raw: l.raw, measure: l.measure, score: l.score, z: l.z, verdict: l.verdict, source: l.source, saliency: l.saliency && Array.from(l.saliency) }; })()`;

// Deno's reference: the same library on the CPU backend.
const reference = new Map<string, { model: GenerativeModel; det: Detector }>();
async function deno(modelId: string, image: Uint8Array, saliency: SaliencyTarget = "score") {
  if (!reference.has(modelId)) {
    const { model } = await loadModelBytes(Deno.readFileSync(`weights/${modelId}.safetensors`), T.cpu, modelId);
    // The detector's objective, as the page and make_assets (the diffusion model: its L1 eps-loss at t = 1).
    const det = readDetectorText(Deno.readTextFileSync(`web/data/${modelId}.detector.json`), modelId);
    reference.set(modelId, { model, det });
  }
  const { model, det } = reference.get(modelId)!;
  return await inspectImage(model, image, det, { saliency });
}
const testImage = (set: string, i: number) => Deno.readFileSync(`web/data/${set}.u8`).slice(i * 784, (i + 1) * 784);
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

function assertSame(page: PageResult, ref: Awaited<ReturnType<typeof deno>>, what: string, tol = 1e-4) {
  assert.ok(rel(page.value, ref.value) < tol, `${what}: ${ref.measure.short} ${page.value} in the page, ${ref.value} in Deno`);
  assert.ok(rel(page.score, ref.score) < tol, `${what}: score ${page.score} in the page, ${ref.score} in Deno`);
  assert.is(page.verdict, ref.verdict, `${what}: verdict`);
  // Features the detector does not score have z NaN (null once through JSON) on both sides.
  assert.equal(page.z.map((z) => z === null || !Number.isFinite(z)), ref.z.map((z) => !Number.isFinite(z)), `${what}: unscored features`);
  const zErr = Math.max(...page.z.map((z, l) => (Number.isFinite(ref.z[l]) ? Math.abs(z - ref.z[l]) : 0)));
  assert.ok(zErr < 1e-3, `${what}: z-scores differ by up to ${zErr}`);
}

/** Pixels of a canvas in the page: [count of distinct colours, mean of the red channel]. */
const canvasStats = (id: string) => `(() => { const c = document.getElementById("${id}"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const s = new Set(); let r = 0; for (let i = 0; i < d.length; i += 4) { s.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]); r += d[i]; } return [s.size, r / (d.length / 4)]; })()`;

let server: Deno.HttpServer | null = null;
let chrome: Chrome | null = null;
const have = chromiumPath() !== null;

async function openPage(c: Chrome, query = ""): Promise<number> {
  const t0 = performance.now();
  await c.goto(`${URL0}${query}`);
  await c.waitFor("document.body && document.body.dataset.ready", 120000);
  const state = await c.eval<string>("document.body.dataset.ready");
  if (state !== "1") throw new Error(`page failed: ${await c.eval("fimscope.state.error")}\n${c.console.join("\n")}`);
  return performance.now() - t0;
}

if (!have) {
  console.warn("  (chromium not installed: browser suite skipped; apt-get install -y chromium)");
  S.skip("the page in headless chromium (skipped: no chromium)", () => {});
} else {
  S.before(async () => {
    SHOTS = KEEP_SHOTS || Deno.makeTempDirSync({ prefix: "fimscope-browser-" });
    Deno.mkdirSync(SHOTS, { recursive: true });
    await build();
    server = serve(PORT);
    chrome = await Chrome.launch({ webgpu: true });
  });
  S.after(async () => {
    await chrome?.close();
    await server?.shutdown();
    if (SHOTS && !KEEP_SHOTS) Deno.removeSync(SHOTS, { recursive: true });
  });

  S("page loads on the browser's WebGPU: backend, model, bits/dim, samples, first result", async () => {
    const c = chrome!;
    const ms = await openPage(c);
    assert.is(await c.eval("document.getElementById('backend').dataset.kind"), "webgpu", `backend: ${await c.eval("document.getElementById('backend').textContent")}`);
    const meta = readCheckpoint("weights/vae-fashion.safetensors").metadata;
    assert.is(await c.eval("document.getElementById('bpd').textContent"), meta.test_bpd);
    assert.ok(await c.waitFor("document.getElementById('samples').complete && document.getElementById('samples').naturalWidth > 0", 10000));
    assert.ok((await c.eval<number>("document.querySelectorAll('#thumbs canvas').length")) >= 20);
    assert.is(await c.eval("document.querySelectorAll('#zbars rect.zbar').length"), 16);
    const sampled = await c.eval<{ n: number }>("fimscope.sampleNow(4)");
    assert.is(sampled.n, 4);
    const [sampleColours] = await c.eval<[number, number]>(canvasStats("live-samples"));
    assert.ok(sampleColours > 10, `live samples drawn (${sampleColours} colours)`);
    const first = await c.eval<number>("fimscope.state.firstResultMs");
    assert.ok(first > 0, "time to first result recorded");
    console.log(`    page ready in ${ms.toFixed(0)} ms; first result at ${first.toFixed(0)} ms after navigation (${await c.eval("fimscope.state.chosen.label")})`);
    await c.screenshot(`${SHOTS}/page-webgpu.png`);
  });

  S("NLL, score and z-scores of known test images equal Deno's to 1e-4 (WebGPU; VAE and Glow)", async () => {
    const c = chrome!;
    for (const model of ["vae-fashion", "glow-fashion"]) {
      await c.eval(`fimscope.selectModel("${model}")`);
      for (const [set, i] of [["fashion", 3], ["mnist", 7]] as const) {
        await c.eval(`fimscope.inspectSet("${set}", ${i}).then(() => 1)`);
        const page = await c.eval<PageResult>(LAST);
        assertSame(page, await deno(model, testImage(set, i)), `${model} ${set} #${i}`);
      }
    }
    await c.screenshot(`${SHOTS}/page-glow.png`);
    await c.eval(`fimscope.selectModel("vae-fashion")`);
  });

  S("the diffusion model: samples, bits/dim, and its one-step L1 eps-loss and score equal Deno's to 1e-4 (WebGPU)", async () => {
    const c = chrome!;
    const t0 = performance.now();
    await c.eval(`fimscope.selectModel("diffusion-fashion")`);
    try {
      assert.is(await c.eval("document.getElementById('bpd').textContent"), readCheckpoint("weights/diffusion-fashion.safetensors").metadata.test_bpd);
      assert.ok(await c.waitFor("document.getElementById('samples').complete && document.getElementById('samples').naturalWidth > 0 && document.getElementById('samples').src.endsWith('diffusion-fashion-samples.png')", 10000));
      await c.eval(`fimscope.inspectSet("mnist", 7).then(() => 1)`);
      const page = await c.eval<PageResult>(LAST);
      const ref = await deno("diffusion-fashion", testImage("mnist", 7));
      assert.is(page.measure.kind, "loss");
      assert.is(ref.measure.kind, "loss", "Deno's reference differentiates the eps-loss too");
      assert.ok(rel(page.raw, ref.raw) < 1e-4, `eps-loss ${page.raw} in the page, ${ref.raw} in Deno`);
      assertSame(page, ref, "diffusion-fashion mnist #7");
      const m = Math.max(...ref.saliency!.map(Math.abs)), err = Math.max(...page.saliency!.map((v, i) => Math.abs(v - ref.saliency![i])));
      assert.ok(m > 0 && err / m < 1e-3, `diffusion saliency of the score: max difference ${err} against max |value| ${m}`);
      assert.is(await c.eval("document.getElementById('nll-label').textContent"), "L1 eps-loss, t = 1");
      assert.is(await c.eval("document.getElementById('zbars').querySelectorAll('rect.zbar').length"), ref.z.filter(Number.isFinite).length);
      await c.screenshot(`${SHOTS}/page-diffusion.png`);
      console.log(`    diffusion mnist #7: eps-loss ${page.raw} (Deno ${ref.raw}), score ${page.score} (Deno ${ref.score}); inspect in the page ${(await c.eval<number>("fimscope.state.last.ms")).toFixed(0)} ms, this test ${(performance.now() - t0).toFixed(0)} ms`);
    } finally {
      await c.eval(`fimscope.selectModel("vae-fashion")`); // the later tests use the VAE
    }
  });

  S("saliency map: rendered, and equal to Deno's double backprop (score and one layer)", async () => {
    const c = chrome!;
    for (const target of ["score", "5"]) {
      await c.eval(`fimscope.setSaliency("${target}"); fimscope.inspectSet("fashion", 11).then(() => 1)`);
      const page = await c.eval<PageResult>(LAST);
      const ref = await deno("vae-fashion", testImage("fashion", 11), target === "score" ? "score" : 5);
      let m = 0, err = 0;
      for (let i = 0; i < 784; i++) {
        m = Math.max(m, Math.abs(ref.saliency![i]));
        err = Math.max(err, Math.abs(page.saliency![i] - ref.saliency![i]));
      }
      assert.ok(m > 0 && err / m < 1e-3, `saliency of ${target}: max difference ${err} against max |value| ${m}`);
      const [colours] = await c.eval<[number, number]>(canvasStats("saliency"));
      assert.ok(colours > 20, `the saliency canvas shows a map (${colours} colours)`);
      assert.ok(Number(await c.eval("document.getElementById('saliency').dataset.max")) > 0);
    }
    await c.eval(`fimscope.setSaliency("score")`);
  });

  S("drawing on the canvas and dropping a PNG: the page scores the image they make, as Deno does", async () => {
    const c = chrome!;
    // Draw a stroke with real mouse events on the drawing canvas.
    const box = await c.eval<number[]>(`(() => { const r = document.getElementById("draw").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`);
    await c.eval(`document.getElementById("draw").scrollIntoView(); 1`);
    const box2 = await c.eval<number[]>(`(() => { const r = document.getElementById("draw").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`);
    const [x0, y0, w, h] = box2 ?? box;
    await c.mouse("mousePressed", x0 + w * 0.3, y0 + h * 0.2);
    for (let k = 1; k <= 12; k++) await c.mouse("mouseMoved", x0 + w * (0.3 + 0.35 * k / 12), y0 + h * (0.2 + 0.6 * k / 12));
    await c.mouse("mouseReleased", x0 + w * 0.65, y0 + h * 0.8);
    await c.waitFor(`fimscope.state.last && fimscope.state.last.source === "drawing"`, 30000);
    const drawn = Uint8Array.from(await c.eval<number[]>("Array.from(fimscope.state.image)"));
    const lit = drawn.filter((v) => v > 100).length;
    assert.ok(lit > 15 && lit < 400, `the stroke lights ${lit} of 784 pixels`);
    assertSame(await c.eval<PageResult>(LAST), await deno("vae-fashion", drawn), "drawing");
    const [colours] = await c.eval<[number, number]>(canvasStats("input-view"));
    assert.ok(colours > 2, "the drawn input is shown");
    await c.screenshot(`${SHOTS}/page-drawing.png`);

    // Drop a PNG of a known test image: decoded exactly, scored as in Deno.
    const img = testImage("mnist", 5);
    const png = encode({ width: 28, height: 28, data: img, channels: 1, depth: 8 });
    const b64 = btoa(String.fromCharCode(...png));
    await c.eval(`(() => { const b = Uint8Array.from(atob("${b64}"), (ch) => ch.charCodeAt(0)); const dt = new DataTransfer();
      dt.items.add(new File([b], "mnist5.png", { type: "image/png" })); document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })); return 1; })()`);
    await c.waitFor(`fimscope.state.last && fimscope.state.last.source.startsWith("file mnist5.png")`, 30000);
    const decoded = await c.eval<number[]>("Array.from(fimscope.state.image)");
    assert.equal(decoded, Array.from(img), "the dropped PNG decodes to the exact test image");
    assertSame(await c.eval<PageResult>(LAST), await deno("vae-fashion", img), "dropped PNG");
  });

  S("OOD evaluation in the page (progress, ROC, histograms) and the benchmark panel", async () => {
    const c = chrome!;
    const ev = await c.eval<{ n: number; auroc: Record<string, number> }>("fimscope.evaluate(8)");
    assert.is(ev.n, 8);
    for (const m of ["likelihood", "typicality", "gradient"]) assert.ok(ev.auroc[m] >= 0 && ev.auroc[m] <= 1, `${m}: AUROC ${ev.auroc[m]}`);
    assert.is(await c.eval("document.getElementById('eval-progress').value"), 1);
    assert.is(await c.eval("document.querySelectorAll('#eval-out svg').length"), 2, "a ROC figure and a histogram figure");
    assert.ok((await c.eval<number>("document.querySelectorAll('#eval-out svg path').length")) >= 3 + 2 * 6, "three ROC curves and two histograms per panel");
    const bench = await c.eval<{ name: string; gflops: number }[]>(`fimscope.benchmark(["matmul 256", "matmul 512"])`);
    assert.is(bench.length, 2);
    assert.ok(bench.every((b) => b.gflops > 0 && Number.isFinite(b.gflops)), JSON.stringify(bench));
    assert.is(await c.eval("document.querySelectorAll('#bench-out tr').length"), 3);
    console.log(`    in-page benchmark on WebGPU: ${bench.map((b) => `${b.name} ${b.gflops.toFixed(2)} GFLOP/s`).join(", ")}`);
    await c.screenshot(`${SHOTS}/page-evaluation.png`);
  });

  S("the README's web-page example (web/example.html, the library bundle dist/fimscope.js) prints Deno's norms", async () => {
    const c = chrome!;
    await c.goto(`${URL0}web/example.html`);
    await c.waitFor("document.body && document.body.dataset.ready", 60000);
    const text = await c.eval<string>("document.getElementById('out').textContent");
    // The same computation: examples/layer_norms.ts in Deno (lavapipe or the CPU), printed to 3 decimals.
    const p = new Deno.Command(Deno.execPath(), { args: ["run", "-A", "examples/layer_norms.ts"], stdout: "piped", stderr: "null" }).outputSync();
    const denoLines = new TextDecoder().decode(p.stdout).trim().split("\n"), pageLines = text.trim().split("\n");
    assert.is(pageLines.length, 17, text);
    assert.is(pageLines.length, denoLines.length);
    for (let i = 0; i < pageLines.length; i++) {
      const [a, b] = [pageLines[i], denoLines[i]].map((l) => Number(l.match(/-?\d+\.\d+/g)?.pop()));
      assert.ok(Number.isFinite(a) && Math.abs(a - b) <= 0.0011 + 1e-5 * Math.abs(b), `line ${i}: page '${pageLines[i]}', Deno '${denoLines[i]}'`);
    }
  });

  S("?backend=wasm (WebAssembly SIMD, threads through cross-origin isolation) gives Deno's numbers", async () => {
    const c = chrome!;
    await openPage(c, "?backend=wasm");
    assert.is(await c.eval("document.getElementById('backend').dataset.kind"), "wasm");
    assert.ok(await c.eval("crossOriginIsolated"), "the server's COOP/COEP headers isolate the page");
    await c.eval(`fimscope.inspectSet("mnist", 7).then(() => 1)`);
    assertSame(await c.eval<PageResult>(LAST), await deno("vae-fashion", testImage("mnist", 7)), "wasm mnist #7");
  });

  S("without WebGPU: the fallback says so, its gpu.js kernels match the CPU, and it gives Deno's numbers", async () => {
    const c = await Chrome.launch({ webgpu: false });
    try {
      // Every op gpu.js has, at any size: its kernels really run and the numbers stay Deno's.
      await openPage(c, "?gpujs=all");
      assert.is(await c.eval("document.getElementById('backend').dataset.kind"), "gpujs");
      assert.match(await c.eval<string>("document.getElementById('backend').textContent"), /fallback/);
      const check = await c.eval<{ name: string; err: number }[]>("fimscope.checkGpujs()");
      assert.ok(check.length >= 20 && check.every((k) => k.err < 1e-5), `gpu.js vs CPU: ${JSON.stringify(check.filter((k) => !(k.err < 1e-5)))}`);
      await c.eval(`fimscope.inspectSet("fashion", 3).then(() => 1)`);
      assertSame(await c.eval<PageResult>(LAST), await deno("vae-fashion", testImage("fashion", 3)), "gpu.js (all ops) fashion #3");
      const counts = await c.eval<Record<string, { gpujs: number; cpu: number }>>("fimscope.gpujsCounts()");
      for (const op of ["matmul", "conv2d", "conv2dInputGrad", "conv2dWeightGrad"]) assert.ok(counts[op]?.gpujs > 0, `${op} ran on gpu.js: ${JSON.stringify(counts)}`);
      // The default: the renderer's policy (SwiftShader is software: the CPU for every op, as measured).
      await openPage(c);
      assert.is(await c.eval("document.getElementById('backend').dataset.kind"), "gpujs");
      await c.eval(`fimscope.inspectSet("mnist", 7).then(() => 1)`);
      assertSame(await c.eval<PageResult>(LAST), await deno("vae-fashion", testImage("mnist", 7)), "fallback (default policy) mnist #7");
      console.log(`    fallback: ${await c.eval("fimscope.state.chosen.label")}; first result at ${(await c.eval<number>("fimscope.state.firstResultMs")).toFixed(0)} ms`);
      await c.screenshot(`${SHOTS}/page-fallback.png`);
    } finally {
      await c.close();
    }
  });
}

S.run();
