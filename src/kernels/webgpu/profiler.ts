// Device time per kernel: while profiling, the runtime records each dispatch in a compute pass of
// its own, timestamped at the pass's start and end (WebGPU's timestamp-query feature); the
// timestamps of a submitted batch are read back asynchronously and summed per kernel key.
/// <reference types="@webgpu/types" />

/** Dispatches (pairs of timestamps) per query set, so per submitted batch while profiling. */
export const PROFILE_BATCH = 256;

export interface KernelTime {
  kernel: string;
  count: number;
  ms: number;
}

export class Profiler {
  #qs: GPUQuerySet;
  #keys: string[] = [];
  #totals = new Map<string, { n: number; ns: number }>();
  #pending: Promise<void>[] = [];

  constructor(private readonly device: GPUDevice) {
    if (!device.features.has("timestamp-query")) throw new Error("profile: this adapter has no timestamp-query feature");
    this.#qs = device.createQuerySet({ type: "timestamp", count: PROFILE_BATCH * 2 });
  }

  /** Timestamp writes for the pass of the next dispatch, of kernel `key`. */
  timestamps(key: string): GPUComputePassTimestampWrites {
    const i = this.#keys.length;
    this.#keys.push(key);
    return { querySet: this.#qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Whether the query set is full (the runtime then submits). */
  get full(): boolean {
    return this.#keys.length >= PROFILE_BATCH;
  }

  /**
   * Before the encoder is finished: resolve this batch's timestamps into a buffer. Returns what to
   * call once the encoder is submitted (it reads them back), or null if nothing was timed.
   */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    if (!this.#keys.length) return null;
    const keys = this.#keys.splice(0);
    const resolved = this.device.createBuffer({ size: keys.length * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    encoder.resolveQuerySet(this.#qs, 0, keys.length * 2, resolved, 0);
    return () => void this.#pending.push(this.#collect(resolved, keys));
  }

  async #collect(resolved: GPUBuffer, keys: string[]): Promise<void> {
    const st = this.device.createBuffer({ size: resolved.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(resolved, 0, st, 0, resolved.size);
    this.device.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(st.getMappedRange());
    keys.forEach((k, i) => {
      const e = this.#totals.get(k) ?? { n: 0, ns: 0 };
      e.n++;
      e.ns += Number(t[2 * i + 1] - t[2 * i]);
      this.#totals.set(k, e);
    });
    st.unmap();
    st.destroy();
    resolved.destroy();
  }

  /** After the last batch is submitted: per kernel key, dispatch count and device milliseconds, slowest first. */
  async finish(): Promise<KernelTime[]> {
    await Promise.all(this.#pending.splice(0));
    this.#qs.destroy();
    return [...this.#totals].map(([kernel, e]) => ({ kernel, count: e.n, ms: e.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
  }
}
