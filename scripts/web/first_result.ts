// Time to first result: in headless Chromium, from navigation to the first inspected input's
// numbers on screen, on SwiftShader's WebGPU, without WebGPU (the fallback) and on the wasm
// backend (?backend=wasm), each in a fresh
// browser profile (cold shader and pipeline caches); and, for lavapipe, which Chromium does not
// reach here (bench/README.md), the same work in Deno on lavapipe: weights read, model built,
// detector checked, first inspectImage (cold pipelines), timed from before the library's import.
// `--runs N` repeats each, interleaved.
//   deno run -A scripts/web/first_result.ts [--runs 3] [--no-build]
import { Chrome, type ChromeOptions } from "./chrome.ts";
import { buildAndServe, positiveIntOption } from "./options.ts";

const runs = positiveIntOption("--runs", 3);
const port = 8773;
const server = await buildAndServe(port);
const configs: [string, ChromeOptions, string][] = [
  ["SwiftShader WebGPU", { webgpu: true }, ""], ["no WebGPU (fallback)", { webgpu: false }, ""], ["wasm SIMD (?backend=wasm)", { webgpu: true }, "&backend=wasm"],
];
const root = new URL("../../", import.meta.url).pathname;
const denoProbe = `const t0 = performance.now();
const F = await import("${root}mod.ts");
const b = await F.selectBackend("webgpu");
const { model } = await F.loadModelBytes(Deno.readFileSync("${root}weights/MODEL.safetensors"), b);
const det = F.checkDetector(JSON.parse(Deno.readTextFileSync("${root}web/data/MODEL.detector.json")), model.namedParameters().map(([n]) => n));
const t1 = performance.now();
const r = await F.inspectImage(model, Deno.readFileSync("${root}web/data/fashion.u8").subarray(0, 784), det, { saliency: "score", noiseSeed: 0 });
console.log(JSON.stringify({ first: performance.now() - t0, inspect: performance.now() - t1, label: b.description, score: r.score }));`;
try {
  for (const model of ["vae-fashion", "glow-fashion"]) {
    for (let r = 0; r < runs; r++) {
      for (const [name, o, query] of configs) {
        const c = await Chrome.launch(o);
        try {
          await c.goto(`http://127.0.0.1:${port}/?model=${model}${query}`);
          await c.waitFor("document.body && document.body.dataset.ready", 180000);
          const s = await c.eval<{ first: number; label: string; error: string; inspectMs: number }>(
            "({ first: fimscope.state.firstResultMs, label: fimscope.state.chosen.label, error: fimscope.state.error, inspectMs: fimscope.state.last && fimscope.state.last.ms })",
          );
          console.log(`${model} run ${r + 1} | ${name} | first result ${s.first.toFixed(0)} ms (inspect ${s.inspectMs?.toFixed(0)} ms) | ${s.label}${s.error ? ` | error ${s.error}` : ""}`);
        } finally {
          await c.close();
        }
      }
      const out = await new Deno.Command(Deno.execPath(), { args: ["eval", denoProbe.replaceAll("MODEL", model)], cwd: root, stdout: "piped", stderr: "null" }).output();
      const d = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      console.log(`${model} run ${r + 1} | Deno, lavapipe WebGPU | first result ${d.first.toFixed(0)} ms (inspect ${d.inspect.toFixed(0)} ms) | ${d.label}`);
    }
  }
} finally {
  await server.shutdown();
}
