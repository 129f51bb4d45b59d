// Getting a GPUDevice: Deno and browsers have navigator.gpu; Node uses the `webgpu` package (Dawn).
/// <reference types="@webgpu/types" />
import { matmulShader } from "../../../shaders/matmul.wgsl.ts";

const WANTED_LIMITS = [
  "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupsPerDimension", "maxStorageBuffersPerShaderStage",
] as const;

/** Dawn's instance must outlive every device made from it: if it is collected, the addon crashes. */
let dawnInstance: GPU | null = null;

async function getGPU(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (proc?.versions?.node && !("Deno" in globalThis)) {
    // Node: Dawn through the `webgpu` package.
    const pkg = "webgpu";
    const mod = await import(pkg) as { create: (o: string[]) => GPU; globals: object };
    Object.assign(globalThis, mod.globals);
    // Dawn options, e.g. FIMSCOPE_DAWN_OPTIONS=backend=opengles (with EGL_PLATFORM=surfaceless) on
    // machines whose Vulkan driver Dawn rejects.
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
    dawnInstance ??= mod.create((env.FIMSCOPE_DAWN_OPTIONS ?? "").split(",").filter((s) => s));
    return dawnInstance;
  }
  return null;
}

export interface AcquiredDevice {
  device: GPUDevice;
  description: string;
  /**
   * How this device's WGSL compiler takes the subgroup builtins (subgroupAdd, subgroup_invocation_id):
   * the line a subgroup shader begins with, `enable subgroups;` (the WGSL spec: Chrome's Tint) or
   * nothing (Deno 2.9's naga, which refuses that directive); null where the device has no
   * `subgroups` feature or neither form compiles (the subgroup kernel variants are then unusable).
   */
  subgroupHeader: string | null;
}

/**
 * The first of the subgroup shader headers with which the subgroup kernel itself (the matmul
 * variant `subgroup`) compiles into a pipeline on the device (AcquiredDevice.subgroupHeader): its
 * module and its pipeline made inside validation and internal error scopes, so an error from
 * either stage (naga parses at the module, drivers compile at the pipeline) is caught here and
 * never reaches the runtime's uncaptured errors.
 */
export async function probeSubgroupHeader(
  device: Pick<GPUDevice, "features" | "pushErrorScope" | "popErrorScope" | "createShaderModule" | "createComputePipeline">,
): Promise<string | null> {
  if (!device.features.has("subgroups")) return null;
  for (const header of ["enable subgroups;\n", ""]) {
    device.pushErrorScope("validation");
    device.pushErrorScope("internal");
    let thrown = false;
    try {
      const module = device.createShaderModule({ code: matmulShader("subgroup", false, false, header) });
      device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    } catch {
      thrown = true;
    }
    // both scopes popped whatever happened: an open scope would swallow every later error
    const internal = await device.popErrorScope(), validation = await device.popErrorScope();
    if (!thrown && !internal && !validation) return header;
  }
  return null;
}

export async function acquireDevice(): Promise<AcquiredDevice> {
  const gpu = await getGPU();
  if (!gpu) {
    throw new Error("WebGPU: no navigator.gpu in this runtime (use Deno, Chrome, or Node with the `webgpu` package)");
  }
  // Dawn's OpenGL ES backend only offers compatibility-level adapters that work.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  const compat = (env.FIMSCOPE_DAWN_OPTIONS ?? "").includes("opengles");
  const adapter = (compat ? null : await gpu.requestAdapter({ powerPreference: "high-performance" })) ??
    await gpu.requestAdapter({ featureLevel: "compatibility" } as GPURequestAdapterOptions);
  if (!adapter) {
    throw new Error(
      "WebGPU: no adapter found (requestAdapter() returned null). Without a GPU, install Mesa's lavapipe: " +
        "apt-get install -y mesa-vulkan-drivers",
    );
  }
  // The default device limits are small; ask for what the adapter has.
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === "number") requiredLimits[k] = v;
  }
  // Timestamp queries let the runtime's profiler time each kernel on the device; subgroups enable
  // the subgroup kernel variants (shaders/matmul.wgsl.ts).
  const requiredFeatures = (["timestamp-query", "subgroups"] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info ?? {};
  const description = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(" ") || "unknown adapter";
  return { device, description, subgroupHeader: await probeSubgroupHeader(device) };
}
