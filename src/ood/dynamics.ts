// OOD detection across training: for each checkpoint of a run, the AUROC (with bootstrap
// intervals) of the likelihood, typicality, the gradient method (diagonal Gaussian over log f_l)
// and the full-FIM score (q = g^T F_N^{-1} g, Woodbury), in-distribution evaluation set against
// each OOD set, at each group size B, under two protocols:
//   disjoint: the densities and F_N are fitted on the fit set (first half of the in-distribution
//             test split) and the in-distribution inputs scored are the evaluation set (second half);
//             the protocol of `npm run ood`.
//   overlap:  the in-distribution inputs scored are the first of the fit set's own inputs (as many
//             as the evaluation set has, at most all of them): fit and evaluation overlap, as in
//             code that fits on the whole in-distribution test split and scores samples from it
//             (Montazeran & Koethe 2025). The OOD sets are the same, so the difference between the
//             two is the protocol's effect alone.
// A checkpoint's result depends only on that checkpoint and the sets (not on the others in the series).
import { type ImageSet, subset, range } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { featuresOf, fimNormsOf, fimOf, type SetFeatures } from "./features_of.ts";
import { allMetrics } from "./metrics.ts";
import { evaluateSets } from "./pipeline.ts";

export const DYNAMICS_METHODS = ["likelihood", "typicality", "gradient", "gradient-fim"] as const;
export const PROTOCOLS = ["disjoint", "overlap"] as const;
export type Protocol = typeof PROTOCOLS[number];

export interface DynamicsRow {
  checkpoint: string;
  step: number;
  B: number;
  protocol: Protocol;
  ood: string;
  method: string;
  auroc: number;
  ci: [number, number];
}

export interface CheckpointResult {
  checkpoint: string;
  step: number;
  /** Mean NLL (bits/dim) of the in-distribution evaluation set (B = the first group size, mean of group means). */
  evalNll: number;
  rows: DynamicsRow[];
}

export interface DynamicsSets {
  fit: ImageSet;
  inEval: ImageSet;
  ood: ImageSet[];
}

export interface DynamicsOptions {
  Bs: number[];
  protocols?: readonly Protocol[];
  batch: number;
  seed: number;
  lambdaScale?: number;
  /** Called with the number of inputs just processed (features and gradient passes alike). */
  onProgress?: (done: number) => void;
}

/** Every method's AUROC for one model (one checkpoint), each B and protocol. */
export async function evaluateCheckpoint(model: GenerativeModel, checkpoint: string, step: number, sets: DynamicsSets, o: DynamicsOptions): Promise<CheckpointResult> {
  const protocols = o.protocols ?? PROTOCOLS, rows: DynamicsRow[] = [];
  let evalNll = NaN;
  for (const B of o.Bs) {
    const fo = { groupSize: B, batch: o.batch, seed: o.seed, onProgress: o.onProgress };
    const fit = await featuresOf(model, sets.fit, fo), inEval = await featuresOf(model, sets.inEval, fo);
    const ood: SetFeatures[] = [];
    for (const s of sets.ood) ood.push(await featuresOf(model, s, fo));
    if (Number.isNaN(evalNll)) evalNll = inEval.nll.reduce((a, v) => a + v, 0) / inEval.nll.length;
    // The overlap protocol's in-distribution inputs: the first m groups of the fit set.
    const m = Math.min(inEval.logf.length, fit.logf.length);
    const fim = await fimOf(model, sets.fit, { ...fo, lambdaScale: o.lambdaScale });
    const q: Record<string, number[]> = {};
    try {
      q.disjoint = await fimNormsOf(fim, model, sets.inEval, fo);
      if (protocols.includes("overlap")) q.overlap = await fimNormsOf(fim, model, subset(sets.fit, range(0, m * B), `${sets.fit.name}-head`), fo);
      for (const [k, s] of sets.ood.entries()) q[`ood:${k}`] = await fimNormsOf(fim, model, s, fo);
    } finally {
      fim.dispose();
    }
    for (const protocol of protocols) {
      const ins: SetFeatures = protocol === "disjoint" ? inEval : { ...inEval, logf: fit.logf.slice(0, m), nll: fit.nll.slice(0, m) };
      const ev = evaluateSets(checkpoint, B, fit, ins, ood, o.seed);
      for (const [k, s] of ood.entries()) {
        for (const method of DYNAMICS_METHODS) {
          const metrics = method === "gradient-fim"
            ? allMetrics(q[protocol].map((v) => -v), q[`ood:${k}`].map((v) => -v), o.seed)
            : ev.results[s.name].find((r) => r.method === method)!.metrics;
          rows.push({ checkpoint, step, B, protocol, ood: s.name, method, auroc: metrics.auroc, ci: metrics.aurocCI });
        }
      }
    }
  }
  return { checkpoint, step, evalNll, rows };
}

