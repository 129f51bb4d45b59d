// Influence: FIM inner products of a test input with each fit input, symmetric in the two (the
// fit-set fast path equals inner() taken the other way round), the top k by |value| in order, and
// the strip's layout.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import { influenceStripPng, topInfluences } from "../src/ood/influence.ts";
import { WoodburyFim } from "../src/ood/woodbury.ts";
import { groupGradients } from "../src/ood/features.ts";
import { decode } from "fast-png";

const S = suite("influence");
const f64 = { backend: T.cpu, dtype: "float64" as const };

S("top influences: |s_x^T F^-1 s_t| largest first, symmetric with inner(s_t, s_x), full and diagonal", async () => {
  const m = new Glow({ levels: 1, steps: 1, hidden: 3, image: [1, 4, 4] }, { ...f64, gen: new T.Generator(1) });
  m.initialize(T.rand(new T.Generator(2), [8, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 }));
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(10 + i), [...p.shape], { ...f64, std: 0.1 }))));
  m.eval();
  const fitX = T.rand(new T.Generator(3), [12, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 });
  const testX = T.rand(new T.Generator(4), [2, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 });
  const fim = await WoodburyFim.fit(groupGradients(m, m.objective(), fitX, 1));
  const g = groupGradients(m, m.objective(), testX, 1), fitG = groupGradients(m, m.objective(), fitX, 1);
  for (const diagonal of [false, true]) {
    const top = await topInfluences(fim, g, 5, diagonal);
    const back = diagonal ? null : await fim.inner(fitG, g); // [12, 2]: s_t^T F^-1 s_x
    assert.is(top.length, 2);
    for (const [i, list] of top.entries()) {
      assert.is(list.length, 5);
      for (let j = 1; j < 5; j++) assert.ok(Math.abs(list[j - 1].value) >= Math.abs(list[j].value));
      if (back) for (const e of list) assert.ok(Math.abs(e.value - back[e.t * 2 + i]) < 1e-9 * Math.max(1, Math.abs(e.value)), `${e.value} vs ${back[e.t * 2 + i]}`);
      // Nothing outside the top 5 is larger.
      const all = await fim.fitInner([g.map((t) => T.slice(t, [i], [i + 1]))].flat(), diagonal);
      const fifth = Math.abs(list[4].value);
      assert.is(Array.from(all).filter((v) => Math.abs(v) > fifth).length, 4);
    }
  }
  fim.dispose();
});

S("the strip: one row per input, the input then its top images", () => {
  const im = (v: number) => new Uint8Array(16).fill(v);
  const png = decode(influenceStripPng([{ input: im(10), top: [im(20), im(30)] }, { input: im(40), top: [im(50), im(60)] }], 1, 4, 4));
  assert.equal([png.width, png.height], [3 * 6 + 2, 2 * 6 + 2]);
  const px = (x: number, y: number) => (png.data as Uint8Array)[y * png.width + x];
  assert.equal([px(2, 2), px(8, 2), px(14, 2), px(2, 8), px(14, 8)], [10, 20, 30, 40, 60]);
});

S.run();
