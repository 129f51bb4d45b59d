// The README's screenshot of the page: headless Chromium (SwiftShader WebGPU), the Glow, 16 live samples, one MNIST
// test image inspected, the OOD evaluation on 32 images per set and the benchmark panel run.
//   deno run -A scripts/web/screenshot.ts --out docs/page.png [--no-build]
import { writeFileAtomic } from "../../src/io/atomic.ts";
import { build } from "./build.ts";
import { Chrome } from "./chrome.ts";
import { serve } from "./serve.ts";

const oi = Deno.args.indexOf("--out");
const out = oi >= 0 ? Deno.args[oi + 1] : undefined;
if (!out || !out.endsWith(".png")) {
  console.error(`error: --out ${out ?? "(missing)"}: give the screenshot's path, ending in .png`);
  Deno.exit(1);
}
if (!Deno.args.includes("--no-build")) await build();
const port = 8775;
const server = serve(port);
const c = await Chrome.launch({ webgpu: true, width: 1400, height: 1500 });
try {
  await c.goto(`http://127.0.0.1:${port}/?model=glow-fashion`);
  await c.waitFor("document.body && document.body.dataset.ready", 120000);
  await c.eval(`fimscope.sampleNow(16).then(() => 1)`);
  await c.eval(`fimscope.inspectSet("mnist", 7).then(() => 1)`);
  await c.eval(`fimscope.evaluate(32).then(() => 1)`);
  await c.eval(`fimscope.benchmark().then(() => 1)`);
  const tmp = `${out}.shot.png`;
  await c.screenshot(tmp);
  writeFileAtomic(out, Deno.readFileSync(tmp));
  Deno.removeSync(tmp);
  console.log(`wrote ${out}`);
} finally {
  await c.close();
  await server.shutdown();
}
