// Threads for the wasm kernels: Workers sharing one WebAssembly.Memory (SharedArrayBuffer) and the
// module. A phase is a list of jobs: a task (an exported kernel and its i32 arguments) or a group
// of tasks that one thread runs in order (an image's copy, product and copy out, whose blocks then
// stay in that core's caches). Every thread, the caller included, claims jobs until none are left,
// and the caller returns when all are done, so the backend's ops stay synchronous.
//
// The caller claims jobs from the front of the list, the workers from its back: ops cut their
// work into jobs in memory order, so with two threads each core goes on with the part of the data
// it wrote in the op before (in its own L2) rather than whichever part it happens to claim. A
// claim is a compare-exchange on one word holding both ends (front in the low 16 bits, back in the
// high), published only after the phase's jobs are written. Every count starts from 0 each phase
// (the last phase's jobs are all done by then), so only the phase counter grows.
//
// Control words (Int32Array over their own SharedArrayBuffer): the counters; per job its first
// task slot and its task count; per task slot the kernel, its argument count and up to 16
// arguments (the rest of the stride unused).
const GEN = 0, CLAIM = 1, END = 2, DONE = 3, BY_WORKERS = 4, FAILED = 5, JOBS = 8, CAP = 4096, TASKS = JOBS + 2 * CAP, STRIDE = 20, MAX_ARGS = 16;
/**
 * Polls of a control word before a thread sleeps in Atomics.wait: a worker waiting for the next
 * phase, the caller waiting for a phase's last tasks. A pass is thousands of short phases with a
 * little JavaScript between them, and waking a sleeping thread costs tens of microseconds.
 */
const SPIN = 20000;

export type Task = [fn: number, ...args: number[]];
/** A task, or tasks one thread runs in order (a kernel that traps ends its group). */
export type Job = Task | Task[];

/**
 * Where the phase counter starts over: GEN counts phases upward in an Int32 word, and past 2^31
 * it would turn negative (workers take a negative GEN for close()). It wraps past `phases`; tests
 * pass a small limit.
 */
export interface PoolLimits {
  phases: number;
}
const LIMITS: PoolLimits = { phases: 2 ** 30 };

// The worker's whole program, as a string so the backend needs no separate file (bundles, Node).
const WORKER_SRC = `
function work(c, fns) {
  for (;;) {
    const w = Atomics.load(c, ${CLAIM});
    if ((w & 0xffff) >= w >>> 16) return;
    if (Atomics.compareExchange(c, ${CLAIM}, w, w - 0x10000) !== w) continue;
    const j = ${JOBS} + ((w >>> 16) - 1) * 2, n = c[j + 1]; // the last job left
    try {
      for (let i = 0, b = ${TASKS} + c[j] * ${STRIDE}; i < n; i++, b += ${STRIDE}) {
        // always 16 arguments: a wasm export ignores those past its parameters (no array, no spread)
        fns[c[b]](c[b + 2], c[b + 3], c[b + 4], c[b + 5], c[b + 6], c[b + 7], c[b + 8], c[b + 9], c[b + 10], c[b + 11], c[b + 12], c[b + 13], c[b + 14], c[b + 15], c[b + 16], c[b + 17]);
      }
    } catch {
      Atomics.store(c, ${FAILED}, 1); // a trap: counted done, reported by the caller (an uncaught error would end the process)
    }
    Atomics.add(c, ${BY_WORKERS}, n);
    if (Atomics.add(c, ${DONE}, 1) + 1 === Atomics.load(c, ${END})) Atomics.notify(c, ${DONE});
  }
}
function start(d) {
  const inst = new WebAssembly.Instance(d.module, { env: { mem: d.mem } });
  const c = new Int32Array(d.sab);
  const fns = d.names.map((n) => inst.exports[n]);
  let gen = 0;
  for (;;) {
    for (let i = 0; i < ${SPIN} && Atomics.load(c, ${GEN}) === gen; i++);
    Atomics.wait(c, ${GEN}, gen);
    gen = Atomics.load(c, ${GEN});
    if (gen < 0) return;
    work(c, fns);
  }
}
// A Web Worker (browsers; Deno's worker_threads run on one too), or Node's worker_threads.
if (typeof self !== "undefined" && typeof self.postMessage === "function") self.onmessage = (e) => start(e.data);
else import("node:worker_threads").then((w) => w.parentPort.once("message", start));
`;

/**
 * A phase's jobs written flat into arrays kept from call to call, so that building a phase
 * allocates nothing (the convolutions' per-image jobs were arrays of arrays: about 100 KB of
 * garbage per convolution, and the scavenges it caused). task() appends a task, its kernel index
 * and up to 16 arguments (the rest 0: a wasm export ignores arguments past its parameters), to
 * the open job; endJob() closes the open job (an empty one is dropped). After clear(true), every
 * task is a job of its own.
 */
