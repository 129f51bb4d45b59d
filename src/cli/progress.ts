// A progress bar (cli-progress) that also logs periodically when stdout is not a terminal.
import cliProgress from "cli-progress";

export function progressBar(label: string, fields: string): InstanceType<typeof cliProgress.SingleBar> {
  return new cliProgress.SingleBar({
    format: `${label} [{bar}] {value}/{total} | ${fields} | ETA {eta_formatted}`,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 15000,
    etaBuffer: 50,
    barsize: 24,
  }, cliProgress.Presets.shades_classic);
}

/**
 * A bar fed by a library loop's progress callback: started on the first update (when the total
 * is known), with a rate per second since then.
 */
export function barFor(label: string, unit: string, fields = "") {
  let bar: InstanceType<typeof cliProgress.SingleBar> | null = null;
  let t0 = 0, done0 = 0;
  return {
    update(done: number, total: number, payload: Record<string, string> = {}) {
      if (!bar) {
        bar = progressBar(label, `${fields ? `${fields} | ` : ""}{rate} ${unit}/s`);
        bar.start(total, done, { rate: "-", ...payload });
        t0 = performance.now();
        done0 = done;
        return;
      }
      const secs = (performance.now() - t0) / 1000;
      bar.update(done, { rate: secs > 0 ? ((done - done0) / secs).toFixed(0) : "-", ...payload });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
