// bench/torch.ts's products-alone analysis (bench/README.md's table of where each row's gap is)
// and its round-by-round ratio, on made-up rows whose every number is worked out by hand here.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { analysis, pairedCell, pairedRatio, type Row, summary } from "../bench/torch.ts";

const S = suite("bench torch analysis");

const row = (workload: string, gflop: number, engines: Record<string, number>, products?: { fimscope: number; pytorch: number }): Row =>
  ({ workload, gflop, engines, spread: {}, cpu: engines, ...(products ? { products } : {}) });

S("the least time at the ceiling, our share of it, the rests, the share needed to tie and the row with each product at PyTorch's speed or the ceiling's, per row", () => {
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
    // with the shapes: the row were each product as fast as PyTorch's kernel or, where that is
    // faster than the ceiling allows, at the ceiling (2 x 50 GFLOP/s), ours where faster:
    //   2 calls of 0.1 GFLOP, ours 3 ms, PyTorch's 1: the ceiling's 1.0 ms, max(1, 1.0) = 1.0, x2 = 2.0
    //   1 call of 0.05 GFLOP, ours 2, PyTorch's 0.2: faster than the ceiling's 0.5, so 0.5
    //   4 calls of 0.01 GFLOP, ours 0.1, PyTorch's 0.5: ours, x4 = 0.4
    // products 2.9, our rest 30 - 20 = 10: the row 12.9, PyTorch's best 25 over it 1.94x
    { ...row("Adam step e, batch 64", 1.0, { "fimscope wasm": 30, "pytorch loop": 25 }, { fimscope: 20, pytorch: 8 }),
      products: { fimscope: 20, pytorch: 8, shapes: [
        { key: "a", n: 2, gflop: 0.1, fimscope: 3, pytorch: 1 }, { key: "b", n: 1, gflop: 0.05, fimscope: 2, pytorch: 0.2 }, { key: "c", n: 4, gflop: 0.01, fimscope: 0.1, pytorch: 0.5 }] } },
  ];
  const lines = analysis(rows, 50).trim().split("\n");
  assert.is(lines.length, 2 + 4, lines.join("\n"));
  assert.ok(lines[0].includes("2 x 50.0 GFLOP/s"), lines[0]);
  assert.is(lines[2], "| Adam step a, batch 64 | 20 / 8 | 10.0 | 50% | 10.0 / 17.0 | 67% | - |");
  assert.is(lines[3], "| features b, 64 images | 40 / 30 | 20.0 | 50% | 10.0 / - | 67% | - |");
  assert.is(lines[4], "| Adam step c, batch 32 | 10 / 5 | 5.0 | 50% | 35.0 / 25.0 | cannot: our rest alone (35.0) is longer than PyTorch's best (30) | - |");
  assert.is(lines[5], "| Adam step e, batch 64 | 20 / 8 | 10.0 | 50% | 10.0 / 17.0 | 67% | 2.9 + 10.0 = 12.9 (1.94x) |");
  // one thread: the ceiling counted once
  assert.ok(analysis(rows.slice(0, 1), 50, 1).includes("| 20.0 | 100% |"));
  // nothing to analyse: no table, and no measured ceiling
  assert.is(analysis(rows.slice(3, 4), 50), "");
  assert.is(analysis(rows, 0), "");
});

S("the round-by-round ratio: each round's best PyTorch time over ours, its median and the order-statistic interval for the median", () => {
  // 21 rounds; the machine's speed drifts 2x over them (both sides alike: it cancels in each
  // round's ratio), the ratio 0.9 but for one round off each way
  const speed = Array.from({ length: 21 }, (_, i) => 1 + i / 20);
  const ours = speed.map((v) => 50 * v), theirs = ours.map((v, i) => v * (i === 3 ? 1.5 : i === 17 ? 0.5 : 0.9));
  const p = pairedRatio(theirs, ours);
  assert.is(p.rounds, 21);
  assert.ok(Math.abs(p.median - 0.9) < 1e-12, `${p.median}`);
  // k = 6 for n = 21: P(B <= 5) = (1 + 21 + 210 + 1330 + 5985 + 20349) / 2^21 = 27896 / 2097152,
  // coverage 1 - 2 x that = 0.97340; the 6th smallest and 6th largest ratios are both 0.9 here
  assert.ok(Math.abs(p.coverage - (1 - 2 * 27896 / 2097152)) < 1e-12, `${p.coverage}`);
  assert.ok(Math.abs(p.lo - 0.9) < 1e-12 && Math.abs(p.hi - 0.9) < 1e-12, `${p.lo} ${p.hi}`);
  // k = 7 would cover 1 - 2 x 82160 / 2097152 = 0.9216 < 0.95, so 6 is the largest
  // spread ratios 1..21 (over ours = 1): median 11, interval [6, 16]
  const q = pairedRatio(Array.from({ length: 21 }, (_, i) => 21 - i), Array(21).fill(1));
  assert.equal([q.median, q.lo, q.hi], [11, 6, 16]);
  assert.is(pairedCell(q), "11.00x (6.00-16.00x, 97%)");
  // an even count takes the mean of the middle two; n = 6: k = 1 (P(B = 0) = 1/64: 96.9%)
  const e = pairedRatio([1, 2, 3, 4, 5, 6], Array(6).fill(1));
  assert.equal([e.median, e.lo, e.hi], [3.5, 1, 6]);
  assert.ok(Math.abs(e.coverage - (1 - 2 / 64)) < 1e-12);
  // below 6 rounds no interval reaches 95%: the least to the largest, with its coverage (n = 3: 75%)
  const t = pairedRatio([3, 1, 2], [1, 1, 1]);
  assert.equal([t.median, t.lo, t.hi, t.coverage], [2, 1, 3, 0.75]);
  assert.throws(() => pairedRatio([], []), /no rounds/);
});

S("the summary table gives the round-by-round column of our engine", () => {
  const r: Row = { ...row("Adam step a, batch 64", 1.0, { "fimscope wasm": 30, "pytorch loop": 25 }), paired: { "fimscope wasm": { median: 0.83, lo: 0.8, hi: 0.87, coverage: 0.973, rounds: 21 } } };
  const line = summary([r], 50).trim().split("\n")[2];
  assert.ok(line.startsWith("| Adam step a, batch 64 | 1.00 | 30 (30) | 25 (25) | - | 0.83x | 0.83x (0.80-0.87x, 97%) | 0.83x |"), line);
  // a row without it (no PyTorch engine ran) shows "-"
  assert.ok(summary([row("features b", 1, { "fimscope wasm": 30, "pytorch loop": 40 })], 50).includes("| 1.33x | - |"));
});

S.run();
