// `npm run paper` end to end on tiny stand-ins of the paper's five colour sets in their official
// files (scripts/data/paper_standins.ts): tiny models trained a few steps (a VAE per set, a Glow on
// CIFAR-10, a diffusion model on SVHN), the whole command to complete tables; a cell recomputed here
// from the features files by the protocol; the rerun computes nothing and writes the same tables;
// shards from `npm run features` and a stale file. Plus the pieces: the split, run matching, shards,
// the table layout.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { loadImageFiles } from "../src/data/image_files.ts";
import { saveTensors } from "../src/io/safetensors.ts";
import { createModel } from "../src/models/registry.ts";
import { metadataOf, train } from "../src/models/train.ts";
import { type FeatureMeta, parseFeatureFile, shardRange } from "../src/ood/feature_file.ts";
import { auroc, type Metrics } from "../src/ood/metrics.ts";
import { completeRun, fitGroups, type FoundFile, type Grid, gridMarkdown, gridSummary, halvesUnlike, ownShards, roundHalfEven, type RunKey } from "../src/ood/paper.ts";
import { makeSet } from "../src/data/dataset.ts";
import { FittedScores } from "../src/ood/scores.ts";
import { writePaperStandins } from "../scripts/data/paper_standins.ts";

const S = suite("paper");
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const dec = new TextDecoder();

// ---- the pieces ----

S("the split is Python's round(G / 2), half to even, as the authors' split_dataset_summary", () => {
  assert.equal([0, 1, 2, 3, 4, 5, 6, 7, 13, 26032, 5206, 3992].map(fitGroups), [0, 0, 1, 2, 2, 2, 3, 4, 6, 13016, 2603, 1996]);
  assert.equal([0.5, 1.5, 2.5, 3.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 2, 3]);
});

S("this job's shards cover a set's inputs in order, cut at whole passes, as features --shard k/n cuts them", () => {
  for (const [n, per] of [[20, 64], [10000, 64], [26032, 60], [7, 5]]) {
    const s = ownShards(n, per);
    assert.is(s[0][0], 0);
    assert.is(s[s.length - 1][1], n);
    s.forEach(([a, b], k) => {
      assert.equal([a, b], shardRange(n, per, k, s.length));
      if (k) assert.is(a, s[k - 1][1]);
      if (b < n) assert.is(b % per, 0);
    });
    assert.ok(s.every(([a, b]) => b - a <= 2048 + per), `${n}/${per}: shards of at most a shard's inputs`);
  }
});

const meta = (o: { sha?: string; objective?: string; B?: number; seed?: number; spec?: string; n?: number; k?: number; of?: number; batch?: number } = {}): FeatureMeta => {
  const n = o.n ?? 20, of = o.of ?? 1, k = o.k ?? 0, [from, to] = shardRange(n, o.batch ?? 8, k, of);
  return {
    format: "fimscope-features", version: 1, model: { path: "m.safetensors", sha256: o.sha ?? "a".repeat(64), kind: "vae", image: [3, 32, 32] },
    objective: o.objective ?? "nll", measure: { kind: "nll", short: "NLL", label: "NLL", unit: "bits/dim" }, groupSize: o.B ?? 1, seed: o.seed ?? 0,
    set: { spec: o.spec ?? "svhn:/data/svhn/test_32x32.mat", n, batch: o.batch ?? 8 }, shard: { k, n: of, from, to },
  };
};

