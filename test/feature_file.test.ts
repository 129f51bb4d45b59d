// Features as files (src/ood/feature_file.ts, npm run features): .npz and .csv round trips, the
// shards of a run merged equal one run bit for bit, and a fit on the merged shards equals the fit
// on one run; score and ood read features files; bad files and bad shard sets refused in one line.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeNpy, decodeNpz, encodeNpy, encodeNpz } from "../src/io/npz.ts";
import { encodeNpy as npyOf } from "../src/data/image_files.ts";
import { encodeFeatureCsv, encodeFeatureNpz, type FeatureFile, FEATURES_FORMAT, FEATURES_VERSION, mergeFeatureFiles, parseFeatureFile, shardRange } from "../src/ood/feature_file.ts";

const S = suite("feature files");

const run = async (...args: string[]) => {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", ...args], stdout: "piped", stderr: "piped", env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" } }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
};

function sample(k = 0, n = 1, from = 0, to = 4): FeatureFile {
  const rows = Array.from({ length: to - from }, (_, i) => Float64Array.from([Math.fround(0.1 * (from + i)), -Infinity, Math.fround(-3.25e-7 * (from + i + 1))]));
  return {
    meta: {
      format: FEATURES_FORMAT, version: FEATURES_VERSION, model: { path: "m.safetensors", sha256: "cd".repeat(32), kind: "vae", image: [1, 28, 28] },
      objective: "nll", measure: { kind: "nll", short: "NLL", label: "NLL", unit: "bits/dim" }, groupSize: 1, seed: 0,
      set: { spec: "fashion:test:0-8", n: 8, batch: 4 }, shard: { k, n, from, to },
    },
    layers: ["a.weight", "a.bias", "b,odd \"name\""], sizes: [6, 2, 3], logf: rows,
    nll: Float64Array.from(rows, (_, i) => 3.1 + (from + i) / 3), ids: rows.map((_, i) => `img ${from + i}.png`),
  };
}

