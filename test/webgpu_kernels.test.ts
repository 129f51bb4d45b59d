// Every WebGPU kernel against the CPU backend on random shapes (odd, size 1, not multiples of
// the tile), with output buffers poisoned with NaN so an unwritten element fails: the shared
// parity cases (test/kernel_parity.ts) over each kernel variant, and WebGPU's own checks.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { matmulShader, SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { probeSubgroupHeader } from "../src/kernels/webgpu/device.ts";
import { PROFILE_BATCH } from "../src/kernels/webgpu/profiler.ts";
import { gpuTest, webgpu } from "./helpers.ts";
import { subgroupVariants, webgpuParity } from "./webgpu_parity.ts";

const gpu = await webgpu();
const S = suite("webgpu kernels vs cpu (float32, poisoned outputs)");
const G = gpuTest(S, gpu);
S.before(() => { if (gpu) gpu.rt.poison = true; });
S.after(() => { if (gpu) gpu.rt.poison = false; });

G("poisoning catches an element a kernel did not write", async (gpu) => {
  const out = gpu.rt.alloc(10);
  // A fill told to write only 7 of 10 elements.
  const { FILL, fillShader } = await import("../shaders/elementwise.wgsl.ts");
  const { f32bits } = await import("../shaders/preamble.ts");
  gpu.rt.dispatch("fill", fillShader, FILL.pack({ n: 7, value: f32bits(1) }), [], out, 1);
  const d = await gpu.rt.read(out, 10);
  gpu.rt.free(out);
  assert.ok(Number.isNaN(d[9]) && d[0] === 1);
});

G("the profiler counts every dispatch by kernel, over more than one query batch", async (gpu) => {
  if (!gpu.rt.device.features.has("timestamp-query")) {
    assert.throws(() => gpu.rt.startProfile(), /timestamp-query/);
    return;
  }
  const a = T.ones([300], { backend: gpu });
  gpu.rt.startProfile();
  let rows;
  try {
    for (let i = 0; i < PROFILE_BATCH + 44; i++) T.tidy(() => void T.exp(a));
  } finally {
    rows = await gpu.rt.stopProfile();
    a.dispose();
  }
  const exp = rows.find((r) => r.kernel === "unary:exp");
  assert.is(exp?.count, PROFILE_BATCH + 44);
  assert.ok(rows.every((r) => r.ms >= 0 && Number.isFinite(r.ms)) && exp!.ms > 0, JSON.stringify(rows));
  // Stopped: nothing more is timed.
  T.tidy(() => void T.exp(T.ones([3], { backend: gpu })));
  assert.equal(await gpu.rt.stopProfile(), []);
});

S("the subgroup shaders' first line: `enable subgroups;` where the compiler takes it, none where it refuses it (naga), no subgroup kernels where neither compiles", async () => {
  // a device whose compiler refuses what `refuses` matches (at the module, or at the pipeline), seen
  // through its error scopes, which the probe must push and pop in pairs
  const device = (features: string[], refuses: RegExp, at: "module" | "pipeline" = "module", filter: GPUErrorFilter = "validation") => {
    let last = "";
    const scopes: GPUErrorFilter[] = [], errors: (GPUError | null)[] = [];
    const d = {
      features: new Set(features) as unknown as GPUSupportedFeatures,
      pushErrorScope: (f: GPUErrorFilter): undefined => { scopes.push(f); errors.push(null); },
      createShaderModule: (m: GPUShaderModuleDescriptor) => {
        last = m.code;
        if (at === "module" && refuses.test(last)) errors[scopes.lastIndexOf("validation")] = { message: "refused" } as GPUError;
        return {} as GPUShaderModule;
      },
      createComputePipeline: () => {
        if (at === "pipeline" && refuses.test(last)) errors[scopes.lastIndexOf(filter)] = { message: "refused" } as GPUError;
        return {} as GPUComputePipeline;
      },
      popErrorScope: () => { scopes.pop(); return Promise.resolve(errors.pop() ?? null); },
      open: () => scopes.length,
    };
    return d;
  };
  for (const at of ["module", "pipeline"] as const) {
    const tint = device(["subgroups"], /^$/, at), naga = device(["subgroups"], /enable subgroups/, at), neither = device(["subgroups"], /subgroupAdd/, at);
    assert.is(await probeSubgroupHeader(tint), "enable subgroups;\n");
    assert.is(await probeSubgroupHeader(naga), "");
    assert.is(await probeSubgroupHeader(neither), null);
    assert.equal([tint.open(), naga.open(), neither.open()], [0, 0, 0], "every scope popped");
  }
  // a driver's failure reported as an internal error at the pipeline
  assert.is(await probeSubgroupHeader(device(["subgroups"], /enable subgroups/, "pipeline", "internal")), "");
  assert.is(await probeSubgroupHeader(device([], /^$/)), null);
  // the kernel takes the device's first line, and none without one
  assert.ok(!matmulShader("subgroup", false, false, "").includes("enable subgroups"));
  assert.ok(matmulShader("subgroup", false, false, "enable subgroups;\n").startsWith("enable subgroups;\n"));
  assert.throws(() => matmulShader("subgroup"), /subgroup header/);
});

// The subgroup variants where the device has the feature (not lavapipe under Deno: Chromium's
// SwiftShader has it, and test/browser_kernels.test.ts runs every case there too); where it has
// not, a notice says so (a skipped test would fail CI's FIMSCOPE_REQUIRE_WEBGPU=1 run on lavapipe).
if (gpu && !subgroupVariants(gpu).length) {
  console.warn(`notice: matmul variants ${SUBGROUP_VARIANTS.join(", ")} not checked here: ${gpu.rt.subgroupsOff} (${gpu.description}; test/browser_kernels.test.ts checks them in chromium)`);
}

// The shared cases (test/kernel_parity.ts) over every kernel variant.
webgpuParity(gpu, (name, fn) => G(name, fn));

S.run();
