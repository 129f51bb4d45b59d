// The report folder: table (Markdown, JSON), features (CSV), figures (SVG).
import { isProtected, writeDirAtomic } from "../io/atomic.ts";
import type { Evaluation } from "./pipeline.ts";
import { auroc } from "./metrics.ts";
import { correlationSvg, histogramsSvg, rocSvg, scatterSvg } from "./plots.ts";
import { commonFactor, type ShiftDiagnostic, shiftDiagnostic } from "./shift.ts";
import { heatmapSvg, layerAurocs } from "./heatmap.ts";

const f3 = (v: number) => v.toFixed(3);

export function tableMarkdown(evals: Evaluation[], main = ["likelihood", "typicality", "gradient"]): string {
  let md = `| model | B | OOD set | ${main.map((m) => `${m} AUROC`).join(" | ")} |\n|---|---|---|${main.map(() => "---").join("|")}|\n`;
  for (const e of evals) {
    for (const [set, rs] of Object.entries(e.results)) {
      md += `| ${e.model} | ${e.groupSize} | ${set} | ${main.map((m) => {
        const r = rs.find((x) => x.method === m)!;
        return `${f3(r.metrics.auroc)} [${f3(r.metrics.aurocCI[0])}, ${f3(r.metrics.aurocCI[1])}]`;
      }).join(" | ")} |\n`;
    }
  }
  return md;
}

export function detailMarkdown(evals: Evaluation[]): string {
  let md = "| model | B | OOD set | method | AUROC | 95% CI | AUPR-in | AUPR-out | FPR@95%TPR |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const e of evals) {
    for (const [set, rs] of Object.entries(e.results)) {
      for (const r of rs) {
        const m = r.metrics;
        md += `| ${e.model} | ${e.groupSize} | ${set} | ${r.method} | ${f3(m.auroc)} | [${f3(m.aurocCI[0])}, ${f3(m.aurocCI[1])}] | ${f3(m.auprIn)} | ${f3(m.auprOut)} | ${f3(m.fpr95)} |\n`;
      }
    }
  }
  return md;
}

