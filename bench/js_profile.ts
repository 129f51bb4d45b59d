// Where a row's JavaScript time goes, by function: a V8 CPU profile (the inspector's sampling
// profiler, every --interval microseconds) of bench/torch.ts's work on the wasm backend (the
// feature pass for 64 images or a training step of one shipped model), over --runs runs after a
// warm-up. With --skip-kernels every kernel phase is skipped, so what is left is the caller's serial
// part (bench/wasm_profile.ts's last line: JavaScript, allocation and garbage collection, the
// TypeScript-loop ops), where the kernels' time would otherwise hide it. Prints the functions with
// the most self time and the most inclusive time (their callees' included), each as a share of the
// profiled time; with --out also writes the profile (`.cpuprofile`: Chrome DevTools opens it). The
// samples of V8's own tick profiler (--prof) leave builtins and garbage collection unnamed; the
// inspector's name them. With --heap, the allocations instead: V8's sampling heap profiler (a
// sample every --heap-interval bytes on average, the objects that the garbage collector has
// already freed included), bytes allocated per run by function (self: the function's own
// allocations; inclusive: with its callees'), where the young generation's scavenges come from;
// --out then writes the profile's call tree as `{ "head": ... }` (the HeapProfiler's sampling
// profile, without its list of samples).
//   deno run -A bench/js_profile.ts [--model weights/glow-fashion.safetensors] [--work step|features] [--runs 200] [--skip-kernels] [--top 30] [--interval 100] [--out run.cpuprofile] [--heap] [--heap-interval 4096]
// It runs the work in a child process with its inspector on a free local port, and talks to it
// over the Chrome DevTools protocol: the child warms up, asks (a runtime binding the parent adds)
// for the profiler to start, runs the timed runs, and asks for it to stop.
import "../src/cli/errors.ts";
import { checkApart, choice, flag, inFile, int, outFile, parseOptions, usageError } from "../src/io/options.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
/** V8's CPU profile (the Profiler domain's, and a .cpuprofile file's, format). */
export interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** V8's sampling heap profile (the HeapProfiler domain's): a tree of call frames, each with the bytes its samples stand for. */
export interface HeapNode { callFrame: ProfileNode["callFrame"]; selfSize: number; children?: HeapNode[] }

/** A function's key: its name, and its file (relative to `root`) and line. */
function keyOf(n: { callFrame: ProfileNode["callFrame"] }, root: string): string {
  const f = n.callFrame, url = f.url.replace(`file://${root}/`, "");
  const name = f.functionName || (f.lineNumber < 0 ? "(module)" : "(anonymous)");
  return url ? `${name} ${url}${f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : ""}` : name;
}

/**
 * Self and inclusive time per function in ms, and the profile's total: each sample's interval
 * (the delta to the next sample) charged to its function (self) and once to every distinct
 * function on its stack (inclusive). Samples of "(idle)" (the thread waiting: the start and stop
 * round trips) are counted apart (idleMs), not in the total or the tables.
 */
export function summarize(p: CpuProfile, root = ""): { totalMs: number; idleMs: number; self: Map<string, number>; inclusive: Map<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>(), inclusive = new Map<string, number>();
  let total = 0, idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0) / 1000;
    let id: number | undefined = p.samples[i];
    const k = keyOf(byId.get(id)!, root);
    if (k === "(idle)") {
      idle += dt;
      continue;
    }
    total += dt;
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (; id !== undefined; id = parent.get(id)) {
      const kk = keyOf(byId.get(id)!, root);
      if (seen.has(kk)) continue;
      seen.add(kk);
      inclusive.set(kk, (inclusive.get(kk) ?? 0) + dt);
    }
  }
  return { totalMs: total, idleMs: idle, self, inclusive };
}

/**
 * Bytes allocated per function in a sampling heap profile: each node's selfSize charged to its
 * function (self) and once to every distinct function on its stack (inclusive), and the total.
 */
export function summarizeHeap(head: HeapNode, root = ""): { totalBytes: number; self: Map<string, number>; inclusive: Map<string, number> } {
  const self = new Map<string, number>(), inclusive = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, stack: string[]) => {
    const k = keyOf(n, root), on = [...stack, k];
    if (n.selfSize > 0) {
      total += n.selfSize;
      self.set(k, (self.get(k) ?? 0) + n.selfSize);
      for (const kk of new Set(on)) inclusive.set(kk, (inclusive.get(kk) ?? 0) + n.selfSize);
    }
    for (const c of n.children ?? []) walk(c, on);
  };
  walk(head, []);
  return { totalBytes: total, self, inclusive };
}

/** The `top` largest entries of a byte map, one line each: share of the total, KB per run, the function. */
export function topBytes(m: Map<string, number>, totalBytes: number, runs: number, top: number): string[] {
  return topLines(m, totalBytes, runs, top, (b) => `${(b / 1024).toFixed(1).padStart(8)} KB`);
}

/**
 * The `top` largest entries, one line each: share of the total, the amount per run (`cell`: ms by
 * default), the function.
 */
