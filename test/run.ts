// Runs every *.test.ts under uvu and ends with "N passed, N failed" (", N skipped" when tests were
// skipped: the WebGPU tests with no adapter). FIMSCOPE_REQUIRE_WEBGPU=1 makes a missing adapter,
// or any skipped test, a failure.
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

let passed = 0, failed = 0, skipped = 0;
for (const [i, f] of files.entries()) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE.push([f]);
  try {
    await import(new URL(f, dir).href);
  } catch (e) {
    // A file that cannot load (with FIMSCOPE_REQUIRE_WEBGPU=1: no adapter) fails, and the rest still run.
    console.error(`FAIL ${f}: ${(e as Error).message}`);
    failed++;
  }
}

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
const required = Deno.env.get("FIMSCOPE_REQUIRE_WEBGPU") === "1";
if (required && skipped) console.error(`FIMSCOPE_REQUIRE_WEBGPU=1: ${skipped} skipped test(s) count as failures`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(failed > 0 || passed === 0 || (required && skipped > 0) ? 1 : 0);
