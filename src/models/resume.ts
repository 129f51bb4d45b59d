// What resuming from a training checkpoint means (README, "Resuming"): the run continues with the
// checkpoint's settings. A setting left off the command line is taken from the checkpoint; one
// given that differs is a mismatch, refused with every difference listed, unless forced (then the
// command line wins). The model kind and config can never change (the weights would not fit).
// --steps is the TOTAL step count and must exceed the checkpoint's step.
import type { Decoded } from "../io/safetensors.ts";

/** The settings a training run is defined by, as the command line or a checkpoint gives them. */
export interface RunSettings {
  kind: string;
  config: Record<string, unknown>;
  data: string;
  batch: number;
  lr: number;
  optimizer: string;
  seed: number;
  clip: number;
  warmup: number;
}

export type SettingName = keyof RunSettings;

/** The option that sets each setting (for messages). */
export const OPTION_OF: Record<SettingName, string> = {
  kind: "--model", config: "--config", data: "--data", batch: "--batch", lr: "--lr", optimizer: "--optimizer", seed: "--seed", clip: "--clip", warmup: "--warmup",
};

/** JSON with object keys sorted (at every depth), so equal settings compare equal as text. */
export const canonical = (v: unknown): string => {
  if (v && typeof v === "object" && !Array.isArray(v)) return JSON.stringify(Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, JSON.parse(canonical(x))])));
  return JSON.stringify(v);
};

/** The settings stored in a checkpoint's metadata (older checkpoints lack clip and warmup). */
export function storedSettings(d: Decoded, file: string): Partial<RunSettings> {
  const m = d.metadata, s: Partial<RunSettings> = {};
  const num = (k: string): number | undefined => {
    if (m[k] === undefined) return undefined;
    const v = Number(m[k]);
    if (m[k].trim() === "" || !Number.isFinite(v)) throw new Error(`checkpoint ${file}: __metadata__.${k} is '${m[k]}', not a number`);
    return v;
  };
  if (m.kind !== undefined) s.kind = m.kind;
  if (m.config !== undefined) s.config = JSON.parse(m.config);
  if (m.data !== undefined) s.data = m.data;
  if (m.optimizer !== undefined) s.optimizer = m.optimizer;
  for (const k of ["batch", "lr", "seed", "clip", "warmup"] as const) {
    const v = num(k);
    if (v !== undefined) s[k] = v;
  }
  return s;
}

export interface ResumePlan {
  /** The settings the resumed run uses. */
  settings: RunSettings;
  /** Settings given on the command line that differ from the checkpoint: "--data fashion (checkpoint: mnist)". */
  differences: string[];
  /** Differences that --force cannot override (model kind and config). */
  fixed: string[];
}

/**
 * Combines the command line with a checkpoint. `cli` holds every setting (defaults filled in),
 * `given` the ones the user typed; stored settings fill in the rest.
 */
export function planResume(cli: RunSettings, given: Set<SettingName>, stored: Partial<RunSettings>): ResumePlan {
  const settings = { ...cli } as Record<SettingName, unknown>;
  const differences: string[] = [], fixed: string[] = [];
  for (const k of Object.keys(OPTION_OF) as SettingName[]) {
    const sv = stored[k];
    if (sv === undefined) continue;
    const cv = cli[k];
    const same = canonical(sv) === canonical(cv);
    const isFixed = k === "kind" || k === "config";
    if (!same && given.has(k)) {
      const show = (v: unknown) => (typeof v === "string" ? v : canonical(v));
      (isFixed ? fixed : differences).push(`${OPTION_OF[k]} ${show(cv)} (checkpoint: ${show(sv)})`);
    }
    if (!given.has(k) || isFixed) settings[k] = sv;
  }
  return { settings: settings as unknown as RunSettings, differences, fixed };
}
