// The wasm backend's runtime check, shared by the browser and Node entries (scripts/*/wasm_entry.ts).
import * as T from "../src/autograd/index.ts";
import { createWasmBackend, type WasmBackend } from "../src/kernels/wasm/backend.ts";
import { runChecks } from "./runtime_checks.ts";

/**
 * runChecks on the wasm backend, then whether its workers took part (`workerTasks`) in products
 * big enough to be split. The backend is returned open.
 */
export async function runWasmChecks(): Promise<{ out: Record<string, unknown>; backend: WasmBackend | null }> {
  let wb: WasmBackend | null = null;
  const out = await runChecks(async () => (wb = await createWasmBackend()));
  if (wb) {
    const b: WasmBackend = wb;
    const a = T.randn(new T.Generator(9), [384, 384], { backend: b });
    for (let i = 0; i < 5; i++) {
      T.matmul(a, a).dispose();
      await new Promise((r) => setTimeout(r, 10));
    }
    out.workerTasks = b.workerTasks;
  }
  return { out, backend: wb };
}
