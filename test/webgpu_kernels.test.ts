// Every WebGPU kernel against the CPU backend (test/kernel_parity.ts: odd, size-1 and non-tile
// shapes, outputs poisoned with NaN so an unwritten element fails), over each kernel variant.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { MATMUL_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv2d.wgsl.ts";
import { STRIDED_VARIANTS } from "../src/kernels/webgpu/strided.ts";
import { webgpu } from "./helpers.ts";
import { kernelParity } from "./kernel_parity.ts";

const gpu = await webgpu() as WebGPUBackend | null;
const S = suite("webgpu kernels vs cpu (float32, poisoned outputs)");

if (gpu) {
  S("poisoning catches an element a kernel did not write", async () => {
    gpu.rt.poison = true;
    const out = gpu.rt.alloc(10);
    // A fill told to write only 7 of 10 elements.
    const { fillShader } = await import("../shaders/elementwise.wgsl.ts");
    gpu.rt.dispatch("fill", fillShader, [7, new Uint32Array(new Float32Array([1]).buffer)[0]], [], out, 1);
    const d = await gpu.rt.read(out, 10);
    gpu.rt.free(out);
    gpu.rt.poison = false;
    assert.ok(Number.isNaN(d[9]) && d[0] === 1);
  });

  const over = (family: "reduce" | "strided" | "matmul" | "conv", list: readonly string[]) => async (f: (v: string) => Promise<void>) => {
    for (const v of list) {
      (gpu.variants as unknown as Record<string, string>)[family] = v;
      await f(v);
    }
    (gpu.variants as unknown as Record<string, string>)[family] = "auto";
  };
  kernelParity(S, {
    backend: gpu,
    poison: (on) => { gpu.rt.poison = on; },
    variants: {
      reduce: over("reduce", ["loop", "wide", "auto"]), strided: over("strided", STRIDED_VARIANTS),
      matmul: over("matmul", MATMUL_VARIANTS), conv: over("conv", CONV_VARIANTS),
    },
    // gemm runs on the matmul kernels: check it over each of them (per-group weights repeat across images).
    convMatmuls: (conv, f) => over("matmul", conv === "gemm" ? ["auto", "naive", "block4x8", "grouped8x8", "rows8x8", "rows16x4", "tiled"] : ["auto"])(f),
  });
} else {
  S("webgpu adapter", () => {
    console.warn("  (no WebGPU adapter: kernel suite skipped)");
  });
}

S.run();
