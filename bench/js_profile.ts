// Where a row's JavaScript time goes, by function: a V8 CPU profile (the inspector's sampling
// profiler, every --interval microseconds) of bench/torch.ts's work on the wasm backend (the
// feature pass for 64 images or a training step of one shipped model), over --runs runs after a
// warm-up. With --skip-kernels every kernel phase is skipped, so what is left is the caller's serial
// part (bench/wasm_profile.ts's last line: JavaScript, allocation and garbage collection, the
// TypeScript-loop ops), where the kernels' time would otherwise hide it. Prints the functions with
// the most self time and the most inclusive time (their callees' included), each as a share of the
// profiled time; with --out also writes the profile (`.cpuprofile`: Chrome DevTools opens it). The
// samples of V8's own tick profiler (--prof) leave builtins and garbage collection unnamed; the
// inspector's name them.
//   deno run -A bench/js_profile.ts [--model weights/glow-fashion.safetensors] [--work step|features] [--runs 200] [--skip-kernels] [--top 30] [--interval 100] [--out run.cpuprofile]
// It runs the work in a child process under `--inspect-wait` on a free local port, and talks to it
// over the Chrome DevTools protocol: the child warms up, asks (a runtime binding) for the profiler
// to start, runs the timed runs, and asks for it to stop.
import "../src/cli/errors.ts";
import { choice, flag, inFile, int, outFile, parseOptions, usageError } from "../src/io/options.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
/** V8's CPU profile (the Profiler domain's, and a .cpuprofile file's, format). */
export interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** A function's key: its name, and its file (relative to `root`) and line. */
function keyOf(n: ProfileNode, root: string): string {
  const f = n.callFrame, url = f.url.replace(`file://${root}/`, "");
  return url ? `${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}` : f.functionName || "(anonymous)";
}

/**
 * Self and inclusive time per function in ms, and the profile's total: each sample's interval
 * (the delta to the next sample) charged to its function (self) and once to every distinct
 * function on its stack (inclusive).
 */
export function summarize(p: CpuProfile, root = ""): { totalMs: number; self: Map<string, number>; inclusive: Map<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>(), inclusive = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0) / 1000;
    total += dt;
    let id: number | undefined = p.samples[i];
    const k = keyOf(byId.get(id)!, root);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (; id !== undefined; id = parent.get(id)) {
      const kk = keyOf(byId.get(id)!, root);
      if (seen.has(kk)) continue;
      seen.add(kk);
      inclusive.set(kk, (inclusive.get(kk) ?? 0) + dt);
    }
  }
  return { totalMs: total, self, inclusive };
}

/** The `top` largest entries, one line each: share of the total, ms per run, the function. */
export function topLines(m: Map<string, number>, totalMs: number, runs: number, top: number): string[] {
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, ms]) => `${(100 * ms / totalMs).toFixed(1).padStart(6)}%  ${(ms / runs).toFixed(3).padStart(8)} ms  ${k}`);
}

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const here = decodeURIComponent(new URL(import.meta.url).pathname);

