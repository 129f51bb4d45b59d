// Node entry of the runtime check (bundled by check.ts, run with node).
import { runChecks } from "../runtime_checks.ts";

const out = await runChecks();
console.log("RESULT " + JSON.stringify(out));
(globalThis as unknown as { process: { exitCode: number } }).process.exitCode = out.ok ? 0 : 1;
