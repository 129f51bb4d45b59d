// Node entry of the wasm backend's runtime check (bundled by check.ts --wasm): the same cases as
// the WebGPU check, on the wasm backend with node:worker_threads, and whether the workers took part.
import * as T from "../../src/autograd/index.ts";
import { runChecks } from "../runtime_checks.ts";
import { createWasmBackend, type WasmBackend } from "../../src/kernels/wasm/backend.ts";

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
  b.close();
}
console.log("RESULT " + JSON.stringify(out));
(globalThis as unknown as { process: { exitCode: number } }).process.exitCode = out.ok && (out.workerTasks as number) > 0 ? 0 : 1;
