// Runs every *.test.ts under uvu and ends with "N passed, N failed".
// FIMSCOPE_REQUIRE_WEBGPU=1 makes a missing WebGPU adapter a failure instead of a skip.
// deno-lint-ignore-file no-explicit-any
const g = globalThis as any;
g.UVU_DEFER = 1;
const uvu = await import("uvu");

const dir = new URL(".", import.meta.url);
const only = Deno.args.filter((a) => !a.startsWith("-"));
const files = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".test.ts") && (!only.length || only.some((o) => n.includes(o))))
  .sort();

for (const [i, f] of files.entries()) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE.push([f]);
  await import(new URL(f, dir).href);
}

let passed = 0, failed = 0, skipped = 0;
for (const group of g.UVU_QUEUE as any[][]) {
  for (let i = 0; i < group.length; i++) {
    const run = group[i];
    if (typeof run !== "function") continue;
    group[i] = async () => {
      const r = await run();
      const [, ran, skip, total] = r;
      passed += ran;
      failed += total - ran;
      skipped += skip;
      return r;
    };
  }
}
await uvu.exec(false);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(failed > 0 || passed === 0 ? 1 : 0);
