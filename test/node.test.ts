// The engine under Node 20 (a runtime the README names beside Deno and Chrome): scripts/node/check.ts
// bundles it, runs it with node and prints the page-style runtime checks' result (a matmul, a
// conv2d, movement ops with broadcasting and their gradient, and a gradient, each against the CPU
// backend; "ok" where every error is under 1e-4): on WebGPU through the `webgpu` package (Dawn) on
// Chromium's SwiftShader Vulkan driver, and on the wasm backend with node:worker_threads (its
// workers seen to run tasks; Node 20's V8 has no relaxed SIMD, so this is the product kernels'
// multiply-then-add form, as test/wasm_kernels.test.ts's fma: false backend). Skipped
// (visibly) without node, or without chromium's SwiftShader driver for the WebGPU run.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { pathExists } from "../src/data/files.ts";

const S = suite("the engine under node");
const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
const has = (cmd: string[]) => {
  try {
    return new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
};

/** scripts/node/check.ts with `args`: its exit code and the result it printed. */
async function check(args: string[]): Promise<{ code: number; result: Record<string, unknown> | null; text: string }> {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", new URL("../scripts/node/check.ts", import.meta.url).pathname, ...args], stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  const line = text.split("\n").find((l) => l.startsWith("RESULT "));
  return { code: r.code, result: line ? JSON.parse(line.slice(7)) : null, text };
}

const node = has(["node", "--version"]);
for (const [name, args, needs] of [
  ["WebGPU through Dawn (the webgpu package) on SwiftShader's Vulkan driver", ["--swiftshader"], pathExists(SWIFTSHADER) ? null : `no ${SWIFTSHADER} (apt-get install -y chromium)`],
  ["the wasm backend on node:worker_threads", ["--wasm"], null],
] as [string, string[], string | null][]) {
  const why = !node ? "no node" : needs;
  if (why) {
    S.skip(`${name} (skipped: ${why})`, () => {});
    continue;
  }
  S(`${name}: every check within 1e-4 of the CPU backend`, async () => {
    const { code, result, text } = await check(args);
    assert.ok(result, `no result: ${text.slice(-600)}`);
    // the checks' errors (workerTasks: how many tasks the wasm backend's worker threads ran)
    const errors = Object.entries(result!).filter(([k, v]) => typeof v === "number" && k !== "workerTasks") as [string, number][];
    assert.ok(errors.length >= 4, JSON.stringify(result));
    for (const [k, e] of errors) assert.ok(e < 1e-4, `${k}: ${e}`);
    if (args.includes("--wasm")) assert.ok((result!.workerTasks as number) > 0, `the worker threads ran no task: ${JSON.stringify(result)}`);
    assert.is(result!.ok, true);
    assert.is(code, 0);
  });
}

S.run();
