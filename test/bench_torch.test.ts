// bench/torch.ts's products-alone analysis (bench/README.md's table of where each row's gap is),
// on made-up rows whose every number is worked out by hand here.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { analysis, type Row } from "../bench/torch.ts";

const S = suite("bench torch analysis");

const row = (workload: string, gflop: number, engines: Record<string, number>, products?: { fimscope: number; pytorch: number }): Row =>
  ({ workload, gflop, engines, spread: {}, cpu: engines, ...(products ? { products } : {}) });

S("the least time at the ceiling, our share of it, the rests and the share needed to tie, per row", () => {
  const rows = [
    // at the ceiling: 1.0 GFLOP over 2 x 50 GFLOP/s = 10 ms; ours 20 ms alone: 50%; our rest 30 - 20 = 10;
    // PyTorch's best 25 (the loop), its rest 25 - 8 = 17; to tie, our products in 25 - 10 = 15 ms: 10 / 15 = 67%
    row("Adam step a, batch 64", 1.0, { "fimscope wasm": 30, "pytorch loop": 25 }, { fimscope: 20, pytorch: 8 }),
    // a feature row: PyTorch's engines run other products, so no rest of theirs; best is vmap's 40:
    // at the ceiling 2.0 / 100 = 20 ms, share 20 / 40 = 50%, rest 50 - 40 = 10, to tie 20 / (40 - 10) = 67%
    row("features b, 64 images", 2.0, { "fimscope wasm": 50, "pytorch loop": 400, "pytorch vmap": 40 }, { fimscope: 40, pytorch: 30 }),
    // our rest alone (45 - 10 = 35) longer than PyTorch's whole row (30): cannot
    row("Adam step c, batch 32", 0.5, { "fimscope wasm": 45, "pytorch loop": 30 }, { fimscope: 10, pytorch: 5 }),
    // no products alone: left out
    row("Adam step d, batch 64", 1.0, { "fimscope wasm": 30, "pytorch loop": 25 }),
  ];
  const lines = analysis(rows, 50).trim().split("\n");
  assert.is(lines.length, 2 + 3, lines.join("\n"));
  assert.ok(lines[0].includes("2 x 50.0 GFLOP/s"), lines[0]);
  assert.is(lines[2], "| Adam step a, batch 64 | 20 / 8 | 10.0 | 50% | 10.0 / 17.0 | 67% |");
  assert.is(lines[3], "| features b, 64 images | 40 / 30 | 20.0 | 50% | 10.0 / - | 67% |");
  assert.is(lines[4], "| Adam step c, batch 32 | 10 / 5 | 5.0 | 50% | 35.0 / 25.0 | cannot: our rest alone (35.0) is longer than PyTorch's best (30) |");
  // one thread: the ceiling counted once
  assert.ok(analysis(rows.slice(0, 1), 50, 1).includes("| 20.0 | 100% |"));
  // nothing to analyse: no table, and no measured ceiling
  assert.is(analysis(rows.slice(3), 50), "");
  assert.is(analysis(rows, 0), "");
});

S.run();
