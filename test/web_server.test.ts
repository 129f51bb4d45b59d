// The page's server (scripts/web/serve.ts) serves only its folders, answers --help, refuses a port
// in use with one error line; the gpu.js fallback's per-renderer rule (src/kernels/gpujs.ts) keeps
// software renderers on the CPU.
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
  assert.ok(resolvePath("/favicon.ico")!.endsWith("/web/favicon.svg"), "browsers ask for /favicon.ico: no 404 (issue 20: 7)");
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

const serveCmd = (...args: string[]) =>
  new Deno.Command(Deno.execPath(), { args: ["run", "-A", "scripts/web/serve.ts", ...args], stdout: "piped", stderr: "piped" }).output();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

S("npm run web -- --help prints the usage; a port in use is one error line, exit 1, before any build (issue 20: 7)", async () => {
  const h = await serveCmd("--help");
  assert.is(h.code, 0, text(h.stderr));
  assert.match(text(h.stdout), /npm run web \[-- --port 8770\] \[--no-build\]/);
  const port = 8990 + Math.floor(Math.random() * 50);
  const holder = Deno.listen({ port, hostname: "127.0.0.1" });
  try {
    const r = await serveCmd("--port", String(port));
    const err = text(r.stderr).trim().split("\n");
    assert.is(r.code, 1);
    assert.equal(err.length, 1, `stderr: ${text(r.stderr)}`);
    assert.match(err[0], new RegExp(`^error: web: --port '${port}': a free port: this one is in use`));
    assert.is(text(r.stdout), "", "nothing built or served");
  } finally {
    holder.close();
  }
  const bad = await serveCmd("--port", "0");
  assert.is(bad.code, 1);
  assert.match(text(bad.stderr), /^error: web: --port '0'/);
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
