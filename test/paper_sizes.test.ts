// The paper's model sizes as named configs (src/models/registry.ts PRESETS): each builds on
// 3x32x32 images, and our Glow's parameter count is the authors' (y0ast/Glow-PyTorch, by the
// formula of bench/paper_counts.ts, which PyTorch's count of their modules confirms: 44,235,312)
// less exactly the differences docs/paper-grid.md lists. The formulas themselves are checked
// against PyTorch's counts of the authors' modules.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { createModel, PRESET_NAMES, PRESETS, presetConfig } from "../src/models/registry.ts";
import { authorsGlow, authorsUnet, authorsVae, glowDifferences } from "../bench/paper_counts.ts";

const S = suite("paper sizes");

S("the authors' counts by formula equal PyTorch 1.13's counts of their module definitions", () => {
  assert.is(authorsGlow(3, 3, 32, 512), 44_235_312);
  assert.is(authorsUnet(3, 32, [1, 2, 4, 8]), 9_194_563);
  assert.equal(authorsVae(3), { total: 3_247_843, batchNorm: 3_008 });
});

S("named configs: one per kind, each on 3x32x32 images; glow-paper has the authors' count less the listed differences", async () => {
  assert.equal(PRESET_NAMES, ["vae-paper", "glow-paper", "diffusion-paper"]);
  const counts: Record<string, number> = {};
  for (const name of PRESET_NAMES) {
    const p = await presetConfig(name);
    assert.is(p.kind, PRESETS[name].kind);
    const m = await createModel(p.kind, p.config, T.cpu, 0);
    assert.equal([...m.imageShape], [3, 32, 32], name);
    counts[name] = m.numParameters();
  }
  const diff = glowDifferences(3, 3, 32, 512).reduce((n, d) => n + d.parameters, 0);
  assert.is(diff, -184_164);
  assert.is(counts["glow-paper"], authorsGlow(3, 3, 32, 512) + diff);
  assert.is(counts["diffusion-paper"], 11_395_491);
  assert.is(counts["vae-paper"], 3_911_942);
  const err = await presetConfig("glow-papr").then(() => null, (e: Error) => e.message);
  assert.match(err ?? "resolved", /^unknown named config 'glow-papr' \(allowed: vae-paper, glow-paper, diffusion-paper\)$/);
});

S.run();
