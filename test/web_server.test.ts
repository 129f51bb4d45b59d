// The page's server (scripts/web/serve.ts) serves only its folders, and the gpu.js fallback's
// per-renderer rule (src/kernels/gpujs.ts) keeps software renderers on the CPU.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { resolvePath, serve } from "../scripts/web/serve.ts";
import { GpujsBackend, type GpuClass, gpujsPolicy, isSoftwareRenderer } from "../src/kernels/gpujs.ts";

const S = suite("web server and fallback rule");

S("resolvePath: the page, the bundles, web/ and top-level weights only; no '..'", () => {
  assert.ok(resolvePath("/")!.endsWith("/web/index.html"));
  assert.ok(resolvePath("/dist/web.js")!.endsWith("/dist/web.js"));
  assert.ok(resolvePath("/web/data/sets.json")!.endsWith("/web/data/sets.json"));
  assert.ok(resolvePath("/weights/vae-fashion.safetensors")!.endsWith("/weights/vae-fashion.safetensors"));
  assert.ok(resolvePath("/gpu.js")!.endsWith("/node_modules/gpu.js/dist/gpu-browser.min.js"));
  for (const bad of ["/web/../deno.json", "/weights/checkpoints/x.safetensors", "/src/kernels/cpu.ts", "/package.json", "/web/%2e%2e/x", "/dist/..\\x"]) {
    assert.is(resolvePath(decodeURIComponent(bad)), null, bad);
  }
});

S("serve: files with their types and isolation headers; 404 outside", async () => {
  const port = 8890 + Math.floor(Math.random() * 100);
  const server = serve(port);
  try {
    const r = await fetch(`http://127.0.0.1:${port}/web/models.json`);
    assert.is(r.status, 200);
    assert.is(r.headers.get("content-type"), "application/json");
    assert.is(r.headers.get("cross-origin-embedder-policy"), "require-corp");
    assert.ok((await r.json()).models.length >= 2);
    for (const p of ["/package.json", "/web/../package.json", "/web/nothing-here.json"]) {
      const q = await fetch(`http://127.0.0.1:${port}${p}`);
      assert.is(q.status, 404, p);
      await q.body?.cancel();
    }
  } finally {
    await server.shutdown();
  }
});

S("gpu.js rule: software renderers run every op on the CPU; without WebGL2 the backend is refused", () => {
  for (const r of ["ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)", "llvmpipe (LLVM 15.0.6, 256 bits)"]) {
    assert.ok(isSoftwareRenderer(r), r);
    assert.equal(gpujsPolicy(r).ops, []);
  }
  const hw = gpujsPolicy("ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0)");
  assert.equal(hw.ops, ["matmul", "conv2d", "conv2dInputGrad", "conv2dWeightGrad"]);
  assert.is(hw.minMacs, 1 << 22);
  const NoWebGL2 = class { static isWebGL2Supported = false; createKernel() { throw new Error("unused"); } } as unknown as GpuClass;
  assert.throws(() => new GpujsBackend(NoWebGL2), /WebGL2 is not supported/);
});

S.run();
