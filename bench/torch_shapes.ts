// docs/torch-shapes.md from a run of bench/torch.ts --shapes --json=<file>: every product shape of
// every row, ours against PyTorch's, alone, largest gap first. The run's own numbers only; `--run`
// says which run it was (the command, the time, the code), for the page's first paragraph.
//   deno run -A bench/torch_shapes.ts --json run.json --run "2026-12-07 04:30 UTC, code 4a563f5" --out docs/torch-shapes.md --force
import "../src/cli/errors.ts";
import { flag, inFile, outFile, parseOptions, text, usageError } from "../src/io/options.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

interface Shape { key: string; n: number; gflop: number; fimscope: number; pytorch: number }
interface Row { workload: string; products?: { fimscope: number; pytorch: number; shapes?: Shape[] } }

const a = parseOptions("torch_shapes", { json: inFile().required(), run: text().required(), out: outFile().required(), force: flag() });
let d: { ceiling: number; rows: Row[] } | null = null;
try {
  d = JSON.parse(Deno.readTextFileSync(a.json));
} catch (e) {
  throw usageError("torch_shapes", "--json", a.json, `not a JSON file (${(e as Error).message})`);
}
if (!d || !(d.ceiling > 0) || !Array.isArray(d.rows) || !d.rows.some((r) => r.products?.shapes?.length)) {
  throw usageError("torch_shapes", "--json", a.json, "no per-shape products and ceiling in it (allowed: the --json of bench/torch.ts --shapes with the PyTorch peer)");
}
const f = (ms: number, gflop: number) => `${ms.toFixed(3)} (${(gflop / ms * 1e3).toFixed(1)})`;
const lines = [
  "# Every product shape against PyTorch",
  "",
  `Current numbers: \`deno run -A bench/torch.ts --rounds 21 --shapes\`, ${a.run}, 2 threads on both sides, the wasm`,
  `SIMD128 ceiling of the run ${d.ceiling.toFixed(1)} GFLOP/s per CPU second on one thread (${(2 * d.ceiling).toFixed(1)} on both cores). The run`,
  "whose summary is bench/README.md's first table (this page: `bench/torch_shapes.ts` from the run's `--json`).",
  "",
  "Each row's products (the convolutions, their input and weight gradients and the matrix products",
  "of one of our runs of that work, by kind and shape: `[N,Cin,H,W]->Cout`, kernel `k`, stride `s`,",
  "padding `p`, groups `g`; a matrix product `batchA/batchB MxKxN` with its transposes) run each",
  "alone on the same operands, on fimscope's wasm backend and on PyTorch 1.13's kernels (`F.conv2d`,",
  "`aten.convolution_backward` with one output asked for, `torch.matmul`): the best wall time of 3",
  "rounds of 7 runs, the two sides' order alternating. Largest gap (calls x (ours - theirs)) first.",
  "\"calls\": how often one run of the row runs that product. The feature rows' shapes are ours (the",
  "batched pass's per-group products, `g64`); PyTorch's own feature engines run other products.",
  "A fused convolution with its bias and activation counts as its convolution, an input gradient",
  "times an activation's derivative as its input gradient. GFLOP/s counts 2 per",
  "multiply-add. Timed only: both sides' values are compared on the whole rows (bench/README.md).",
];
for (const r of d.rows) {
  const s = r.products?.shapes;
  if (!s?.length) continue;
  const calls = s.reduce((t, q) => t + q.n, 0);
  lines.push("", `### ${r.workload}`, "", `${calls} products in ${s.length} shapes; summed: fimscope wasm ${r.products!.fimscope} ms, PyTorch ${r.products!.pytorch} ms.`, "",
    "| calls | product | fimscope wasm, ms (GFLOP/s) | PyTorch, ms (GFLOP/s) |", "| --- | --- | --- | --- |");
  for (const q of [...s].sort((p, q) => q.n * (q.fimscope - q.pytorch) - p.n * (p.fimscope - p.pytorch))) {
    lines.push(`| ${q.n} | ${q.key} | ${f(q.fimscope, q.gflop)} | ${f(q.pytorch, q.gflop)} |`);
  }
}
writeFileAtomic(a.out, lines.join("\n") + "\n");