/** Plain-text table for the terminal: one row per (model, B, OOD set). */
export function tableText(evals: Evaluation[], main = ["likelihood", "typicality", "gradient"]): string {
  const head = ["model", "B", "OOD set", ...main.map((m) => `${m}`)];
  const rows = evals.flatMap((e) => Object.entries(e.results).map(([set, rs]) => [e.model, String(e.groupSize), set, ...main.map((m) => f3(rs.find((x) => x.method === m)!.metrics.auroc))]));
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join("  ");
  return [fmt(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(fmt)].join("\n");
}

/**
 * Diagnostics per parameter tensor: AUROC of log f_l alone (in-distribution vs each OOD set; above
 * 0.5 means OOD inputs have smaller gradients there), and the shift of the OOD mean in fit SDs.
 */
export function layersMarkdown(e: Evaluation): string {
  const sets = e.ood.map((o) => o.name);
  let md = `### ${e.model}, B=${e.groupSize}\n\n| parameter tensor | fit mean | fit sd | ${sets.map((s) => `${s}: AUROC, shift/sd`).join(" | ")} |\n|---|---|---|${sets.map(() => "---").join("|")}|\n`;
  e.names.forEach((n, l) => {
    const mean = e.scorers.diag.mean[l], sd = Math.sqrt(e.scorers.diag.variance[l]);
    const cells = e.ood.map((o) => {
      const a = e.inEval.logf.map((r) => r[l]), b = o.logf.map((r) => r[l]);
      const mb = b.reduce((s, v) => s + v, 0) / b.length;
      return `${auroc(a, b).toFixed(3)}, ${sd > 0 ? ((mb - mean) / sd).toFixed(2) : "-"}`;
    });
    md += `| ${n} | ${mean.toFixed(2)} | ${sd.toFixed(2)} | ${cells.join(" | ")} |\n`;
  });
  return md + "\n" + shiftMarkdown(shifts(e));
}

export function shifts(e: Evaluation): ShiftDiagnostic[] {
  const rows = (s: { logf: Float64Array[]; nll: Float64Array }) => ({ rows: s.logf, nll: s.nll });
  return e.ood.map((o) => shiftDiagnostic(e.scorers.diag, e.scorers.full, rows(e.fit), rows(e.inEval), { name: o.name, ...rows(o) }));
}

/** Where each OOD set's mean shift lies relative to the fit data's common factor (see shift.ts). */
export function shiftMarkdown(ds: ShiftDiagnostic[]): string {
  if (ds.length === 0) return "";
  const f2 = (v: number) => v.toFixed(2), tri = (t: { fit: number; inEval: number; ood: number }) => `${f2(t.fit)} / ${f2(t.inEval)} / ${f2(t.ood)}`;
  const d0 = ds[0];
  let md = `Shift of each OOD set from the fit mean, in z-units (fit SDs per feature). PC1 is the fit data's ` +
    `first principal component of the z-scores (${d0.k} features, mean pairwise correlation ${d0.meanCorrelation.toFixed(2)}; ` +
    `PC1 holds ${(100 * d0.pc1Share).toFixed(0)}% of their variance and correlates ${f2(d0.pc1NllCorrelation)} with the NLL), ` +
    `oriented so that positive = larger gradients. A shift mostly along PC1 is a change of overall gradient size ` +
    `that per-layer densities score weakly. AUROC of PC1 alone (one-sided: larger gradients = OOD) and of the ` +
    `diagonal Gaussian on what is left with PC1 projected out; medians are fit / in-distribution eval / OOD.\n\n` +
    `| OOD set | |shift| | share along PC1 | shift along PC1 (PC1 SDs) | AUROC PC1 | AUROC residual | median Mahalanobis^2 | median sum z^2 |\n|---|---|---|---|---|---|---|---|\n`;
  for (const d of ds) {
    md += `| ${d.set} | ${f2(d.shiftNorm)} | ${f2(d.shiftAlongPc1)} | ${f2(d.shiftPc1Sd)} | ${d.aurocPc1.toFixed(3)} | ${d.aurocResidual.toFixed(3)} | ${tri(d.mahalanobis2)} | ${tri(d.diagZ2)} |\n`;
  }
  return md + "\n";
}

function featuresCsv(e: Evaluation): string {
  const lines = [["set", "role", "group", `value:${e.objective}`, ...e.names.map((n) => `log_sqnorm:${n}`)].join(",")];
  const add = (s: { name: string; logf: Float64Array[]; nll: Float64Array }, role: string) =>
    s.logf.forEach((r, g) => lines.push([s.name, role, g, s.nll[g].toPrecision(8), ...Array.from(r, (v) => v.toPrecision(8))].join(",")));
  add(e.fit, "fit");
  add(e.inEval, "in-eval");
  e.ood.forEach((o) => add(o, "ood"));
  return lines.join("\n") + "\n";
}

/** Lists the files a report wrote, so the next report into the folder removes exactly those (and nothing of the user's). */
export const REPORT_MANIFEST = ".fimscope-report.json";

/** The names an earlier report in dir wrote (from its manifest); plain file names only. */
function earlierReportFiles(dir: string): string[] {
  try {
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/${REPORT_MANIFEST}`)) as { files?: unknown };
    return Array.isArray(m.files) ? m.files.filter((f): f is string => typeof f === "string" && /^[^/\\]+$/.test(f) && f !== "." && f !== "..") : [];
  } catch {
    return [];
  }
}

/**
 * Writes the report folder as a whole (writeDirAtomic: a killed run leaves the previous report or
 * this one, never a mix): this report's files, the manifest, and whatever else the folder held
 * except the files of an earlier report that this one did not rewrite (stale figures).
 */
export function writeReport(dir: string, evals: Evaluation[], meta: Record<string, unknown>, main?: string[], extra: [string, Uint8Array][] = []): string[] {
  const earlier = earlierReportFiles(dir);
  const files: string[] = [], names: string[] = [], contents: [string, string | Uint8Array][] = [];
  const put = (name: string, text: string | Uint8Array) => {
    contents.push([name, text]);
    files.push(`${dir}/${name}`);
    names.push(name);
  };
  put("table.md", `# OOD detection: AUROC (in-distribution = positive)\n\n${tableMarkdown(evals, main)}\n## All methods and metrics\n\n${detailMarkdown(evals)}`);
  put("layers.md", `# Per-layer diagnostics: log ||grad||^2 of each parameter tensor alone\n\n${evals.map(layersMarkdown).join("")}`);
  put("table.json", JSON.stringify({
    meta,
    evaluations: evals.map((e) => ({
      model: e.model, groupSize: e.groupSize, features: e.names, fitSize: e.fit.logf.length, inEvalSize: e.inEval.logf.length,
      results: Object.fromEntries(Object.entries(e.results).map(([k, rs]) => [k, Object.fromEntries(rs.map((r) => [r.method, r.metrics]))])),
      droppedFeatures: e.names.filter((_, l) => !e.scorers.diag.kept.includes(l)),
      shift: shifts(e),
    })),
  }, null, 2));
  for (const e of evals) {
    const tag = `${e.model}-B${e.groupSize}`;
    put(`features-${tag}.csv`, featuresCsv(e));
    for (const [set, rs] of Object.entries(e.results)) {
      put(`roc-${tag}-${set}.svg`, rocSvg(`${e.model}, B=${e.groupSize}: ${e.inEval.name} vs ${set}`, rs.map((r) => ({ label: r.method, points: r.roc, auroc: r.metrics.auroc }))));
    }
    if (e.ood.length) {
      const h = layerAurocs(e.scorers.diag, e.inEval.logf, e.ood.map((o) => ({ name: o.name, rows: o.logf })));
      put(`layers-auroc-${tag}.svg`, heatmapSvg(`${e.model}, B=${e.groupSize}: AUROC of each layer's density term alone`, h.layers.map((l) => e.names[l]), h.sets, h.auroc,
        `${e.inEval.name} (in) vs each OOD set; blue: the layer alone detects the set, red: it sees the set as more typical`));
    }
    if (e.groupSize === 1) {
      // Histograms for the first, a middle and the last layers, and the one the fit finds most spread.
      const L = e.names.length;
      const picks = [...new Set([0, Math.floor(L / 3), Math.floor((2 * L) / 3), L - 1])];
      put(`hist-${tag}.svg`, histogramsSvg(`${e.model}: log ||grad||^2 per layer, in vs out`, picks.map((l) => ({
        label: `log f: ${e.names[l]}`,
        series: [e.inEval, ...e.ood].map((s) => ({ name: s.name, values: s.logf.map((r) => r[l]) })),
      }))));
      put(`corr-${tag}.svg`, correlationSvg(`${e.model}: correlation of log f_l across layers (fit data)`, e.names, e.fit.logf));
      // Is the features' common factor the likelihood? NLL against the PC1 score, per OOD set.
      const cf = commonFactor(e.scorers.diag, e.fit.logf);
      const pts = (s: { logf: Float64Array[]; nll: Float64Array }) => s.logf.map((r, i) => [s.nll[i], cf.score(r)] as [number, number]);
      put(`pc1-${tag}.svg`, scatterSvg(`${e.model}: NLL vs the gradient features' first principal component`, "NLL (bits/dim)", "PC1 score (fit z-units)",
        e.ood.map((o) => ({ label: `${e.inEval.name} vs ${o.name}`, series: [{ name: "fit", points: pts(e.fit) }, { name: e.inEval.name, points: pts(e.inEval) }, { name: o.name, points: pts(o) }] }))));
    }
  }
  for (const [name, bytes] of extra) put(name, bytes);
  contents.push([REPORT_MANIFEST, JSON.stringify({ files: names }, null, 1) + "\n"]);
  writeDirAtomic(dir, contents, { keep: (f) => f !== REPORT_MANIFEST && (!earlier.includes(f) || isProtected(`${dir}/${f}`)) });
  return files;
}