export function topLines(m: Map<string, number>, total: number, runs: number, top: number, cell = (ms: number) => `${ms.toFixed(3).padStart(8)} ms`): string[] {
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, v]) => `${(100 * v / total).toFixed(1).padStart(6)}%  ${cell(v / runs)}  ${k}`);
}

/** A byte stream's lines (the last one even without its newline). */
async function* linesOf(stream: Deno.ChildProcess["stderr"]): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop()!;
    yield* lines;
  }
  if (pending) yield pending;
}

/** Lines of the child's stderr that are the inspector's own banner and farewell (not passed on). */
const INSPECTOR_LINES = /^(Debugger listening on |Visit chrome:\/\/inspect|Deno is waiting for debugger|Waiting for the debugger to disconnect|Debugger session (started|ended))/;

/**
 * Drives a child started with --inspect: reads the inspector's address from its stderr
 * (passing the child's other lines on), starts the profiler when the child asks ("start"), stops
 * it when it asks again ("stop"), answers each ask, then lets go of the inspector (the child
 * waits for that before it exits) and waits for the child's end. Rejects, with the child's own
 * message where it sent one, if the child fails, exits early or the connection closes.
 */
async function profileChild(proc: Deno.ChildProcess, interval: number, heapInterval = 0): Promise<CpuProfile | HeapNode> {
  const lines = linesOf(proc.stderr);
  let url = "";
  const passOn = (line: string) => {
    if (!INSPECTOR_LINES.test(line)) Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  };
  const seen: string[] = [];
  while (!url) {
    const { value: l, done } = await lines.next();
    if (done) throw new Error(`js_profile: the child exited before its inspector listened${seen.length ? `: ${seen.join(" ").trim()}` : ""}`);
    const m = /^Debugger listening on (ws:\/\/\S+)/.exec(l.trim());
    if (m) url = m[1];
    else {
      seen.push(l);
      passOn(l);
    }
  }
  (async () => {
    for await (const l of lines) passOn(l);
  })();
  const ws = new WebSocket(url);
  let id = 0;
  const replies = new Map<number, { ok: (r: unknown) => void; fail: (e: Error) => void }>();
  let profile: CpuProfile | HeapNode | null = null, failed = "", broken: Error | null = null;
  let end!: () => void, lost!: (e: Error) => void;
  const finished = new Promise<void>((ok, fail) => {
    end = ok;
    lost = fail;
  });
  const breakOff = (e: Error) => {
    broken ??= e;
    for (const r of replies.values()) r.fail(e);
    replies.clear();
    lost(e);
  };
  const send = <R>(method: string, params: unknown = {}) => new Promise<R>((ok, fail) => {
    if (broken) return fail(broken);
    replies.set(++id, { ok: ok as (r: unknown) => void, fail });
    ws.send(JSON.stringify({ id, method, params }));
  });
  await new Promise<void>((ok, fail) => {
    ws.onopen = () => ok();
    ws.onerror = (e) => fail(new Error(`js_profile: cannot reach the child's inspector at ${url}: ${(e as ErrorEvent).message}`));
  });
  ws.onerror = (e) => breakOff(new Error(`js_profile: the connection to the child's inspector failed: ${(e as ErrorEvent).message} (a profile over 64 MiB does not come back: fewer --runs or a longer --interval)`));
  ws.onclose = () => breakOff(new Error("js_profile: the child's inspector closed the connection (a profile over 64 MiB does not come back: fewer --runs or a longer --interval)"));
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined) {
      const r = replies.get(m.id);
      replies.delete(m.id);
      if (m.error) r?.fail(new Error(`js_profile: the inspector refused a request: ${m.error.message}`));
      else r?.ok(m.result);
    } else if (m.method === "Runtime.bindingCalled" && m.params.name === "__jsProfile") {
      const what: string = m.params.payload;
      (async () => {
        if (what === "start") {
          if (heapInterval) await send("HeapProfiler.startSampling", { samplingInterval: heapInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
          else await send("Profiler.start");
        } else if (what === "stop") {
          profile = heapInterval ? (await send<{ profile: { head: HeapNode } }>("HeapProfiler.stopSampling")).profile.head : (await send<{ profile: CpuProfile }>("Profiler.stop")).profile;
        }
        else failed = what.replace(/^error /, "");
        // the answer lets the child go on (after "stop" or an error it exits, so its reply may never come)
        const go = send("Runtime.evaluate", { expression: "globalThis.__jsProfileGo()" });
        if (profile || failed) end();
        else await go;
      })().catch(breakOff);
    }
  };
  await send("Runtime.enable");
  if (heapInterval) await send("HeapProfiler.enable");
  else {
    await send("Profiler.enable");
    await send("Profiler.setSamplingInterval", { interval });
  }
  await send("Runtime.addBinding", { name: "__jsProfile" });
  await send("Runtime.runIfWaitingForDebugger");
  const early = await Promise.race([finished.then(() => null), proc.status]);
  ws.onclose = null; // closing it now is ours
  ws.close();
  if (early && !profile && !failed) throw new Error(`js_profile: the child exited (code ${early.code}) before its profile was taken`);
  await proc.status;
  if (failed) throw new Error(`js_profile: the work failed in the child: ${failed}`);
  return profile!;
}

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const here = decodeURIComponent(new URL(import.meta.url).pathname);

