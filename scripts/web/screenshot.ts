// The README's screenshots of the page in headless Chromium (SwiftShader WebGPU): the logit-space
// Glow, an MNIST test digit inspected with one tensor selected (its saliency map, fit band and box),
// the OOD evaluation on 32 images per set and the kernel benchmark's matmul rows; the whole page at
// 1400 px wide, and what a phone shows at 390x844 once scrolled to the result.
//   deno run -A scripts/web/screenshot.ts --out docs/page.png [--phone docs/page-phone.png] [--no-build] [--force]
// (--force: replace the committed screenshots)
import "../../src/cli/errors.ts";
import { flag, outFile, parseOptions, usageError } from "../../src/io/options.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";
import { build } from "./build.ts";
import { Chrome } from "./chrome.ts";
import { serve } from "./serve.ts";

const a = parseOptions("screenshot", { out: outFile().required(), phone: outFile(), "no-build": flag(), force: flag() });
for (const [opt, v] of [["--out", a.out], ["--phone", a.phone]] as const) {
  if (v !== undefined && !v.endsWith(".png")) throw usageError("screenshot", opt, v, "a path ending in .png");
}
if (!a["no-build"]) await build();
const port = 8775;
const server = serve(port);
const c = await Chrome.launch({ webgpu: true, width: 1400, height: 900 });
/** Writes a screenshot through a temporary file, so a failed capture leaves the old one. */
const shot = async (path: string, take: (tmp: string) => Promise<void>) => {
  const tmp = `${path}.shot.png`;
  await take(tmp);
  writeFileAtomic(path, Deno.readFileSync(tmp));
  Deno.removeSync(tmp);
  console.log(`wrote ${path}`);
};
try {
  await c.goto(`http://127.0.0.1:${port}/?model=glow-fashion-large`);
  await c.waitFor("document.body && document.body.dataset.ready", 180000);
  if ((await c.eval("document.body.dataset.ready")) !== "1") throw new Error(`the page failed: ${await c.eval("fimscope.state.error")}`);
  await c.eval(`fimscope.inspectSet("mnist", 7).then(() => 1)`);
  const layer = await c.eval<number>(`fimscope.state.loaded.layers.findIndex((l) => l.name === "levels.0.steps.2.coupling.conv3.weight")`);
  await c.eval(`fimscope.selectLayer(${layer}).then(() => 1)`);
  await c.eval(`fimscope.evaluate(32).then(() => 1)`);
  await c.eval(`fimscope.benchmark(["matmul 256", "matmul 512"]).then(() => 1)`);
  await c.eval("window.scrollTo(0, 0); 1");
  await shot(a.out, (tmp) => c.screenshot(tmp));
  if (a.phone) {
    await c.viewport({ width: 390, height: 844, mobile: true });
    await new Promise((r) => setTimeout(r, 500));
    await c.eval(`document.getElementById("walk").scrollIntoView(); 1`);
    await shot(a.phone, (tmp) => c.screenshotViewport(tmp));
  }
} finally {
  await c.close();
  await server.shutdown();
}