export class JobList {
  /** Tasks, STRIDE words each: the kernel index, an unused word, 16 arguments. */
  t = new Int32Array(STRIDE * 256);
  /** Per job: its first task and its number of tasks. */
  j = new Int32Array(2 * 256);
  tasks = 0;
  jobs = 0;
  #start = 0;
  #single = false;

  /** Empties the list; `single`: each task a job of its own from here on. */
  clear(single = false): this {
    this.tasks = this.jobs = this.#start = 0;
    this.#single = single;
    return this;
  }

  task(fn: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0, a9 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0, a14 = 0, a15 = 0): void {
    if ((this.tasks + 1) * STRIDE > this.t.length) {
      const t = new Int32Array(this.t.length * 2);
      t.set(this.t);
      this.t = t;
    }
    const t = this.t, b = this.tasks++ * STRIDE;
    t[b] = fn;
    t[b + 2] = a0; t[b + 3] = a1; t[b + 4] = a2; t[b + 5] = a3; t[b + 6] = a4; t[b + 7] = a5; t[b + 8] = a6; t[b + 9] = a7;
    t[b + 10] = a8; t[b + 11] = a9; t[b + 12] = a10; t[b + 13] = a11; t[b + 14] = a12; t[b + 15] = a13; t[b + 16] = a14; t[b + 17] = a15;
    if (this.#single) this.endJob();
  }

  /** The kernel index of task i. */
  kernelOf(i: number): number {
    return this.t[i * STRIDE];
  }

  endJob(): void {
    if (this.tasks === this.#start) return;
    if ((this.jobs + 1) * 2 > this.j.length) {
      const j = new Int32Array(this.j.length * 2);
      j.set(this.j);
      this.j = j;
    }
    this.j[this.jobs * 2] = this.#start;
    this.j[this.jobs * 2 + 1] = this.tasks - this.#start;
    this.jobs++;
    this.#start = this.tasks;
  }
}

/** Appends a task given as an array to L (arguments past the task's own read as undefined: L's 0). */
function addTask(L: JobList, t: Task): void {
  if (t.length - 1 > MAX_ARGS) throw new Error(`wasm pool: a task of ${t.length - 1} arguments (at most ${MAX_ARGS})`);
  L.task(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15], t[16]);
}

/** A group (an empty one included: nothing to run), not a task (its kernel index first). */
function isGroup(j: Job): j is Task[] {
  return j.length === 0 || Array.isArray(j[0]);
}

export class Workers {
  readonly #c: Int32Array;
  readonly #fns: ((...a: number[]) => void)[];
  readonly #workers: { terminate(): unknown }[] = [];
  #canWait = true;
  /** A worker that failed outside a kernel (it cannot take tasks any more): the pool stops rather than wait forever. */
  #failed: unknown = null;
  /** Threads including the caller. */
  readonly threads: number;

  readonly #limits: PoolLimits;

  private constructor(fns: ((...a: number[]) => void)[], c: Int32Array, threads: number, limits: PoolLimits) {
    this.#fns = fns;
    this.#c = c;
    this.threads = threads;
    this.#limits = limits;
  }

