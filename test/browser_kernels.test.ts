// Every WebGPU kernel case of the Deno suite (test/webgpu_parity.ts over every variant: CPU
// reference, odd, size-1 and non-tile shapes, outputs poisoned with NaN) and each model's loss
// gradient against float64 central differences (test/model_grads.ts), run again in headless
// Chromium by test/parity_page.ts, bundled and served here. Chrome compiles the WGSL with Tint
// where Deno has naga (Tint rejected powScalar's constant NaN, which naga took: every unary op
// failed to compile in Chrome until 2026-12-07), and its SwiftShader adapter has the `subgroups`
// feature that Deno's lavapipe lacks, so the subgroup variants run only here: each of their cases
// must have dispatched the subgroup kernel itself (the profiler's count), so a silent fallback to
// another kernel fails. Skipped (visibly) where chromium is not installed; where its adapter has
// no `subgroups`, a notice says the subgroup variants were not checked.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Chrome, chromiumPath } from "../scripts/web/chrome.ts";
import type { ParityPage } from "./parity_page.ts";
import { SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { webgpuParity } from "./webgpu_parity.ts";
import { modelGradients } from "./model_grads.ts";

const S = suite("webgpu kernels vs cpu in chromium (float32, poisoned outputs)");
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
  console.warn("  (chromium not installed: the WebGPU kernels' browser check skipped; apt-get install -y chromium)");
  S.skip("webgpu kernel variants in headless chromium (skipped: no chromium)", () => {});
} else {
  const page = await runPage();
  if (page.error) throw new Error(`the parity page failed: ${page.error}`);
  const sizes = page.subgroupSizes ? `subgroup size ${[...new Set(page.subgroupSizes)].join("-")}` : "subgroup size not reported";
  if (!page.subgroups) console.warn(`notice: matmul variants ${SUBGROUP_VARIANTS.join(", ")} not checked in chromium either: no subgroups feature on ${page.adapter}`);
  const isSubgroupCase = (name: string) => SUBGROUP_VARIANTS.some((v) => name.includes(`matmul variant ${v}`)) || name.includes("conv2d variant gemm");
  S(`the page ran the suite's cases on ${page.adapter}${page.subgroups ? ` (${sizes})` : ""}`, () => {
    // the cases the Deno suites register on an adapter without subgroups, and with them one more per subgroup variant
    const expected: string[] = [];
    webgpuParity(null, (name) => expected.push(name));
    modelGradients((name) => expected.push(name), "");
    const subgroupCases = page.subgroups ? SUBGROUP_VARIANTS.map((v) => `matmul variant ${v}: transposes, batch broadcast, odd sizes`) : [];
    assert.equal(page.cases.map((c) => c.name).sort(), [...expected, ...subgroupCases].sort());
  });
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