S("a run counts only when every shard is there and the model, objective, B, seed, set (reader, name, size) all match", () => {
  const key: RunKey = { sha256: "a".repeat(64), objective: "nll", B: 1, seed: 0, setKey: "svhn:test_32x32.mat", n: 20 };
  const f = (path: string, m: FeatureMeta): FoundFile => ({ path, meta: m });
  assert.is(completeRun([f("a", meta())], key)?.length, 1);
  // The same file under another folder (another machine's path) still matches; the key is the reader and the file's name.
  assert.is(completeRun([f("a", meta({ spec: "svhn:/elsewhere/svhn/test_32x32.mat" }))], key)?.length, 1);
  for (const bad of [{ sha: "b".repeat(64) }, { objective: "l1-t1" }, { B: 5 }, { seed: 1 }, { n: 21 }, { spec: "svhn:/data/svhn/train_32x32.mat" }, { spec: "cifar10:/data/svhn/test_32x32.mat" }]) {
    assert.is(completeRun([f("a", meta(bad))], key), null, JSON.stringify(bad));
  }
  // Shards: all of one run, taken in k order; a missing one leaves the run incomplete.
  const shards = [2, 0, 1].map((k) => f(`s${k}`, meta({ k, of: 3 })));
  assert.equal(completeRun(shards, key)?.map((x) => x.path), ["s0", "s1", "s2"]);
  assert.is(completeRun(shards.slice(0, 2), key), null);
  // Shards of two runs (other pass size) do not mix.
  assert.is(completeRun([f("s0", meta({ k: 0, of: 2 })), f("t1", meta({ k: 1, of: 2, batch: 4 }))], key), null);
});

S("a labelled set stored by class is said: its halves would be different classes", () => {
  const set = (labels: number[]) => makeSet("s", new Uint8Array(labels.length * 4), Uint8Array.from(labels), 1, 2, 2);
  assert.match(halvesUnlike(set([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])) ?? "", /^its labels differ between its halves \(total variation 1\.00; first half classes 0, second half 1\)/);
  assert.is(halvesUnlike(set([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])), null);
  assert.is(halvesUnlike(set([255, 255, 255, 255])), null);
});

const metrics = (v: number): Metrics => ({ auroc: v, aurocCI: [v, v], auprIn: v, auprOut: v, fpr95: 0 });

S("the table: typicality above, the gradient method below, the better of each pair bold (both on a tie), a row without a model, the caption's quartiles", () => {
  const sets = ["a", "b", "c"].map((n) => ({ name: n, label: n.toUpperCase(), spec: n, key: n }));
  const g: Grid = { family: "vae", B: 1, sets, models: { a: "vae-a", b: "vae-b" }, cells: new Map() };
  const put = (i: string, o: string, m: string, v: number) => g.cells.set(`${i}|${o}|${m}`, { method: m, metrics: metrics(v), roc: [], nFit: 1, nEval: 1, nOod: 1 });
  put("a", "b", "typicality", 0.9), put("a", "b", "gradient", 0.95);
  put("a", "c", "typicality", 0.7), put("a", "c", "gradient", 0.6);
  put("b", "a", "typicality", 0.5), put("b", "a", "gradient", 0.5);
  put("b", "c", "typicality", 0.3), put("b", "c", "gradient", 0.99);
  const md = gridMarkdown(g).split("\n");
  const at = (title: string) => md.indexOf(md.find((l) => l.includes(title))!);
  const typ = at("typicality (baseline)"), grad = at("gradient (the method)");
  assert.ok(typ > 0 && grad > typ);
  assert.is(md[typ + 1], "| A | — | 0.900 | **0.700** |");
  assert.is(md[typ + 2], "| B | **0.500** | — | 0.300 |");
  assert.is(md[typ + 3], "| C | no model | no model | no model |");
  assert.is(md[grad + 1], "| A | — | **0.950** | 0.600 |");
  assert.is(md[grad + 2], "| B | **0.500** | — | **0.990** |");
  // Quartiles by linear interpolation (numpy's default) over the four pairs.
  const t = gridSummary(g, "typicality")!;
  assert.equal([t.n, +t.mean.toFixed(6), +t.q1.toFixed(6), +t.median.toFixed(6), +t.q3.toFixed(6)], [4, 0.6, 0.45, 0.6, 0.75]);
  assert.match(md[md.length - 1], /^\*typicality: mean 0\.600, quartiles 0\.450 \/ 0\.600 \/ 0\.750 \(4 pairs\); gradient: mean 0\.760, .*\(4 pairs\)\.\* No vae model was trained on C: its row is empty, its column OOD only\.$/);
});

