// What the OOD features differentiate: a per-input scalar of a model, passed to the feature
// functions as a value (as jax-js passes the function to differentiate), never a mode set on the
// model. Each model lists the objectives it offers (GenerativeModel.objective(name)); the loop in
// src/ood/loop.ts draws each input's random numbers (a VAE's latent sample, a diffusion model's
// noise) from the input's own pixels, in the shape the objective names here.
import type * as T from "../autograd/index.ts";

/** What an objective's value is, for labels and units. */
export interface Measure {
  /**
   * "nll": a negative log-likelihood or a bound on one, in nats per input (reported in bits/dim);
   * "loss": another per-input quantity (a diffusion model's eps-loss), reported as it is.
   */
  kind: "nll" | "loss";
  /** A table heading: "NLL", "NLL bound", "L1 eps-loss, t = 1". */
  short: string;
  /** One sentence for reports and the page. */
  label: string;
  /** Unit of `report(...)`: "bits/dim" or "" (the loss itself). */
  unit: string;
}

export interface Objective {
  /** Its name in options, reports, feature files and detector files: "nll", "l1-t1", "elbo", ... */
  readonly name: string;
  readonly measure: Measure;
  /** Shape of the draws for a batch of B inputs ([B, ...]), or null when the value draws nothing. */
  noiseShape(B: number): number[] | null;
  /** At most this many inputs per pass (memory: the diffusion bound runs 11 U-Net passes per input). */
  readonly maxBatch: number;
  /** Per-input value [B] of a batch x [B, C, H, W] in model space, with its draws (required when noiseShape is not null). */
  value(x: T.Tensor, noise?: T.Tensor): T.Tensor;
  /** One input's value in the measure's unit: bits/dim for an NLL (nats / (D ln 2)), the loss itself otherwise. */
  report(v: number): number;
}

/** An objective from its parts; `dims` (C*H*W) converts an NLL in nats to bits/dim. */
export function makeObjective(o: {
  name: string;
  measure: Measure;
  dims: number;
  noiseShape: (B: number) => number[] | null;
  maxBatch?: number;
  value: (x: T.Tensor, noise?: T.Tensor) => T.Tensor;
}): Objective {
  const scale = o.measure.kind === "nll" ? 1 / (o.dims * Math.LN2) : 1;
  return {
    name: o.name,
    measure: o.measure,
    noiseShape: o.noiseShape,
    maxBatch: o.maxBatch ?? Infinity,
    value: (x, noise) => {
      if (o.noiseShape(x.shape[0]) && !noise) throw new Error(`objective ${o.name}: needs its per-input draws (noise of shape ${JSON.stringify(o.noiseShape(x.shape[0]))})`);
      return o.value(x, noise);
    },
    report: (v) => v * scale,
  };
}

/** The error every model gives for a name it does not offer. */
export function unknownObjective(kind: string, name: string, allowed: string): Error {
  return new Error(`objective '${name}' is not one of the ${kind} model's (allowed: ${allowed})`);
}
