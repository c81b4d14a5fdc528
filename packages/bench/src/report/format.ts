/** Number formats shared by the terminal tables and the HTML report. */

/** `12.3 M/s`-style rate with three significant digits. */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e9) return `${(perSecond / 1e9).toPrecision(3)} G/s`;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toPrecision(3)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toPrecision(3)} k/s`;
  return `${perSecond.toPrecision(3)} /s`;
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