// ---- end to end ----

const tmp = Deno.makeTempDirSync({ prefix: "fimscope-paper-" });
const N = 20, NAMES = ["svhn", "celeba", "gtsrb", "cifar10", "imagenet32"];
const TINY: Record<string, Record<string, unknown>> = {
  vae: { image: [3, 32, 32], latent: 2, channels: [2, 4], outChannels: 2 },
  glow: { image: [3, 32, 32], levels: 1, steps: 1, hidden: 4 },
  diffusion: { image: [3, 32, 32], dim: 4, dimMults: [1, 1, 1], resBlocks: 1, groups: 2, steps: 20, strata: 2 },
};
const trained: [string, string][] = [...NAMES.map((s) => ["vae", s] as [string, string]), ["glow", "cifar10"], ["diffusion", "svhn"]];

async function runPaper(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/src/cli/paper.ts`, ...args], cwd: tmp, stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}
async function runFeatures(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${ROOT}/src/cli/features.ts`, ...args], cwd: tmp, stdout: "piped", stderr: "piped" }).output();
  assert.is(r.code, 0, dec.decode(r.stderr));
}
const listing = (dir: string) => [...Deno.readDirSync(dir)].map((e) => `${e.name} ${Deno.statSync(`${dir}/${e.name}`).mtime?.getTime()}`).sort();
const csvRows = (text: string) => text.trim().split("\n").slice(1).map((l) => l.split(","));
// wasm: the CPU backend's reference loops take ~8x longer; --batch 8 makes the stand-ins' 20 inputs three passes, so two shards of `features` cut them as the job does.
const ARGS = ["--data-dir", "data", "--B", "1,5", "--out", "out", "--backend", "wasm", "--batch", "8"];

let first: { md: string; csv: string } = { md: "", csv: "" };

S("paper --data-dir: five stand-ins in their official files, seven tiny models found by their default names, complete tables", async () => {
  const paths = writePaperStandins(`${tmp}/data`, N, 1);
  Deno.mkdirSync(`${tmp}/weights/paper`, { recursive: true });
  for (const [kind, set] of trained) {
    const spec = `${set}:${paths[set]}`, data = loadImageFiles(spec).set;
    const m = await createModel(kind, TINY[kind], T.cpu, 1);
    await train(m, data, { steps: 3, batch: 4, lr: 1e-3, seed: 1, optimizer: "adam", clip: 100, warmup: 0, checkpointEvery: 1e9, checkpointPath: `${tmp}/${kind}-${set}.ckpt.safetensors`, data: spec });
    await saveTensors(`${tmp}/weights/paper/${kind}-${set}.safetensors`, m.namedState(), metadataOf(m, { data: spec }));
  }
  const r = await runPaper(ARGS);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /features: 0 of 70 \(model, set, B\) runs complete in out\/features; 70 to compute \(70 shard file\(s\)\)/);
  const md = Deno.readTextFileSync(`${tmp}/out/paper.md`), csv = Deno.readTextFileSync(`${tmp}/out/paper.csv`);
  first = { md, csv };
  // Every family's table at both B; the VAE's complete (a model per set), the others one row each.
  for (const fam of ["vae", "glow", "diffusion"]) for (const B of [1, 5]) assert.ok(md.includes(`**${fam}, B = ${B}**`), `${fam} B=${B}`);
  const vae1 = md.slice(md.indexOf("**vae, B = 1**"), md.indexOf("**vae, B = 5**")).split("\n");
  const labels = ["SVHN", "CelebA", "GTSRB", "CIFAR-10", "ImageNet32"];
  assert.is(vae1.filter((l) => l.startsWith("| in-distribution")).length, 1);
  for (const half of ["typicality", "gradient"]) {
    const start = vae1.findIndex((l) => l.startsWith(`| *${half}`));
    labels.forEach((label, i) => {
      const cells = vae1[start + 1 + i].split("|").slice(2, -1).map((c) => c.trim());
      assert.is(vae1[start + 1 + i].split("|")[1].trim(), label);
      cells.forEach((c, j) => assert.ok(i === j ? c === "—" : /^(\*\*)?[01]\.\d{3}(\*\*)?$/.test(c), `${half} ${label} cell ${j}: '${c}'`));
    });
  }
  assert.match(md, /\*typicality: mean [01]\.\d{3}, quartiles [01]\.\d{3} \/ [01]\.\d{3} \/ [01]\.\d{3} \(20 pairs\); gradient: mean [01]\.\d{3}, quartiles .* \(20 pairs\)\.\*/);
  assert.match(md, /No glow model was trained on SVHN, CelebA, GTSRB, ImageNet32/);
  // The CSV: every filled cell, each AUROC inside its bootstrap interval, the protocol's group counts.
  const rows = csvRows(csv);
  assert.is(rows.length, 2 * 2 * (5 * 4 + 4 + 4));
  for (const r of rows) {
    const [au, lo, hi] = [5, 6, 7].map((i) => Number(r[i]));
    assert.ok(0 <= lo && lo <= au && au <= hi && hi <= 1, r.join(","));
    assert.equal(r.slice(11, 14), r[1] === "1" ? ["10", "10", "20"] : ["2", "2", "4"]);
  }
  for (const fam of ["vae", "glow", "diffusion"]) for (const B of [1, 5]) {
    for (const s of fam === "vae" ? NAMES : fam === "glow" ? ["cifar10"] : ["svhn"]) assert.ok(Deno.statSync(`${tmp}/out/roc-${fam}-B${B}-${s}.svg`).isFile);
  }
});

