// bench/js_profile.ts: a CPU profile summed by function (self and inclusive time), and the tool
// end to end on a small run (a child process under the inspector).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type CpuProfile, summarize, topLines } from "../bench/js_profile.ts";

const S = suite("js_profile");
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

S("a profile's samples summed by function: each sample's interval to its function (self) and once to every function on its stack (inclusive)", () => {
  const frame = (functionName: string, line = 0) => ({ functionName, url: `file://${ROOT}/src/x.ts`, lineNumber: line });
  // (root) -> f -> g, and f -> f (recursion: counted once in f's inclusive time)
  const p: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: "(root)", url: "", lineNumber: -1 }, children: [2] },
      { id: 2, callFrame: frame("f", 9), children: [3, 4] },
      { id: 3, callFrame: frame("g", 19) },
      { id: 4, callFrame: frame("f", 9) },
    ],
    // the interval charged to sample i is the delta to sample i + 1 (the last gets none)
    samples: [3, 3, 2, 4, 1],
    timeDeltas: [0, 1000, 2000, 3000, 4000],
    startTime: 0,
    endTime: 10000,
  };
  const s = summarize(p, ROOT);
  assert.is(s.totalMs, 10);
  assert.equal(Object.fromEntries(s.self), { "g src/x.ts:20": 3, "f src/x.ts:10": 7, "(root)": 0 });
  assert.equal(Object.fromEntries(s.inclusive), { "g src/x.ts:20": 3, "f src/x.ts:10": 10, "(root)": 10 });
  assert.equal(topLines(s.self, s.totalMs, 2, 1), ["  70.0%     3.500 ms  f src/x.ts:10"]);
});

S("the tool end to end: a VAE step profiled over 3 runs, both tables and the .cpuprofile written", async () => {
  const out = await Deno.makeTempFile({ suffix: ".cpuprofile" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/bench/js_profile.ts`, "--model", `${ROOT}/weights/vae-fashion.safetensors`, "--runs", "3", "--top", "4", "--out", out],
      stdout: "piped", stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
    assert.is(r.code, 0, err);
    const lines = text.split("\n");
    for (const head of ["self time", "inclusive time"]) {
      const at = lines.findIndex((l) => l.startsWith(head));
      assert.ok(at >= 0, `${head}: ${text}`);
      const rows = lines.slice(at + 1, at + 5);
      assert.equal(rows.length, 4);
      for (const l of rows) assert.match(l, /^ +\d+\.\d% +\d+\.\d{3} ms {2}\S/);
    }
    const p = JSON.parse(Deno.readTextFileSync(out)) as CpuProfile;
    assert.ok(p.nodes.length > 10 && p.samples.length > 10 && p.samples.length === p.timeDeltas.length);
    // the profiled work is the model's: the training step's backward pass is on some sample's stack
    const inclusive = [...summarize(p, ROOT).inclusive.keys()];
    assert.ok(inclusive.some((k) => k.startsWith("propagate src/autograd/engine.ts:")), inclusive.slice(0, 20).join("\n"));
  } finally {
    Deno.removeSync(out);
  }
});

S.run();
