// Which images an evaluation uses, the rule of `npm run ood` (README, "The method"): the
// in-distribution test split permuted with seed 1000 + seed, the fit set from its first half and
// the evaluation set from its second; another dataset's test split permuted with seed 3000 + seed.
// The commands of docs/dynamics.md (compare-models, dynamics) draw their images here.
import * as T from "../autograd/index.ts";
import { type ImageSet, subset } from "../data/dataset.ts";

/** The fit set (nFit images of the first half) and the evaluation set (nEval of the second half) of a test split. */
export function inDistributionSplit(test: ImageSet, nFit: number, nEval: number, seed: number, name = test.name): { fit: ImageSet; inEval: ImageSet } {
  const half = Math.floor(test.n / 2);
  if (nFit > half || nEval > test.n - half) throw new Error(`${test.name}: ${nFit} fit and ${nEval} evaluation images do not fit the halves of ${test.n}`);
  const perm = new T.Generator(1000 + seed).permutation(test.n);
  return { fit: subset(test, perm.subarray(0, nFit), `${name}-fit`), inEval: subset(test, perm.subarray(half, half + nEval), name) };
}

/** n images of another dataset's test split (an OOD set), in a seeded order. */
export function oodSample(test: ImageSet, n: number, seed: number, name = test.name): ImageSet {
  if (n > test.n) throw new Error(`${test.name}: ${n} images asked of ${test.n}`);
  return subset(test, new T.Generator(3000 + seed).permutation(test.n).subarray(0, n), name);
}