S("a cell recomputed here from the features files: fit on the first half of the in-distribution groups, the rest against every OOD group", () => {
  const files = [...Deno.readDirSync(`${tmp}/out/features`)].map((e) => e.name);
  const read = (model: string, set: string, B: number) => {
    const name = files.find((f) => f.startsWith(`${model}--${set}--B${B}--`))!;
    return parseFeatureFile(Deno.readFileSync(`${tmp}/out/features/${name}`), name);
  };
  const rows = csvRows(first.csv);
  for (const B of [1, 5]) {
    const own = read("vae-cifar10", "cifar10", B), ood = read("vae-cifar10", "gtsrb", B);
    const G = own.logf.length, nFit = fitGroups(G);
    assert.is(G, N / B);
    const fitted = FittedScores.fit(own.layers, own.logf.slice(0, nFit), own.nll.slice(0, nFit));
    const scores = (m: string, f: typeof own, a: number, b: number) => f.logf.slice(a, b).map((r, i) => fitted.all(r, f.nll[a + i])[m]);
    for (const m of ["typicality", "gradient"]) {
      const want = auroc(scores(m, own, nFit, G), scores(m, ood, 0, ood.logf.length));
      const got = rows.find((r) => r[0] === "vae" && r[1] === String(B) && r[2] === m && r[3] === "cifar10" && r[4] === "gtsrb")!;
      assert.is(Number(got[5]), want, `${m} B=${B}`);
    }
  }
});

S("the rerun computes nothing, reads no set and writes the same tables", async () => {
  const before = listing(`${tmp}/out/features`);
  const r = await runPaper(ARGS);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /features: 70 of 70 \(model, set, B\) runs complete in out\/features; 0 to compute \(0 shard file\(s\)\)/);
  for (const s of NAMES) assert.match(r.out, new RegExp(`${s} \\(${N} images; the official test split has \\d+, features all present, not read\\)`));
  assert.is(Deno.readTextFileSync(`${tmp}/out/paper.md`), first.md);
  assert.is(Deno.readTextFileSync(`${tmp}/out/paper.csv`), first.csv);
  assert.equal(listing(`${tmp}/out/features`), before);
});

