// fit and score end to end on a tiny Glow: images from an .npy and a PNG folder, scores named by
// file and file:index, CSV and JSON out; a refitted detector's scores equal the CLI's; one-line
// errors for a mismatched model hash, bad detector files, wrong image shapes and bad options.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { makeSet } from "../src/data/dataset.ts";
import { encodeNpy, writePngFolder } from "../src/data/image_files.ts";
import { saveTensors } from "../src/io/safetensors.ts";
import { createModel } from "../src/models/registry.ts";
import { metadataOf } from "../src/models/train.ts";
import { readDetectorText } from "../src/ood/detector.ts";
import { parseSetSpec, scoringSelection, selectionIndices } from "../src/data/selection.ts";

const S = suite("detector_cli");
const dir = Deno.makeTempDirSync();

async function run(cli: string, ...args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `src/cli/${cli}.ts`, ...args], stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

function images(n: number, c: number, h: number, w: number, seed: number) {
  const g = new T.Generator(seed);
  // Smooth blobs with noise: something a Glow has finite, varied gradients on.
  const px = new Uint8Array(n * c * h * w);
  for (let i = 0; i < n; i++) {
    const cx = 8 + g.int(12), cy = 8 + g.int(12), r = 4 + g.int(6);
    for (let k = 0; k < c * h * w; k++) {
      const x = k % w, y = Math.floor(k / w) % h;
      px[i * c * h * w + k] = Math.min(255, ((x - cx) ** 2 + (y - cy) ** 2 < r * r ? 200 : 20) + g.int(40));
    }
  }
  return makeSet("t", px, new Uint8Array(n).fill(255), c, h, w);
}

const model = `${dir}/tiny-glow.safetensors`;
S("setup: a tiny Glow and image files", async () => {
  const m = await createModel("glow", { levels: 2, steps: 1, hidden: 8, image: [1, 28, 28] }, T.cpu, 3);
  const x = T.rand(new T.Generator(2), [16, 1, 28, 28], { backend: T.cpu, low: -0.5, high: 0.5 });
  m.initialize!(x);
  m.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(new T.Generator(10 + i), [...p.shape], { backend: T.cpu, std: 0.02 }))));
  await saveTensors(model, m.namedState(), metadataOf(m, { data: "fashion" }));
  const fit = images(24, 1, 28, 28, 1);
  Deno.writeFileSync(`${dir}/fit.npy`, encodeNpy(fit.images, [24, 28, 28]));
  writePngFolder(`${dir}/test-png`, images(5, 1, 28, 28, 2), "t");
  writePngFolder(`${dir}/rgb-png`, images(2, 3, 32, 32, 3), "c");
});

