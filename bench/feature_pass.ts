// The batched feature pass (and the per-input loop) of a checkout's own modules, for the A/B
// benches that load this tree and an older one side by side. Both checkouts must have the
// objectives API (src/ood/features.ts: featuresBatched(model, objective, x, B, noise), from commit
// 8a938bc on); for older ones, check out bench/ from before this file's last change. The draws are
// standard normals from Generator(1) on both sides (their values do not change the cost).
// deno-lint-ignore-file no-explicit-any
type Any = any;

export function featurePasses(feat: Any, T: Any, model: Any, x: Any, n: number): { batched: () => Promise<unknown>; loop: () => Promise<unknown> } {
  if (typeof model.objective !== "function") throw new Error("this checkout predates the objectives API (model.objective()): compare checkouts that both have it");
  const gen = new T.Generator(1);
  const objective = model.objective(), shape = objective.noiseShape(n);
  const noise = shape ? T.randn(gen, shape, { backend: model.backend, dtype: model.dtype }) : undefined;
  return { batched: () => feat.featuresBatched(model, objective, x, 1, noise), loop: () => feat.featuresLoop(model, objective, x, 1, noise) };
}