export interface CheckpointEntry {
  label: string;
  step: number;
  load: () => Promise<GenerativeModel>;
}

/** evaluateCheckpoint for each checkpoint in step order (each model loaded, evaluated and dropped in turn). */
export async function dynamicsOf(checkpoints: CheckpointEntry[], sets: DynamicsSets, o: DynamicsOptions & { onCheckpoint?: (r: CheckpointResult) => void }): Promise<CheckpointResult[]> {
  const out: CheckpointResult[] = [];
  for (const c of [...checkpoints].sort((a, b) => a.step - b.step)) {
    const model = await c.load();
    const r = await evaluateCheckpoint(model, c.label, c.step, sets, o);
    model.parameters().forEach((p) => p.dispose());
    o.onCheckpoint?.(r);
    out.push(r);
  }
  return out;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : "-");

/** One Markdown table per OOD set and B: a row per checkpoint, each method's AUROC [CI] under each protocol, and the overlap protocol's inflation. */
export function dynamicsMarkdown(results: CheckpointResult[], inName: string): string {
  const rows = results.flatMap((r) => r.rows);
  const oods = [...new Set(rows.map((r) => r.ood))], Bs = [...new Set(rows.map((r) => r.B))], protocols = [...new Set(rows.map((r) => r.protocol))];
  const find = (c: string, B: number, p: string, ood: string, m: string) => rows.find((r) => r.checkpoint === c && r.B === B && r.protocol === p && r.ood === ood && r.method === m);
  let md = "";
  for (const ood of oods) for (const B of Bs) {
    md += `### ${inName} (in) vs ${ood}, B = ${B}\n\n`;
    for (const p of protocols) {
      md += `${p === "disjoint" ? "Disjoint protocol (fit on the first half, evaluate on the second):" : "Overlap protocol (in-distribution inputs scored are fit inputs); in brackets the change from the disjoint protocol:"}\n\n`;
      md += `| step | checkpoint | eval NLL (bits/dim) | ${DYNAMICS_METHODS.join(" | ")} |\n|---|---|---|${DYNAMICS_METHODS.map(() => "---").join("|")}|\n`;
      for (const r of results) {
        const cells = DYNAMICS_METHODS.map((m) => {
          const x = find(r.checkpoint, B, p, ood, m);
          if (!x) return "-";
          if (p === "disjoint") return `${f3(x.auroc)} [${f3(x.ci[0])}, ${f3(x.ci[1])}]`;
          const d = find(r.checkpoint, B, "disjoint", ood, m);
          return `${f3(x.auroc)}${d ? ` (${x.auroc - d.auroc >= 0 ? "+" : ""}${(x.auroc - d.auroc).toFixed(3)})` : ""}`;
        });
        md += `| ${r.step} | ${r.checkpoint} | ${f3(r.evalNll)} | ${cells.join(" | ")} |\n`;
      }
      md += "\n";
    }
  }
  return md;
}
