// The WebGPU kernel variants that need the adapter's `subgroups` feature, checked in headless
// Chromium, whose SwiftShader adapter has it (Deno's lavapipe has not, so test/webgpu_kernels.test.ts
// cannot run them): test/parity_page.ts, bundled and served here, runs the shared
// parity cases (test/kernel_parity.ts: CPU reference, odd, size-1 and non-tile shapes, outputs
// poisoned with NaN) for the matrix products of each subgroup variant and the gemm convolutions on
// them. Each case must pass and must have dispatched the variant's own kernel (the profiler's
// count), so a silent fallback to another kernel fails. Skipped (visibly) where chromium is not
// installed; where its adapter has no `subgroups`, a notice says nothing was checked, and no test
// is reported passed.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Chrome, chromiumPath } from "../scripts/web/chrome.ts";
import type { ParityPage } from "./parity_page.ts";
import { SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";

const S = suite("webgpu subgroup kernels vs cpu in chromium (float32, poisoned outputs)");
const root = new URL("../", import.meta.url).pathname;

/** Bundles the page entry, serves it on a free local port, opens it in chromium and returns what it wrote. */
async function runPage(): Promise<ParityPage> {
  const dir = Deno.makeTempDirSync({ prefix: "fimscope-parity-" });
  const server = { shutdown: async () => {} };
  let chrome: Chrome | null = null;
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform=browser", "--import-map", `${root}scripts/web/browser_imports.json`, `${root}test/parity_page.ts`, "-o", `${dir}/parity.js`],
      cwd: root, stdout: "piped", stderr: "piped",
    }).output();
    if (r.code !== 0) throw new Error(`deno bundle failed:\n${new TextDecoder().decode(r.stderr)}`);
    const js = Deno.readFileSync(`${dir}/parity.js`);
    const page = `<!doctype html><html><head><title>running</title></head><body><script type="module" src="/parity.js"></script></body></html>`;
    const srv = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) =>
      new URL(req.url).pathname === "/parity.js"
        ? new Response(js, { headers: { "content-type": "text/javascript" } })
        : new Response(page, { headers: { "content-type": "text/html" } }));
    server.shutdown = () => srv.shutdown();
    chrome = await Chrome.launch();
    await chrome.goto(`http://127.0.0.1:${(srv.addr as Deno.NetAddr).port}/`);
    await chrome.waitFor("document.title === 'done'", 600000);
    return await chrome.eval<ParityPage>("window.parity");
  } finally {
    await chrome?.close();
    await server.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
}

if (chromiumPath() === null) {
  console.warn("  (chromium not installed: the subgroup kernels' browser check skipped; apt-get install -y chromium)");
  S.skip("subgroup kernel variants in headless chromium (skipped: no chromium)", () => {});
} else {
  const page = await runPage();
  if (page.error) throw new Error(`the parity page failed: ${page.error}`);
  if (!page.subgroups) {
    console.warn(`notice: matmul variants ${SUBGROUP_VARIANTS.join(", ")} not checked in chromium either: no subgroups feature on ${page.adapter}`);
  } else {
    const sizes = page.subgroupSizes ? `subgroup sizes ${page.subgroupSizes.join("-")}` : "subgroup sizes not reported";
    S(`the page ran every subgroup variant's cases on ${page.adapter} (${sizes})`, () => {
      // one matmul case per variant, and the gemm convolutions' case (over every subgroup variant)
      assert.is(page.cases.length, SUBGROUP_VARIANTS.length + 1, JSON.stringify(page.cases.map((c) => c.name)));
    });
    for (const c of page.cases) {
      S(`${c.name} (in chromium)`, () => {
        assert.is(c.error, null, c.error ?? "");
        assert.ok(c.dispatches !== -1, "the adapter has no timestamp-query feature to count the dispatches with");
        assert.ok(c.dispatches > 0, `no subgroup kernel dispatched (${c.dispatches})`);
      });
    }
  }
}

S.run();
