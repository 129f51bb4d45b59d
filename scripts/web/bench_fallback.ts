// gpu.js's WebGL2 kernels against the CPU backend in headless Chromium (SwiftShader's WebGL2),
// interleaved in one page: prints the correctness check and a markdown table (bench/README.md).
//   deno run -A scripts/web/bench_fallback.ts [--reps 3] [--no-build]
import { Chrome } from "./chrome.ts";
import { buildAndServe, positiveIntOption } from "./options.ts";

const reps = positiveIntOption("--reps", 3);
const port = 8772;
const server = await buildAndServe(port);
const chrome = await Chrome.launch({ webgpu: false });
try {
  await chrome.goto(`http://127.0.0.1:${port}/?backend=gpujs`);
  await chrome.waitFor("document.body && document.body.dataset.ready", 120000);
  const ua = await chrome.eval<string>("navigator.userAgent.match(/Chrome\\/[\\d.]+/)[0]");
  const gl = await chrome.eval<string>(`(() => { const g = document.createElement("canvas").getContext("webgl2"); const e = g.getExtension("WEBGL_debug_renderer_info"); return e ? g.getParameter(e.UNMASKED_RENDERER_WEBGL) : g.getParameter(g.RENDERER); })()`);
  console.log(`${ua}, WebGL2 renderer: ${gl}`);
  const check = await chrome.eval<{ name: string; err: number }[]>("fimscope.checkGpujs()");
  console.log(`correctness (gpu.js vs CPU, max error / max |value|): worst ${Math.max(...check.map((c) => c.err)).toExponential(2)} over ${check.length} cases`);
  const names = await chrome.eval<string[]>("fimscope.fallbackCaseNames()");
  console.log(`${names.length} cases, median of ${reps} interleaved runs after a warm-up`);
  console.log("\n| case | multiply-adds | CPU ms | gpu.js ms | CPU / gpu.js | max rel. error |\n| --- | --- | --- | --- | --- | --- |");
  for (let i = 0; i < names.length; i++) {
    const [r] = await chrome.eval<{ name: string; macs: number; cpuMs: number; gpujsMs: number; speedup: number; err: number }[]>(`fimscope.benchFallback(${reps}, [${i}])`);
    console.log(`| ${r.name} | ${r.macs.toExponential(2)} | ${r.cpuMs.toFixed(2)} | ${r.gpujsMs.toFixed(2)} | ${r.speedup.toFixed(2)} | ${r.err.toExponential(1)} |`);
  }
} finally {
  await chrome.close();
  await server.shutdown();
}