if (import.meta.main && Deno.args[0] === "--child") {
  // the child: the work, then the timed runs between the two calls of the parent's binding
  const o = JSON.parse(Deno.args[1]) as { model: string; work: "step" | "features"; runs: number; skip: boolean };
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const ask = (what: string) => new Promise<void>((go) => {
    g.__jsProfileGo = go;
    g.__jsProfile(what);
  });
  try {
    const { createWasmBackend } = await import("../src/kernels/wasm/backend.ts");
    const { ourWork } = await import("./torch.ts");
    const be = await createWasmBackend();
    const w = await ourWork(o.model, o.work, be);
    for (let i = 0; i < 3; i++) await w.run();
    if (o.skip) {
      // both forms of a phase (task arrays and job lists); the values are garbage from here on
      const pool = be.runtime.pool as { run?: unknown; runList?: unknown };
      pool.run = pool.runList = () => {};
    }
    for (let i = 0; i < 20; i++) await w.run();
    await ask("start");
    const t0 = performance.now();
    for (let i = 0; i < o.runs; i++) await w.run();
    console.log(`${o.work} ${o.model}${o.skip ? ", every kernel phase skipped" : ""}: ${((performance.now() - t0) / o.runs).toFixed(2)} ms per run while profiled (${be.description})`);
    await ask("stop");
    Deno.exit(0);
  } catch (e) {
    // told to the parent, which lets go of the inspector (a child with a debugger attached waits for it before it exits)
    await ask(`error ${(e as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) {
  const a = parseOptions("js_profile", {
    model: inFile().default(`${ROOT}/weights/glow-fashion.safetensors`), work: choice(["step", "features"] as const).default("step"),
    runs: int({ min: 1, max: 100000 }).default(200), "skip-kernels": flag(), top: int({ min: 1, max: 1000 }).default(30),
    interval: int({ min: 10, max: 100000 }).default(100), out: outFile(),
  });
  // the model read here first, so that a file that is no model is refused before any work
  try {
    const { loadModel } = await import("../src/models/registry.ts");
    const { cpu } = await import("../src/autograd/index.ts");
    await loadModel(a.model, cpu);
  } catch (e) {
    throw usageError("js_profile", "--model", a.model, `a model file fimscope can load (${(e as Error).message.split("\n")[0]})`);
  }
  const child = { model: a.model, work: a.work, runs: a.runs, skip: a["skip-kernels"] };
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--inspect-wait=127.0.0.1:0", here, "--child", JSON.stringify(child)], stdout: "inherit", stderr: "piped",
  }).spawn();
  // the inspector's address, from the child's first lines on stderr (the rest passed on)
  const lines = proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "", url = "";
  while (!url) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`js_profile: the child exited before its inspector listened: ${buf.trim()}`);
    buf += value;
    url = /ws:\/\/[^\s]+/.exec(buf)?.[0] ?? "";
  }
  (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      if (!value.includes("Debugger session") && !value.includes("Waiting for the debugger")) Deno.stderr.writeSync(new TextEncoder().encode(value));
    }
  })();
  const ws = new WebSocket(url);
  await new Promise((ok, fail) => {
    ws.onopen = ok;
    ws.onerror = (e) => fail(new Error(`js_profile: cannot reach the child's inspector at ${url}: ${(e as ErrorEvent).message}`));
  });
  let id = 0;
  const replies = new Map<number, (r: unknown) => void>();
  const send = <R>(method: string, params: unknown = {}) => new Promise<R>((ok) => {
    replies.set(++id, ok as (r: unknown) => void);
    ws.send(JSON.stringify({ id, method, params }));
  });
  let profile: CpuProfile | null = null, failed = "";
  const finished = new Promise<void>((end) => {
    ws.onmessage = async (e) => {
      const m = JSON.parse(e.data);
      if (m.id !== undefined) {
        replies.get(m.id)?.(m.result);
        replies.delete(m.id);
      } else if (m.method === "Runtime.bindingCalled" && m.params.name === "__jsProfile") {
        const what: string = m.params.payload;
        if (what === "start") await send("Profiler.start");
        else if (what === "stop") profile = (await send<{ profile: CpuProfile }>("Profiler.stop")).profile;
        else failed = what.replace(/^error /, "");
        await send("Runtime.evaluate", { expression: "globalThis.__jsProfileGo()" });
        if (profile || failed) end();
      }
    };
  });
  await send("Runtime.enable");
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: a.interval });
  await send("Runtime.addBinding", { name: "__jsProfile" });
  await send("Runtime.runIfWaitingForDebugger");
  // (a child with a debugger attached waits for it to leave before it exits)
  const early = await Promise.race([finished.then(() => null), proc.status]);
  if (early) throw new Error(`js_profile: the child exited (code ${early.code}) before its profile was taken`);
  ws.close();
  await proc.status;
  if (failed) throw new Error(`js_profile: the work failed in the child: ${failed}`);
  const p = profile as CpuProfile | null; // set by the message handler before `finished`
  if (!p) throw new Error("js_profile: no profile came back");
  const s = summarize(p, ROOT);
  console.log(`profiled ${s.totalMs.toFixed(0)} ms (${a.runs} runs, ${p.samples.length} samples every ${a.interval} us); per function: share of the profiled time, ms per run`);
  console.log(`self time (the function's own code; "(garbage collector)", "(program)": V8's own work):`);
  for (const l of topLines(s.self, s.totalMs, a.runs, a.top)) console.log(l);
  console.log(`inclusive time (with its callees):`);
  for (const l of topLines(s.inclusive, s.totalMs, a.runs, a.top)) console.log(l);
  if (a.out) {
    writeFileAtomic(a.out, JSON.stringify(p));
    console.log(`wrote ${a.out}`);
  }
  Deno.exit(0);
}
