// Browser entry of the runtime check (bundled by check.ts).
import { runChecks } from "../runtime_checks.ts";

const out = await runChecks();
document.body.textContent = "RESULT " + JSON.stringify(out);
document.title = "done";
