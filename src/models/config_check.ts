// Model configs are checked against a table before a model is built, so a bad value in a
// checkpoint's metadata or in --config gives one line naming the source and key (not "Invalid
// typed array length" from deep inside a layer). A new model kind adds one entry to CONFIG_RULES
// (its keys, image shape and parameter count) and one to KINDS in registry.ts (defaults, builder).

import { VAE_DEFAULT } from "./vae.ts";

/** A rule for one config key. */
export type Rule =
  | { type: "int"; min: number; max: number }
  | { type: "ints"; length: number; min: number; max: number }
  | { type: "number"; min: number; max: number }
  | { type: "intList"; minLength: number; maxLength: number; min: number; max: number }
  | { type: "enum"; values: readonly string[] }
  | { type: "boolean" };

/** Past this a model does not fit this engine's memory (parameters, gradients and two moments in float32). */
export const MAX_PARAMETERS = 50_000_000;

const int = (min: number, max: number): Rule => ({ type: "int", min, max });
const ints = (length: number, min: number, max: number): Rule => ({ type: "ints", length, min, max });
const intList = (minLength: number, maxLength: number, min: number, max: number): Rule => ({ type: "intList", minLength, maxLength, min, max });
const oneOf = (...values: string[]): Rule => ({ type: "enum", values });

export interface KindRules {
  keys: Record<string, Rule>;
  /** Cross-key constraints on the merged config; returns why it is invalid, or null. */
  check?: (c: Record<string, unknown>) => string | null;
  /** The [C, H, W] images a model of this config takes (checked against the data before any work). */
  imageShape: (c: Record<string, unknown>) => [number, number, number];
  /** About how many parameters the model has (to refuse sizes that cannot be allocated, before allocating). */
  parameters: (c: Record<string, unknown>) => number;
}

/** Ranges are generous (well past what fits this machine) but exclude sizes that cannot be allocated. */
export const CONFIG_RULES: Record<string, KindRules> = {
  vae: {
    keys: { latent: int(1, 4096), channels: ints(2, 1, 1024), outChannels: int(1, 1024), image: ints(3, 1, 1024) },
    check: (c) => {
      const [ch, H, W] = c.image as number[];
      if (ch > 4) return `image channels ${ch}: at most 4`;
      if (H % 4 || W % 4) return `image ${H}x${W} needs H and W divisible by 4`;
      return null;
    },
    // Checkpoints written before the VAE took an image shape have none in their config: the default's.
    imageShape: (c) => (c.image ?? VAE_DEFAULT.image) as [number, number, number],
    parameters: (c) => {
      const [c1, c2] = c.channels as number[], L = c.latent as number, o = c.outChannels as number;
      const [ch, H, W] = c.image as number[];
      return 9 * (ch * c1 + c1 * c2 + c2 * c2 + c2 * c1 + c1 * o + 2 * ch * o) + (H / 4) * (W / 4) * c2 * 3 * L;
    },
  },
  glow: {
    keys: { levels: int(1, 6), steps: int(1, 128), hidden: int(1, 4096), image: ints(3, 1, 1024), logit: { type: "number", min: 0, max: 0.25 } },
    check: (c) => {
      const [ch, H, W] = c.image as number[], L = c.levels as number;
      if (ch > 4) return `image channels ${ch}: at most 4`;
      if (H % 2 ** L || W % 2 ** L) return `image ${H}x${W} is not divisible by 2^levels = ${2 ** L}`;
      return null;
    },
    imageShape: (c) => c.image as [number, number, number],
    parameters: (c) => {
      const h = c.hidden as number, K = c.steps as number;
      let ch = (c.image as number[])[0], n = 0;
      for (let l = 0; l < (c.levels as number); l++) {
        ch *= 4;
        n += K * (ch * ch + 9 * (ch / 2) * h + h * h + 9 * h * ch + 4 * ch + 2 * h);
        if (l < (c.levels as number) - 1) {
          n += 9 * (ch / 2) * ch;
          ch /= 2;
        }
      }
      return n;
    },
  },
  diffusion: {
    keys: {
      image: ints(3, 1, 1024), dim: int(4, 1024), dimMults: intList(1, 6, 1, 64), resBlocks: int(1, 16), groups: int(1, 1024),
      steps: int(2, 100000), schedule: oneOf("sigmoid", "linear", "cosine"), trainLoss: oneOf("l2", "l1"), strata: int(1, 99999),
    },
    check: (c) => {
      const [ch, H, W] = c.image as number[], mults = c.dimMults as number[], L = mults.length;
      const dim = c.dim as number, g = c.groups as number;
      if (ch > 4) return `image channels ${ch}: at most 4`;
      if (dim % 2) return `dim ${dim} must be even (the sinusoidal embedding's halves)`;
      if (H % 2 ** (L - 1) || W % 2 ** (L - 1)) return `image ${H}x${W} is not divisible by 2^(levels - 1) = ${2 ** (L - 1)}`;
      const widths = [dim, ...mults.map((m) => m * dim)];
      const bad = widths.find((w) => w % g);
      if (bad !== undefined) return `width ${bad} is not divisible by groups ${g}`;
      if ((c.strata as number) > (c.steps as number) - 1) return `strata ${c.strata} exceeds steps - 1 = ${(c.steps as number) - 1}`;
      return null;
    },
    imageShape: (c) => c.image as [number, number, number],
    parameters: (c) => {
      // Convolutions dominate: about 2 * 9 * c^2 per residual block at each width, both ways, plus the middle.
      const dim = c.dim as number, rb = c.resBlocks as number;
      const ws = (c.dimMults as number[]).map((m) => m * dim);
      return ws.reduce((n, w) => n + rb * (2 * 9 * w * w + 9 * 2 * w * w + 9 * w * w) + 9 * w * w, 0) + 4 * 9 * ws[ws.length - 1] ** 2 + 20 * dim * dim;
    },
  },
};

