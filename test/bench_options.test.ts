// The bench scripts' options (src/io/options.ts's parseOptions): a bad value is refused before any
// work with one `error:` line naming the script and the option, exit 1, nothing on stdout. One
// case per script that takes options, each a subprocess (three at a time).
import { suite } from "uvu";
import * as assert from "uvu/assert";

const S = suite("bench options");
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const dec = new TextDecoder();

/** [script, its name in the error line, arguments, the option the error names] */
const CASES: [string, string, string[], string][] = [
  ["run", "bench", ["--iterations", "0"], "--iterations"],
  ["conv_shapes", "conv_shapes", ["--repeats", "x"], "--repeats"],
  ["detector", "detector", ["--images", "0"], "--images"],
  ["detector", "detector", ["--old", `${ROOT}/no-such-checkout`], "--old"], // was found missing after part 1's work
  ["features", "features", ["--backend", "tpu"], "--backend"],
  ["features", "features", ["--backend", "wasm,wasm"], "--backend"], // ran the models, then failed on a duplicate task name
  ["features_ab", "features_ab", ["--old", `${ROOT}/no-such-checkout`], "--old"],
  ["fused_ab", "fused_ab", ["--ops", "relu"], "--ops"],
  ["groupnorm", "groupnorm", ["--rounds", "x"], "--rounds"],
  ["in_situ", "in_situ", ["--rounds", "0"], "--rounds"],
  ["in_situ", "in_situ", ["--work", "both"], "--work"],
  ["js_profile", "js_profile", ["--runs", "0"], "--runs"],
  ["js_profile", "js_profile", ["--model", `${ROOT}/package.json`], "--model"], // a file that is no model: refused before the child starts
  ["small_ops", "small_ops", ["--iterations", "-1"], "--iterations"],
  ["torch", "torch", ["--warm", "-1"], "--warm"],
  ["torch_shapes", "torch_shapes", ["--json", `${ROOT}/package.json`, "--run", "x", "--out", "/tmp/fimscope-shapes.md"], "--json"], // a JSON without the run's shapes
  ["train_step", "train_step", ["--batch", "0"], "--batch"],
  ["unet_ab", "unet_ab", ["--old", ROOT, "--n", "0"], "--n"],
  ["unet_ab", "unet_ab", ["--old", `${ROOT}/no-such-checkout`], "--old"],
  ["wasm_ab", "wasm_ab", ["--old", ROOT, "--rounds", "1.5"], "--rounds"],
  ["wasm_ab", "wasm_ab", ["--old", ROOT, "--processes", "0"], "--processes"],
  ["wasm_ab", "wasm_ab", ["--old", ROOT, "--side", "both,old"], "--side"],
  ["wasm_ab", "wasm_ab", ["--old", ROOT, "--processes", "2", "--side", "old"], "--side"], // a child's option: refused with --processes
  ["wasm_gemm", "wasm_gemm", ["--n", "0"], "--n"],
];

S("a bad option value: exit 1, one error line naming the script and the option, nothing on stdout", async () => {
  const results: { code: number; out: string; err: string }[] = [];
  let next = 0;
  await Promise.all([0, 1, 2].map(async () => {
    while (next < CASES.length) {
      const k = next++, [script, , args] = CASES[k];
      const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/bench/${script}.ts`, ...args], cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
      results[k] = { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
    }
  }));
  CASES.forEach(([script, name, args, opt], k) => {
    const { code, out, err } = results[k], what = `bench/${script}.ts ${args.join(" ")}`;
    const lines = err.trim().split("\n");
    assert.is(code, 1, `${what}: exit ${code}; stderr ${err}`);
    assert.is(lines.length, 1, `${what}: ${lines.length} lines on stderr: ${err}`);
    assert.ok(lines[0].startsWith(`error: ${name}: ${opt} `), `${what}: ${lines[0]}`);
    assert.is(out, "", `${what}: stdout ${out}`);
  });
});

S.run();