S(".npy and .npz: the arrays numpy writes (format 1.0, 64-byte aligned headers) round-trip exactly", () => {
  const a = encodeNpy({ dtype: "f4", shape: [2, 3], data: Float32Array.from([1, -Infinity, 2.5, 3, 4, 5]) });
  assert.equal(Array.from(a.subarray(0, 8)), [0x93, 78, 85, 77, 80, 89, 1, 0]);
  const hl = a[8] | (a[9] << 8);
  assert.is((10 + hl) % 64, 0, "the data starts on a 64-byte boundary");
  assert.match(new TextDecoder().decode(a.subarray(10, 10 + hl)), /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  const back = decodeNpy(a, "a");
  assert.equal(back.shape, [2, 3]);
  assert.equal(Array.from(back.data as Float32Array), [1, -Infinity, 2.5, 3, 4, 5]);
  const z = decodeNpz(encodeNpz({ s: { dtype: "U", shape: [2], data: ["α.b", ""] }, i: { dtype: "i8", shape: [1], data: BigInt64Array.from([7n]) } }), "z");
  assert.equal(z.s.data, ["α.b", ""]);
  assert.equal(Array.from(z.i.data as BigInt64Array), [7n]);
  assert.throws(() => decodeNpy(new Uint8Array(12), "x.npy"), /x.npy: not an .npy file \(no \\x93NUMPY magic\)/);
  assert.throws(() => decodeNpy(a.subarray(0, a.length - 4), "x.npy"), /x.npy: 20 data bytes for shape \[2,3\] of <f4 \(expected 24; truncated\?\)/);
  assert.throws(() => decodeNpz(new Uint8Array([1, 2, 3]), "x.npz"), /x.npz: not a readable .npz \(zip\) file/);
});

S("a features file round-trips through .npz and .csv (float32 features exactly, -inf kept, odd names quoted)", () => {
  const f = sample();
  for (const [name, bytes] of [["f.npz", encodeFeatureNpz(f)], ["f.csv", new TextEncoder().encode(encodeFeatureCsv(f))]] as const) {
    const g = parseFeatureFile(bytes, name);
    assert.equal(g.meta, f.meta, name);
    assert.equal(g.layers, f.layers, name);
    assert.equal(g.ids, f.ids, name);
    assert.equal(Array.from(g.nll), Array.from(f.nll), name);
    assert.equal(g.logf.map((r) => Array.from(r)), f.logf.map((r) => Array.from(r)), name);
  }
  const csv = encodeFeatureCsv(f).split("\n");
  assert.match(csv[0], /^# fimscope-features \{/);
  assert.is(csv[1], `id,nll,a.weight,a.bias,"b,odd ""name"""`);
  assert.match(csv[2], /^img 0\.png,3\.1,0,-inf,-3.25e-7$/);
});

S("shards: disjoint, contiguous whole passes whose union is the set; merged in order they are the one run; bad shard sets refused", () => {
  for (const [n, per, k] of [[10, 4, 2], [10, 4, 3], [64, 8, 5], [7, 64, 1], [100, 3, 7]]) {
    const parts = Array.from({ length: k }, (_, i) => shardRange(n, per, i, k));
    assert.is(parts[0][0], 0);
    assert.is(parts[k - 1][1], n);
    parts.forEach(([a, b], i) => {
      assert.ok(a <= b && a % per === 0, `[${a}, ${b}) of ${n} by ${per}`);
      if (i) assert.is(a, parts[i - 1][1]);
    });
  }
  const whole = sample(0, 1, 0, 8);
  const a = sample(0, 2, 0, 4), b = sample(1, 2, 4, 8);
  const m = mergeFeatureFiles([{ file: "b", f: b }, { file: "a", f: a }]);
  assert.equal(m.logf.map((r) => Array.from(r)), whole.logf.map((r) => Array.from(r)));
  assert.equal(m.ids, whole.ids);
  assert.equal(m.meta.shard, { k: 0, n: 1, from: 0, to: 8 });
  assert.throws(() => mergeFeatureFiles([{ file: "a", f: a }]), /features files: shards 0 of 2 given; a merge needs every shard 0..1 once/);
  assert.throws(() => mergeFeatureFiles([{ file: "a", f: a }, { file: "a2", f: a }]), /shards 0, 0 of 2 given; a merge needs every shard 0..1 once/);
  const other = sample(1, 2, 4, 8);
  other.meta = { ...other.meta, seed: 3 };
  assert.throws(() => mergeFeatureFiles([{ file: "a", f: a }, { file: "c", f: other }]), /features file c: not a shard of the same run as a/);
});

S("bad features files: one line naming the file and the cause", () => {
  const f = sample();
  const npz = (g: FeatureFile) => encodeFeatureNpz(g);
  const bad: [Uint8Array, string, RegExp][] = [
    [new TextEncoder().encode("id,nll,a\nx,1,2\n"), "f.csv", /f.csv: no leading "# fimscope-features \{\.\.\.\}" line/],
    [npz({ ...f, meta: { ...f.meta, version: 9 as 1 } }), "f.npz", /f.npz: it is version 9; this fimscope reads version 1/],
    [npz({ ...f, logf: f.logf.slice(1), nll: f.nll.slice(1), ids: f.ids.slice(1) }), "f.npz", /f.npz: 3 rows, but its shard \[0, 4\) holds 4 groups of B = 1/],
    [npz({ ...f, logf: f.logf.map((r, i) => (i === 2 ? Float64Array.from([NaN, 0, 0]) : r)) }), "f.npz", /f.npz: row 2 \(img 2.png\) has log f = NaN for a.weight/],
    [encodeNpz({ features: { dtype: "f4", shape: [0, 0], data: new Float32Array(0) } }), "f.npz", /f.npz: no 'layers' array/],
    [new Uint8Array([1, 2]), "f.npz", /f.npz: not a readable .npz \(zip\) file/],
  ];
  for (const [bytes, name, re] of bad) {
    try {
      parseFeatureFile(bytes, name);
      assert.unreachable(`accepted ${name}`);
    } catch (e) {
      assert.match((e as Error).message, re);
      assert.not.match((e as Error).message, /\n/);
    }
  }
});

S("npm run features: two shards merged equal one run bit for bit; fit on the shards equals fit on the one file; score reads features", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const common = ["--model", "weights/vae-fashion.safetensors", "--input", "fashion:test:0-20", "--batch", "6"];
    const one = await run("src/cli/features.ts", ...common, "--out", `${dir}/all.npz`);
    assert.is(one.code, 0, one.out);
    const s0 = await run("src/cli/features.ts", ...common, "--shard", "0/2", "--out", `${dir}/s0.npz`);
    const s1 = await run("src/cli/features.ts", ...common, "--shard", "1/2", "--out", `${dir}/s1.csv`);
    assert.is(s0.code + s1.code, 0, s0.out + s1.out);
    assert.match(s0.out, /inputs \[0, 12\) of 20, shard 0 of 2/);
    const read = (p: string) => parseFeatureFile(Deno.readFileSync(p), p);
    const all = read(`${dir}/all.npz`), merged = mergeFeatureFiles([{ file: "s1", f: read(`${dir}/s1.csv`) }, { file: "s0", f: read(`${dir}/s0.npz`) }]);
    assert.is(all.logf.length, 20);
    assert.equal(merged.logf.map((r) => Array.from(r)), all.logf.map((r) => Array.from(r)), "features");
    assert.equal(Array.from(merged.nll), Array.from(all.nll));
    assert.equal(merged.ids, all.ids);
    assert.equal(all.ids.slice(0, 2), ["fashion-test:0", "fashion-test:1"]);
    const f1 = await run("src/cli/fit.ts", "--model", "weights/vae-fashion.safetensors", "--data", `${dir}/all.npz`, "--out", `${dir}/one.json`);
    const f2 = await run("src/cli/fit.ts", "--model", "weights/vae-fashion.safetensors", "--data", `${dir}/s1.csv,${dir}/s0.npz`, "--out", `${dir}/two.json`);
    assert.is(f1.code + f2.code, 0, f1.out + f2.out);
    assert.is(Deno.readTextFileSync(`${dir}/two.json`), Deno.readTextFileSync(`${dir}/one.json`), "the detector from merged shards is the one run's, byte for byte");
    // score on the features file equals score on the images themselves.
    const a = await run("src/cli/score.ts", "--detector", `${dir}/one.json`, "--input", `${dir}/all.npz`, "--out", `${dir}/a.csv`, "--quiet");
    const b = await run("src/cli/score.ts", "--detector", `${dir}/one.json`, "--input", "fashion:test:0-20", "--batch", "6", "--out", `${dir}/b.csv`, "--quiet");
    assert.is(a.code + b.code, 0, a.out + b.out);
    assert.is(Deno.readTextFileSync(`${dir}/a.csv`), Deno.readTextFileSync(`${dir}/b.csv`));
    // Refusals, before any work.
    const incomplete = await run("src/cli/fit.ts", "--model", "weights/vae-fashion.safetensors", "--data", `${dir}/s0.npz`, "--out", `${dir}/x.json`);
    assert.is(incomplete.code, 1);
    assert.match(incomplete.out, /error: features files: shards 0 of 2 given; a merge needs every shard 0..1 once/);
    const wrongModel = await run("src/cli/fit.ts", "--model", "weights/glow-fashion.safetensors", "--data", `${dir}/all.npz`, "--out", `${dir}/y.json`);
    assert.is(wrongModel.code, 1);
    assert.match(wrongModel.out, /^error: fit: --data '.*all.npz': its features are of a model with SHA-256 [0-9a-f]{16}\.\.\. \(weights\/vae-fashion.safetensors\), not of weights\/glow-fashion.safetensors/m);
    const badShard = await run("src/cli/features.ts", ...common, "--shard", "2/2", "--out", `${dir}/z.npz`);
    assert.is(badShard.code, 1);
    assert.match(badShard.out, /error: features: --shard '2\/2': expected k\/n with 0 <= k < n/);
    const badObjective = await run("src/cli/features.ts", ...common, "--objective", "l1-t1", "--out", `${dir}/z.npz`);
    assert.is(badObjective.code, 1);
    assert.match(badObjective.out, /error: features: --objective 'l1-t1': .*allowed: nll/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

S("ood --ood f.npz: an OOD set given as a features file scores exactly as its images do (B = 1); refused when it is not this run's", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    // 30 MNIST-like images of our own as an .npy, and their features.
    const px = new Uint8Array(30 * 784).map((_, i) => (i * 7 + (i >> 9)) % 256);
    Deno.writeFileSync(`${dir}/set.npy`, npyOf(px, [30, 28, 28]));
    const vae = "weights/vae-fashion.safetensors";
    const f = await run("src/cli/features.ts", "--model", vae, "--input", `${dir}/set.npy`, "--out", `${dir}/set.npz`);
    assert.is(f.code, 0, f.out);
    const common = ["--model", vae, "--fit", "40", "--eval", "20", "--B", "1", "--saliency", "0"];
    const fromImages = await run("src/cli/ood.ts", ...common, "--ood", `${dir}/set.npy`, "--out", `${dir}/r1`);
    const fromFeatures = await run("src/cli/ood.ts", ...common, "--ood", `${dir}/set.npz`, "--out", `${dir}/r2`);
    assert.is(fromImages.code + fromFeatures.code, 0, fromImages.out + fromFeatures.out);
    const rows = (d: string) => (JSON.parse(Deno.readTextFileSync(`${d}/table.json`)).evaluations as { results: unknown; shift: unknown }[]).map((e) => JSON.stringify([e.results, e.shift]));
    const r1 = rows(`${dir}/r1`), r2 = rows(`${dir}/r2`);
    assert.ok(r1.length > 0);
    assert.equal(r2, r1, "every score's metrics equal");
    // Refusals before any work: another B, seed, model, the full FIM, the fit set as features.
    for (const [args, want] of [
      [["--B", "1,5"], /^error: ood: --B '1,5': --ood .*set\.npz holds groups of B = 1 only; give --B 1$/m],
      [["--B", "1", "--seed", "3"], /^error: ood: --ood '.*set\.npz': its features were made with --seed 0; give --seed 0$/m],
      [["--B", "1", "--fim"], /^error: ood: --fim '': the full-FIM scores need the images' gradients; --ood .*set\.npz is a features file$/m],
    ] as [string[], RegExp][]) {
      const r = await run("src/cli/ood.ts", "--model", vae, "--fit", "40", "--eval", "20", "--saliency", "0", "--ood", `${dir}/set.npz`, ...args, "--out", `${dir}/x`);
      assert.is(r.code, 1, r.out);
      assert.match(r.out, want);
    }
    const other = await run("src/cli/ood.ts", "--model", "weights/glow-fashion.safetensors", "--B", "1", "--ood", `${dir}/set.npz`, "--out", `${dir}/x`);
    assert.is(other.code, 1);
    assert.match(other.out, /^error: ood: --ood '.*set\.npz': its features are of a model with SHA-256 [0-9a-f]{16}\.\.\. \(weights\/vae-fashion\.safetensors\), not of weights\/glow-fashion\.safetensors/m);
    const asData = await run("src/cli/ood.ts", "--model", vae, "--data", `${dir}/set.npz`, "--out", `${dir}/x`);
    assert.is(asData.code, 1);
    assert.match(asData.out, /^error: ood: --data '.*set\.npz': is a features file; /m);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

S.run();
