/** Number formats shared by the terminal tables and the HTML report. */

/** `12.3 M/s`-style rate with three significant digits. */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e9) return `${(perSecond / 1e9).toPrecision(3)} G/s`;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toPrecision(3)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toPrecision(3)} k/s`;
  return `${perSecond.toPrecision(3)} /s`;
}

/** The spread of repeated rates in the unit of the larger: `11.9..12.5 M`; a dash without repeats. */
export function formatRateRange(min: number | undefined, max: number | undefined): string {
  if (min === undefined || max === undefined) return '-';
  const [scale, unit] = max >= 1e9 ? [1e9, 'G'] : max >= 1e6 ? [1e6, 'M'] : max >= 1e3 ? [1e3, 'k'] : [1, ''];
  return `${(min / scale).toPrecision(3)}..${(max / scale).toPrecision(3)}${unit === '' ? '' : ` ${unit}`}`;
}

/** CPU time over wall time (`1.96`: two threads busy at once); a dash when not measured. */
export function formatCpuShare(cpuSeconds: number | undefined, wallSeconds: number): string {
  return cpuSeconds === undefined || wallSeconds <= 0 ? '-' : (cpuSeconds / wallSeconds).toFixed(2);
}

/**
 * Each thread's CPU time over its loop time, e.g. "0.99 0.52": 1.00 when the thread had a
 * core to itself throughout; a dash when not measured.
 */
export function formatThreadCpuShares(cpuSeconds: readonly number[] | undefined, loopSeconds: readonly number[] | undefined): string {
  if (cpuSeconds === undefined || loopSeconds === undefined || cpuSeconds.length !== loopSeconds.length) return '-';
  return cpuSeconds.map((cpu, index) => formatCpuShare(cpu, loopSeconds[index]!)).join(' ');
}

/** Bytes in KiB/MiB/GiB with three significant digits; a dash for null. */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toPrecision(3)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toPrecision(3)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toPrecision(3)} KiB`;
  return `${bytes} B`;
}

/** A ratio as `1.23x`; a dash when either side is missing. */
export function formatRatio(value: number, reference: number | undefined): string {
  if (reference === undefined || reference === 0 || value === 0) return '-';
  return `${(value / reference).toFixed(2)}x`;
}

/** Seconds as `12.3 ms` or `1.23 s`. */
export function formatSeconds(seconds: number): string {
  return seconds < 1 ? `${(seconds * 1000).toPrecision(3)} ms` : `${seconds.toPrecision(3)} s`;
}