S("fit writes a detector; score prints and writes per-file scores equal to the detector's own", async () => {
  const f = await run("fit", "--model", model, "--data", `${dir}/fit.npy`, "--n", "20", "--batch", "8", "--backend", "cpu", "--out", `${dir}/det.json`);
  assert.is(f.code, 0, f.err + f.out);
  assert.match(f.out, /detector: .*det\.json \(model sha256 [0-9a-f]{16}/);
  const det = readDetectorText(Deno.readTextFileSync(`${dir}/det.json`), "det.json");
  assert.is(det.file.fit.groups, 20);
  assert.is(det.file.model.path, model);
  const s = await run("score", "--detector", `${dir}/det.json`, "--input", `${dir}/test-png`, "--backend", "cpu", "--out", `${dir}/s.csv`);
  assert.is(s.code, 0, s.err + s.out);
  assert.match(s.out, /^t0\.png\s+\d+\.\d{4}\s+-?\d+\.\d{2}\s+\d+\.\d\s+(in|ood)\s+\S+ [+-]\d+\.\d{2}, /m);
  assert.match(s.out, /5 inputs scored \(gradient; threshold/);
  const csv = Deno.readTextFileSync(`${dir}/s.csv`).trim().split("\n").map((l) => l.split(","));
  assert.equal(csv[0].slice(0, 5), ["input", "value", "score", "percentile", "verdict"]);
  assert.is(csv[0][13], "score:gradient");
  assert.equal(csv.slice(1).map((r) => r[0]), ["t0.png", "t1.png", "t2.png", "t3.png", "t4.png"]);
  // The CLI's score column is the detector's method applied to the row; check consistency of the columns.
  for (const r of csv.slice(1)) {
    assert.is(r[2], r[13], "score = score:gradient");
    const pct = Number(r[3]), thr = det.file.threshold95.gradient;
    assert.is(r[4], Number(r[2]) >= thr ? "in" : "ood");
    assert.ok(pct >= 0 && pct <= 100);
  }
  // The percentile is the score's rank among the fit scores: it rises with the score.
  const byScore = csv.slice(1).map((r) => [Number(r[2]), Number(r[3])]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < byScore.length; i++) assert.ok(byScore[i][1] >= byScore[i - 1][1], `percentiles against scores: ${JSON.stringify(byScore)}`);
  // The fit data scored again: the same features, so its NLL and scores land in the fit quantiles' range.
  const j = await run("score", "--detector", `${dir}/det.json`, "--input", `${dir}/fit.npy`, "--backend", "cpu", "--quiet", "--out", `${dir}/s.json`);
  assert.is(j.code, 0, j.err);
  const js = JSON.parse(Deno.readTextFileSync(`${dir}/s.json`));
  assert.is(js.scores.length, 24);
  assert.is(js.scores[7].id, `${dir}/fit.npy:7`);
  const inside = js.scores.filter((r: { verdict: string }) => r.verdict === "in").length;
  assert.ok(inside >= 18, `${inside} of the 24 (20 of them fit) inputs in`);
});

S("score --saliency writes overlays; ood takes files for --data and --ood, with --fim and saliency in the report", async () => {
  const s = await run("score", "--detector", `${dir}/det.json`, "--input", `${dir}/test-png`, "--backend", "cpu", "--quiet", "--saliency", `${dir}/sal.png`, "--saliency-k", "3");
  assert.is(s.code, 0, s.err + s.out);
  assert.match(s.out, /saliency: .*sal\.png \((t\d\.png, ){2}t\d\.png;/);
  const { decode } = await import("fast-png");
  const png = decode(Deno.readFileSync(`${dir}/sal.png`));
  assert.equal([png.width, png.height], [6 * 30 + 2, 30 + 2]);
  const o = await run("ood", "--model", model, "--data", `${dir}/fit.npy`, "--ood", `${dir}/test-png,noise`, "--fit", "8", "--eval", "8", "--B", "1", "--fim", "--saliency", "1", "--backend", "cpu", "--out", `${dir}/report`);
  assert.is(o.code, 0, o.err + o.out);
  assert.match(o.out, /gradient-fim\s+gradient-fim-block/);
  assert.match(o.out, /tiny-glow-in-fit\s+1\s+test-png\s+(\d\.\d{3}\s+){5}/);
  assert.match(o.out, /full FIM tiny-glow-in-fit B=1: 8 fit gradients x \d+ parameters, lambda/);
  const files = [...Deno.readDirSync(`${dir}/report`)].map((e) => e.name);
  for (const f of ["layers-auroc-tiny-glow-in-fit-B1.svg", "saliency-tiny-glow-in-fit-B1.png", "roc-tiny-glow-in-fit-B1-test-png.svg"]) assert.ok(files.includes(f), `${f} not in ${files}`);
  assert.match(Deno.readTextFileSync(`${dir}/report/table.md`), /gradient-fim AUROC/);
});

S("influence prints each input's most influential training images and writes the strip", async () => {
  const r = await run("influence", "--model", model, "--input", `${dir}/test-png`, "--data", `${dir}/fit.npy`, "--n", "10", "--first", "2", "--top", "3", "--backend", "cpu", "--out", `${dir}/strip.png`);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /F_N from 10 images of .*fit\.npy/);
  assert.match(r.out, /^t0\.png: (.*fit\.npy:\d+ -?\d[^,]*, ){2}.*fit\.npy:\d+ -?\d/m);
  assert.match(r.out, /^t1\.png: /m);
  const { decode } = await import("fast-png");
  const png = decode(Deno.readFileSync(`${dir}/strip.png`));
  assert.equal([png.width, png.height], [4 * 30 + 2, 2 * 30 + 2]);
});

S("score on a packaged set keeps off the detector's fit images: the allowed range by default, an overlapping one refused naming the allowed", async () => {
  // Fitted on 12 images of the packaged FashionMNIST test split: positions [0, 12) of Generator(1000)'s permutation.
  const f = await run("fit", "--model", model, "--data", "fashion", "--n", "12", "--batch", "8", "--backend", "cpu", "--out", `${dir}/det-fashion.json`);
  assert.is(f.code, 0, f.err + f.out);
  assert.match(f.out, /12 inputs of fashion test split, positions \[0, 12\) of its permutation by Generator\(1000\) in groups of 1/);
  const det = readDetectorText(Deno.readTextFileSync(`${dir}/det-fashion.json`), "d").file;
  assert.equal(det.fit.selection, { set: "fashion", split: "test", seed: 1000, from: 0, to: 12 });
  const perm = new T.Generator(1000).permutation(10000);
  const bad = await run("score", "--detector", `${dir}/det-fashion.json`, "--input", "fashion:10-14", "--backend", "cpu");
  assert.is(bad.code, 1, bad.out);
  assert.match(bad.err, /^error: score: --input fashion:10-14: positions \[10, 14\) of its permutation by Generator\(1000\) include images the detector was fitted or calibrated on \(positions \[0, 12\)\); allowed: fashion:test:12-10000\n$/);
  // A range outside the fit images: scored, named by their indices in the split.
  const ok = await run("score", "--detector", `${dir}/det-fashion.json`, "--input", "fashion:12-15", "--backend", "cpu", "--out", `${dir}/fs.json`);
  assert.is(ok.code, 0, ok.err + ok.out);
  assert.match(ok.out, /^input: 3 images, fashion test split, positions \[12, 15\) of its permutation by Generator\(1000\) \(none of them fitted or calibrated on\)$/m);
  const ids = JSON.parse(Deno.readTextFileSync(`${dir}/fs.json`)).scores.map((r: { id: string }) => r.id);
  assert.equal(ids, [12, 13, 14].map((p) => `fashion-test:${perm[p]}`));
  // Another split, or another set: their own order, any range.
  const tr = await run("score", "--detector", `${dir}/det-fashion.json`, "--input", "fashion:train:0-2", "--backend", "cpu", "--quiet");
  assert.is(tr.code, 0, tr.err);
  assert.match(tr.out, /^input: 2 images, fashion train split, images \[0, 2\)$/m);
  // Without a range: every position after the fit images (stopped before the features; the selection is made first).
  const all = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", "src/cli/score.ts", "--detector", `${dir}/det-fashion.json`, "--input", "fashion"], env: { FIMSCOPE_STOP_BEFORE_WORK: "1" }, stdout: "piped", stderr: "piped" }).output();
  assert.is(all.code, 0, new TextDecoder().decode(all.stderr));
  assert.match(new TextDecoder().decode(all.stdout), /^input: 9988 images, fashion test split, positions \[12, 10000\) of its permutation by Generator\(1000\) \(none of them fitted or calibrated on\)$/m);
});

S("scoringSelection: the positions outside the fit and calibration ranges, the default the last run, overlaps refused", () => {
  const used = [{ set: "fashion", split: "test" as const, seed: 1000, from: 0, to: 500 }, { set: "fashion", split: "test" as const, seed: 1000, from: 500, to: 1000 }];
  const n = (split: string) => (split === "test" ? 10000 : 60000);
  assert.equal(scoringSelection({ set: "fashion" }, n, used, "x"), { set: "fashion", split: "test", seed: 1000, from: 1000, to: 10000 });
  assert.equal(scoringSelection({ set: "fashion", range: [1000, 1010] }, n, used, "x"), { set: "fashion", split: "test", seed: 1000, from: 1000, to: 1010 });
  assert.throws(() => scoringSelection({ set: "fashion", range: [999, 1010] }, n, used, "x"), /^x: positions \[999, 1010\) of its permutation by Generator\(1000\) include images .* \(positions \[0, 500\) and \[500, 1000\)\); allowed: fashion:test:1000-10000$/);
  // A gap between used ranges is allowed too; with everything used, nothing is.
  assert.throws(() => scoringSelection({ set: "fashion", range: [95, 105] }, n, [{ ...used[0], from: 100, to: 200 }], "x"), /allowed: fashion:test:0-100 or fashion:test:200-10000$/);
  assert.throws(() => scoringSelection({ set: "fashion" }, n, [{ ...used[0], to: 10000 }], "x"), /used every image/);
  assert.equal(scoringSelection({ set: "mnist" }, n, used, "x"), { set: "mnist", split: "test", seed: null, from: 0, to: 10000 });
  assert.equal(scoringSelection({ set: "fashion", split: "train", range: [5, 9] }, n, used, "x"), { set: "fashion", split: "train", seed: null, from: 5, to: 9 });
  assert.equal(Array.from(selectionIndices({ set: "fashion", split: "test", seed: 1000, from: 3, to: 6 }, 10000)), Array.from(new T.Generator(1000).permutation(10000).subarray(3, 6)));
  assert.equal(parseSetSpec("fashion:test:5-9", ["fashion"]), { set: "fashion", split: "test", range: [5, 9] });
  assert.equal(parseSetSpec("fashion:5-9", ["fashion"]), { set: "fashion", range: [5, 9] });
  for (const bad of ["fashion:5-9:test", "fashion:val", "fashion:1-2:3-4", "cifar", "fashion:test:test"]) assert.is(parseSetSpec(bad, ["fashion"]), null, bad);
});

S("score refuses a model whose hash differs, bad detector files, wrong shapes and bad options, in one line", async () => {
  const other = `${dir}/other.safetensors`;
  const m2 = await createModel("glow", { levels: 2, steps: 1, hidden: 8, image: [1, 28, 28] }, T.cpu, 4);
  await saveTensors(other, m2.namedState(), metadataOf(m2, { data: "fashion" }));
  Deno.writeTextFileSync(`${dir}/broken.json`, "{\"format\": \"fimscope-detector\", \"version\": 1}");
  Deno.writeTextFileSync(`${dir}/notjson.json`, "{{");
  const cases: [string, string[], RegExp][] = [
    ["score", ["--detector", `${dir}/det.json`, "--input", `${dir}/test-png`, "--model", other], /^error: .*det\.json: fitted on a model with SHA-256 [0-9a-f]{16}\.\.\., but .*other\.safetensors has [0-9a-f]{16}/],
    ["score", ["--detector", `${dir}/broken.json`, "--input", `${dir}/test-png`], /^error: detector file .*broken\.json: it is format version 1; this fimscope reads version 2 only \(refit it with npm run fit\)/],
    ["score", ["--detector", `${dir}/notjson.json`, "--input", `${dir}/test-png`], /^error: detector file .*notjson\.json: not valid JSON/],
    ["score", ["--detector", `${dir}/nope.json`, "--input", `${dir}/test-png`], /^error: score: --detector '.*nope\.json': no such file/],
    ["score", ["--detector", `${dir}/det.json`, "--input", `${dir}/rgb-png`], /^error: score: --input .*rgb-png: images are 3x32x32 \(CxHxW\), the model takes 1x28x28/],
    ["score", ["--detector", `${dir}/det.json`, "--input", `${dir}/missing-folder`], /^error: score: --input '.*missing-folder': neither a packaged set \(fashion, mnist, optionally :train or :test and :from-to, e\.g\. fashion:test:5000-6000\), an image file or folder \(optionally as FORMAT:PATH, e\.g\. svhn:test_32x32\.mat\), nor \.npz\/\.csv features files/],
    ["score", ["--detector", `${dir}/det.json`, "--input", "fashion:test:5-3"], /^error: score: --input fashion:test:5-3: positions \[5, 3\) must satisfy from < to <= 10000/],
    ["score", ["--detector", `${dir}/det.json`, "--input", "fashion:valid"], /^error: score: --input 'fashion:valid': neither a packaged set/],
    ["score", ["--detector", `${dir}/det.json`, "--input", `${dir}/test-png`, "--out", `${dir}/s.txt`], /^error: score: --out '.*s\.txt': expected a file name ending in \.csv or \.json/],
    ["score", ["--detector", `${dir}/det.json`, "--input", `${dir}/test-png`, "--batch", "0"], /^error: score: --batch '0': out of range/],
    ["score", ["--detector", `${dir}/det.json`, "--input", `${dir}/test-png`, "--frobnicate"], /^error: score: unknown option '--frobnicate'/],
    ["fit", ["--model", model, "--data", `${dir}/rgb-png`, "--out", `${dir}/d2.json`, "--backend", "cpu"], /^error: fit: --data .*rgb-png \(--model .*\): images are 3x32x32/],
    ["fit", ["--model", model, "--out", `${dir}/d2.json`, "--B", "x"], /^error: fit: --B 'x': not a number/],
    ["fit", ["--model", model, "--out", `${dir}/d2.txt`], /^error: fit: --out '.*d2\.txt': expected a file name ending in \.json/],
    ["fit", ["--model", `${dir}/none.safetensors`, "--out", `${dir}/d2.json`], /^error: fit: --model '.*none\.safetensors': no such file/],
    ["fit", ["--model", model, "--out", `${dir}/d2.json`, "--data", `${dir}/test-png/../nothing.npy`], /^error: fit: --data '.*nothing\.npy': neither fashion, mnist nor an existing file or folder/],
    ["influence", ["--model", model, "--input", `${dir}/test-png`, "--out", `${dir}/d2.png`, "--fim", "exact"], /^error: influence: --fim 'exact': not one of full, diag/],
    ["influence", ["--model", model, "--input", `${dir}/rgb-png`, "--out", `${dir}/d2.png`, "--backend", "cpu"], /^error: influence: --input .*rgb-png: images are 3x32x32/],
    ["influence", ["--model", model, "--input", `${dir}/test-png`, "--out", `${dir}/d2.jpg`], /^error: influence: --out '.*d2\.jpg': expected a file name ending in \.png/],
  ];
  for (const [cli, args, re] of cases) {
    const r = await run(cli, ...args);
    assert.is(r.code, 1, `${cli} ${args.join(" ")}: ${r.out}`);
    assert.match(r.err, re, `${cli} ${args.join(" ")}: ${r.err}`);
    assert.is(r.err.trim().split("\n").length, 1, r.err);
  }
  assert.not.ok([...Deno.readDirSync(dir)].some((e) => e.name.startsWith("d2")), "a failed fit wrote nothing");
});

S.after(() => Deno.removeSync(dir, { recursive: true }));

S.run();
