/**
 * heap-efficiency: the Talc project's measure of how much of a fixed heap an allocator can
 * really hand out (docs/workloads/heap-efficiency.md): trials of random allocations, frees and
 * reallocations over a 128 MiB heap, each until the first failure; efficiency is the
 * requested bytes live at the failures over the heap bytes, summed over all trials.
 */

import type { Contender } from '../../contenders/contender.js';
import { barChart } from '../../report/chart.js';
import { formatBytes, formatSeconds } from '../../report/format.js';
import { figureColumns, renderTable } from '../../report/text-table.js';
import type { Workload, WorkloadRow } from '../../run/workload.js';
import { measureEfficiency } from './measure.js';
import { type EfficiencyTarget, HeaplabEfficiencyTarget, ThingEfficiencyTarget } from './targets.js';

/** The method's heap: 128 MiB. */
export const EFFICIENCY_HEAP_BYTES = 128 << 20;
/** The method's number of trials. */
export const EFFICIENCY_TRIALS = 300;
/** Trials inside `heaplab bench all`, so the whole comparison takes minutes. */
export const ALL_EFFICIENCY_TRIALS = 30;
/**
 * Most trials run on @thi.ng/malloc: its `free` walks every live block and then its whole
 * free list, so one trial takes seconds; the first trials of the same seed are the sample.
 */
export const THING_MAX_EFFICIENCY_TRIALS = 10;

/** One row of heap efficiency. */
export interface EfficiencyRow extends WorkloadRow {
  /** used / total over all trials, in percent. */
  efficiencyPercent: number;
  trials: number;
  seed: number;
  heapBytes: number;
  seconds: number;
  /** Random actions taken over all trials. */
  actions: number;
}

/** The target for a contender (a heaplab backend or @thi.ng/malloc), with its trials and note. */
function targetFor(contender: Contender, trials: number): { target: EfficiencyTarget; trials: number; note?: string } {
  if (contender.kind === 'heaplab') return { target: new HeaplabEfficiencyTarget(contender.spec, EFFICIENCY_HEAP_BYTES), trials };
  const capped = Math.min(trials, THING_MAX_EFFICIENCY_TRIALS);
  return {
    target: new ThingEfficiencyTarget(EFFICIENCY_HEAP_BYTES),
    trials: capped,
    note:
      'alignment by over-allocation; realloc as malloc + copy + free (its own leaks the old block when moving)' +
      (capped < trials ? `; ${capped} trials (its free is O(live blocks))` : ''),
  };
}

export const heapEfficiencyWorkload: Workload<EfficiencyRow, 'heapEfficiency'> = {
  name: 'heap-efficiency',
  resultKey: 'heapEfficiency',
  summary: "share of a 128 MiB heap usable before the first failure (Talc's method)",
  allNote: `${ALL_EFFICIENCY_TRIALS} trials unless --trials`,
  // The system, bump and native baselines have no fixed heap to fill.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing',
  heapBytesFor: () => EFFICIENCY_HEAP_BYTES,
  stepsPerContender: () => 1,

  async run(contenders, settings, progress) {
    const trials = settings.trials ?? (settings.inAll ? ALL_EFFICIENCY_TRIALS : EFFICIENCY_TRIALS);
    const rows: EfficiencyRow[] = [];
    for (const contender of contenders) {
      const base = { label: contender.label, kind: contender.kind, trials, seed: settings.seed, heapBytes: EFFICIENCY_HEAP_BYTES };
      const failed = (error: unknown): EfficiencyRow => ({ ...base, efficiencyPercent: 0, seconds: 0, actions: 0, error: (error as Error).message });
      let made: ReturnType<typeof targetFor>;
      try {
        made = targetFor(contender, trials);
      } catch (error) {
        rows.push(failed(error));
        continue;
      }
      progress.step(`heap-efficiency  ${contender.label}  ${made.trials} trials`);
      try {
        const figures = measureEfficiency(made.target, made.trials, settings.seed);
        rows.push({
          ...base,
          trials: made.trials,
          efficiencyPercent: figures.efficiencyPercent,
          seconds: figures.seconds,
          actions: figures.actions,
          ...(made.note !== undefined ? { note: made.note } : {}),
        });
      } catch (error) {
        rows.push(failed(error));
      } finally {
        made.target.close();
      }
    }
    return rows;
  },

  section(rows, run) {
    const headers = ['backend', 'efficiency', 'trials', 'seed', 'run time'];
    const body = rows.map((row) => [row.label, `${row.efficiencyPercent.toFixed(1)} %`, String(row.trials), String(row.seed), formatSeconds(row.seconds)]);
    return {
      title: `heap efficiency (${formatBytes(EFFICIENCY_HEAP_BYTES)} heap)`,
      table: renderTable(headers, body, figureColumns(headers), { width: run.width }),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    const first = rows[0]!;
    const sorted = [...rows].sort((a, b) => b.efficiencyPercent - a.efficiencyPercent);
    return [
      barChart({
        id: 'efficiency',
        title: 'heap efficiency',
        caption: `Requested bytes live when the heap first fails, over the heap size (${formatBytes(first.heapBytes)}, ${first.trials} trials, seed ${first.seed}). Higher is better; Talc's published figures: dlmalloc 97.7 %, TLSF 97.3 %, buddy 58.9 %.`,
        data: sorted.map((row) => ({
          group: row.label,
          value: row.efficiencyPercent,
          label: `${row.efficiencyPercent.toFixed(1)} %`,
          tip: `${row.label}: ${row.efficiencyPercent.toFixed(1)} % of ${formatBytes(row.heapBytes)} over ${row.trials} trials`,
        })),
        axisTitle: 'heap efficiency (%)',
        axisFormat: 'd',
        domain: [0, 100],
        colourGroups: true,
      }),
    ];
  },
};
