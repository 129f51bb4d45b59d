// Pipelines built once (cached by kernel key), dispatches recorded into one open compute pass
// and submitted in batches, params buffers cached by content, storages from the pool.
/// <reference types="@webgpu/types" />
import { BufferPool } from "./pool.ts";
import { FILL, fillShader } from "../../../shaders/elementwise.wgsl.ts";
import { MAX_GROUPS_X, WG } from "../../../shaders/preamble.ts";

export interface GpuStorage {
  buf: GPUBuffer;
  /** Length in f32 elements. */
  n: number;
}

const MAX_PENDING = 128;
const PROFILE_BATCH = 256;
const MAX_PARAM_BUFFERS = 4096;

export class Runtime {
  readonly pool: BufferPool;
  readonly staging: BufferPool;
  #pipelines = new Map<string, GPUComputePipeline>();
  #params = new Map<string, GPUBuffer>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #pending = 0;
  #error: string | null = null;
  dispatches = 0;
  submits = 0;
  /** Tests set this: every new output buffer is filled with NaN first, so unwritten elements show. */
  poison = false;
  #prof: { qs: GPUQuerySet; keys: string[]; totals: Map<string, { n: number; ns: number }> } | null = null;

  constructor(readonly device: GPUDevice, readonly description: string) {
    this.pool = new BufferPool(device, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.staging = new BufferPool(device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    device.addEventListener("uncapturederror", (e) => {
      this.#error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
  }

  /** Throws the first WebGPU validation error seen since the last check. */
  checkErrors(where: string): void {
    if (this.#error) {
      const m = this.#error;
      this.#error = null;
      throw new Error(`WebGPU error (seen by ${where}): ${m}`);
    }
  }

  alloc(n: number): GpuStorage {
    const s = { buf: this.pool.acquire(n * 4), n };
    if (this.poison && n) this.dispatch("fill", fillShader, FILL.pack({ n, value: 0x7fc00000 }), [], s, Math.ceil(n / WG));
    return s;
  }

  free(s: GpuStorage): void {
    this.pool.release(s.buf);
    const deps = this.#dependents.get(s);
    if (deps) {
      this.#dependents.delete(s);
      deps.forEach((d) => {
        this.dependentFloats -= d.n;
        this.pool.release(d.buf);
      });
    }
  }

  /** Storages derived from one (a cached patch matrix): freed with it unless detached first. */
  #dependents = new Map<GpuStorage, GpuStorage[]>();

  /** f32 elements held by attached dependents now. */
  dependentFloats = 0;

  attach(owner: GpuStorage, dep: GpuStorage): void {
    this.dependentFloats += dep.n;
    const l = this.#dependents.get(owner);
    if (l) l.push(dep);
    else this.#dependents.set(owner, [dep]);
  }

  /** How many storages have dependents attached (tests check this returns to zero). */
  get owners(): number {
    return this.#dependents.size;
  }

  /** Take dep back from owner (the caller frees it). */
  detach(owner: GpuStorage, dep: GpuStorage): void {
    this.dependentFloats -= dep.n;
    const l = this.#dependents.get(owner)?.filter((d) => d !== dep);
    if (l?.length) this.#dependents.set(owner, l);
    else this.#dependents.delete(owner);
  }

  pipeline(key: string, code: () => string): GPUComputePipeline {
    let p = this.#pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code: code(), label: key });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: key });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  #paramBuffer(params: ArrayLike<number>): GPUBuffer {
    const u = new Uint32Array(Math.max(4, params.length));
    u.set(params);
    const key = u.join(",");
    let b = this.#params.get(key);
    if (!b) {
      if (this.#params.size >= MAX_PARAM_BUFFERS) {
        this.flush();
        for (const old of this.#params.values()) old.destroy();
        this.#params.clear();
      }
      // Written at creation, never after: no ordering hazard with queued dispatches.
      b = this.device.createBuffer({ size: u.byteLength, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      new Uint32Array(b.getMappedRange()).set(u);
      b.unmap();
      this.#params.set(key, b);
    }
    return b;
  }

  /**
   * Record one dispatch. `params` are u32 words (f32 values bit-cast by the caller);
   * groups is a workgroup count along x (split over x and y when above the per-dimension limit)
   * or an explicit [x, y, z].
   */
  dispatch(key: string, code: () => string, params: ArrayLike<number>, inputs: GpuStorage[], output: GpuStorage, groups: number | [number, number, number]): void {
    const pipe = this.pipeline(key, code);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.#paramBuffer(params) } }];
    inputs.forEach((s, i) => entries.push({ binding: i + 1, resource: { buffer: s.buf } }));
    entries.push({ binding: inputs.length + 1, resource: { buffer: output.buf } });
    const bind = this.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    if (this.#prof) {
      // Profiling: one pass per dispatch, timestamped at its start and end.
      this.#endPass();
      this.#encoder ??= this.device.createCommandEncoder();
      const i = this.#prof.keys.length;
      this.#prof.keys.push(key);
      this.#pass = this.#encoder.beginComputePass({ timestampWrites: { querySet: this.#prof.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    } else if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#pass.setPipeline(pipe);
    this.#pass.setBindGroup(0, bind);
    if (typeof groups === "number") {
      if (groups === 0) return;
      const x = Math.min(groups, MAX_GROUPS_X);
      this.#pass.dispatchWorkgroups(x, Math.ceil(groups / x));
    } else this.#pass.dispatchWorkgroups(...groups);
    this.dispatches++;
    if (this.#prof) this.#endPass();
    if (++this.#pending >= (this.#prof ? PROFILE_BATCH : MAX_PENDING)) this.flush();
  }

  /** Record a buffer-to-buffer copy of n f32 elements (between dispatches, in stream order). */
  copy(src: GpuStorage, srcOffset: number, dst: GpuStorage, dstOffset: number, n: number): void {
    if (n === 0) return;
    this.#endPass();
    this.#encoder ??= this.device.createCommandEncoder();
    this.#encoder.copyBufferToBuffer(src.buf, srcOffset * 4, dst.buf, dstOffset * 4, n * 4);
    if (++this.#pending >= MAX_PENDING) this.flush();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Submit what has been recorded. */
  flush(): void {
    this.#endPass();
    if (!this.#encoder) return;
    const prof = this.#prof;
    let resolved: GPUBuffer | null = null;
    if (prof && prof.keys.length) {
      resolved = this.device.createBuffer({ size: prof.keys.length * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.#encoder.resolveQuerySet(prof.qs, 0, prof.keys.length * 2, resolved, 0);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#pending = 0;
    this.submits++;
    if (prof && resolved) {
      const keys = prof.keys.splice(0);
      this.#pendingProfiles.push(this.#collect(resolved, keys, prof.totals));
    }
  }

  #pendingProfiles: Promise<void>[] = [];

  async #collect(resolved: GPUBuffer, keys: string[], totals: Map<string, { n: number; ns: number }>): Promise<void> {
    const st = this.device.createBuffer({ size: resolved.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(resolved, 0, st, 0, resolved.size);
    this.device.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(st.getMappedRange());
    keys.forEach((k, i) => {
      const e = totals.get(k) ?? { n: 0, ns: 0 };
      e.n++;
      e.ns += Number(t[2 * i + 1] - t[2 * i]);
      totals.set(k, e);
    });
    st.unmap();
    st.destroy();
    resolved.destroy();
  }

  /** Start timing every kernel on the device (needs the timestamp-query feature). */
  startProfile(): void {
    if (!this.device.features.has("timestamp-query")) throw new Error("profile: this adapter has no timestamp-query feature");
    this.flush();
    this.#prof = { qs: this.device.createQuerySet({ type: "timestamp", count: PROFILE_BATCH * 2 }), keys: [], totals: new Map() };
  }

  /** Stop timing; per kernel key: dispatch count and total device milliseconds, slowest first. */
  async stopProfile(): Promise<{ kernel: string; count: number; ms: number }[]> {
    const prof = this.#prof;
    if (!prof) return [];
    this.flush();
    await Promise.all(this.#pendingProfiles.splice(0));
    this.#prof = null;
    prof.qs.destroy();
    return [...prof.totals].map(([kernel, e]) => ({ kernel, count: e.n, ms: e.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
  }

  upload(data: Float32Array): GpuStorage {
    // Flush first: a pooled buffer may still be read by recorded, unsubmitted work,
    // and writeBuffer would otherwise land before that work runs.
    this.flush();
    const s = { buf: this.pool.acquire(data.length * 4), n: data.length };
    if (data.byteLength) this.device.queue.writeBuffer(s.buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return s;
  }

  async read(s: GpuStorage, n: number): Promise<Float32Array> {
    this.flush();
    const bytes = n * 4;
    const out = new Float32Array(n);
    if (!n) return out;
    const st = this.staging.acquire(bytes);
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(s.buf, 0, st, 0, Math.ceil(bytes / 4) * 4);
    this.device.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ, 0, bytes);
    out.set(new Float32Array(st.getMappedRange(0, bytes)));
    st.unmap();
    this.staging.release(st);
    this.checkErrors("read");
    return out;
  }

  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkErrors("sync");
  }
}