/** [C, H, W] of the images a model of this kind and (merged) config takes. */
export function modelImageShape(kind: string, merged: Record<string, unknown>): [number, number, number] {
  return [...CONFIG_RULES[kind].imageShape(merged)];
}

/** Throws (naming `source`) unless a model of this kind and (merged) config takes images of `shape`. */
export function checkImageShape(kind: string, merged: Record<string, unknown>, shape: readonly number[], data: string, source: string): void {
  const want = CONFIG_RULES[kind].imageShape(merged);
  if (want.join("x") !== shape.join("x")) throw new Error(`${source}: the ${kind} takes ${want.join("x")} images but ${data} has ${shape.join("x")} images`);
}

function ruleText(r: Rule): string {
  if (r.type === "int") return `an integer from ${r.min} to ${r.max}`;
  if (r.type === "ints") return `a list of ${r.length} integers from ${r.min} to ${r.max}`;
  if (r.type === "number") return `a number from ${r.min} to ${r.max}`;
  if (r.type === "intList") return `a list of ${r.minLength} to ${r.maxLength} integers from ${r.min} to ${r.max}`;
  if (r.type === "enum") return `one of ${r.values.join(", ")}`;
  return "true or false";
}

function valid(r: Rule, v: unknown): boolean {
  const isInt = (x: unknown, lo: number, hi: number) => typeof x === "number" && Number.isInteger(x) && x >= lo && x <= hi;
  if (r.type === "int") return isInt(v, r.min, r.max);
  if (r.type === "ints") return Array.isArray(v) && v.length === r.length && v.every((x) => isInt(x, r.min, r.max));
  if (r.type === "number") return typeof v === "number" && Number.isFinite(v) && v >= r.min && v <= r.max;
  if (r.type === "intList") return Array.isArray(v) && v.length >= r.minLength && v.length <= r.maxLength && v.every((x) => isInt(x, r.min, r.max));
  if (r.type === "enum") return typeof v === "string" && r.values.includes(v);
  return typeof v === "boolean";
}

/**
 * Throws (naming `source`, e.g. "checkpoint x.safetensors: __metadata__.config" or "train: --config")
 * unless `config` is an object whose keys are all known for the kind and whose values are in range.
 * `merged` is the config after defaults, for the cross-key check.
 */
export function checkConfig(kind: string, config: unknown, merged: Record<string, unknown>, source: string): void {
  const rules = CONFIG_RULES[kind];
  if (!rules) throw new Error(`${source}: unknown model kind '${kind}' (allowed: ${Object.keys(CONFIG_RULES).join(", ")})`);
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new Error(`${source}: config ${JSON.stringify(config)} is not an object (allowed: keys ${Object.keys(rules.keys).join(", ")})`);
  }
  for (const [k, v] of Object.entries(config)) {
    const r = rules.keys[k];
    if (!r) throw new Error(`${source}: unknown ${kind} config key '${k}' (allowed: ${Object.keys(rules.keys).join(", ")})`);
    if (!valid(r, v)) throw new Error(`${source}: ${kind} config key '${k}' is ${JSON.stringify(v)} (allowed: ${ruleText(r)})`);
  }
  const why = rules.check?.(merged);
  if (why) throw new Error(`${source}: ${kind} config ${JSON.stringify(merged)}: ${why}`);
  const n = rules.parameters(merged);
  if (n > MAX_PARAMETERS) throw new Error(`${source}: ${kind} config ${JSON.stringify(merged)} has about ${(n / 1e6).toFixed(0)}M parameters (allowed: at most ${MAX_PARAMETERS / 1e6}M)`);
}
