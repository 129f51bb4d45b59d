// Which images of a packaged set (mnist, fashion) a command uses: one split, in the split's own
// order or in a seeded permutation's (new Generator(seed).permutation(n), as `npm run ood` and
// `npm run fit` draw them), positions [from, to) of that order. A detector records the selections
// it was fitted (and calibrated) on, so `score` can keep to images neither saw.
//
// On the command line a packaged set is `name[:split][:from-to]` (from-to: positions, half-open),
// e.g. `fashion`, `fashion:train`, `fashion:5000-6000`, `fashion:test:0-100`.
import { Generator } from "../autograd/random.ts";
import type { Split } from "./mnist.ts";

export interface SetSelection {
  set: string;
  split: Split;
  /** The permutation's seed, or null for the split's own order. */
  seed: number | null;
  from: number;
  to: number;
}

export interface SetSpec {
  set: string;
  split?: Split;
  range?: [number, number];
}

/** A packaged set's spec (`name[:split][:from-to]`), or null when the text is not one of `names` with those suffixes. */
export function parseSetSpec(text: string, names: readonly string[]): SetSpec | null {
  const parts = text.split(":");
  if (!names.includes(parts[0]) || parts.length > 3) return null;
  const out: SetSpec = { set: parts[0] };
  for (const p of parts.slice(1)) {
    if ((p === "train" || p === "test") && !out.split && !out.range) out.split = p;
    else if (/^\d+-\d+$/.test(p) && !out.range) {
      const [a, b] = p.split("-").map(Number);
      out.range = [a, b];
    } else return null;
  }
  return out;
}

/** The split's indices a selection takes, in order. */
export function selectionIndices(s: SetSelection, n: number): Uint32Array {
  if (!(s.from >= 0 && s.to <= n && s.from < s.to)) throw new Error(`selection: positions [${s.from}, ${s.to}) outside the ${n} images of ${s.set}'s ${s.split} split`);
  if (s.seed === null) return Uint32Array.from({ length: s.to - s.from }, (_, i) => s.from + i);
  return Uint32Array.from(new Generator(s.seed).permutation(n).subarray(s.from, s.to));
}

const orderText = (s: SetSelection) => s.seed === null ? "" : ` of its permutation by Generator(${s.seed})`;

/** E.g. "fashion test split, positions [0, 1000) of its permutation by Generator(1000)". */
export function describeSelection(s: SetSelection): string {
  return `${s.set} ${s.split} split, ${s.seed === null ? "images" : "positions"} [${s.from}, ${s.to})${orderText(s)}`;
}

/** The spec text that names a selection's range (for messages): `fashion:test:1000-10000`. */
export function selectionSpec(s: Pick<SetSelection, "set" | "split" | "from" | "to">): string {
  return `${s.set}:${s.split}:${s.from}-${s.to}`;
}

/**
 * The images `score` may take from a packaged set, given what a detector was fitted and calibrated
 * on: in the same split and order as those, the positions outside them; refused (an error naming
 * the allowed ranges) when an asked range overlaps them. Without a range: the last allowed run of
 * positions. A split or set the detector did not use: the split's own order, all of it by default.
 */
export function scoringSelection(spec: SetSpec, n: (split: Split) => number, used: SetSelection[], what: string): SetSelection {
  const split = spec.split ?? used.find((u) => u.set === spec.set)?.split ?? "test";
  const same = used.filter((u) => u.set === spec.set && u.split === split);
  const total = n(split);
  const check = (a: number, b: number) => {
    if (!(a < b && b <= total)) throw new Error(`${what}: positions [${a}, ${b}) must satisfy from < to <= ${total} (the ${spec.set} ${split} split's images)`);
  };
  if (!same.length) {
    const [from, to] = spec.range ?? [0, total];
    check(from, to);
    return { set: spec.set, split, seed: null, from, to };
  }
  const seed = same[0].seed;
  if (same.some((u) => u.seed !== seed)) throw new Error(`${what}: the detector's ${spec.set} ${split} images come in two different orders; pass image files instead`);
  // Allowed runs: [0, total) minus the used ranges.
  const cuts = same.map((u) => [u.from, u.to] as const).sort((x, y) => x[0] - y[0]);
  const allowed: [number, number][] = [];
  let at = 0;
  for (const [a, b] of cuts) {
    if (a > at) allowed.push([at, a]);
    at = Math.max(at, b);
  }
  if (at < total) allowed.push([at, total]);
  const usedText = same.map((u) => `[${u.from}, ${u.to})`).join(" and ");
  const allowedText = allowed.length ? allowed.map(([a, b]) => selectionSpec({ set: spec.set, split, from: a, to: b })).join(" or ") : "none (every image was used)";
  if (!spec.range) {
    if (!allowed.length) throw new Error(`${what}: the detector used every image of the ${spec.set} ${split} split (positions ${usedText}${orderText(same[0])}); pass other images`);
    const [from, to] = allowed[allowed.length - 1];
    return { set: spec.set, split, seed, from, to };
  }
  const [from, to] = spec.range;
  check(from, to);
  if (cuts.some(([a, b]) => from < b && a < to)) {
    throw new Error(`${what}: positions [${from}, ${to})${orderText(same[0])} include images the detector was fitted or calibrated on (positions ${usedText}); allowed: ${allowedText}`);
  }
  return { set: spec.set, split, seed, from, to };
}
