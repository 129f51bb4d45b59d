// Node entry of the wasm backend's runtime check (bundled by check.ts --wasm): the same cases as
// the WebGPU check, on the wasm backend with node:worker_threads, and whether the workers took part.
import { runWasmChecks } from "../wasm_checks.ts";

const { out, backend } = await runWasmChecks();
backend?.close();
console.log("RESULT " + JSON.stringify(out));
(globalThis as unknown as { process: { exitCode: number } }).process.exitCode = out.ok && (out.workerTasks as number) > 0 ? 0 : 1;
