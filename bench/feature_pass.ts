// The batched feature pass (and the per-input loop) of a checkout's own modules, for the A/B
// benches that load this tree and an older one side by side: today's API passes the objective
// (src/ood/features.ts: featuresBatched(model, objective, x, B, noise)); checkouts from before it
// set the diffusion model's score on the model and take (model, x, B, noise). The draws are
// standard normals from Generator(1) on both sides (their values do not change the cost).
// deno-lint-ignore-file no-explicit-any
type Any = any;

export function featurePasses(feat: Any, T: Any, model: Any, x: Any, n: number, old?: { paperScore?: unknown }): { batched: () => Promise<unknown>; loop: () => Promise<unknown> } {
  const gen = new T.Generator(1);
  if (typeof model.objective === "function") {
    const objective = model.objective(), shape = objective.noiseShape(n);
    const noise = shape ? T.randn(gen, shape, { backend: model.backend, dtype: model.dtype }) : undefined;
    return { batched: () => feat.featuresBatched(model, objective, x, 1, noise), loop: () => feat.featuresLoop(model, objective, x, 1, noise) };
  }
  if (typeof model.setScore === "function" && old?.paperScore) model.setScore(old.paperScore);
  const noise = feat.noiseFor(model, n, gen);
  return { batched: () => feat.featuresBatched(model, x, 1, noise), loop: () => feat.featuresLoop(model, x, 1, noise) };
}
