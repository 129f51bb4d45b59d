// Every WebGPU kernel case of the Deno suite (test/webgpu_parity.ts over every variant: CPU
// reference, odd, size-1 and non-tile shapes, outputs poisoned with NaN) and each model's loss
// gradient against float64 central differences (test/model_grads.ts), run again in headless
// Chromium by test/parity_page.ts, bundled and served here. Chrome compiles the WGSL with Tint
// where Deno has naga (Tint rejected powScalar's constant NaN, which naga took: that kernel did
// not compile in Chrome until 2026-12-07), and its SwiftShader adapter has the `subgroups`
// feature that Deno's lavapipe lacks, so the subgroup variants run only here: each of their cases
// must have dispatched the subgroup kernel itself (the profiler's count), so a silent fallback to
// another kernel fails. Skipped (visibly) where chromium is not installed, and the subgroup
// variants where its adapter has no `subgroups`.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Chrome, chromiumPath } from "../scripts/web/chrome.ts";
import { bundle } from "../scripts/web/build.ts";
import type { ParityPage } from "./parity_page.ts";
import { SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { webgpuParity } from "./webgpu_parity.ts";
import { modelGradients } from "./model_grads.ts";

const S = suite("webgpu kernels vs cpu in chromium (float32, poisoned outputs)");

/** Bundles the page, serves it on a free local port, opens it in chromium and returns what it wrote. */
async function runPage(): Promise<ParityPage> {
  const dir = Deno.makeTempDirSync({ prefix: "fimscope-parity-" });
  let srv: Deno.HttpServer | null = null, chrome: Chrome | null = null;
  try {
    await bundle("test/parity_page.ts", `${dir}/parity.js`);
    const js = Deno.readFileSync(`${dir}/parity.js`);
    // an error before the page's own try (a module that fails to load) ends the run at once, with its message
    const page = `<!doctype html><html><head><title>running</title><script>
      const fail = (m) => { window.parity = { adapter: "", subgroups: false, subgroupHeader: null, subgroupSizes: null, cases: [], error: String(m) }; document.title = "done"; };
      addEventListener("error", (e) => fail(e.message));
      addEventListener("unhandledrejection", (e) => fail(e.reason && e.reason.stack || e.reason));
    </script></head><body><script type="module" src="/parity.js"></script></body></html>`;
    srv = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) =>
      new URL(req.url).pathname === "/parity.js"
        ? new Response(js, { headers: { "content-type": "text/javascript" } })
        : new Response(page, { headers: { "content-type": "text/html" } }));
    chrome = await Chrome.launch();
    await chrome.goto(`http://127.0.0.1:${(srv.addr as Deno.NetAddr).port}/`);
    // about 35 s here; a page that has not finished in 3 minutes is stuck
    await chrome.waitFor("document.title === 'done'", 180000).catch((e) => {
      throw new Error(`${(e as Error).message}; the page's console: ${chrome!.console.slice(-10).join(" | ")}`);
    });
    return await chrome.eval<ParityPage>("window.parity");
  } finally {
    // each step on its own, so one that fails neither skips the others nor hides the run's error
    await chrome?.close().catch(() => {});
    await srv?.shutdown().catch(() => {});
    try { Deno.removeSync(dir, { recursive: true }); } catch { /* already gone */ }
  }
}

if (chromiumPath() === null) {
  console.warn("  (chromium not installed: the WebGPU kernels' browser check skipped; apt-get install -y chromium)");
  S.skip("webgpu kernel variants in headless chromium (skipped: no chromium)", () => {});
} else {
  const page = await runPage();
  if (page.error) throw new Error(`the parity page failed: ${page.error}`);
  const sizes = page.subgroupSizes ? `subgroup size ${[...new Set(page.subgroupSizes)].join("-")}` : "subgroup size not reported";
  // no subgroups: skipped visibly (FIMSCOPE_REQUIRE_WEBGPU=1, as CI runs, counts a skip as a failure), never passed
  if (!page.subgroups) S.skip(`matmul variants ${SUBGROUP_VARIANTS.join(", ")} in chromium (skipped: no subgroups feature on ${page.adapter})`);
  const isSubgroupCase = (name: string) => SUBGROUP_VARIANTS.some((v) => name.includes(`matmul variant ${v}`)) || name.includes("conv2d variant gemm");
  S(`the page ran the suite's cases on ${page.adapter}${page.subgroups ? ` (${sizes})` : ""}`, () => {
    // the cases the Deno suites register, with the subgroup variants' where the page's adapter has them
    const expected: string[] = [];
    webgpuParity(null, (name) => expected.push(name), page.subgroups ? SUBGROUP_VARIANTS : []);
    modelGradients((name) => expected.push(name), "");
    assert.equal(page.cases.map((c) => c.name).sort(), expected.sort());
  });
  const tint = "chrome's compiler (Tint) takes the subgroup shaders with `enable subgroups;`, as the WGSL spec asks";
  if (page.subgroups) S(tint, () => assert.is(page.subgroupHeader, "enable subgroups;\n"));
  else S.skip(`${tint} (skipped: no subgroups feature on ${page.adapter})`);
  for (const c of page.cases) {
    S(`${c.name} (in chromium)`, () => {
      assert.is(c.error, null, c.error ?? "");
      if (page.subgroups && isSubgroupCase(c.name)) {
        assert.ok(c.subgroupDispatches !== -1, "the adapter has no timestamp-query feature to count the subgroup kernel's dispatches with");
        assert.ok(c.subgroupDispatches > 0, `no subgroup kernel dispatched (${c.subgroupDispatches})`);
      }
    });
  }
}

S.run();
