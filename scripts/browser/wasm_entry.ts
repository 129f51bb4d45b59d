// Browser entry of the wasm backend's runtime check (bundled by check.ts --wasm): the same cases
// as the WebGPU check, on the wasm backend (threads when the page is cross-origin isolated), and
// whether its workers took part in a product big enough to be split.
import { runWasmChecks } from "../wasm_checks.ts";

const { out } = await runWasmChecks();
out.crossOriginIsolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false;
document.body.textContent = "RESULT " + JSON.stringify(out);
document.title = "done";
