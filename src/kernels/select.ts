// Choosing a backend: explicitly, or by default WebGPU when an adapter exists, else the CPU.
import type { Backend } from "./backend.ts";
import { cpu, setDefaultBackend } from "./default.ts";

export type BackendChoice = "auto" | "cpu" | "webgpu";

export async function selectBackend(choice: BackendChoice = "auto", opts: { quiet?: boolean; makeDefault?: boolean } = {}): Promise<Backend> {
  let b: Backend = cpu;
  if (choice !== "cpu") {
    try {
      const { createWebGPUBackend } = await import("./webgpu/backend.ts");
      b = await createWebGPUBackend();
    } catch (e) {
      if (choice === "webgpu") throw e;
      if (!opts.quiet) console.error(`notice: WebGPU unavailable (${(e as Error).message.split("\n")[0]}); using the cpu backend`);
    }
  }
  if (opts.makeDefault !== false) setDefaultBackend(b);
  return b;
}
