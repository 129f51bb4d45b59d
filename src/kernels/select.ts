// Choosing a backend: explicitly, or by default (`auto`) WebGPU on a real GPU, the wasm SIMD
// backend where the only adapter runs on the CPU (lavapipe, SwiftShader: the adapter says it is a
// fallback adapter, or names a software rasteriser) or where there is none, and the CPU reference
// backend where WebAssembly SIMD is missing too. On this project's CPU-only machine the wasm
// backend measured faster than WebGPU on lavapipe on every bench workload (bench/README.md).
import type { Backend } from "./backend.ts";
import { cpu, setDefaultBackend } from "./default.ts";

export const BACKEND_CHOICES = ["auto", "cpu", "webgpu", "wasm"] as const;
export type BackendChoice = typeof BACKEND_CHOICES[number];

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software/i;

/**
 * Whether the WebGPU adapter runs on the CPU (then the wasm backend is faster): true or false from
 * navigator.gpu's adapter, null where there is no navigator.gpu (Node: see selectBackend) or no adapter.
 */
export async function webgpuIsCpuAdapter(): Promise<boolean | null> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) return null;
  const a = await gpu.requestAdapter().catch(() => null);
  if (!a) return null;
  const info = (a.info ?? {}) as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const fallback = info.isFallbackAdapter ?? (a as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  return fallback || SOFTWARE.test([info.vendor, info.architecture, info.device, info.description].join(" "));
}

async function wasm(): Promise<Backend> {
  const { createWasmBackend } = await import("./wasm/backend.ts");
  return await createWasmBackend();
}

async function webgpu(): Promise<Backend> {
  const { createWebGPUBackend } = await import("./webgpu/backend.ts");
  return await createWebGPUBackend();
}

export interface SelectOptions {
  /** Receives a one-line notice when `auto` settles for a slower backend; the library prints nothing itself (default: ignored). */
  onNotice?: (message: string) => void;
  /** Make the chosen backend the default one (default true). */
  makeDefault?: boolean;
}

export async function selectBackend(choice: BackendChoice = "auto", opts: SelectOptions = {}): Promise<Backend> {
  if (!(BACKEND_CHOICES as readonly string[]).includes(choice)) {
    throw new Error(`--backend: '${choice}' is not a backend; use one of ${BACKEND_CHOICES.join(", ")}`);
  }
  let b: Backend = cpu;
  if (choice === "webgpu") b = await webgpu();
  else if (choice === "wasm") b = await wasm();
  else if (choice === "auto") {
    let cpuAdapter = await webgpuIsCpuAdapter();
    let reason = "";
    const hasNavigatorGpu = !!(globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (cpuAdapter === false || (cpuAdapter === null && !hasNavigatorGpu)) {
      // a real GPU, or no navigator.gpu (Node: Dawn through the webgpu package, judged by its adapter's name)
      try {
        const g = await webgpu();
        const desc = (g as { description?: string }).description ?? "";
        if (cpuAdapter === null && SOFTWARE.test(desc)) {
          cpuAdapter = true;
          reason = "the WebGPU adapter runs on the CPU";
        } else b = g;
      } catch (e) {
        reason = `WebGPU unavailable (${(e as Error).message.split("\n")[0]})`;
      }
    } else reason = cpuAdapter ? "the WebGPU adapter runs on the CPU" : "no WebGPU adapter";
    if (b === cpu) {
      try {
        b = await wasm();
        if (cpuAdapter !== true) opts.onNotice?.(`${reason}; using the wasm backend`);
      } catch (e) {
        opts.onNotice?.(`${reason}, and wasm SIMD unavailable (${(e as Error).message.split("\n")[0]}); using the cpu backend`);
      }
    }
  }
  if (opts.makeDefault !== false) setDefaultBackend(b);
  return b;
}
