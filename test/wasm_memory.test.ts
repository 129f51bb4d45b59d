// The wasm backend's block pool at the memory's maximum: when the memory cannot grow, a request is
// served from pooled blocks of other size classes (split, or merged and re-cut), live blocks never
// overlap, and a request that cannot fit fails with one clear error. A small memory (256 KiB
// maximum) stands in for the backend's 2 GiB, with a plain fill in place of the module's kernel.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { sizeClass, WasmMemory } from "../src/kernels/wasm/memory.ts";

const S = suite("wasm memory pool");
const KiB = 1024, SLACK = 64;

function pool(maxPages = 4) {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: maxPages, shared: true } as WebAssembly.MemoryDescriptor);
  return new WasmMemory(mem, (at, n, bits) => new Int32Array(mem.buffer, at, n).fill(bits));
}

/** Floats in a storage whose block is exactly `bytes` (a power of two) once the slack is added. */
const floatsFor = (bytes: number) => (bytes - SLACK) / 4;

/** Writes a distinct value into each live storage and checks all of them: overlapping blocks would clobber one another. */
function assertDisjoint(live: Float32Array[]) {
  live.forEach((s, i) => s.fill(i + 1));
  live.forEach((s, i) => assert.ok(s.every((v) => v === i + 1), `storage ${i} was overwritten by another`));
  const spans = live.map((s) => [s.byteOffset, s.byteOffset + s.byteLength + SLACK]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], "blocks overlap");
}

S("small blocks come out of a large pooled one when the memory is full", () => {
  const m = pool();
  const big = m.out(floatsFor(128 * KiB));
  // 128 + 64 + 32 + 16 KiB and the unused first KiB: less than 16 KiB left at the top.
  const rest = [64, 32, 16].map((k) => m.out(floatsFor(k * KiB)));
  assert.throws(() => m.out(floatsFor(16 * KiB)), /out of memory/);
  m.release(big);
  const small = Array.from({ length: 8 }, () => m.out(floatsFor(16 * KiB))); // 128 KiB of 16 KiB blocks
  for (const s of small) assert.ok(s.byteOffset >= big.byteOffset && s.byteOffset < big.byteOffset + 128 * KiB, "carved from the freed block");
  assertDisjoint([...rest, ...small]);
  assert.is(m.mem.buffer.byteLength, 4 * 65536);
});

S("a large block comes out of many small pooled ones merged", () => {
  const m = pool();
  const small = Array.from({ length: 12 }, () => m.out(floatsFor(16 * KiB))); // 192 KiB
  const keep = small.splice(3, 1); // one stays live: the freed ones form two runs around it
  for (const s of small) m.release(s);
  const big = m.out(floatsFor(128 * KiB)); // only the run of 8 freed blocks after the live one can hold it
  assertDisjoint([...keep, big]);
  assert.throws(() => m.out(floatsFor(128 * KiB)), /out of memory: a block of 131072 bytes/);
});

S("pooled blocks at the top go back to unallocated memory", () => {
  const m = pool();
  const a = m.out(floatsFor(32 * KiB));
  const b = Array.from({ length: 6 }, () => m.out(floatsFor(32 * KiB)));
  for (const s of b) m.release(s);
  const before = m.bytes;
  const big = m.out(floatsFor(128 * KiB));
  assert.ok(m.bytes <= before, "reclaimed from the pool, not past it");
  assertDisjoint([a, big]);
});

S("below the maximum the pool is as before: same class reused, memory grows for new classes", () => {
  const m = pool(64);
  const x = m.out(1000);
  const at = x.byteOffset;
  m.release(x);
  assert.is(m.out(1000).byteOffset, at, "the same class is reused");
  const before = m.bytes;
  m.out(floatsFor(64 * KiB));
  assert.ok(m.bytes > before, "a new class is allocated at the top");
});

S("random storages, releases and scratch blocks at the maximum: live blocks never overlap and keep their contents", () => {
  const m = pool(8);
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const live: { s: Float32Array; v: number }[] = [];
  let scratch: [number, number][] = [], full = 0, reclaimed = 0;
  const check = (step: number) => {
    const spans = [...live.map(({ s }) => [s.byteOffset, s.byteLength + SLACK]), ...scratch.map(([at, n]) => [at, n * 4 + SLACK])]
      .map(([at, b]) => [at, at + sizeClass(b)]).sort((p, q) => p[0] - q[0]);
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], `step ${step}: blocks [${spans[i - 1]}) and [${spans[i]}) overlap`);
    for (const { s, v } of live) assert.ok(new Float32Array(m.mem.buffer, s.byteOffset, s.length).every((x) => x === v), `step ${step}: a live storage was overwritten`);
    assert.ok(m.bytes <= m.mem.buffer.byteLength, `step ${step}: the top is past the memory`);
  };
  for (let step = 0; step < 20000; step++) {
    const r = rnd(), top = m.bytes;
    try {
      if (r < 0.4) {
        const s = m.out(Math.floor(2 ** (rnd() * 15)));
        new Float32Array(m.mem.buffer, s.byteOffset, s.length).fill(step);
        live.push({ s, v: step });
      } else if (r < 0.75 && live.length) {
        const [{ s }] = live.splice(Math.floor(rnd() * live.length), 1);
        m.release(s);
      } else if (r < 0.9) {
        const n = Math.floor(2 ** (rnd() * 13));
        scratch.push([m.tmp(n), n]);
      } else {
        m.endOp();
        scratch = [];
      }
    } catch (e) {
      assert.match((e as Error).message, /out of memory/);
      full++;
    }
    if (m.bytes < top) reclaimed++;
    if (step % 50 === 0) check(step);
  }
  check(20000);
  // Not vacuous: the memory was full at times and the reclaim returned spans at the top.
  assert.is(m.mem.buffer.byteLength, 8 * 65536);
  assert.ok(full > 0 && reclaimed > 0, `${full} requests did not fit, ${reclaimed} reclaims lowered the top`);
});

S("size classes: four per octave above 1 KiB, each a multiple of 256, a request's class at most 1.25x (2x at or below 1 KiB) its size, and a class is its own class", () => {
  assert.equal([1, 256, 257, 1024, 1025, 1280, 1281, 1536, 1792, 2048, 2049].map(sizeClass), [256, 256, 512, 1024, 1280, 1280, 1536, 1536, 1792, 2048, 2560]);
  assert.is(sizeClass(4 * 2 ** 20 + SLACK), 5 * 2 ** 20, "a 2^20-float tensor and its slack: 1.25x, not 2x");
  for (let b = 1; b < 3e6; b = Math.ceil(b * 1.37) + 11) {
    const c = sizeClass(b);
    assert.ok(c >= b && c % 256 === 0 && c <= Math.max(2 * b, 256) && (b <= 1024 || c <= 1.25 * b), `bytes ${b}: class ${c}`);
    assert.is(sizeClass(c), c);
  }
});

S.run();
