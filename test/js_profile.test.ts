// bench/js_profile.ts: a CPU profile summed by function (self and inclusive time), a sampling
// heap profile summed by function (bytes), and the tool end to end on small runs (a child process
// under the inspector).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type CpuProfile, type HeapNode, summarize, summarizeHeap, topBytes, topLines } from "../bench/js_profile.ts";

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

S("the tool end to end: a VAE step profiled over its 3 timed runs only (not its warm-up), both tables 4 rows long, the .cpuprofile written", async () => {
  const out = await Deno.makeTempFile({ suffix: ".cpuprofile" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/bench/js_profile.ts`, "--model", `${ROOT}/weights/vae-fashion.safetensors`, "--runs", "3", "--top", "4", "--out", out],
      stdout: "piped", stderr: "piped", signal: AbortSignal.timeout(180_000),
    }).output();
    const text = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
    assert.is(r.code, 0, err);
    const lines = text.split("\n");
    const perRun = Number(/: ([\d.]+) ms per run while profiled/.exec(text)?.[1]);
    assert.ok(perRun > 0, text);
    assert.match(text, /^profiled \d+ ms \(3 runs, \d+ samples every 100 us; \d+ ms idle, left out\)/m);
    for (const [head, next] of [["self time", "inclusive time"], ["inclusive time", "wrote "]]) {
      const at = lines.findIndex((l) => l.startsWith(head));
      assert.ok(at >= 0, `${head}: ${text}`);
      for (const l of lines.slice(at + 1, at + 5)) assert.match(l, /^ +\d+\.\d% +\d+\.\d{3} ms {2}\S/);
      assert.ok(lines[at + 5].startsWith(next), `--top 4: four rows, then '${next}': ${text}`);
    }
    const p = JSON.parse(Deno.readTextFileSync(out)) as CpuProfile;
    assert.ok(p.nodes.length > 10 && p.samples.length > 10 && p.samples.length === p.timeDeltas.length);
    // the timed runs alone: the 23 warm-up runs before them would make the profile several times longer
    const s = summarize(p, ROOT);
    assert.ok(s.totalMs > 0.5 * 3 * perRun && s.totalMs < 2 * 3 * perRun + 20, `profiled ${s.totalMs} ms for 3 runs of ${perRun} ms`);
    // the profiled work is the model's: the training step's backward pass is on some sample's stack
    const inclusive = [...s.inclusive.keys()];
    assert.ok(inclusive.some((k) => k.startsWith("propagate src/autograd/engine.ts:")), inclusive.slice(0, 20).join("\n"));
  } finally {
    Deno.removeSync(out);
  }
});

S("a heap profile's bytes summed by function: each node's own bytes to its function (self) and once to every function on its stack (inclusive)", () => {
  const frame = (functionName: string, line = 0) => ({ functionName, url: `file://${ROOT}/src/x.ts`, lineNumber: line });
  // (root) -> f (100 bytes) -> g (300) and -> f again (recursion: 50, counted once in f's inclusive bytes)
  const head: HeapNode = {
    callFrame: { functionName: "(root)", url: "", lineNumber: -1 }, selfSize: 0,
    children: [{ callFrame: frame("f", 9), selfSize: 100, children: [{ callFrame: frame("g", 19), selfSize: 300 }, { callFrame: frame("f", 9), selfSize: 50 }] }],
  };
  const h = summarizeHeap(head, ROOT);
  assert.is(h.totalBytes, 450);
  assert.equal(Object.fromEntries(h.self), { "f src/x.ts:10": 150, "g src/x.ts:20": 300 });
  assert.equal(Object.fromEntries(h.inclusive), { "(root)": 450, "f src/x.ts:10": 450, "g src/x.ts:20": 300 });
  // 300 bytes over 2 runs: 0.1 KB a run
  assert.equal(topBytes(h.self, h.totalBytes, 2, 1), ["  66.7%       0.1 KB  g src/x.ts:20"]);
});

S("the tool's --heap end to end: a VAE step's allocations over its 3 timed runs, both tables in the format, the backward pass among the 40 largest allocators with their callees", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/bench/js_profile.ts`, "--model", `${ROOT}/weights/vae-fashion.safetensors`, "--runs", "3", "--top", "40", "--heap", "--heap-interval", "1024"],
    stdout: "piped", stderr: "piped", signal: AbortSignal.timeout(180_000),
  }).output();
  const text = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
  assert.is(r.code, 0, err);
  const kb = Number(/^allocated (\d+) KB per run \(3 runs, a sample every 1024 bytes/m.exec(text)?.[1]);
  // a step makes hundreds of tensors and op records: well above 10 KB, well below a gigabyte
  assert.ok(kb > 10 && kb < 1e6, text);
  const lines = text.split("\n");
  for (const head of ["self (", "inclusive ("]) {
    const at = lines.findIndex((l) => l.startsWith(head));
    assert.ok(at >= 0, `${head}: ${text}`);
    for (const l of lines.slice(at + 1, at + 5)) assert.match(l, /^ +\d+\.\d% +\d+\.\d KB {2}\S/);
  }
  assert.match(text, /KB {2}propagate src\/autograd\/engine\.ts:/);
});

S("the tool refuses, before any work, an --out that is its --model (the model is not overwritten)", async () => {
  const model = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    Deno.copyFileSync(`${ROOT}/weights/vae-fashion.safetensors`, model);
    const before = Deno.readFileSync(model);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/bench/js_profile.ts`, "--model", model, "--out", model], stdout: "piped", stderr: "piped", signal: AbortSignal.timeout(60_000),
    }).output();
    const err = new TextDecoder().decode(r.stderr).trim();
    assert.is(r.code, 1);
    assert.is(new TextDecoder().decode(r.stdout), "");
    assert.match(err, /^error: js_profile: --out '.+': is --model '.+' itself/);
    assert.equal(Deno.readFileSync(model), before);
  } finally {
    Deno.removeSync(model);
  }
});

S.run();
