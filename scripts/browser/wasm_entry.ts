// Browser entry of the wasm backend's runtime check (bundled by check.ts --wasm): the same cases
// as the WebGPU check, on the wasm backend (threads when the page is cross-origin isolated), and
// whether its workers took part in a product big enough to be split.
import * as T from "../../src/autograd/index.ts";
import { runChecks } from "../runtime_checks.ts";
import { createWasmBackend, type WasmBackend } from "../../src/kernels/wasm/backend.ts";

let wb: WasmBackend | null = null;
const out = await runChecks(async () => (wb = await createWasmBackend()));
out.crossOriginIsolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false;
if (wb) {
  const b: WasmBackend = wb;
  const a = T.randn(new T.Generator(9), [384, 384], { backend: b });
  for (let i = 0; i < 5; i++) {
    T.matmul(a, a).dispose();
    await new Promise((r) => setTimeout(r, 10));
  }
  out.workerTasks = b.workerTasks;
}
document.body.textContent = "RESULT " + JSON.stringify(out);
document.title = "done";