if (import.meta.main && Deno.args[0] === "--child") {
  // the child: the work, then the timed runs between the two calls of the parent's binding
  const o = JSON.parse(Deno.args[1]) as { model: string; work: "step" | "features"; runs: number; skip: boolean };
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  // The parent answers through the inspector (Runtime.evaluate). The timer keeps the event loop
  // alive meanwhile (with one thread no worker does) and ends a child whose parent went away.
  const ask = async (what: string) => {
    // the binding appears once the parent has connected (the child runs from the start: a parent
    // that never connects, or died, leaves the child to end by itself)
    for (let i = 0; typeof g.__jsProfile !== "function"; i++) {
      if (i > 6000) throw new Error("no profiler connected in 10 minutes");
      await new Promise((r) => setTimeout(r, 100));
    }
    await askNow(what);
  };
  const askNow = (what: string) => new Promise<void>((go) => {
    const t = setTimeout(() => {
      console.error(`js_profile: no answer from the parent to '${what.split(" ")[0]}' in 10 minutes`);
      Deno.exit(1);
    }, 600_000);
    g.__jsProfileGo = () => {
      clearTimeout(t);
      go();
    };
    g.__jsProfile(what);
  });
  try {
    const { createWasmBackend } = await import("../src/kernels/wasm/backend.ts");
    const { ourWork } = await import("./torch.ts");
    const { skipKernelPhases } = await import("./op_timer.ts");
    const be = await createWasmBackend();
    const w = await ourWork(o.model, o.work, be);
    for (let i = 0; i < 3; i++) await w.run();
    if (o.skip) skipKernelPhases(be);
    for (let i = 0; i < 20; i++) await w.run();
    await ask("start");
    const t0 = performance.now();
    for (let i = 0; i < o.runs; i++) await w.run();
    console.log(`${o.work} ${o.model}${o.skip ? ", every kernel phase skipped" : ""}: ${((performance.now() - t0) / o.runs).toFixed(2)} ms per run while profiled (${be.description})`);
    await ask("stop");
    Deno.exit(0);
  } catch (e) {
    // told to the parent, which lets go of the inspector (a child with a debugger attached waits for it before it exits)
    if (typeof g.__jsProfile === "function") await askNow(`error ${(e as Error).message}`);
    else console.error(`js_profile: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) {
  const a = parseOptions("js_profile", {
    model: inFile().default(`${ROOT}/weights/glow-fashion.safetensors`), work: choice(["step", "features"] as const).default("step"),
    runs: int({ min: 1, max: 100000 }).default(200), "skip-kernels": flag(), top: int({ min: 1, max: 1000 }).default(30),
    interval: int({ min: 10, max: 100000 }).default(100), out: outFile(), heap: flag(), "heap-interval": int({ min: 64, max: 1 << 24 }).default(4096),
  });
  checkApart("js_profile", [{ option: "--out", path: a.out, kind: "file" }], [{ option: "--model", path: a.model }]);
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
    args: ["run", "-A", "--inspect=127.0.0.1:0", here, "--child", JSON.stringify(child)], stdout: "inherit", stderr: "piped",
  }).spawn();
  let got: CpuProfile | HeapNode;
  try {
    got = await profileChild(proc, a.interval, a.heap ? a["heap-interval"] : 0);
  } catch (e) {
    try {
      proc.kill("SIGKILL"); // a child with its inspector attached would otherwise wait for it to leave
    } catch { /* gone already */ }
    throw e;
  }
  if (a.heap) {
    const h = summarizeHeap(got as HeapNode, ROOT);
    if (h.totalBytes <= 0) throw new Error(`js_profile: the heap profile holds no samples of the work: give more --runs or a smaller --heap-interval`);
    console.log(`allocated ${(h.totalBytes / a.runs / 1024).toFixed(0)} KB per run (${a.runs} runs, a sample every ${a["heap-interval"]} bytes on average, freed objects included); per function: share, KB per run`);
    console.log("self (the function's own allocations):");
    for (const l of topBytes(h.self, h.totalBytes, a.runs, a.top)) console.log(l);
    console.log("inclusive (with its callees'):");
    for (const l of topBytes(h.inclusive, h.totalBytes, a.runs, a.top)) console.log(l);
    if (a.out) {
      writeFileAtomic(a.out, JSON.stringify({ head: got }));
      console.log(`wrote ${a.out}`);
    }
    Deno.exit(0);
  }
  const p = got as CpuProfile;
  const s = summarize(p, ROOT);
  if (s.totalMs <= 0) throw new Error(`js_profile: the profile holds no samples of the work (${p.samples.length} samples): give more --runs or a shorter --interval`);
  console.log(`profiled ${s.totalMs.toFixed(0)} ms (${a.runs} runs, ${p.samples.length} samples every ${a.interval} us; ${s.idleMs.toFixed(0)} ms idle, left out); per function: share of the profiled time, ms per run`);
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