S("shards written by npm run features are used as the job's own (same rows); a stale file under the job's name is replaced", async () => {
  const dir = `${tmp}/out/features`, own = [...Deno.readDirSync(dir)].map((e) => e.name).find((f) => f.startsWith("vae-svhn--svhn--B1--"))!;
  const ownRows = parseFeatureFile(Deno.readFileSync(`${dir}/${own}`), own).logf;
  Deno.removeSync(`${dir}/${own}`);
  const input = `svhn:${tmp}/data/svhn/test_32x32.mat`;
  for (const k of [0, 1]) await runFeatures(["--model", "weights/paper/vae-svhn.safetensors", "--input", input, "--batch", "8", "--shard", `${k}/2`, "--out", `out/features/from-elsewhere-${k}.npz`, "--backend", "wasm"]);
  const shards = [0, 1].map((k) => parseFeatureFile(Deno.readFileSync(`${dir}/from-elsewhere-${k}.npz`), "x.npz"));
  assert.equal(shards.flatMap((s) => s.logf.map((r) => Array.from(r))), ownRows.map((r) => Array.from(r)), "the features command's rows equal the job's own");
  let r = await runPaper(ARGS);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /70 of 70 .* 0 to compute/);
  assert.is(Deno.readTextFileSync(`${tmp}/out/paper.md`), first.md);
  // A file under the job's own name whose meta is of another run (seed 7) is not used, and is replaced.
  const glowOwn = [...Deno.readDirSync(dir)].map((e) => e.name).find((f) => f.startsWith("glow-cifar10--gtsrb--B5--"))!;
  await runFeatures(["--model", "weights/paper/glow-cifar10.safetensors", "--input", `gtsrb:${tmp}/data/gtsrb`, "--B", "5", "--seed", "7", "--batch", "8", "--out", `out/features/${glowOwn}`, "--backend", "wasm"]);
  r = await runPaper(ARGS);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /69 of 70 .* 1 to compute \(1 shard file\(s\)\)/);
  assert.match(r.err, new RegExp(`notice: replacing out/features/${glowOwn.replace(/\./g, "\\.")}: it is not shard 0 of 1 of this run`));
  assert.is(parseFeatureFile(Deno.readFileSync(`${dir}/${glowOwn}`), glowOwn).meta.seed, 0);
  assert.is(Deno.readTextFileSync(`${tmp}/out/paper.md`), first.md);
});

S("a set missing from the data folder is skipped and said (its model not looked for); the printed tables are the written ones", async () => {
  // The same stand-ins but CelebA, linked into another folder; the same features folder (all there).
  const part = `${tmp}/data-part`;
  Deno.mkdirSync(part);
  for (const s of NAMES.filter((s) => s !== "celeba")) Deno.symlinkSync(`${tmp}/data/${s}`, `${part}/${s}`);
  const r = await runPaper(["--data-dir", "data-part", "--B", "1,5", "--out", "out", "--backend", "wasm", "--batch", "8"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^skipped set celeba: .*not found/m);
  assert.match(r.out, /0 to compute/);
  const md = Deno.readTextFileSync(`${tmp}/out/paper.md`);
  assert.ok(!md.includes("CelebA |"), "no CelebA row or column");
  assert.match(md, /- skipped set celeba: /);
  // Each table printed is the one written, cell for cell.
  const rows = md.split("\n").filter((l) => l.startsWith("| "));
  assert.is(rows.length, 6 * (2 + 2 * (1 + 4)), "six tables (3 families x B = 1, 5) over the four sets: header, rule, and per method a label row and a row per set");
  for (const l of rows) assert.ok(r.out.includes(l), `printed: ${l}`);
  // The VAE's grid is now 4x4: 12 pairs per method.
  assert.match(md, /\*typicality: mean [01]\.\d{3}, quartiles .* \(12 pairs\); gradient: .* \(12 pairs\)\.\*/);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));
S.run();