  /** A pool of `threads - 1` workers (none when threads <= 1 or Workers/SharedArrayBuffer are missing). */
  static async create(module: WebAssembly.Module, mem: WebAssembly.Memory, names: string[], instance: WebAssembly.Instance, threads: number, limits: PoolLimits = LIMITS): Promise<Workers> {
    const fns = names.map((n) => instance.exports[n] as (...a: number[]) => void);
    const shared = typeof SharedArrayBuffer !== "undefined" && mem.buffer instanceof SharedArrayBuffer;
    if (!shared || threads <= 1) return new Workers(fns, new Int32Array(TASKS + CAP * STRIDE), 1, limits);
    const sab = new SharedArrayBuffer((TASKS + CAP * STRIDE) * 4);
    const pool = new Workers(fns, new Int32Array(sab), threads, limits);
    const msg = { module, mem, sab, names };
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    for (let i = 1; i < threads; i++) {
      // node:worker_threads where there is one (Node, and Deno, whose process global says so):
      // those workers can be unref'd, so an idle pool does not keep the process alive (Deno
      // does not exit while a Web Worker lives). Web Workers in browsers.
      if (typeof g.Worker === "function" && !g.process?.versions?.node) {
        const url = URL.createObjectURL(new Blob([WORKER_SRC], { type: "application/javascript" }));
        const w = new g.Worker(url, { type: "module" });
        w.onerror = (e: { message?: string }) => { pool.#failed = e.message ?? e; };
        w.postMessage(msg);
        pool.#workers.push(w);
      } else {
        const spec = "node:worker_threads"; // a variable: browser bundles must not try to resolve it
        const { Worker } = await import(spec);
        const w = new Worker(WORKER_SRC, { eval: true });
        w.postMessage(msg);
        w.on("error", (e: unknown) => { pool.#failed = e; });
        w.unref();
        pool.#workers.push(w);
      }
    }
    return pool;
  }

  /**
   * Runs every job (on all threads when there are several) and returns when all are done: the
   * jobs written into the pool's own job list, then run as runList runs a list.
   */
  run(jobs: Job[], parallel = true): void {
    const L = this.#list.clear();
    for (const job of jobs) {
      if (isGroup(job)) for (const t of job) addTask(L, t);
      else addTask(L, job);
      L.endJob();
    }
    this.runList(L, parallel);
  }
  /** The list run() writes its jobs into (the runtime's own list is apart: an op may build that one while it runs arrays). */
  readonly #list = new JobList();

  /** Runs the jobs of a JobList (its open job closed first), on all threads when there are several, and returns when all are done. */
  runList(L: JobList, parallel = true): void {
    if (this.#failed) throw new Error(`wasm worker failed: ${(this.#failed as Error).message ?? this.#failed}`);
    L.endJob();
    const t = L.t, jt = L.j;
    if (this.threads === 1 || !parallel || L.jobs === 1) {
      const fns = this.#fns;
      for (let i = 0, b = 0; i < L.tasks; i++, b += STRIDE) {
        fns[t[b]](t[b + 2], t[b + 3], t[b + 4], t[b + 5], t[b + 6], t[b + 7], t[b + 8], t[b + 9], t[b + 10], t[b + 11], t[b + 12], t[b + 13], t[b + 14], t[b + 15], t[b + 16], t[b + 17]);
      }
      return;
    }
    const c = this.#c;
    for (let from = 0; from < L.jobs;) {
      // as many jobs as the job table and the task slots hold; a list's jobs are contiguous runs of its tasks
      const first = jt[from * 2];
      let k = 0, slot = 0;
      for (; from + k < L.jobs && k < CAP; k++) {
        const n = jt[(from + k) * 2 + 1];
        if (n > CAP) throw new Error(`wasm pool: a group of ${n} tasks (at most ${CAP})`);
        if (slot + n > CAP) break;
        c[JOBS + k * 2] = slot;
        c[JOBS + k * 2 + 1] = n;
        slot += n;
      }
      c.set(t.subarray(first * STRIDE, (first + slot) * STRIDE), TASKS);
      from += k;
      this.#phase(k);
    }
  }

  /** Publishes a phase of `end` jobs written into the control words, works on it and waits for its end. */
  #phase(end: number): void {
    const c = this.#c;
    // A worker still in its claim loop from the last phase reads an empty CLAIM (front = back)
    // until the store below, which publishes this phase's jobs; one that read a non-empty
    // CLAIM earlier can only succeed against this phase's word, and then runs this phase's job.
    Atomics.store(c, DONE, 0);
    Atomics.store(c, END, end);
    Atomics.store(c, CLAIM, end << 16);
    const gen = Atomics.load(c, GEN);
    Atomics.store(c, GEN, gen >= this.#limits.phases ? 0 : gen + 1);
    Atomics.notify(c, GEN);
    let err: unknown = null;
    try {
      this.#work();
    } catch (e) {
      err = e; // finish the phase first, so the pool stays consistent
    }
    for (let i = 0; i < SPIN && Atomics.load(c, DONE) < end; i++);
    for (;;) {
      const d = Atomics.load(c, DONE);
      if (d >= end) break;
      if (this.#failed) throw new Error(`wasm worker failed: ${(this.#failed as Error).message ?? this.#failed}`);
      if (this.#canWait) {
        try {
          Atomics.wait(c, DONE, d, 50);
        } catch {
          this.#canWait = false; // a browser's main thread: spin instead
        }
      }
    }
    if (Atomics.exchange(c, FAILED, 0)) err ??= new Error("wasm: a kernel trapped on a worker thread");
    if (err) throw err;
  }

  #work(): void {
    const c = this.#c, fns = this.#fns;
    for (;;) {
      const w = Atomics.load(c, CLAIM);
      if ((w & 0xffff) >= w >>> 16) return;
      if (Atomics.compareExchange(c, CLAIM, w, w + 1) !== w) continue;
      const j = JOBS + (w & 0xffff) * 2, n = c[j + 1]; // the first job left
      try {
        for (let i = 0, b = TASKS + c[j] * STRIDE; i < n; i++, b += STRIDE) {
          // always 16 arguments, as on the workers (a wasm export ignores the extra ones)
          fns[c[b]](c[b + 2], c[b + 3], c[b + 4], c[b + 5], c[b + 6], c[b + 7], c[b + 8], c[b + 9], c[b + 10], c[b + 11], c[b + 12], c[b + 13], c[b + 14], c[b + 15], c[b + 16], c[b + 17]);
        }
      } finally {
        Atomics.add(c, DONE, 1);
      }
    }
  }

  /** Tasks the workers (not the caller) have run so far (a group's every task counted). */
  get workerTasks(): number {
    return Atomics.load(this.#c, BY_WORKERS);
  }

  /** Stops the workers (they otherwise sleep in Atomics.wait). */
  close(): void {
    Atomics.store(this.#c, GEN, -1);
    Atomics.notify(this.#c, GEN);
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }
}
