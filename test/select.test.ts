// Backend selection: auto follows the rule in src/kernels/select.ts on whatever this machine has
// (a real GPU: webgpu; a CPU adapter such as lavapipe, or none: wasm), explicit choices are
// honoured, unknown ones refused naming the option.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { selectBackend, webgpuIsCpuAdapter } from "../src/kernels/select.ts";

const S = suite("backend selection");
const close = (b: unknown) => (b as { close?: () => void }).close?.();

S("auto: webgpu on a real GPU, wasm on a CPU adapter or none", async () => {
  const cpuAdapter = await webgpuIsCpuAdapter();
  const notices: string[] = [];
  const b = await selectBackend("auto", { makeDefault: false, onNotice: (m) => notices.push(m) });
  try {
    assert.is(b.name, cpuAdapter === false ? "webgpu" : "wasm", `adapter on the CPU: ${cpuAdapter}`);
    // A notice (to the callback, never printed) only where auto settles for wasm without a CPU adapter.
    assert.equal(notices.length, b.name === "wasm" && cpuAdapter !== true ? 1 : 0, notices.join("; "));
    for (const m of notices) assert.match(m, /; using the wasm backend$/);
  } finally {
    close(b);
  }
});

S("explicit choices are honoured; an unknown one is refused naming --backend", async () => {
  const w = await selectBackend("wasm", { makeDefault: false });
  assert.is(w.name, "wasm");
  close(w);
  assert.is((await selectBackend("cpu", { makeDefault: false })).name, "cpu");
  try {
    await selectBackend("gpu" as "auto", { makeDefault: false });
    assert.unreachable("accepted 'gpu'");
  } catch (e) {
    assert.match((e as Error).message, /^--backend: 'gpu' is not a backend; use one of auto, cpu, webgpu, wasm$/);
  }
});

S.run();
