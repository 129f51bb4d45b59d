// Each model's loss gradient on the wasm backend (float32) against float64 central differences
// on the CPU backend (test/model_grads.ts), every fresh output poisoned with NaN.
import { suite } from "uvu";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import { modelGradients } from "./model_grads.ts";

const wb = await createWasmBackend();
const S = suite(`wasm model gradients vs float64 central differences (${wb.description})`);
modelGradients((name, fn) => S(name, () => fn(wb)), "wasm");
S.before(() => { wb.poison = true; });
S.after(() => { wb.poison = false; wb.close(); });

S.run();
